//! Hostile test agent: `start` runs the program in parameter `program`
//! (denied unless the resource's grant lists it); `monitor` runs it to
//! completion and reports running iff it exited 0.
use std::time::Duration;

use wasmbeat_sdk::{export_agent, process, Agent, Args, Error, Meta, Param, Status};

struct Spawner;

impl Agent for Spawner {
    fn meta_data() -> Meta {
        Meta::new("spawner", "0.1.0", "test: spawns a program")
            .param(Param::string("program", "absolute path").required())
    }
    fn start(args: &Args) -> Result<(), Error> {
        let program: String = args.require("program")?;
        process::spawn(&program, &[]).map(|_| ())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(args: &Args) -> Result<Status, Error> {
        let program: String = args.require("program")?;
        let out = process::run(&program, &[], Duration::from_secs(5))?;
        Ok(if out.exit_code == Some(0) {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export_agent!(Spawner);

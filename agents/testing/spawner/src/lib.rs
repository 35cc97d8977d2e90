//! Hostile test agent: `start` spawns the command named in parameter
//! `command` (denied unless the resource's grant has it); `monitor` runs it
//! to completion and reports running iff it exited 0.
use std::time::Duration;

use wasmbeat_sdk::{export_agent, process, Agent, Args, Error, Meta, Param, Status};

struct Spawner;

impl Agent for Spawner {
    fn meta_data() -> Meta {
        Meta::new("spawner", "0.1.0", "test: spawns a command")
            .param(Param::name("command", "the command's name in the grant").required())
    }
    fn start(args: &Args) -> Result<(), Error> {
        let command: String = args.require("command")?;
        process::spawn(&command).map(|_| ())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(args: &Args) -> Result<Status, Error> {
        let command: String = args.require("command")?;
        let out = process::run(&command, Duration::from_secs(5))?;
        Ok(if out.exit_code == Some(0) {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export_agent!(Spawner);

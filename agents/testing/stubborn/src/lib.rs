//! Broken test agent: `start` spawns the granted command `server`; `stop`
//! refuses while the granted command `check` still finds it running (a
//! service that ignores its stop). The daemon must escalate: kill what the
//! resource started, then stop again, and never leave it half-running.
use std::time::Duration;

use wasmbeat_sdk::{export_agent, process, Agent, Args, Error, Meta, Param, Status};

struct Stubborn;

fn running(args: &Args) -> Result<bool, Error> {
    let check: String = args.require("check")?;
    Ok(process::run(&check, Duration::from_secs(5))?.exit_code == Some(0))
}

impl Agent for Stubborn {
    fn meta_data() -> Meta {
        Meta::new(
            "stubborn",
            "0.1.0",
            "test: stop fails while the server runs",
        )
        .param(Param::name("server", "the server command's name in the grant").required())
        .param(Param::name("check", "a command that exits 0 while the server runs").required())
    }
    fn start(args: &Args) -> Result<(), Error> {
        if running(args)? {
            return Ok(());
        }
        let server: String = args.require("server")?;
        process::spawn(&server).map(|_| ())
    }
    fn stop(args: &Args) -> Result<(), Error> {
        if running(args)? {
            return Err(Error::Failed("the server ignores its stop".into()));
        }
        Ok(())
    }
    fn monitor(args: &Args) -> Result<Status, Error> {
        Ok(if running(args)? {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export_agent!(Stubborn);

//! Broken test agent: `monitor` always says running, even before `start`;
//! `wasmbeat agent test` must fail at the first monitor.
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};

struct Liar;

impl Agent for Liar {
    fn meta_data() -> Meta {
        Meta::new("liar", "0.1.0", "test: monitor always reports running")
    }
    fn start(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::Running)
    }
}

export_agent!(Liar);

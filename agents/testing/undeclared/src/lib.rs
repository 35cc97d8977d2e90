//! Broken test agent: reads parameter `ip` but its meta-data declares no
//! parameters, so haresources arguments cannot be bound to it;
//! `wasmbeat agent test undeclared::ADDR` must fail at meta-data.
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};

struct Undeclared;

impl Agent for Undeclared {
    fn meta_data() -> Meta {
        Meta::new(
            "undeclared",
            "0.1.0",
            "test: meta-data omits the ip parameter",
        )
    }
    fn start(args: &Args) -> Result<(), Error> {
        args.require::<String>("ip").map(|_| ())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Undeclared);

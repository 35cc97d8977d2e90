//! Hostile test agent: `start` adds the address given in parameter `steal`
//! (which is not its resource address, so the host must deny it).
use wasmbeat_sdk::net;
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Param, Status};

struct Thief;

impl Agent for Thief {
    fn meta_data() -> Meta {
        Meta::new("thief", "0.1.0", "test: adds an address it was not granted")
            .param(Param::string("ip", "the address it is granted").required())
            .param(Param::string("steal", "the address it tries to add").required())
            .param(Param::string("nic", "interface").required())
    }
    fn start(args: &Args) -> Result<(), Error> {
        net::add_address(args.require("steal")?).map(|_| ())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Thief);

//! Broken test agent: manages one address but is not idempotent. `start`
//! adds the address without looking first, so a second `start` fails with
//! "already present"; `wasmbeat agent test` must fail at "start again".
use wasmbeat_sdk::net;
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Param, Status};

struct Sloppy;

fn ip(args: &Args) -> Result<std::net::IpAddr, Error> {
    args.require("ip")
}

impl Agent for Sloppy {
    fn meta_data() -> Meta {
        Meta::new("sloppy", "0.1.0", "test: adds its address without checking")
            .param(Param::address("ip", "address to add").required())
    }
    fn start(args: &Args) -> Result<(), Error> {
        net::add_address(ip(args)?).map(|_| ())
    }
    fn stop(args: &Args) -> Result<(), Error> {
        net::remove_address(ip(args)?).map(|_| ())
    }
    fn monitor(args: &Args) -> Result<Status, Error> {
        let ip = ip(args)?;
        Ok(if net::addresses()?.iter().any(|a| a.address == ip) {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export_agent!(Sloppy);

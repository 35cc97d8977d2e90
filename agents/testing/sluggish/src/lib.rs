//! Test agent that is correct but slow: it manages one address like
//! IPaddr and sleeps `delay_ms` in every start. With a short deadline
//! (`wasmbeat agent test --timeout`) only the deadline check must fail.
use std::time::Duration;

use wasmbeat_sdk::net;
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Param, Status};

struct Sluggish;

fn present(args: &Args) -> Result<bool, Error> {
    let ip: std::net::IpAddr = args.require("ip")?;
    Ok(net::addresses()?.iter().any(|a| a.address == ip))
}

impl Agent for Sluggish {
    fn meta_data() -> Meta {
        Meta::new(
            "sluggish",
            "0.1.0",
            "test: a correct address agent with a slow start",
        )
        .param(Param::address("ip", "address to manage").required())
        .param(Param::integer("delay_ms", "time every start takes").default("300"))
    }
    fn start(args: &Args) -> Result<(), Error> {
        std::thread::sleep(Duration::from_millis(args.get_or("delay_ms", 300)?));
        if present(args)? {
            return Ok(());
        }
        net::add_address(args.require("ip")?).map(|_| ())
    }
    fn stop(args: &Args) -> Result<(), Error> {
        net::remove_address(args.require("ip")?).map(|_| ())
    }
    fn monitor(args: &Args) -> Result<Status, Error> {
        Ok(if present(args)? {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export_agent!(Sluggish);

//! placeholder
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};
struct IpAddrAgent;
impl Agent for IpAddrAgent {
    fn meta_data() -> Meta { Meta::new("IPaddr", "0.1.0", "x") }
    fn start(_: &Args) -> Result<(), Error> { Ok(()) }
    fn stop(_: &Args) -> Result<(), Error> { Ok(()) }
    fn monitor(_: &Args) -> Result<Status, Error> { Ok(Status::NotRunning) }
}
export_agent!(IpAddrAgent);

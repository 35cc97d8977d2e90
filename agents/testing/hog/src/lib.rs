//! Hostile test agent: `start` allocates and touches 1 GiB (the runtime's
//! memory limit must stop it).
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};

struct Hog;

impl Agent for Hog {
    fn meta_data() -> Meta {
        Meta::new("hog", "0.1.0", "test: start allocates 1 GiB")
    }
    fn start(_: &Args) -> Result<(), Error> {
        let v = vec![1u8; 1 << 30];
        std::hint::black_box(&v);
        Ok(())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Hog);

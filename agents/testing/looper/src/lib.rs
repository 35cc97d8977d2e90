//! Hostile test agent: `start` spins forever (the runtime must time it
//! out); `stop` panics (the runtime must report a crash, not die).
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};

struct Looper;

impl Agent for Looper {
    fn meta_data() -> Meta {
        Meta::new("looper", "0.1.0", "test: start never returns")
    }
    fn start(_: &Args) -> Result<(), Error> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    fn stop(_: &Args) -> Result<(), Error> {
        panic!("looper refuses to stop")
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Looper);

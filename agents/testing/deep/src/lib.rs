//! Hostile test agent: `start` recurses until the wasm stack runs out (the
//! runtime must trap it, not crash); `monitor` recurses 1,000 calls deep
//! and answers (deep calls work on the host's reused fiber stacks).
use std::hint::black_box;
use wasmbeat_sdk::{export_agent, Agent, Args, Error, Meta, Status};

/// Calls itself `n` times; black_box keeps it a real recursion.
fn depth(n: u64) -> u64 {
    if black_box(n) == 0 {
        0
    } else {
        1 + black_box(depth(n - 1))
    }
}

struct Deep;

impl Agent for Deep {
    fn meta_data() -> Meta {
        Meta::new("deep", "0.1.0", "test: start exhausts the stack")
    }
    fn start(_: &Args) -> Result<(), Error> {
        black_box(depth(u64::MAX));
        Ok(())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        // Deep, yet well inside the 512 KiB wasm stack: 10,000 frames of
        // this function already exhaust it.
        if depth(1_000) == 1_000 {
            Ok(Status::Running)
        } else {
            Err(Error::Failed("recursion miscounted".into()))
        }
    }
}

export_agent!(Deep);

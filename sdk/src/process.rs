//! Programs on the host (only those granted to the resource).

use std::time::Duration;

use crate::bindings::wasmbeat::agent::process as wit;
use crate::Error;

pub use wit::Output;

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Run `program` to completion, killing it after `timeout`.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, Error> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    wit::run(program, &args, ms(timeout))
}

/// Start a long-running program; returns its PID.
pub fn spawn(program: &str, args: &[&str]) -> Result<u32, Error> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    wit::spawn(program, &args)
}

/// Send a signal to a process this resource spawned.
pub fn signal(pid: u32, signal: i32) -> Result<(), Error> {
    wit::signal(pid, signal)
}

/// Whether a process this resource spawned is still alive.
pub fn is_alive(pid: u32) -> bool {
    wit::is_alive(pid)
}

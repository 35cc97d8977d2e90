//! A real heartbeat 3.0.6 node in a lab test: whether one can run here,
//! and its own `cl_status` asked inside its namespaces.

use std::path::Path;
use std::process::Command;

use wasmbeat_lab::heartbeat::HEARTBEAT;

/// True when a real heartbeat can run (lab available and heartbeat
/// installed); otherwise prints a SKIP line, or panics under
/// `WASMBEAT_REQUIRE_LAB=1`.
pub fn available(test: &str) -> bool {
    if !super::lab_available(test) {
        return false;
    }
    if !Path::new(HEARTBEAT).exists() {
        if std::env::var("WASMBEAT_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("{HEARTBEAT} missing (apt-get install heartbeat) but WASMBEAT_REQUIRE_LAB=1");
        }
        eprintln!("SKIP {test}: {HEARTBEAT} not installed");
        return false;
    }
    true
}

/// `cl_status ARGS` inside heartbeat's mount, UTS and PID namespaces
/// (heartbeat rejects API clients whose PID it cannot see): stdout
/// (untrimmed) and exit code. `unshare_pid` is the recorded PID of
/// [`wasmbeat_lab::heartbeat::node_command`]; heartbeat's shell is its
/// only child.
pub fn cl_status(unshare_pid: u32, args: &[&str]) -> Option<(String, i32)> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
    let hb: u32 = children.split_whitespace().next()?.parse().ok()?;
    let out = Command::new("nsenter")
        .args(["-t", &hb.to_string(), "-m", "-u", "-p", "cl_status"])
        .args(args)
        .output()
        .ok()?;
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

//! Realtime for the heartbeat path: as root the wire peer's thread runs
//! SCHED_RR; without the privilege it says so clearly and carries on.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::{lab_available, wait_for};

fn peer(dir: &std::path::Path, port: &str) -> Command {
    let mut c = Command::new(support::lab_bin());
    c.args([
        "wire-peer",
        "--node",
        "a",
        "--nodes",
        "a,b",
        "--auth",
        "1:sha1:k",
        "--realtime",
    ])
    .args(["--medium", "ucast lo 127.0.0.1", "--udpport", port])
    .arg("--state-dir")
    .arg(dir)
    .env("RUST_LOG", "info")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

/// Scheduling policy of a thread from /proc (field 41 of stat; 2 = SCHED_RR).
fn policy(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(38)?.parse().ok()
}

#[test]
fn realtime_applies_as_root_and_warns_when_not_permitted() {
    if !lab_available("transport_realtime") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wb-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = peer(&dir.join("root"), "16941").spawn().unwrap();
    let pid = child.id();
    let rr = wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        (policy(pid) == Some(2)).then_some(())
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        rr.is_some(),
        "not SCHED_RR: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unprivileged (nobody): the warning names the risk and the fix.
    let state = dir.join("nobody");
    std::fs::create_dir_all(&state).unwrap();
    Command::new("chown")
        .args(["65534:65534"])
        .arg(&state)
        .status()
        .unwrap();
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ]);
    let inner = peer(&state, "16942");
    c.arg(inner.get_program())
        .args(inner.get_args())
        .env("RUST_LOG", "info");
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.contains("realtime requested but not permitted"),
        "{err}"
    );
    assert!(
        err.contains("realtime off"),
        "warning must say how to silence it: {err}"
    );
    // ... and carries on at normal priority.
    assert!(err.contains("medium open"), "peer did not carry on: {err}");
}

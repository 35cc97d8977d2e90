//! The `wasmbeat-lab` binary as tests and benchmarks spawn it: its commands
//! exist, the HTTP responder answers (a real process on loopback, ended by
//! the PID recorded here), and bad input gets a clear error.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wasmbeat-lab");

#[test]
fn help_lists_the_lab_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["demo", "wire-peer", "http-responder"] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
}

/// Kills the responder by its recorded PID on every path.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_responder_answers_with_its_body() {
    // A free port on loopback, released just before the responder binds it.
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let _responder = Child(
        Command::new(BIN)
            .args([
                "http-responder",
                "--listen",
                &addr.to_string(),
                "--body",
                "node7",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut body = None;
    // Bounded: 10 s is far beyond a process start even on a loaded machine.
    while body.is_none() && start.elapsed() < Duration::from_secs(10) {
        body = wasmbeat_lab::http::get_body(addr, Duration::from_millis(200));
        if body.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(
        body.as_deref(),
        Some("node7"),
        "no answer within {:?}",
        start.elapsed()
    );
}

#[test]
fn wire_peer_refuses_a_bad_key_and_a_bad_medium() {
    let dir = std::env::temp_dir().join(format!("wasmbeat-lab-cli-{}", std::process::id()));
    let run = |auth: &str, medium: &str| {
        Command::new(BIN)
            .args(["wire-peer", "--node", "a", "--nodes", "a,b", "--auth", auth])
            .args(["--medium", medium, "--state-dir"])
            .arg(&dir)
            .output()
            .unwrap()
    };
    let out = run("1:rot13:x", "ucast lo 127.0.0.1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad --auth \"1:rot13:x\""), "{err}");
    let out = run("1:sha1:k", "node alpha");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad --medium \"node alpha\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

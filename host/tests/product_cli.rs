//! The product binary ships no test support: the lab's commands (demo,
//! wire peer, HTTP responder) live in `wasmbeat-lab`, and `wasmbeat`
//! refuses them like any unknown command.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wasmbeat");

#[test]
fn lab_commands_are_not_in_the_product() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    // The daemon's own commands are there (positive control)...
    for cmd in ["run", "status", "check", "agent"] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    // ...the lab's are neither listed nor accepted, hidden or not.
    for cmd in ["demo", "wire-peer", "http-responder"] {
        assert!(!help.contains(cmd), "{cmd} listed in:\n{help}");
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(!out.status.success(), "wasmbeat {cmd} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unrecognized subcommand"), "{cmd}: {err}");
    }
}

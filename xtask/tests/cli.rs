//! The xtask command line as the test command uses it. Also makes cargo
//! build the `xtask` binary in the test command's one `cargo test` run
//! (a package's binary is built for its integration tests only), which
//! the chaos smoke then runs.

use std::process::Command;

fn xtask(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn chaos_help_names_the_options_the_smoke_uses() {
    let (code, text) = xtask(&["chaos", "--help"]);
    assert_eq!(code, 0, "{text}");
    for opt in ["--minutes", "--seed", "--without", "--out"] {
        assert!(text.contains(opt), "{opt} missing: {text}");
    }
}

#[test]
fn chaos_refuses_an_unknown_fault_kind_and_lists_the_known_ones() {
    let (code, text) = xtask(&["chaos", "--without", "no such fault"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("not a fault kind"), "{text}");
    assert!(text.contains("partition heal + command"), "{text}");
}

//! Builds the agents workspace (`../agents`, target wasm32-wasip2) so the
//! built-in agents can be embedded with `include_bytes!` and the test-only
//! hostile agents are at hand for the runtime tests.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let agents = root.join("agents");
    // Not the whole agents/ directory: agents/target changes on every build.
    for p in [
        "agents/Cargo.toml",
        "agents/Cargo.lock",
        "agents/ipaddr",
        "agents/named",
        "agents/httpd",
        "agents/mysqld",
        "agents/lsb",
        "agents/fence-http",
        "agents/testing",
        "sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    // A separate target dir: the outer cargo holds the lock on ours.
    let target_dir = agents.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&agents)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run cargo to build the agents: {e}");
    });
    if !status.success() {
        panic!(
            "building the agents (cd agents && cargo build --release --target wasm32-wasip2) \
             failed; is the wasm32-wasip2 target installed? (scripts/setup.sh installs it)"
        );
    }
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WASMBEAT_AGENTS_DIR={}", out.display());
}

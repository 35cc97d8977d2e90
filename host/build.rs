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
    pack_relative_relocations();
}

/// Link the binaries with packed relative relocations (DT_RELR) where the
/// C library loads them (glibc 2.36, Debian 12): the position-independent
/// daemon's ~22 000 relative relocations then take a few KiB instead of
/// ~530 KiB that the loader reads at start and that stay resident.
fn pack_relative_relocations() {
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") != "linux" || target("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // The build host's C library is the one the binary is built against.
    let version = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let parsed = version
        .strip_prefix("glibc ")
        .and_then(|v| v.split_once('.'))
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v >= (2, 36) => {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs")
        }
        _ => println!(
            "cargo:warning=C library {version:?} predates packed relative relocations (glibc 2.36): linking without them"
        ),
    }
}

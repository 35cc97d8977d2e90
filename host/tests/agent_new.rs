//! `wasmbeat agent new NAME --lang LANG`: each language's skeleton, as
//! written, builds with its own build.sh and passes `wasmbeat agent test`
//! (all 11 steps, in the throw-away namespace). A language whose toolchain
//! is not on this machine is skipped with the reason, unless
//! WASMBEAT_REQUIRE_LAB is set (CI), where it fails.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::TempDir;

/// The repository's root (tool caches live in its target/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Skip (or, in CI, fail) when `why` is Some.
fn missing(lang: &str, why: Option<String>) -> bool {
    let Some(why) = why else { return false };
    let msg = format!("agent new --lang {lang}: toolchain missing: {why}");
    if std::env::var_os("WASMBEAT_REQUIRE_LAB").is_some() {
        panic!("{msg} (scripts/setup.sh and scripts/build-examples.sh install it)");
    }
    eprintln!("SKIP {msg}");
    true
}

fn has(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Write the skeleton `demo-LANG` with the CLI, build it with `env`, run
/// `agent test` on it and demand a full pass.
fn skeleton_builds_and_passes(lang: &str, env: &[(&str, PathBuf)]) {
    let d = TempDir::new(&format!("agent-new-{lang}"));
    let name = format!("demo-{lang}");
    let dir = d.0.join(&name);
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["agent", "new", &name, "--lang", lang, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "agent new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("build.sh"));

    let t0 = std::time::Instant::now();
    let mut build = Command::new(dir.join("build.sh"));
    for (k, v) in env {
        build.env(k, v);
    }
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "{lang} skeleton's build.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = dir.join(format!("{name}.wasm"));
    eprintln!(
        "{lang}: built {} ({} bytes) in {:?}",
        wasm.display(),
        std::fs::metadata(&wasm).unwrap().len(),
        t0.elapsed()
    );

    let conf = d.0.join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("agents.toml"),
        format!("[agent.{name}]\naccept_declared = true\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["agent", "--no-cache", "--config-dir"])
        .arg(&conf)
        .arg("test")
        .arg(format!("{}::192.0.2.10", wasm.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{lang}:\n{stdout}");
    assert!(stdout.contains("PASSED: 11 steps, no failure"), "{stdout}");
    assert!(
        stdout.contains(&name),
        "meta-data names the agent: {stdout}"
    );
}

#[test]
fn rust_skeleton_builds_and_passes() {
    if !support::lab_available("rust_skeleton_builds_and_passes") {
        return;
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let why = match targets {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2") => None,
        _ => Some("rustup target wasm32-wasip2 (rustup target add wasm32-wasip2)".to_string()),
    };
    if missing("rust", why) {
        return;
    }
    // One target dir across runs: wit-bindgen is compiled once.
    let target = root().join("target/agent-new/rust");
    skeleton_builds_and_passes("rust", &[("CARGO_TARGET_DIR", target)]);
}

#[test]
fn python_skeleton_builds_and_passes() {
    if !support::lab_available("python_skeleton_builds_and_passes") {
        return;
    }
    // The example's venv (scripts/build-examples.sh) holds the pinned
    // componentize-py; without it build.sh makes its own from PyPI.
    let venv_tool = root().join("target/examples/venv-componentize-py/bin/componentize-py");
    let why = (!venv_tool.exists() && !has("python3", "--version"))
        .then(|| "python3 with venv (apt-get install python3-venv)".to_string());
    if missing("python", why) {
        return;
    }
    let env: Vec<(&str, PathBuf)> = if venv_tool.exists() {
        vec![("COMPONENTIZE_PY", venv_tool)]
    } else {
        vec![]
    };
    skeleton_builds_and_passes("python", &env);
}

#[test]
fn c_skeleton_builds_and_passes() {
    if !support::lab_available("c_skeleton_builds_and_passes") {
        return;
    }
    let tools = root().join("target/tools");
    let why = if !has("clang-14", "--version") {
        Some(
            "clang-14 (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)".into(),
        )
    } else if !tools.join("bin/wit-bindgen").exists() || !tools.join("bin/wasm-tools").exists() {
        Some("wit-bindgen 0.60 and wasm-tools in target/tools (scripts/install-c-tools.sh)".into())
    } else {
        None
    };
    if missing("c", why) {
        return;
    }
    skeleton_builds_and_passes(
        "c",
        &[
            ("WIT_BINDGEN", tools.join("bin/wit-bindgen")),
            ("WASM_TOOLS", tools.join("bin/wasm-tools")),
            ("ADAPTER", tools.join("wasi_snapshot_preview1.reactor.wasm")),
        ],
    );
}

#[test]
fn ts_skeleton_builds_and_passes() {
    if !support::lab_available("ts_skeleton_builds_and_passes") {
        return;
    }
    // The example's npm packages (same pins; agents/examples/ts-redis/build.sh).
    let toolchain = root().join("target/examples/ts-toolchain");
    let why = (!toolchain.join("node_modules/.bin/componentize-js").exists()).then(|| {
        "the pinned npm packages in target/examples/ts-toolchain (agents/examples/ts-redis/build.sh)"
            .to_string()
    });
    if missing("ts", why) {
        return;
    }
    skeleton_builds_and_passes("ts", &[("TS_TOOLCHAIN", toolchain)]);
}

#[test]
fn go_skeleton_builds_and_passes() {
    if !support::lab_available("go_skeleton_builds_and_passes") {
        return;
    }
    let tools = root().join("target/tools");
    let go = tools.join("golang-1.27/usr/lib/go-1.27/bin/go");
    let wit_bindgen = tools.join("wit-bindgen-0.63.0/bin/wit-bindgen");
    let why = (!go.exists() || !wit_bindgen.exists() || !tools.join("bin/wasm-tools").exists())
        .then(|| {
            "Go 1.27, wit-bindgen 0.63 and wasm-tools in target/tools \
             (scripts/install-go-tools.sh, scripts/install-c-tools.sh)"
                .to_string()
        });
    if missing("go", why) {
        return;
    }
    let cache = root().join("target/agent-new/go-cache");
    skeleton_builds_and_passes(
        "go",
        &[
            ("GO", go),
            ("WIT_BINDGEN", wit_bindgen),
            ("WASM_TOOLS", tools.join("bin/wasm-tools")),
            ("GO_PKG", tools.join("go-bytecodealliance-pkg")),
            ("ADAPTER", tools.join("wasi_snapshot_preview1.reactor.wasm")),
            ("GOCACHE", cache),
        ],
    );
}

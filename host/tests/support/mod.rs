//! Shared helpers for lab tests: network namespaces the test creates, joined
//! by a bridge that itself lives in a namespace, so nothing touches the
//! host's own network. Everything is torn down on drop (also on panic), and
//! processes are ended by the PID recorded when they were spawned.
//!
//! A thin layer over the `wasmbeat-lab` crate (the same lab the demo and
//! the benchmarks use): tests want a failed lab step to panic, the library
//! returns `LabError`.
#![allow(dead_code)]

pub mod cable;
pub mod heartbeat;
pub mod uplinks;

use std::ops::Deref;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use wasmbeat_lab::{self as lab, LabError};

// Not every test binary that includes this module polls.
#[allow(unused_imports)]
pub use wasmbeat_lab::wait_for;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when lab tests can run (root). Otherwise prints a SKIP line and
/// returns false, or panics when `WASMBEAT_REQUIRE_LAB=1` (CI) demands them.
pub fn lab_available(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let has_ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if root && has_ip {
        return true;
    }
    let why = if !root {
        "not root"
    } else {
        "iproute2 `ip` not found"
    };
    if std::env::var("WASMBEAT_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("lab test {test} cannot run ({why}) but WASMBEAT_REQUIRE_LAB=1");
    }
    eprintln!("SKIP {test}: {why} (lab tests need root and iproute2)");
    false
}

/// The `wasmbeat-lab` binary (wire peer, HTTP responder): next to the
/// `wasmbeat` binary under test, where cargo builds every binary of the
/// workspace (`scripts/test.sh` builds it first), or `WASMBEAT_LAB_BIN`.
pub fn lab_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("WASMBEAT_LAB_BIN") {
        return p.into();
    }
    let p = std::path::Path::new(env!("CARGO_BIN_EXE_wasmbeat")).with_file_name("wasmbeat-lab");
    assert!(
        p.is_file(),
        "{} not found: build it with `cargo build -p wasmbeat-lab` (scripts/test.sh does), or set WASMBEAT_LAB_BIN",
        p.display()
    );
    p
}

/// Panic with a lab error: a lab that cannot be set up fails the test.
fn check<T>(r: Result<T, LabError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Run a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    check(lab::run(cmd))
}

/// A network namespace owned by the test; deleted on drop together with
/// every process spawned through it. The library's [`lab::Netns`] with
/// panicking methods (its other methods and `name` are reachable by deref).
pub struct Netns(lab::Netns);

impl Deref for Netns {
    type Target = lab::Netns;

    fn deref(&self) -> &lab::Netns {
        &self.0
    }
}

impl Netns {
    /// Create a fresh namespace named `wb-<tag>-<pid>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Netns {
        Netns(check(lab::Netns::new(tag)))
    }

    /// `ip -n <ns> ARGS`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        check(self.0.ip(args))
    }

    /// Run a program inside the namespace to completion (no panic on failure).
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        check(self.0.exec(program, args))
    }

    /// Spawn a long-running program in the namespace; it is killed (by its
    /// recorded PID) when the namespace is dropped.
    pub fn spawn(&self, cmd: Command) -> u32 {
        check(self.0.spawn(&cmd))
    }

    /// Kill one process spawned through this namespace, by its recorded PID,
    /// and reap it. Returns false if no such child was recorded.
    pub fn kill(&self, pid: u32) -> bool {
        self.0.kill(pid, libc::SIGKILL)
    }

    /// Send `signal` to a process spawned through this namespace (by its
    /// recorded PID); false if no such child is recorded.
    pub fn signal(&self, pid: u32, signal: i32) -> bool {
        self.0.signal(pid, signal)
    }

    /// Run `f` on a fresh thread that has joined this network namespace
    /// (setns affects only that thread), e.g. to open sockets inside it.
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        check(self.0.within(f))
    }

    /// Addresses configured on `dev` in this namespace, as `ip -br addr` prints them.
    pub fn addrs(&self, dev: &str) -> String {
        check(self.0.addrs(dev))
    }

    /// MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> String {
        check(self.0.mac(dev))
    }
}

/// A small L2 lab: a switch namespace with a bridge, and node namespaces
/// each joined to it by a veth pair whose inside end is `eth0`.
pub struct Lab {
    /// The node namespaces (declared first: they drop before the switch).
    pub nodes: Vec<Netns>,
    /// The namespace holding the bridge.
    pub switch: Netns,
}

impl Lab {
    /// A bridge with `addrs.len()` nodes; node i gets `addrs[i]` (CIDR form)
    /// on `eth0`, with a broadcast address (heartbeat's bcast needs one).
    pub fn new(tag: &str, addrs: &[&str]) -> Lab {
        Lab::from(check(lab::Lab::new(tag, addrs)))
    }

    /// Take node i's link down or up at the switch (pulling the plug).
    pub fn set_link(&self, i: usize, up: bool) {
        let port = format!("p{i}");
        self.switch
            .ip(&["link", "set", &port, if up { "up" } else { "down" }]);
    }
}

impl From<lab::Lab> for Lab {
    /// A lab the library built (e.g. `wasmbeat_lab::uplinks`), with the
    /// panicking helpers.
    fn from(l: lab::Lab) -> Lab {
        let lab::Lab { nodes, switch } = l;
        Lab {
            nodes: nodes.into_iter().map(Netns).collect(),
            switch: Netns(switch),
        }
    }
}

/// Run `f` on a fresh thread that has joined `ns`'s network namespace
/// (only that thread moves; sockets it opens stay in `ns`). Used to drive
/// the in-process runtime against a lab node.
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    ns.run_inside(f)
}

/// Run a future on a fresh current-thread tokio runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `GET /` over HTTP/1.0: the body, or None if nothing answered. A lost
/// VIP fails at once or never answers; a slow answer on a loaded machine
/// is still an answer (a 100 ms limit missed one under load 5 on 2 cores).
pub fn http_get(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(1);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Run an async block on a current-thread tokio runtime inside `ns`.
pub fn block_on_in<F: std::future::Future>(ns: &Netns, f: impl FnOnce() -> F + Send) -> F::Output
where
    F::Output: Send,
{
    in_netns(ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f())
    })
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh empty directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("wasmbeat-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An example agent in another language built by scripts/build-examples.sh
/// into `target/examples/` (`python-tcpservice.wasm`, `c-nginx.wasm`,
/// `ts-redis.wasm`). None
/// (the test is skipped) when it has not been built, unless
/// WASMBEAT_REQUIRE_LAB is set (CI): then a missing example fails.
pub fn example_agent(file: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/examples")
        .join(file);
    if p.is_file() {
        return Some(p);
    }
    let msg = format!(
        "example agent {} not built: run scripts/build-examples.sh",
        p.display()
    );
    if std::env::var_os("WASMBEAT_REQUIRE_LAB").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// Cache of compiled agents shared by every test binary: the Python
/// example takes seconds to compile, once.
pub fn shared_agent_cache() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agent-cache")
}

/// Write a node's heartbeat files into `cfg` (created): `ha.cf`,
/// `haresources` and an `authkeys` (sha1, mode 0600) shared by every lab.
pub fn write_node_config(cfg: &std::path::Path, ha_cf: &str, haresources: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(cfg).unwrap_or_else(|e| panic!("mkdir {}: {e}", cfg.display()));
    std::fs::write(cfg.join("ha.cf"), ha_cf).unwrap();
    std::fs::write(cfg.join("haresources"), haresources).unwrap();
    std::fs::write(cfg.join("authkeys"), "auth 1\n1 sha1 lab-test-key\n").unwrap();
    std::fs::set_permissions(cfg.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// How lab tests start a daemon: `wasmbeat run` as node `node` with its
/// configuration in `config_dir`, its runtime directory `runtime_dir`, the
/// tests' shared agent cache, stderr appended to `log`, `RUST_LOG=info`
/// (through `sh -c` so the redirection happens inside the namespace the
/// command is spawned in).
pub fn daemon_command(
    config_dir: &std::path::Path,
    node: &str,
    runtime_dir: &std::path::Path,
    log: &std::path::Path,
) -> Command {
    let mut daemon = Command::new("sh");
    daemon.args([
        "-c",
        &format!(
            "exec {} run --config-dir {} --node {node} --runtime-dir {} --cache-dir {} 2>>{}",
            env!("CARGO_BIN_EXE_wasmbeat"),
            config_dir.display(),
            runtime_dir.display(),
            shared_agent_cache().display(),
            log.display()
        ),
    ]);
    daemon.env("RUST_LOG", "info");
    daemon
}

/// Spawn the lab's HTTP responder in `ns`, answering `body` on `listen`
/// (tells the client which node serves the VIP).
pub fn spawn_responder(ns: &Netns, listen: &str, body: &str) -> u32 {
    let mut responder = Command::new(lab_bin());
    responder.args(["http-responder", "--listen", listen, "--body", body]);
    ns.spawn(responder)
}

/// A control command (`status`, `reload`, ...) of the wasmbeat binary `bin`
/// against the daemon of `config_dir`/`runtime_dir`: exit code, and stdout
/// followed by stderr.
pub fn control_cli(
    bin: &std::path::Path,
    config_dir: &std::path::Path,
    runtime_dir: &std::path::Path,
    args: &[&str],
) -> (i32, String) {
    let out = Command::new(bin)
        .args(args)
        .arg("--config-dir")
        .arg(config_dir)
        .arg("--runtime-dir")
        .arg(runtime_dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The names a component imports at its top level (`wasmbeat:agent/log@0.2.0`,
/// `wasi:cli/stderr@0.2.0`, ...), sorted: which interfaces a generator
/// really pulled in.
pub fn component_imports(component: &[u8]) -> Vec<String> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0u32;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(component) {
        match payload.expect("a valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(s) if depth == 0 => {
                for i in s {
                    names.push(i.expect("a valid import").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    names.sort();
    names
}

/// The `wasmbeat:agent` interfaces among `component_imports`, without the
/// package prefix and version (`log`, `types`, ...).
pub fn agent_interfaces(component: &[u8]) -> Vec<String> {
    component_imports(component)
        .iter()
        .filter_map(|n| n.strip_prefix("wasmbeat:agent/"))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

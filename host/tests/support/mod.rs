//! Shared helpers for lab tests: network namespaces the test creates, joined
//! by a bridge that itself lives in a namespace, so nothing touches the
//! host's own network. Everything is torn down on drop (also on panic), and
//! processes are ended by the PID recorded when they were spawned.
#![allow(dead_code)]

pub mod cable;

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when lab tests can run (root). Otherwise prints a SKIP line and
/// returns false, or panics when `WASMBEAT_REQUIRE_LAB=1` (CI) demands them.
pub fn lab_available(test: &str) -> bool {
    let root = unsafe { libc_geteuid() } == 0;
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

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Run a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A network namespace owned by the test; deleted on drop together with
/// every process spawned through it.
pub struct Netns {
    pub name: String,
    children: Mutex<Vec<Child>>,
}

impl Netns {
    /// Create a fresh namespace named `wb-<tag>-<pid>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("wb-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> ARGS`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run a program inside the namespace to completion (no panic on failure).
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", self.name))
    }

    /// Spawn a long-running program in the namespace; it is killed (by its
    /// recorded PID) when the namespace is dropped.
    pub fn spawn(&self, cmd: Command) -> u32 {
        // Re-issue the command as `ip netns exec NS <program> <args...>`.
        let mut full = self.command(&cmd.get_program().to_string_lossy());
        full.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => full.env(k, v),
                None => full.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            full.current_dir(d);
        }
        let child = full
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn in {}: {e}", self.name));
        let pid = child.id();
        self.children.lock().unwrap().push(child);
        pid
    }

    /// Kill one process spawned through this namespace, by its recorded PID,
    /// and reap it. Returns false if no such child was recorded.
    pub fn kill(&self, pid: u32) -> bool {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        match children.iter().position(|c| c.id() == pid) {
            Some(i) => {
                let mut c = children.remove(i);
                let _ = c.kill();
                let _ = c.wait();
                true
            }
            None => false,
        }
    }

    /// Send `signal` to a process spawned through this namespace (by its
    /// recorded PID); false if no such child is recorded.
    pub fn signal(&self, pid: u32, signal: i32) -> bool {
        let children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if children.iter().any(|c| c.id() == pid) {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            unsafe { libc::kill(pid as i32, signal) };
            true
        } else {
            false
        }
    }

    /// Wait (bounded) for a spawned process to exit and reap it; its exit
    /// code (-1 when killed by a signal), or None if it is still running.
    pub fn wait_exit(&self, pid: u32, limit: std::time::Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        loop {
            {
                let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
                let i = children.iter().position(|c| c.id() == pid)?;
                if let Ok(Some(status)) = children[i].try_wait() {
                    // try_wait above already reaped it.
                    #[allow(clippy::zombie_processes)]
                    let _reaped = children.remove(i);
                    return Some(status.code().unwrap_or(-1));
                }
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Run `f` on a fresh thread that has joined this network namespace
    /// (setns affects only that thread), e.g. to open sockets inside it.
    pub fn run_inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            extern "C" {
                fn setns(fd: i32, nstype: i32) -> i32;
            }
            const CLONE_NEWNET: i32 = 0x4000_0000;
            // SAFETY: setns on a valid namespace fd, affecting this thread only.
            let rc = unsafe { setns(ns.as_raw_fd(), CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Addresses configured on `dev` in this namespace, as `ip -br addr` prints them.
    pub fn addrs(&self, dev: &str) -> String {
        String::from_utf8_lossy(&self.ip(&["-br", "addr", "show", "dev", dev]).stdout).into_owned()
    }

    /// MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        for child in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A small L2 lab: a switch namespace with a bridge, and node namespaces
/// each joined to it by a veth pair whose inside end is `eth0`.
pub struct Lab {
    pub switch: Netns,
    pub nodes: Vec<Netns>,
}

impl Lab {
    /// A bridge with `addrs.len()` nodes; node i gets `addrs[i]` (CIDR form)
    /// on `eth0`, with a broadcast address (heartbeat's bcast needs one).
    pub fn new(tag: &str, addrs: &[&str]) -> Lab {
        let switch = Netns::new(&format!("{tag}sw"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let node = Netns::new(&format!("{tag}{i}"));
            let port = format!("p{i}");
            switch.ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node.name,
            ]);
            switch.ip(&["link", "set", &port, "master", "br0"]);
            switch.ip(&["link", "set", &port, "up"]);
            node.ip(&["addr", "add", addr, "brd", "+", "dev", "eth0"]);
            node.ip(&["link", "set", "eth0", "up"]);
            nodes.push(node);
        }
        Lab { switch, nodes }
    }

    /// Take node i's link down or up at the switch (pulling the plug).
    pub fn set_link(&self, i: usize, up: bool) {
        self.switch.ip(&[
            "link",
            "set",
            &format!("p{i}"),
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Nodes drop first (their processes die), then the switch.
        self.nodes.clear();
    }
}

/// Poll `f` every `step` until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(step);
    }
}

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// Run `f` on a fresh thread that has joined `ns`'s network namespace
/// (only that thread moves; sockets it opens stay in `ns`). Used to drive
/// the in-process runtime against a lab node.
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsRawFd;
    const CLONE_NEWNET: i32 = 0x4000_0000;
    let path = format!("/run/netns/{}", ns.name);
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: plain syscall on a valid fd; affects only this thread.
            let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
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

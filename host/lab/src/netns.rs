//! A network-namespace lab: node namespaces joined by a bridge that itself
//! lives in a namespace, so nothing touches the host's own network. Used by
//! the demo, the benchmarks and the lab tests. Everything is torn down on
//! drop (also on panic); processes are ended by the PID recorded when they
//! were spawned.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A lab operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command could not be started at all.
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{cmd} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Entering a namespace from a thread failed.
    #[error("cannot enter network namespace {ns}: {source}")]
    Enter {
        /// The namespace.
        ns: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &mut Command) -> Result<Output, LabError> {
    let out = cmd.output().map_err(|source| LabError::Spawn {
        cmd: describe(cmd),
        source,
    })?;
    if !out.status.success() {
        return Err(LabError::Failed {
            cmd: describe(cmd),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// A network namespace owned by its creator; deleted on drop together with
/// every process spawned through it.
pub struct Netns {
    /// The namespace name (`ip netns list`).
    pub name: String,
    children: Mutex<Vec<Child>>,
}

impl Netns {
    /// Create a fresh namespace named `wb-<tag>-<pid>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Result<Netns, LabError> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("wb-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<Output, LabError> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run `program` inside the namespace to completion, whatever its exit
    /// status (the caller judges the output).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, LabError> {
        let mut cmd = self.command(program);
        cmd.args(args);
        cmd.output().map_err(|source| LabError::Spawn {
            cmd: describe(&cmd),
            source,
        })
    }

    /// Spawn `cmd` inside the namespace; it is killed by its recorded PID
    /// when the namespace is dropped (or earlier through [`Netns::kill`]).
    pub fn spawn(&self, cmd: &Command) -> Result<u32, LabError> {
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
        let child = full.spawn().map_err(|source| LabError::Spawn {
            cmd: describe(&full),
            source,
        })?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child);
        Ok(pid)
    }

    /// Send `signal` to a process this namespace spawned (by recorded PID);
    /// with SIGKILL also reap it. False (and nothing sent) for a PID this
    /// namespace did not spawn or has already reaped.
    pub fn kill(&self, pid: u32, signal: i32) -> bool {
        if !self.signal(pid, signal) {
            return false;
        }
        if signal == libc::SIGKILL {
            let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pos) = children.iter().position(|c| c.id() == pid) {
                let mut child = children.remove(pos);
                let _ = child.wait();
            }
        }
        true
    }

    /// Only send `signal` to a process this namespace spawned (by recorded
    /// PID), leaving it recorded so [`Netns::wait_exit`] can reap it and
    /// report its exit. False for a PID not spawned here or already reaped.
    pub fn signal(&self, pid: u32, signal: i32) -> bool {
        let children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if !children.iter().any(|c| c.id() == pid) {
            return false;
        }
        // SAFETY: kill(2) on a child we spawned and have not reaped yet.
        unsafe { libc::kill(pid as i32, signal) };
        true
    }

    /// Wait (bounded) for a spawned process to exit; returns its exit code.
    pub fn wait_exit(&self, pid: u32, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            {
                let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(pos) = children.iter().position(|c| c.id() == pid) {
                    if let Ok(Some(status)) = children[pos].try_wait() {
                        // try_wait above already reaped it.
                        #[allow(clippy::zombie_processes)]
                        let _reaped = children.remove(pos);
                        return Some(status.code().unwrap_or(-1));
                    }
                } else {
                    return None;
                }
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run `f` on a fresh thread that has entered this namespace, so sockets
    /// it opens live there (cheaper than spawning `ip netns exec`).
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let enter = |source| LabError::Enter {
                    ns: self.name.clone(),
                    source,
                };
                let file = File::open(&path).map_err(enter)?;
                // SAFETY: setns on this thread only, with a namespace fd we opened.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(enter(std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Addresses configured on `dev`, as `ip -br addr show dev DEV` prints them.
    pub fn addrs(&self, dev: &str) -> Result<String, LabError> {
        let out = self.ip(&["-br", "addr", "show", "dev", dev])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `addr` (without prefix) is configured on `dev`.
    pub fn has_addr(&self, dev: &str, addr: &str) -> bool {
        self.addrs(dev)
            .map(|a| {
                a.split_whitespace()
                    .any(|w| w.split('/').next() == Some(addr))
            })
            .unwrap_or(false)
    }

    /// MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> Result<String, LabError> {
        let out = self.ip(&["-br", "link", "show", "dev", dev])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string())
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

/// An L2 lab: a switch namespace with bridge `br0`, and node namespaces
/// each joined to it by a veth pair whose inside end is `eth0`.
///
/// Fields drop in declaration order, so the nodes (and their processes) go
/// before the switch; having no `Drop` impl lets callers take the
/// namespaces apart (the test helpers wrap each one).
pub struct Lab {
    /// The node namespaces, in the order their addresses were given.
    pub nodes: Vec<Netns>,
    /// The namespace holding the bridge.
    pub switch: Netns,
}

impl Lab {
    /// A bridge with one node per address; node i gets `addrs[i]` (CIDR form)
    /// on `eth0`, an IPv4 one with a broadcast address (heartbeat's bcast
    /// needs one), an IPv6 one without duplicate address detection.
    pub fn new(tag: &str, addrs: &[&str]) -> Result<Lab, LabError> {
        let switch = Netns::new(&format!("{tag}sw"))?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        // A switch forwards frames; it does not run them through iptables.
        // Where br_netfilter is loaded (Docker loads it), a new namespace
        // starts with these on, and every frame a node sends (256
        // gratuitous ARPs in a many-VIP failover) is charged the bridge's
        // netfilter hooks on the sender's CPU. `-e`: absent without the
        // module, which is the state wanted.
        switch.exec(
            "sysctl",
            &[
                "-qew",
                "net.bridge.bridge-nf-call-iptables=0",
                "net.bridge.bridge-nf-call-ip6tables=0",
                "net.bridge.bridge-nf-call-arptables=0",
            ],
        )?;
        let mut lab = Lab {
            switch,
            nodes: Vec::new(),
        };
        for (i, addr) in addrs.iter().enumerate() {
            let node = Netns::new(&format!("{tag}{i}"))?;
            let port = format!("p{i}");
            lab.switch.ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node.name,
            ])?;
            lab.switch.ip(&["link", "set", &port, "master", "br0"])?;
            lab.switch.ip(&["link", "set", &port, "up"])?;
            if addr.contains(':') {
                // IPv6: no broadcast; no duplicate address detection, so the
                // address (and the link-local) is usable at once.
                node.ip(&["addr", "add", addr, "dev", "eth0", "nodad"])?;
            } else {
                node.ip(&["addr", "add", addr, "brd", "+", "dev", "eth0"])?;
            }
            node.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.accept_dad=0"])?;
            node.ip(&["link", "set", "eth0", "up"])?;
            lab.nodes.push(node);
        }
        Ok(lab)
    }

    /// Take node i's link down or up at the switch (pulling the plug).
    pub fn set_link(&self, i: usize, up: bool) -> Result<(), LabError> {
        let port = format!("p{i}");
        self.switch
            .ip(&["link", "set", &port, if up { "up" } else { "down" }])
            .map(|_| ())
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

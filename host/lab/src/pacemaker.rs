//! A real Pacemaker 2.1 + Corosync 3 cluster in the lab: one node per
//! network namespace of a [`Lab`], each node's corosync and pacemakerd in
//! its own mount and UTS namespace with private state directories bound
//! over `/etc/corosync`, `/var/lib/corosync`, `/var/log/corosync`,
//! `/var/lib/pacemaker`, `/var/log/pacemaker`, `/run` and `/etc/hosts`
//! (the node names), and a private tmpfs on `/dev/shm` (the recipe of `docs/pacemaker.md`, "The
//! three-node lab"). Nothing on the host is written to or started.
//!
//! corosync uses knet with `token: 1000`; the CIB is pre-seeded with
//! `stonith-enabled=false`, `dc-deadtime=2s`, `no-quorum-policy=stop` and
//! `resource-stickiness=100`. Processes are ended by the PIDs recorded at
//! start, in the stop order Pacemaker needs (pacemakerd, then corosync);
//! [`Cluster`]'s drop ends whatever is left of every node, also on panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::{run, Lab, LabError, Netns};

/// A directory bound into every node's private mount namespace (after the
/// cluster's own directories): `source` over `target`, recursively when
/// `recursive` (a bind that carries the mounts under `source`).
#[derive(Debug, Clone)]
pub struct Bind {
    /// The directory as the host sees it, `{node}` replaced by the node's name.
    pub source: String,
    /// The mount point inside the node (it must exist on the host).
    pub target: PathBuf,
    /// `mount --rbind` instead of `mount --bind`.
    pub recursive: bool,
}

/// One cluster node: its name, its address, its state directory and the
/// PIDs recorded when it was started.
#[derive(Debug)]
pub struct Node {
    /// The node name (also its hostname and corosync name).
    pub name: String,
    /// Its ring0 address (no prefix).
    pub addr: String,
    /// Its private directories (`etc-corosync`, `lib-pacemaker`, `run`, ...).
    pub dir: PathBuf,
    /// The holder shell (`unshare ... sh`), whose namespaces clients enter.
    holder: Option<u32>,
}

/// A Pacemaker cluster over the first `nodes.len()` namespaces of `lab`
/// (further namespaces, e.g. a client, are not members).
pub struct Cluster {
    /// The cluster's nodes, index i in `lab.nodes[i]`.
    pub nodes: Vec<Node>,
    /// Bound into every node at start.
    pub binds: Vec<Bind>,
    /// The namespaces (declared after `nodes`; [`Cluster`]'s drop ends the
    /// nodes' processes before the namespaces go).
    pub lab: Lab,
}

/// `corosync.conf` for `nodes` (name, address), as the recipe has it.
pub fn corosync_conf(cluster_name: &str, nodes: &[(&str, &str)]) -> String {
    let mut s = format!(
        "totem {{\n  version: 2\n  cluster_name: {cluster_name}\n  transport: knet\n  \
         crypto_cipher: none\n  crypto_hash: none\n  token: 1000\n}}\n\
         quorum {{\n  provider: corosync_votequorum\n{}}}\n\
         system {{\n  sched_rr: no\n  move_to_root_cgroup: no\n  allow_knet_handle_fallback: yes\n}}\n\
         logging {{\n  to_logfile: yes\n  logfile: /var/log/corosync/corosync.log\n  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}}\n\
         nodelist {{\n",
        if nodes.len() == 2 {
            "  two_node: 1\n"
        } else {
            ""
        }
    );
    for (i, (name, addr)) in nodes.iter().enumerate() {
        s.push_str(&format!(
            "  node {{\n    name: {name}\n    nodeid: {}\n    ring0_addr: {addr}\n  }}\n",
            i + 1
        ));
    }
    s.push_str("}\n");
    s
}

/// The pre-seeded CIB: an empty one (`cibadmin --empty`) with the cluster
/// options the lab needs set through `crm_attribute` on the file.
pub fn seed_cib(path: &Path) -> Result<(), LabError> {
    let empty = run(Command::new("cibadmin").arg("--empty"))?;
    std::fs::write(path, &empty.stdout).map_err(|source| LabError::Spawn {
        cmd: format!("write {}", path.display()),
        source,
    })?;
    for (kind, name, value) in [
        ("crm_config", "stonith-enabled", "false"),
        ("crm_config", "dc-deadtime", "2s"),
        ("crm_config", "no-quorum-policy", "stop"),
    ] {
        run(Command::new("crm_attribute")
            .env("CIB_file", path)
            .args(["--type", kind, "--name", name, "--update", value]))?;
    }
    // crm_attribute has no rsc_defaults type: the section by cibadmin
    // (the id crmsh's `rsc_defaults rsc-options:` updates).
    run(Command::new("cibadmin").env("CIB_file", path).args([
        "-C",
        "-o",
        "configuration",
        "-X",
        "<rsc_defaults><meta_attributes id=\"rsc-options\"><nvpair id=\"rsc-options-resource-stickiness\" \
         name=\"resource-stickiness\" value=\"100\"/></meta_attributes></rsc_defaults>",
    ]))?;
    Ok(())
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |source| LabError::Spawn { cmd: what, source }
}

/// `mkdir -p` + owner + mode.
fn make_dir(path: &Path, owner: Option<(&str, &str)>, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(io_err(format!("mkdir {}", path.display())))?;
    if let Some((u, g)) = owner {
        run(Command::new("chown").arg(format!("{u}:{g}")).arg(path))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn wait_dead(pid: u32, limit: Duration) -> bool {
    crate::wait_for(limit, Duration::from_millis(50), || {
        (!alive(pid)).then_some(())
    })
    .is_some()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a PID recorded when this lab started it.
    unsafe { libc::kill(pid as i32, sig) };
}

/// The PIDs of the processes in network namespace `ns` (`ip netns pids`):
/// everything a node started (corosync, pacemakerd and its subdaemons,
/// the servers its resource agents started), none of the host's.
pub fn netns_pids(ns: &Netns) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", &ns.name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Node {
    fn pid_file(&self, what: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("{what}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The PID of the holder shell (None when the node is not running).
    pub fn holder(&self) -> Option<u32> {
        self.holder
    }

    /// The PID of corosync as recorded at start.
    pub fn corosync_pid(&self) -> Option<u32> {
        self.pid_file("corosync")
    }

    /// The PID of pacemakerd as recorded at start.
    pub fn pacemakerd_pid(&self) -> Option<u32> {
        self.pid_file("pacemakerd")
    }

    /// A command that runs `program` inside this node's network, mount and
    /// UTS namespaces (`nsenter -t HOLDER -n -m -u`), e.g. `crm_mon`.
    pub fn command(&self, program: &str) -> Option<Command> {
        let holder = self.holder?;
        let mut c = Command::new("nsenter");
        c.args(["-t", &holder.to_string(), "-n", "-m", "-u", program]);
        Some(c)
    }

    /// Run `program args` inside the node; its output whatever its status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, LabError> {
        let mut c = self.command(program).ok_or_else(|| LabError::Spawn {
            cmd: format!("{program} on {}", self.name),
            source: std::io::Error::other("node not running"),
        })?;
        c.args(args);
        c.output()
            .map_err(io_err(format!("{program} on {}", self.name)))
    }

    /// `crm_mon -1` inside the node (empty when it fails).
    pub fn crm_mon(&self) -> String {
        self.exec("crm_mon", &["-1"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `crm ARGS` inside the node; an error carries its stderr.
    pub fn crm(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut c = self.command("crm").ok_or_else(|| LabError::Spawn {
            cmd: format!("crm on {}", self.name),
            source: std::io::Error::other("node not running"),
        })?;
        c.args(args);
        run(&mut c)
    }

    /// `crm configure load update FILE` inside the node (FILE as the node
    /// sees it; the host's /tmp is shared).
    pub fn load_update(&self, file: &Path) -> Result<Output, LabError> {
        self.crm(&["configure", "load", "update", &file.display().to_string()])
    }

    /// The shell script the holder runs: mounts, hostname, corosync (waited
    /// for, bounded), pacemakerd, then it waits for both.
    fn script(&self, binds: &[Bind]) -> String {
        let d = self.dir.display();
        let mut s = format!(
            "set -e\n\
             mount --bind {d}/etc-corosync /etc/corosync\n\
             mount --bind {d}/lib-corosync /var/lib/corosync\n\
             mount --bind {d}/log-corosync /var/log/corosync\n\
             mount --bind {d}/lib-pacemaker /var/lib/pacemaker\n\
             mount --bind {d}/log-pacemaker /var/log/pacemaker\n\
             mount --bind {d}/run /run\n\
             mount --bind {d}/hosts /etc/hosts\n\
             mkdir -p /run/resource-agents /run/lock\n\
             mount -t tmpfs -o mode=1777,size=64m wbshm /dev/shm\n"
        );
        for b in binds {
            s.push_str(&format!(
                "mount {} '{}' '{}'\n",
                if b.recursive { "--rbind" } else { "--bind" },
                b.source.replace("{node}", &self.name),
                b.target.display()
            ));
        }
        s.push_str(&format!(
            "hostname {name}\n\
             corosync -f >{d}/corosync.out 2>&1 &\n\
             echo $! >{d}/corosync.pid\n\
             i=0\n\
             until corosync-cfgtool -s >/dev/null 2>&1; do\n\
             \x20 i=$((i+1)); if [ $i -gt 300 ]; then echo 'corosync did not come up in 30 s' >&2; exit 1; fi\n\
             \x20 sleep 0.1\n\
             done\n\
             PCMK_logfacility=none PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd -f >{d}/pacemakerd.out 2>&1 &\n\
             echo $! >{d}/pacemakerd.pid\n\
             wait\n",
            name = self.name
        ));
        s
    }

    /// Create the node's directories (owners and modes as the packages
    /// make them), corosync.conf and the pre-seeded CIB.
    fn prepare(&self, conf: &str, cib: &Path, hosts: &str) -> Result<(), LabError> {
        let hc = Some(("hacluster", "haclient"));
        let d = &self.dir;
        make_dir(d, None, 0o755)?;
        make_dir(&d.join("etc-corosync"), None, 0o755)?;
        make_dir(&d.join("lib-corosync"), None, 0o755)?;
        make_dir(&d.join("log-corosync"), None, 0o755)?;
        make_dir(&d.join("lib-pacemaker"), None, 0o755)?;
        for sub in ["cib", "pengine", "blackbox", "cores"] {
            make_dir(&d.join("lib-pacemaker").join(sub), hc, 0o750)?;
        }
        make_dir(&d.join("log-pacemaker"), hc, 0o770)?;
        make_dir(&d.join("run"), None, 0o755)?;
        make_dir(&d.join("run/crm"), hc, 0o750)?;
        make_dir(&d.join("run/resource-agents"), None, 0o755)?;
        make_dir(&d.join("run/lock"), None, 0o755)?;
        let hosts_path = d.join("hosts");
        std::fs::write(&hosts_path, hosts)
            .map_err(io_err(format!("write {}", hosts_path.display())))?;
        let conf_path = d.join("etc-corosync/corosync.conf");
        std::fs::write(&conf_path, conf)
            .map_err(io_err(format!("write {}", conf_path.display())))?;
        let cib_path = d.join("lib-pacemaker/cib/cib.xml");
        std::fs::copy(cib, &cib_path).map_err(io_err(format!("write {}", cib_path.display())))?;
        run(Command::new("chown")
            .arg("hacluster:haclient")
            .arg(&cib_path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cib_path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(format!("chmod {}", cib_path.display())))
    }
}

impl Cluster {
    /// A cluster named `cluster_name` over `lab`'s first `names.len()`
    /// namespaces, node i named `names[i]` with address `addrs[i]` (as
    /// configured on its `eth0`), state under `root/<name>` (created).
    /// Nothing is started.
    pub fn new(
        lab: Lab,
        cluster_name: &str,
        names: &[&str],
        addrs: &[&str],
        root: &Path,
    ) -> Result<Cluster, LabError> {
        assert_eq!(names.len(), addrs.len());
        assert!(lab.nodes.len() >= names.len());
        let pairs: Vec<(&str, &str)> = names.iter().copied().zip(addrs.iter().copied()).collect();
        let conf = corosync_conf(cluster_name, &pairs);
        make_dir(root, None, 0o755)?;
        let cib = root.join("seed-cib.xml");
        seed_cib(&cib)?;
        // Node names resolve inside the nodes (crmsh pings a node before
        // `crm node standby` and skips one it cannot reach).
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for (name, addr) in &pairs {
            hosts.push_str(&format!("{addr} {name}\n"));
        }
        let mut nodes = Vec::new();
        for (name, addr) in pairs {
            let node = Node {
                name: name.to_string(),
                addr: addr.to_string(),
                dir: root.join(name),
                holder: None,
            };
            node.prepare(&conf, &cib, &hosts)?;
            nodes.push(node);
        }
        Ok(Cluster {
            nodes,
            binds: Vec::new(),
            lab,
        })
    }

    /// Node i's network namespace.
    pub fn ns(&self, i: usize) -> &Netns {
        &self.lab.nodes[i]
    }

    /// Start node i: the holder (`unshare --mount --uts` running the node
    /// script) in its network namespace; returns once pacemakerd was
    /// started (bounded: 40 s), or an error with corosync's output.
    pub fn start(&mut self, i: usize) -> Result<(), LabError> {
        let node = &self.nodes[i];
        for f in ["corosync.pid", "pacemakerd.pid"] {
            let _ = std::fs::remove_file(node.dir.join(f));
        }
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "sh",
            "-c",
            &node.script(&self.binds),
        ]);
        let holder = self.lab.nodes[i].spawn(&c)?;
        self.nodes[i].holder = Some(holder);
        let node = &self.nodes[i];
        let started = crate::wait_for(Duration::from_secs(40), Duration::from_millis(50), || {
            if node.pacemakerd_pid().is_some() {
                return Some(true);
            }
            (!alive(holder)).then_some(false)
        });
        if started == Some(true) {
            return Ok(());
        }
        let out = std::fs::read_to_string(node.dir.join("corosync.out")).unwrap_or_default();
        Err(LabError::Spawn {
            cmd: format!("starting {}", node.name),
            source: std::io::Error::other(format!(
                "pacemakerd not started (holder {}): corosync said: {out}",
                if alive(holder) { "alive" } else { "exited" }
            )),
        })
    }

    /// Start every node.
    pub fn start_all(&mut self) -> Result<(), LabError> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// Whether node i's `crm_mon -1` shows a DC with quorum and every
    /// node in `names` online.
    pub fn sees_online(&self, i: usize, names: &[&str]) -> bool {
        let mon = self.nodes[i].crm_mon();
        let Some(line) = mon
            .lines()
            .find(|l| l.trim_start().starts_with("* Online: ["))
        else {
            return false;
        };
        mon.contains("partition with quorum")
            && names
                .iter()
                .all(|n| line.split_whitespace().any(|w| w == *n))
    }

    /// Wait (bounded) until every running node sees every running node
    /// online; the time it took, or None.
    pub fn wait_online(&self, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].holder.is_some())
            .collect();
        let names: Vec<&str> = running
            .iter()
            .map(|&i| self.nodes[i].name.as_str())
            .collect();
        crate::wait_for(limit, Duration::from_millis(200), || {
            running
                .iter()
                .all(|&i| self.sees_online(i, &names))
                .then(|| t0.elapsed())
        })
    }

    /// The first running node (to run cluster-wide commands on).
    pub fn any_running(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.holder.is_some())
    }

    /// Stop node i in Pacemaker's order: SIGTERM pacemakerd (it stops its
    /// resources first; waited for, bounded by `limit`), SIGTERM corosync
    /// (bounded: 10 s), then SIGKILL whatever is left in the node's
    /// namespace, and reap the holder. True when the clean part worked.
    pub fn stop(&mut self, i: usize, limit: Duration) -> bool {
        let Some(holder) = self.nodes[i].holder.take() else {
            return true;
        };
        let node = &self.nodes[i];
        let mut clean = true;
        if let Some(p) = node.pacemakerd_pid() {
            signal(p, libc::SIGTERM);
            clean &= wait_dead(p, limit);
        }
        if let Some(c) = node.corosync_pid() {
            signal(c, libc::SIGTERM);
            clean &= wait_dead(c, Duration::from_secs(10));
        }
        self.kill_rest(i, holder);
        clean
    }

    /// Stop every running node together (so resources are not moved from
    /// one stopping node to the next): SIGTERM every pacemakerd, wait
    /// (bounded by `limit`), SIGTERM every corosync, wait (10 s), SIGKILL
    /// what is left. True when the clean part worked.
    pub fn stop_all(&mut self, limit: Duration) -> bool {
        let running: Vec<(usize, u32)> = (0..self.nodes.len())
            .filter_map(|i| self.nodes[i].holder.take().map(|h| (i, h)))
            .collect();
        let mut clean = true;
        let pcmk: Vec<u32> = running
            .iter()
            .filter_map(|&(i, _)| self.nodes[i].pacemakerd_pid())
            .collect();
        pcmk.iter().for_each(|&p| signal(p, libc::SIGTERM));
        let t0 = Instant::now();
        for p in pcmk {
            clean &= wait_dead(p, limit.saturating_sub(t0.elapsed()));
        }
        let coro: Vec<u32> = running
            .iter()
            .filter_map(|&(i, _)| self.nodes[i].corosync_pid())
            .collect();
        coro.iter().for_each(|&p| signal(p, libc::SIGTERM));
        let t0 = Instant::now();
        for p in coro {
            clean &= wait_dead(p, Duration::from_secs(10).saturating_sub(t0.elapsed()));
        }
        for (i, h) in running {
            self.kill_rest(i, h);
        }
        clean
    }

    /// Imitate a crash of node i: SIGKILL every process of its namespace
    /// (corosync, pacemakerd and its subdaemons, the servers its agents
    /// started) by PID at once, and remove `addrs` (CIDR) from its `eth0`,
    /// as a dead machine no longer answers for them.
    pub fn crash(&mut self, i: usize, addrs: &[&str]) {
        let Some(holder) = self.nodes[i].holder.take() else {
            return;
        };
        for p in netns_pids(&self.lab.nodes[i]) {
            signal(p, libc::SIGKILL);
        }
        for a in addrs {
            let _ = self.lab.nodes[i].ip(&["addr", "del", a, "dev", "eth0"]);
        }
        self.kill_rest(i, holder);
    }

    fn kill_rest(&self, i: usize, holder: u32) {
        let ns = &self.lab.nodes[i];
        for _ in 0..3 {
            let pids = netns_pids(ns);
            if pids.iter().all(|&p| !alive(p)) {
                break;
            }
            for p in pids {
                signal(p, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        ns.kill(holder, libc::SIGKILL);
        ns.wait_exit(holder, Duration::from_secs(5));
    }

    /// Node i's log files (pacemaker.log tail, corosync.out) for failure
    /// messages: the last `lines` lines of each.
    pub fn logs(&self, i: usize, lines: usize) -> String {
        let d = &self.nodes[i].dir;
        let mut s = String::new();
        for f in [
            "log-pacemaker/pacemaker.log",
            "log-corosync/corosync.log",
            "corosync.out",
            "pacemakerd.out",
        ] {
            let text =
                String::from_utf8_lossy(&std::fs::read(d.join(f)).unwrap_or_default()).into_owned();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            s.push_str(&format!(
                "--- {} {f}:\n{}\n",
                self.nodes[i].name,
                tail.join("\n")
            ));
        }
        s
    }
}

impl Drop for Cluster {
    /// End every node still running (also on panic): a quick clean stop
    /// of all at once (bounded), then SIGKILL the rest.
    fn drop(&mut self) {
        let limit = if std::thread::panicking() {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(30)
        };
        self.stop_all(limit);
    }
}

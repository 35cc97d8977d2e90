//! `cargo run --release -p xtask -- bench [--quick]`: client-visible
//! failover and failback, footprint, and false failovers under stress, for
//! wasmbeat, keepalived and heartbeat 3.0.6 in the same network-namespace
//! lab (node1, node2 and a client on one bridge; an HTTP responder per node
//! answering with the node's name; the client polls the VIP).
//!
//! Every number written comes from a run; nothing is filled in. Each system
//! gets a fresh lab, torn down (processes killed by recorded PID, namespaces
//! deleted) on every path, and every wait is bounded.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use wasmbeat_lab::{http, Lab};

use crate::hub::LossyHub;

const NODE_ADDRS: [&str; 3] = ["10.77.80.1/24", "10.77.80.2/24", "10.77.80.10/24"];
const VIP: &str = "10.77.80.100";
use wasmbeat_lab::heartbeat::HEARTBEAT;
const KEEPALIVED: &str = "/usr/sbin/keepalived";
/// Client probe cadence: a new HTTP request every 10 ms.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// Per-probe connect/read timeout.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// Set by SIGINT/SIGTERM so every loop ends and the labs are torn down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Fails once SIGINT/SIGTERM arrived, so every loop ends and labs are torn down.
pub fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted; lab torn down");
    }
    Ok(())
}

/// Which implementation a row measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `wasmbeat run`.
    Wasmbeat,
    /// Debian heartbeat 3.0.6, haresources mode.
    Heartbeat,
    /// Debian keepalived 2.2.7, VRRPv3.
    Keepalived,
}

/// One system under test with its timings.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Row label.
    pub label: String,
    /// Implementation.
    pub kind: Kind,
    /// keepalive (heartbeat-style) or advert_int (keepalived).
    pub interval: Duration,
    /// deadtime (heartbeat-style); 3 x advert_int for keepalived.
    pub deadtime: Duration,
    /// Whether the stress test runs for this row.
    pub stress: bool,
}

/// Benchmark settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Failover runs per scenario.
    pub runs: usize,
    /// Idle period for the CPU/RSS footprint.
    pub idle: Duration,
    /// Duration of the stress test.
    pub stress: Duration,
    /// Only rows whose label contains one of these (empty: all).
    pub only: Vec<String>,
    /// Where the Markdown, JSON and PNG go.
    pub out_dir: PathBuf,
    /// Skip classic-timing rows (they take ~15 s per run).
    pub skip_classic: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn hb_time(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The configured initdead: the same for wasmbeat and heartbeat.
fn initdead(deadtime: Duration) -> Duration {
    (deadtime * 2).max(Duration::from_secs(2))
}

/// A lab with one system's two daemons; kills their process trees on drop
/// before the lab deletes the namespaces.
struct Bench {
    spec: Spec,
    lab: Lab,
    work: PathBuf,
    bin: PathBuf,
    pids: [Option<u32>; 2],
}

impl Drop for Bench {
    fn drop(&mut self) {
        for i in 0..2 {
            self.kill(i);
        }
        if std::env::var_os("WBB_KEEP").is_some() {
            println!("kept {}", self.work.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// All processes on the machine: pid -> (ppid, utime+stime ticks, rss pages).
fn proc_table() -> Vec<(u32, u32, u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm may contain spaces: fields start after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is state (field 3); ppid is field 4, utime 14, stime 15, rss 24.
        let get = |n: usize| {
            f.get(n - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.push((pid, get(4) as u32, get(14) + get(15), get(24)));
    }
    out
}

/// `root` and all its descendants.
fn tree(root: u32) -> Vec<(u32, u64, u64)> {
    let table = proc_table();
    let mut keep = vec![root];
    let mut i = 0;
    while i < keep.len() {
        let p = keep[i];
        for (pid, ppid, _, _) in &table {
            if *ppid == p && !keep.contains(pid) {
                keep.push(*pid);
            }
        }
        i += 1;
    }
    table
        .iter()
        .filter(|(pid, ..)| keep.contains(pid))
        .map(|(pid, _, cpu, rss)| (*pid, *cpu, *rss))
        .collect()
}

/// Footprint of one daemon at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Processes counted.
    pub processes: usize,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set, KiB.
    pub rss_kib: u64,
}

/// The directory a node's ha.cf, haresources and authkeys go in: the
/// config dir itself for wasmbeat; for heartbeat the etc of a root made
/// like a package install (`prepare_root`). authkeys is written here.
pub fn config_dir(kind: Kind, dir: &Path) -> Result<PathBuf> {
    let etc = if kind == Kind::Heartbeat {
        wasmbeat_lab::heartbeat::prepare_root(dir)?;
        dir.join("etc")
    } else {
        dir.to_path_buf()
    };
    let ak = etc.join("authkeys");
    std::fs::write(&ak, "auth 1\n1 sha1 wasmbeat-bench\n")?;
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600))?;
    Ok(etc)
}

/// ha.cf for a two-node bcast cluster on eth0 with these timings; the
/// same for wasmbeat and heartbeat but for heartbeat's logging lines.
pub fn ha_cf(kind: Kind, keepalive: Duration, deadtime: Duration, log: &Path) -> String {
    let extra = if kind == Kind::Heartbeat {
        format!(
            "logfile {}\nlogfacility none\nrealtime off\ncrm off\n",
            log.display()
        )
    } else {
        String::new()
    };
    format!(
        "{extra}keepalive {}\ndeadtime {}\nwarntime {}\ninitdead {}\nudpport 694\n\
         bcast eth0\nauto_failback on\nnode node1\nnode node2\n",
        hb_time(keepalive),
        hb_time(deadtime),
        hb_time(deadtime / 2),
        hb_time(initdead(deadtime)),
    )
}

/// The command that runs node `name`'s daemon (config under `dir`, log to
/// `log`, scratch under `work`); its PID roots the daemon's process tree.
pub fn daemon_command(
    kind: Kind,
    bin: &Path,
    work: &Path,
    dir: &Path,
    name: &str,
    log: &Path,
) -> Command {
    match kind {
        Kind::Wasmbeat => {
            let mut c = Command::new("sh");
            // `exec` keeps the recorded PID the daemon's own.
            c.args([
                "-c",
                &format!(
                    "exec {} run --config-dir {} --node {name} --runtime-dir {} --cache-dir {} 2>>{}",
                    bin.display(),
                    dir.display(),
                    work.join(format!("{name}.run")).display(),
                    work.join("agent-cache").display(),
                    log.display()
                ),
            ]);
            c.env("RUST_LOG", "info");
            c
        }
        Kind::Keepalived => {
            // A reboot clears /run: stale pid files of a SIGKILLed
            // keepalived make it refuse to start when a PID was reused.
            for f in ["k.pid", "v.pid"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            let mut c = Command::new("sh");
            c.args([
                "-c",
                &format!(
                    "exec {KEEPALIVED} -n -l -D -P -f {d}/keepalived.conf -p {d}/k.pid -r {d}/v.pid >>{l} 2>&1",
                    d = dir.display(),
                    l = log.display()
                ),
            ]);
            c
        }
        Kind::Heartbeat => {
            // Private /etc/ha.d, /run and /var/lib/heartbeat per node;
            // the recorded PID is `unshare`, whose PID namespace dies with it.
            wasmbeat_lab::heartbeat::node_command(dir, name, None)
        }
    }
}

/// SIGKILL the process tree rooted at `root` (spawned through `ns`) at
/// once: stop every process first so none can notice its parent dying
/// and shut down gracefully.
pub fn kill_tree(ns: &wasmbeat_lab::Netns, root: u32) {
    let procs = tree(root);
    for (pid, ..) in &procs {
        // SAFETY: signalling processes of the tree we started.
        unsafe { libc::kill(*pid as i32, libc::SIGSTOP) };
    }
    for (pid, ..) in &procs {
        // SAFETY: as above.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    // Reaps the root (our child).
    ns.kill(root, libc::SIGKILL);
}

/// The daemon's own processes under `root` (its tree, less `unshare`, the
/// namespace's shell, resource scripts and the services it started):
/// those running the daemon's binary.
pub fn daemon_footprint(kind: Kind, bin: &Path, root: u32) -> Snapshot {
    let exe = match kind {
        Kind::Wasmbeat => bin.to_path_buf(),
        Kind::Heartbeat => PathBuf::from(HEARTBEAT),
        Kind::Keepalived => PathBuf::from(KEEPALIVED),
    };
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let procs: Vec<(u32, u64, u64)> = tree(root)
        .into_iter()
        .filter(|(pid, ..)| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Snapshot {
        processes: procs.len(),
        cpu_ticks: procs.iter().map(|p| p.1).sum(),
        rss_kib: procs.iter().map(|p| p.2 * page / 1024).sum(),
    }
}

impl Bench {
    fn new(spec: &Spec, bin: &Path) -> Result<Bench> {
        // Short: the daemon's control socket path must fit in sun_path.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let work = std::env::temp_dir().join(format!(
            "wbb-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let lab = Lab::new("bf", &NODE_ADDRS)?;
        let b = Bench {
            spec: spec.clone(),
            lab,
            work,
            bin: bin.to_path_buf(),
            pids: [None, None],
        };
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            let mut responder = Command::new(b.bin.with_file_name("wasmbeat-lab"));
            responder.args(["http-responder", "--listen", "0.0.0.0:80", "--body", name]);
            b.lab.nodes[i].spawn(&responder)?;
            b.write_config(i)?;
        }
        Ok(b)
    }

    fn name(i: usize) -> String {
        format!("node{}", i + 1)
    }

    fn dir(&self, i: usize) -> PathBuf {
        self.work.join(Self::name(i))
    }

    fn log(&self, i: usize) -> PathBuf {
        self.work.join(format!("{}.log", Self::name(i)))
    }

    fn write_config(&self, i: usize) -> Result<()> {
        let s = &self.spec;
        let dir = self.dir(i);
        std::fs::create_dir_all(&dir)?;
        let name = Self::name(i);
        match s.kind {
            Kind::Wasmbeat | Kind::Heartbeat => {
                let etc = config_dir(s.kind, &dir)?;
                std::fs::write(
                    etc.join("ha.cf"),
                    ha_cf(s.kind, s.interval, s.deadtime, &self.log(i)),
                )?;
                std::fs::write(
                    etc.join("haresources"),
                    format!("node1 IPaddr::{VIP}/24/eth0\n"),
                )?;
            }
            Kind::Keepalived => {
                let prio = if i == 0 { 150 } else { 100 };
                std::fs::write(
                    dir.join("keepalived.conf"),
                    format!(
                        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n  \
                         script_user root\n  enable_script_security\n}}\n\
                         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  \
                         virtual_router_id 77\n  priority {prio}\n  advert_int {}\n  \
                         virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n",
                        s.interval.as_secs_f64()
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// Start node i's daemon; records the PID that roots its process tree.
    fn start(&mut self, i: usize) -> Result<()> {
        let name = Self::name(i);
        let dir = self.dir(i);
        let log = self.log(i);
        let cmd = daemon_command(self.spec.kind, &self.bin, &self.work, &dir, &name, &log);
        self.pids[i] = Some(self.lab.nodes[i].spawn(&cmd)?);
        Ok(())
    }

    /// SIGKILL node i's whole daemon tree at once: stop every process first
    /// so none can notice its parent dying and shut down gracefully.
    fn kill(&mut self, i: usize) {
        if let Some(root) = self.pids[i].take() {
            kill_tree(&self.lab.nodes[i], root);
        }
    }

    /// The daemon's own processes (without our `unshare` wrapper).
    fn snapshot(&self, i: usize) -> Snapshot {
        match self.pids[i] {
            Some(root) => daemon_footprint(self.spec.kind, &self.bin, root),
            None => Snapshot::default(),
        }
    }

    fn holds_vip(&self, i: usize) -> bool {
        self.lab.nodes[i].has_addr("eth0", VIP)
    }

    /// Probe the VIP from the client every 10 ms (each probe on its own
    /// thread, so a hanging connect does not slow the cadence) until one
    /// answers `want`; returns when that answer arrived.
    fn first_answer(&self, want: &str, limit: Duration) -> Result<Option<Instant>> {
        let addr: SocketAddr = format!("{VIP}:80").parse().expect("static address");
        let found = self.lab.nodes[2].within(|| {
            let (tx, rx) = mpsc::channel::<Instant>();
            std::thread::scope(|s| {
                let start = Instant::now();
                let mut next = start;
                loop {
                    if let Ok(at) = rx.try_recv() {
                        return Some(at);
                    }
                    if start.elapsed() >= limit || INTERRUPTED.load(Ordering::SeqCst) {
                        return None;
                    }
                    let tx = tx.clone();
                    // Threads inherit the namespace of the thread that
                    // creates them.
                    s.spawn(move || {
                        if http::get_body(addr, PROBE_TIMEOUT).as_deref() == Some(want) {
                            let _ = tx.send(Instant::now());
                        }
                    });
                    next += PROBE_EVERY;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
        })?;
        interrupted()?;
        Ok(found)
    }

    /// Wait until only node1 holds the VIP and the client reaches it, then
    /// a few intervals more so timers are back to normal.
    fn settle_on_node1(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            interrupted()?;
            if self.holds_vip(0) && !self.holds_vip(1) {
                break;
            }
            if start.elapsed() > limit {
                bail!(
                    "{}: cluster did not settle on node1 within {limit:?} (node1 {} node2 {})",
                    self.spec.label,
                    self.holds_vip(0),
                    self.holds_vip(1)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.first_answer("node1", limit)?.is_none() {
            bail!(
                "{}: client does not reach node1 after settling",
                self.spec.label
            );
        }
        // heartbeat (and wasmbeat, which follows it) advertises deadtime + 2 s
        // during a node's first 5 s: a kill inside that window measures the
        // start-up grace, not the configured deadtime. Let it pass.
        let grace = match self.spec.kind {
            Kind::Keepalived => Duration::ZERO,
            Kind::Wasmbeat | Kind::Heartbeat => Duration::from_millis(5500),
        };
        std::thread::sleep(
            (self.spec.interval * 4)
                .max(Duration::from_millis(500))
                .max(grace),
        );
        Ok(())
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        for i in 0..2 {
            let text = std::fs::read_to_string(self.log(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!("--- {} (last 15 lines) ---\n", Self::name(i)));
            for l in &lines[lines.len().saturating_sub(15)..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// How many times node2's log says it took the service over.
    fn takeovers_logged(&self) -> usize {
        let text = std::fs::read_to_string(self.log(1)).unwrap_or_default();
        let pat = match self.spec.kind {
            Kind::Wasmbeat => "starting group",
            Kind::Keepalived => "Entering MASTER STATE",
            Kind::Heartbeat => "Taking over resource group",
        };
        text.matches(pat).count()
    }
}

/// One system's measured results.
#[derive(Debug, Default)]
struct Row {
    start_to_serving_ms: Option<f64>,
    linkdown_failover_ms: Vec<f64>,
    linkdown_failback_ms: Vec<f64>,
    kill_failover_ms: Vec<f64>,
    kill_restart_to_node1_ms: Vec<f64>,
    idle: Option<(Snapshot, Snapshot, f64, f64)>,
    false_failovers: Option<(usize, usize, f64)>,
    errors: Vec<String>,
}

/// Fills `row` as it goes, so an abort keeps what was measured.
fn bench_system(spec: &Spec, bin: &Path, o: &Options, row: &mut Row) -> Result<()> {
    let mut b = Bench::new(spec, bin)?;
    let limit = spec.deadtime * 4 + Duration::from_secs(30);
    // A client whose ARP entry still names the other node's MAC reaches
    // the VIP again only after the entry goes stale and is re-probed
    // (~30-40 s) unless the holder re-announces: wait long enough to
    // measure that rather than give up.
    let back = spec.deadtime * 4 + Duration::from_secs(90);

    // node1 alone: time from start to the client being served through the VIP.
    let t0 = Instant::now();
    b.start(0)?;
    match b.first_answer("node1", limit)? {
        Some(at) => row.start_to_serving_ms = Some(ms(at.duration_since(t0))),
        None => bail!(
            "{}: node1 never served the VIP\n{}",
            spec.label,
            b.log_tail()
        ),
    }
    println!(
        "  {}: node1 alone serves the VIP {:.0} ms after start",
        spec.label,
        row.start_to_serving_ms.unwrap_or_default()
    );
    b.start(1)?;
    // node2 joins; give it initdead plus a few deadtimes to see node1.
    std::thread::sleep(initdead(spec.deadtime) + spec.deadtime * 2 + Duration::from_secs(1));
    b.settle_on_node1(back).with_context(|| b.log_tail())?;

    // Footprint: both daemons idle in a healthy cluster.
    let (a0, s0) = (b.snapshot(0), b.snapshot(1));
    let w0 = Instant::now();
    let mut t = Duration::ZERO;
    while t < o.idle {
        interrupted()?;
        std::thread::sleep(Duration::from_millis(200));
        t = w0.elapsed();
    }
    let (a1, s1) = (b.snapshot(0), b.snapshot(1));
    let wall = w0.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let pct = |a: Snapshot, b: Snapshot| {
        (b.cpu_ticks.saturating_sub(a.cpu_ticks)) as f64 / hz / wall * 100.0
    };
    row.idle = Some((a1, s1, pct(a0, a1), pct(s0, s1)));
    println!(
        "  {}: idle {:.0} s: active {} procs {} KiB {:.2}% CPU, standby {} procs {} KiB {:.2}% CPU",
        spec.label,
        wall,
        a1.processes,
        a1.rss_kib,
        pct(a0, a1),
        s1.processes,
        s1.rss_kib,
        pct(s0, s1)
    );

    // SIGKILL first: a partition that heals can leave heartbeat 3.0.6
    // unable to settle (it restarts itself), which ends the row.
    // SIGKILL of node1's daemon; then node1 "reboots": the stale VIP is
    // removed and the daemon started again.
    for run in 0..o.runs {
        interrupted()?;
        let r = (|| -> Result<()> {
            let t0 = Instant::now();
            b.kill(0);
            let Some(at) = b.first_answer("node2", limit)? else {
                bail!("node2 did not take over after SIGKILL");
            };
            let fo = ms(at.duration_since(t0));
            let _ = b.lab.nodes[0].ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
            let t1 = Instant::now();
            b.start(0)?;
            let Some(at) = b.first_answer("node1", back)? else {
                bail!("service did not return to the restarted node1 within {back:?}");
            };
            let fb = ms(at.duration_since(t1));
            row.kill_failover_ms.push(fo);
            row.kill_restart_to_node1_ms.push(fb);
            println!(
                "  {} SIGKILL run {}: failover {fo:.0} ms, back on restarted node1 {fb:.0} ms",
                spec.label,
                run + 1
            );
            Ok(())
        })();
        if let Err(e) = r {
            row.errors.push(format!("SIGKILL run {}: {e:#}", run + 1));
            println!("  {} SIGKILL run {}: {e:#}", spec.label, run + 1);
            if b.pids[0].is_none() {
                b.start(0)?;
            }
        }
        b.settle_on_node1(back).with_context(|| b.log_tail())?;
    }

    // Link-down failover and failback.
    for run in 0..o.runs {
        interrupted()?;
        let r = (|| -> Result<()> {
            let t0 = Instant::now();
            b.lab.set_link(0, false)?;
            let Some(at) = b.first_answer("node2", limit)? else {
                bail!("node2 did not take over after link down");
            };
            let fo = ms(at.duration_since(t0));
            let t1 = Instant::now();
            b.lab.set_link(0, true)?;
            let Some(at) = b.first_answer("node1", back)? else {
                bail!("service did not return to node1 within {back:?} after link up");
            };
            let fb = ms(at.duration_since(t1));
            row.linkdown_failover_ms.push(fo);
            row.linkdown_failback_ms.push(fb);
            println!(
                "  {} link-down run {}: failover {fo:.0} ms, failback {fb:.0} ms",
                spec.label,
                run + 1
            );
            Ok(())
        })();
        if let Err(e) = r {
            let _ = b.lab.set_link(0, true);
            if std::env::var_os("WBB_VERBOSE").is_some() {
                println!("{}", b.log_tail());
            }
            row.errors.push(format!("link-down run {}: {e:#}", run + 1));
            println!("  {} link-down run {}: {e:#}", spec.label, run + 1);
        }
        b.settle_on_node1(back).with_context(|| b.log_tail())?;
    }

    if spec.stress && !o.stress.is_zero() {
        match stress(&b, o.stress) {
            Ok(r) => {
                println!(
                    "  {} stress {:.0} s (2 CPU hogs, 1% loss): {} takeovers logged by node2, {} seen by the client",
                    spec.label, r.2, r.0, r.1
                );
                row.false_failovers = Some(r);
            }
            Err(e) => row.errors.push(format!("stress: {e:#}")),
        }
    }
    Ok(())
}

/// Saturate both cores and drop 1% of frames between the nodes for `d`;
/// count node2 takeovers (from its log) and client-visible node2 answers.
fn stress(b: &Bench, d: Duration) -> Result<(usize, usize, f64)> {
    let before = b.takeovers_logged();
    let mut hogs = Vec::new();
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
    for _ in 0..cores {
        let mut c = Command::new("sh");
        c.args(["-c", "while :; do :; done"]);
        hogs.push(b.lab.switch.spawn(&c)?);
    }
    let hub = LossyHub::start(&b.lab, 0.01);
    let result = (|| -> Result<(usize, f64)> {
        let hub = hub?;
        let addr: SocketAddr = format!("{VIP}:80").parse().expect("static address");
        let t0 = Instant::now();
        let seen = b.lab.nodes[2].within(|| {
            let mut seen = 0usize;
            let mut last_node2 = false;
            while t0.elapsed() < d && !INTERRUPTED.load(Ordering::SeqCst) {
                let body = http::get_body(addr, Duration::from_millis(300));
                let node2 = body.as_deref() == Some("node2");
                if node2 && !last_node2 {
                    seen += 1;
                }
                last_node2 = node2;
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })?;
        let secs = t0.elapsed().as_secs_f64();
        let stats = hub.stop();
        println!(
            "    hub forwarded {} frames, dropped {} ({:.2}%)",
            stats.0,
            stats.1,
            stats.1 as f64 * 100.0 / (stats.0 + stats.1).max(1) as f64
        );
        Ok((seen, secs))
    })();
    for h in hogs {
        b.lab.switch.kill(h, libc::SIGKILL);
    }
    let (seen, secs) = result?;
    Ok((b.takeovers_logged() - before, seen, secs))
}

/// min, median, p95, max (nearest rank).
fn summary(v: &[f64]) -> Option<[f64; 4]> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Some([s[0], rank(0.5), rank(0.95), s[s.len() - 1]])
}

fn fmt_summary(v: &[f64]) -> String {
    match summary(v) {
        Some([a, b, c, d]) => format!("{a:.0} / {b:.0} / {c:.0} / {d:.0}"),
        None => "–".into(),
    }
}

fn specs(o: &Options) -> Vec<Spec> {
    let s = Duration::from_secs;
    let m = Duration::from_millis;
    let mut v = vec![
        Spec {
            label: "wasmbeat fast (keepalive 50ms, deadtime 200ms)".into(),
            kind: Kind::Wasmbeat,
            interval: m(50),
            deadtime: m(200),
            stress: true,
        },
        // keepalived's backup declares the master down 3 x advert_int +
        // (256 - priority) / 256 x advert_int after its last advert: 180 ms
        // at 0.05 and priority 100. This row gives wasmbeat that window.
        Spec {
            label: "wasmbeat matched (keepalive 50ms, deadtime 180ms)".into(),
            kind: Kind::Wasmbeat,
            interval: m(50),
            deadtime: m(180),
            stress: true,
        },
        Spec {
            label: "keepalived advert_int 0.05".into(),
            kind: Kind::Keepalived,
            interval: m(50),
            deadtime: m(150),
            stress: true,
        },
        Spec {
            label: "heartbeat 3.0.6 fast (keepalive 50ms, deadtime 200ms)".into(),
            kind: Kind::Heartbeat,
            interval: m(50),
            deadtime: m(200),
            stress: false,
        },
    ];
    if !o.skip_classic {
        v.extend([
            Spec {
                label: "wasmbeat classic (keepalive 1s, deadtime 5s)".into(),
                kind: Kind::Wasmbeat,
                interval: s(1),
                deadtime: s(5),
                stress: false,
            },
            Spec {
                label: "keepalived advert_int 1".into(),
                kind: Kind::Keepalived,
                interval: s(1),
                deadtime: s(3),
                stress: false,
            },
            Spec {
                label: "heartbeat 3.0.6 classic (keepalive 1s, deadtime 5s)".into(),
                kind: Kind::Heartbeat,
                interval: s(1),
                deadtime: s(5),
                stress: false,
            },
        ]);
    }
    v.retain(|s| o.only.is_empty() || o.only.iter().any(|w| s.label.contains(w.as_str())));
    v
}

fn available(kind: Kind) -> bool {
    match kind {
        Kind::Wasmbeat => true,
        Kind::Heartbeat => Path::new(HEARTBEAT).exists(),
        Kind::Keepalived => Path::new(KEEPALIVED).exists(),
    }
}

/// CPU, cores, kernel and load average, for the reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {kernel}, load average at start {load}")
}

/// Today's UTC date (YYYY-MM-DD).
pub fn today() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "undated".into())
}

/// Entry point for `bench [--quick] [--runs N] [--idle S] [--stress S] [--only WORD]... [--no-classic]`.
pub fn main(args: &[&str]) -> Result<()> {
    let mut o = Options {
        runs: 10,
        idle: Duration::from_secs(60),
        stress: Duration::from_secs(120),
        only: Vec::new(),
        out_dir: PathBuf::from("bench/results"),
        skip_classic: false,
    };
    let mut note = String::new();
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| -> Result<String> {
            it.next()
                .map(|s| s.to_string())
                .with_context(|| format!("{a} needs {what}"))
        };
        match *a {
            "--quick" => {
                o.runs = 3;
                o.idle = Duration::from_secs(20);
                o.stress = Duration::from_secs(30);
            }
            "--runs" => o.runs = val("a count")?.parse().context("--runs")?,
            "--idle" => o.idle = Duration::from_secs(val("seconds")?.parse().context("--idle")?),
            "--stress" => o.stress = Duration::from_secs(val("seconds")?.parse().context("--stress")?),
            "--only" => o.only.push(val("a label word")?),
            "--out" => o.out_dir = PathBuf::from(val("a directory")?),
            "--no-classic" => o.skip_classic = true,
            "--note" => note = val("a sentence")?,
            "--name" => file = Some(val("a file stem")?),
            other => bail!("unknown option {other}; usage: bench [--quick] [--runs N] [--idle S] [--stress S] [--only WORD]... [--no-classic] [--out DIR] [--name STEM] [--note TEXT]"),
        }
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark builds network namespaces: run it as root");
    }
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    // The daemon under test and the lab's HTTP responder, built next to us.
    let bin = std::env::current_exe()?.with_file_name("wasmbeat");
    for b in [bin.clone(), bin.with_file_name("wasmbeat-lab")] {
        if !b.exists() {
            bail!(
                "{} not found: cargo build --release -p wasmbeat -p wasmbeat-lab",
                b.display()
            );
        }
    }
    let started = Instant::now();
    let machine = machine();
    println!("machine: {machine}");
    let mut results = Vec::new();
    for spec in specs(&o) {
        if !available(spec.kind) {
            println!("{}: not installed, skipped", spec.label);
            continue;
        }
        println!("{}:", spec.label);
        let mut row = Row::default();
        if let Err(e) = bench_system(&spec, &bin, &o, &mut row) {
            println!("  {}: aborted: {e:#}", spec.label);
            row.errors.push(format!("aborted: {e:#}"));
        }
        interrupted()?;
        results.push((spec, row));
    }
    let mut four = Vec::new();
    for kind in [Kind::Wasmbeat, Kind::Heartbeat] {
        let name = if kind == Kind::Wasmbeat {
            "wasmbeat"
        } else {
            "heartbeat 3.0.6"
        };
        let label = format!("{name} four resources");
        if !(o.only.is_empty() || o.only.iter().any(|w| label.contains(w.as_str()))) {
            continue;
        }
        let servers = ["/usr/sbin/named", "/usr/sbin/apache2", "/usr/sbin/mariadbd"];
        if !available(kind) || !servers.iter().all(|b| Path::new(b).exists()) {
            println!("{label}: not installed, skipped");
            continue;
        }
        println!("{label}:");
        match crate::footprint::run(kind, &bin, o.idle) {
            Ok(v) => four.push(v),
            Err(e) => {
                println!("  {label}: failed: {e:#}");
                four.push(json!({"label": label, "system": format!("{kind:?}"), "errors": [format!("{e:#}")]}));
            }
        }
        interrupted()?;
    }
    let date = today();
    let report = crate::report::Report {
        file: file.unwrap_or_else(|| date.clone()),
        date,
        machine,
        note,
        runs: o.runs,
        idle_s: o.idle.as_secs(),
        stress_s: o.stress.as_secs(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let rows: Vec<(Spec, Value)> = results
        .iter()
        .map(|(s, r)| (s.clone(), row_json(s, r)))
        .collect();
    crate::report::write(&report, &rows, &four, &o.out_dir)
}

fn row_json(s: &Spec, r: &Row) -> Value {
    let sum = |v: &[f64]| {
        summary(v).map(|[a, b, c, d]| json!({"min": a, "median": b, "p95": c, "max": d}))
    };
    json!({
        "label": s.label,
        "system": format!("{:?}", s.kind),
        "interval_ms": ms(s.interval),
        "deadtime_ms": ms(s.deadtime),
        "initdead_ms": if s.kind == Kind::Keepalived { Value::Null } else { json!(ms(initdead(s.deadtime))) },
        "start_to_serving_ms": r.start_to_serving_ms,
        "linkdown_failover_ms": r.linkdown_failover_ms,
        "linkdown_failover": sum(&r.linkdown_failover_ms),
        "linkdown_failback_ms": r.linkdown_failback_ms,
        "linkdown_failback": sum(&r.linkdown_failback_ms),
        "sigkill_failover_ms": r.kill_failover_ms,
        "sigkill_failover": sum(&r.kill_failover_ms),
        "sigkill_restart_to_node1_ms": r.kill_restart_to_node1_ms,
        "sigkill_restart_to_node1": sum(&r.kill_restart_to_node1_ms),
        "idle": r.idle.map(|(a, s, ca, cs)| json!({
            "active": {"processes": a.processes, "rss_kib": a.rss_kib, "cpu_percent": ca},
            "standby": {"processes": s.processes, "rss_kib": s.rss_kib, "cpu_percent": cs},
        })),
        "stress": r.false_failovers.map(|(logged, seen, secs)| json!({
            "seconds": secs, "takeovers_logged_by_node2": logged, "client_saw_node2": seen,
        })),
        "errors": r.errors,
    })
}

/// Formatting helper for the report module.
pub fn fmt_cell(v: &Value) -> String {
    let arr: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    fmt_summary(&arr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[5.0]), Some([5.0, 5.0, 5.0, 5.0]));
        let v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        // 20 samples: median is the 10th, p95 the 19th smallest.
        assert_eq!(summary(&v), Some([1.0, 10.0, 19.0, 20.0]));
    }

    #[test]
    fn heartbeat_times_keep_whole_seconds_plain() {
        assert_eq!(hb_time(Duration::from_secs(5)), "5");
        assert_eq!(hb_time(Duration::from_millis(200)), "200ms");
    }
}

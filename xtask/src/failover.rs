//! Client-visible failover and failback, two-node footprint and false
//! failovers under stress, for one system at a time in a network-namespace
//! lab (node1, node2 and a client on one bridge; an HTTP responder per
//! node answering with the node's name; the client polls the VIP).
//!
//! Every number written comes from a run; nothing is filled in. Each system
//! gets a fresh lab, torn down (processes killed by recorded PID, namespaces
//! deleted) on every path, and every wait is bounded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use wasmbeat_lab::{http, Lab};

use crate::hub::{Hub, Impairment, PathFaults};
use crate::interrupt::{self, interrupted};
use crate::probe::first_answer;
use crate::stats::{ms, summary};
use crate::systems::{
    config_dir, cpu_percent, daemon_command, daemon_footprint, ha_cf, initdead, kill_tree,
    CpuMethod, Kind, Snapshot, Spec,
};

const NODE_ADDRS: [&str; 3] = ["10.77.80.1/24", "10.77.80.2/24", "10.77.80.10/24"];
const VIP: &str = "10.77.80.100";

/// What each system's row measures (from the CLI flags).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Failover runs per scenario.
    pub runs: usize,
    /// Idle period for the CPU/RSS footprint.
    pub idle: Duration,
    /// Duration of the stress test.
    pub stress: Duration,
}

/// A lab with one system's two daemons; kills their process trees on drop
/// before the lab deletes the namespaces.
struct Bench {
    spec: Spec,
    lab: Lab,
    work: PathBuf,
    bin: PathBuf,
    responder: PathBuf,
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

impl Bench {
    fn new(spec: &Spec, bin: &Path, responder: &Path) -> Result<Bench> {
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
            responder: responder.to_path_buf(),
            pids: [None, None],
        };
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            let mut responder = Command::new(&b.responder);
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

    /// When the client first got `want`'s answer at the VIP (see
    /// [`first_answer`]).
    fn first_answer(&self, want: &str, limit: Duration) -> Result<Option<Instant>> {
        first_answer(&self.lab.nodes[2], VIP, want, limit)
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

/// Both daemons' footprint at the end of the idle window, and their CPU
/// share over it with how it was measured.
#[derive(Debug)]
struct Idle {
    active: Snapshot,
    standby: Snapshot,
    active_cpu: (f64, CpuMethod),
    standby_cpu: (f64, CpuMethod),
}

/// One system's measured results.
#[derive(Debug, Default)]
pub struct Row {
    start_to_serving_ms: Option<f64>,
    linkdown_failover_ms: Vec<f64>,
    linkdown_failback_ms: Vec<f64>,
    kill_failover_ms: Vec<f64>,
    kill_restart_to_node1_ms: Vec<f64>,
    idle: Option<Idle>,
    false_failovers: Option<(usize, usize, f64)>,
    errors: Vec<String>,
}

impl Row {
    /// Record why the row stopped early (what was measured stays).
    pub fn aborted(&mut self, e: &anyhow::Error) {
        self.errors.push(format!("aborted: {e:#}"));
    }
}

/// Fills `row` as it goes, so an abort keeps what was measured.
pub fn bench_system(
    spec: &Spec,
    bin: &Path,
    responder: &Path,
    o: &Plan,
    row: &mut Row,
) -> Result<()> {
    let mut b = Bench::new(spec, bin, responder)?;
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
    let (ca, active_how) = cpu_percent(&a0, &a1, wall);
    let (cs, standby_how) = cpu_percent(&s0, &s1, wall);
    println!(
        "  {}: idle {:.0} s: active {} procs {} KiB {ca:.3}% CPU ({active_how:?}), standby {} procs {} KiB {cs:.3}% CPU ({standby_how:?})",
        spec.label,
        wall,
        a1.processes,
        a1.rss_kib,
        s1.processes,
        s1.rss_kib,
    );
    row.idle = Some(Idle {
        active: a1,
        standby: s1,
        active_cpu: (ca, active_how),
        standby_cpu: (cs, standby_how),
    });

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
    let one_percent = PathFaults {
        loss: 0.01,
        ..PathFaults::default()
    };
    let ports = b.lab.nodes.len();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let hub = Hub::start(&b.lab, Impairment::uniform(ports, one_percent), seed);
    let result = (|| -> Result<(usize, f64)> {
        let hub = hub?;
        let addr: SocketAddr = format!("{VIP}:80").parse().expect("static address");
        let t0 = Instant::now();
        let seen = b.lab.nodes[2].within(|| {
            let mut seen = 0usize;
            let mut last_node2 = false;
            while t0.elapsed() < d && !interrupt::requested() {
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

/// One row's numbers as the report's JSON.
pub fn row_json(s: &Spec, r: &Row) -> Value {
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
        "idle": r.idle.as_ref().map(|i| json!({
            "active": {"processes": i.active.processes, "rss_kib": i.active.rss_kib,
                "cpu_percent": i.active_cpu.0, "cpu_method": i.active_cpu.1.label()},
            "standby": {"processes": i.standby.processes, "rss_kib": i.standby.rss_kib,
                "cpu_percent": i.standby_cpu.0, "cpu_method": i.standby_cpu.1.label()},
        })),
        "stress": r.false_failovers.map(|(logged, seen, secs)| json!({
            "seconds": secs, "takeovers_logged_by_node2": logged, "client_saw_node2": seen,
        })),
        "errors": r.errors,
    })
}

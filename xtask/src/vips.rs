//! Many VIPs (issue 21): one group of 256 addresses, and 16 groups of 16,
//! moved by SIGKILL of the active node's daemon and brought back by its
//! restart. The figure is client-visible: from the event until the client
//! has had an answer from the expected node at *every* VIP.
//!
//! The client probes a sample of the addresses (the first and last of
//! every group, and every 16th) every 10 ms, with one prober thread per
//! address, so at most one probe in flight per address; once every sampled
//! address has answered, it probes every address not yet confirmed the
//! same way (at once, then every 10 ms), so the last VIP to move is found
//! within a probe period of moving. Probing all
//! 256 from the start would be 25,000 connections a second on the same two
//! cores as the daemons under test.
//!
//! Groups per system: wasmbeat and heartbeat take one haresources line per
//! group; keepalived one `vrrp_instance` per group (its own
//! virtual_router_id, every address in its `virtual_ipaddress`), the closest
//! equivalent: each instance fails over on its own, as a haresources line
//! does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use wasmbeat_lab::{http, Lab};

use crate::cadence::Cadence;
use crate::interrupt::{self, interrupted};
use crate::probe::{PROBE_EVERY, PROBE_TIMEOUT};
use crate::rounds::{Rounds, Scope};
use crate::stats::{ms, summary};
use crate::systems::{config_dir, daemon_command, ha_cf, initdead, kill_tree, Kind, Spec};

/// A /16, so 256 VIPs fit beside the nodes' own addresses.
const NODE_ADDRS: [&str; 3] = ["10.77.80.1/16", "10.77.80.2/16", "10.77.80.10/16"];

/// How the VIPs are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Groups (haresources lines, VRRP instances).
    pub groups: usize,
    /// Addresses per group.
    pub per_group: usize,
}

impl Shape {
    /// Every VIP, group by group.
    pub fn vips(&self) -> Vec<String> {
        (0..self.groups * self.per_group)
            .map(|k| format!("10.77.{}.{}", 90 + k / 250, 1 + k % 250))
            .collect()
    }

    /// Indices of the sampled VIPs: first and last of each group, every 16th.
    fn sample(&self) -> Vec<usize> {
        let n = self.groups * self.per_group;
        let mut v: Vec<usize> = (0..self.groups)
            .flat_map(|g| [g * self.per_group, (g + 1) * self.per_group - 1])
            .chain((0..n).step_by(16))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// One many-VIP row: a system, its timings, and the grouping.
#[derive(Debug, Clone)]
pub struct VipSpec {
    /// The system and timings (its `stress` is unused).
    pub spec: Spec,
    /// How the VIPs are grouped.
    pub shape: Shape,
}

/// Most runs of a heartbeat 3.0.6 many-VIP row. Its shell IPaddr adds the
/// addresses one after the other (191 s for 256 on this 2-core machine), so
/// one failover-and-failback run takes about 7 minutes: 10 runs of both
/// shapes would be over two hours of a full bench. Two runs show where it
/// stands, two orders of magnitude off the others.
pub const HEARTBEAT_RUNS: usize = 2;

impl VipSpec {
    /// The runs this row gets out of the bench's `runs`, and why fewer.
    pub fn runs(&self, runs: usize) -> (usize, Option<&'static str>) {
        match self.spec.kind {
            Kind::Heartbeat if runs > HEARTBEAT_RUNS => (
                HEARTBEAT_RUNS,
                Some("heartbeat's IPaddr adds addresses one at a time: ~7 min per run"),
            ),
            _ => (runs, None),
        }
    }
}

/// The many-VIP rows: 256 VIPs in one group and 16 groups of 16, at the
/// fast timings, for each system.
pub fn specs() -> Vec<VipSpec> {
    let m = Duration::from_millis;
    let mut out = Vec::new();
    for shape in [
        Shape {
            groups: 1,
            per_group: 256,
        },
        Shape {
            groups: 16,
            per_group: 16,
        },
    ] {
        let what = if shape.groups == 1 {
            "256 VIPs in one group".to_string()
        } else {
            format!("{} groups of {} VIPs", shape.groups, shape.per_group)
        };
        for (kind, label, interval, deadtime) in [
            (
                Kind::Wasmbeat,
                "wasmbeat (keepalive 50ms, deadtime 200ms)",
                m(50),
                m(200),
            ),
            (
                Kind::Keepalived,
                "keepalived advert_int 0.05",
                m(50),
                m(150),
            ),
            (
                Kind::Heartbeat,
                "heartbeat 3.0.6 (keepalive 50ms, deadtime 200ms)",
                m(50),
                m(200),
            ),
        ] {
            out.push(VipSpec {
                spec: Spec {
                    label: format!("{what}: {label}"),
                    kind,
                    interval,
                    deadtime,
                    stress: false,
                },
                shape,
            });
        }
    }
    out
}

/// A lab with one system's two daemons holding many VIPs; kills their
/// process trees on drop before the lab deletes the namespaces.
struct VipBench {
    v: VipSpec,
    vips: Vec<String>,
    lab: Lab,
    work: PathBuf,
    bin: PathBuf,
    pids: [Option<u32>; 2],
}

impl Drop for VipBench {
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

impl VipBench {
    fn new(v: &VipSpec, bin: &Path, responder: &Path) -> Result<VipBench> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        // Short: the daemon's control socket path must fit in sun_path.
        let work = std::env::temp_dir().join(format!(
            "wbv-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let lab = Lab::new("bv", &NODE_ADDRS)?;
        let b = VipBench {
            v: v.clone(),
            vips: v.shape.vips(),
            lab,
            work,
            bin: bin.to_path_buf(),
            pids: [None, None],
        };
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            let mut r = Command::new(responder);
            r.args(["http-responder", "--listen", "0.0.0.0:80", "--body", name]);
            b.lab.nodes[i].spawn(&r)?;
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

    fn groups(&self) -> impl Iterator<Item = &[String]> {
        self.vips.chunks(self.v.shape.per_group)
    }

    fn write_config(&self, i: usize) -> Result<()> {
        let s = &self.v.spec;
        let dir = self.dir(i);
        std::fs::create_dir_all(&dir)?;
        match s.kind {
            Kind::Wasmbeat | Kind::Heartbeat => {
                let etc = config_dir(s.kind, &dir)?;
                std::fs::write(
                    etc.join("ha.cf"),
                    ha_cf(s.kind, s.interval, s.deadtime, &self.log(i)),
                )?;
                // One haresources line per group, continued with `\`
                // every 16 addresses: heartbeat 3.0.6 reads physical lines
                // into a 5 KiB buffer (MAXLINE), and a longer one is cut and
                // its rest read as a line whose node name is an address
                // ("Bad nodename in haresources"). Both join continuations.
                let lines: Vec<String> = self
                    .groups()
                    .map(|g| {
                        let chunks: Vec<String> = g
                            .chunks(16)
                            .map(|c| {
                                c.iter()
                                    .map(|v| format!("IPaddr::{v}/16/eth0"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .collect();
                        format!("node1 {}\n", chunks.join(" \\\n    "))
                    })
                    .collect();
                std::fs::write(etc.join("haresources"), lines.concat())?;
            }
            Kind::Keepalived => {
                let prio = if i == 0 { 150 } else { 100 };
                let mut conf = format!(
                    "global_defs {{\n  router_id {}\n  vrrp_version 3\n  script_user root\n  \
                     enable_script_security\n}}\n",
                    Self::name(i)
                );
                for (g, vips) in self.groups().enumerate() {
                    let addrs: Vec<String> = vips
                        .iter()
                        .map(|v| format!("    {v}/16 dev eth0\n"))
                        .collect();
                    conf.push_str(&format!(
                        "vrrp_instance VI_{g} {{\n  state BACKUP\n  interface eth0\n  \
                         virtual_router_id {}\n  priority {prio}\n  advert_int {}\n  \
                         virtual_ipaddress {{\n{}  }}\n}}\n",
                        77 + g,
                        s.interval.as_secs_f64(),
                        addrs.concat()
                    ));
                }
                std::fs::write(dir.join("keepalived.conf"), conf)?;
            }
        }
        Ok(())
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let name = Self::name(i);
        let cmd = daemon_command(
            self.v.spec.kind,
            &self.bin,
            &self.work,
            &self.dir(i),
            &name,
            &self.log(i),
        );
        self.pids[i] = Some(self.lab.nodes[i].spawn(&cmd)?);
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(root) = self.pids[i].take() {
            kill_tree(&self.lab.nodes[i], root);
        }
    }

    /// How many of the VIPs node `i` has configured.
    fn held(&self, i: usize) -> usize {
        let text = self.lab.nodes[i].addrs("eth0").unwrap_or_default();
        let have: std::collections::HashSet<&str> = text
            .split_whitespace()
            .filter_map(|w| w.split('/').next())
            .collect();
        self.vips
            .iter()
            .filter(|v| have.contains(v.as_str()))
            .count()
    }

    /// node1 "reboots": every VIP it still has is gone.
    fn clear_node1(&self) -> Result<()> {
        let batch = self.work.join("del.batch");
        let lines: Vec<String> = self
            .vips
            .iter()
            .map(|v| format!("addr del {v}/16 dev eth0\n"))
            .collect();
        std::fs::write(&batch, lines.concat())?;
        // `-force`: carry on past the addresses it does not have.
        let _ = self.lab.nodes[0].ip(&["-force", "-batch", &batch.to_string_lossy()]);
        // A reboot empties /run (a tmpfs); heartbeat's private /run here is
        // node1's `run` directory and outlives the SIGKILL. IPaddr keeps a
        // lock per alias in /run/resource-agents and numbers new aliases
        // from the count of locks up to eth0:511 (resource-agents'
        // IPaddr), so after two kills of 256 VIPs the restarted node1
        // found no free alias, ResourceManager gave the group up and
        // neither node held it: the lab's doing, not a real reboot's.
        // node1's tree is dead here, so nothing has it mounted.
        if self.v.spec.kind == Kind::Heartbeat {
            let run = self.dir(0).join("run");
            for e in std::fs::read_dir(&run)? {
                let p = e?.path();
                if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        Ok(())
    }

    /// Probe (see the module doc) until the client has had `want`'s answer
    /// at every VIP; (time to the whole sample, time to every VIP) since
    /// `t0`, or None after `limit`.
    fn reach_all(
        &self,
        want: &str,
        t0: Instant,
        limit: Duration,
    ) -> Result<Option<(Duration, Duration)>> {
        let addrs: Vec<SocketAddr> = self
            .vips
            .iter()
            .map(|v| format!("{v}:80").parse().expect("lab address"))
            .collect();
        let sample = self.v.shape.sample();
        let in_sample: Vec<bool> = (0..addrs.len()).map(|k| sample.contains(&k)).collect();
        let all: Vec<usize> = (0..addrs.len()).collect();
        let rounds = Rounds::new(Scope::Sample);
        let found = self.lab.nodes[2].within(|| {
            let (tx, rx) = mpsc::channel::<(usize, Option<Instant>)>();
            std::thread::scope(|s| {
                // One prober per address (threads inherit the namespace of
                // their creator), each with at most one probe in flight: a
                // probe that hangs makes its thread miss rounds, not the
                // others.
                for (k, &addr) in addrs.iter().enumerate() {
                    let (tx, rounds, sampled) = (tx.clone(), &rounds, in_sample[k]);
                    s.spawn(move || {
                        let mut seen = 0;
                        while let Some(round) = rounds.next(seen, sampled) {
                            seen = round;
                            let ok = http::get_body(addr, PROBE_TIMEOUT).as_deref() == Some(want);
                            let _ = tx.send((k, ok.then(Instant::now)));
                            if ok {
                                return;
                            }
                        }
                    });
                }
                let mut reached: Vec<Option<Instant>> = vec![None; addrs.len()];
                let last = |reached: &[Option<Instant>], ks: &[usize]| {
                    ks.iter()
                        .map(|k| reached[*k])
                        .collect::<Option<Vec<Instant>>>()
                        .and_then(|v| v.into_iter().max())
                };
                let mut cadence = Cadence::new(PROBE_EVERY);
                let mut scope = Scope::Sample;
                rounds.open(scope);
                let mut due = cadence.advance();
                let outcome = loop {
                    // Until the next round is due, take answers as they
                    // come: the one that completes the sample opens a
                    // round of every address at once, not up to a round
                    // later.
                    while let Ok((k, at)) =
                        rx.recv_timeout(due.saturating_duration_since(Instant::now()))
                    {
                        if reached[k].is_none() {
                            reached[k] = at;
                        }
                        if scope == Scope::Sample && last(&reached, &sample).is_some() {
                            scope = Scope::All;
                            rounds.open(scope);
                        }
                    }
                    if let (Some(s_at), Some(a_at)) =
                        (last(&reached, &sample), last(&reached, &all))
                    {
                        break Some((
                            s_at.saturating_duration_since(t0),
                            a_at.saturating_duration_since(t0),
                        ));
                    }
                    if t0.elapsed() >= limit || interrupt::requested() {
                        break None;
                    }
                    if Instant::now() >= due {
                        rounds.open(scope);
                        due = cadence.advance();
                    }
                };
                // Probes in flight end within their timeout.
                rounds.stop();
                outcome
            })
        })?;
        interrupted()?;
        Ok(found)
    }

    /// Wait until node1 alone holds every VIP and the client reaches it at
    /// every one, then past the start-up grace (see failover.rs).
    fn settle_on_node1(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            interrupted()?;
            let (a, b) = (self.held(0), self.held(1));
            if a == self.vips.len() && b == 0 {
                break;
            }
            if start.elapsed() > limit {
                bail!(
                    "{}: did not settle on node1 within {limit:?} (node1 holds {a}, node2 {b} of {})",
                    self.v.spec.label,
                    self.vips.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.reach_all("node1", Instant::now(), limit)?.is_none() {
            bail!(
                "{}: client does not reach node1 at every VIP",
                self.v.spec.label
            );
        }
        let grace = match self.v.spec.kind {
            Kind::Keepalived => Duration::ZERO,
            Kind::Wasmbeat | Kind::Heartbeat => Duration::from_millis(5500),
        };
        std::thread::sleep(
            (self.v.spec.interval * 4)
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
                s.push_str(&l[..l.len().min(400)]);
                s.push('\n');
            }
        }
        s
    }
}

/// One many-VIP row's measurements.
#[derive(Debug, Default)]
pub struct VipRow {
    /// Fewer runs than the bench's, and why ([`VipSpec::runs`]).
    capped: Option<(usize, &'static str)>,
    start_to_all_serving_ms: Option<f64>,
    failover_sample_ms: Vec<f64>,
    failover_all_ms: Vec<f64>,
    failback_sample_ms: Vec<f64>,
    failback_all_ms: Vec<f64>,
    errors: Vec<String>,
}

impl VipRow {
    /// Record why the row stopped early (what was measured stays).
    pub fn aborted(&mut self, e: &anyhow::Error) {
        self.errors.push(format!("aborted: {e:#}"));
    }
}

/// Measure one many-VIP row; fills `row` as it goes.
pub fn bench_vips(
    v: &VipSpec,
    bin: &Path,
    responder: &Path,
    runs: usize,
    row: &mut VipRow,
) -> Result<()> {
    let (runs, why) = v.runs(runs);
    row.capped = why.map(|w| (runs, w));
    let mut b = VipBench::new(v, bin, responder)?;
    let label = &v.spec.label;
    // heartbeat's shell IPaddr takes ~60-75 ms per address on a quiet
    // machine, one after the other, and numbers `eth0:N` aliases by
    // scanning the ones there: on a loaded 2-core machine 256 took
    // ~0.8 s each. Give it what it needs to finish rather than an abort.
    let limit = match v.spec.kind {
        Kind::Heartbeat => Duration::from_secs(900),
        Kind::Wasmbeat | Kind::Keepalived => Duration::from_secs(120),
    };

    let t0 = Instant::now();
    b.start(0)?;
    match b.reach_all("node1", t0, limit)? {
        Some((_, all)) => row.start_to_all_serving_ms = Some(ms(all)),
        None => bail!("{label}: node1 never served every VIP\n{}", b.log_tail()),
    }
    println!(
        "  {label}: node1 alone serves all {} VIPs {:.0} ms after start",
        b.vips.len(),
        row.start_to_all_serving_ms.unwrap_or_default()
    );
    b.start(1)?;
    std::thread::sleep(initdead(v.spec.deadtime) + v.spec.deadtime * 2 + Duration::from_secs(1));
    b.settle_on_node1(limit).with_context(|| b.log_tail())?;

    for run in 0..runs {
        interrupted()?;
        let r = (|| -> Result<()> {
            let t0 = Instant::now();
            b.kill(0);
            let Some((fs, fa)) = b.reach_all("node2", t0, limit)? else {
                bail!(
                    "the client did not reach node2 at every VIP within {limit:?} of the SIGKILL (node2 holds {})",
                    b.held(1)
                );
            };
            b.clear_node1()?;
            let t1 = Instant::now();
            b.start(0)?;
            let Some((bs, ba)) = b.reach_all("node1", t1, limit)? else {
                bail!(
                    "the client did not reach node1 at every VIP within {limit:?} of its restart (node1 holds {})",
                    b.held(0)
                );
            };
            row.failover_sample_ms.push(ms(fs));
            row.failover_all_ms.push(ms(fa));
            row.failback_sample_ms.push(ms(bs));
            row.failback_all_ms.push(ms(ba));
            println!(
                "  {label} run {}: failover sample {:.0} ms, every VIP {:.0} ms; back on restarted node1: sample {:.0} ms, every VIP {:.0} ms",
                run + 1,
                ms(fs),
                ms(fa),
                ms(bs),
                ms(ba)
            );
            Ok(())
        })();
        if let Err(e) = r {
            row.errors.push(format!("run {}: {e:#}", run + 1));
            println!("  {label} run {}: {e:#}", run + 1);
            if b.pids[0].is_none() {
                b.clear_node1()?;
                b.start(0)?;
            }
        }
        // Only a next run needs the cluster home again: after a failed
        // last run of heartbeat's that wait alone was up to 900 s.
        if run + 1 < runs {
            b.settle_on_node1(limit).with_context(|| b.log_tail())?;
        }
    }
    Ok(())
}

/// One row's numbers as the report's JSON.
pub fn row_json(v: &VipSpec, r: &VipRow) -> Value {
    let sum = |x: &[f64]| {
        summary(x).map(|[a, b, c, d]| json!({"min": a, "median": b, "p95": c, "max": d}))
    };
    json!({
        "label": v.spec.label,
        "system": format!("{:?}", v.spec.kind),
        "groups": v.shape.groups,
        "per_group": v.shape.per_group,
        "interval_ms": ms(v.spec.interval),
        "deadtime_ms": ms(v.spec.deadtime),
        "start_to_all_serving_ms": r.start_to_all_serving_ms,
        "failover_sample_ms": r.failover_sample_ms,
        "failover_all_ms": r.failover_all_ms,
        "failover_all": sum(&r.failover_all_ms),
        "failback_sample_ms": r.failback_sample_ms,
        "failback_all_ms": r.failback_all_ms,
        "failback_all": sum(&r.failback_all_ms),
        "errors": r.errors,
        "runs_capped": r.capped.map(|(n, why)| json!({"runs": n, "why": why})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_are_distinct_lab_addresses_and_the_sample_covers_every_group() {
        let s = Shape {
            groups: 16,
            per_group: 16,
        };
        let v = s.vips();
        assert_eq!(v.len(), 256);
        assert_eq!(
            v.iter().collect::<std::collections::HashSet<_>>().len(),
            256
        );
        assert_eq!(v[0], "10.77.90.1");
        assert_eq!(v[255], "10.77.91.6");
        let sample = s.sample();
        for g in 0..16 {
            assert!(sample.contains(&(g * 16)) && sample.contains(&(g * 16 + 15)));
        }
        let one = Shape {
            groups: 1,
            per_group: 256,
        }
        .sample();
        assert_eq!(one.len(), 17, "{one:?}");
    }

    #[test]
    fn only_heartbeat_rows_run_fewer_times_and_say_why() {
        for v in specs() {
            let (n, why) = v.runs(10);
            match v.spec.kind {
                Kind::Heartbeat => assert_eq!((n, why.is_some()), (HEARTBEAT_RUNS, true)),
                _ => assert_eq!((n, why), (10, None), "{}", v.spec.label),
            }
            assert_eq!(v.runs(1), (1, None), "a quick run is not capped further");
        }
    }
}

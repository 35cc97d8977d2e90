//! Uplink loss (issue 18): two networks (`wasmbeat_lab::uplinks`: a
//! heartbeat link between the nodes only, a public LAN with the client and
//! a router namespace that is the ping node). Event: node1's public port
//! goes down at the switch (its `eth0` loses carrier) while the heartbeat
//! link stays up. Measured client-visible, as the other rows: from the cut
//! until the client gets an answer from node2 at the VIP, and from the
//! port coming back until node1 answers again (`auto_failback on` /
//! higher VRRP priority).
//!
//! How each system notices the lost uplink:
//! - wasmbeat: `ping <router>` + `respawn ... ipfail` (the built-in
//!   ipfail), optionally `track_link eth0` (carrier loss at once);
//! - heartbeat 3.0.6: `ping <router>` + its own ipfail, respawned;
//! - keepalived: VRRP adverts on the heartbeat link, the VIP on `eth0`,
//!   `track_interface { eth0 }` (carrier loss puts node1 in FAULT).
//!
//! Timings are heartbeat's ipfail interop lab's (keepalive 500 ms,
//! deadtime 4 s, deadping 2 s; known to work with the real ipfail), the
//! same for wasmbeat; keepalived's advert_int matches the keepalive.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use wasmbeat_lab::uplinks::{self, CLIENT_NODE, HB_DEV, ROUTER, VIP};
use wasmbeat_lab::Lab;

use crate::interrupt::interrupted;
use crate::probe;
use crate::stats::{ms, summary};
use crate::systems::{
    available, config_dir, daemon_command, ha_cf_on, hb_time, initdead, kill_tree, Kind, Spec,
};

/// Heartbeat's ipfail, which both heartbeat and wasmbeat are told to
/// respawn (wasmbeat runs its built-in one for this line).
pub const IPFAIL: &str = "/usr/libexec/heartbeat/ipfail";
const KEEPALIVE: Duration = Duration::from_millis(500);
const DEADTIME: Duration = Duration::from_secs(4);
const DEADPING: Duration = Duration::from_secs(2);

/// One uplink-loss row.
#[derive(Debug, Clone)]
pub struct UplinkSpec {
    /// The system and its timings (`interval`: keepalive or advert_int).
    pub spec: Spec,
    /// deadping (heartbeat-style rows).
    pub deadping: Duration,
    /// wasmbeat's `track_link eth0`.
    pub track_link: bool,
}

/// The uplink-loss rows: wasmbeat with ping nodes + ipfail, the same with
/// `track_link`, heartbeat 3.0.6 with its ipfail, keepalived with
/// `track_interface`.
pub fn specs() -> Vec<UplinkSpec> {
    // As the other rows spell times: "50ms", "5s".
    let t = format!(
        "keepalive {}, deadtime {}s, deadping {}s",
        hb_time(KEEPALIVE),
        DEADTIME.as_secs(),
        DEADPING.as_secs()
    );
    let row = |kind, label: String, track_link| UplinkSpec {
        spec: Spec {
            label,
            kind,
            interval: KEEPALIVE,
            deadtime: DEADTIME,
            stress: false,
        },
        deadping: DEADPING,
        track_link,
    };
    vec![
        row(
            Kind::Wasmbeat,
            format!("uplink loss: wasmbeat ping + ipfail ({t})"),
            false,
        ),
        row(
            Kind::Wasmbeat,
            format!("uplink loss: wasmbeat ping + ipfail + track_link eth0 ({t})"),
            true,
        ),
        row(
            Kind::Heartbeat,
            format!("uplink loss: heartbeat 3.0.6 ping + ipfail ({t})"),
            false,
        ),
        row(
            Kind::Keepalived,
            format!(
                "uplink loss: keepalived track_interface eth0 (advert_int {} on {HB_DEV})",
                KEEPALIVE.as_secs_f64()
            ),
            false,
        ),
    ]
}

/// The ha.cf lines that make a heartbeat-style node watch its uplink: the
/// router on the public LAN as ping node, ipfail respawned (wasmbeat runs
/// its built-in one for this line), and for wasmbeat optionally eth0's
/// carrier (heartbeat refuses `track_link`).
fn ipfail_lines(u: &UplinkSpec) -> String {
    let mut more = format!(
        "deadping {}\nping {ROUTER}\nrespawn hacluster {IPFAIL}\n",
        hb_time(u.deadping)
    );
    if u.track_link {
        more.push_str("track_link eth0\n");
    }
    more
}

/// Why this row cannot be measured here, if it cannot.
pub fn missing(u: &UplinkSpec) -> Option<String> {
    if !available(u.spec.kind) {
        return Some(format!("{:?} is not installed", u.spec.kind));
    }
    if u.spec.kind == Kind::Heartbeat && !Path::new(IPFAIL).exists() {
        return Some(format!("heartbeat's {IPFAIL} is not installed"));
    }
    None
}

/// The lab with one system's two daemons; kills their process trees on
/// drop before the lab deletes the namespaces.
struct UplinkBench {
    u: UplinkSpec,
    lab: Lab,
    work: PathBuf,
    bin: PathBuf,
    pids: [Option<u32>; 2],
}

impl Drop for UplinkBench {
    fn drop(&mut self) {
        for i in 0..2 {
            if let Some(root) = self.pids[i].take() {
                kill_tree(&self.lab.nodes[i], root);
            }
        }
        if std::env::var_os("WBB_KEEP").is_some() {
            println!("kept {}", self.work.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

impl UplinkBench {
    fn new(u: &UplinkSpec, bin: &Path, responder: &Path) -> Result<UplinkBench> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        // Short: the daemon's control socket path must fit in sun_path.
        let work = std::env::temp_dir().join(format!(
            "wbu-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let b = UplinkBench {
            u: u.clone(),
            lab: uplinks::two_networks("bu")?,
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

    fn write_config(&self, i: usize) -> Result<()> {
        let s = &self.u.spec;
        let dir = self.dir(i);
        std::fs::create_dir_all(&dir)?;
        match s.kind {
            Kind::Wasmbeat | Kind::Heartbeat => {
                let etc = config_dir(s.kind, &dir)?;
                // Heartbeats on the heartbeat link only.
                std::fs::write(
                    etc.join("ha.cf"),
                    ha_cf_on(
                        s.kind,
                        s.interval,
                        s.deadtime,
                        &self.log(i),
                        HB_DEV,
                        &ipfail_lines(&self.u),
                    ),
                )?;
                std::fs::write(
                    etc.join("haresources"),
                    format!("node1 IPaddr::{VIP}/24/eth0\n"),
                )?;
            }
            Kind::Keepalived => {
                let prio = if i == 0 { 150 } else { 100 };
                // Adverts on the heartbeat link as heartbeat's go there;
                // the VIP on the public LAN; eth0's carrier tracked.
                std::fs::write(
                    dir.join("keepalived.conf"),
                    format!(
                        "global_defs {{\n  router_id {}\n  vrrp_version 3\n  \
                         script_user root\n  enable_script_security\n}}\n\
                         vrrp_instance VI_1 {{\n  state BACKUP\n  interface {HB_DEV}\n  \
                         track_interface {{\n    eth0\n  }}\n  \
                         virtual_router_id 78\n  priority {prio}\n  advert_int {}\n  \
                         virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n",
                        Self::name(i),
                        s.interval.as_secs_f64()
                    ),
                )?;
            }
        }
        Ok(())
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let name = Self::name(i);
        let cmd = daemon_command(
            self.u.spec.kind,
            &self.bin,
            &self.work,
            &self.dir(i),
            &name,
            &self.log(i),
        );
        self.pids[i] = Some(self.lab.nodes[i].spawn(&cmd)?);
        Ok(())
    }

    fn holds_vip(&self, i: usize) -> bool {
        self.lab.nodes[i].has_addr("eth0", VIP)
    }

    fn first_answer(&self, want: &str, limit: Duration) -> Result<Option<Instant>> {
        probe::first_answer(&self.lab.nodes[CLIENT_NODE], VIP, want, limit)
    }

    /// Wait until node1 alone holds the VIP and the client reaches it,
    /// then `quiet` more so ping counts and hysteresis timers are back to
    /// normal before the next cut.
    fn settle_on_node1(&self, limit: Duration, quiet: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.holds_vip(0) || self.holds_vip(1) {
            interrupted()?;
            if start.elapsed() > limit {
                bail!(
                    "did not settle on node1 within {limit:?} (node1 {} node2 {})",
                    self.holds_vip(0),
                    self.holds_vip(1)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.first_answer("node1", limit)?.is_none() {
            bail!("the client does not reach node1 after settling");
        }
        let w = Instant::now();
        while w.elapsed() < quiet {
            interrupted()?;
            std::thread::sleep(Duration::from_millis(100));
        }
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

/// One uplink row's measurements.
#[derive(Debug, Default)]
pub struct UplinkRow {
    start_to_serving_ms: Option<f64>,
    failover_ms: Vec<f64>,
    failback_ms: Vec<f64>,
    errors: Vec<String>,
}

impl UplinkRow {
    /// Record why the row stopped early (what was measured stays).
    pub fn aborted(&mut self, e: &anyhow::Error) {
        self.errors.push(format!("aborted: {e:#}"));
    }

    /// Record why the row was not measured at all.
    pub fn not_measured(why: &str) -> UplinkRow {
        UplinkRow {
            errors: vec![format!("not measured: {why}")],
            ..UplinkRow::default()
        }
    }
}

/// How long to leave a settled cluster alone before a cut: heartbeat-style
/// nodes need their ping node counted (deadping after it answers) and
/// ipfail's counts exchanged (the interop lab waits 3 s for that);
/// keepalived a few adverts.
fn quiet(u: &UplinkSpec) -> Duration {
    match u.spec.kind {
        Kind::Keepalived => u.spec.interval * 4,
        Kind::Wasmbeat | Kind::Heartbeat => u.deadping * 2 + Duration::from_secs(3),
    }
}

/// Measure one uplink row; fills `row` as it goes.
pub fn bench_uplink(
    u: &UplinkSpec,
    bin: &Path,
    responder: &Path,
    runs: usize,
    row: &mut UplinkRow,
) -> Result<()> {
    let mut b = UplinkBench::new(u, bin, responder)?;
    let label = &u.spec.label;
    // Bounds only against hanging (each failed run is reported, not
    // measured): heartbeat's IPaddr forks a shell chain taking a second or
    // two on a loaded machine; the interop lab's bounds were deadping + 8 s
    // away and 2 x deadping + 10 s home.
    let away = u.deadping + Duration::from_secs(15);
    let home = u.deadping * 2 + Duration::from_secs(30);
    let start_limit = initdead(u.spec.deadtime) + Duration::from_secs(60);

    // Both nodes start together, as after a power cut.
    let t0 = Instant::now();
    b.start(0)?;
    b.start(1)?;
    match b.first_answer("node1", start_limit)? {
        Some(at) => row.start_to_serving_ms = Some(ms(at.duration_since(t0))),
        None => bail!("{label}: node1 never served the VIP\n{}", b.log_tail()),
    }
    println!(
        "  {label}: node1 serves the VIP {:.0} ms after both started",
        row.start_to_serving_ms.unwrap_or_default()
    );
    // heartbeat (and wasmbeat) advertise a longer deadtime during a
    // node's first seconds; past initdead both ipfails have started.
    let first_quiet = match u.spec.kind {
        Kind::Keepalived => quiet(u),
        Kind::Wasmbeat | Kind::Heartbeat => quiet(u).max(initdead(u.spec.deadtime)),
    };
    b.settle_on_node1(home, first_quiet)
        .with_context(|| b.log_tail())?;

    for run in 0..runs {
        interrupted()?;
        let r = (|| -> Result<()> {
            let t0 = Instant::now();
            b.lab.set_link(0, false)?;
            let Some(at) = b.first_answer("node2", away)? else {
                bail!(
                    "node2 did not serve the VIP within {away:?} of node1's uplink cut (node1 holds it: {}, node2: {})",
                    b.holds_vip(0),
                    b.holds_vip(1)
                );
            };
            let fo = ms(at.duration_since(t0));
            let t1 = Instant::now();
            b.lab.set_link(0, true)?;
            let Some(at) = b.first_answer("node1", home)? else {
                bail!("node1 did not serve the VIP again within {home:?} of its uplink's return");
            };
            let fb = ms(at.duration_since(t1));
            row.failover_ms.push(fo);
            row.failback_ms.push(fb);
            println!(
                "  {label} run {}: failover {fo:.0} ms, failback {fb:.0} ms",
                run + 1
            );
            Ok(())
        })();
        if let Err(e) = r {
            let _ = b.lab.set_link(0, true);
            row.errors.push(format!("run {}: {e:#}", run + 1));
            println!("  {label} run {}: {e:#}", run + 1);
            if std::env::var_os("WBB_VERBOSE").is_some() {
                println!("{}", b.log_tail());
            }
        }
        b.settle_on_node1(home, quiet(u))
            .with_context(|| b.log_tail())?;
    }
    Ok(())
}

/// One row's numbers as the report's JSON.
pub fn row_json(u: &UplinkSpec, r: &UplinkRow) -> Value {
    let sum = |x: &[f64]| {
        summary(x).map(|[a, b, c, d]| json!({"min": a, "median": b, "p95": c, "max": d}))
    };
    let heartbeat_style = u.spec.kind != Kind::Keepalived;
    json!({
        "label": u.spec.label,
        "system": format!("{:?}", u.spec.kind),
        "interval_ms": ms(u.spec.interval),
        "deadtime_ms": heartbeat_style.then(|| ms(u.spec.deadtime)),
        "deadping_ms": heartbeat_style.then(|| ms(u.deadping)),
        "track_link": u.track_link,
        "start_to_serving_ms": r.start_to_serving_ms,
        "failover_ms": r.failover_ms,
        "failover": sum(&r.failover_ms),
        "failback_ms": r.failback_ms,
        "failback": sum(&r.failback_ms),
        "errors": r.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_selected_by_only_uplink_and_states_its_timings() {
        let rows = specs();
        assert_eq!(rows.len(), 4);
        for u in &rows {
            assert!(u.spec.label.contains("uplink"), "{}", u.spec.label);
        }
        let kinds: Vec<Kind> = rows.iter().map(|u| u.spec.kind).collect();
        assert!(kinds.contains(&Kind::Heartbeat) && kinds.contains(&Kind::Keepalived));
        assert!(rows.iter().any(|u| u.track_link));
        assert!(rows[0]
            .spec
            .label
            .contains("keepalive 500ms, deadtime 4s, deadping 2s"));
        assert!(rows[3].spec.label.contains("advert_int 0.5"));
    }

    #[test]
    fn heartbeat_style_nodes_beat_on_the_link_and_ping_the_router() {
        let rows = specs();
        let cf = |u: &UplinkSpec| {
            ha_cf_on(
                u.spec.kind,
                u.spec.interval,
                u.spec.deadtime,
                Path::new("/tmp/x.log"),
                HB_DEV,
                &ipfail_lines(u),
            )
        };
        let plain = cf(&rows[0]);
        for line in [
            "keepalive 500ms",
            "deadtime 4",
            "deadping 2",
            "bcast hb0",
            "ping 10.88.0.254",
            "respawn hacluster /usr/libexec/heartbeat/ipfail",
            "auto_failback on",
        ] {
            assert!(plain.lines().any(|l| l == line), "{line} missing:\n{plain}");
        }
        assert!(!plain.contains("bcast eth0") && !plain.contains("track_link"));
        assert!(cf(&rows[1]).lines().any(|l| l == "track_link eth0"));
        let hb = cf(&rows[2]);
        assert!(hb.contains("logfile /tmp/x.log") && !hb.contains("track_link"));
    }
}

//! The outside observer and the client: threads that watch the cluster
//! without asking it anything. The observer reads both nodes' addresses
//! and whether each daemon process exists; the client sends an HTTP
//! request to the VIP every 10 ms from its own namespace.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmbeat_lab::{http, Lab, Netns};

use super::verdict::Sample;
use crate::cadence::Cadence;

/// Client probe cadence.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);
/// A probe unanswered for this long failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Observer cadence.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What the run says about each node's daemon, shared with the observer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Daemon {
    /// The recorded PID that roots the daemon's process tree.
    pub pid: Option<u32>,
    /// Deliberately not running (killed or stopped by the run).
    pub down_on_purpose: bool,
}

/// Whether `pid` exists and has not exited (a zombie has exited).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .is_some_and(|dead| !dead)
}

/// Sample both nodes every [`SAMPLE_EVERY`] until `stop`.
pub fn observe(
    lab: &Lab,
    vip: &str,
    daemons: &Mutex<[Daemon; 2]>,
    stop: &AtomicBool,
    t0: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut cadence = Cadence::new(SAMPLE_EVERY);
    while !stop.load(Ordering::Relaxed) {
        let at = t0.elapsed();
        let holds = [
            lab.nodes[0].has_addr("eth0", vip),
            lab.nodes[1].has_addr("eth0", vip),
        ];
        let d = *daemons.lock().unwrap_or_else(|p| p.into_inner());
        let alive = [0, 1].map(|i| d[i].pid.is_some_and(running));
        out.push(Sample {
            at,
            holds,
            alive,
            down_on_purpose: [d[0].down_on_purpose, d[1].down_on_purpose],
        });
        cadence.wait();
    }
    out
}

/// From the client's namespace, request `http://VIP/` every
/// [`PROBE_EVERY`] (each on its own thread, so a hanging connect does not
/// slow the cadence) until `stop`; returns (sent at, answered) in send order.
pub fn probe(client: &Netns, vip: &str, stop: &AtomicBool, t0: Instant) -> Vec<(Duration, bool)> {
    let addr: SocketAddr = format!("{vip}:80").parse().expect("VIP is an address");
    let results = Mutex::new(Vec::new());
    let _ = client.within(|| {
        std::thread::scope(|s| {
            let mut cadence = Cadence::new(PROBE_EVERY);
            while !stop.load(Ordering::Relaxed) {
                let results = &results;
                s.spawn(move || {
                    let at = t0.elapsed();
                    let ok = http::get_body(addr, PROBE_TIMEOUT).is_some();
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((at, ok));
                });
                cadence.wait();
            }
        })
    });
    let mut v = results.into_inner().unwrap_or_else(|p| p.into_inner());
    v.sort_by_key(|(at, _)| *at);
    v
}

/// One daemon's open files, threads and resident memory at a moment.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Since the run started.
    pub at: Duration,
    /// Which node.
    pub node: usize,
    /// The daemon process measured.
    pub pid: u32,
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// Resident set, KiB.
    pub rss_kib: u64,
}

/// Measure `pid` now (None if it is gone).
pub fn footprint(node: usize, pid: u32, at: Duration) -> Option<Footprint> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Footprint {
        at,
        node,
        pid,
        fds,
        threads: field("Threads:")? as usize,
        rss_kib: field("VmRSS:")?,
    })
}

/// Processes whose network namespace is `ns` (by the namespace's inode).
pub fn processes_in(ns: &Netns) -> Vec<(u32, String)> {
    let Ok(want) = std::fs::metadata(format!("/run/netns/{}", ns.name)) else {
        return Vec::new();
    };
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for pid in crate::systems::all_pids() {
        let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if m.ino() == want.ino() && m.dev() == want.dev() && running(pid) {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            out.push((pid, cmd.trim().to_string()));
        }
    }
    out
}

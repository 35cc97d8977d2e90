//! The systems under test (wasmbeat, heartbeat 3.0.6, keepalived): how
//! each is configured, started, killed and measured. Shared by the
//! failover and footprint benchmarks and read by the report.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
pub use wasmbeat_lab::heartbeat::HEARTBEAT;
use wasmbeat_lab::Netns;

/// Debian's keepalived.
pub const KEEPALIVED: &str = "/usr/sbin/keepalived";

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

/// A time as ha.cf spells it: whole seconds plain, else `<n>ms`.
pub fn hb_time(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The configured initdead: the same for wasmbeat and heartbeat.
pub fn initdead(deadtime: Duration) -> Duration {
    (deadtime * 2).max(Duration::from_secs(2))
}

/// The PIDs in /proc now.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// All processes on the machine: pid -> (ppid, utime+stime ticks, rss pages).
fn proc_table() -> Vec<(u32, u32, u64, u64)> {
    let mut out = Vec::new();
    for pid in all_pids() {
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

/// The PIDs of `root` and all its descendants.
pub fn tree_pids(root: u32) -> Vec<u32> {
    tree(root).into_iter().map(|(pid, ..)| pid).collect()
}

/// Footprint of one daemon at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Processes counted.
    pub processes: usize,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// Every live thread of those processes with its time on a CPU so far,
    /// in ns (`/proc/PID/task/TID/schedstat`, the scheduler's own count).
    pub thread_run_ns: Vec<(u32, u64)>,
}

/// Time on a CPU, summed over `pid`'s live threads: (tid, ns) each.
fn thread_run_ns(pid: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let text = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
            Some((tid, text.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// How the CPU share over a window was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMethod {
    /// The scheduler's run time of every thread, to the nanosecond.
    SchedulerNs,
    /// utime + stime in clock ticks: the kernel charges a whole tick (4 ms
    /// at HZ=250) to whatever runs when it fires, so a daemon that wakes
    /// 20 times a second for ~0.1 ms is sampled, not measured. Used only
    /// when a thread ended inside the window (its run time left with it).
    Ticks,
}

impl CpuMethod {
    /// The name a report's JSON carries (`cpu_method`), read back by the
    /// markdown to mark tick-counted figures.
    pub fn label(self) -> &'static str {
        match self {
            CpuMethod::SchedulerNs => "SchedulerNs",
            CpuMethod::Ticks => "Ticks",
        }
    }
}

/// CPU % of one daemon between two snapshots `wall_s` seconds apart.
///
/// Prefers the scheduler's per-thread run time: at keepalive 50 ms a
/// daemon's 60 s idle window is ~50 ticks, and the tick count scattered
/// between runs by as much as the gap between the systems compared.
pub fn cpu_percent(before: &Snapshot, after: &Snapshot, wall_s: f64) -> (f64, CpuMethod) {
    let wall_s = wall_s.max(1e-9);
    let run_ns = |s: &Snapshot, tid: u32| s.thread_run_ns.iter().find(|t| t.0 == tid).map(|t| t.1);
    let all_alive = before
        .thread_run_ns
        .iter()
        .all(|&(tid, _)| run_ns(after, tid).is_some());
    if all_alive && !after.thread_run_ns.is_empty() {
        // A thread born in the window ran all of its time inside it.
        let ns: u64 = after
            .thread_run_ns
            .iter()
            .map(|&(tid, now)| now.saturating_sub(run_ns(before, tid).unwrap_or(0)))
            .sum();
        return (ns as f64 / 1e9 / wall_s * 100.0, CpuMethod::SchedulerNs);
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64;
    (ticks / hz / wall_s * 100.0, CpuMethod::Ticks)
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
    ha_cf_on(kind, keepalive, deadtime, log, "eth0", "")
}

/// [`ha_cf`] with heartbeats broadcast on `dev` and `more` directives
/// (ping nodes, ipfail) appended.
pub fn ha_cf_on(
    kind: Kind,
    keepalive: Duration,
    deadtime: Duration,
    log: &Path,
    dev: &str,
    more: &str,
) -> String {
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
         bcast {dev}\nauto_failback on\nnode node1\nnode node2\n{more}",
        hb_time(keepalive),
        hb_time(deadtime),
        hb_time(deadtime / 2),
        hb_time(initdead(deadtime)),
    )
}

/// Node `name`'s state directory (UUID, generation) under `work`: each
/// node its own, as on two machines.
pub fn state_dir(work: &Path, name: &str) -> PathBuf {
    work.join(format!("{name}.state"))
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
                    "exec {} run --config-dir {} --node {name} --runtime-dir {} --cache-dir {} --state-dir {} 2>>{}",
                    bin.display(),
                    dir.display(),
                    work.join(format!("{name}.run")).display(),
                    work.join("agent-cache").display(),
                    state_dir(work, name).display(),
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
            // No `-D` (log detail), as Debian's unit runs it: with it,
            // keepalived logs two lines per gratuitous ARP, and 16
            // instances at advert_int 0.05 wrote 37 MB in two minutes;
            // the stalls made the backup miss adverts, time out, take
            // over and be pushed back again, over and over, and the
            // 16-group failback never settled.
            let mut c = Command::new("sh");
            c.args([
                "-c",
                &format!(
                    "exec {KEEPALIVED} -n -l -P -f {d}/keepalived.conf -p {d}/k.pid -r {d}/v.pid >>{l} 2>&1",
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

/// Send `signal` to every process of the tree rooted at `root` (a tree
/// the caller started).
pub fn signal_tree(root: u32, signal: i32) {
    for (pid, ..) in tree(root) {
        // SAFETY: signalling processes of a tree we started.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

/// SIGKILL the process tree rooted at `root` (spawned through `ns`) at
/// once: stop every process first so none can notice its parent dying
/// and shut down gracefully.
pub fn kill_tree(ns: &Netns, root: u32) {
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
        thread_run_ns: procs.iter().flat_map(|p| thread_run_ns(p.0)).collect(),
    }
}

/// Whether the system is installed here.
pub fn available(kind: Kind) -> bool {
    match kind {
        Kind::Wasmbeat => true,
        Kind::Heartbeat => Path::new(HEARTBEAT).exists(),
        Kind::Keepalived => Path::new(KEEPALIVED).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_times_keep_whole_seconds_plain() {
        assert_eq!(hb_time(Duration::from_secs(5)), "5");
        assert_eq!(hb_time(Duration::from_millis(200)), "200ms");
    }

    fn snap(ticks: u64, threads: &[(u32, u64)]) -> Snapshot {
        Snapshot {
            processes: 1,
            cpu_ticks: ticks,
            rss_kib: 0,
            thread_run_ns: threads.to_vec(),
        }
    }

    #[test]
    fn cpu_share_counts_every_threads_run_time_including_threads_born_in_the_window() {
        // 2 ms more on thread 1, 0.5 ms on a new thread 2, over 2 s; the
        // ticks (which say 0) are not used.
        let before = snap(7, &[(1, 1_000_000)]);
        let after = snap(7, &[(1, 3_000_000), (2, 500_000)]);
        let (pct, method) = cpu_percent(&before, &after, 2.0);
        assert_eq!(method, CpuMethod::SchedulerNs);
        assert!((pct - 0.125).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn cpu_share_falls_back_to_ticks_when_a_thread_ended_in_the_window() {
        // Thread 2's run time left with it: the ns sum would undercount.
        let before = snap(10, &[(1, 1_000_000), (2, 9_000_000)]);
        let after = snap(12, &[(1, 3_000_000)]);
        let (pct, method) = cpu_percent(&before, &after, 2.0);
        assert_eq!(method, CpuMethod::Ticks);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        assert!((pct - 2.0 / hz / 2.0 * 100.0).abs() < 1e-9, "{pct}");
    }
}

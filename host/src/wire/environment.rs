//! What the host reads from the system for the pure session: the wall
//! clock it stamps into `ts` (and a time-based generation), and the load
//! average it stamps into `ld`. One place, used by the daemon, the lab's
//! wire peer and the identity files.

use std::time::{Duration, Instant};

/// Seconds since the epoch, at least 1 (a zero would read as "unset").
pub fn wall_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
        .max(1)
}

/// How long a read of /proc/loadavg is reused. The kernel recomputes it
/// every 5 s; reading it for every heartbeat (20 a second at keepalive
/// 50 ms) was a third of the idle daemon's system calls.
const LOADAVG_REUSE: Duration = Duration::from_secs(1);

/// Reads `/proc/loadavg` at most once per [`LOADAVG_REUSE`].
#[derive(Debug, Default)]
pub struct LoadAvg {
    read_at: Option<Instant>,
}

impl LoadAvg {
    /// The first line of `/proc/loadavg` (heartbeat's `ld`), or None when
    /// the last read is still fresh (the session keeps the value it has)
    /// or the file cannot be read.
    pub fn refresh(&mut self) -> Option<String> {
        if self.read_at.is_some_and(|t| t.elapsed() < LOADAVG_REUSE) {
            return None;
        }
        self.read_at = Some(Instant::now());
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
    }
}

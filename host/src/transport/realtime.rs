//! Realtime priority for the heartbeat path (ha.cf `realtime on`, the
//! default, and `rtprio`): heartbeat runs SCHED_FIFO with its memory locked
//! so a loaded machine does not starve the heartbeat into a false failover.
//! We use SCHED_RR on the thread that sends and receives heartbeats, and
//! mlockall for the process.

/// Realtime settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealtimeConfig {
    /// Switch realtime scheduling + memory locking on.
    pub enabled: bool,
    /// SCHED_RR priority; None = midpoint of the range, like heartbeat.
    pub priority: Option<i32>,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            enabled: true,
            priority: None,
        }
    }
}

/// Why realtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// sched_setscheduler failed (usually EPERM: no CAP_SYS_NICE / RLIMIT_RTPRIO).
    #[error("cannot set SCHED_RR priority {prio}: {source}")]
    Scheduler {
        /// Requested priority.
        prio: i32,
        /// OS error.
        source: std::io::Error,
    },
    /// mlockall failed (EPERM or RLIMIT_MEMLOCK).
    #[error("cannot lock memory (mlockall): {0}")]
    Mlock(std::io::Error),
}

/// What was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealtimeStatus {
    /// SCHED_RR priority now in force on the calling thread.
    pub priority: i32,
    /// Memory is locked.
    pub locked: bool,
}

/// Apply to the calling thread (and lock the whole process's memory).
pub fn apply(cfg: &RealtimeConfig) -> Result<Option<RealtimeStatus>, RealtimeError> {
    if !cfg.enabled {
        return Ok(None);
    }
    // SAFETY: plain syscalls with valid arguments.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_RR),
            libc::sched_get_priority_max(libc::SCHED_RR),
        )
    };
    let prio = cfg.priority.unwrap_or((min + max) / 2).clamp(min, max);
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // pid 0 = the calling thread on Linux: only the heartbeat thread gets RR.
    // RESET_ON_FORK: programs it starts (an agent compile, a server) run
    // at normal priority, never starving the node at RT priority.
    let policy = libc::SCHED_RR | libc::SCHED_RESET_ON_FORK;
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(RealtimeError::Scheduler {
            prio,
            source: std::io::Error::last_os_error(),
        });
    }
    // MCL_ONFAULT: lock pages as they are touched instead of faulting in
    // every mapping up front (wasmtime and thread stacks reserve far more
    // than they use); what the heartbeat path touches still never swaps.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) } != 0 {
        return Err(RealtimeError::Mlock(std::io::Error::last_os_error()));
    }
    Ok(Some(RealtimeStatus {
        priority: prio,
        locked: true,
    }))
}

/// Apply, and when not permitted say so clearly and carry on at normal
/// priority (a missing capability must not stop the cluster).
pub fn apply_or_warn(cfg: &RealtimeConfig) -> Option<RealtimeStatus> {
    match apply(cfg) {
        Ok(Some(s)) => {
            tracing::info!(
                priority = s.priority,
                "heartbeat path runs SCHED_RR with memory locked"
            );
            Some(s)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "realtime requested but not permitted: heartbeats run at normal priority and may be \
                 delayed under load (risk of false failover); grant CAP_SYS_NICE and CAP_IPC_LOCK \
                 (or raise RLIMIT_RTPRIO/RLIMIT_MEMLOCK), or set `realtime off`"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_is_a_no_op_and_enabled_reports() {
        assert!(apply(&RealtimeConfig {
            enabled: false,
            priority: None
        })
        .unwrap()
        .is_none());
        // Run in a scratch thread so the test runner's threads keep their policy.
        let r = std::thread::spawn(|| {
            let r = apply(&RealtimeConfig {
                enabled: true,
                priority: Some(1),
            });
            // Undo the memory lock so the rest of the test binary is unaffected.
            unsafe { libc::munlockall() };
            r.map(|s| s.map(|s| s.priority)).map_err(|e| e.to_string())
        })
        .join()
        .unwrap();
        match r {
            Ok(Some(p)) => assert_eq!(p, 1),
            Ok(None) => panic!("enabled must apply or fail"),
            Err(e) => assert!(e.contains("cannot"), "{e}"),
        }
    }
}

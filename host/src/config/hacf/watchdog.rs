//! ha.cf `watchdog`: the timeout wasmbeat asks the device for, from
//! deadtime and keepalive (the daemon sets it, `check` shows it and warns
//! when the timings leave it no room).

use std::time::Duration;

/// The watchdog timeout for a deadtime and keepalive, and its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogTimeout {
    /// The timeout to ask the device for, in whole seconds.
    pub secs: u32,
    /// The latest a reset may come after the last pet and still precede
    /// the peer's takeover: deadtime − keepalive.
    pub latest: Duration,
    /// The shortest timeout (whole seconds) that never resets a loop the
    /// core still counts as running.
    pub shortest: u32,
}

impl WatchdogTimeout {
    /// True when no whole number of seconds fits between the bounds: the
    /// timeout is `shortest`, and a hung node may be reset up to
    /// `secs − latest` after the peer took over.
    pub fn late(&self) -> bool {
        Duration::from_secs(self.secs.into()) > self.latest
    }
}

/// The watchdog timeout for `deadtime` and `keepalive`.
///
/// The peer declares us dead `deadtime` after it last heard us; we pet
/// right after sending each heartbeat. If we hang just after a pet whose
/// heartbeat the network lost, the peer last heard us one keepalive before
/// that pet and takes over at `pet − keepalive + deadtime`, so the reset
/// must come within `deadtime − keepalive` of the pet: the timeout is that,
/// rounded *down* to whole seconds (the ioctl's unit). The bound below:
/// a healthy loop pets every keepalive, and the core only calls a wake-up
/// a stall when it is later than `max(keepalive, 250 ms)` (its
/// `stall_lateness`); the timeout is at least that plus the keepalive,
/// rounded *up*, and at least 1 s. When the bounds cross (a deadtime
/// barely above two keepalives, or below 1 s + keepalive), the lower bound
/// wins: resetting healthy nodes would be worse, and the start-up line
/// says how late the reset may come.
pub fn choose_watchdog_timeout(deadtime: Duration, keepalive: Duration) -> WatchdogTimeout {
    let latest = deadtime.saturating_sub(keepalive);
    let lateness = keepalive.max(Duration::from_millis(250));
    let min = keepalive + lateness;
    let ceil_secs = min.as_secs() + u64::from(min.subsec_nanos() > 0);
    let shortest = ceil_secs.clamp(1, u64::from(u32::MAX)) as u32;
    let fits = latest.as_secs().min(u64::from(u32::MAX)) as u32;
    WatchdogTimeout {
        secs: fits.max(shortest),
        latest,
        shortest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_classic_recipe_resets_a_hung_node_a_keepalive_before_deadtime() {
        // deadtime 5, keepalive 1 (heartbeat's default): 4 s, and a loop
        // may be 3 s late before it is reset.
        let c = choose_watchdog_timeout(secs(5), secs(1));
        assert_eq!(c.secs, 4);
        assert_eq!(c.latest, secs(4));
        assert_eq!(c.shortest, 2);
        assert!(!c.late());
        // heartbeat's defaults for a production pair: keepalive 2, deadtime 30.
        assert_eq!(choose_watchdog_timeout(secs(30), secs(2)).secs, 28);
    }

    #[test]
    fn deadtime_minus_keepalive_is_rounded_down_to_whole_seconds() {
        let c = choose_watchdog_timeout(ms(10_900), secs(1));
        assert_eq!(
            c.secs, 9,
            "9.9 s rounds down: 10 s would come after the takeover"
        );
        assert!(!c.late());
        let c = choose_watchdog_timeout(secs(2), ms(200));
        assert_eq!((c.secs, c.shortest), (1, 1));
        assert!(!c.late());
    }

    #[test]
    fn never_shorter_than_a_keepalive_plus_the_cores_stall_lateness() {
        // keepalive 1.5 s, deadtime 3.1 s: 1.6 s fits below the takeover,
        // but pets come every 1.5 s and a loop 1.5 s late is not a stall
        // yet: 3 s, and the choice says it is late.
        let c = choose_watchdog_timeout(ms(3100), ms(1500));
        assert_eq!(c.shortest, 3);
        assert_eq!(c.secs, 3);
        assert!(c.late());
        assert!(
            secs(c.secs.into()) >= ms(1500) * 2,
            "a keepalive plus a keepalive late"
        );
    }

    #[test]
    fn sub_second_timings_get_the_one_second_minimum() {
        // The labs' fast timings: deadtime 500 ms cannot be met in whole
        // seconds; 1 s, reported as late.
        let c = choose_watchdog_timeout(ms(500), ms(100));
        assert_eq!(c.secs, 1);
        assert_eq!(c.latest, ms(400));
        assert!(c.late());
        // keepalive 100 ms: 100 ms + 250 ms of lateness, rounded up to 1 s.
        assert_eq!(c.shortest, 1);
        assert_eq!(
            choose_watchdog_timeout(Duration::ZERO, Duration::ZERO).secs,
            1
        );
    }

    #[test]
    fn a_huge_deadtime_does_not_overflow() {
        let c = choose_watchdog_timeout(Duration::from_secs(u64::MAX / 2), secs(1));
        assert_eq!(c.secs, u32::MAX);
    }

    #[test]
    fn check_warns_when_no_whole_second_fits_before_the_takeover() {
        use crate::config::diag::Code;
        let base = "node a\nbcast eth0\nauto_failback on\nwatchdog /dev/watchdog\n";
        let (_, d) = super::super::HaCf::parse(&format!("{base}keepalive 1\ndeadtime 5\n"));
        assert!(!d.iter().any(|d| d.code == Code::Timing), "{d:?}");
        let (_, d) = super::super::HaCf::parse(&format!("{base}keepalive 100ms\ndeadtime 500ms\n"));
        let w: Vec<_> = d.iter().filter(|d| d.code == Code::Timing).collect();
        assert_eq!(w.len(), 1, "{d:?}");
        assert_eq!(w[0].line, Some(4), "points at the watchdog line");
        assert!(w[0].message.contains("timeout is 1 s"), "{}", w[0]);
        assert!(
            w[0].hint.as_deref().unwrap_or_default().contains("1100ms"),
            "{}",
            w[0]
        );
        // Without a watchdog the same timings say nothing about it.
        let (_, d) = super::super::HaCf::parse(
            "node a\nbcast eth0\nauto_failback on\nkeepalive 100ms\ndeadtime 500ms\n",
        );
        assert!(!d.iter().any(|d| d.code == Code::Timing), "{d:?}");
    }
}

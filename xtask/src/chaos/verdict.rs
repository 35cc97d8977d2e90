//! The outside observer's invariants, judged over what was recorded: the
//! observer's samples of both nodes, the client's probes, and the fault
//! windows. Pure, so each rule is unit-tested with made-up timelines.

use std::time::Duration;

/// One observer sample: who held the VIP, whose daemon was running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the run started.
    pub at: Duration,
    /// Node i has the VIP configured.
    pub holds: [bool; 2],
    /// Node i's daemon is meant to be running and its process exists.
    pub alive: [bool; 2],
    /// Node i's daemon was deliberately down (killed, not yet restarted).
    pub down_on_purpose: [bool; 2],
}

/// A fault as it happened: from when it was applied until it was fully
/// undone (the restart, the SIGCONT, the heal, the last command).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Index in the run (for the replay command).
    pub index: usize,
    /// The fault's kind (for tables).
    pub kind: &'static str,
    /// What the fault was.
    pub what: String,
    /// Whether both nodes may hold the VIP while it lasts.
    pub partitions: bool,
    /// Applied at.
    pub start: Duration,
    /// Fully undone at.
    pub end: Duration,
}

/// A period with no answer from the VIP: from the first failed probe to
/// the next answered one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// First failed probe sent at.
    pub start: Duration,
    /// Next answered probe sent at.
    pub end: Duration,
}

impl Gap {
    /// How long the client went unanswered.
    pub fn len(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The stated bounds the run is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Both nodes may hold the VIP for at most this long after a
    /// partitioning fault ends.
    pub after_heal: Duration,
    /// Once this long has passed since the last fault ended, exactly one
    /// node holds the VIP and both daemons run.
    pub settle: Duration,
    /// The longest the client may go unanswered (deadtime + a margin).
    pub gap: Duration,
    /// A condition counts once it lasts this many consecutive samples
    /// (the two nodes are read one after the other, ~ms apart).
    pub samples: usize,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// When it started.
    pub at: Duration,
    /// The fault it followed, if one was active or recent.
    pub fault: Option<usize>,
    /// What was seen.
    pub what: String,
}

/// The last window that started at or before `t`.
fn last_window(windows: &[Window], t: Duration) -> Option<&Window> {
    windows.iter().rev().find(|w| w.start <= t)
}

/// Runs of consecutive samples for which `cond` holds, as index ranges.
fn runs(samples: &[Sample], cond: impl Fn(&Sample) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, s) in samples.iter().enumerate() {
        match (cond(s), start) {
            (true, None) => start = Some(i),
            (false, Some(b)) => {
                out.push((b, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, samples.len() - 1));
    }
    out
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Every broken invariant in the record.
pub fn judge(samples: &[Sample], windows: &[Window], gaps: &[Gap], b: &Bounds) -> Vec<Violation> {
    let mut v = Vec::new();
    // Never two holders, but during a partitioning fault and up to
    // `after_heal` after it.
    for (first, last) in runs(samples, |s| s.holds[0] && s.holds[1]) {
        if last + 1 - first < b.samples {
            continue;
        }
        let (start, end) = (samples[first].at, samples[last].at);
        let allowed_until = windows
            .iter()
            .filter(|w| w.partitions && w.start <= end && start <= w.end + b.after_heal)
            .map(|w| w.end + b.after_heal)
            .max();
        match allowed_until {
            Some(until) if end <= until => {}
            Some(until) => v.push(Violation {
                at: until,
                fault: last_window(windows, start).map(|w| w.index),
                what: format!(
                    "both nodes held the VIP {} ms past the bound after the partition healed (until {} ms into the run)",
                    ms(end - until),
                    ms(end)
                ),
            }),
            None => v.push(Violation {
                at: start,
                fault: last_window(windows, start).map(|w| w.index),
                what: format!(
                    "both nodes held the VIP for {} ms with no partition",
                    ms(end - start)
                ),
            }),
        }
    }
    // Steady state: someone holds the VIP, both daemons up.
    let steady = |s: &Sample| {
        let active = windows
            .iter()
            .any(|w| w.start <= s.at && s.at <= w.end + b.settle);
        !active && s.at >= b.settle
    };
    // (Two holders are the rule above's business.)
    for (first, last) in runs(samples, |s| {
        steady(s) && (!(s.holds[0] || s.holds[1]) || !(s.alive[0] && s.alive[1]))
    }) {
        if last + 1 - first < b.samples {
            continue;
        }
        let s = samples[first];
        let holders = s.holds.iter().filter(|h| **h).count();
        v.push(Violation {
            at: s.at,
            fault: last_window(windows, s.at).map(|w| w.index),
            what: format!(
                "steady state broken for {} ms: {holders} holder(s), daemons running {:?}",
                ms(samples[last].at - s.at),
                s.alive
            ),
        });
    }
    // A daemon gone that nobody stopped.
    for i in 0..2 {
        for (first, last) in runs(samples, |s| !s.alive[i] && !s.down_on_purpose[i]) {
            if last + 1 - first < b.samples {
                continue;
            }
            let s = samples[first];
            v.push(Violation {
                at: s.at,
                fault: last_window(windows, s.at).map(|w| w.index),
                what: format!("node{}'s daemon is gone and nobody stopped it", i + 1),
            });
        }
    }
    for g in gaps {
        if g.len() > b.gap {
            v.push(Violation {
                at: g.start,
                fault: last_window(windows, g.start).map(|w| w.index),
                what: format!(
                    "the client went {} ms without an answer (bound {} ms)",
                    ms(g.len()),
                    ms(b.gap)
                ),
            });
        }
    }
    v.sort_by_key(|x| x.at);
    v
}

/// Growth allowed over one daemon process's life, from its first quiet
/// sample on: open files, threads, resident KiB (the larger of this and a
/// quarter of the first sample).
pub const FLAT: (usize, usize, u64) = (8, 4, 8 * 1024);

/// A daemon process whose open files, threads or memory kept growing over
/// its life (only lives with at least four quiet samples are judged).
pub fn flatness(footprints: &[super::observe::Footprint]) -> Vec<Violation> {
    let mut lives: Vec<Vec<&super::observe::Footprint>> = Vec::new();
    for f in footprints {
        match lives
            .iter_mut()
            .find(|l| l[0].pid == f.pid && l[0].node == f.node)
        {
            Some(l) => l.push(f),
            None => lives.push(vec![f]),
        }
    }
    let mut v = Vec::new();
    for life in lives.iter().filter(|l| l.len() >= 4) {
        let first = life[0];
        let last = life[life.len() - 1];
        let peak =
            |g: fn(&super::observe::Footprint) -> u64| life.iter().map(|f| g(f)).max().unwrap_or(0);
        let fds = peak(|f| f.fds as u64).saturating_sub(first.fds as u64);
        let threads = peak(|f| f.threads as u64).saturating_sub(first.threads as u64);
        let rss = peak(|f| f.rss_kib).saturating_sub(first.rss_kib);
        let rss_allowed = FLAT.2.max(first.rss_kib / 4);
        if fds > FLAT.0 as u64 || threads > FLAT.1 as u64 || rss > rss_allowed {
            v.push(Violation {
                at: last.at,
                fault: None,
                what: format!(
                    "node{} pid {} grew over {} samples ({:.0} s): fds {} -> peak +{fds}, threads {} -> peak +{threads}, RSS {} KiB -> peak +{rss} KiB (allowed +{}, +{}, +{rss_allowed} KiB)",
                    first.node + 1,
                    first.pid,
                    life.len(),
                    (last.at - first.at).as_secs_f64(),
                    first.fds,
                    first.threads,
                    first.rss_kib,
                    FLAT.0,
                    FLAT.1,
                ),
            });
        }
    }
    v
}

/// Outages from probes (sent at, answered), in send order.
pub fn gaps(probes: &[(Duration, bool)]) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut failing_since = None;
    for &(at, ok) in probes {
        match (ok, failing_since) {
            (false, None) => failing_since = Some(at),
            (true, Some(start)) => {
                out.push(Gap { start, end: at });
                failing_since = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(&(end, _))) = (failing_since, probes.last()) {
        out.push(Gap { start, end });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    const B: Bounds = Bounds {
        after_heal: Duration::from_millis(1000),
        settle: Duration::from_millis(2000),
        gap: Duration::from_millis(1500),
        samples: 2,
    };

    /// Samples every 100 ms from 0 to `until` ms; `holds(t)` says who holds.
    fn timeline(until: u64, holds: impl Fn(u64) -> [bool; 2]) -> Vec<Sample> {
        (0..=until / 100)
            .map(|i| Sample {
                at: t(i * 100),
                holds: holds(i * 100),
                alive: [true, true],
                down_on_purpose: [false, false],
            })
            .collect()
    }

    fn partition(start: u64, end: u64) -> Window {
        Window {
            index: 0,
            kind: "link flap",
            what: "link flap".into(),
            partitions: true,
            start: t(start),
            end: t(end),
        }
    }

    #[test]
    fn a_quiet_cluster_with_one_holder_passes() {
        let s = timeline(10_000, |_| [true, false]);
        assert_eq!(judge(&s, &[], &[], &B), vec![]);
    }

    #[test]
    fn two_holders_without_a_partition_is_a_violation() {
        let s = timeline(10_000, |x| [true, (4000..4300).contains(&x)]);
        let v = judge(&s, &[], &[], &B);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("no partition"), "{v:?}");
    }

    #[test]
    fn one_sample_of_two_holders_is_a_handoff_seen_mid_read() {
        let s = timeline(10_000, |x| [x < 4000, x >= 4000 || x == 3900]);
        assert_eq!(judge(&s, &[], &[], &B), vec![]);
    }

    #[test]
    fn two_holders_during_a_partition_and_shortly_after_heal_pass() {
        let s = timeline(20_000, |x| [true, (3000..6500).contains(&x)]);
        assert_eq!(judge(&s, &[partition(2000, 6000)], &[], &B), vec![]);
    }

    #[test]
    fn two_holders_past_the_heal_bound_is_a_violation() {
        let s = timeline(20_000, |x| [true, (3000..9000).contains(&x)]);
        let v = judge(&s, &[partition(2000, 6000)], &[], &B);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("past the bound"), "{v:?}");
        assert_eq!(v[0].fault, Some(0));
    }

    #[test]
    fn no_holder_in_steady_state_is_a_violation_but_not_while_settling() {
        // The group is lost 1 s after the fault ended: still settling.
        let ok = timeline(20_000, |x| [!(7000..7500).contains(&x), false]);
        assert_eq!(judge(&ok, &[partition(2000, 6000)], &[], &B), vec![]);
        // Lost 10 s after: steady state, nobody serves.
        let bad = timeline(20_000, |x| [x < 16_000, false]);
        let v = judge(&bad, &[partition(2000, 6000)], &[], &B);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("0 holder"), "{v:?}");
    }

    #[test]
    fn a_daemon_gone_unasked_is_a_violation_a_killed_one_is_not() {
        let mut s = timeline(5000, |_| [true, false]);
        for x in &mut s[10..20] {
            x.alive[1] = false;
            x.down_on_purpose[1] = true;
        }
        let w = Window {
            index: 3,
            kind: "kill",
            what: "kill".into(),
            partitions: false,
            start: t(900),
            end: t(2000),
        };
        assert_eq!(judge(&s, std::slice::from_ref(&w), &[], &B), vec![]);
        for x in &mut s[30..40] {
            x.alive[1] = false;
        }
        let v = judge(&s, &[w], &[], &B);
        assert!(v.iter().any(|x| x.what.contains("nobody stopped")), "{v:?}");
    }

    fn fp(pid: u32, i: u64, fds: usize, rss_kib: u64) -> super::super::observe::Footprint {
        super::super::observe::Footprint {
            at: t(i * 1000),
            node: 0,
            pid,
            fds,
            threads: 5,
            rss_kib,
        }
    }

    #[test]
    fn growing_fds_are_a_violation_a_flat_life_is_not() {
        let flat: Vec<_> = (0..10)
            .map(|i| fp(10, i, 20 + (i % 2) as usize, 12_000))
            .collect();
        assert_eq!(flatness(&flat), vec![]);
        let leak: Vec<_> = (0..10)
            .map(|i| fp(11, i, 20 + 2 * i as usize, 12_000))
            .collect();
        let v = flatness(&leak);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("fds 20 -> peak +18"), "{v:?}");
        // Too short a life to judge.
        assert_eq!(flatness(&leak[..3]), vec![]);
    }

    #[test]
    fn gaps_come_from_failed_probes_and_long_ones_are_violations() {
        let probes: Vec<(Duration, bool)> = (0..500u64)
            .map(|i| {
                (
                    t(i * 10),
                    !(100..150).contains(&i) && !(300..480).contains(&i),
                )
            })
            .collect();
        let g = gaps(&probes);
        assert_eq!(
            g,
            vec![
                Gap {
                    start: t(1000),
                    end: t(1500)
                },
                Gap {
                    start: t(3000),
                    end: t(4800)
                }
            ]
        );
        let v = judge(&[], &[], &g, &B);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("1800 ms"), "{v:?}");
    }
}

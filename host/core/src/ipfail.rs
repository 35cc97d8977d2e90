//! ipfail built in: the node that reaches fewer ping nodes gives its groups
//! to the peer, decided by the message exchange of heartbeat's
//! `contrib/ipfail/ipfail.c`, so a heartbeat 3.0.6 peer running the real
//! ipfail and a wasmbeat node agree (spec §6.8):
//!
//! - a node whose count changes sends `num_ping_nodes num_ping=<its count>`;
//! - the receiver compares with its own count: more → `you_are_dead` to the
//!   sender; fewer → it gives all its groups away after 2 × keepalive;
//!   equal → `abort_giveup` to the sender and, with `auto_failback on`, it
//!   gives back the foreign groups it holds;
//! - `you_are_dead` → give all groups away after 2 × keepalive;
//!   `abort_giveup` → cancel a pending give-away.
//!
//! The 2 × keepalive delay is what keeps both nodes still when both lose
//! the uplink: the second node's count arrives before the first one's
//! give-away fires, the counts are equal, and the give-away is aborted.
//!
//! wasmbeat adds hysteresis, stated once: *groups change hands at most
//! once per `deadping`*. Moving away needs a ping node silent for
//! `deadping`; coming back needs it to answer for `deadping` (the ping
//! tracker counts a returned ping node only then), and a node giving
//! foreign groups back on equal counts waits `deadping` too, cancelled if
//! the counts part again meanwhile (a heartbeat peer announces its count at
//! the first reply, so the wait has to be on our side as well).
//!
//! Where heartbeat's ipfail is looser, wasmbeat keeps its timers steady:
//! a peer repeating `you_are_dead` (it answers every count we send) does
//! not postpone a give-away already due, and a pending failback is not
//! dropped by a repeated equal count (ipfail.c marks its own behaviour
//! there "BUG?"). Since a heartbeat peer *does* drop its pending failback
//! on a repeated equal count, we never repeat an unchanged count within
//! [`Ipfail::reask_gap`] of the last one.
//!
//! Pure: the caller feeds counts, messages and time, and carries out the
//! returned [`IpfailAction`]s.

use std::time::Duration;

use crate::cluster::RscHold;
use crate::time::Millis;

/// What ipfail needs from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpfailParams {
    /// heartbeat's keepalive: the give-away delay is twice it (ipfail's
    /// `delay_giveup(..., -1)`).
    pub keepalive: Duration,
    /// How long equal counts must last before foreign groups go back
    /// (wasmbeat's hysteresis; `deadping`).
    pub failback_delay: Duration,
    /// `auto_failback on`: on equal counts, foreign groups go home.
    pub auto_failback: bool,
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpfailAction {
    /// Send `num_ping_nodes num_ping=count` to the peer.
    AskPeer {
        /// Our count.
        count: usize,
    },
    /// Send `you_are_dead` to the peer: it reaches fewer ping nodes.
    YouAreDead,
    /// Send `abort_giveup` to the peer: the counts are equal.
    AbortGiveup,
    /// Give this set (our viewpoint) to the peer now (standby hand-shake).
    GiveUp {
        /// `all` or `foreign`.
        set: RscHold,
        /// Why, for the log.
        why: String,
    },
    /// A decision worth a log line.
    Note {
        /// What was decided.
        what: String,
        /// With which figures.
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    set: RscHold,
    at: Millis,
    why: String,
    /// Our count when it was decided: a give-away decided on a count that
    /// has since risen is stale.
    mine: usize,
}

/// The ipfail state of one node. See the module docs.
#[derive(Clone, Debug)]
pub struct Ipfail {
    p: IpfailParams,
    pending: Option<Pending>,
    /// A give-away came due, or our count changed, while resources were
    /// in transition: the counts are compared again once both sides are
    /// stable (ipfail's `need_standby`).
    need_standby: bool,
    /// When we last sent our count, and which: an unchanged count is not
    /// sent again before the peer's give-away timer can have fired.
    last_ask: Option<(Millis, usize)>,
}

/// Facts about the node the decisions depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situation {
    /// Our count of ping nodes (see [`crate::ping::PingTracker::count`]).
    pub mine: usize,
    /// Ping nodes configured.
    pub configured: usize,
    /// We hold groups preferring the peer.
    pub holds_foreign: bool,
}

impl Ipfail {
    /// Nothing pending.
    pub fn new(p: IpfailParams) -> Ipfail {
        Ipfail {
            p,
            pending: None,
            need_standby: false,
            last_ask: None,
        }
    }

    /// The give-away delay ipfail uses (2 × keepalive).
    pub fn giveup_delay(&self) -> Duration {
        self.p.keepalive * 2
    }

    /// How long after sending a count the same count may be sent again:
    /// the peer's give-away delay plus one keepalive of slack. heartbeat's
    /// ipfail, on an equal count while its failback timer runs, aborts
    /// the failback and schedules none (ipfail.c `msg_ping_nodes`), so an
    /// early repeat would leave our groups with the peer for good.
    pub fn reask_gap(&self) -> Duration {
        self.p.keepalive * 3
    }

    /// Our count changed (a ping node died or counts again), a link to the
    /// peer died, or the peer's ipfail joined: ask the peer for its count.
    pub fn count_changed(&mut self, now: Millis, s: Situation) -> Vec<IpfailAction> {
        self.last_ask = Some((now, s.mine));
        let mut out = vec![IpfailAction::AskPeer { count: s.mine }];
        // A give-away decided while we reached fewer is stale once we
        // reach more: the peer's answer to the count just sent decides
        // afresh (you_are_dead again costs one round trip). Without this
        // a you_are_dead answering our old count gave the groups away a
        // moment after our uplink had come back.
        if let Some(p) = self
            .pending
            .take_if(|p| p.set == RscHold::All && s.mine > p.mine)
        {
            out.push(IpfailAction::Note {
                what: format!("ipfail: cancelled giving {} groups away", p.set.as_str()),
                why: format!(
                    "we reach {} of {} ping node(s) now, {} when it was decided; asking the peer again",
                    s.mine, s.configured, p.mine
                ),
            });
        }
        out
    }

    /// The peer sent `num_ping_nodes` with `theirs`.
    pub fn on_peer_count(
        &mut self,
        now: Millis,
        peer: &str,
        theirs: usize,
        s: Situation,
    ) -> Vec<IpfailAction> {
        let mine = s.mine;
        let of = s.configured;
        let figures = format!("we reach {mine} of {of} ping node(s), {peer} reaches {theirs}");
        let mut out = Vec::new();
        if mine > theirs {
            out.push(IpfailAction::YouAreDead);
            if let Some(p) = self.pending.take() {
                out.push(IpfailAction::Note {
                    what: format!("ipfail: cancelled giving {} groups away", p.set.as_str()),
                    why: figures.clone(),
                });
            }
            out.push(IpfailAction::Note {
                what: format!("ipfail: {peer} should give its groups to us"),
                why: format!("{figures}: told it you_are_dead"),
            });
        } else if mine < theirs {
            let at = self.schedule(
                now,
                RscHold::All,
                self.giveup_delay(),
                figures.clone(),
                mine,
            );
            out.push(IpfailAction::Note {
                what: format!("ipfail: giving all groups to {peer} in {}", until(now, at)),
                why: figures,
            });
        } else {
            out.push(IpfailAction::AbortGiveup);
            if let Some(p) = self.pending.take_if(|p| p.set == RscHold::All) {
                out.push(IpfailAction::Note {
                    what: format!(
                        "ipfail: counts balanced, not giving {} groups away",
                        p.set.as_str()
                    ),
                    why: figures,
                });
            } else if self.pending.is_some() {
                // A failback already waits on these same equal counts: a
                // repeated count neither cancels nor postpones it.
            } else if self.p.auto_failback && s.holds_foreign {
                let delay = self.p.failback_delay.max(self.giveup_delay());
                let at = self.schedule(now, RscHold::Foreign, delay, figures.clone(), mine);
                out.push(IpfailAction::Note {
                    what: format!(
                        "ipfail: giving {peer}'s groups back in {} unless the counts part again",
                        until(now, at)
                    ),
                    why: format!("{figures}; auto_failback on"),
                });
            }
        }
        out
    }

    /// The peer sent `you_are_dead`.
    pub fn on_you_are_dead(&mut self, now: Millis, peer: &str, s: Situation) -> Vec<IpfailAction> {
        let why = format!(
            "{peer} says it reaches more ping nodes (you_are_dead); we reach {} of {}",
            s.mine, s.configured
        );
        let at = self.schedule(now, RscHold::All, self.giveup_delay(), why.clone(), s.mine);
        vec![IpfailAction::Note {
            what: format!("ipfail: giving all groups to {peer} in {}", until(now, at)),
            why,
        }]
    }

    /// The peer sent `abort_giveup`: its count equals ours, so a pending
    /// give-away of all groups is off. A failback (decided on equal
    /// counts) stands.
    pub fn on_abort(&mut self, peer: &str) -> Vec<IpfailAction> {
        match self.pending.take_if(|p| p.set == RscHold::All) {
            Some(p) => vec![IpfailAction::Note {
                what: format!("ipfail: not giving {} groups away", p.set.as_str()),
                why: format!("{peer} reports balanced ping node counts (abort_giveup)"),
            }],
            None => Vec::new(),
        }
    }

    /// A pending give-away: which set, when.
    pub fn pending(&self) -> Option<(RscHold, Millis)> {
        self.pending.as_ref().map(|p| (p.set, p.at))
    }

    /// When ipfail next needs the clock: a pending give-away, or a
    /// deferred question that may be asked again (later than `now` only,
    /// so a question waiting for stability does not spin the caller).
    pub fn deadline(&self, now: Millis) -> Option<Millis> {
        let reask = self.reask_at().filter(|at| self.need_standby && *at > now);
        self.pending
            .as_ref()
            .map(|p| p.at)
            .into_iter()
            .chain(reask)
            .min()
    }

    /// The earliest time the count last sent may be sent again.
    fn reask_at(&self) -> Option<Millis> {
        self.last_ask.map(|(t, _)| t.plus(self.reask_gap()))
    }

    /// Time passed; `stable`: our resources are not in transition.
    pub fn on_tick(&mut self, now: Millis, stable: bool) -> Vec<IpfailAction> {
        match &self.pending {
            Some(p) if now >= p.at => {}
            _ => return Vec::new(),
        }
        let p = self.pending.take().expect("checked above");
        if stable {
            vec![IpfailAction::GiveUp {
                set: p.set,
                why: p.why,
            }]
        } else {
            self.need_standby = true;
            vec![IpfailAction::Note {
                what: format!(
                    "ipfail: not giving {} groups away yet: resources in transition",
                    p.set.as_str()
                ),
                why: format!("{}; counts are compared again once stable", p.why),
            }]
        }
    }

    /// Our count changed while resources were in transition (a give-away
    /// of ours being handed over, say). heartbeat's ipfail does not act on
    /// a count it receives then, and nothing else would ask it again: the
    /// lab saw our uplink come back during such a hand-over and the groups
    /// stay with the peer for good. Ask again once both sides are stable.
    pub fn ask_again_when_stable(&mut self) {
        self.need_standby = true;
    }

    /// Both nodes are stable again: a give-away deferred by a transition
    /// asks the counts anew (the situation may have changed meanwhile).
    /// The same count is not asked again within [`Ipfail::reask_gap`]
    /// of the last ask; it waits (see [`Ipfail::deadline`]).
    pub fn on_stable(&mut self, now: Millis, s: Situation) -> Vec<IpfailAction> {
        if !self.need_standby {
            return Vec::new();
        }
        let too_soon = self
            .last_ask
            .is_some_and(|(at, count)| count == s.mine && now < at.plus(self.reask_gap()));
        if too_soon {
            return Vec::new();
        }
        self.need_standby = false;
        self.count_changed(now, s)
    }

    /// Arm a give-away; when it is due. heartbeat's ipfail restarts its
    /// timer on every decision ("overriding"); we restart it only for a
    /// different set: the peer repeating `you_are_dead` (it answers every
    /// count we send, and our count is sent again when a ping node dies
    /// after the link did) must not postpone a give-away already due.
    fn schedule(
        &mut self,
        now: Millis,
        set: RscHold,
        delay: Duration,
        why: String,
        mine: usize,
    ) -> Millis {
        let fresh = now.plus(delay);
        let at = match &self.pending {
            Some(p) if p.set == set => p.at.min(fresh),
            _ => fresh,
        };
        self.pending = Some(Pending { set, at, why, mine });
        at
    }
}

/// "1.0 s" from `now` to `at`, for the log.
fn until(now: Millis, at: Millis) -> String {
    format!("{:.1} s", at.since(now).as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipfail(auto_failback: bool) -> Ipfail {
        Ipfail::new(IpfailParams {
            keepalive: Duration::from_millis(500),
            failback_delay: Duration::from_secs(2),
            auto_failback,
        })
    }

    fn sit(mine: usize, holds_foreign: bool) -> Situation {
        Situation {
            mine,
            configured: 1,
            holds_foreign,
        }
    }

    fn gives(actions: &[IpfailAction]) -> Option<RscHold> {
        actions.iter().find_map(|a| match a {
            IpfailAction::GiveUp { set, .. } => Some(*set),
            _ => None,
        })
    }

    #[test]
    fn fewer_ping_nodes_gives_all_groups_away_after_two_keepalives() {
        let mut f = ipfail(true);
        let a = f.on_peer_count(Millis(0), "node2", 1, sit(0, false));
        assert!(!a.contains(&IpfailAction::YouAreDead));
        assert_eq!(f.deadline(Millis(0)), Some(Millis(1000)));
        assert!(f.on_tick(Millis(999), true).is_empty());
        assert_eq!(gives(&f.on_tick(Millis(1000), true)), Some(RscHold::All));
        assert_eq!(f.deadline(Millis(0)), None, "once");
    }

    #[test]
    fn more_ping_nodes_tells_the_peer_and_moves_nothing_here() {
        let mut f = ipfail(true);
        let a = f.on_peer_count(Millis(0), "node1", 0, sit(1, false));
        assert!(a.contains(&IpfailAction::YouAreDead));
        assert_eq!(f.deadline(Millis(0)), None);
    }

    #[test]
    fn you_are_dead_gives_all_groups_away_unless_aborted() {
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node2", sit(0, false));
        assert_eq!(gives(&f.on_tick(Millis(1000), true)), Some(RscHold::All));

        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node2", sit(0, false));
        assert!(!f.on_abort("node2").is_empty());
        assert!(f.on_tick(Millis(5000), true).is_empty(), "aborted");
    }

    #[test]
    fn a_give_away_decided_on_a_lower_count_is_cancelled_when_ours_rises() {
        // The peer's you_are_dead answered our count while the uplink was
        // down; the ping node counts again before the give-away is due.
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node1", sit(0, false));
        let a = f.count_changed(Millis(0), sit(1, false));
        assert_eq!(a[0], IpfailAction::AskPeer { count: 1 });
        assert_eq!(a.len(), 2, "a note says it was cancelled: {a:?}");
        assert!(gives(&f.on_tick(Millis(5000), true)).is_none(), "cancelled");
        // Control: a count that falls further keeps the give-away.
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node1", sit(1, false));
        assert_eq!(f.count_changed(Millis(0), sit(0, false)).len(), 1);
        assert_eq!(gives(&f.on_tick(Millis(1000), true)), Some(RscHold::All));
        // And a failback of foreign groups is not touched by our count.
        let mut f = ipfail(true);
        f.on_peer_count(Millis(0), "node1", 1, sit(1, true));
        f.count_changed(Millis(0), sit(2, true));
        assert_eq!(
            gives(&f.on_tick(Millis(2000), true)),
            Some(RscHold::Foreign)
        );
    }

    #[test]
    fn both_uplinks_lost_moves_nothing() {
        // node1 loses first and is told it is dead; node2's own loss follows
        // within 2 × keepalive, its count (0) equals node1's: node1 aborts
        // its give-away and tells node2 to abort too.
        let mut n1 = ipfail(true);
        let mut n2 = ipfail(true);
        let to_n2 = n1.count_changed(Millis(0), sit(0, false));
        assert_eq!(to_n2, vec![IpfailAction::AskPeer { count: 0 }]);
        let a = n2.on_peer_count(Millis(0), "node1", 0, sit(1, false));
        assert!(a.contains(&IpfailAction::YouAreDead));
        n1.on_you_are_dead(Millis(10), "node2", sit(0, false));
        // node2 loses its uplink 0.6 s later and asks node1.
        let a = n1.on_peer_count(Millis(600), "node2", 0, sit(0, false));
        assert!(a.contains(&IpfailAction::AbortGiveup));
        n2.on_abort("node1");
        assert!(gives(&n1.on_tick(Millis(5000), true)).is_none());
        assert!(gives(&n2.on_tick(Millis(5000), true)).is_none());
    }

    #[test]
    fn equal_counts_with_no_ping_nodes_configured_reachable_move_nothing() {
        let mut f = ipfail(true);
        let a = f.on_peer_count(Millis(0), "node2", 0, sit(0, false));
        assert_eq!(a, vec![IpfailAction::AbortGiveup]);
        assert_eq!(f.deadline(Millis(0)), None);
    }

    #[test]
    fn equal_counts_give_foreign_groups_back_after_the_hysteresis_with_auto_failback_on() {
        let mut f = ipfail(true);
        f.on_peer_count(Millis(0), "node1", 1, sit(1, true));
        assert_eq!(
            f.deadline(Millis(0)),
            Some(Millis(2000)),
            "deadping, not 2 × keepalive"
        );
        assert!(gives(&f.on_tick(Millis(1999), true)).is_none());
        assert_eq!(
            gives(&f.on_tick(Millis(2000), true)),
            Some(RscHold::Foreign)
        );
    }

    #[test]
    fn the_same_count_is_not_asked_again_before_the_peers_timer_can_fire() {
        // Our uplink came back during our hand-over: the count went out
        // at once, and once stable it is due again. A heartbeat peer that
        // scheduled its failback on the first would abort it on an early
        // repeat (ipfail.c `msg_ping_nodes`), so the repeat waits.
        let mut f = ipfail(true);
        f.ask_again_when_stable();
        f.count_changed(Millis(0), sit(1, false));
        assert!(
            f.on_stable(Millis(250), sit(1, false)).is_empty(),
            "too early"
        );
        assert_eq!(f.deadline(Millis(250)), Some(Millis(1500)), "3 x keepalive");
        assert_eq!(
            f.on_stable(Millis(1500), sit(1, false)),
            vec![IpfailAction::AskPeer { count: 1 }]
        );
        assert_eq!(f.deadline(Millis(1500)), None, "asked; nothing left");
        // A count that changed meanwhile goes out at once.
        let mut f = ipfail(true);
        f.ask_again_when_stable();
        f.count_changed(Millis(0), sit(1, false));
        assert_eq!(
            f.on_stable(Millis(250), sit(0, false)),
            vec![IpfailAction::AskPeer { count: 0 }]
        );
        // Waiting for stability past the gap does not spin the caller.
        let mut f = ipfail(true);
        f.ask_again_when_stable();
        f.count_changed(Millis(0), sit(1, false));
        assert_eq!(f.deadline(Millis(2000)), None);
    }

    #[test]
    fn a_repeated_you_are_dead_does_not_postpone_the_give_away() {
        // The link loss asks at once; the ping node's death asks again
        // 0.8 s later, and the peer answers both.
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node1", sit(0, false));
        let a = f.on_you_are_dead(Millis(800), "node1", sit(0, false));
        assert!(
            matches!(&a[0], IpfailAction::Note { what, .. } if what.ends_with("in 0.2 s")),
            "{a:?}"
        );
        assert_eq!(f.deadline(Millis(800)), Some(Millis(1000)));
        assert_eq!(gives(&f.on_tick(Millis(1000), true)), Some(RscHold::All));
        // Nor does a peer count above ours.
        let mut f = ipfail(true);
        f.on_peer_count(Millis(0), "node1", 1, sit(0, false));
        f.on_peer_count(Millis(900), "node1", 1, sit(0, false));
        assert_eq!(gives(&f.on_tick(Millis(1000), true)), Some(RscHold::All));
    }

    #[test]
    fn a_pending_failback_survives_a_repeated_equal_count_and_abort_giveup() {
        let mut f = ipfail(true);
        f.on_peer_count(Millis(0), "node1", 1, sit(1, true));
        let a = f.on_peer_count(Millis(1500), "node1", 1, sit(1, true));
        assert_eq!(a, vec![IpfailAction::AbortGiveup], "no new decision");
        assert!(f.on_abort("node1").is_empty());
        assert_eq!(
            f.deadline(Millis(1500)),
            Some(Millis(2000)),
            "not postponed"
        );
        assert_eq!(
            gives(&f.on_tick(Millis(2000), true)),
            Some(RscHold::Foreign)
        );
        // Control: a pending give-away of all groups is cancelled by both.
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node1", sit(0, false));
        f.on_peer_count(Millis(500), "node1", 0, sit(0, false));
        assert_eq!(f.deadline(Millis(500)), None);
    }

    #[test]
    fn a_failback_is_cancelled_when_the_counts_part_again() {
        let mut f = ipfail(true);
        f.on_peer_count(Millis(0), "node1", 1, sit(1, true));
        // node1's uplink flaps down again before the failback.
        let a = f.on_peer_count(Millis(1000), "node1", 0, sit(1, true));
        assert!(a.contains(&IpfailAction::YouAreDead));
        assert!(gives(&f.on_tick(Millis(5000), true)).is_none());
    }

    #[test]
    fn equal_counts_keep_foreign_groups_with_auto_failback_off() {
        let mut f = ipfail(false);
        f.on_peer_count(Millis(0), "node1", 1, sit(1, true));
        assert_eq!(f.deadline(Millis(0)), None);
    }

    #[test]
    fn a_give_away_due_in_transition_asks_again_once_stable() {
        let mut f = ipfail(true);
        f.on_you_are_dead(Millis(0), "node2", sit(0, false));
        let a = f.on_tick(Millis(1000), false);
        assert!(gives(&a).is_none());
        assert_eq!(
            f.on_stable(Millis(5000), sit(0, false)),
            vec![IpfailAction::AskPeer { count: 0 }]
        );
        assert!(f.on_stable(Millis(5000), sit(0, false)).is_empty(), "once");
    }

    #[test]
    fn a_count_that_changed_during_a_transition_is_asked_again_once_stable() {
        let mut f = ipfail(true);
        assert!(
            f.on_stable(Millis(5000), sit(1, false)).is_empty(),
            "nothing to ask"
        );
        // Our uplink came back while our give-away was being handed over.
        f.ask_again_when_stable();
        assert_eq!(
            f.count_changed(Millis(0), sit(1, false)),
            vec![IpfailAction::AskPeer { count: 1 }]
        );
        assert_eq!(
            f.on_stable(Millis(1500), sit(1, false)),
            vec![IpfailAction::AskPeer { count: 1 }],
            "the peer's ipfail hears the count again once both are stable"
        );
        assert!(f.on_stable(Millis(5000), sit(1, false)).is_empty(), "once");
    }
}

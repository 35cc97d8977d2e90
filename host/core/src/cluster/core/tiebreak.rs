//! The tie-breaker: with a witness configured (wasmbeat-only ha.cf
//! `tiebreaker`), the two sides of a partition ask it for one lease and
//! only the holder runs the groups. The core decides *whether* and *when*
//! to ask and what an answer means; the driver talks to the witness
//! ([`Action::AskTiebreak`], [`Action::ReleaseTiebreak`]) and reports back
//! ([`Event::TiebreakResult`]). `docs/tiebreaker.md` has the why.
//!
//! The rule, per peer `P` declared dead (or silent at initdead):
//!
//! - We ask for the lease (and renew it every quarter lease while `P`
//!   stays dead). The lease lasts 2 × deadtime at the witness.
//! - **Granted**: `P`'s groups may start here ([`Cluster::tiebreak_blocks`]
//!   is the gate; fencing, when configured, is a second gate). Groups `P`
//!   reported running wait [`takeover_grace`] more, the time a losing `P`
//!   needs to hear its refusal and stop them.
//! - **Refused** (`P` holds the lease): we are the losing side; every
//!   group held here is released, nothing starts.
//! - **Unreachable**: we keep what we hold and start nothing `P` may run.
//! - `P` heard again: the lease is given up, the normal rules decide.
//!
//! A peer that left cleanly (`shutdone`) released everything: its groups
//! start here without the lease (a maintenance stop must not depend on the
//! witness), but the lease is still asked for, so that a restarted `P`
//! that cannot hear us is refused.

use super::*;

/// After an exchange found the witness out of reach, the next one starts
/// this much later.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);
/// An exchange the driver never answered (it promises an answer within a
/// few seconds) counts as unreachable after this, so asking never stalls.
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(10);
/// After this many unreachable exchanges in a row, one log line per this many more.
const LOG_EVERY: u32 = 30;

/// How long the lease lasts at the witness: two dead times, so a holder
/// that stops renewing (it crashed) frees it for the other side soon.
pub(super) fn lease_time(p: &ClusterParams) -> Duration {
    p.deadtime * 2
}

/// A node that holds nothing while its peer runs groups (or, both holding,
/// the one whose name sorts later) asks this much later: in a plain
/// heartbeat-link cut the side that serves wins and nothing moves.
fn ask_delay(p: &ClusterParams) -> Duration {
    (p.keepalive * 2).max(Duration::from_secs(2))
}

/// After the grant, groups the dead peer reported running start only this
/// much later: a partitioned peer that lost asks within [`ask_delay`],
/// hears `refused` and stops them. Without STONITH this is all a witness
/// can do about the overlap.
pub(super) fn takeover_grace(p: &ClusterParams) -> Duration {
    ask_delay(p) + p.keepalive + Duration::from_secs(1)
}

/// The last answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Last {
    #[default]
    None,
    Granted,
    Refused(String),
    Unreachable(String),
}

/// The tie-break lease against one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LeaseState {
    /// When the peer was found dead (none: nothing wanted).
    since: Option<Millis>,
    /// The next exchange starts then.
    next_ask: Millis,
    /// An exchange is under way, started then.
    in_flight: Option<Millis>,
    /// The lease is ours until then (measured from when we asked: the
    /// witness counts from a later moment, so it is ours at least that long).
    valid_until: Option<Millis>,
    /// When the current run of grants began.
    granted_at: Option<Millis>,
    /// The groups the peer reported running when it died (`None`: unknown, all).
    claimed: Option<BTreeSet<String>>,
    last: Last,
    failures: u32,
    /// Groups were released on a refusal: a later grant takes over again.
    released: bool,
}

impl Cluster {
    fn lease_valid(&self, pi: PeerId) -> bool {
        self.peers[pi]
            .tiebreak
            .valid_until
            .is_some_and(|t| t > self.now)
    }

    /// Peer `pi` was declared dead, left, or was never heard by initdead:
    /// with a tie-breaker configured, start asking for the lease. Called
    /// before `takeover_from` forgets what the peer ran.
    pub(super) fn tiebreak_dead_peer(&mut self, pi: PeerId) {
        if !self.p.tiebreaker || self.peers[pi].tiebreak.since.is_some() {
            return;
        }
        let name = self.peers[pi].name.clone();
        let claimed = self.peer_may_run(pi);
        let peer_holds = claimed.as_ref().is_none_or(|s| !s.is_empty());
        let we_hold = self.groups.iter().any(|g| g.run != Run::Stopped);
        // The idle side waits for the serving one; both serving, the later name waits.
        let waits = !we_hold || self.p.local > name;
        let delay = if peer_holds && waits {
            ask_delay(&self.p)
        } else {
            Duration::ZERO
        };
        self.peers[pi].tiebreak = LeaseState {
            since: Some(self.now),
            next_ask: self.now.plus(delay),
            claimed,
            ..LeaseState::default()
        };
        let when = if delay.is_zero() {
            "asking now".to_string()
        } else if we_hold {
            format!(
                "asking in {} (both sides run groups: the earlier name asks first)",
                secs(delay)
            )
        } else {
            format!(
                "asking in {} (we run nothing and {name} may: the side that serves asks first)",
                secs(delay)
            )
        };
        self.notify(
            Level::Warn,
            Cause::Tiebreak,
            format!("asking the tie-breaker for the lease against {name}"),
            if self.peers[pi].left {
                format!("{name} left cleanly, so its groups start without waiting; the lease keeps a restarted {name} that cannot hear us from taking them too; {when}")
            } else {
                format!("{name} may be alive on the other side of a partition; nothing it may run starts here without the lease; {when}")
            },
        );
    }

    /// Every handle: start the exchanges that are due, give up leases no
    /// longer needed.
    pub(super) fn tiebreak_timers(&mut self) {
        for pi in self.peer_ids() {
            let dead = self.peers[pi].status == NodeStatus::Dead;
            let holding = self.groups.iter().any(|g| g.run != Run::Stopped);
            let wanted =
                self.p.tiebreaker && self.comm_up && dead && (!self.shutting_down || holding);
            let st = &self.peers[pi].tiebreak;
            if !wanted {
                if st.since.is_some() {
                    self.tiebreak_give_up(pi);
                }
                continue;
            }
            if st.since.is_none() {
                self.tiebreak_dead_peer(pi);
            }
            let now = self.now;
            let lease = lease_time(&self.p);
            if self.peers[pi]
                .tiebreak
                .in_flight
                .is_some_and(|t| now >= t.plus(IN_FLIGHT_LIMIT))
            {
                let peer = self.peers[pi].name.clone();
                self.on_tiebreak_result(
                    &peer,
                    TiebreakVerdict::Unreachable,
                    &format!("no answer from the driver within {}", secs(IN_FLIGHT_LIMIT)),
                );
            }
            let st = &mut self.peers[pi].tiebreak;
            if st.in_flight.is_none() && now >= st.next_ask {
                st.in_flight = Some(now);
                let peer = self.peers[pi].name.clone();
                self.out.push(Action::AskTiebreak { peer, lease });
            }
        }
    }

    fn tiebreak_give_up(&mut self, pi: PeerId) {
        let old = std::mem::take(&mut self.peers[pi].tiebreak);
        let name = self.peers[pi].name.clone();
        if old.valid_until.is_some() || old.in_flight.is_some() || old.last == Last::Granted {
            self.out
                .push(Action::ReleaseTiebreak { peer: name.clone() });
        }
        let why = if self.peers[pi].status != NodeStatus::Dead {
            format!("{name} is heard again; the normal rules decide who runs what")
        } else if !self.p.tiebreaker {
            "the tiebreaker directive was removed".to_string()
        } else {
            "shutting down with nothing held".to_string()
        };
        self.notify(
            Level::Info,
            Cause::Tiebreak,
            format!("tie-breaker lease against {name} given up"),
            why,
        );
    }

    /// The next exchange's or grace end's time, for the timer table.
    pub(super) fn tiebreak_deadline(&self) -> Option<Millis> {
        let grace = takeover_grace(&self.p);
        self.peers
            .iter()
            .filter(|p| p.tiebreak.since.is_some())
            .flat_map(|p| {
                let ask = match p.tiebreak.in_flight {
                    None => p.tiebreak.next_ask,
                    Some(t) => t.plus(IN_FLIGHT_LIMIT),
                };
                let ask = Some(ask);
                let grace_end = p
                    .tiebreak
                    .granted_at
                    .map(|t| t.plus(grace))
                    .filter(|t| *t > self.now);
                [ask, grace_end]
            })
            .flatten()
            .min()
    }

    pub(super) fn on_tiebreak_result(
        &mut self,
        peer: &str,
        verdict: TiebreakVerdict,
        detail: &str,
    ) {
        let Some(pi) = self.peer_index(peer) else {
            return;
        };
        let Some(asked) = self.peers[pi].tiebreak.in_flight.take() else {
            // The peer came back (lease given up) while the exchange ran.
            return;
        };
        let now = self.now;
        let lease = lease_time(&self.p);
        let renew = (lease / 4).max(Duration::from_millis(250));
        let name = peer.to_string();
        let last = self.peers[pi].tiebreak.last.clone();
        match verdict {
            TiebreakVerdict::Granted => {
                let st = &mut self.peers[pi].tiebreak;
                st.valid_until = Some(asked.plus(lease));
                st.next_ask = asked.plus(renew);
                st.failures = 0;
                st.last = Last::Granted;
                if last == Last::Granted {
                    return;
                }
                st.granted_at.get_or_insert(now);
                let retake = std::mem::take(&mut st.released);
                let waited = st.since.map(|s| secs(now.since(s))).unwrap_or_default();
                self.notify(
                    Level::Warn,
                    Cause::Tiebreak,
                    format!("tie-breaker lease against {name} granted"),
                    format!(
                        "{detail}; {waited} after {name} was found dead; its groups may start here \
                         (those it ran after {} more, the time a losing {name} has to stop them)",
                        secs(takeover_grace(&self.p))
                    ),
                );
                if retake && self.peers[pi].status == NodeStatus::Dead {
                    self.takeover_from(pi, "the tie-breaker granted us the lease");
                }
            }
            TiebreakVerdict::Refused => {
                {
                    let st = &mut self.peers[pi].tiebreak;
                    st.valid_until = None;
                    st.granted_at = None;
                    st.next_ask = now.plus(renew);
                    st.failures = 0;
                    st.last = Last::Refused(detail.to_string());
                }
                // Groups only wanted (the takeover waiting for the lease)
                // are dropped quietly; running ones are released loudly.
                let wanted: Vec<GroupId> = self
                    .group_ids()
                    .filter(|&gi| self.groups[gi].want)
                    .collect();
                let running: Vec<String> = self
                    .groups
                    .iter()
                    .filter(|g| g.run != Run::Stopped)
                    .map(|g| g.key.clone())
                    .collect();
                for gi in wanted {
                    self.groups[gi].want = false;
                    self.peers[pi].tiebreak.released = true;
                    self.force_report = true;
                }
                if !running.is_empty() {
                    let keys = running;
                    self.notify(
                        Level::Crit,
                        Cause::Tiebreak,
                        format!("tie-breaker refused: releasing {}", list(&keys)),
                        format!(
                            "{detail}; {name} holds the lease, so it runs the groups: this node is \
                             the losing side of a partition (heartbeat link down, witness reachable)"
                        ),
                    );
                } else if !matches!(last, Last::Refused(_)) {
                    self.notify(
                        Level::Warn,
                        Cause::Tiebreak,
                        format!("tie-breaker refused the lease against {name}"),
                        format!("{detail}; {name} holds it: nothing starts here while it renews"),
                    );
                }
            }
            TiebreakVerdict::Unreachable => {
                let failures = {
                    let st = &mut self.peers[pi].tiebreak;
                    st.next_ask = now.plus(UNREACHABLE_RETRY);
                    st.failures += 1;
                    st.last = Last::Unreachable(detail.to_string());
                    st.failures
                };
                if matches!(last, Last::Unreachable(_)) && failures % LOG_EVERY != 0 {
                    return;
                }
                let held: Vec<String> = self
                    .groups
                    .iter()
                    .filter(|g| g.run != Run::Stopped)
                    .map(|g| g.key.clone())
                    .collect();
                let lease_left = match self.peers[pi].tiebreak.valid_until {
                    Some(t) if t > now => format!("; our lease runs {} more", secs(t.since(now))),
                    _ => String::new(),
                };
                self.notify(
                    Level::Warn,
                    Cause::Tiebreak,
                    format!("tie-breaker unreachable ({failures} exchange(s))"),
                    format!(
                        "{detail}; keeping {}, taking nothing of {name}'s over{lease_left}; retrying every {}",
                        list(&held),
                        secs(UNREACHABLE_RETRY)
                    ),
                );
            }
        }
    }

    /// Whether starting group `gi` here waits for the tie-breaker: why.
    pub(super) fn tiebreak_blocks(&self, gi: GroupId) -> Option<String> {
        if !self.p.tiebreaker {
            return None;
        }
        let key = &self.groups[gi].key;
        let grace = takeover_grace(&self.p);
        self.peer_ids().find_map(|pi| {
            let p = &self.peers[pi];
            if p.status != NodeStatus::Dead || p.left {
                return None;
            }
            if !self.lease_valid(pi) {
                return Some(format!(
                    "waiting for the tie-breaker lease against {}",
                    p.name
                ));
            }
            let st = &p.tiebreak;
            let claimed = st.claimed.as_ref().is_none_or(|s| s.contains(key));
            match st.granted_at {
                Some(t) if claimed && self.now < t.plus(grace) => Some(format!(
                    "waiting {} for {} to release it",
                    secs(t.plus(grace).since(self.now)),
                    p.name
                )),
                _ => None,
            }
        })
    }

    /// Fencing `pi` waits for the lease: only the winning side fences.
    pub(super) fn tiebreak_holds_fencing(&self, pi: PeerId) -> bool {
        self.p.tiebreaker && !self.lease_valid(pi)
    }

    /// [`TiebreakView`] of a peer for `status`.
    pub(super) fn tiebreak_view(&self, pi: PeerId) -> TiebreakView {
        let st = &self.peers[pi].tiebreak;
        let Some(since) = st.since else {
            return TiebreakView::None;
        };
        match (&st.last, st.valid_until) {
            (_, Some(until)) if until > self.now => TiebreakView::Granted { since, until },
            (Last::Refused(d), _) => TiebreakView::Refused {
                since,
                detail: d.clone(),
            },
            (Last::Unreachable(d), _) => TiebreakView::Unreachable {
                since,
                detail: d.clone(),
                attempts: st.failures,
            },
            _ => TiebreakView::Asking { since },
        }
    }
}

//! STONITH: a dead peer that may still run groups is fenced before any of
//! them starts here (heartbeat §6.5). The core decides *whether* and *when*;
//! the driver runs the devices ([`Action::Fence`]) and reports back
//! ([`Event::FenceResult`]). Without a device heartbeat takes over
//! unprotected and says so on the wire (`n_stnth`); so do we.

use super::*;

/// heartbeat retries a failed reset every 5 s, forever: a node that could
/// not be fenced may still run the groups, so they never start unfenced.
pub(super) const FENCE_RETRY: Duration = Duration::from_secs(5);

/// After this many failed attempts, one log line per this many more.
const LOG_EVERY_ATTEMPTS_AFTER: u32 = 3;
const LOG_EVERY: u32 = 12;

/// Where fencing of one peer stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum FenceState {
    /// Nothing to do.
    #[default]
    None,
    /// Must be fenced; the next attempt is due at `at` (`in_flight` while
    /// the driver runs one).
    Pending {
        since: Millis,
        at: Millis,
        attempts: u32,
        in_flight: bool,
        last_error: Option<String>,
        /// The groups it may run (`None`: unknown, e.g. never heard, so all).
        may_run: Option<BTreeSet<String>>,
    },
    /// Off, by a device or the operator's word.
    Fenced { at: Millis, by: String },
}

impl Cluster {
    /// A peer was declared dead (or never appeared within initdead): tell
    /// the cluster what STONITH does about it, and start fencing it when
    /// it may hold groups and a device is configured.
    pub(super) fn stonith_dead_peer(&mut self, pi: PeerId) {
        let p = &self.peers[pi];
        let name = p.name.clone();
        // heartbeat's rule is `rsc_hold=none`; a node without groups of its
        // own announces `local` (see `wire_hold`), so what it claims counts.
        let unneeded = p.heard_any
            && self.uses_nice_failback()
            && p.reported
            && (p.hold == RscHold::None || self.peer_may_run(pi).is_some_and(|s| s.is_empty()));
        if unneeded {
            self.send(Message::Stonith {
                node: name,
                result: StonithResult::Unneeded,
            });
        } else if self.p.fencing.configured {
            self.begin_fencing(pi);
        } else {
            self.send(Message::Stonith {
                node: name.clone(),
                result: StonithResult::NotConfigured,
            });
            self.notify(
                Level::Warn,
                Cause::Fencing,
                format!("no STONITH device configured: {name} is not fenced"),
                "shared disks are not protected; taking over anyway (heartbeat does the same)",
            );
        }
    }

    /// The groups peer `pi` may run, from its last report (`None`: it
    /// never reported, so any).
    pub(super) fn peer_may_run(&self, pi: PeerId) -> Option<BTreeSet<String>> {
        let p = &self.peers[pi];
        p.reported.then(|| {
            self.group_ids()
                .filter(|&gi| self.peer_claims(p, gi))
                .map(|gi| self.groups[gi].key.clone())
                .collect()
        })
    }

    fn begin_fencing(&mut self, pi: PeerId) {
        let name = self.peers[pi].name.clone();
        let may_run = self.peer_may_run(pi);
        // A partition: the peer decides at the same moment whether to fence
        // us. When it will, one of us waits so that one reset lands first
        // (no death match): between wasmbeat nodes the later name; a
        // heartbeat peer (its reports carry no `wb_running`) never waits,
        // so we do. heartbeat fences a node that announced anything but
        // `rsc_hold=none`; a wasmbeat peer one that claims a group.
        let p = &self.peers[pi];
        let heartbeat_peer = p.reported && p.running.is_none();
        let peer_fences_us = if !p.reported {
            true
        } else if heartbeat_peer {
            self.wire_hold() != RscHold::None
        } else {
            self.my_hold() != RscHold::None
        };
        let delay = if peer_fences_us && (heartbeat_peer || self.p.local > name) {
            self.p.fencing.delay
        } else {
            Duration::ZERO
        };
        let what = match &may_run {
            Some(s) => format!(
                "it last reported running {}",
                list(&s.iter().cloned().collect::<Vec<_>>())
            ),
            None => "it never reported what it runs".to_string(),
        };
        let when = if delay.is_zero() {
            "first attempt now".to_string()
        } else {
            format!(
                "first attempt in {} ({name} may be fencing us at this moment too: its reset lands first{})",
                secs(delay),
                if heartbeat_peer { ", heartbeat does not wait" } else { "" }
            )
        };
        self.peers[pi].fence = FenceState::Pending {
            since: self.now,
            at: self.now.plus(delay),
            attempts: 0,
            in_flight: false,
            last_error: None,
            may_run,
        };
        self.notify(
            Level::Warn,
            Cause::Fencing,
            format!("fencing {name} before taking over"),
            format!("{what}; nothing it may run starts here until it is off; {when}"),
        );
    }

    /// Timer: start every fencing attempt that is due.
    pub(super) fn fence_timers(&mut self) {
        if self.shutting_down {
            return;
        }
        // With a tie-breaker only the side holding the lease fences: the
        // loser would otherwise reset the node that serves.
        let tiebreak_holds: Vec<bool> = self
            .peer_ids()
            .map(|pi| self.tiebreak_holds_fencing(pi))
            .collect();
        for pi in self.peer_ids() {
            let now = self.now;
            if let FenceState::Pending {
                at,
                in_flight,
                attempts,
                ..
            } = &mut self.peers[pi].fence
            {
                if !*in_flight && now >= *at && !tiebreak_holds[pi.0] {
                    *in_flight = true;
                    *attempts += 1;
                    let name = self.peers[pi].name.clone();
                    self.out.push(Action::Fence(name));
                }
            }
        }
    }

    /// The next fencing attempt's time, for the timer table.
    pub(super) fn fence_deadline(&self) -> Option<Millis> {
        self.peer_ids()
            .filter(|&pi| !self.tiebreak_holds_fencing(pi))
            .filter_map(|pi| match &self.peers[pi].fence {
                FenceState::Pending {
                    at,
                    in_flight: false,
                    ..
                } => Some(*at),
                _ => None,
            })
            .min()
    }

    pub(super) fn on_fence_result(&mut self, node: &str, ok: bool, detail: &str) {
        let Some(pi) = self.peer_index(node) else {
            return;
        };
        let FenceState::Pending {
            since,
            attempts,
            may_run,
            ..
        } = self.peers[pi].fence.clone()
        else {
            self.notify(
                Level::Info,
                Cause::Fencing,
                format!("fencing result for {node} ignored"),
                format!(
                    "{node} is not waiting to be fenced (it came back or was fenced already): {}",
                    if ok { "ok" } else { detail }
                ),
            );
            return;
        };
        let groups = match &may_run {
            Some(s) => list(&s.iter().cloned().collect::<Vec<_>>()),
            None => "every group".to_string(),
        };
        if ok {
            self.peers[pi].fence = FenceState::Fenced {
                at: self.now,
                by: detail.to_string(),
            };
            self.send(Message::Stonith {
                node: node.to_string(),
                result: StonithResult::Ok,
            });
            self.notify(
                Level::Warn,
                Cause::Fencing,
                format!("{node} fenced"),
                format!(
                    "{detail}; {} after it was declared dead, attempt {}; {groups} may start here now",
                    secs(self.now.since(since)),
                    attempts.max(1)
                ),
            );
            return;
        }
        let next = self.now.plus(FENCE_RETRY);
        if let FenceState::Pending {
            at,
            in_flight,
            last_error,
            ..
        } = &mut self.peers[pi].fence
        {
            *at = next;
            *in_flight = false;
            *last_error = Some(detail.to_string());
        }
        self.send(Message::Stonith {
            node: node.to_string(),
            result: StonithResult::Bad,
        });
        if attempts <= LOG_EVERY_ATTEMPTS_AFTER || attempts % LOG_EVERY == 0 {
            self.notify(
                Level::Crit,
                Cause::Fencing,
                format!("STONITH of {node} failed (attempt {attempts}): {detail}"),
                format!(
                    "not taking over {groups}: an unfenced node may still run them; retrying every {} \
                     for {} so far (if you have made sure {node} is off: wasmbeat fence-ack {node})",
                    secs(FENCE_RETRY),
                    secs(self.now.since(since))
                ),
            );
        }
    }

    /// The peer is heard again: a pending fence is moot (it is not dead),
    /// a past one is history.
    pub(super) fn fencing_peer_back(&mut self, pi: PeerId) {
        let old = std::mem::take(&mut self.peers[pi].fence);
        if let FenceState::Pending { attempts, .. } = old {
            let name = self.peers[pi].name.clone();
            self.notify(
                Level::Warn,
                Cause::Fencing,
                format!("fencing of {name} cancelled"),
                format!("{name} is heard again after {attempts} attempt(s); the normal rules decide who runs what"),
            );
        }
    }

    /// Whether starting group `gi` here waits for a peer to be fenced:
    /// the name of that peer.
    pub(super) fn fence_blocks(&self, gi: GroupId) -> Option<&str> {
        let key = &self.groups[gi].key;
        self.peers.iter().find_map(|p| match &p.fence {
            FenceState::Pending { may_run, .. }
                if may_run.as_ref().is_none_or(|s| s.contains(key)) =>
            {
                Some(p.name.as_str())
            }
            _ => None,
        })
    }

    /// [`FenceView`] of a peer for `status`.
    pub(super) fn fence_view(p: &Peer) -> FenceView {
        match &p.fence {
            FenceState::None => FenceView::None,
            FenceState::Pending {
                since,
                attempts,
                in_flight,
                last_error,
                ..
            } => FenceView::Pending {
                since: *since,
                attempts: attempts - u32::from(*in_flight),
                last_error: last_error.clone(),
            },
            FenceState::Fenced { at, by } => FenceView::Fenced {
                at: *at,
                by: by.clone(),
            },
        }
    }
}

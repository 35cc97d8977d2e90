//! Time: one table of every deadline the core keeps. `next_deadline` is its
//! minimum; a tick fires the entries that are due, in table order.

use super::*;

/// One deadline of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// A peer is declared dead when its silence reaches its dead time.
    PeerDeath(PeerId),
    /// One medium of a live peer is declared dead after the same silence.
    LinkSilence(PeerId, LinkId),
    /// Nodes started together: own groups are taken after RQSTDELAY.
    RqstDelay,
    /// A standby hand-shake step waited too long.
    StandbyHandshake,
    /// An unanswered `starting` is repeated.
    StartingResend,
    /// An unanswered legacy `ip-request` is repeated.
    LegacyRerequest(String),
    /// A queued standby request expires (acted on by `start_pending`).
    PendingStandby,
    /// A failed start may be retried here (acted on by `reconcile`).
    StartRetry(GroupId),
    /// A failed stop is retried (acted on by `reconcile`).
    StopRetry(GroupId),
    /// The next own status message.
    OwnStatus,
    /// A ping node's death or settlement (acted on by `ping_timers`).
    PingNodes,
    /// ipfail's delayed give-away, or a deferred repeat of our count
    /// (acted on by `ping_timers`).
    IpfailGiveup,
    /// A fencing attempt is due (acted on by `fence_timers`).
    FenceAttempt,
    /// A tie-breaker exchange is due, or a takeover grace ends (acted on
    /// by `tiebreak_timers` and `reconcile`).
    Tiebreak,
}

impl Cluster {
    /// Every deadline, in the order a tick handles them.
    pub(super) fn timer_table(&self) -> Vec<(Millis, Timer)> {
        let mut t = Vec::new();
        for (pi, p) in self.peer_ids().zip(&self.peers) {
            if p.status == NodeStatus::Dead {
                continue;
            }
            t.push((
                self.death_at(p, p.last_status.unwrap_or(self.started_at)),
                Timer::PeerDeath(pi),
            ));
            for (link, (last, up)) in &p.links {
                if *up {
                    t.push((
                        self.death_at(p, *last),
                        Timer::LinkSilence(pi, link.clone()),
                    ));
                }
            }
        }
        if let Phase::RscRcvd(at) = self.phase {
            t.push((at, Timer::RqstDelay));
        }
        if let Standby::Giving { deadline, .. } | Standby::Taking { deadline, .. } = &self.standby {
            t.push((*deadline, Timer::StandbyHandshake));
        }
        if let Some(at) = self.starting_sent_at {
            if matches!(self.phase, Phase::Starting | Phase::BothStarting) {
                t.push((at.plus(STARTING_RESEND), Timer::StartingResend));
            }
        }
        for (key, at) in &self.legacy_req {
            t.push((
                at.plus(LEGACY_REREQUEST),
                Timer::LegacyRerequest(key.clone()),
            ));
        }
        if let Some(p) = &self.pending {
            t.push((p.expires, Timer::PendingStandby));
        }
        for (gi, g) in self.group_ids().zip(&self.groups) {
            if g.want && g.run == Run::Stopped {
                if let Some(at) = g.retry_at.filter(|at| *at > self.now) {
                    t.push((at, Timer::StartRetry(gi)));
                }
            }
            if g.run == Run::Running && !g.want {
                if let Some(at) = g.stop_retry_at {
                    t.push((at, Timer::StopRetry(gi)));
                }
            }
        }
        t.push((self.next_status_at, Timer::OwnStatus));
        if let Some(at) = self.ping.deadline(self.ping_limit()) {
            t.push((at, Timer::PingNodes));
        }
        if let Some(at) = self.links.deadline() {
            t.push((at, Timer::PingNodes));
        }
        if let Some(at) = self.ipfail.as_ref().and_then(|f| f.deadline(self.now)) {
            t.push((at, Timer::IpfailGiveup));
        }
        if let Some(at) = self.fence_deadline() {
            t.push((at, Timer::FenceAttempt));
        }
        if let Some(at) = self.tiebreak_deadline() {
            t.push((at, Timer::Tiebreak));
        }
        t
    }

    /// The latest time at which the caller must deliver [`Event::Tick`] (none after exit).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadline
    }

    /// The timer table's earliest entry now (none after exit).
    pub(super) fn earliest_timer(&self) -> Option<Millis> {
        if self.exited {
            return None;
        }
        self.timer_table().into_iter().map(|(at, _)| at).min()
    }

    /// Fire every due timer. Membership first (deaths, then silent links),
    /// then comm-up is re-judged, then the protocol timers. Each handler
    /// re-checks its condition: an earlier one may have changed the state.
    pub(super) fn timers(&mut self) {
        let now = self.now;
        let due: Vec<Timer> = self
            .timer_table()
            .into_iter()
            .filter(|(at, _)| now >= *at)
            .map(|(_, timer)| timer)
            .collect();
        let (membership, rest): (Vec<Timer>, Vec<Timer>) = due
            .into_iter()
            .partition(|t| matches!(t, Timer::PeerDeath(_) | Timer::LinkSilence(..)));
        for timer in membership {
            self.fire(timer);
        }
        self.check_comm_up();
        for timer in rest {
            self.fire(timer);
        }
    }

    fn fire(&mut self, timer: Timer) {
        let now = self.now;
        match timer {
            Timer::PeerDeath(pi) => {
                if self.not_declared_dead(pi) {
                    self.declare_dead(pi);
                }
            }
            Timer::LinkSilence(pi, link) => {
                if !self.not_declared_dead(pi) {
                    return;
                }
                let limit = self.dead_limit(&self.peers[pi]);
                let Some(v) = self.peers[pi].links.get_mut(&link) else {
                    return;
                };
                if !v.1 || now < v.0.plus(limit).max(self.stall_grace_until) {
                    return;
                }
                v.1 = false;
                let name = self.peers[pi].name.clone();
                self.notify(
                    Level::Warn,
                    Cause::Link,
                    format!("link {name}:{link} dead"),
                    format!(
                        "nothing heard on it for {}; other links still carry heartbeats",
                        secs(limit)
                    ),
                );
                // ipfail compares counts whenever a link dies (ipfail.c LinkStatus).
                self.ipfail_count_changed();
            }
            Timer::RqstDelay => {
                if let Phase::RscRcvd(at) = self.phase {
                    if now >= at {
                        self.acquire_own(&format!(
                            "no peer became stable within {} (RQSTDELAY): nodes started together",
                            secs(RQSTDELAY)
                        ));
                    }
                }
            }
            Timer::StandbyHandshake => match self.standby.clone() {
                Standby::Giving {
                    phase, deadline, ..
                } if now >= deadline => {
                    self.standby = Standby::Not;
                    let what = if phase == GivePhase::AwaitOther {
                        "no reply to standby request; standby request cancelled"
                    } else {
                        "standby hand-shake timed out"
                    };
                    self.notify(
                        Level::Warn,
                        Cause::Standby,
                        what,
                        format!("phase {phase:?}"),
                    );
                }
                Standby::Taking { deadline, .. } if now >= deadline => {
                    self.standby = Standby::Not;
                    self.notify(
                        Level::Warn,
                        Cause::Standby,
                        "standby hand-shake timed out",
                        "peer never finished",
                    );
                }
                _ => {}
            },
            Timer::StartingResend => {
                if let Some(at) = self.starting_sent_at {
                    if matches!(self.phase, Phase::Starting | Phase::BothStarting)
                        && now >= at.plus(STARTING_RESEND)
                        && self.any_live_peer()
                    {
                        self.send(Message::Starting);
                        self.starting_sent_at = Some(now);
                    }
                }
            }
            Timer::LegacyRerequest(key) => {
                if self
                    .legacy_req
                    .get(&key)
                    .is_none_or(|at| now < at.plus(LEGACY_REREQUEST))
                {
                    return;
                }
                if self.any_live_peer() && !self.shutting_down {
                    self.legacy_req.insert(key.clone(), now);
                    self.send(Message::IpRequest { key });
                } else {
                    self.legacy_req.remove(&key);
                }
            }
            // Acted on by `progress` (start_pending, reconcile) and
            // `status_if_due`, which run after every event: the table only
            // makes sure a tick comes in time.
            Timer::PendingStandby
            | Timer::StartRetry(_)
            | Timer::StopRetry(_)
            | Timer::OwnStatus
            | Timer::PingNodes
            | Timer::IpfailGiveup
            | Timer::FenceAttempt
            | Timer::Tiebreak => {}
        }
    }

    /// Own status every keepalive, and at once when the local status changed.
    ///
    /// Runs after every event, and sends up to half a keepalive early
    /// when the node is awake anyway: the peer's heartbeat arriving wakes
    /// it, and answering then saves the wake-up of our own timer. Two
    /// nodes settle into one sending on its timer and the other right
    /// after it, so the second costs one wake-up per keepalive instead of
    /// two. Half, not less: whatever the two timers' phases, one of them
    /// is due within half a keepalive of the other's arrival, so every
    /// pair locks (with a quarter, half of all phases never did, and
    /// their nodes woke twice per keepalive for good). Heartbeats stay at
    /// least half a keepalive apart and never later than a keepalive, so
    /// a peer's deadtime and warntime see nothing new.
    pub(super) fn status_if_due(&mut self) {
        if self.now.plus(self.p.keepalive / 2) >= self.next_status_at {
            let status = self.local_status;
            let deadtime = self.advertised_dt();
            self.send(Message::Status { status, deadtime });
            if self.local_status == NodeStatus::Init {
                self.local_status = NodeStatus::Up;
            }
            self.next_status_at = self.now.plus(self.p.keepalive);
        }
    }
}

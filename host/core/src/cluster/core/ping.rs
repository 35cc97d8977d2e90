//! Ping nodes and ipfail inside the core: the tracker's liveness verdicts
//! become notifications, and ipfail's decisions become messages to the
//! peer and standby requests (spec §6.8; the rules are in `crate::ping`
//! and `crate::ipfail`).

use super::*;
use crate::ipfail::{Ipfail, IpfailAction, IpfailParams, Situation};
use crate::ping::{PingChange, PingTracker};

/// The pure parts built from the parameters.
pub(super) fn build(p: &ClusterParams, now: Millis) -> (PingTracker, Option<Ipfail>) {
    let tracker = PingTracker::new(&p.ping.nodes, now, p.ping.deadping);
    // heartbeat's ipfail exits at start under `auto_failback legacy`
    // ("incompatible legacy option"); `check` says so.
    let ipfail = (p.ping.ipfail && p.auto_failback != AutoFailback::Legacy).then(|| {
        Ipfail::new(IpfailParams {
            keepalive: p.keepalive,
            failback_delay: p.ping.deadping,
            auto_failback: p.auto_failback == AutoFailback::On,
        })
    });
    (tracker, ipfail)
}

impl Cluster {
    /// The silence after which a ping node is dead: `initdead` until
    /// communication is up (as heartbeat's check_for_timeouts), then `deadping`.
    pub(super) fn ping_limit(&self) -> Duration {
        if self.comm_up {
            self.p.ping.deadping
        } else {
            self.p.initdead.max(self.p.ping.deadping)
        }
    }

    /// Our ipfail count: the ping nodes we reach, or 0 while a tracked
    /// link has no carrier (cut off through it whatever the ping nodes
    /// say: the count drops at once instead of after `deadping`).
    fn my_count(&self) -> usize {
        if self.links.all_up() {
            self.ping.count()
        } else {
            0
        }
    }

    fn situation(&self) -> Situation {
        Situation {
            mine: self.my_count(),
            configured: self.ping.len(),
            holds_foreign: self.my_hold().has_foreign(),
        }
    }

    fn reach(&self) -> String {
        let down = self.links.down();
        let links = if down.is_empty() {
            String::new()
        } else {
            format!(
                " (counted as 0: tracked link(s) {} without carrier)",
                down.join(", ")
            )
        };
        format!(
            "{} reaches {} of {} ping node(s){links}",
            self.p.local,
            self.ping.count(),
            self.ping.len()
        )
    }

    /// A tracked link's carrier changed (wasmbeat `track_link`).
    pub(super) fn on_carrier(&mut self, iface: &str, up: bool) {
        let now = self.now;
        let Some(change) = self.links.on_carrier(now, iface, up) else {
            return;
        };
        match change {
            crate::link::LinkChange::Down { name } => {
                let reach = self.reach();
                self.notify(
                    Level::Warn,
                    Cause::PingNode,
                    format!("tracked link {name} lost carrier"),
                    format!("{reach}; asking the peer to take our groups now"),
                );
                self.ipfail_count_changed();
            }
            crate::link::LinkChange::Returned { name } => {
                let hold = secs(self.p.ping.deadping);
                let reach = self.reach();
                self.notify(
                    Level::Info,
                    Cause::PingNode,
                    format!("tracked link {name} has carrier again"),
                    format!("it counts after {hold} with carrier (hysteresis); {reach} meanwhile"),
                );
            }
            crate::link::LinkChange::Settled { .. } => {}
        }
    }

    pub(super) fn on_ping_reply(&mut self, member: &str) {
        let now = self.now;
        let Some(change) = self.ping.on_reply(now, member) else {
            return;
        };
        if let PingChange::Up { name, was_dead } = change {
            if was_dead {
                let hold = secs(self.p.ping.deadping);
                let reach = self.reach();
                self.notify(
                    Level::Info,
                    Cause::PingNode,
                    format!("ping node {name} answers again"),
                    format!("echo reply from {member}; it counts again after {hold} of answers (hysteresis); {reach} meanwhile"),
                );
            } else {
                let reach = self.reach();
                self.notify(
                    Level::Info,
                    Cause::PingNode,
                    format!("ping node {name} up"),
                    format!("first echo reply, from {member}; {reach}"),
                );
                self.ipfail_count_changed();
            }
        }
    }

    /// Deaths and settlements of ping nodes, then a due ipfail give-away.
    pub(super) fn ping_timers(&mut self) {
        let now = self.now;
        let limit = self.ping_limit();
        for change in self.ping.expire(now, limit) {
            match change {
                PingChange::Dead { name, silent_for } => {
                    let reach = self.reach();
                    self.notify(
                        Level::Warn,
                        Cause::PingNode,
                        format!("ping node {name} dead"),
                        format!("no echo reply for {}; {reach}", secs(silent_for)),
                    );
                    self.ipfail_count_changed();
                }
                PingChange::Settled { name } => {
                    let reach = self.reach();
                    self.notify(
                        Level::Info,
                        Cause::PingNode,
                        format!("ping node {name} counts again"),
                        format!(
                            "it answered for {} without dying; {reach}",
                            secs(self.p.ping.deadping)
                        ),
                    );
                    self.ipfail_count_changed();
                }
                PingChange::Up { .. } => {}
            }
        }
        for change in self.links.expire(now) {
            if let crate::link::LinkChange::Settled { name } = change {
                let reach = self.reach();
                self.notify(
                    Level::Info,
                    Cause::PingNode,
                    format!("tracked link {name} counts again"),
                    format!(
                        "carrier present for {}; {reach}",
                        secs(self.p.ping.deadping)
                    ),
                );
                self.ipfail_count_changed();
            }
        }
        let stable = self.locally_stable();
        if let Some(f) = &mut self.ipfail {
            let acts = f.on_tick(now, stable);
            self.ipfail_do(acts);
        }
        if self.ipfail_both_stable() {
            let s = self.situation();
            if let Some(f) = &mut self.ipfail {
                let acts = f.on_stable(now, s);
                self.ipfail_do(acts);
            }
        }
    }

    /// Our count changed (or the peer must hear it): ask the peer for its,
    /// and once more when both sides are stable if either is not now.
    pub(super) fn ipfail_count_changed(&mut self) {
        let s = self.situation();
        let stable = self.ipfail_both_stable();
        let now = self.now;
        if let Some(f) = &mut self.ipfail {
            if !stable {
                f.ask_again_when_stable();
            }
            let acts = f.count_changed(now, s);
            self.ipfail_do(acts);
        }
    }

    /// We and a live peer are both out of transition: when ipfail's
    /// deferred questions are asked again.
    fn ipfail_both_stable(&self) -> bool {
        self.locally_stable()
            && self
                .peers
                .iter()
                .any(|p| p.status != NodeStatus::Dead && p.stable)
    }

    /// Communication is up: announce our ipfail as heartbeat does when its
    /// ipfail signs on, so the peer's ipfail compares counts with us.
    pub(super) fn ipfail_join(&mut self) {
        if self.ipfail.is_some() && self.any_live_peer() {
            self.send(Message::IpfailJoin);
        }
    }

    /// The live peer messages go to (heartbeat's ipfail pairs with the one
    /// other normal node).
    fn ipfail_peer(&self) -> Option<String> {
        self.peers
            .iter()
            .find(|p| p.status != NodeStatus::Dead && p.heard_any)
            .map(|p| p.name.clone())
    }

    fn ipfail_do(&mut self, acts: Vec<IpfailAction>) {
        for a in acts {
            let peer = self.ipfail_peer();
            match a {
                IpfailAction::AskPeer { count } => {
                    if let (true, Some(dest)) = (self.comm_up, peer) {
                        self.send(Message::NumPingNodes { dest, count });
                    }
                }
                IpfailAction::YouAreDead => {
                    if let Some(dest) = peer {
                        self.send(Message::YouAreDead { dest });
                    }
                }
                IpfailAction::AbortGiveup => {
                    if let Some(dest) = peer {
                        self.send(Message::AbortGiveup { dest });
                    }
                }
                IpfailAction::GiveUp { set, why } => {
                    let to = peer.unwrap_or_else(|| "the peer".into());
                    let held = self.my_hold();
                    let nothing = match set {
                        RscHold::Foreign => !held.has_foreign(),
                        _ => held == RscHold::None,
                    };
                    if nothing {
                        // The peer's answer to a count we sent after the
                        // groups had already gone: a standby hand-shake
                        // for nothing would only put both sides in
                        // transition, where heartbeat's ipfail ignores
                        // counts.
                        self.notify(
                            Level::Info,
                            Cause::Ipfail,
                            format!(
                                "ipfail: nothing to give to {to}: we hold no {} groups",
                                set.as_str()
                            ),
                            why,
                        );
                        continue;
                    }
                    self.notify(
                        Level::Warn,
                        Cause::Ipfail,
                        format!("ipfail: giving {} groups to {to}", set.as_str()),
                        why.clone(),
                    );
                    self.request_standby(set, format!("ipfail: {why}"));
                }
                IpfailAction::Note { what, why } => {
                    self.notify(Level::Info, Cause::Ipfail, what, why);
                }
            }
        }
    }

    /// ipfail's messages from the peer (already checked to be for us).
    pub(super) fn on_ipfail_message(&mut self, pi: PeerId, msg: Message) {
        let name = self.peers[pi].name.clone();
        let now = self.now;
        let s = self.situation();
        let Some(f) = &mut self.ipfail else {
            tracing::debug!(from = %name, ?msg, "ipfail message ignored: ipfail is not configured here");
            return;
        };
        let acts = match msg {
            Message::NumPingNodes { dest, count } if dest == self.p.local => {
                self.peer_ping_count = Some(count);
                f.on_peer_count(now, &name, count, s)
            }
            Message::YouAreDead { dest } if dest == self.p.local => {
                f.on_you_are_dead(now, &name, s)
            }
            Message::AbortGiveup { dest } if dest == self.p.local => f.on_abort(&name),
            Message::IpfailJoin => f.count_changed(now, s),
            _ => Vec::new(),
        };
        self.ipfail_do(acts);
    }

    /// A reload may change the ping nodes or ipfail: start them afresh
    /// (their liveness is re-learnt within one probe interval).
    pub(super) fn reload_ping(&mut self, old: &PingParams) {
        if *old != *self.p.ping {
            let (tracker, ipfail) = build(&self.p, self.now);
            self.ping = tracker;
            self.links =
                crate::link::LinkTracker::new(&self.p.ping.track_links, self.p.ping.deadping);
            self.ipfail = ipfail;
        }
    }

    pub(super) fn ipfail_view(&self) -> Option<IpfailView> {
        self.ipfail.as_ref().map(|f| IpfailView {
            mine: self.my_count(),
            peer: self.peer_ping_count,
            pending: f.pending(),
        })
    }
}

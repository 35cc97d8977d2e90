//! Ping nodes (ha.cf `ping`, `ping6`, `ping_group`): pseudo-nodes whose only
//! sign of life is an ICMP echo reply, as heartbeat 3.0.6 models them
//! (spec §6.8, ping medium row of §5.1).
//!
//! The tracker is told "an echo reply from member X arrived at t" and
//! decides, from silence alone, when a ping node is `dead`: after the dead
//! time the caller passes (heartbeat: `initdead` until communication is up,
//! then `deadping`). A `ping_group` is one pseudo-node that lives while any
//! of its members answers. Nothing here sends an echo or reads a clock.
//!
//! Hysteresis: a ping node that came back *counts* (for ipfail's
//! comparison) only once it has stayed up for a hold time. Its status says
//! `ping` at once, as heartbeat shows it; only the count waits, so a
//! flapping uplink cannot pull groups back on every short answer.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::time::Millis;

/// One configured ping node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNodeSpec {
    /// Its node name: the address for `ping`/`ping6`, the group name for
    /// `ping_group` (heartbeat names them so in `cl_status listnodes`).
    pub name: String,
    /// The addresses probed, as written in ha.cf.
    pub members: Vec<String>,
}

/// A ping node's status, in heartbeat's words (`cl_status nodestatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PingStatus {
    /// No reply yet since start.
    Init,
    /// Replies arrive (`ping`).
    Ping,
    /// No reply for the dead time (`dead`).
    Dead,
}

impl PingStatus {
    /// heartbeat's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PingStatus::Init => "init",
            PingStatus::Ping => "ping",
            PingStatus::Dead => "dead",
        }
    }
}

/// A transition the tracker decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingChange {
    /// The first reply after start or after being declared dead.
    Up {
        /// Ping node name.
        name: String,
        /// Whether it had been declared dead before.
        was_dead: bool,
    },
    /// No reply for `silent_for`.
    Dead {
        /// Ping node name.
        name: String,
        /// How long nothing came back.
        silent_for: Duration,
    },
    /// Up for the hold time without dying: it counts again.
    Settled {
        /// Ping node name.
        name: String,
    },
}

#[derive(Clone, Debug)]
struct State {
    spec: PingNodeSpec,
    status: PingStatus,
    last_reply: Option<Millis>,
    /// When it last came up (status became `ping`).
    up_since: Option<Millis>,
    /// Whether it counts (up for the hold time).
    counted: bool,
}

/// A read-only view of one ping node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingView {
    /// Ping node name.
    pub name: String,
    /// Probed addresses.
    pub members: Vec<String>,
    /// `init` / `ping` / `dead`.
    pub status: PingStatus,
    /// When the last echo reply arrived.
    pub last_reply: Option<Millis>,
    /// Whether ipfail counts it (up for the hold time).
    pub counted: bool,
}

/// Liveness of every ping node. See the module docs.
#[derive(Clone, Debug)]
pub struct PingTracker {
    nodes: Vec<State>,
    started: Millis,
    hold: Duration,
}

impl PingTracker {
    /// Nothing heard yet at `now`; a node that comes back counts after `hold`.
    pub fn new(specs: &[PingNodeSpec], now: Millis, hold: Duration) -> PingTracker {
        PingTracker {
            nodes: specs
                .iter()
                .map(|s| State {
                    spec: s.clone(),
                    status: PingStatus::Init,
                    last_reply: None,
                    up_since: None,
                    counted: false,
                })
                .collect(),
            started: now,
            hold,
        }
    }

    /// Whether any ping node is configured.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many ping nodes are configured.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The ping node `member` (an address as written in ha.cf) belongs to.
    pub fn owner_of(&self, member: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.spec.members.iter().any(|m| m == member))
            .map(|n| n.spec.name.as_str())
    }

    /// An echo reply from `member` arrived at `now`. A first reply of a
    /// node that had never answered counts at once (there is nothing to
    /// flap back from at start); a node returning from the dead waits the
    /// hold time.
    pub fn on_reply(&mut self, now: Millis, member: &str) -> Option<PingChange> {
        let n = self
            .nodes
            .iter_mut()
            .find(|n| n.spec.members.iter().any(|m| m == member))?;
        n.last_reply = Some(now);
        match n.status {
            PingStatus::Ping => None,
            prev => {
                n.status = PingStatus::Ping;
                n.up_since = Some(now);
                n.counted = prev == PingStatus::Init;
                Some(PingChange::Up {
                    name: n.spec.name.clone(),
                    was_dead: prev == PingStatus::Dead,
                })
            }
        }
    }

    /// The earliest time at which [`PingTracker::expire`] has something to
    /// do, with `limit` the dead time in force.
    pub fn deadline(&self, limit: Duration) -> Option<Millis> {
        self.nodes
            .iter()
            .filter_map(|n| match n.status {
                PingStatus::Dead => None,
                _ if n.status == PingStatus::Ping && !n.counted => {
                    let death = n.last_reply.unwrap_or(self.started).plus(limit);
                    let settle = n.up_since.unwrap_or(self.started).plus(self.hold);
                    Some(death.min(settle))
                }
                _ => Some(n.last_reply.unwrap_or(self.started).plus(limit)),
            })
            .min()
    }

    /// Declare dead every node silent for `limit`, and count every node up
    /// for the hold time; in configuration order.
    pub fn expire(&mut self, now: Millis, limit: Duration) -> Vec<PingChange> {
        let mut changes = Vec::new();
        for n in &mut self.nodes {
            if n.status == PingStatus::Dead {
                continue;
            }
            let last = n.last_reply.unwrap_or(self.started);
            if now >= last.plus(limit) {
                n.status = PingStatus::Dead;
                n.counted = false;
                n.up_since = None;
                changes.push(PingChange::Dead {
                    name: n.spec.name.clone(),
                    silent_for: now.since(last),
                });
                continue;
            }
            if n.status == PingStatus::Ping
                && !n.counted
                && n.up_since.is_some_and(|t| now >= t.plus(self.hold))
            {
                n.counted = true;
                changes.push(PingChange::Settled {
                    name: n.spec.name.clone(),
                });
            }
        }
        changes
    }

    /// How many ping nodes count: up, and up for the hold time if they
    /// came back from the dead. This is the number ipfail compares.
    pub fn count(&self) -> usize {
        self.nodes.iter().filter(|n| n.counted).count()
    }

    /// How many ping nodes answer at all (status `ping`).
    pub fn reachable(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.status == PingStatus::Ping)
            .count()
    }

    /// Every ping node, in configuration order.
    pub fn view(&self) -> Vec<PingView> {
        self.nodes
            .iter()
            .map(|n| PingView {
                name: n.spec.name.clone(),
                members: n.spec.members.clone(),
                status: n.status,
                last_reply: n.last_reply,
                counted: n.counted,
            })
            .collect()
    }

    /// Status of the ping node `name`.
    pub fn status_of(&self, name: &str) -> Option<PingStatus> {
        self.nodes
            .iter()
            .find(|n| n.spec.name == name)
            .map(|n| n.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(2);
    const HOLD: Duration = Duration::from_secs(2);

    fn specs() -> Vec<PingNodeSpec> {
        vec![
            PingNodeSpec {
                name: "10.0.0.254".into(),
                members: vec!["10.0.0.254".into()],
            },
            PingNodeSpec {
                name: "uplinks".into(),
                members: vec!["10.0.1.1".into(), "10.0.1.2".into()],
            },
        ]
    }

    #[test]
    fn first_reply_makes_a_node_ping_and_counted_at_once() {
        let mut t = PingTracker::new(&specs(), Millis(0), HOLD);
        assert_eq!(t.status_of("10.0.0.254"), Some(PingStatus::Init));
        let c = t.on_reply(Millis(100), "10.0.0.254");
        assert_eq!(
            c,
            Some(PingChange::Up {
                name: "10.0.0.254".into(),
                was_dead: false
            })
        );
        assert_eq!(t.count(), 1);
        assert_eq!(t.on_reply(Millis(600), "10.0.0.254"), None);
    }

    #[test]
    fn silence_for_the_dead_time_declares_dead_and_not_a_moment_earlier() {
        let mut t = PingTracker::new(&specs(), Millis(0), HOLD);
        t.on_reply(Millis(1000), "10.0.0.254");
        t.on_reply(Millis(1000), "10.0.1.2");
        assert_eq!(t.deadline(LIMIT), Some(Millis(3000)));
        assert!(t.expire(Millis(2999), LIMIT).is_empty());
        let c = t.expire(Millis(3000), LIMIT);
        assert_eq!(c.len(), 2);
        assert!(
            matches!(&c[0], PingChange::Dead { name, silent_for } if name == "10.0.0.254" && *silent_for == LIMIT)
        );
        assert_eq!(t.count(), 0);
        assert_eq!(t.deadline(LIMIT), None, "dead nodes have no deadline");
    }

    #[test]
    fn a_node_that_never_answers_dies_after_the_limit_from_start() {
        let mut t = PingTracker::new(&specs(), Millis(500), HOLD);
        let c = t.expire(Millis(2500), LIMIT);
        assert_eq!(c.len(), 2);
        assert_eq!(t.status_of("uplinks"), Some(PingStatus::Dead));
    }

    #[test]
    fn a_group_lives_while_any_member_answers() {
        let mut t = PingTracker::new(&specs(), Millis(0), HOLD);
        t.on_reply(Millis(0), "10.0.1.1");
        t.on_reply(Millis(1500), "10.0.1.2");
        t.expire(Millis(2000), LIMIT);
        assert_eq!(t.status_of("uplinks"), Some(PingStatus::Ping));
        assert_eq!(t.owner_of("10.0.1.2"), Some("uplinks"));
        assert_eq!(t.on_reply(Millis(0), "192.0.2.1"), None, "not a member");
    }

    #[test]
    fn a_node_back_from_the_dead_counts_only_after_the_hold() {
        let mut t = PingTracker::new(&specs()[..1], Millis(0), HOLD);
        t.on_reply(Millis(0), "10.0.0.254");
        t.expire(Millis(2000), LIMIT);
        assert_eq!(t.count(), 0);
        let up = t.on_reply(Millis(5000), "10.0.0.254");
        assert!(matches!(up, Some(PingChange::Up { was_dead: true, .. })));
        assert_eq!(t.status_of("10.0.0.254"), Some(PingStatus::Ping));
        assert_eq!(t.reachable(), 1);
        assert_eq!(t.count(), 0, "not counted before the hold");
        t.on_reply(Millis(6000), "10.0.0.254");
        assert_eq!(t.deadline(LIMIT), Some(Millis(7000)), "the hold ends first");
        assert_eq!(
            t.expire(Millis(7000), LIMIT),
            vec![PingChange::Settled {
                name: "10.0.0.254".into()
            }]
        );
        assert_eq!(t.count(), 1);
    }

    #[test]
    fn a_flapping_node_never_settles() {
        let mut t = PingTracker::new(&specs()[..1], Millis(0), HOLD);
        t.on_reply(Millis(0), "10.0.0.254");
        // Answers for 1.5 s, silent for 2.5 s, again and again.
        let mut now = 0;
        for _ in 0..5 {
            now += 4000;
            t.expire(Millis(now - 1), LIMIT);
            assert_eq!(t.status_of("10.0.0.254"), Some(PingStatus::Dead));
            t.on_reply(Millis(now), "10.0.0.254");
            t.on_reply(Millis(now + 1500), "10.0.0.254");
            t.expire(Millis(now + 1500), LIMIT);
            assert_eq!(t.count(), 0, "up 1.5 s < hold 2 s: never counted");
        }
    }
}

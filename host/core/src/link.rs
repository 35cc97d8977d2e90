//! Link tracking (wasmbeat-only ha.cf `track_link <iface>`): the carrier of
//! an interface that carries a VIP, as the kernel reports it. A tracked
//! link that loses carrier makes this node's ipfail count 0 at once, so the
//! peer answers `you_are_dead` and the groups move without waiting for
//! `deadping`; a returned carrier counts only after it has stayed up for
//! the hold time (`deadping`), the same hysteresis as a returned ping node.
//! The count stays heartbeat's meaning (ping nodes reached), so a heartbeat
//! peer running the real ipfail compares like with like.
//!
//! Pure: the caller feeds carrier events and time.

use std::time::Duration;

use crate::time::Millis;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Link {
    name: String,
    /// Carrier present now (as last reported).
    carrier: bool,
    /// Counted as up: carrier present for at least the hold time (or
    /// since start, when the first report says up).
    counted: bool,
    /// When the carrier came back, while not yet counted.
    back_at: Option<Millis>,
}

/// What changed, for a log line and the ipfail count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// Carrier lost: the node is cut off through this link, now.
    Down {
        /// Interface name.
        name: String,
    },
    /// Carrier back; it counts after the hold time.
    Returned {
        /// Interface name.
        name: String,
    },
    /// Carrier up for the hold time: the link counts again.
    Settled {
        /// Interface name.
        name: String,
    },
}

/// The tracked links of one node. See the module docs.
#[derive(Clone, Debug)]
pub struct LinkTracker {
    links: Vec<Link>,
    hold: Duration,
}

impl LinkTracker {
    /// Links start counted: a link is only ever "down" on a report saying
    /// so (the edge reports every tracked link's state at start).
    pub fn new(names: &[String], hold: Duration) -> LinkTracker {
        LinkTracker {
            links: names
                .iter()
                .map(|n| Link {
                    name: n.clone(),
                    carrier: true,
                    counted: true,
                    back_at: None,
                })
                .collect(),
            hold,
        }
    }

    /// No link is tracked.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Every tracked link counts (carrier up for the hold time).
    pub fn all_up(&self) -> bool {
        self.links.iter().all(|l| l.counted)
    }

    /// The tracked links that do not count now, for the log.
    pub fn down(&self) -> Vec<&str> {
        self.links
            .iter()
            .filter(|l| !l.counted)
            .map(|l| l.name.as_str())
            .collect()
    }

    /// The kernel reported `name`'s carrier. Unknown names and repeats of
    /// the current state change nothing.
    pub fn on_carrier(&mut self, now: Millis, name: &str, up: bool) -> Option<LinkChange> {
        let l = self.links.iter_mut().find(|l| l.name == name)?;
        if l.carrier == up {
            return None;
        }
        l.carrier = up;
        let name = l.name.clone();
        if up {
            l.back_at = Some(now);
            Some(LinkChange::Returned { name })
        } else {
            l.back_at = None;
            // A carrier lost again before it counted was already not
            // counted: nothing new to act on.
            if !l.counted {
                return None;
            }
            l.counted = false;
            Some(LinkChange::Down { name })
        }
    }

    /// When the next returned link settles.
    pub fn deadline(&self) -> Option<Millis> {
        self.links
            .iter()
            .filter_map(|l| l.back_at.map(|t| t.plus(self.hold)))
            .min()
    }

    /// Links whose carrier has been back for the hold time now count.
    pub fn expire(&mut self, now: Millis) -> Vec<LinkChange> {
        let hold = self.hold;
        let mut out = Vec::new();
        for l in &mut self.links {
            if let Some(t) = l.back_at {
                if now >= t.plus(hold) {
                    l.back_at = None;
                    l.counted = true;
                    out.push(LinkChange::Settled {
                        name: l.name.clone(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Millis {
        Millis(ms)
    }

    #[test]
    fn carrier_loss_is_immediate_and_return_counts_after_the_hold() {
        let mut k = LinkTracker::new(&["eth0".into()], Duration::from_secs(2));
        assert!(k.all_up());
        assert_eq!(
            k.on_carrier(t(100), "eth0", false),
            Some(LinkChange::Down {
                name: "eth0".into()
            })
        );
        assert!(!k.all_up());
        assert_eq!(k.down(), vec!["eth0"]);
        assert!(matches!(
            k.on_carrier(t(1000), "eth0", true),
            Some(LinkChange::Returned { .. })
        ));
        assert!(!k.all_up(), "not before the hold time");
        assert_eq!(k.deadline(), Some(t(3000)));
        assert!(k.expire(t(2999)).is_empty());
        assert_eq!(k.expire(t(3000)).len(), 1);
        assert!(k.all_up());
    }

    #[test]
    fn a_flapping_carrier_goes_down_once_and_counts_only_after_a_full_hold() {
        let mut k = LinkTracker::new(&["eth0".into()], Duration::from_secs(2));
        let mut downs = 0;
        for i in 0..5u64 {
            let base = i * 1000;
            if let Some(LinkChange::Down { .. }) = k.on_carrier(t(base), "eth0", false) {
                downs += 1;
            }
            k.on_carrier(t(base + 500), "eth0", true);
            k.expire(t(base + 999));
        }
        assert_eq!(downs, 1, "one hand-over for the whole flapping spell");
        assert!(!k.all_up());
        assert!(k.expire(t(4500 + 2000)).len() == 1 && k.all_up());
    }

    #[test]
    fn unknown_interfaces_and_repeats_change_nothing() {
        let mut k = LinkTracker::new(&["eth0".into()], Duration::from_secs(2));
        assert_eq!(k.on_carrier(t(0), "eth1", false), None);
        assert_eq!(k.on_carrier(t(0), "eth0", true), None);
        assert!(k.all_up());
    }
}

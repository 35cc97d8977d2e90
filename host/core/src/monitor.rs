//! Resource monitoring, beyond heartbeat v1 (which never noticed a dead
//! service): a resource with a monitor interval is probed while its group
//! runs here; a failed probe restarts it locally, up to a budget, after
//! which the group is handed to the peer. Off unless configured.

use std::time::Duration;

/// How one resource is monitored (from agents.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MonitorSpec {
    /// Time between two probes while the group runs here.
    pub interval: Duration,
    /// Local restarts allowed before the group is given to the peer.
    pub max_restarts: u32,
}

/// One resource of a group in the monitoring plan: its name (the
/// haresources token, for log lines) and how it is probed, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitored {
    /// The resource token, e.g. `IPaddr::10.0.0.10/24`.
    pub resource: String,
    /// None: not probed.
    pub spec: Option<MonitorSpec>,
}

/// What to do after a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The resource runs: nothing to do.
    Healthy,
    /// Restart it here; this is restart number `attempt` of `max`.
    Restart {
        /// 1-based restart number.
        attempt: u32,
        /// The budget.
        max: u32,
    },
    /// The budget is spent: give the group to the peer.
    GiveUp {
        /// Restarts already tried.
        restarts: u32,
    },
}

/// Restarts used since the group was last started by the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    used: u32,
    max: u32,
}

impl RestartBudget {
    /// A fresh budget of `max` restarts.
    pub fn new(max: u32) -> RestartBudget {
        RestartBudget { used: 0, max }
    }

    /// Account for one probe result.
    pub fn on_probe(&mut self, running: bool) -> Verdict {
        if running {
            return Verdict::Healthy;
        }
        if self.used < self.max {
            self.used += 1;
            Verdict::Restart {
                attempt: self.used,
                max: self.max,
            }
        } else {
            Verdict::GiveUp {
                restarts: self.used,
            }
        }
    }

    /// Restarts used so far.
    pub fn used(&self) -> u32 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_up_to_the_budget_then_gives_up() {
        let mut b = RestartBudget::new(2);
        assert_eq!(b.on_probe(true), Verdict::Healthy);
        assert_eq!(b.on_probe(false), Verdict::Restart { attempt: 1, max: 2 });
        assert_eq!(b.on_probe(true), Verdict::Healthy);
        assert_eq!(b.on_probe(false), Verdict::Restart { attempt: 2, max: 2 });
        assert_eq!(b.on_probe(false), Verdict::GiveUp { restarts: 2 });
        assert_eq!(b.used(), 2);
    }

    #[test]
    fn a_zero_budget_gives_up_at_the_first_failure() {
        let mut b = RestartBudget::new(0);
        assert_eq!(b.on_probe(false), Verdict::GiveUp { restarts: 0 });
    }
}

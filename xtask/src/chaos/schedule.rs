//! The seeded fault schedule: which fault comes next, on which node, for
//! how long. Pure (no IO, no clock): a seed gives the same schedule on
//! every machine, so a violation's seed replays the same faults in the
//! same order.

use std::fmt;
use std::time::Duration;

/// The lab's two cluster nodes (the client is lab node 2).
pub const NODES: usize = 2;

/// splitmix64: the whole schedule follows from the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A duration uniform in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    fn pick(&mut self, xs: &[i64]) -> i64 {
        xs[self.range(0, xs.len() as u64 - 1) as usize]
    }

    fn node(&mut self) -> usize {
        self.range(0, NODES as u64 - 1) as usize
    }
}

/// An operator command given through the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `wasmbeat standby` (heartbeat's hb_standby).
    Standby,
    /// `wasmbeat takeover` (heartbeat's hb_takeover).
    Takeover,
}

/// One fault of the run; node indexes are lab nodes 0 and 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// SIGKILL the daemon's whole tree, clear its addresses as a reboot
    /// does, and start it again after `down`.
    Kill { node: usize, down: Duration },
    /// SIGSTOP the daemon's tree for `hung` (longer than deadtime), then
    /// SIGCONT: a hung node coming back with stale beliefs.
    Freeze { node: usize, hung: Duration },
    /// Pull the node's cable at the switch for `down`.
    LinkFlap { node: usize, down: Duration },
    /// Every frame from `from` to the other node lost for `lasting`.
    OneWay { from: usize, lasting: Duration },
    /// 30% of frames between the nodes lost for `lasting`.
    HeavyLoss { lasting: Duration },
    /// Frames between the nodes duplicated and reordered for `lasting`.
    DupReorder { lasting: Duration },
    /// `count` reloads (SIGHUP) in quick succession.
    ReloadStorm { node: usize, count: u32 },
    /// An operator command at a random moment.
    Command { node: usize, op: Operator },
    /// A partition that heals and, `after` the heal, an operator command:
    /// the command races the split-brain resolution (issue 16's bug).
    PartitionThenCommand {
        node: usize,
        down: Duration,
        after: Duration,
        command_on: usize,
        op: Operator,
    },
    /// The node's state directory is full for `lasting`.
    StateDirFull { node: usize, lasting: Duration },
    /// The node's state directory is read-only for `lasting`.
    StateDirReadOnly { node: usize, lasting: Duration },
    /// The status call of the group's monitored service hangs on the node
    /// for `lasting` (its monitor times out; restart, then hand-over).
    MonitorHang { node: usize, lasting: Duration },
    /// The node's wall clock jumps by `offset_secs` (either way) for
    /// `lasting`, then jumps back (NTP stepping a wrong clock).
    ClockStep {
        node: usize,
        offset_secs: i64,
        lasting: Duration,
    },
}

impl Fault {
    /// Short name for the report's tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill -9 + restart",
            Fault::Freeze { .. } => "SIGSTOP > deadtime",
            Fault::LinkFlap { .. } => "link flap",
            Fault::OneWay { .. } => "one-way loss",
            Fault::HeavyLoss { .. } => "30% loss",
            Fault::DupReorder { .. } => "dup + reorder",
            Fault::ReloadStorm { .. } => "reload storm",
            Fault::Command { .. } => "operator command",
            Fault::PartitionThenCommand { .. } => "partition heal + command",
            Fault::StateDirFull { .. } => "state dir full",
            Fault::StateDirReadOnly { .. } => "state dir read-only",
            Fault::ClockStep { .. } => "wall-clock step",
            Fault::MonitorHang { .. } => "monitor hangs",
        }
    }

    /// Whether the nodes may legitimately both hold a group while this
    /// fault lasts: each stops hearing the other (or one cannot act).
    pub fn partitions(&self) -> bool {
        matches!(
            self,
            Fault::Freeze { .. }
                | Fault::LinkFlap { .. }
                | Fault::OneWay { .. }
                | Fault::PartitionThenCommand { .. }
        )
    }

    /// How many fault kinds a schedule draws from.
    pub const KINDS: usize = 13;

    /// Every [`Fault::kind`] name (for `--without`).
    pub const KIND_NAMES: [&'static str; Fault::KINDS] = [
        "kill -9 + restart",
        "SIGSTOP > deadtime",
        "link flap",
        "one-way loss",
        "30% loss",
        "dup + reorder",
        "reload storm",
        "operator command",
        "partition heal + command",
        "state dir full",
        "state dir read-only",
        "wall-clock step",
        "monitor hangs",
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |i: &usize| format!("node{}", i + 1);
        let ms = |d: &Duration| d.as_millis();
        match self {
            Fault::Kill { node, down } => {
                write!(f, "kill -9 {} and restart after {} ms", n(node), ms(down))
            }
            Fault::Freeze { node, hung } => {
                write!(f, "SIGSTOP {} for {} ms, then SIGCONT", n(node), ms(hung))
            }
            Fault::LinkFlap { node, down } => {
                write!(f, "{}'s link down for {} ms", n(node), ms(down))
            }
            Fault::OneWay { from, lasting } => write!(
                f,
                "all frames {} -> {} lost for {} ms",
                n(from),
                n(&(1 - from)),
                ms(lasting)
            ),
            Fault::HeavyLoss { lasting } => {
                write!(f, "30% loss between the nodes for {} ms", ms(lasting))
            }
            Fault::DupReorder { lasting } => write!(
                f,
                "20% duplicated, 20% reordered between the nodes for {} ms",
                ms(lasting)
            ),
            Fault::ReloadStorm { node, count } => write!(f, "{count} reloads of {}", n(node)),
            Fault::Command { node, op } => write!(f, "{op:?} on {}", n(node)),
            Fault::PartitionThenCommand {
                node,
                down,
                after,
                command_on,
                op,
            } => write!(
                f,
                "{}'s link down for {} ms, {op:?} on {} {} ms after the heal",
                n(node),
                ms(down),
                n(command_on),
                ms(after)
            ),
            Fault::StateDirFull { node, lasting } => {
                write!(
                    f,
                    "{}'s state directory full for {} ms",
                    n(node),
                    ms(lasting)
                )
            }
            Fault::StateDirReadOnly { node, lasting } => write!(
                f,
                "{}'s state directory read-only for {} ms",
                n(node),
                ms(lasting)
            ),
            Fault::ClockStep {
                node,
                offset_secs,
                lasting,
            } => write!(
                f,
                "{}'s wall clock stepped {offset_secs:+} s for {} ms, then back",
                n(node),
                ms(lasting)
            ),
            Fault::MonitorHang { node, lasting } => write!(
                f,
                "the service's status hangs on {} for {} ms",
                n(node),
                ms(lasting)
            ),
        }
    }
}

/// What the schedule may do to each node.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The cluster's deadtime: freezes and partitions outlast it.
    pub deadtime: Duration,
    /// Which nodes accept operator commands and reloads through our CLI
    /// (a heartbeat 3.0.6 node gets neither).
    pub controllable: [bool; NODES],
    /// Which nodes have a state directory the run can fill or freeze.
    pub state_dir: [bool; NODES],
    /// Which nodes run with a wall clock the run can step (libfaketime).
    pub clock: [bool; NODES],
}

/// Draw the next fault.
pub fn next_fault(rng: &mut Rng, limits: &Limits) -> Fault {
    let dt = limits.deadtime.as_millis() as u64;
    loop {
        let node = rng.node();
        let op = if rng.range(0, 1) == 0 {
            Operator::Standby
        } else {
            Operator::Takeover
        };
        let fault = match rng.range(0, Fault::KINDS as u64 - 1) {
            0 => Fault::Kill {
                node,
                down: rng.millis(0, 3 * dt),
            },
            1 => Fault::Freeze {
                node,
                hung: rng.millis(dt + dt / 2, 4 * dt),
            },
            2 => Fault::LinkFlap {
                node,
                down: rng.millis(dt / 4, 4 * dt),
            },
            3 => Fault::OneWay {
                from: node,
                lasting: rng.millis(dt, 4 * dt),
            },
            4 => Fault::HeavyLoss {
                lasting: rng.millis(2 * dt, 6 * dt),
            },
            5 => Fault::DupReorder {
                lasting: rng.millis(2 * dt, 6 * dt),
            },
            6 if limits.controllable[node] => Fault::ReloadStorm {
                node,
                count: rng.range(3, 12) as u32,
            },
            7 if limits.controllable[node] => Fault::Command { node, op },
            8 => {
                let command_on = rng.node();
                if !limits.controllable[command_on] {
                    continue;
                }
                Fault::PartitionThenCommand {
                    node,
                    down: rng.millis(dt + dt / 2, 3 * dt),
                    after: rng.millis(0, 2 * dt),
                    command_on,
                    op,
                }
            }
            9 if limits.state_dir[node] => Fault::StateDirFull {
                node,
                lasting: rng.millis(dt, 4 * dt),
            },
            10 if limits.state_dir[node] => Fault::StateDirReadOnly {
                node,
                lasting: rng.millis(dt, 4 * dt),
            },
            12 if limits.controllable[node] => Fault::MonitorHang {
                node,
                lasting: rng.millis(2 * dt, 8 * dt),
            },
            11 if limits.clock[node] => {
                let secs = rng.pick(&[1, 30, 3600, 86_400 * 365]);
                Fault::ClockStep {
                    node,
                    offset_secs: if rng.range(0, 1) == 0 { secs } else { -secs },
                    lasting: rng.millis(dt, 6 * dt),
                }
            }
            _ => continue,
        };
        return fault;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(controllable: [bool; NODES]) -> Limits {
        Limits {
            deadtime: Duration::from_millis(1000),
            controllable,
            state_dir: controllable,
            clock: controllable,
        }
    }

    #[test]
    fn a_seed_gives_the_same_schedule() {
        let l = limits([true, true]);
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..50).map(|_| next_fault(&mut r, &l)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn every_kind_is_drawn_and_freezes_outlast_deadtime() {
        let l = limits([true, true]);
        let mut r = Rng::new(1);
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let f = next_fault(&mut r, &l);
            if let Fault::Freeze { hung, .. } = f {
                assert!(hung > l.deadtime, "{f}");
            }
            assert!(Fault::KIND_NAMES.contains(&f.kind()), "{}", f.kind());
            kinds.insert(f.kind());
        }
        assert_eq!(kinds.len(), Fault::KINDS, "{kinds:?}");
    }

    #[test]
    fn a_heartbeat_node_gets_no_commands_reloads_state_dir_or_clock_faults() {
        let l = limits([true, false]);
        let mut r = Rng::new(3);
        for _ in 0..2000 {
            match next_fault(&mut r, &l) {
                Fault::ReloadStorm { node: 1, .. }
                | Fault::Command { node: 1, .. }
                | Fault::StateDirFull { node: 1, .. }
                | Fault::StateDirReadOnly { node: 1, .. }
                | Fault::ClockStep { node: 1, .. }
                | Fault::MonitorHang { node: 1, .. }
                | Fault::PartitionThenCommand { command_on: 1, .. } => {
                    panic!("fault for the heartbeat node")
                }
                _ => {}
            }
        }
    }
}

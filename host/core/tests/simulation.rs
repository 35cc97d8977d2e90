//! Deterministic simulation of a wasmbeat cluster: pairs of real [`Node`]s (failover core
//! plus wire session) exchanging real packets, encoded, signed, verified and checked for
//! replay exactly as on the wire.
//!
//! A seed fixes everything: timing parameters, auto_failback mode, groups, message delays,
//! status loss, duplicates and reordering, partitions and heals, single-link failures,
//! crashes and restarts, graceful shutdowns, standby/takeover commands, and the duration and
//! outcome of every simulated resource operation. Invariants are checked after every step:
//! safety (never two holders once the nodes talk, starts only after the peer stopped,
//! no stop without a cause) and liveness (once the faults stop, every group runs on
//! exactly one node within a stated bound; a lone survivor runs everything).
//!
//! `WASMBEAT_SIM_SEEDS=N` runs seeds 0..N (default 400); `WASMBEAT_SIM_SEED=N` runs one
//! seed and prints its full trace. A failing seed prints the tail of its trace and the
//! command that replays it.
//!
//! Network model: every packet goes out on every medium; the session drops later copies as
//! duplicates (which still prove their medium works). Status packets, the session's own
//! `NS_*` packets and retransmissions may be lost, delayed, duplicated and reordered; a lost
//! status opens a sequence gap that the receiving session asks to have retransmitted
//! (`NS_rexmit`), as heartbeat does. Other sequenced messages are delivered in order while
//! the receiver considers the sender alive (the guarantee heartbeat's retransmission gives
//! a live pair, modelled here so that a cut only delays them).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;
use wasmbeat_core::cluster::{
    AutoFailback, ClusterParams, Command, GroupSpec, Level, LinkId, NodeStatus, Op, Which,
};
use wasmbeat_core::wire::keys::{AuthMethod, Secret};
use wasmbeat_core::wire::{codec, typed, EndpointConfig, Identity, Keyring, OutPacket};
use wasmbeat_core::{Input, Millis, Node as Engine, NodeConfig, Output};

const LINKS: [&str; 2] = ["bcast eth0", "bcast eth1"];

/// A tiny deterministic PRNG (splitmix64): the whole run follows from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    Stopped,
    Starting,
    Running,
    /// a start failed half way: something may run
    Partial,
    Stopping,
    /// a stop of a group that was not running (graceful shutdown stops every
    /// group, as heartbeat does): nothing runs, nothing is held
    Sweeping,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: usize,
        from_inc: u32,
        to_inc: u32,
        link: usize,
        bytes: Arc<[u8]>,
        /// Status, `NS_*` or a retransmission: may be lost for good.
        lossy: bool,
        dup: bool,
    },
    OpDone {
        node: usize,
        inc: u32,
        group: String,
        op: Op,
        ok: bool,
    },
    Tick {
        node: usize,
        inc: u32,
    },
    Crash(usize),
    Boot(usize),
    Cut {
        a: usize,
        b: usize,
        link: Option<usize>,
        dur: u64,
    },
    Mend {
        a: usize,
        b: usize,
        link: Option<usize>,
    },
    Cmd(usize, Command),
}

struct Node {
    cluster: Option<Engine>,
    inc: u32,
    generation: u64,
    truth: BTreeMap<String, Truth>,
    next_tick: Option<Millis>,
    booted_at: Millis,
    down_since: Option<Millis>,
    shutting_down: bool,
    failures_since_boot: Vec<Millis>,
}

#[derive(Clone, Debug)]
struct Knobs {
    mode: AutoFailback,
    keepalive: u64,
    deadtime: u64,
    initdead: u64,
    groups: Vec<GroupSpec>,
    status_loss: f64,
    dup: f64,
    max_delay: u64,
    max_op: u64,
    start_fail: f64,
    stop_fail: f64,
    commands: bool,
    duration: u64,
}

struct Expect {
    at: Millis,
    issued: Millis,
    node: usize,
    cmd: Command,
}

/// How often each scenario happened, summed over all seeds (proof that they are exercised).
#[derive(Default, Debug)]
struct Coverage {
    crashes: u64,
    fast_restarts_detected: u64,
    deaths_declared: u64,
    false_deaths: u64,
    split_brains_logged: u64,
    split_brain_releases: u64,
    heals_watched: u64,
    shutdowns: u64,
    commands: u64,
    handoffs_completed: u64,
    failed_starts: u64,
    failed_stops: u64,
    starts: u64,
}

impl Coverage {
    fn add(&mut self, o: &Coverage) {
        self.crashes += o.crashes;
        self.fast_restarts_detected += o.fast_restarts_detected;
        self.deaths_declared += o.deaths_declared;
        self.false_deaths += o.false_deaths;
        self.split_brains_logged += o.split_brains_logged;
        self.split_brain_releases += o.split_brain_releases;
        self.heals_watched += o.heals_watched;
        self.shutdowns += o.shutdowns;
        self.commands += o.commands;
        self.handoffs_completed += o.handoffs_completed;
        self.failed_starts += o.failed_starts;
        self.failed_stops += o.failed_stops;
        self.starts += o.starts;
    }
}

struct Sim {
    cov: Coverage,
    seed: u64,
    rng: Rng,
    k: Knobs,
    names: Vec<String>,
    nodes: Vec<Node>,
    now: Millis,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    events: BTreeMap<u64, Ev>,
    seq: u64,
    /// cut[a][b][link]: number of active cuts on that path
    cut: Vec<Vec<Vec<u32>>>,
    /// last time the pair (a,b) could not talk on any link, or a node of it (re)booted
    talk_since: Vec<Vec<Millis>>,
    /// partition start per pair, to recognise a split brain at heal
    part_start: Vec<Vec<Option<Millis>>>,
    fifo: BTreeMap<(usize, usize), Millis>,
    last_disturbance: Millis,
    last_command: Option<Millis>,
    last_heal: Option<Millis>,
    pure: bool,
    /// last failed operation per group
    group_failed_at: BTreeMap<String, Millis>,
    expects: Vec<Expect>,
    heal_watch: Vec<(Millis, Vec<String>)>,
    split_watch: Vec<Millis>,
    split_logged_at: Vec<Millis>,
    trace: Vec<String>,
    verbose: bool,
}

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5_5A5A);
        let names = ["node1", "node2"];
        let mode = rng.pick(&[
            AutoFailback::On,
            AutoFailback::On,
            AutoFailback::Off,
            AutoFailback::Legacy,
        ]);
        let keepalive = rng.pick(&[200, 500, 1000, 2000]);
        let deadtime = keepalive * rng.range(3, 8);
        // heartbeat's derived initdead, at least deadtime
        let initdead = if deadtime > 10_000 {
            deadtime
        } else if deadtime < 6_000 {
            12_000
        } else {
            2 * deadtime
        };
        let ngroups = rng.range(1, 3);
        let groups = (0..ngroups)
            .map(|i| GroupSpec {
                key: format!("IPaddr::10.77.0.{}/24", 100 + i),
                preferred: names[rng.range(0, 1) as usize].to_string(),
            })
            .collect();
        let pure = rng.chance(0.35);
        let k = Knobs {
            mode,
            keepalive,
            deadtime,
            initdead,
            groups,
            status_loss: rng.pick(&[0.0, 0.02, 0.1, 0.3]),
            dup: rng.pick(&[0.0, 0.05]),
            max_delay: rng.pick(&[5, 50, 300]),
            max_op: rng.pick(&[50, 500, 3000]),
            start_fail: if pure {
                0.0
            } else {
                rng.pick(&[0.0, 0.03, 0.15])
            },
            stop_fail: if pure {
                0.0
            } else {
                rng.pick(&[0.0, 0.0, 0.05])
            },
            commands: !pure && mode != AutoFailback::Legacy,
            duration: 400_000,
        };
        Sim::build(seed, rng, k, pure, verbose)
    }

    /// A simulation with these knobs and no random schedule: the caller
    /// queues the events (named cases).
    fn scripted(seed: u64, k: Knobs, verbose: bool) -> Sim {
        let rng = Rng(seed ^ 0x5C21_97ED);
        Sim::build(seed, rng, k, false, verbose)
    }

    fn build(seed: u64, rng: Rng, k: Knobs, pure: bool, verbose: bool) -> Sim {
        let names = vec!["node1".to_string(), "node2".to_string()];
        let n = names.len();
        let nodes = (0..n)
            .map(|i| Node {
                cluster: None,
                inc: 0,
                generation: 1000 + i as u64 * 100,
                truth: k
                    .groups
                    .iter()
                    .map(|g| (g.key.clone(), Truth::Stopped))
                    .collect(),
                next_tick: None,
                booted_at: Millis(0),
                down_since: Some(Millis(0)),
                shutting_down: false,
                failures_since_boot: Vec::new(),
            })
            .collect();
        Sim {
            cov: Coverage::default(),
            seed,
            rng,
            k,
            names,
            nodes,
            now: Millis(0),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            cut: vec![vec![vec![0; LINKS.len()]; n]; n],
            talk_since: vec![vec![Millis(0); n]; n],
            part_start: vec![vec![None; n]; n],
            fifo: BTreeMap::new(),
            last_disturbance: Millis(0),
            last_command: None,
            last_heal: None,
            pure,
            group_failed_at: BTreeMap::new(),
            expects: Vec::new(),
            heal_watch: Vec::new(),
            split_watch: Vec::new(),
            split_logged_at: Vec::new(),
            trace: Vec::new(),
            verbose,
        }
    }

    fn log(&mut self, s: String) {
        let line = format!("{:>10} {s}", self.now.to_string());
        if self.verbose {
            println!("{line}");
        }
        self.trace.push(line);
    }

    /// node1 boots at 0 and node2 `later` ms after it; every link between
    /// them is cut at `cut` for `dur` ms.
    fn boot_both_then_partition(&mut self, later: u64, cut: u64, dur: u64) {
        self.at(Millis(0), Ev::Boot(0));
        self.at(Millis(later), Ev::Boot(1));
        self.at(
            Millis(cut),
            Ev::Cut {
                a: 0,
                b: 1,
                link: None,
                dur,
            },
        );
    }

    fn at(&mut self, t: Millis, ev: Ev) {
        self.seq += 1;
        self.events.insert(self.seq, ev);
        self.queue.push(Reverse((t, self.seq)));
    }

    fn config(&mut self, i: usize) -> NodeConfig {
        let nodes: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut endpoint = EndpointConfig::new(
            &self.names[i],
            &nodes,
            Keyring::single(1, AuthMethod::Sha1(Secret::new("sim"))),
        );
        endpoint.seed = self.rng.next();
        NodeConfig {
            cluster: self.params(i),
            endpoint,
            identity: Identity {
                uuid: [i as u8 + 1; 16],
                generation: self.nodes[i].generation,
            },
            links: LINKS.iter().map(|l| LinkId(l.to_string())).collect(),
            monitors: BTreeMap::new(),
        }
    }

    fn params(&self, i: usize) -> ClusterParams {
        ClusterParams {
            local: self.names[i].clone(),
            nodes: self.names.clone(),
            keepalive: ms(self.k.keepalive),
            deadtime: ms(self.k.deadtime),
            warntime: ms(self.k.deadtime / 2),
            initdead: ms(self.k.initdead),
            auto_failback: self.k.mode,
            groups: self.k.groups.clone(),
            generation: self.nodes[i].generation,
            ping: Default::default(),
            fencing: Default::default(),
            tiebreaker: false,
        }
    }

    /// Lays out the disturbances of the whole run up front.
    fn schedule(&mut self) {
        let n = self.names.len();
        // start-up: together, staggered, or one alone for a while
        for i in 0..n {
            let t = match self.rng.range(0, 2) {
                0 => self.rng.range(0, 300),
                1 => self.rng.range(0, 5_000),
                _ => self.rng.range(0, 40_000),
            };
            self.at(Millis(t), Ev::Boot(i));
        }
        let mut t = 45_000;
        while t < self.k.duration - 60_000 {
            t += self.rng.range(5_000, 60_000);
            let kind = self.rng.range(0, 9);
            let node = self.rng.range(0, n as u64 - 1) as usize;
            match kind {
                0 | 1 => {
                    // crash (power loss); back after a short or long pause
                    self.at(Millis(t), Ev::Crash(node));
                    let down = if self.rng.chance(0.3) {
                        self.rng.range(100, self.k.deadtime / 2 + 1)
                    } else {
                        self.rng.range(1_000, 40_000)
                    };
                    self.at(Millis(t + down), Ev::Boot(node));
                }
                2 | 3 => {
                    let dur = if self.rng.chance(0.4) {
                        self.rng.range(
                            100,
                            self.k
                                .deadtime
                                .saturating_sub(self.k.keepalive * 2)
                                .max(101),
                        )
                    } else {
                        self.rng.range(self.k.deadtime + 1_000, 40_000)
                    };
                    self.at(
                        Millis(t),
                        Ev::Cut {
                            a: 0,
                            b: 1,
                            link: None,
                            dur,
                        },
                    );
                }
                4 => {
                    let link = self.rng.range(0, LINKS.len() as u64 - 1) as usize;
                    let dur = self.rng.range(1_000, 30_000);
                    self.at(
                        Millis(t),
                        Ev::Cut {
                            a: 0,
                            b: 1,
                            link: Some(link),
                            dur,
                        },
                    );
                }
                5 if self.pure => {}
                5 => {
                    self.at(Millis(t), Ev::Cmd(node, Command::Shutdown));
                    let back = self.rng.range(1_000, 30_000);
                    self.at(Millis(t + back + self.k.max_op * 4), Ev::Boot(node));
                }
                _ if self.k.commands => {
                    let which =
                        self.rng
                            .pick(&[Which::All, Which::Local, Which::Foreign, Which::Failback]);
                    let cmd = if self.rng.chance(0.5) {
                        Command::Standby(which)
                    } else {
                        Command::Takeover(which)
                    };
                    self.at(Millis(t), Ev::Cmd(node, cmd));
                }
                _ => {}
            }
        }
    }

    fn can_talk(&self, a: usize, b: usize) -> bool {
        (0..LINKS.len()).any(|l| self.cut[a][b][l] == 0)
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].cluster.is_some()
    }

    fn feed(&mut self, i: usize, input: Input) {
        let Some(c) = self.nodes[i].cluster.as_mut() else {
            return;
        };
        let outputs = c.handle(self.now, input);
        self.apply(i, outputs);
        self.reschedule_tick(i);
    }

    fn tick_input(&self) -> Input {
        Input::Tick {
            wall_secs: 1_700_000_000 + self.now.0 / 1000,
            loadavg: None,
        }
    }

    fn reschedule_tick(&mut self, i: usize) {
        let Some(c) = self.nodes[i].cluster.as_ref() else {
            return;
        };
        let Some(d) = c.next_timeout(self.now) else {
            return;
        };
        let d = d.max(self.now);
        if self.nodes[i]
            .next_tick
            .is_none_or(|t| d < t || t < self.now)
        {
            self.nodes[i].next_tick = Some(d);
            let inc = self.nodes[i].inc;
            self.at(d, Ev::Tick { node: i, inc });
        }
    }

    fn apply(&mut self, i: usize, outputs: Vec<Output>) {
        for a in outputs {
            match a {
                Output::Transmit(p) => self.broadcast(i, p),
                Output::RunGroup {
                    group: g,
                    op: Op::Start,
                } => {
                    let t = self.nodes[i].truth[&g];
                    if t != Truth::Stopped {
                        self.fail(format!(
                            "invariant (d): {} asked to start {g} while it is {t:?} there",
                            self.names[i]
                        ));
                    }
                    self.check_start_order(i, &g);
                    self.nodes[i].truth.insert(g.clone(), Truth::Starting);
                    self.cov.starts += 1;
                    self.log(format!("{} START {g}", self.names[i]));
                    self.finish_later(i, g, Op::Start, self.k.start_fail);
                }
                Output::RunGroup {
                    group: g,
                    op: Op::Stop,
                } => {
                    let t = self.nodes[i].truth[&g];
                    if matches!(t, Truth::Starting | Truth::Stopping | Truth::Sweeping) {
                        self.fail(format!(
                            "{} asked to stop {g} while an operation is in flight ({t:?})",
                            self.names[i]
                        ));
                    }
                    self.check_voluntary_stop(i, &g, t);
                    let next = if t == Truth::Stopped {
                        Truth::Sweeping
                    } else {
                        Truth::Stopping
                    };
                    self.nodes[i].truth.insert(g.clone(), next);
                    self.log(format!("{} STOP {g}", self.names[i]));
                    self.finish_later(i, g, Op::Stop, self.k.stop_fail);
                }
                Output::Log(n) => {
                    if n.level == Level::Crit && n.what.starts_with("split brain:") {
                        self.split_logged_at.push(self.now);
                        self.cov.split_brains_logged += 1;
                    }
                    if n.what.starts_with("split brain resolution") {
                        self.cov.split_brain_releases += 1;
                    }
                    if n.what.contains("without being declared dead") {
                        self.cov.fast_restarts_detected += 1;
                    }
                    if n.what.ends_with(" declared dead") {
                        self.cov.deaths_declared += 1;
                    }
                    if n.what.starts_with("standby takeover complete") {
                        self.cov.handoffs_completed += 1;
                    }
                    if n.what.starts_with("node ") && n.what.ends_with(" declared dead") {
                        // A peer declared dead while it runs and the path works (lost
                        // statuses): the same situation as a partition that healed at once.
                        for j in 0..self.names.len() {
                            if j != i
                                && self.alive(j)
                                && n.what == format!("node {} declared dead", self.names[j])
                                && self.can_talk(i, j)
                                // the same incarnation was up during the whole silence
                                && self.nodes[j].booted_at.0 + self.k.deadtime + 2 * self.k.keepalive < self.now.0
                            {
                                self.talk_since[i][j] = self.now;
                                self.talk_since[j][i] = self.now;
                                self.last_heal = Some(self.now);
                                self.disturb();
                                let since = Millis(self.now.0.saturating_sub(self.k.deadtime * 2));
                                let running = self.serving_groups(since);
                                // a planned hand-off (failback, standby) interrupted by the
                                // false death moves groups by design
                                if self.handoff_in_progress() {
                                    continue;
                                }
                                self.cov.false_deaths += 1;
                                self.cov.heals_watched += 1;
                                self.heal_watch.push((self.now, running));
                            }
                        }
                    }
                    self.log(format!(
                        "{} [{:?}] {} -- {}",
                        self.names[i], n.level, n.what, n.why
                    ));
                }
                Output::Announce(g) => {
                    // A re-announcement must come from a node that really runs the group.
                    if self.nodes[i].truth.get(&g) != Some(&Truth::Running) {
                        self.fail(format!(
                            "{} re-announced {g} without running it ({:?})",
                            self.names[i],
                            self.nodes[i].truth.get(&g)
                        ));
                    }
                    self.log(format!("{} ANNOUNCE {g}", self.names[i]));
                }
                Output::Probe { .. }
                | Output::Restart { .. }
                | Output::LoadAgents { .. }
                | Output::Reloaded(_) => {
                    self.fail(format!(
                        "{}: unexpected output {a:?} (no monitors, no reloads here)",
                        self.names[i]
                    ));
                }
                Output::Exit => {
                    let held: Vec<String> = self.nodes[i]
                        .truth
                        .iter()
                        .filter(|(_, t)| **t != Truth::Stopped)
                        .map(|(k, _)| k.clone())
                        .collect();
                    if !held.is_empty() {
                        self.fail(format!(
                            "{} exited while still holding {held:?}",
                            self.names[i]
                        ));
                    }
                    self.log(format!("{} EXIT", self.names[i]));
                    self.nodes[i].cluster = None;
                    self.nodes[i].down_since = Some(self.now);
                    self.disturb();
                }
                Output::Fence(node) => {
                    self.fail(format!(
                        "{} asked to fence {node}, but no STONITH device is configured here",
                        self.names[i]
                    ));
                }
                Output::AskTiebreak { peer, .. } | Output::ReleaseTiebreak { peer } => {
                    self.fail(format!(
                        "{} talked to a tie-breaker about {peer}, but none is configured here",
                        self.names[i]
                    ));
                }
            }
        }
    }

    /// The simulated agent finishes `op` on `group` after a random time,
    /// failing with probability `fail`.
    fn finish_later(&mut self, node: usize, group: String, op: Op, fail: f64) {
        let ok = !self.rng.chance(fail);
        let d = self.rng.range(1, self.k.max_op);
        let inc = self.nodes[node].inc;
        self.at(
            self.now.plus(ms(d)),
            Ev::OpDone {
                node,
                inc,
                group,
                op,
                ok,
            },
        );
    }

    fn broadcast(&mut self, from: usize, p: OutPacket) {
        let is_status = p.msg_type == "status" || p.msg_type.starts_with("NS_") || p.resend;
        if p.msg_type != "status" && !p.msg_type.starts_with("NS_") && self.verbose {
            let typed = codec::decode(&p.netstring, &Default::default())
                .ok()
                .and_then(|f| typed::from_wire(&f.message));
            self.log(format!(
                "{} -> seq {:?}{} {typed:?}",
                self.names[from],
                p.seq,
                if p.resend { " (resent)" } else { "" }
            ));
        }
        let bytes = p.netstring.clone();
        for to in 0..self.names.len() {
            if to == from {
                continue;
            }
            let to_inc = self.nodes[to].inc;
            let from_inc = self.nodes[from].inc;
            let mut first = true;
            let mut base = self.now;
            if !is_status {
                // in-order delivery of sequenced messages per pair
                base = base.max(*self.fifo.get(&(from, to)).unwrap_or(&Millis(0)));
            }
            for link in 0..LINKS.len() {
                if is_status && self.rng.chance(self.k.status_loss) {
                    continue;
                }
                let delay = if self.rng.chance(0.05) {
                    self.rng.range(0, self.k.max_delay * 4)
                } else {
                    self.rng.range(0, self.k.max_delay)
                };
                let mut t = base.plus(ms(delay));
                if !is_status && first {
                    self.fifo.insert((from, to), t);
                }
                let dup = !first;
                if !is_status && dup {
                    t = t.max(base);
                }
                let deliver = |dup: bool| Ev::Deliver {
                    to,
                    from,
                    from_inc,
                    to_inc,
                    link,
                    bytes: bytes.clone(),
                    lossy: is_status,
                    dup,
                };
                self.at(t, deliver(dup));
                first = false;
                if self.rng.chance(self.k.dup) {
                    let t2 = t.plus(ms(self.rng.range(0, 20)));
                    self.at(t2, deliver(true));
                }
            }
        }
    }

    fn disturb(&mut self) {
        self.last_disturbance = self.now;
    }

    fn recent(&self, t: Option<Millis>, within: u64) -> bool {
        t.is_some_and(|t| self.now.0 < t.0 + within)
    }

    fn handoff_bound(&self) -> u64 {
        2 * self.k.deadtime + 4 * self.k.max_op + 4 * self.k.max_delay + 12_000
    }

    /// A group is started on a node only after any node it can talk to has stopped it.
    fn check_start_order(&mut self, i: usize, g: &str) {
        for j in 0..self.names.len() {
            if j == i || !self.alive(j) || !self.can_talk(i, j) {
                continue;
            }
            let t = self.nodes[j].truth[g];
            let talking_for = self.now.0 - self.talk_since[i][j].0;
            if !matches!(t, Truth::Stopped | Truth::Sweeping) && talking_for > self.handoff_bound()
            {
                self.fail(format!(
                    "ordering: {} starts {g} while {} (reachable for {} ms) has it {t:?}",
                    self.names[i], self.names[j], talking_for
                ));
            }
        }
    }

    /// Off: a group only leaves a live node for a reason (command, failure, shutdown, heal).
    /// On/legacy: additionally allowed when the node is not the preferred one (failback).
    fn check_voluntary_stop(&mut self, i: usize, g: &str, t: Truth) {
        if self.nodes[i].shutting_down || t == Truth::Partial || t == Truth::Stopped {
            return;
        }
        if self.recent(self.last_command, 90_000)
            || self.recent(self.last_heal, self.handoff_bound())
            || self.nodes.iter().any(|n| {
                n.failures_since_boot
                    .iter()
                    .any(|f| self.now.0 < f.0 + 400_000)
            })
        {
            return;
        }
        let preferred = self
            .k
            .groups
            .iter()
            .find(|s| s.key == g)
            .map(|s| s.preferred.clone());
        let not_home = preferred.as_deref() != Some(self.names[i].as_str());
        if self.k.mode != AutoFailback::Off && not_home {
            return;
        }
        self.fail(format!(
            "invariant (c/off): {} stopped {g} without a cause (mode {:?})",
            self.names[i], self.k.mode
        ));
    }

    fn fail(&mut self, msg: String) {
        self.log(format!("VIOLATION: {msg}"));
        let tail: Vec<String> = self.trace.iter().rev().take(80).rev().cloned().collect();
        panic!(
            "seed {} failed: {msg}\nknobs: {:?}\n--- last trace lines ---\n{}\n--- replay: WASMBEAT_SIM_SEED={} cargo test -p wasmbeat-core --test simulation -- --nocapture",
            self.seed,
            self.k,
            tail.join("\n"),
            self.seed
        );
    }

    fn holders(&self, g: &str) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&i| !matches!(self.nodes[i].truth[g], Truth::Stopped | Truth::Sweeping))
            .collect()
    }

    fn running_on(&self, g: &str) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&i| self.nodes[i].truth[g] == Truth::Running)
            .collect()
    }

    /// Groups whose service must survive a heal. Legacy mode has no resource reports, so
    /// there only groups running on their preferred node are guaranteed continuity.
    fn serving_groups(&self, since: Millis) -> Vec<String> {
        self.k
            .groups
            .iter()
            // a group that failed meanwhile may legitimately move home (failback) at heal
            .filter(|g| self.group_failed_at.get(&g.key).is_none_or(|t| *t < since))
            .filter(|g| {
                let on = self.running_on(&g.key);
                if self.k.mode == AutoFailback::Legacy {
                    on.iter().any(|&i| self.names[i] == g.preferred)
                } else {
                    !on.is_empty()
                }
            })
            .map(|g| g.key.clone())
            .collect()
    }

    fn handoff_in_progress(&self) -> bool {
        self.nodes
            .iter()
            .filter_map(|n| n.cluster.as_ref())
            .any(|c| c.cluster_status().standby.is_some())
    }

    fn any_failure_since(&self, t: Millis) -> bool {
        self.nodes
            .iter()
            .any(|n| n.failures_since_boot.iter().any(|f| *f >= t))
    }

    fn check_invariants(&mut self) {
        let n = self.names.len();
        let bound = self.handoff_bound();
        let all_alive = (0..n).all(|i| self.alive(i) && !self.nodes[i].shutting_down);
        let connected_for = if all_alive && self.can_talk(0, 1) {
            Some(self.now.0 - self.talk_since[0][1].0)
        } else {
            None
        };
        let keys: Vec<String> = self.k.groups.iter().map(|g| g.key.clone()).collect();
        // (a)/(f): one holder per group once the nodes have been talking for a bound
        if let Some(c) = connected_for {
            if c > bound {
                for g in &keys {
                    let h = self.holders(g);
                    if h.len() > 1 {
                        self.fail(format!(
                            "invariant (a): {g} held by {:?} although the nodes have talked for {c} ms",
                            h.iter().map(|&i| &self.names[i]).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
        // (b): a lone survivor runs everything within deadtime + bound
        for s in 0..n {
            if !self.alive(s) || self.nodes[s].shutting_down {
                continue;
            }
            let others_down: Option<Millis> = (0..n)
                .filter(|&o| o != s)
                .map(|o| self.nodes[o].down_since)
                .try_fold(Millis(0), |acc, d| d.map(|d| acc.max(d)));
            let Some(down) = others_down else { continue };
            let since = down.max(self.nodes[s].booted_at);
            let grace = self.k.initdead.max(self.k.deadtime + 2_000) + 2 * self.k.max_op + 3_000;
            if self.now.0 > since.0 + grace
                && self.now.0
                    > self.nodes[s].booted_at.0 + self.k.initdead + 2 * self.k.max_op + 3_000
                && !self.any_failure_since(Millis(since.0.saturating_sub(60_000)))
            {
                for g in &keys {
                    if self.nodes[s].truth[g] != Truth::Running {
                        self.fail(format!(
                            "invariant (b): {} alone since {} but {g} is {:?} there",
                            self.names[s], since, self.nodes[s].truth[g]
                        ));
                    }
                }
            }
        }
        // (c) on/legacy: quiet, connected cluster runs each group on its preferred node
        if let Some(c) = connected_for {
            let quiet = self.now.0 - self.last_disturbance.0;
            if self.pure
                && self.k.mode != AutoFailback::Off
                && c > bound + 15_000
                && quiet > bound + 15_000
            {
                for spec in self.k.groups.clone() {
                    let pi = self
                        .names
                        .iter()
                        .position(|x| *x == spec.preferred)
                        .unwrap();
                    if self.nodes[pi].truth[&spec.key] != Truth::Running {
                        self.fail(format!(
                            "invariant (c): quiet cluster but {} is not running on its preferred node {} (holders {:?})",
                            spec.key,
                            spec.preferred,
                            self.holders(&spec.key)
                        ));
                    }
                }
            }
        }
        // (g) liveness, every mode: once the faults stop (both nodes up and
        // talking, nothing disturbed them, no operation failed) every group
        // runs on exactly one node within the bound. Safety alone (at most
        // one holder) is kept by a cluster that runs nothing.
        if let Some(c) = connected_for {
            let quiet = self.now.0 - self.last_disturbance.0;
            let settle = bound + 15_000;
            if c > settle
                && quiet > settle
                && !self.any_failure_since(Millis(self.now.0.saturating_sub(settle + 60_000)))
            {
                for g in &keys {
                    let running = self.running_on(g);
                    if running.len() != 1 || self.holders(g).len() != 1 {
                        self.fail(format!(
                            "invariant (g): quiet for {quiet} ms but {g} runs on {:?} (holders {:?})",
                            running.iter().map(|&i| &self.names[i]).collect::<Vec<_>>(),
                            self.holders(g).iter().map(|&i| &self.names[i]).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
        // (e): commands honoured within a bound when nothing else happened
        let due: Vec<Expect> = {
            let (d, keep): (Vec<Expect>, Vec<Expect>) = std::mem::take(&mut self.expects)
                .into_iter()
                .partition(|e| self.now >= e.at);
            self.expects = keep;
            d
        };
        for e in due {
            let quiet_since_cmd = self.last_disturbance <= e.issued;
            let settled_before =
                connected_for.is_some_and(|c| c > (self.now.0 - e.issued.0) + bound);
            if !quiet_since_cmd
                || !settled_before
                || self.any_failure_since(Millis(e.issued.0.saturating_sub(bound)))
            {
                continue;
            }
            let me = self.names[e.node].clone();
            let (which, giving) = match e.cmd {
                Command::Standby(w) => (w, true),
                Command::Takeover(w) => (w, false),
                Command::Shutdown => continue,
            };
            // takeover failback = take my own groups back; standby failback = give foreign away
            let set = if !giving && which == Which::Failback {
                wasmbeat_core::cluster::RscHold::Local
            } else {
                which.as_hold()
            };
            for spec in self.k.groups.clone() {
                let in_set = if spec.preferred == *me {
                    set.has_local()
                } else {
                    set.has_foreign()
                };
                if !in_set {
                    continue;
                }
                let here = self.nodes[e.node].truth[&spec.key];
                let other = 1 - e.node;
                let there = self.nodes[other].truth[&spec.key];
                let ok = if giving {
                    here == Truth::Stopped && there == Truth::Running
                } else {
                    here == Truth::Running && there == Truth::Stopped
                };
                if !ok {
                    self.fail(format!(
                        "invariant (e): {:?} on {me} issued at {} not honoured: {} is {here:?} here and {there:?} on the peer",
                        e.cmd, e.issued, spec.key
                    ));
                }
            }
        }
        // (f): after a heal the service stays up: a group running at heal time keeps running somewhere
        let watches = std::mem::take(&mut self.heal_watch);
        let mut keep = Vec::new();
        for (healed, running) in watches {
            if self.now.0 > healed.0 + bound || self.last_disturbance > healed {
                continue;
            }
            // an operator command just before the heal legitimately moves groups
            if self.last_command.is_some_and(|c| c.0 + bound > healed.0) {
                continue;
            }
            // so does a hand-off under way (failback after the heal): its gap
            // is by design; the watch resumes once it is over
            if self.handoff_in_progress() {
                keep.push((healed, running));
                continue;
            }
            for g in &running {
                if self.running_on(g).is_empty()
                    && self
                        .holders(g)
                        .iter()
                        .all(|&i| self.nodes[i].truth[g] != Truth::Partial)
                {
                    self.fail(format!(
                        "invariant (f): {g} stopped serving {} ms after the heal",
                        self.now.0 - healed.0
                    ));
                }
            }
            keep.push((healed, running));
        }
        self.heal_watch = keep;
        let splits = std::mem::take(&mut self.split_watch);
        let mut keep = Vec::new();
        for healed in splits {
            if self.split_logged_at.iter().any(|t| *t >= healed) {
                continue;
            }
            if self.now.0 > healed.0 + 3 * self.k.deadtime + 2 * self.k.max_delay + 2_000 {
                if self.last_disturbance <= healed {
                    self.fail("invariant (f): partition longer than deadtime healed but nobody logged a split brain".into());
                }
                continue;
            }
            keep.push(healed);
        }
        self.split_watch = keep;
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                to,
                from,
                from_inc,
                to_inc,
                link,
                bytes,
                lossy,
                dup,
            } => {
                if self.nodes[to].inc != to_inc || !self.alive(to) {
                    return;
                }
                if self.cut[from][to][link] > 0 {
                    if lossy || dup {
                        return;
                    }
                    // retransmission (heartbeat NS_rexmit) while the receiver thinks the
                    // sender is alive and the sender still runs
                    let sender_alive_there = self.nodes[to]
                        .cluster
                        .as_ref()
                        .map(|c| {
                            c.cluster_status()
                                .nodes
                                .iter()
                                .any(|v| v.name == self.names[from] && v.status != NodeStatus::Dead)
                        })
                        .unwrap_or(false);
                    if sender_alive_there && self.nodes[from].inc == from_inc && self.alive(from) {
                        let t = self.now.plus(ms(200));
                        self.fifo.insert(
                            (from, to),
                            t.max(*self.fifo.get(&(from, to)).unwrap_or(&Millis(0))),
                        );
                        self.at(
                            t,
                            Ev::Deliver {
                                to,
                                from,
                                from_inc,
                                to_inc,
                                link: (link + 1) % LINKS.len(),
                                bytes,
                                lossy,
                                dup,
                            },
                        );
                    }
                    return;
                }
                self.feed(
                    to,
                    Input::Packet {
                        link,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            Ev::OpDone {
                node,
                inc,
                group,
                op,
                ok,
            } => {
                if self.nodes[node].inc != inc || !self.alive(node) {
                    return;
                }
                let t = match (op, ok) {
                    (Op::Start, true) => Truth::Running,
                    (Op::Start, false) => Truth::Partial,
                    (Op::Stop, true) => Truth::Stopped,
                    (Op::Stop, false) => Truth::Running,
                };
                if !ok {
                    if op == Op::Start {
                        self.cov.failed_starts += 1;
                    } else {
                        self.cov.failed_stops += 1;
                    }
                    self.group_failed_at.insert(group.clone(), self.now);
                    self.nodes[node].failures_since_boot.push(self.now);
                    self.disturb();
                }
                self.nodes[node].truth.insert(group.clone(), t);
                self.log(format!(
                    "{} {op:?} {group} -> {}",
                    self.names[node],
                    if ok { "ok" } else { "FAILED" }
                ));
                let detail = if ok {
                    "ok".to_string()
                } else {
                    "simulated failure".to_string()
                };
                self.feed(
                    node,
                    Input::GroupDone {
                        group,
                        op,
                        ok,
                        detail,
                    },
                );
            }
            Ev::Tick { node, inc } => {
                if self.nodes[node].inc != inc || self.nodes[node].next_tick != Some(self.now) {
                    return;
                }
                self.nodes[node].next_tick = None;
                let tick = self.tick_input();
                self.feed(node, tick);
                if let Some(c) = self.nodes[node].cluster.as_ref() {
                    if c.next_timeout(self.now).is_some_and(|d| d <= self.now) {
                        self.fail(format!(
                            "{}: next_deadline did not advance after a tick",
                            self.names[node]
                        ));
                    }
                }
            }
            Ev::Crash(i) => {
                if !self.alive(i) {
                    return;
                }
                self.log(format!(
                    "{} CRASH (power loss: everything on it stops)",
                    self.names[i]
                ));
                self.cov.crashes += 1;
                let node = &mut self.nodes[i];
                node.cluster = None;
                node.inc += 1;
                node.down_since = Some(self.now);
                node.next_tick = None;
                for t in node.truth.values_mut() {
                    *t = Truth::Stopped;
                }
                self.disturb();
            }
            Ev::Boot(i) => {
                if self.alive(i) {
                    return;
                }
                let node = &mut self.nodes[i];
                node.inc += 1;
                node.generation += 1;
                node.booted_at = self.now;
                node.down_since = None;
                node.shutting_down = false;
                node.next_tick = None;
                node.failures_since_boot.clear();
                let config = self.config(i);
                self.log(format!(
                    "{} BOOT generation {}",
                    self.names[i], config.identity.generation
                ));
                self.nodes[i].cluster = Some(Engine::new(config, self.now));
                for j in 0..self.names.len() {
                    self.talk_since[i][j] = self.now;
                    self.talk_since[j][i] = self.now;
                }
                self.disturb();
                let tick = self.tick_input();
                self.feed(i, tick);
            }
            Ev::Cut { a, b, link, dur } => {
                let links: Vec<usize> = match link {
                    Some(l) => vec![l],
                    None => (0..LINKS.len()).collect(),
                };
                let could = self.can_talk(a, b);
                for &l in &links {
                    self.cut[a][b][l] += 1;
                    self.cut[b][a][l] += 1;
                }
                self.log(format!(
                    "CUT links {links:?} between node{} and node{} for {dur} ms",
                    a + 1,
                    b + 1
                ));
                if could && !self.can_talk(a, b) {
                    self.part_start[a][b] = Some(self.now);
                    self.disturb();
                }
                self.at(self.now.plus(ms(dur)), Ev::Mend { a, b, link });
            }
            Ev::Mend { a, b, link } => {
                let links: Vec<usize> = match link {
                    Some(l) => vec![l],
                    None => (0..LINKS.len()).collect(),
                };
                let could = self.can_talk(a, b);
                let talked_before = self.talk_since[a][b];
                for &l in &links {
                    self.cut[a][b][l] -= 1;
                    self.cut[b][a][l] -= 1;
                }
                self.log(format!(
                    "MEND links {links:?} between node{} and node{}",
                    a + 1,
                    b + 1
                ));
                if !could && self.can_talk(a, b) {
                    self.talk_since[a][b] = self.now;
                    self.talk_since[b][a] = self.now;
                    self.last_heal = Some(self.now);
                    let started = self.part_start[a][b].take().unwrap_or(self.now);
                    let both_alive_through = self.alive(a)
                        && self.alive(b)
                        && self.nodes[a].booted_at < started
                        && self.nodes[b].booted_at < started
                        && !self.nodes[a].shutting_down
                        && !self.nodes[b].shutting_down;
                    // they must have known each other before the partition (statuses exchanged)
                    let knew = talked_before.0 + 2 * self.k.keepalive + 4 * self.k.max_delay + 500
                        < started.0;
                    if both_alive_through
                        && knew
                        && self.now.0 - started.0 > self.k.deadtime + self.k.max_delay * 4 + 500
                        && self.last_disturbance <= started
                    {
                        self.split_watch.push(self.now);
                    }
                    let running = self.serving_groups(started);
                    self.disturb();
                    // continuity is promised for a cluster that had settled before the cut
                    let settled_before = talked_before.0 + self.handoff_bound() < started.0;
                    if both_alive_through && settled_before && !self.handoff_in_progress() {
                        self.cov.heals_watched += 1;
                        self.heal_watch.push((self.now, running));
                    }
                }
            }
            Ev::Cmd(i, cmd) => {
                if !self.alive(i) || self.nodes[i].shutting_down {
                    return;
                }
                self.log(format!("{} COMMAND {cmd:?}", self.names[i]));
                if cmd == Command::Shutdown {
                    self.nodes[i].shutting_down = true;
                    self.cov.shutdowns += 1;
                } else {
                    self.cov.commands += 1;
                    self.last_command = Some(self.now);
                    let b = 30_000
                        + 4 * self.k.max_op
                        + 4 * self.k.max_delay
                        + 3 * self.k.keepalive
                        + 12_000;
                    self.expects.push(Expect {
                        at: self.now.plus(ms(b)),
                        issued: self.now,
                        node: i,
                        cmd,
                    });
                }
                self.disturb();
                self.feed(i, Input::Command(cmd));
            }
        }
    }

    fn run(&mut self) {
        self.schedule();
        self.run_queue();
    }

    fn run_queue(&mut self) {
        let end = Millis(self.k.duration);
        let mut steps = 0u64;
        while let Some(Reverse((t, id))) = self.queue.pop() {
            if t > end {
                break;
            }
            let ev = self.events.remove(&id).expect("queued event");
            self.now = t;
            self.step(ev);
            self.check_invariants();
            steps += 1;
            if steps > 5_000_000 {
                self.fail("runaway simulation (more than 5M steps)".into());
            }
        }
    }
}

fn run_seed(seed: u64, verbose: bool) -> Coverage {
    let mut sim = Sim::new(seed, verbose);
    if verbose {
        println!("seed {seed}: {:?}", sim.k);
    }
    sim.run();
    sim.cov
}

#[test]
fn simulated_clusters_keep_every_invariant() {
    if let Ok(s) = std::env::var("WASMBEAT_SIM_SEED") {
        let seed: u64 = s.parse().expect("WASMBEAT_SIM_SEED must be a number");
        let cov = run_seed(seed, true);
        println!("seed {seed} passed: {cov:?}");
        return;
    }
    let n: u64 = std::env::var("WASMBEAT_SIM_SEEDS")
        .ok()
        .map(|s| s.parse().expect("WASMBEAT_SIM_SEEDS must be a number"))
        .unwrap_or(400);
    let start = std::time::Instant::now();
    // Seeds are independent: one worker per core, each pulling the next seed.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicU64::new(0);
    let mut cov = Coverage::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Coverage::default();
                    loop {
                        let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if seed >= n {
                            return mine;
                        }
                        mine.add(&run_seed(seed, false));
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(c) => cov.add(&c),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    println!(
        "{n} seeds passed in {:.1} s on {workers} thread(s)",
        start.elapsed().as_secs_f64()
    );
    println!("scenarios exercised: {cov:#?}");
    // the generator must keep producing the interesting cases, or the invariants prove little
    if n >= 200 {
        assert!(
            cov.split_brains_logged > 0 && cov.split_brain_releases > 0,
            "{cov:?}"
        );
        assert!(
            cov.fast_restarts_detected > 0 && cov.false_deaths > 0,
            "{cov:?}"
        );
        assert!(
            cov.handoffs_completed > 0 && cov.failed_starts > 0 && cov.shutdowns > 0,
            "{cov:?}"
        );
        assert!(cov.heals_watched > 0 && cov.crashes > 0, "{cov:?}");
    }
}

/// Seeds the real-packet simulator found failing, kept as regressions:
/// 104 and 107, partition-era retransmissions (stale reports, an old
/// hb_takeover) acted on after the heal; 401 and 1564, a gap-filling
/// retransmission (`starting`) delivered after newer messages cancelled a
/// standby hand-shake half way and left every group stopped. Fixed by the
/// Node ignoring what predates a peer's return, and by the session
/// delivering non-status messages in seq order. 54 and 169 (legacy mode),
/// found by the liveness invariant (g): an own group whose start had failed
/// was dropped when the peer appeared and then ran nowhere for good.
/// 74833 (legacy): an `ip-request-resp` meant for a node's previous start,
/// retransmitted after it rebooted, made the new start take a group the
/// peer ran (now refused by its `wb_desthg`). 71180: a failback hand-off
/// after a heal is a designed gap, not a lost service (simulator rule).
#[test]
fn seeds_that_found_bugs() {
    for seed in [54, 104, 107, 169, 401, 1564, 71180, 74833] {
        run_seed(seed, false);
    }
}

/// The interleaving issue 16 saw on a loaded machine: both nodes miss
/// heartbeats for 2.5 s and declare each other dead, both run the VIP; at
/// the heal node2 releases it (split-brain resolution, node1 preferred);
/// then, while the reports of that resolution are still in flight, the
/// operator runs `standby all` on node1. Seen there: node2 took the group
/// and released it 3 ms later on stale information, leaving the VIP on
/// neither node. Here the command lands at every 25 ms step from the heal
/// to 2 s after it; invariants (a) one holder and (g) liveness must hold.
#[test]
fn standby_racing_split_brain_resolution() {
    let mut outcomes = [0u32; 2];
    // Loaded machines delay and lose packets: the stale reports of the
    // partition arrive late and out of order.
    let cases = [(5, 0.0), (50, 0.1), (300, 0.3)]
        .into_iter()
        .flat_map(|net| (0..=2_000).step_by(50).map(move |offset| (net, offset)));
    for ((max_delay, status_loss), offset) in cases {
        let k = Knobs {
            mode: AutoFailback::On,
            keepalive: 100,
            deadtime: 500,
            initdead: 1_000,
            groups: vec![GroupSpec {
                key: "IPaddr::10.77.0.100/24".into(),
                preferred: "node1".into(),
            }],
            status_loss,
            dup: 0.05,
            max_delay,
            max_op: 50,
            start_fail: 0.0,
            stop_fail: 0.0,
            commands: true,
            duration: 120_000,
        };
        let verbose = std::env::var("WASMBEAT_SIM_OFFSET").is_ok_and(|o| o == offset.to_string());
        let mut sim = Sim::scripted(offset + max_delay, k, verbose);
        let cut = 30_000;
        sim.boot_both_then_partition(200, cut, 2_500);
        sim.at(
            Millis(cut + 2_500 + offset),
            Ev::Cmd(0, Command::Standby(Which::All)),
        );
        sim.run_queue();
        assert!(
            sim.cov.split_brains_logged > 0,
            "offset {offset} ms, delay {max_delay}: the partition did not produce a split brain"
        );
        // The command is either carried out (the group ends on node2) or
        // refused with a reason (peer dead or in flux: it stays on node1);
        // never lost half way with the group on neither node. Under the
        // harshest network a false death after the hand-over may move it
        // home again: then it must run on node1 alone.
        let g = "IPaddr::10.77.0.100/24";
        let after_cmd = sim
            .trace
            .iter()
            .skip_while(|l| !l.contains("COMMAND Standby(All)"));
        let (mut handed_over, mut died_after) = (false, false);
        for l in after_cmd {
            handed_over |= l.contains("standby complete");
            died_after |= handed_over && l.contains("declared dead");
        }
        let running = sim.running_on(g);
        let expected = match (handed_over, died_after) {
            // a false death afterwards may leave it on either node, alone
            (_, true) => running.clone(),
            (true, false) => vec![1],
            (false, false) => vec![0],
        };
        assert_eq!(
            running.len(),
            1,
            "offset {offset} ms, delay {max_delay}: the group must run on exactly one node, runs on {running:?} \
             (replay: WASMBEAT_SIM_OFFSET={offset} cargo test -p wasmbeat-core --test simulation standby_racing -- --nocapture)"
        );
        outcomes[usize::from(handed_over)] += 1;
        assert_eq!(
            running,
            expected,
            "offset {offset} ms, delay {max_delay}: handed over: {handed_over}, false death after: {died_after} (replay: WASMBEAT_SIM_OFFSET={offset} \
             cargo test -p wasmbeat-core --test simulation standby_racing -- --nocapture)"
        );
    }
    println!(
        "standby all racing the split-brain resolution: {} kept on node1 (refused), {} handed to node2",
        outcomes[0], outcomes[1]
    );
    assert!(
        outcomes[1] > 0,
        "no offset handed the group over: the case no longer exercises the race"
    );
}

/// A split brain at the fast timings (keepalive 50 ms, deadtime 200 ms) is
/// settled within a keepalive or two of the heal: the node that is not the
/// preferred owner releases its copy as soon as the preferred node's report
/// is in. That report comes after the partition's gap (lost statuses and the
/// `n_stnth` fencing result), so it waits for the gap to be refilled; in a
/// two-node cluster the request goes out at once and is answered at once.
/// It took 300-450 ms in the bench when the request waited heartbeat's
/// random 50-250 ms and a resend counted the original send as a resend.
#[test]
fn a_split_brain_at_fast_timings_is_settled_within_two_keepalives_of_the_heal() {
    let g = "IPaddr::10.77.0.100/24";
    let mut worst = 0;
    for seed in 0..20u64 {
        let k = Knobs {
            mode: AutoFailback::On,
            keepalive: 50,
            deadtime: 200,
            initdead: 1_000,
            groups: vec![GroupSpec {
                key: g.into(),
                preferred: "node1".into(),
            }],
            status_loss: 0.0,
            dup: 0.0,
            max_delay: 1,
            max_op: 5,
            start_fail: 0.0,
            stop_fail: 0.0,
            commands: false,
            duration: 20_000,
        };
        let mut sim = Sim::scripted(seed, k, false);
        // Cut at a different phase of the keepalive each time.
        let cut = 10_000 + seed * 7;
        let dur = 400 + seed * 13;
        sim.boot_both_then_partition(100, cut, dur);
        sim.run_queue();
        // Trace lines start with the time as "10.400s".
        let at = |l: &str| {
            let (s, ms) = l
                .split_whitespace()
                .next()?
                .strip_suffix('s')?
                .split_once('.')?;
            Some(s.parse::<u64>().ok()? * 1000 + ms.parse::<u64>().ok()?)
        };
        let took_over = sim
            .trace
            .iter()
            .any(|l| l.contains(&format!("node2 START {g}")));
        let released = sim
            .trace
            .iter()
            .filter(|l| l.contains(&format!("node2 STOP {g}")))
            .filter_map(|l| at(l))
            .find(|t| *t >= cut + dur);
        assert!(
            took_over,
            "seed {seed}: node2 never took over during the cut"
        );
        let Some(released) = released else {
            panic!("seed {seed}: node2 never released after the heal")
        };
        let after = released - (cut + dur);
        worst = worst.max(after);
        assert!(
            after <= 100,
            "seed {seed}: node2 released {after} ms after the heal (bound 100 ms: one keepalive to hear \
             node1, one round trip for the gap)"
        );
        assert_eq!(sim.running_on(g), vec![0], "seed {seed}");
    }
    println!("split brain settled at most {worst} ms after the heal");
}

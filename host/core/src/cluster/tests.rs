//! Scenario tests for the heartbeat rules, one per rule, written as
//! "given ..., when ..., then ..." on a tiny two-node harness with instant, reliable links
//! (the randomized, lossy version is `host/tests/simulation.rs`).

use super::*;

const G1: &str = "IPaddr::10.77.0.10/24";
const G2: &str = "IPaddr::10.77.0.20/24";

fn params(local: &str, mode: AutoFailback) -> ClusterParams {
    ClusterParams {
        local: local.into(),
        nodes: vec!["n1".into(), "n2".into()],
        keepalive: Duration::from_secs(1),
        deadtime: Duration::from_secs(5),
        warntime: Duration::from_millis(2500),
        initdead: Duration::from_secs(12),
        auto_failback: mode,
        groups: vec![
            GroupSpec {
                key: G1.into(),
                preferred: "n1".into(),
            },
            GroupSpec {
                key: G2.into(),
                preferred: "n2".into(),
            },
        ],
        generation: if local == "n1" { 100 } else { 200 },
        ping: Default::default(),
        fencing: Default::default(),
        tiebreaker: false,
    }
}

/// What one simulated node did, as seen from outside.
#[derive(Default)]
struct Log {
    sent: Vec<(Millis, Message)>,
    ops: Vec<(Millis, &'static str, String)>,
    notes: Vec<(Millis, StateChange)>,
    exited: bool,
}

struct Node {
    c: Option<Cluster>,
    generation: u64,
    running: Vec<String>,
    pending: Vec<(Millis, String, Op)>,
    fail_starts: Vec<String>,
    log: Log,
}

/// Two nodes on instant links; resource operations take 100 ms.
struct Pair {
    now: Millis,
    mode: AutoFailback,
    n: [Node; 2],
    cut: bool,
    /// A frozen node (SIGSTOP) gets no events; messages to it wait.
    frozen: [bool; 2],
    /// Messages in flight: (to, from, sender generation, message, due).
    inbox: Vec<(usize, usize, u64, Message, Millis)>,
    /// One-way delay of every message (instant by default).
    latency: Duration,
    /// Only G1 is configured (as in the chaos lab), not G1 and G2.
    only_g1: bool,
    /// Ping nodes and ipfail of both nodes.
    ping: PingParams,
    /// STONITH configured on both nodes (a power switch that cuts a node
    /// 500 ms after the request reaches it).
    fencing: bool,
    /// Whether the power switch answers.
    switch_up: bool,
    /// Fencing requests under way: (due, requester, target).
    fences: Vec<(Millis, usize, String)>,
    /// Every fencing request made: (when, requester, target).
    fence_log: Vec<(Millis, usize, String)>,
    /// A tie-breaker both nodes are configured with (`None`: not configured).
    witness: Option<SimWitness>,
}

/// A simulated witness: answers 20 ms after a request it can hear; a node
/// that cannot reach it hears `Unreachable` after the driver's 1.5 s budget.
#[derive(Default)]
struct SimWitness {
    /// The witness runs.
    up: bool,
    /// Whether each node reaches it (its LAN port).
    reach: [bool; 2],
    /// The lease: (holder, expiry).
    holder: Option<(usize, Millis)>,
    /// Exchanges under way: (due, node, lease).
    queue: Vec<(Millis, usize, Duration)>,
    /// Every answer given: (when, node, verdict).
    log: Vec<(Millis, usize, TiebreakVerdict)>,
    /// Releases heard.
    releases: Vec<(Millis, usize)>,
    /// The driver loses every exchange: no answer at all, not even `Unreachable`.
    mute: bool,
}

impl SimWitness {
    fn new() -> SimWitness {
        SimWitness {
            up: true,
            reach: [true; 2],
            ..SimWitness::default()
        }
    }
}

impl Pair {
    fn new(mode: AutoFailback) -> Pair {
        let mk = |name: &str| Node {
            c: None,
            generation: params(name, mode).generation,
            running: Vec::new(),
            pending: Vec::new(),
            fail_starts: Vec::new(),
            log: Log::default(),
        };
        Pair {
            now: Millis(0),
            mode,
            n: [mk("n1"), mk("n2")],
            cut: false,
            frozen: [false; 2],
            inbox: Vec::new(),
            latency: Duration::ZERO,
            only_g1: false,
            ping: PingParams::default(),
            fencing: false,
            switch_up: true,
            fences: Vec::new(),
            fence_log: Vec::new(),
            witness: None,
        }
    }

    fn name(i: usize) -> &'static str {
        ["n1", "n2"][i]
    }

    fn boot(&mut self, i: usize) {
        self.n[i].generation += 1;
        let mut p = params(Self::name(i), self.mode);
        if self.only_g1 {
            p.groups.truncate(1);
        }
        p.generation = self.n[i].generation;
        p.ping = Box::new(self.ping.clone());
        p.fencing = FenceParams {
            configured: self.fencing,
            delay: Duration::from_secs(10),
        };
        p.tiebreaker = self.witness.is_some();
        self.n[i].c = Some(Cluster::new(p, self.now));
        self.n[i].log.exited = false;
        self.feed(i, Event::Tick);
    }

    fn crash(&mut self, i: usize) {
        self.n[i].c = None;
        self.n[i].running.clear();
        self.n[i].pending.clear();
        self.inbox.retain(|(to, from, ..)| *to != i && *from != i);
        self.fences.retain(|(_, by, _)| *by != i);
    }

    fn feed(&mut self, i: usize, ev: Event) {
        let now = self.now;
        let Some(c) = self.n[i].c.as_mut() else {
            return;
        };
        for a in c.handle(now, ev) {
            let node = &mut self.n[i];
            match a {
                Action::Send(m) => {
                    node.log.sent.push((now, m.clone()));
                    if !self.cut {
                        let due = now.plus(self.latency);
                        self.inbox.push((1 - i, i, node.generation, m, due));
                    }
                }
                Action::StartGroup(g) => {
                    assert!(
                        !node.running.contains(&g),
                        "{g} started twice on {}",
                        Self::name(i)
                    );
                    node.log.ops.push((now, "start", g.clone()));
                    node.pending
                        .push((now.plus(Duration::from_millis(100)), g, Op::Start));
                }
                Action::StopGroup(g) => {
                    node.log.ops.push((now, "stop", g.clone()));
                    node.pending
                        .push((now.plus(Duration::from_millis(100)), g, Op::Stop));
                }
                Action::Notify(n) => node.log.notes.push((now, n)),
                Action::Announce(g) => node.log.ops.push((now, "announce", g)),
                Action::Fence(target) => {
                    self.fence_log.push((now, i, target.clone()));
                    self.fences
                        .push((now.plus(Duration::from_millis(500)), i, target));
                }
                Action::AskTiebreak { peer, lease } => {
                    assert_eq!(peer, Self::name(1 - i));
                    let w = self.witness.as_mut().expect("no tie-breaker configured");
                    let reachable = w.up && w.reach[i];
                    let rtt = if reachable { 20 } else { 1500 };
                    if !w.mute {
                        w.queue
                            .push((now.plus(Duration::from_millis(rtt)), i, lease));
                    }
                }
                Action::ReleaseTiebreak { .. } => {
                    let w = self.witness.as_mut().expect("no tie-breaker configured");
                    if w.up && w.reach[i] {
                        w.releases.push((now, i));
                        if w.holder.is_some_and(|(h, _)| h == i) {
                            w.holder = None;
                        }
                    }
                }
                Action::Exit => {
                    node.log.exited = true;
                    node.c = None;
                }
            }
        }
    }

    /// Delivers messages and operation results and ticks both nodes, in 10 ms steps.
    fn run_for(&mut self, secs: f64) {
        let end = self.now.plus(Duration::from_secs_f64(secs));
        while self.now < end {
            let now = self.now;
            while let Some(pos) = self
                .inbox
                .iter()
                .position(|m| !self.frozen[m.0] && m.4 <= now)
            {
                let (to, from, generation, msg, _) = self.inbox.remove(pos);
                let ev = Event::Heard {
                    from: Self::name(from).into(),
                    link: LinkId("bcast eth0".into()),
                    generation,
                    msg,
                };
                self.feed(to, ev);
            }
            while let Some(pos) = self.fences.iter().position(|f| f.0 <= now) {
                let (_, by, target) = self.fences.remove(pos);
                let ok = self.switch_up;
                if ok {
                    let t = if target == Self::name(0) { 0 } else { 1 };
                    self.crash(t);
                }
                let detail = if ok {
                    "switch: reset done"
                } else {
                    "switch: connection refused"
                };
                self.feed(
                    by,
                    Event::FenceResult {
                        node: target,
                        ok,
                        detail: detail.into(),
                    },
                );
            }
            let answers = match self.witness.as_mut() {
                Some(w) => {
                    let due: Vec<_> = w.queue.iter().filter(|q| q.0 <= now).cloned().collect();
                    w.queue.retain(|q| q.0 > now);
                    due.into_iter()
                        .map(|(_, i, lease)| {
                            let verdict = if !(w.up && w.reach[i]) {
                                TiebreakVerdict::Unreachable
                            } else {
                                match w.holder {
                                    Some((h, exp)) if h != i && exp > now => {
                                        TiebreakVerdict::Refused
                                    }
                                    _ => {
                                        w.holder = Some((i, now.plus(lease)));
                                        TiebreakVerdict::Granted
                                    }
                                }
                            };
                            w.log.push((now, i, verdict));
                            (i, verdict)
                        })
                        .collect()
                }
                None => Vec::new(),
            };
            for (i, verdict) in answers {
                let detail = match verdict {
                    TiebreakVerdict::Unreachable => "no answer within 1.5 s".to_string(),
                    _ => "witness".to_string(),
                };
                self.feed(
                    i,
                    Event::TiebreakResult {
                        peer: Self::name(1 - i).into(),
                        verdict,
                        detail,
                    },
                );
            }
            let frozen = self.frozen;
            for i in (0..2).filter(|i| !frozen[*i]) {
                let due: Vec<(Millis, String, Op)> = self.n[i]
                    .pending
                    .iter()
                    .filter(|p| p.0 <= self.now)
                    .cloned()
                    .collect();
                self.n[i].pending.retain(|p| p.0 > self.now);
                for (_, g, op) in due {
                    let ok = !(op == Op::Start && self.n[i].fail_starts.contains(&g));
                    if op == Op::Start && ok {
                        self.n[i].running.push(g.clone());
                    }
                    if op == Op::Stop {
                        self.n[i].running.retain(|x| *x != g);
                    }
                    self.feed(
                        i,
                        Event::ResourceResult {
                            group: g,
                            op,
                            ok,
                            detail: if ok {
                                "ok".into()
                            } else {
                                "IPaddr: address in use".into()
                            },
                        },
                    );
                }
                let due = self.n[i]
                    .c
                    .as_ref()
                    .and_then(|c| c.next_deadline())
                    .is_some_and(|d| d <= self.now);
                if due {
                    self.feed(i, Event::Tick);
                }
            }
            self.now = self.now.plus(Duration::from_millis(10));
        }
    }

    fn running(&self, i: usize) -> Vec<&str> {
        let mut v: Vec<&str> = self.n[i].running.iter().map(|s| s.as_str()).collect();
        v.sort();
        v
    }

    fn noted(&self, i: usize, text: &str) -> Option<Millis> {
        self.n[i]
            .log
            .notes
            .iter()
            .find(|(_, n)| n.what.contains(text) || n.why.contains(text))
            .map(|(t, _)| *t)
    }

    fn first_op(&self, i: usize, op: &str, g: &str) -> Option<Millis> {
        self.n[i]
            .log
            .ops
            .iter()
            .find(|(_, o, k)| *o == op && k == g)
            .map(|(t, _, _)| *t)
    }

    fn sent_types(&self, i: usize) -> Vec<String> {
        self.n[i]
            .log
            .sent
            .iter()
            .filter(|(_, m)| !matches!(m, Message::Status { .. }))
            .map(|(_, m)| match m {
                Message::AskResources { hold, step } => {
                    format!("ask_resources {} {step:?}", hold.as_str())
                }
                Message::Resource {
                    hold, stable, info, ..
                } => {
                    format!("resource {} stable={stable:?} info={info:?}", hold.as_str())
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// Both nodes booted together and settled: n1 runs G1, n2 runs G2.
    fn settled(mode: AutoFailback) -> Pair {
        Pair::settled_with(mode, false)
    }

    /// Both nodes booted together and settled: n1 runs G1, n2 runs G2
    /// unless only G1 is configured.
    fn settled_with(mode: AutoFailback, only_g1: bool) -> Pair {
        let mut p = Pair::new(mode);
        p.only_g1 = only_g1;
        p.boot(0);
        p.boot(1);
        p.run_for(15.0);
        assert_eq!(p.running(0), vec![G1]);
        let g2: &[&str] = if only_g1 { &[] } else { &[G2] };
        assert_eq!(p.running(1), g2);
        p
    }
}

#[test]
fn given_both_nodes_start_together_then_each_takes_its_own_group_after_rqstdelay() {
    let mut p = Pair::new(AutoFailback::On);
    p.boot(0);
    p.boot(1);
    p.run_for(9.5);
    assert!(
        p.running(0).is_empty() && p.running(1).is_empty(),
        "nothing before RQSTDELAY (10 s)"
    );
    p.run_for(1.0);
    assert_eq!(p.first_op(0, "start", G1).map(|t| t.0), Some(10_000));
    p.run_for(1.0);
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2]);
    let kinds = p.sent_types(0);
    assert_eq!(kinds[0], "Starting");
    assert!(
        kinds[1].starts_with("resource none stable=Some(false)"),
        "{kinds:?}"
    );
}

#[test]
fn given_status_timeline_then_init_with_longer_dt_then_up_then_active_at_comm_up() {
    let mut p = Pair::new(AutoFailback::On);
    p.boot(0);
    p.run_for(2.0);
    let statuses: Vec<(NodeStatus, Duration)> = p.n[0]
        .log
        .sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Status { status, deadtime } => Some((*status, *deadtime)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses[0],
        (NodeStatus::Init, Duration::from_secs(7)),
        "dt = deadtime + 2 s at start"
    );
    assert_eq!(statuses[1].0, NodeStatus::Up);
    p.boot(1);
    p.run_for(4.0);
    let last = p.n[0].log.sent.iter().rev().find_map(|(_, m)| match m {
        Message::Status { status, deadtime } => Some((*status, *deadtime)),
        _ => None,
    });
    assert_eq!(last, Some((NodeStatus::Active, Duration::from_secs(5))));
}

#[test]
fn given_node_starts_alone_then_after_initdead_it_fences_nothing_and_takes_all_groups() {
    let mut p = Pair::new(AutoFailback::On);
    p.boot(0);
    p.run_for(11.9);
    assert!(p.running(0).is_empty(), "waits for initdead (12 s)");
    p.run_for(1.0);
    assert_eq!(p.running(0), vec![G1, G2]);
    assert!(p.noted(0, "node n2 declared dead").is_some());
    assert!(p.n[0].log.sent.iter().any(|(_, m)| matches!(
        m,
        Message::Stonith { node, result: StonithResult::NotConfigured } if node == "n2"
    )));
}

#[test]
fn given_n1_active_and_n2_silent_for_deadtime_then_n1_takes_g2() {
    let mut p = Pair::settled(AutoFailback::On);
    p.crash(1);
    let crashed = p.now;
    p.run_for(4.0);
    assert_eq!(p.running(0), vec![G1], "not before the advertised dt (5 s)");
    p.run_for(2.0);
    assert_eq!(p.running(0), vec![G1, G2]);
    let dead_at = p.noted(0, "node n2 declared dead").unwrap();
    let silence = dead_at.since(crashed);
    assert!(
        silence >= Duration::from_secs(4) && silence <= Duration::from_secs(5),
        "{silence:?}"
    );
    let why = &p.n[0]
        .log
        .notes
        .iter()
        .find(|(_, n)| n.what.contains("taking over"))
        .unwrap()
        .1;
    assert!(why.why.contains("auto_failback on"), "{why:?}");
}

#[test]
fn given_a_node_frozen_past_deadtime_when_its_timer_fires_before_it_reads_then_its_peer_is_not_declared_dead(
) {
    let mut p = Pair::settled(AutoFailback::On);
    let frozen_at = p.now;
    p.frozen[1] = true;
    p.run_for(8.0);
    assert_eq!(p.running(0), vec![G1, G2], "n1 took n2's group over");
    // n2 wakes: its overdue timer first (the worst order), then the
    // heartbeats queued while it was stopped.
    p.frozen[1] = false;
    p.feed(1, Event::Tick);
    p.run_for(5.0);
    let dead = p.n[1]
        .log
        .notes
        .iter()
        .find(|(t, n)| *t > frozen_at && n.what.contains("node n1 declared dead"));
    assert!(dead.is_none(), "n2 declared n1 dead on waking: {dead:?}");
    assert_eq!(p.first_op(1, "start", G1), None, "n2 took G1 on waking");
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2]);
}

impl Pair {
    /// The node whose start or re-announce of `g` came last: the one whose
    /// MAC the neighbours' ARP caches hold for its address.
    fn last_announcer(&self, g: &str) -> Option<usize> {
        (0..2)
            .flat_map(|i| {
                self.n[i]
                    .log
                    .ops
                    .iter()
                    .filter(|(_, o, k)| (*o == "start" || *o == "announce") && k == g)
                    .map(move |(t, _, _)| (*t, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// How long after the other node released `g` (its stop after its last
    /// start) the holder `h` announced it: the time neighbours spent
    /// pointed at a node without the address. None if the other never ran it.
    fn announce_lag(&self, g: &str, h: usize) -> Option<Duration> {
        let o = 1 - h;
        let ops = |i: usize, what: &'static [&'static str]| {
            self.n[i]
                .log
                .ops
                .iter()
                .filter(move |(_, op, k)| what.contains(op) && k == g)
                .map(|(t, _, _)| *t)
        };
        let started = ops(o, &["start"]).max()?;
        let stopped = ops(o, &["stop"]).find(|t| *t >= started)?;
        let announced = ops(h, &["start", "announce"]).find(|t| *t >= started);
        Some(announced.map_or(Duration::MAX, |t| t.since(stopped)))
    }
}

/// A partition heals and an operator command follows at once, racing the
/// split-brain resolution (seen by `xtask chaos`: a client without answer
/// for up to 9.9 s): each group ends on one node, that node was the last to
/// announce it, and it announced within 2 s of the other's release. The
/// case that failed: n1 was asked to go standby by n2's takeover, n2
/// refused the hand-off while releasing its copy, and n1, waiting out its
/// standby, skipped the re-announcement for 10 s while neighbours still
/// sent to n2.
#[test]
fn given_a_command_right_after_a_partition_heals_then_each_holder_announced_last() {
    // Every 50 ms from the heal to well past the split-brain resolution
    // (which waits for both nodes' reports), so the command lands in each
    // of its phases: before the release, while the copy is stopping, after.
    let cases = [
        (1, Command::Takeover(Which::All)),
        (0, Command::Standby(Which::All)),
        (0, Command::Takeover(Which::All)),
        (1, Command::Standby(Which::All)),
    ];
    for (only_g1, latency_ms, who, cmd, delay_ms) in [false, true].into_iter().flat_map(|one| {
        [0, 30].into_iter().flat_map(move |l| {
            cases.into_iter().flat_map(move |(who, cmd)| {
                (0..=1200).step_by(20).map(move |d| (one, l, who, cmd, d))
            })
        })
    }) {
        let mut p = Pair::settled_with(AutoFailback::On, only_g1);
        p.latency = Duration::from_millis(latency_ms);
        p.cut = true;
        p.run_for(8.0);
        p.cut = false;
        p.run_for(delay_ms as f64 / 1000.0);
        p.feed(who, Event::Command(cmd));
        p.run_for(40.0);
        let groups: &[&str] = if only_g1 { &[G1] } else { &[G1, G2] };
        for &g in groups {
            let holders: Vec<usize> = (0..2).filter(|i| p.running(*i).contains(&g)).collect();
            assert_eq!(
                holders.len(),
                1,
                "{cmd:?} on n{} {delay_ms} ms after the heal, latency {latency_ms} ms: {g} on {holders:?}",
                who + 1
            );
            let lag = p.announce_lag(g, holders[0]);
            assert!(
                lag.is_none_or(|l| l <= Duration::from_secs(2)),
                "{cmd:?} on n{} {delay_ms} ms after the heal, latency {latency_ms} ms: n{} released {g} and n{} announced it {lag:?} later; ops n1 {:?} n2 {:?}",
                who + 1,
                2 - holders[0],
                holders[0] + 1,
                p.n[0].log.ops,
                p.n[1].log.ops
            );
            assert_eq!(
                p.last_announcer(g),
                Some(holders[0]),
                "{cmd:?} on n{} {delay_ms} ms after the heal, latency {latency_ms} ms: {g} runs on n{} but n{} announced it last; ops n1 {:?} n2 {:?}",
                who + 1,
                holders[0] + 1,
                p.last_announcer(g).map_or(0, |i| i + 1),
                p.n[0].log.ops,
                p.n[1].log.ops
            );
        }
    }
}

#[test]
fn given_peer_advertises_a_longer_dt_then_it_is_timed_out_with_that_dt() {
    let mut p = Pair::settled(AutoFailback::On);
    // n2 restarts with deadtime 20 s; n1 keeps 5 s
    p.crash(1);
    p.n[1].generation += 1;
    let mut params2 = params("n2", AutoFailback::On);
    params2.deadtime = Duration::from_secs(20);
    params2.generation = p.n[1].generation;
    p.n[1].c = Some(Cluster::new(params2, p.now));
    p.feed(1, Event::Tick);
    p.run_for(10.0);
    p.crash(1);
    p.run_for(15.0);
    assert!(
        p.noted(0, "node n2 declared dead").is_none(),
        "n1 must wait n2's dt=20 s, not its own 5 s"
    );
    p.run_for(6.0);
    assert!(p.noted(0, "node n2 declared dead").is_some());
}

#[test]
fn given_heartbeats_arrive_late_then_a_warning_names_the_interval() {
    let mut p = Pair::settled(AutoFailback::On);
    let name = LinkId("bcast eth0".into());
    // n1 hears n2's status only every 3 s (warntime 2.5 s)
    p.cut = true;
    p.crash(1);
    for _ in 0..2 {
        p.run_for(3.0);
        let ev = Event::Heard {
            from: "n2".into(),
            link: name.clone(),
            generation: p.n[1].generation,
            msg: Message::Status {
                status: NodeStatus::Active,
                deadtime: Duration::from_secs(5),
            },
        };
        p.feed(0, ev);
    }
    assert!(p.noted(0, "late heartbeat from n2: interval").is_some());
    assert!(p.noted(0, "declared dead").is_none());
}

#[test]
fn given_peer_restarts_faster_than_deadtime_then_its_groups_are_taken_over_and_failed_back() {
    let mut p = Pair::settled(AutoFailback::On);
    p.crash(1);
    p.run_for(1.0);
    p.boot(1);
    p.run_for(0.5);
    assert!(p.noted(0, "restarted (generation 201 -> 202)").is_some());
    assert!(
        p.first_op(0, "start", G2).is_some(),
        "n1 took G2: a restarted node runs nothing"
    );
    p.run_for(10.0);
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2], "auto_failback on brought G2 home");
}

#[test]
fn given_a_message_from_a_new_generation_before_its_status_then_it_is_dropped() {
    let mut p = Pair::settled(AutoFailback::On);
    let before = p.n[0].log.sent.len();
    let ev = Event::Heard {
        from: "n2".into(),
        link: LinkId("bcast eth0".into()),
        generation: 999,
        msg: Message::Starting,
    };
    p.feed(0, ev);
    assert!(p.n[0].log.sent[before..]
        .iter()
        .all(|(_, m)| matches!(m, Message::Status { .. })));
    let ev = Event::Heard {
        from: "n2".into(),
        link: LinkId("bcast eth0".into()),
        generation: 1,
        msg: Message::Shutdone,
    };
    p.feed(0, ev);
    assert!(
        p.noted(0, "shut down").is_none(),
        "older generation: replay, ignored"
    );
}

#[test]
fn given_auto_failback_on_when_preferred_node_returns_then_group_goes_home_in_order() {
    let mut p = Pair::settled(AutoFailback::On);
    p.crash(1);
    p.run_for(7.0);
    assert_eq!(p.running(0), vec![G1, G2]);
    p.boot(1);
    p.run_for(5.0);
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2]);
    // ordering: n2 starts G2 only after n1's stop of G2 completed (100 ms op)
    let stopped = p
        .first_op(0, "stop", G2)
        .unwrap()
        .plus(Duration::from_millis(100));
    let started = p.n[1]
        .log
        .ops
        .iter()
        .rev()
        .find(|(_, o, k)| *o == "start" && k == G2)
        .unwrap()
        .0;
    assert!(
        started >= stopped,
        "start {started} before stop finished {stopped}"
    );
    let n1 = p.sent_types(0);
    assert!(n1.iter().any(|s| s == "ask_resources foreign Me"), "{n1:?}");
    assert!(
        n1.iter().any(|s| s == "ask_resources foreign Done"),
        "{n1:?}"
    );
    assert!(p
        .sent_types(1)
        .iter()
        .any(|s| s == "ask_resources foreign Other"));
}

#[test]
fn given_auto_failback_off_when_preferred_node_returns_then_group_stays() {
    let mut p = Pair::settled(AutoFailback::Off);
    p.crash(1);
    p.run_for(7.0);
    p.boot(1);
    p.run_for(20.0);
    assert_eq!(p.running(0), vec![G1, G2]);
    assert!(p.running(1).is_empty());
    assert!(p.noted(1, "initial resource acquisition: (none)").is_some());
}

#[test]
fn given_standby_all_on_n1_then_n2_holds_everything_after_the_three_step_handshake() {
    let mut p = Pair::settled(AutoFailback::On);
    p.feed(0, Event::Command(Command::Standby(Which::All)));
    p.run_for(2.0);
    assert!(p.running(0).is_empty());
    assert_eq!(p.running(1), vec![G1, G2]);
    let n1 = p.sent_types(0);
    let me = n1.iter().position(|s| s == "ask_resources all Me").unwrap();
    let rel = n1
        .iter()
        .position(|s| s.contains("info=Some(\"standby\")"))
        .unwrap();
    let done = n1
        .iter()
        .position(|s| s == "ask_resources all Done")
        .unwrap();
    assert!(me < rel && rel < done, "{n1:?}");
    assert_eq!(p.running(1), vec![G1, G2]);
    // and it stays: standby is not undone by auto_failback
    p.run_for(20.0);
    assert!(p.running(0).is_empty());
}

/// The last `rsc_hold` node `i` announced in a `resource` report.
fn last_hold(p: &Pair, i: usize) -> Option<&'static str> {
    p.n[i].log.sent.iter().rev().find_map(|(_, m)| match m {
        Message::Resource { hold, .. } => Some(hold.as_str()),
        _ => None,
    })
}

/// heartbeat's halves of responsibility: a node with no group of its own
/// still holds its (empty) local half after start-up and `all` once it has
/// taken the peer's groups; `foreign` there makes a heartbeat 3.0.6 peer log
/// "No one owns foreign resources!" (seen in the mixed ipfail lab).
#[test]
fn given_n2_has_no_groups_then_it_announces_local_then_all_after_taking_n1s_groups() {
    let mut p = Pair::settled_with(AutoFailback::On, true);
    assert_eq!(last_hold(&p, 1), Some("local"), "{:?}", p.sent_types(1));
    p.feed(0, Event::Command(Command::Standby(Which::All)));
    p.run_for(2.0);
    assert_eq!(p.running(1), vec![G1]);
    assert_eq!(last_hold(&p, 0), Some("none"), "{:?}", p.sent_types(0));
    assert_eq!(last_hold(&p, 1), Some("all"), "{:?}", p.sent_types(1));
}

#[test]
fn given_hb_takeover_on_n2_then_n1_goes_standby_for_the_complement() {
    let mut p = Pair::settled(AutoFailback::Off);
    p.feed(1, Event::Command(Command::Takeover(Which::Foreign)));
    p.run_for(2.0);
    assert_eq!(p.running(1), vec![G1, G2]);
    assert!(p.running(0).is_empty());
    assert!(
        p.sent_types(0)
            .iter()
            .any(|s| s == "ask_resources local Me"),
        "n2's foreign = n1's local"
    );
}

#[test]
fn given_legacy_mode_then_standby_is_refused() {
    let mut p = Pair::settled(AutoFailback::Legacy);
    p.feed(0, Event::Command(Command::Standby(Which::All)));
    p.run_for(2.0);
    assert!(p
        .noted(0, "standby mode only implemented when nice_failback is on")
        .is_some());
    assert_eq!(p.running(0), vec![G1]);
}

#[test]
fn given_legacy_mode_when_preferred_node_returns_then_ip_request_pulls_its_group_back() {
    let mut p = Pair::settled(AutoFailback::Legacy);
    p.crash(1);
    p.run_for(7.0);
    assert_eq!(p.running(0), vec![G1, G2]);
    p.boot(1);
    p.run_for(3.0);
    assert!(p.n[1]
        .log
        .sent
        .iter()
        .any(|(_, m)| *m == Message::IpRequest { key: G2.into() }));
    assert!(p.n[0].log.sent.iter().any(|(_, m)| matches!(m, Message::IpRequestResp { dest, key, weown: true, .. } if dest == "n2" && key == G2)));
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2]);
}

#[test]
fn given_graceful_shutdown_then_everything_is_released_before_shutdone_and_peer_takes_over_at_once()
{
    let mut p = Pair::settled(AutoFailback::On);
    let before = p.sent_types(0).len();
    p.feed(0, Event::Command(Command::Shutdown));
    let asked = p.now;
    p.run_for(1.0);
    assert!(p.n[0].log.exited);
    // every group is stopped, also G2 which never ran on n1 (stop is idempotent)
    assert!(p.first_op(0, "stop", G1).is_some() && p.first_op(0, "stop", G2).is_some());
    let n1 = p.sent_types(0)[before..].to_vec();
    assert!(
        n1[0].starts_with("resource none stable=Some(false) info=Some(\"shutdown\")"),
        "{n1:?}"
    );
    assert_eq!(n1.last().unwrap(), "Shutdone");
    assert_eq!(p.running(1), vec![G1, G2]);
    let took = p.first_op(1, "start", G1).unwrap();
    assert!(
        took.since(asked) < Duration::from_millis(500),
        "no deadtime wait after shutdone"
    );
}

#[test]
fn given_a_failed_start_then_the_group_is_given_up_and_handed_to_the_peer() {
    let mut p = Pair::new(AutoFailback::On);
    p.n[0].fail_starts.push(G1.into());
    p.boot(0);
    p.boot(1);
    p.run_for(14.0);
    assert!(p
        .noted(0, "giving up group IPaddr::10.77.0.10/24: start failed")
        .is_some());
    assert!(
        p.first_op(0, "stop", G1).is_some(),
        "partial start is stopped"
    );
    assert!(p.running(0).is_empty());
    assert_eq!(
        p.running(1),
        vec![G1, G2],
        "peer took the failed group's set at once (heartbeat: after 30 s)"
    );
}

#[test]
fn given_a_partition_longer_than_deadtime_then_split_brain_is_logged_and_healed_without_outage() {
    let mut p = Pair::settled(AutoFailback::On);
    p.cut = true;
    p.run_for(8.0);
    assert_eq!(p.running(0), vec![G1, G2], "both took everything");
    assert_eq!(p.running(1), vec![G1, G2]);
    p.cut = false;
    p.run_for(4.0);
    assert!(p.noted(0, "split brain").is_some() && p.noted(1, "split brain").is_some());
    assert_eq!(p.running(0), vec![G1]);
    assert_eq!(p.running(1), vec![G2]);
    // the preferred owners never stopped their groups
    assert!(p.first_op(0, "stop", G1).is_none());
    assert!(p.first_op(1, "stop", G2).is_none());
}

/// n1 sent a message that [`Pair::sent_types`] spells `what`.
fn assert_n1_sent(p: &Pair, what: &str) {
    let sent = p.sent_types(0);
    assert!(sent.iter().any(|s| s == what), "no {what:?} in {sent:?}");
}

/// n1's reports from its `before`-th message on are one unstable -> stable step, the
/// only thing that makes heartbeat run PerformAutoFailback once it counts us stable.
fn assert_stepped_to_stable(p: &Pair, before: usize) {
    let reported: Vec<Option<bool>> = p.n[0].log.sent[before..]
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Resource { stable, .. } => Some(*stable),
            _ => None,
        })
        .collect();
    assert_eq!(
        reported,
        vec![Some(false), Some(true)],
        "n1 must step unstable -> stable; sent {:?}",
        p.sent_types(0)
    );
}

/// n2 as heartbeat 3.0.6 speaks: what its daemon sends, fed to n1 over the Pair's clock.
/// The Pair's own n2 is frozen so that only these messages reach n1.
struct ScriptedHeartbeat {
    generation: u64,
    next_status: Millis,
}

impl ScriptedHeartbeat {
    fn take_over(p: &mut Pair) -> ScriptedHeartbeat {
        p.frozen[1] = true;
        let hb = ScriptedHeartbeat {
            generation: p.n[1].generation,
            next_status: p.now,
        };
        // heartbeat's reports carry no running list.
        hb.report(p, RscHold::None, true, None);
        hb
    }

    fn say(&self, p: &mut Pair, msg: Message) {
        p.feed(
            0,
            Event::Heard {
                from: "n2".into(),
                link: LinkId("bcast eth0".into()),
                generation: self.generation,
                msg,
            },
        );
    }

    /// A full report (`rtype=full`), as heartbeat sends one.
    fn report(&self, p: &mut Pair, hold: RscHold, stable: bool, info: Option<&str>) {
        self.say(
            p,
            Message::Resource {
                hold,
                full: true,
                stable: Some(stable),
                info: info.map(String::from),
                running: None,
            },
        );
    }

    /// What heartbeat sends when it declares n1 dead without a STONITH device and
    /// takes n1's groups: the fencing outcome, then mach_down's report (no rtype,
    /// no isstable).
    fn fence_and_take_over(&self, p: &mut Pair) {
        self.say(
            p,
            Message::Stonith {
                node: "n1".into(),
                result: StonithResult::NotConfigured,
            },
        );
        self.say(
            p,
            Message::Resource {
                hold: RscHold::Foreign,
                full: false,
                stable: None,
                info: Some("mach_down".into()),
                running: None,
            },
        );
    }

    fn ask(&self, p: &mut Pair, step: StandbyStep) {
        self.say(
            p,
            Message::AskResources {
                hold: RscHold::Foreign,
                step,
            },
        );
    }

    /// Runs the pair for `secs`, with heartbeat's status every keepalive.
    fn run_for(&mut self, p: &mut Pair, secs: f64) {
        let end = p.now.plus(Duration::from_secs_f64(secs));
        while p.now < end {
            if p.now >= self.next_status {
                self.say(
                    p,
                    Message::Status {
                        status: NodeStatus::Active,
                        deadtime: Duration::from_secs(5),
                    },
                );
                self.next_status = p.now.plus(Duration::from_secs(1));
            }
            p.run_for(0.1);
        }
    }
}

#[test]
fn given_a_heartbeat_peer_that_took_our_group_after_its_own_stall_then_it_hands_it_back_and_ours_never_stops(
) {
    // chaos --heartbeat, seed 7: heartbeat, frozen past deadtime, declares the
    // wasmbeat node dead on waking and takes its group; the wasmbeat node never
    // saw a partition (the peer's advertised dt covered the stall) and keeps
    // serving. Both then served the VIP for 20-60 s.
    let mut p = Pair::settled_with(AutoFailback::On, true);
    let mut hb = ScriptedHeartbeat::take_over(&mut p);
    hb.run_for(&mut p, 2.0);
    let before = p.n[0].log.sent.len();
    hb.fence_and_take_over(&mut p);
    hb.run_for(&mut p, 0.5);
    assert_stepped_to_stable(&p, before);
    // heartbeat's answer to the step: its report, then auto_failback's standby.
    hb.report(&mut p, RscHold::Foreign, true, None);
    hb.ask(&mut p, StandbyStep::Me);
    hb.run_for(&mut p, 0.5);
    assert_n1_sent(&p, "ask_resources foreign Other");
    let released = p.now;
    hb.report(&mut p, RscHold::None, false, Some("standby"));
    hb.ask(&mut p, StandbyStep::Done);
    hb.run_for(&mut p, 0.5);
    assert_n1_sent(&p, "ask_resources foreign Done");
    // Both ends of a finished standby report themselves stable.
    hb.report(&mut p, RscHold::None, true, None);
    hb.run_for(&mut p, 0.5);
    assert_eq!(p.running(0), vec![G1]);
    assert!(p.first_op(0, "stop", G1).is_none(), "{:?}", p.n[0].log.ops);
    // Neighbours that followed heartbeat's announcements are pointed back.
    assert!(
        p.n[0]
            .log
            .ops
            .iter()
            .any(|(t, o, k)| *t >= released && *o == "announce" && k == G1),
        "{:?}",
        p.n[0].log.ops
    );
}

#[test]
fn given_a_heartbeat_peer_that_declares_us_dead_mid_standby_then_the_standby_is_dropped_and_it_is_asked_to_hand_back(
) {
    // chaos --heartbeat, seed 7, fault #1: on the heal heartbeat asked to go
    // standby, n1 agreed, then heartbeat judged n1's first late status dead,
    // cancelled its standby and took the group. n1 waited for a `done` that
    // never came (one-hour deadline) and refused the operator's takeover.
    let mut p = Pair::settled_with(AutoFailback::On, true);
    let mut hb = ScriptedHeartbeat::take_over(&mut p);
    hb.run_for(&mut p, 2.0);
    hb.ask(&mut p, StandbyStep::Me);
    hb.run_for(&mut p, 0.3);
    assert_n1_sent(&p, "ask_resources foreign Other");
    let before = p.n[0].log.sent.len();
    hb.fence_and_take_over(&mut p);
    hb.run_for(&mut p, 0.5);
    assert!(
        p.noted(0, "cancelling pending standby").is_some(),
        "{:?}",
        p.n[0].log.notes
    );
    assert_stepped_to_stable(&p, before);
    // A new standby request is heard again.
    hb.report(&mut p, RscHold::Foreign, true, None);
    hb.ask(&mut p, StandbyStep::Me);
    hb.run_for(&mut p, 0.3);
    let others = p
        .sent_types(0)
        .iter()
        .filter(|s| *s == "ask_resources foreign Other")
        .count();
    assert_eq!(others, 2, "{:?}", p.sent_types(0));
    assert_eq!(p.running(0), vec![G1]);
}

#[test]
fn given_a_heartbeat_peer_that_restarts_to_settle_a_split_brain_then_we_announce_when_it_lets_go() {
    // chaos --heartbeat, seed 7: heartbeat took our group, then settled the split
    // brain its way (release everything, shutdone, re-exec). n1 re-announced only
    // when heartbeat was back 4 s later; clients that followed heartbeat's ARPs
    // had no service meanwhile.
    let mut p = Pair::settled_with(AutoFailback::On, true);
    let mut hb = ScriptedHeartbeat::take_over(&mut p);
    hb.run_for(&mut p, 2.0);
    hb.fence_and_take_over(&mut p);
    hb.run_for(&mut p, 0.5);
    let announced = |p: &Pair, after: Millis| {
        p.n[0]
            .log
            .ops
            .iter()
            .any(|(t, o, k)| *t >= after && *o == "announce" && k == G1)
    };
    let giving_up = p.now;
    assert!(!announced(&p, giving_up), "{:?}", p.n[0].log.ops);
    hb.report(&mut p, RscHold::None, false, Some("shutdown"));
    hb.run_for(&mut p, 0.3);
    hb.say(&mut p, Message::Shutdone);
    p.run_for(0.2);
    assert!(announced(&p, giving_up), "{:?}", p.n[0].log.ops);
    assert_eq!(p.running(0), vec![G1]);
    assert!(p.first_op(0, "stop", G1).is_none(), "{:?}", p.n[0].log.ops);
}

#[test]
fn given_a_running_node_then_next_deadline_is_never_later_than_the_next_keepalive() {
    let p = Pair::settled(AutoFailback::On);
    let c = p.n[0].c.as_ref().unwrap();
    let d = c.next_deadline().unwrap();
    assert!(d > p.now.plus(Duration::from_millis(0)) || d == p.now);
    assert!(d <= p.now.plus(Duration::from_secs(1)));
    let s = c.status();
    assert_eq!(s.rscstatus, "local");
    assert_eq!(s.nodes[1].status, NodeStatus::Active);
    assert!(serde_json::to_string(&s)
        .unwrap()
        .contains("\"owner\":\"n2\""));
}

#[test]
fn given_reload_with_a_new_group_then_its_preferred_node_starts_it() {
    let mut p = Pair::settled(AutoFailback::On);
    let mut np = params("n1", AutoFailback::On);
    np.groups.push(GroupSpec {
        key: "httpd".into(),
        preferred: "n1".into(),
    });
    p.feed(0, Event::Reload(np));
    p.run_for(1.0);
    assert_eq!(p.running(0), vec![G1, "httpd"]);
    let mut np = params("n1", AutoFailback::On);
    np.groups.retain(|g| g.key == G2);
    p.feed(0, Event::Reload(np));
    p.run_for(1.0);
    assert!(p.running(0).is_empty(), "removed groups are stopped");
}

#[test]
fn given_link_loss_on_one_medium_then_only_that_link_is_reported_dead() {
    let mut p = Pair::settled(AutoFailback::On);
    // n2's packets arrive on eth1 only from now on
    for _ in 0..8 {
        p.run_for(1.0);
        let ev = Event::HeardDuplicate {
            from: "n2".into(),
            link: LinkId("bcast eth1".into()),
        };
        p.feed(0, ev);
    }
    assert!(p.noted(0, "link n2:bcast eth1").is_none());
    // eth0 carried everything in this harness; cut it and keep eth1 alive by hand
    p.cut = true;
    p.crash(1);
    for _ in 0..4 {
        p.run_for(1.0);
        let ev = Event::Heard {
            from: "n2".into(),
            link: LinkId("bcast eth1".into()),
            generation: p.n[1].generation,
            msg: Message::Status {
                status: NodeStatus::Active,
                deadtime: Duration::from_secs(5),
            },
        };
        p.feed(0, ev);
    }
    p.run_for(3.0);
    assert!(p.noted(0, "link n2:bcast eth0 dead").is_some());
    assert!(p.noted(0, "declared dead").is_none());
}

/// Ping nodes and ipfail: a router both nodes ping on the public LAN, and
/// the two nodes' uplinks to it cut and restored independently.
mod ipfail_scenarios {
    use super::*;
    use crate::ping::{PingNodeSpec, PingStatus};

    const ROUTER: &str = "10.88.0.1";
    const DEADPING: Duration = Duration::from_secs(3);

    fn pair(mode: AutoFailback, ipfail: bool) -> Pair {
        let mut p = Pair::new(mode);
        p.ping = PingParams {
            nodes: vec![PingNodeSpec {
                name: ROUTER.into(),
                members: vec![ROUTER.into()],
            }],
            deadping: DEADPING,
            ipfail,
            track_links: Vec::new(),
        };
        p
    }

    /// Runs `secs`, an echo reply every 500 ms to each node whose uplink is up.
    fn run_uplinks(p: &mut Pair, secs: f64, up: [bool; 2]) {
        let steps = (secs / 0.5).round() as usize;
        for _ in 0..steps {
            for (i, &u) in up.iter().enumerate() {
                if u {
                    p.feed(
                        i,
                        Event::PingReply {
                            member: ROUTER.into(),
                        },
                    );
                }
            }
            p.run_for(0.5);
        }
    }

    /// A settled pair with `track_link eth0`, n1 running G1.
    fn settled_with_track_link() -> Pair {
        let mut p = pair(AutoFailback::On, true);
        p.ping.track_links = vec!["eth0".into()];
        p.boot(0);
        p.boot(1);
        run_uplinks(&mut p, 15.0, [true, true]);
        assert_eq!(p.running(0), vec![G1]);
        p
    }

    /// n1's eth0 carrier goes `up` or down.
    fn carrier(p: &mut Pair, up: bool) {
        p.feed(
            0,
            Event::Carrier {
                iface: "eth0".into(),
                up,
            },
        );
    }

    fn settled(mode: AutoFailback, ipfail: bool) -> Pair {
        let mut p = pair(mode, ipfail);
        p.boot(0);
        p.boot(1);
        run_uplinks(&mut p, 15.0, [true, true]);
        assert_eq!(p.running(0), vec![G1]);
        assert_eq!(p.running(1), vec![G2]);
        p
    }

    fn ops_since(p: &Pair, i: usize, t: Millis) -> Vec<(u64, &'static str, String)> {
        p.n[i]
            .log
            .ops
            .iter()
            .filter(|(at, ..)| *at >= t)
            .map(|(at, op, g)| (at.0 - t.0, *op, g.clone()))
            .collect()
    }

    fn ping_status(p: &Pair, i: usize) -> PingStatus {
        p.n[i].c.as_ref().unwrap().status().ping_nodes[0].status
    }

    #[test]
    fn given_node1_loses_its_uplink_then_its_groups_move_to_node2_within_deadping_plus_two_keepalives(
    ) {
        let mut p = settled(AutoFailback::On, true);
        let cut = p.now;
        run_uplinks(&mut p, 10.0, [false, true]);
        assert_eq!(p.running(0), Vec::<&str>::new());
        assert_eq!(p.running(1), vec![G1, G2]);
        let took = ops_since(&p, 1, cut)
            .into_iter()
            .find(|(_, op, g)| *op == "start" && g == G1)
            .map(|(dt, ..)| Duration::from_millis(dt))
            .expect("G1 started on n2");
        // deadping after the last reply (≤ 0.5 s before the cut), 2 × keepalive
        // of ipfail's delay, then the standby hand-shake and a 100 ms stop.
        assert!(
            took >= DEADPING - Duration::from_millis(500) && took <= Duration::from_millis(5600),
            "G1 moved {took:?} after the cut"
        );
        assert_eq!(ping_status(&p, 0), PingStatus::Dead);
        assert_eq!(ping_status(&p, 1), PingStatus::Ping);
        let n1_sent = &p.n[0].log.sent;
        assert!(n1_sent.iter().any(|(_, m)| *m
            == Message::NumPingNodes {
                dest: "n2".into(),
                count: 0
            }));
        assert!(p.n[1]
            .log
            .sent
            .iter()
            .any(|(_, m)| *m == Message::YouAreDead { dest: "n1".into() }));
        let dead = p.noted(0, "ping node 10.88.0.1 dead").expect("noted");
        let line = &p.n[0].log.notes.iter().find(|(t, _)| *t == dead).unwrap().1;
        assert_eq!(
            line.why,
            "no echo reply for 3.0 s; n1 reaches 0 of 1 ping node(s)"
        );
    }

    /// track_link: a lost carrier on n1's tracked link moves its groups
    /// without waiting for deadping; the carrier back for deadping (and
    /// the peer's give-back wait) brings them home.
    #[test]
    fn given_track_link_when_n1_loses_carrier_then_its_groups_move_before_deadping_and_come_back() {
        let mut p = settled_with_track_link();
        let cut = p.now;
        carrier(&mut p, false);
        // Ping replies still arrive (the ping node is reached otherwise):
        // the carrier alone decides.
        run_uplinks(&mut p, 2.5, [true, true]);
        let notes: Vec<String> = p.n[0]
            .log
            .notes
            .iter()
            .map(|(t, n)| format!("{} {} : {}", t.0, n.what, n.why))
            .collect();
        assert_eq!(
            p.running(1),
            vec![G1, G2],
            "moved before deadping: {notes:#?}"
        );
        let took = ops_since(&p, 1, cut)
            .into_iter()
            .find(|(_, op, g)| *op == "start" && g == G1)
            .map(|(dt, ..)| Duration::from_millis(dt))
            .unwrap();
        assert!(took < DEADPING, "{took:?}");
        assert!(p.noted(0, "tracked link eth0 lost carrier").is_some());
        let back = p.now;
        carrier(&mut p, true);
        run_uplinks(&mut p, DEADPING.as_secs_f64() - 0.5, [true, true]);
        assert!(
            p.running(0).is_empty(),
            "not before the carrier held for deadping"
        );
        run_uplinks(&mut p, DEADPING.as_secs_f64() + 2.0, [true, true]);
        assert_eq!(p.running(0), vec![G1]);
        let home = ops_since(&p, 0, back)
            .into_iter()
            .find(|(_, op, g)| *op == "start" && g == G1)
            .map(|(dt, ..)| Duration::from_millis(dt))
            .unwrap();
        assert!(home >= DEADPING * 2, "{home:?}");
    }

    /// The CI case of the mixed lab: the uplink dies a moment before the
    /// carrier does, so the ping node's death asks the peer again while
    /// the carrier's give-away is pending. The peer's second
    /// `you_are_dead` must not postpone it, and one that arrives once the
    /// groups are gone must not start a second hand-over.
    #[test]
    fn given_track_link_when_the_ping_node_dies_during_the_give_away_then_it_is_neither_postponed_nor_repeated(
    ) {
        let mut p = settled_with_track_link();
        run_uplinks(&mut p, 1.5, [false, true]);
        let lost = p.now;
        carrier(&mut p, false);
        run_uplinks(&mut p, 6.0, [false, true]);
        assert_eq!(p.running(1), vec![G1, G2]);
        let dead = p
            .noted(0, "ping node 10.88.0.1 dead")
            .expect("ping node died");
        let given: Vec<Millis> = p.n[0]
            .log
            .notes
            .iter()
            .filter(|(_, n)| n.what == "ipfail: giving all groups to n2")
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(given.len(), 1, "{given:?}");
        assert!(
            dead < given[0] && given[0].since(lost) <= Duration::from_millis(2100),
            "ping node dead at {dead}, carrier lost at {lost}, given at {}: 2 x keepalive after the carrier, not after the ping node",
            given[0]
        );
        // A late you_are_dead (the answer to a count sent after the
        // groups left) finds nothing to give.
        let late = p.now;
        let ev = Event::Heard {
            from: "n2".into(),
            link: LinkId("bcast eth0".into()),
            generation: p.n[1].generation,
            msg: Message::YouAreDead { dest: "n1".into() },
        };
        p.feed(0, ev);
        run_uplinks(&mut p, 4.0, [false, true]);
        let standby_requests = p.n[0]
            .log
            .notes
            .iter()
            .filter(|(t, n)| *t >= late && n.what.starts_with("standby [all] requested"))
            .count();
        assert_eq!(standby_requests, 0);
        assert!(p.noted(0, "ipfail: nothing to give to n2").is_some());
        assert_eq!(p.running(1), vec![G1, G2]);
    }

    #[test]
    fn given_node1s_uplink_returns_then_its_group_comes_back_after_the_hysteresis_with_auto_failback_on(
    ) {
        let mut p = settled(AutoFailback::On, true);
        run_uplinks(&mut p, 10.0, [false, true]);
        assert_eq!(p.running(1), vec![G1, G2]);
        let back = p.now;
        run_uplinks(&mut p, 3.0, [true, true]);
        assert!(
            ops_since(&p, 1, back).is_empty(),
            "nothing moves before n1's ping node counts again (deadping)"
        );
        run_uplinks(&mut p, 7.0, [true, true]);
        assert_eq!(p.running(0), vec![G1]);
        assert_eq!(p.running(1), vec![G2]);
        let home = ops_since(&p, 0, back)
            .into_iter()
            .find(|(_, op, g)| *op == "start" && g == G1)
            .map(|(dt, ..)| Duration::from_millis(dt))
            .expect("G1 started on n1 again");
        assert!(
            home >= DEADPING * 2 && home <= DEADPING * 2 + Duration::from_millis(1500),
            "G1 home {home:?} after the uplink returned"
        );
    }

    #[test]
    fn given_auto_failback_off_when_node1s_uplink_returns_then_nothing_moves_back() {
        let mut p = settled(AutoFailback::Off, true);
        run_uplinks(&mut p, 10.0, [false, true]);
        assert_eq!(p.running(1), vec![G1, G2]);
        run_uplinks(&mut p, 15.0, [true, true]);
        assert_eq!(p.running(1), vec![G1, G2]);
        assert!(p.running(0).is_empty());
    }

    #[test]
    fn given_both_uplinks_lost_together_then_nothing_moves() {
        let mut p = settled(AutoFailback::On, true);
        let cut = p.now;
        run_uplinks(&mut p, 20.0, [false, false]);
        assert_eq!(ops_since(&p, 0, cut), vec![], "n1 did nothing");
        assert_eq!(ops_since(&p, 1, cut), vec![], "n2 did nothing");
        assert_eq!(ping_status(&p, 0), PingStatus::Dead);
        assert_eq!(ping_status(&p, 1), PingStatus::Dead);
    }

    #[test]
    fn given_both_uplinks_lost_one_keepalive_apart_then_nothing_moves() {
        let mut p = settled(AutoFailback::On, true);
        let cut = p.now;
        run_uplinks(&mut p, 1.0, [false, true]);
        run_uplinks(&mut p, 20.0, [false, false]);
        assert_eq!(ops_since(&p, 0, cut), vec![]);
        assert_eq!(ops_since(&p, 1, cut), vec![]);
        assert!(p.noted(0, "counts balanced").is_some() || p.noted(1, "counts balanced").is_some());
    }

    #[test]
    fn given_a_flapping_uplink_then_the_group_moves_once_and_stays_while_it_flaps() {
        let mut p = settled(AutoFailback::On, true);
        let cut = p.now;
        // Up 2.5 s, down 3.5 s, for a minute: each down phase outlasts
        // deadping, no up phase lasts deadping.
        for _ in 0..10 {
            run_uplinks(&mut p, 3.5, [false, true]);
            run_uplinks(&mut p, 2.5, [true, true]);
        }
        let starts_n2: Vec<_> = ops_since(&p, 1, cut)
            .into_iter()
            .filter(|(_, op, g)| *op == "start" && g == G1)
            .collect();
        assert_eq!(starts_n2.len(), 1, "one move to n2: {starts_n2:?}");
        assert_eq!(p.running(1), vec![G1, G2]);
        // Then it stays up: G1 goes home once.
        let steady = p.now;
        run_uplinks(&mut p, 10.0, [true, true]);
        assert_eq!(p.running(0), vec![G1]);
        assert_eq!(
            ops_since(&p, 0, steady)
                .iter()
                .filter(|(_, op, _)| *op == "start")
                .count(),
            1
        );
    }

    #[test]
    fn given_no_ipfail_when_a_ping_node_dies_then_only_notifications_follow() {
        let mut p = settled(AutoFailback::On, false);
        let cut = p.now;
        run_uplinks(&mut p, 10.0, [false, true]);
        assert_eq!(ops_since(&p, 0, cut), vec![]);
        assert_eq!(ops_since(&p, 1, cut), vec![]);
        assert_eq!(ping_status(&p, 0), PingStatus::Dead);
        assert!(p.noted(0, "ping node 10.88.0.1 dead").is_some());
        assert!(!p.n[0]
            .log
            .sent
            .iter()
            .any(|(_, m)| matches!(m, Message::NumPingNodes { .. })));
    }

    #[test]
    fn given_legacy_auto_failback_then_ipfail_stays_off_as_heartbeats_exits() {
        let mut p = pair(AutoFailback::Legacy, true);
        p.boot(0);
        p.boot(1);
        run_uplinks(&mut p, 15.0, [true, true]);
        run_uplinks(&mut p, 10.0, [false, true]);
        assert!(p.n[0].c.as_ref().unwrap().status().ipfail.is_none());
        assert_eq!(p.running(0), vec![G1]);
    }
}

fn fencing_pair(only_g1: bool) -> Pair {
    let mut p = Pair::new(AutoFailback::On);
    p.fencing = true;
    p.only_g1 = only_g1;
    p.boot(0);
    p.boot(1);
    p.run_for(15.0);
    p
}

fn fenced_ok_at(p: &Pair, i: usize, node: &str) -> Option<Millis> {
    p.n[i]
        .log
        .sent
        .iter()
        .find(|(_, m)| {
            matches!(m, Message::Stonith { node: n, result: StonithResult::Ok } if n == node)
        })
        .map(|(t, _)| *t)
}

#[test]
fn given_fencing_and_a_partition_while_both_hold_groups_then_only_the_earlier_name_fences() {
    let mut p = fencing_pair(false);
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![G2]));
    p.cut = true;
    p.run_for(20.0);
    assert_eq!(
        p.fence_log.len(),
        1,
        "one fencing request, not a death match: {:?}",
        p.fence_log
    );
    assert_eq!((p.fence_log[0].1, p.fence_log[0].2.as_str()), (0, "n2"));
    assert!(p.n[1].c.is_none(), "the switch cut n2");
    assert_eq!(p.running(0), vec![G1, G2]);
    let fenced = fenced_ok_at(&p, 0, "n2").expect("stonith OK on the wire");
    let started = p.first_op(0, "start", G2).unwrap();
    assert!(
        started >= fenced,
        "G2 started at {started:?}, before n2 was fenced at {fenced:?}"
    );
    let delayed = p.noted(1, "its reset lands first");
    assert!(delayed.is_some(), "n2 announced its delay");
}

#[test]
fn given_fencing_and_a_partition_then_the_node_holding_nothing_fences_the_active_one() {
    let mut p = fencing_pair(true);
    p.cut = true;
    p.run_for(12.0);
    // n1 sees an idle peer: unneeded (heartbeat's rule), no request.
    assert!(
        p.n[0].log.sent.iter().any(|(_, m)| matches!(
            m,
            Message::Stonith { node, result: StonithResult::Unneeded } if node == "n2"
        )) || p.n[0].c.is_none()
    );
    assert_eq!(p.fence_log.len(), 1, "{:?}", p.fence_log);
    assert_eq!((p.fence_log[0].1, p.fence_log[0].2.as_str()), (1, "n1"));
    assert!(p.n[0].c.is_none(), "the switch cut n1");
    assert_eq!(p.running(1), vec![G1]);
    assert!(p.first_op(1, "start", G1).unwrap() >= fenced_ok_at(&p, 1, "n1").unwrap());
}

#[test]
fn given_an_unreachable_switch_then_nothing_starts_retries_are_bounded_and_an_ack_releases() {
    let mut p = fencing_pair(true);
    p.switch_up = false;
    p.crash(0);
    let crashed = p.now;
    p.run_for(40.0);
    assert!(p.running(1).is_empty(), "no takeover unfenced");
    let attempts = p.fence_log.len();
    // deadtime 5 s, then one attempt every 5 s (+0.5 s for the switch's answer)
    assert!(
        (5..=8).contains(&attempts),
        "{attempts} attempts in 40 s after deadtime 5 s"
    );
    let bad = p.n[1]
        .log
        .sent
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::Stonith {
                    result: StonithResult::Bad,
                    ..
                }
            )
        })
        .count();
    assert!(bad >= 5, "each failure said on the wire ({bad})");
    let logged = p.n[1]
        .log
        .notes
        .iter()
        .filter(|(_, n)| n.what.starts_with("STONITH of n1 failed"))
        .count();
    assert!(
        logged >= 3 && logged < attempts,
        "rate-limited: {logged} of {attempts}"
    );
    let st = p.n[1].c.as_ref().unwrap().status();
    let g1 = st.groups.iter().find(|g| g.key == G1).unwrap();
    assert!(
        g1.local_state.contains("waiting for n1 to be fenced"),
        "{}",
        g1.local_state
    );
    assert!(matches!(
        st.nodes.iter().find(|n| n.name == "n1").unwrap().fencing,
        FenceView::Pending { attempts: 5.., .. }
    ));
    // the operator confirms n1 is off
    p.feed(
        1,
        Event::FenceResult {
            node: "n1".into(),
            ok: true,
            detail: "confirmed by the operator".into(),
        },
    );
    p.run_for(1.0);
    assert_eq!(p.running(1), vec![G1]);
    assert!(p.noted(1, "n1 fenced").unwrap() > crashed);
}

#[test]
fn given_a_pending_fence_when_the_peer_is_heard_again_then_it_is_cancelled_and_nothing_moves() {
    let mut p = fencing_pair(true);
    p.switch_up = false;
    p.cut = true;
    p.run_for(10.0);
    assert!(!p.fence_log.is_empty());
    assert!(p.running(1).is_empty());
    p.cut = false;
    p.run_for(10.0);
    assert!(p.noted(1, "fencing of n1 cancelled").is_some());
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![]));
    let after_heal = p.fence_log.len();
    p.run_for(10.0);
    assert_eq!(p.fence_log.len(), after_heal, "no attempt after the heal");
}

#[test]
fn given_fencing_and_a_node_alone_at_initdead_then_it_fences_the_silent_peer_before_starting_anything(
) {
    let mut p = Pair::new(AutoFailback::On);
    p.fencing = true;
    p.boot(0);
    p.run_for(14.0);
    assert_eq!(p.fence_log.len(), 1, "{:?}", p.fence_log);
    let fenced = fenced_ok_at(&p, 0, "n2").expect("fenced");
    assert_eq!(p.running(0), vec![G1, G2]);
    assert!(p.first_op(0, "start", G1).unwrap() >= fenced);
}

fn witness_pair(only_g1: bool) -> Pair {
    let mut p = Pair::new(AutoFailback::On);
    p.witness = Some(SimWitness::new());
    p.only_g1 = only_g1;
    p.boot(0);
    p.boot(1);
    p.run_for(15.0);
    p
}

/// Runs for `secs` in 100 ms steps; panics when a group runs on both nodes.
fn run_single_owner(p: &mut Pair, secs: f64) {
    let steps = (secs * 10.0).round() as usize;
    for _ in 0..steps {
        p.run_for(0.1);
        let both: Vec<&str> = p
            .running(0)
            .into_iter()
            .filter(|g| p.running(1).contains(g))
            .collect();
        assert!(
            both.is_empty(),
            "{both:?} runs on both nodes at {:?}; witness: {:?}",
            p.now,
            p.witness.as_ref().map(|w| &w.log)
        );
    }
}

fn tiebreak_of(p: &Pair, i: usize) -> TiebreakView {
    let st = p.n[i].c.as_ref().unwrap().status();
    st.nodes.iter().find(|n| !n.local).unwrap().tiebreak.clone()
}

#[test]
fn given_a_witness_and_a_partition_while_both_hold_groups_then_exactly_one_side_ends_with_all() {
    let mut p = witness_pair(false);
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![G2]));
    p.cut = true;
    run_single_owner(&mut p, 30.0);
    let (a, b) = (p.running(0), p.running(1));
    assert!(
        (a == vec![G1, G2] && b.is_empty()) || (b == vec![G1, G2] && a.is_empty()),
        "one side all, the other none: n1 {a:?}, n2 {b:?}"
    );
    // The earlier name asks first when both hold: n1 wins, n2 releases G2.
    assert_eq!(a, vec![G1, G2]);
    assert!(p.noted(1, "tie-breaker refused: releasing").is_some());
    assert!(matches!(tiebreak_of(&p, 0), TiebreakView::Granted { .. }));
    assert!(matches!(tiebreak_of(&p, 1), TiebreakView::Refused { .. }));
    let released = p.first_op(1, "stop", G2).unwrap();
    let started = p.first_op(0, "start", G2).unwrap();
    println!(
        "n2 stopped G2 at {:.1} s, n1 started it at {:.1} s",
        released.0 as f64 / 1000.0,
        started.0 as f64 / 1000.0
    );
    assert!(started > released, "G2 started on n1 before n2 stopped it");
}

#[test]
fn given_a_witness_when_the_heartbeat_link_breaks_then_the_serving_node_keeps_it_and_nothing_moves()
{
    let mut p = witness_pair(true);
    let cut = p.now;
    p.cut = true;
    run_single_owner(&mut p, 30.0);
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![]));
    // n2 held nothing: it asked later and was refused; n1 never stopped G1.
    assert!(p.n[0].log.ops.iter().all(|(t, _, _)| *t < cut));
    assert!(p
        .noted(1, "tie-breaker refused the lease against n1")
        .is_some());
    assert!(p.first_op(1, "start", G1).is_none());
}

#[test]
fn given_an_unreachable_witness_and_a_partition_then_nothing_is_taken_over_and_holders_keep() {
    let mut p = witness_pair(false);
    p.witness.as_mut().unwrap().up = false;
    let cut = p.now;
    p.cut = true;
    run_single_owner(&mut p, 30.0);
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![G2]));
    for i in 0..2 {
        assert!(
            p.n[i].log.ops.iter().all(|(t, _, _)| *t < cut),
            "node {i} acted"
        );
        assert!(
            matches!(
                tiebreak_of(&p, i),
                TiebreakView::Unreachable { attempts: 5.., .. }
            ),
            "{:?}",
            tiebreak_of(&p, i)
        );
    }
    let st = p.n[0].c.as_ref().unwrap().status();
    let g2 = st.groups.iter().find(|g| g.key == G2).unwrap();
    assert!(
        g2.local_state
            .contains("waiting for the tie-breaker lease against n2"),
        "{}",
        g2.local_state
    );
    // rate-limited: one line when it became unreachable, not one per second
    let lines = p.n[0]
        .log
        .notes
        .iter()
        .filter(|(_, n)| n.what.starts_with("tie-breaker unreachable"))
        .count();
    assert!(lines <= 2, "{lines} unreachable lines in 30 s");
    // the witness comes back: whoever asks first wins, the other releases
    p.witness.as_mut().unwrap().up = true;
    run_single_owner(&mut p, 15.0);
    let (a, b) = (p.running(0), p.running(1));
    assert!(
        (a == vec![G1, G2] && b.is_empty()) || (b == vec![G1, G2] && a.is_empty()),
        "n1 {a:?}, n2 {b:?}"
    );
}

#[test]
fn given_a_partition_with_a_witness_when_it_heals_then_the_lease_is_released_and_normal_rules_apply(
) {
    let mut p = witness_pair(false);
    p.cut = true;
    run_single_owner(&mut p, 20.0);
    assert_eq!((p.running(0), p.running(1)), (vec![G1, G2], vec![]));
    p.cut = false;
    run_single_owner(&mut p, 20.0);
    // auto_failback on: G2 goes home to n2 by the hand-shake
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![G2]));
    let w = p.witness.as_ref().unwrap();
    assert!(
        w.releases.iter().any(|(_, i)| *i == 0),
        "n1 released: {:?}",
        w.releases
    );
    assert!(w.holder.is_none(), "lease still held: {:?}", w.holder);
    assert!(p
        .noted(0, "tie-breaker lease against n2 given up")
        .is_some());
    assert_eq!(tiebreak_of(&p, 0), TiebreakView::None);
    // no exchange after the heal settled
    let asked = w.log.len();
    p.run_for(10.0);
    assert_eq!(p.witness.as_ref().unwrap().log.len(), asked);
}

#[test]
fn given_a_witness_when_the_active_node_crashes_then_the_peer_takes_over_after_the_lease_and_grace()
{
    let mut p = witness_pair(true);
    p.crash(0);
    let crashed = p.now;
    p.run_for(15.0);
    assert_eq!(p.running(1), vec![G1]);
    let started = p.first_op(1, "start", G1).unwrap().since(crashed);
    println!(
        "G1 started on n2 {:.2} s after n1 crashed",
        started.as_secs_f64()
    );
    // deadtime 5 s (from n1's last status, up to a keepalive before the
    // crash) + ask delay 2 s (n2 held nothing) + grace 4 s
    assert!(
        started >= Duration::from_secs(10)
            && started <= Duration::from_secs(11) + Duration::from_millis(200),
        "{started:?}"
    );
    // the restarted n1 is heard: n2 gives the lease up, G1 goes home
    p.boot(0);
    p.run_for(30.0);
    assert_eq!((p.running(0), p.running(1)), (vec![G1], vec![]));
    assert!(p.witness.as_ref().unwrap().holder.is_none());
}

#[test]
fn given_a_witness_when_a_node_loses_its_lan_and_the_heartbeat_link_then_the_other_wins() {
    let mut p = witness_pair(true);
    p.witness.as_mut().unwrap().reach[0] = false;
    p.cut = true;
    p.run_for(30.0);
    assert_eq!(p.running(1), vec![G1], "n2 won the lease and took G1");
    assert!(matches!(tiebreak_of(&p, 1), TiebreakView::Granted { .. }));
    // n1 cannot tell a dead witness from a cut LAN: it keeps what it holds
    // (docs/tiebreaker.md: a lost LAN port means it serves nobody anyway)
    assert_eq!(p.running(0), vec![G1]);
    assert!(matches!(
        tiebreak_of(&p, 0),
        TiebreakView::Unreachable { .. }
    ));
    // its LAN returns while the heartbeat link stays cut: refused, it releases
    p.witness.as_mut().unwrap().reach[0] = true;
    p.run_for(10.0);
    assert_eq!((p.running(0), p.running(1)), (vec![], vec![G1]));
    assert!(p.noted(0, "tie-breaker refused: releasing").is_some());
}

#[test]
fn given_a_witness_and_fencing_in_a_partition_then_only_the_lease_holder_fences() {
    let mut p = Pair::new(AutoFailback::On);
    p.witness = Some(SimWitness::new());
    p.fencing = true;
    p.boot(0);
    p.boot(1);
    p.run_for(15.0);
    p.cut = true;
    p.run_for(30.0);
    assert_eq!(p.fence_log.len(), 1, "{:?}", p.fence_log);
    assert_eq!((p.fence_log[0].1, p.fence_log[0].2.as_str()), (0, "n2"));
    assert_eq!(p.running(0), vec![G1, G2]);
    let granted = p.noted(0, "tie-breaker lease against n2 granted").unwrap();
    assert!(p.fence_log[0].0 >= granted, "fenced before the lease");
}

#[test]
fn given_a_witness_when_the_peer_shuts_down_cleanly_then_its_groups_move_without_waiting() {
    let mut p = witness_pair(false);
    p.witness.as_mut().unwrap().up = false;
    p.feed(0, Event::Command(Command::Shutdown));
    p.run_for(5.0);
    assert_eq!(p.running(1), vec![G1, G2], "a clean stop needs no witness");
}

#[test]
fn given_a_witness_when_a_node_boots_alone_during_a_partition_then_it_is_refused_and_starts_nothing(
) {
    let mut p = Pair::new(AutoFailback::On);
    p.witness = Some(SimWitness::new());
    p.boot(1);
    p.run_for(25.0);
    assert_eq!(
        p.running(1),
        vec![G1, G2],
        "n2 alone took everything with the lease"
    );
    p.cut = true;
    p.boot(0);
    run_single_owner(&mut p, 25.0);
    assert_eq!((p.running(0), p.running(1)), (vec![], vec![G1, G2]));
    assert!(p.n[0].log.ops.is_empty(), "{:?}", p.n[0].log.ops);
    assert!(matches!(tiebreak_of(&p, 0), TiebreakView::Refused { .. }));
}

#[test]
fn given_a_witness_exchange_never_answered_then_it_counts_as_unreachable_and_asking_goes_on() {
    let mut p = witness_pair(true);
    p.cut = true;
    p.run_for(6.0);
    // the driver loses the exchanges (e.g. a crashed task): never an answer
    p.witness.as_mut().unwrap().mute = true;
    let lost = p.now;
    p.run_for(12.0);
    let first = p
        .noted(0, "no answer from the driver within 10.0 s")
        .expect("counted as unreachable");
    assert!(first > lost);
    // the driver answers again: asking went on (n1's lease lapsed at the
    // witness meanwhile, so whoever asks first wins), one side ends with G1
    p.witness.as_mut().unwrap().mute = false;
    run_single_owner(&mut p, 20.0);
    let w = p.witness.as_ref().unwrap();
    assert!(
        w.log.iter().filter(|(t, _, _)| *t > first).count() >= 2,
        "both asked again: {:?}",
        w.log
    );
    let holders = [p.running(0), p.running(1)];
    assert!(
        holders.contains(&vec![G1]) && holders.contains(&vec![]),
        "{holders:?}"
    );
}

#[test]
fn whatever_the_two_timers_phases_then_each_heartbeat_of_one_node_answers_the_others() {
    // n2 stalls (a busy machine) for a share of the 1 s keepalive: its
    // timer fires late, and from then on its heartbeats would be that far
    // out of step with n1's, each node waking twice per keepalive (its
    // own timer, the peer's heartbeat), unless one answers the other. A
    // window of a quarter keepalive locked the first of these phases only.
    for stall_ms in [150, 400, 600, 850] {
        let mut p = Pair::settled(AutoFailback::On);
        p.frozen[1] = true;
        p.run_for(stall_ms as f64 / 1000.0);
        p.frozen[1] = false;
        p.run_for(3.0);
        let from = p.now;
        p.run_for(20.0);
        let statuses = |i: usize| -> Vec<u64> {
            p.n[i]
                .log
                .sent
                .iter()
                .filter(|(t, m)| *t > from && matches!(m, Message::Status { .. }))
                .map(|(t, _)| t.0)
                .collect()
        };
        let (a, b) = (statuses(0), statuses(1));
        for (node, times) in [("n1", &a), ("n2", &b)] {
            assert!(
                times.len() >= 19,
                "stall {stall_ms} ms: {node} sent {} statuses in 20 s",
                times.len()
            );
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                assert!(
                    (500..=1000).contains(&gap),
                    "stall {stall_ms} ms: {node}: heartbeats {gap} ms apart (keepalive 1000 ms, early by at most 500): {times:?}"
                );
            }
        }
        // Every heartbeat of one node goes out as the other's arrives (the
        // harness delivers in 10 ms steps), one wake-up serving both.
        let answers = |x: &[u64], y: &[u64]| {
            x.iter()
                .filter(|t| y.iter().any(|u| (**t..=**t + 20).contains(u)))
                .count()
        };
        let together = answers(&a, &b).max(answers(&b, &a));
        assert!(
            together + 3 >= a.len().min(b.len()),
            "stall {stall_ms} ms: {together} of {} heartbeats sent together\nn1 {a:?}\nn2 {b:?}",
            a.len()
        );
    }
}

//! One cluster node as a pure state machine: the failover core, the wire
//! session and resource monitoring behind a single `handle(now, Input)`.
//!
//! The driver (the daemon's tokio shell, the simulator) owns every clock,
//! socket and agent. It calls [`Node::handle`] with what happened and the
//! time, carries out the returned [`Output`]s in order, and calls again
//! with [`Input::Tick`] no later than [`Node::next_timeout`]. Everything
//! that decides (who is alive, who runs what, when to probe, when a reload
//! takes effect) is in here where a deterministic simulation reaches it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cluster::{
    self, Cause, Cluster, ClusterParams, ClusterStatus, Command, Event, Level, LinkId, Op,
    StateChange, Which,
};
use crate::monitor::{MonitorSpec, Monitored, RestartBudget, Verdict};
use crate::time::Millis;
use crate::wire::{
    self, typed, DropCounters, Endpoint, EndpointConfig, Identity, Keyring, OutPacket, PeerState,
    PeerView, RotationWindow, SessionStats,
};
use std::sync::Arc;

/// Monitoring per group: every resource, in haresources order, with its
/// probe settings if it is monitored.
pub type MonitorPlan = BTreeMap<String, Vec<Monitored>>;

/// Everything a node is built from.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The failover core's parameters (nodes, timings, groups, generation).
    pub cluster: ClusterParams,
    /// The wire session's settings (keys, flow control, seed).
    pub endpoint: EndpointConfig,
    /// This start's UUID and generation.
    pub identity: Identity,
    /// Names of the media, indexed by [`Input::Packet`]'s `link`.
    pub links: Vec<LinkId>,
    /// Which resources are probed, and how.
    pub monitors: MonitorPlan,
}

/// A new configuration waiting for the agents of its changed groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadPlan {
    /// The core's parameters after the reload.
    pub cluster: ClusterParams,
    /// Monitoring after the reload.
    pub monitors: MonitorPlan,
    /// Groups whose resources changed: their agents are loaded anew.
    pub changed: Vec<String>,
    /// New authkeys, when the reload changed them (a key rotation step):
    /// they sign from then on and open a new key-rotation window.
    pub keyring: Option<Keyring>,
    /// Who asked (`SIGHUP`, `reload command`), for the log.
    pub reason: String,
}

/// What happened, as the driver tells it.
// A reload (the large variant) is rare and short-lived; boxing it would
// only move an allocation onto a cold path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A packet arrived on medium `link`.
    Packet {
        /// Index into [`NodeConfig::links`].
        link: usize,
        /// The datagram or serial frame.
        bytes: Vec<u8>,
    },
    /// Time passed. The wall clock and the load average are stamped into
    /// outgoing messages (`ts`, `ld`); they are inputs so the engine reads
    /// neither clock nor `/proc`.
    Tick {
        /// Seconds since the epoch, now.
        wall_secs: u64,
        /// The `/proc/loadavg` line, when the driver read it.
        loadavg: Option<String>,
    },
    /// An operator's command (control socket, signal).
    Command(Command),
    /// A group operation asked for by [`Output::RunGroup`] finished.
    GroupDone {
        /// Group key.
        group: String,
        /// The operation.
        op: Op,
        /// Whether every resource succeeded.
        ok: bool,
        /// The outcome in words (failing resource and error, or step summary).
        detail: String,
    },
    /// A probe asked for by [`Output::Probe`] finished: whether the resource
    /// runs, or why the probe itself failed.
    ProbeDone {
        /// Group key.
        group: String,
        /// Resource index in the group.
        resource: usize,
        /// The verdict.
        result: Result<bool, String>,
    },
    /// A local restart asked for by [`Output::Restart`] finished.
    RestartDone {
        /// Group key.
        group: String,
        /// Resource index in the group.
        resource: usize,
        /// Success, or why it failed.
        result: Result<(), String>,
    },
    /// An ICMP echo reply from a ping node member (an address as written in
    /// ha.cf) arrived.
    PingReply {
        /// The address that answered.
        member: String,
    },
    /// A tracked interface's carrier changed (rtnetlink link event).
    Carrier {
        /// Interface name.
        iface: String,
        /// Carrier present (`IFF_LOWER_UP`).
        up: bool,
    },
    /// A fencing attempt asked for by [`Output::Fence`] ended, or the
    /// operator confirmed the node is off: `Ok` with how (device, time),
    /// `Err` with why not.
    FenceDone {
        /// The node.
        node: String,
        /// The outcome in words.
        result: Result<String, String>,
    },
    /// The witness answered an [`Output::AskTiebreak`], or did not
    /// within the driver's time budget (`Unreachable`).
    TiebreakDone {
        /// The peer named in the request.
        peer: String,
        /// The outcome.
        verdict: cluster::TiebreakVerdict,
        /// The witness's figures, or why no answer came.
        detail: String,
    },
    /// A parsed, checked new configuration: its changed groups' agents are
    /// loaded ([`Output::LoadAgents`]) before anything changes.
    Reload(ReloadPlan),
    /// The agents asked for by [`Output::LoadAgents`] are ready (the driver
    /// installed them), or could not be loaded (the running set stays).
    AgentsLoaded {
        /// The `reload` number of the matching [`Output::LoadAgents`].
        reload: u64,
        /// Success, or the loading error.
        result: Result<(), String>,
    },
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Put this packet on every medium.
    Transmit(OutPacket),
    /// Start or stop a group; answer with [`Input::GroupDone`].
    RunGroup {
        /// Group key.
        group: String,
        /// The operation.
        op: Op,
    },
    /// Announce a running group's addresses again (no restart).
    Announce(String),
    /// Probe one resource; answer with [`Input::ProbeDone`].
    Probe {
        /// Group key.
        group: String,
        /// Resource index in the group.
        resource: usize,
    },
    /// Stop and start one resource here; answer with [`Input::RestartDone`].
    Restart {
        /// Group key.
        group: String,
        /// Resource index in the group.
        resource: usize,
    },
    /// Load (off the heartbeat path) the agents of these groups as the new
    /// configuration defines them; answer with [`Input::AgentsLoaded`].
    LoadAgents {
        /// Reload number, echoed in the answer.
        reload: u64,
        /// Groups to load.
        groups: Vec<String>,
    },
    /// A reload finished (`Ok`: in effect) or was refused; for the operator
    /// who asked.
    Reloaded(Result<String, String>),
    /// A state change for the log (and the operator who caused it).
    Log(StateChange),
    /// Fence (reset) this dead node; answer with [`Input::FenceDone`].
    Fence(String),
    /// Ask the witness for the tie-break lease against `peer` (lasting
    /// `lease`); answer with [`Input::TiebreakDone`] within a few seconds.
    AskTiebreak {
        /// The peer considered dead.
        peer: String,
        /// The lease time to ask for.
        lease: Duration,
    },
    /// Tell the witness the lease against `peer` is given up (best effort).
    ReleaseTiebreak {
        /// The peer heard again.
        peer: String,
    },
    /// Graceful shutdown complete: the driver may exit.
    Exit,
}

/// Monitoring state of one resource that runs here.
#[derive(Clone, Debug)]
struct Watch {
    name: String,
    spec: MonitorSpec,
    budget: RestartBudget,
    next_due: Millis,
    busy: bool,
}

/// One cluster node. See the module docs.
#[derive(Debug)]
pub struct Node {
    core: Cluster,
    endpoint: Endpoint,
    links: Vec<LinkId>,
    monitors: MonitorPlan,
    watches: BTreeMap<String, Vec<Option<Watch>>>,
    pending_reload: Option<(u64, ReloadPlan)>,
    reloads: u64,
    /// Per peer: (generation, seq) of the newest full resource report
    /// applied. A retransmission that fills an old gap (after a partition
    /// heals) arrives after newer messages; an older full report is stale.
    last_report: BTreeMap<String, (u64, u64)>,
    /// Per peer: (generation, seq) of the message that brought it back
    /// from the dead. Anything older that arrives later (a retransmission
    /// filling the partition's gap) was said while we counted it dead: its
    /// reports and commands are history, superseded by what followed.
    returned_at: BTreeMap<String, (u64, u64)>,
    /// A graceful shutdown was started because our seq space ran out.
    seq_exhaustion_handled: bool,
    out: Vec<Output>,
}

impl Node {
    /// A node that starts at `now` (nothing heard, nothing held).
    pub fn new(cfg: NodeConfig, now: Millis) -> Node {
        let mut endpoint = Endpoint::new(cfg.endpoint, cfg.identity);
        endpoint.open_key_rotation_window(now);
        Node {
            core: Cluster::new(cfg.cluster, now),
            endpoint,
            links: cfg.links,
            monitors: cfg.monitors,
            watches: BTreeMap::new(),
            pending_reload: None,
            reloads: 0,
            last_report: BTreeMap::new(),
            returned_at: BTreeMap::new(),
            seq_exhaustion_handled: false,
            out: Vec::new(),
        }
    }

    /// Restore each peer's last accepted (generation, seq) from before this
    /// start (persisted by the host), before the first packet: a message
    /// captured before our restart stays a replay.
    pub fn restore_peer_state(&mut self, states: &[PeerState]) {
        self.endpoint.restore_peers(states);
    }

    /// Each heard peer's last accepted (generation, seq), for the host to
    /// persist.
    pub fn peer_state(&self) -> Vec<PeerState> {
        self.endpoint.peer_state()
    }

    /// The open key-rotation window at `now`, if any.
    pub fn key_rotation(&self, now: Millis) -> Option<RotationWindow> {
        self.endpoint.key_rotation(now).cloned()
    }

    /// Feed one input at `now` (never earlier than the previous call) and
    /// return what to do, in order.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Output> {
        match input {
            Input::Packet { link, bytes } => self.on_packet(now, link, &bytes),
            Input::Tick { wall_secs, loadavg } => {
                self.endpoint.set_environment(now, wall_secs, loadavg);
                let core = &self.core;
                let events = self
                    .endpoint
                    .handle_timeout(now, &|n: &str| core.peer_alive(n));
                self.on_wire_events(now, events);
                self.run_due_monitors(now);
                self.feed(now, Event::Tick);
            }
            Input::Command(c) => self.feed(now, Event::Command(c)),
            Input::PingReply { member } => self.feed(now, Event::PingReply { member }),
            Input::Carrier { iface, up } => self.feed(now, Event::Carrier { iface, up }),
            Input::FenceDone { node, result } => {
                let (ok, detail) = match result {
                    Ok(d) => (true, d),
                    Err(e) => (false, e),
                };
                self.feed(now, Event::FenceResult { node, ok, detail })
            }
            Input::TiebreakDone {
                peer,
                verdict,
                detail,
            } => self.feed(
                now,
                Event::TiebreakResult {
                    peer,
                    verdict,
                    detail,
                },
            ),
            Input::GroupDone {
                group,
                op,
                ok,
                detail,
            } => {
                if ok && op == Op::Start {
                    self.watch(now, &group);
                }
                self.feed(
                    now,
                    Event::ResourceResult {
                        group,
                        op,
                        ok,
                        detail,
                    },
                );
            }
            Input::ProbeDone {
                group,
                resource,
                result,
            } => self.on_probe(now, &group, resource, result),
            Input::RestartDone {
                group,
                resource,
                result,
            } => self.on_restart(now, &group, resource, result),
            Input::Reload(plan) => self.on_reload(plan),
            Input::AgentsLoaded { reload, result } => self.on_agents_loaded(now, reload, result),
        }
        self.check_seq_space(now);
        self.flush();
        std::mem::take(&mut self.out)
    }

    /// The latest time at which the driver must deliver [`Input::Tick`]
    /// (None once the node has exited).
    pub fn next_timeout(&self, now: Millis) -> Option<Millis> {
        let core = self.core.next_deadline()?;
        let core_ref = &self.core;
        let session = self
            .endpoint
            .next_timeout(now, &|n: &str| core_ref.peer_alive(n));
        let monitors = self
            .watches
            .values()
            .flatten()
            .flatten()
            .filter(|w| !w.busy)
            .map(|w| w.next_due)
            .min();
        [Some(core), session, monitors].into_iter().flatten().min()
    }

    /// The failover core's snapshot (membership, groups, last transition).
    pub fn cluster_status(&self) -> ClusterStatus {
        self.core.status()
    }

    /// The session's per-peer sequence state.
    pub fn session_peers(&self) -> Vec<PeerView> {
        self.endpoint.peers()
    }

    /// Reliable-delivery counters.
    pub fn session_stats(&self) -> SessionStats {
        self.endpoint.stats()
    }

    /// Packet drop counters (shareable with a status reporter).
    pub fn drop_counters(&self) -> Arc<DropCounters> {
        self.endpoint.counters()
    }

    /// Whether heartbeat's flow control is still on.
    pub fn flow_control(&self) -> bool {
        self.endpoint.flow_control()
    }

    /// This start's generation.
    pub fn generation(&self) -> u64 {
        self.endpoint.generation()
    }

    /// Whether a reload is waiting for its agents.
    pub fn reload_pending(&self) -> bool {
        self.pending_reload.is_some()
    }

    // ------------------------------------------------------------ wire

    fn on_packet(&mut self, now: Millis, link: usize, bytes: &[u8]) {
        match self.endpoint.receive(bytes, link, now) {
            Ok(events) => self.on_wire_events(now, events),
            Err(reason) => tracing::trace!(reason = reason.name(), "packet dropped"),
        }
    }

    /// Peers accept a seq reset only with a higher generation, which only a
    /// new start brings: when our seq space nears its end, leave gracefully
    /// (the peer takes over at `shutdone`) while seqs remain to say so.
    fn check_seq_space(&mut self, now: Millis) {
        if self.seq_exhaustion_handled || !self.endpoint.seq_exhausted() {
            return;
        }
        self.seq_exhaustion_handled = true;
        self.log(
            Level::Crit,
            Cause::Protocol,
            "sequence numbers nearly used up: shutting down gracefully",
            "peers only accept a new sequence from a new generation; restart wasmbeat",
        );
        self.feed(now, Event::Command(Command::Shutdown));
    }

    fn link(&self, index: usize) -> LinkId {
        self.links
            .get(index)
            .cloned()
            .unwrap_or_else(|| LinkId(format!("medium {index}")))
    }

    fn on_wire_events(&mut self, now: Millis, events: Vec<wire::Event>) {
        for e in events {
            match e {
                wire::Event::Message {
                    header,
                    message,
                    link,
                } => {
                    let Some(msg) = typed::from_wire(&message) else {
                        tracing::debug!(t = %header.msg_type, src = %header.src, "message type not used in haresources mode; ignored");
                        continue;
                    };
                    if let (Some(seq), Some(back)) = (header.seq, self.returned_at.get(&header.src))
                    {
                        if (header.generation, seq) < *back {
                            tracing::debug!(src = %header.src, seq, t = %header.msg_type, "message from before the peer came back ignored");
                            continue;
                        }
                    }
                    if let (cluster::Message::Resource { full: true, .. }, Some(seq)) =
                        (&msg, header.seq)
                    {
                        let this = (header.generation, seq);
                        match self.last_report.get(&header.src) {
                            Some(newest) if *newest > this => {
                                tracing::debug!(src = %header.src, seq, "stale resource report (retransmitted after a newer one) ignored");
                                continue;
                            }
                            _ => {
                                self.last_report.insert(header.src.clone(), this);
                            }
                        }
                    }
                    let link = self.link(link);
                    let was_alive = self.core.peer_alive(&header.src);
                    let from = header.src.clone();
                    self.feed(
                        now,
                        Event::Heard {
                            from: header.src,
                            link,
                            generation: header.generation,
                            msg,
                        },
                    );
                    if let Some(seq) = header.seq {
                        if !was_alive && self.core.peer_alive(&from) {
                            self.returned_at.insert(from, (header.generation, seq));
                        }
                    }
                }
                wire::Event::Duplicate { node, link } => {
                    let link = self.link(link);
                    self.feed(now, Event::HeardDuplicate { from: node, link });
                }
                // The core notices the restart itself from the generation of
                // the status (and says what it means for the groups).
                wire::Event::PeerRestarted { .. } => {}
                wire::Event::Lost { node, seq } => self.log(
                    Level::Warn,
                    Cause::Protocol,
                    format!("message {seq} from {node} irretrievably lost"),
                    "not retransmitted within the give-up time",
                ),
                wire::Event::FlowControlDisabled { node } => self.log(
                    Level::Warn,
                    Cause::Protocol,
                    "flow control disabled cluster-wide",
                    format!("{node} does not speak heartbeat's flow control (no `protocol` field)"),
                ),
                wire::Event::NodeList { from, nodes, .. } => {
                    tracing::debug!("{from} lists nodes {}", nodes.join(" "))
                }
            }
        }
    }

    // ------------------------------------------------------------ core

    fn feed(&mut self, now: Millis, event: Event) {
        for action in self.core.handle(now, event) {
            match action {
                cluster::Action::Send(msg) => {
                    self.endpoint.send(typed::to_wire(&msg), now);
                }
                cluster::Action::StartGroup(group) => self.run_group(group, Op::Start),
                cluster::Action::StopGroup(group) => self.run_group(group, Op::Stop),
                cluster::Action::Notify(change) => self.out.push(Output::Log(change)),
                cluster::Action::Announce(group) => self.out.push(Output::Announce(group)),
                cluster::Action::Fence(node) => self.out.push(Output::Fence(node)),
                cluster::Action::AskTiebreak { peer, lease } => {
                    self.out.push(Output::AskTiebreak { peer, lease })
                }
                cluster::Action::ReleaseTiebreak { peer } => {
                    self.out.push(Output::ReleaseTiebreak { peer })
                }
                cluster::Action::Exit => self.out.push(Output::Exit),
            }
        }
    }

    fn run_group(&mut self, group: String, op: Op) {
        // Monitoring covers groups that run here; any operation pauses it.
        self.watches.remove(&group);
        self.out.push(Output::RunGroup { group, op });
    }

    fn flush(&mut self) {
        while let Some(p) = self.endpoint.poll_transmit() {
            self.out.push(Output::Transmit(p));
        }
    }

    fn log(&mut self, level: Level, cause: Cause, what: impl Into<String>, why: impl Into<String>) {
        self.out.push(Output::Log(StateChange {
            level,
            cause,
            what: what.into(),
            why: why.into(),
        }));
    }

    // ------------------------------------------------------------ monitoring

    /// Start monitoring a group that now runs here (fresh restart budgets).
    fn watch(&mut self, now: Millis, group: &str) {
        let Some(specs) = self.monitors.get(group) else {
            return;
        };
        let watches = specs
            .iter()
            .map(|m| {
                m.spec.map(|spec| Watch {
                    name: m.resource.clone(),
                    spec,
                    budget: RestartBudget::new(spec.max_restarts),
                    next_due: now.plus(spec.interval),
                    busy: false,
                })
            })
            .collect();
        self.watches.insert(group.to_string(), watches);
    }

    fn run_due_monitors(&mut self, now: Millis) {
        for (group, watches) in self.watches.iter_mut() {
            for (resource, w) in watches.iter_mut().enumerate() {
                if let Some(w) = w {
                    if !w.busy && w.next_due <= now {
                        w.busy = true;
                        self.out.push(Output::Probe {
                            group: group.clone(),
                            resource,
                        });
                    }
                }
            }
        }
    }

    fn watch_mut(&mut self, group: &str, resource: usize) -> Option<&mut Watch> {
        self.watches
            .get_mut(group)
            .and_then(|ws| ws.get_mut(resource))
            .and_then(Option::as_mut)
    }

    fn on_probe(
        &mut self,
        now: Millis,
        group: &str,
        resource: usize,
        result: Result<bool, String>,
    ) {
        let Some(w) = self.watch_mut(group, resource) else {
            // The group was stopped or restarted meanwhile: stale result.
            return;
        };
        w.busy = false;
        w.next_due = now.plus(w.spec.interval);
        let name = w.name.clone();
        let running = match result {
            Ok(running) => running,
            Err(e) => {
                self.log(
                    Level::Warn,
                    Cause::Monitor,
                    format!("monitor of {name} (group {group}) failed"),
                    e,
                );
                false
            }
        };
        self.account(now, group, resource, &name, running);
    }

    fn on_restart(
        &mut self,
        now: Millis,
        group: &str,
        resource: usize,
        result: Result<(), String>,
    ) {
        let Some(w) = self.watch_mut(group, resource) else {
            return;
        };
        w.busy = false;
        w.next_due = now.plus(w.spec.interval);
        let name = w.name.clone();
        match result {
            Ok(()) => self.log(
                Level::Info,
                Cause::Monitor,
                format!("{name} (group {group}) restarted locally after a failed monitor"),
                "its next probe decides whether it stays",
            ),
            Err(e) => {
                self.log(
                    Level::Crit,
                    Cause::Monitor,
                    format!("local restart of {name} (group {group}) failed"),
                    e,
                );
                // A failed restart counts as a failed probe.
                self.account(now, group, resource, &name, false);
            }
        }
    }

    /// One probe verdict against the resource's restart budget.
    fn account(&mut self, now: Millis, group: &str, resource: usize, name: &str, running: bool) {
        let Some(w) = self.watch_mut(group, resource) else {
            return;
        };
        match w.budget.on_probe(running) {
            Verdict::Healthy => {}
            Verdict::Restart { attempt, max } => {
                w.busy = true;
                self.log(
                    Level::Warn,
                    Cause::Monitor,
                    format!("{name} (group {group}) is not running: restarting it here"),
                    format!("monitor probe failed; restart {attempt} of {max}"),
                );
                self.out.push(Output::Restart {
                    group: group.to_string(),
                    resource,
                });
            }
            Verdict::GiveUp { restarts } => self.give_up(now, group, name, restarts),
        }
    }

    /// The restart budget is spent: hand this group's set to the peer (the
    /// standby hand-shake moves a whole set, as `hb_standby` does).
    fn give_up(&mut self, now: Millis, group: &str, name: &str, restarts: u32) {
        self.watches.remove(group);
        let which = if self.core.prefers_here(group) {
            Which::Local
        } else {
            Which::Foreign
        };
        self.log(
            Level::Crit, Cause::MonitorGiveUp,
            format!(
                "{name} (group {group}) keeps failing after {restarts} local restart(s): handing {} groups to the peer",
                which.as_str()
            ),
            format!("standby {}", which.as_str()),
        );
        self.feed(now, Event::Command(Command::Standby(which)));
    }

    // ------------------------------------------------------------ reload

    fn on_reload(&mut self, plan: ReloadPlan) {
        if self.pending_reload.is_some() {
            self.out.push(Output::Reloaded(Err(format!(
                "{}: a reload is already loading agents; try again when it finished",
                plan.reason
            ))));
            return;
        }
        self.reloads += 1;
        let reload = self.reloads;
        self.out.push(Output::LoadAgents {
            reload,
            groups: plan.changed.clone(),
        });
        self.pending_reload = Some((reload, plan));
    }

    fn on_agents_loaded(&mut self, now: Millis, reload: u64, result: Result<(), String>) {
        let Some((pending, plan)) = self.pending_reload.take() else {
            return;
        };
        if pending != reload {
            self.pending_reload = Some((pending, plan));
            return;
        }
        if let Err(e) = result {
            self.log(
                Level::Crit,
                Cause::Reload,
                "reload failed, running configuration kept",
                format!("{}: {e}", plan.reason),
            );
            self.out.push(Output::Reloaded(Err(format!(
                "reload failed, running configuration kept: {e}"
            ))));
            return;
        }
        // Groups with new agents restart their monitoring when next started;
        // unchanged groups keep theirs.
        for g in &plan.changed {
            self.watches.remove(g);
        }
        self.monitors = plan.monitors;
        let mark = self.out.len();
        if let Some(keyring) = plan.keyring {
            let active = keyring.active().index;
            self.endpoint.set_keyring(keyring, now);
            let why = match self.endpoint.key_rotation(now) {
                Some(w) => format!(
                    "key(s) {:?} also verify for the key-rotation window",
                    w.slots
                ),
                None => "no other key verifies".to_string(),
            };
            self.log(
                Level::Info,
                Cause::Reload,
                format!("authkeys reloaded: signing with key {active}"),
                why,
            );
        }
        self.feed(now, Event::Reload(plan.cluster));
        let notes: Vec<String> = self.out[mark..]
            .iter()
            .filter_map(|o| match o {
                Output::Log(c) => Some(format!("{}: {}", c.what, c.why)),
                _ => None,
            })
            .collect();
        self.out.push(Output::Reloaded(Ok(format!(
            "{}: configuration reloaded ({} group(s) redefined){}",
            plan.reason,
            plan.changed.len(),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        ))));
    }
}

/// How long the driver may sleep at most without any deadline (it looks
/// again anyway, so a clock step cannot stall the node for long).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

//! The failover core: membership and resource ownership as a pure state machine (no IO, no clock).
//!
//! [`Cluster`] follows heartbeat 3.0.6's haresources ("R1") behaviour (reference spec §6):
//! heartbeats every `keepalive`, death after the peer's advertised `dt`, `initdead` grace at
//! start, restart detection by generation, the nice_failback resource protocol
//! (`starting`, `resource`, the three-step `ask_resources` standby hand-shake, `shutdone`) and
//! the legacy `ip-request` protocol. Time is a value ([`Millis`]) handed in with every event;
//! the core never reads a clock, never does IO and never spawns anything, so every rule can
//! be exercised by a deterministic simulator (`host/tests/simulation.rs`).
//!
//! The daemon feeds [`Event`]s into [`Cluster::handle`] and carries out the returned
//! [`Action`]s; it calls `handle(now, Event::Tick)` no later than [`Cluster::next_deadline`].
//! State diagrams and the list of deliberate differences from heartbeat are in
//! `docs/cluster-states.md`.

mod core;
#[cfg(test)]
mod tests;

pub use self::core::Cluster;

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::time::Millis;

/// An opaque name for one heartbeat medium, e.g. `"bcast eth0"` or `"ucast eth1 10.0.0.2"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkId(pub String);

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// ha.cf `auto_failback`: which resource protocol runs (the config parser produces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFailback {
    /// nice_failback protocol; resources move back to their preferred node.
    On,
    /// nice_failback protocol; resources stay where they are.
    Off,
    /// The old ip-request protocol (heartbeat's default when the directive is absent).
    Legacy,
}

/// One haresources line: the group key (its first resource) and the node it prefers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// The group key as heartbeat uses it in messages and status (e.g. `IPaddr::10.0.0.10/24`).
    pub key: String,
    /// The (lowercase) node named at the start of the haresources line.
    pub preferred: String,
}

/// Everything the core needs from the configuration (the daemon maps ha.cf/haresources into it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterParams {
    /// This node's name (lowercase, as in ha.cf `node`).
    pub local: String,
    /// All configured nodes including the local one, in ha.cf order.
    pub nodes: Vec<String>,
    /// Interval between own status messages.
    pub keepalive: Duration,
    /// Local dead time; advertised to peers as `dt`, used for a peer until it advertises its own.
    pub deadtime: Duration,
    /// Gap between two status messages of a peer after which a late-heartbeat warning is logged.
    pub warntime: Duration,
    /// Dead time applied to every peer until communication is up.
    pub initdead: Duration,
    /// Resource protocol and failback policy.
    pub auto_failback: AutoFailback,
    /// Resource groups in haresources order.
    pub groups: Vec<GroupSpec>,
    /// This run's heartbeat generation (`hg`), persisted and incremented by the daemon at start;
    /// a reload keeps the generation of the running instance.
    pub generation: u64,
    /// Ping nodes and ipfail (none by default); boxed so every input that
    /// carries parameters (a reload) stays small.
    pub ping: Box<PingParams>,
    /// STONITH before takeover (ha.cf `stonith`/`stonith_host`); off by default.
    pub fencing: FenceParams,
    /// wasmbeat-only ha.cf `tiebreaker`: a witness decides which side of a
    /// partition runs the groups ([`Action::AskTiebreak`]); off by default.
    pub tiebreaker: bool,
}

/// Whether and how a dead peer is fenced before its groups start here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FenceParams {
    /// A device can fence the peers: a dead peer that may hold groups is
    /// fenced ([`Action::Fence`]) and nothing it may run starts here until
    /// that succeeds (heartbeat §6.5; without a device heartbeat takes over
    /// unprotected and says `n_stnth`).
    pub configured: bool,
    /// When both nodes may hold groups as the link breaks, the node whose
    /// name sorts later waits this long before its first attempt, so that
    /// in a partition one node fences and the other is already off when
    /// its own attempt would start (no STONITH death match).
    pub delay: Duration,
}

/// ha.cf `ping`/`ping6`/`ping_group`, `deadping` and ipfail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingParams {
    /// The ping nodes, in ha.cf order.
    pub nodes: Vec<crate::ping::PingNodeSpec>,
    /// Silence after which a ping node is `dead` (heartbeat: `deadping`,
    /// default deadtime); `initdead` applies until communication is up.
    pub deadping: Duration,
    /// ipfail runs (ha.cf `respawn <user> <path>/ipfail`): the node that
    /// reaches fewer ping nodes gives its groups to the peer.
    pub ipfail: bool,
    /// wasmbeat-only ha.cf `track_link <iface>`: interfaces whose carrier
    /// loss makes ipfail give the groups away at once (see `crate::link`).
    pub track_links: Vec<String>,
}

/// Node states as heartbeat names them (`st=` field, `cl_status nodestatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Never heard from / just started (`init`).
    Init,
    /// Running, communication not up yet (`up`).
    Up,
    /// Communication up, resource management running (`active`).
    Active,
    /// Declared dead or left (`dead`).
    Dead,
}

impl NodeStatus {
    /// Every state, in heartbeat's order of a node's life.
    pub const ALL: [NodeStatus; 4] = [
        NodeStatus::Init,
        NodeStatus::Up,
        NodeStatus::Active,
        NodeStatus::Dead,
    ];

    /// heartbeat's wire spelling of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Init => "init",
            NodeStatus::Up => "up",
            NodeStatus::Active => "active",
            NodeStatus::Dead => "dead",
        }
    }
}

/// heartbeat's `rsc_hold` value: a *set* of groups seen from the sender's point of view.
/// `local` = the haresources lines naming the sender, `foreign` = all other lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RscHold {
    /// `none`
    None,
    /// `local`
    Local,
    /// `foreign`
    Foreign,
    /// `all`
    All,
}

impl RscHold {
    /// Builds the set from its two halves.
    pub fn from_bits(local: bool, foreign: bool) -> RscHold {
        match (local, foreign) {
            (false, false) => RscHold::None,
            (true, false) => RscHold::Local,
            (false, true) => RscHold::Foreign,
            (true, true) => RscHold::All,
        }
    }
    /// Whether the set contains the sender's own (local) groups.
    pub fn has_local(self) -> bool {
        matches!(self, RscHold::Local | RscHold::All)
    }
    /// Whether the set contains the other nodes' (foreign) groups.
    pub fn has_foreign(self) -> bool {
        matches!(self, RscHold::Foreign | RscHold::All)
    }
    /// The same groups described from the other node's viewpoint (2-node meaning).
    pub fn mirrored(self) -> RscHold {
        RscHold::from_bits(self.has_foreign(), self.has_local())
    }
    /// heartbeat's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RscHold::None => "none",
            RscHold::Local => "local",
            RscHold::Foreign => "foreign",
            RscHold::All => "all",
        }
    }
}

/// `info=` of an `ask_resources` message: the three steps of the standby hand-shake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StandbyStep {
    /// `me`: the sender wants to give the set away.
    Me,
    /// `other`: the receiver agrees to take it.
    Other,
    /// `done`: the sender finished releasing (from the giver) or acquiring (from the taker).
    Done,
}

/// Which groups a standby/takeover command moves, as `hb_standby`/`hb_takeover` take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// every group
    All,
    /// the groups whose haresources line names the commanding node
    Local,
    /// the groups of the other node(s)
    Foreign,
    /// alias of `foreign` for standby; for takeover: take back my own groups
    Failback,
}

/// A scope word that is not `all`, `local`, `foreign` or `failback`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected all, local, foreign or failback")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for Which {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Which, UnknownScope> {
        match s {
            "all" => Ok(Which::All),
            "local" => Ok(Which::Local),
            "foreign" => Ok(Which::Foreign),
            "failback" => Ok(Which::Failback),
            other => Err(UnknownScope(other.to_string())),
        }
    }
}

impl Which {
    /// The set this command names, from the commanding node's viewpoint.
    pub fn as_hold(self) -> RscHold {
        match self {
            Which::All => RscHold::All,
            Which::Local => RscHold::Local,
            Which::Foreign | Which::Failback => RscHold::Foreign,
        }
    }
    /// heartbeat's wire spelling (`hb_takeover rsc_hold=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Which::All => "all",
            Which::Local => "local",
            Which::Foreign => "foreign",
            Which::Failback => "failback",
        }
    }
}

/// `result=` of a `stonith` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StonithResult {
    /// `OK`: the node was reset.
    Ok,
    /// `badhost`: the device cannot reset that host.
    BadHost,
    /// `bad`: the reset failed.
    Bad,
    /// `n_stnth`: no STONITH device configured; takeover proceeds unprotected.
    NotConfigured,
    /// `unneeded`: the dead node had announced that it held nothing.
    Unneeded,
}

impl StonithResult {
    /// heartbeat's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StonithResult::Ok => "OK",
            StonithResult::BadHost => "badhost",
            StonithResult::Bad => "bad",
            StonithResult::NotConfigured => "n_stnth",
            StonithResult::Unneeded => "unneeded",
        }
    }
}

/// A cluster message in typed form. The wire module maps each variant to heartbeat's `t=`
/// type and fields (listed per variant) and adds the standard fields (`src`, `srcuuid`,
/// `seq`, `hg`, `ts`, `ld`, `ttl`, `auth`, and `protocol` in status if it does flow control).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// `t=status st=<status> dt=<deadtime in ms, lowercase hex>`; sent every keepalive.
    Status {
        /// `st`: init / up / active.
        status: NodeStatus,
        /// `dt`: the dead time peers must apply to the sender.
        deadtime: Duration,
    },
    /// `t=starting`: "my resource manager just started; tell me what you hold".
    Starting,
    /// `t=resource rsc_hold=<hold> [rtype=full] [isstable=1|0] [info=<info>] [wb_running=<keys>]`.
    Resource {
        /// `rsc_hold` from the sender's viewpoint.
        hold: RscHold,
        /// `rtype=full` present: replaces the receiver's view (absent: OR-update, as mach_down).
        full: bool,
        /// `isstable` (absent in script-sent reports).
        stable: Option<bool>,
        /// `info`: `shutdown`, `standby`, `mach_down`, `req_our_resources()`.
        info: Option<String>,
        /// Extension field `wb_running`: space-separated keys of the groups the sender has
        /// confirmed running. heartbeat ignores unknown fields; wasmbeat peers use it to
        /// settle duplicates after a split brain per group instead of per set.
        running: Option<Vec<String>>,
    },
    /// `t=ask_resources rsc_hold=<set> info=me|other|done` (set from the giver's viewpoint).
    AskResources {
        /// `rsc_hold`
        hold: RscHold,
        /// `info`
        step: StandbyStep,
    },
    /// `t=hb_takeover rsc_hold=all|local|foreign|failback`: "give me these groups".
    HbTakeover {
        /// `rsc_hold` from the sender's (taker's) viewpoint.
        which: Which,
    },
    /// `t=shutdone st=dead`: last message of a graceful stop; everything was released.
    Shutdone,
    /// `t=stonith node=<node> result=<result>`.
    Stonith {
        /// `node`
        node: String,
        /// `result`
        result: StonithResult,
    },
    /// `t=ip-request ipaddr=<key>` (legacy): "please release this group".
    IpRequest {
        /// `ipaddr`: the group key.
        key: String,
    },
    /// `t=ip-request-resp dest=<node> ipaddr=<key> weown=yes|no ok=OK` (legacy): go ahead.
    IpRequestResp {
        /// `dest`
        dest: String,
        /// `ipaddr`
        key: String,
        /// `weown`: whether the sender held (and released) the group.
        weown: bool,
        /// Extension field `wb_desthg`: the generation of the requester the
        /// answer is for. A node that restarted meanwhile must not act on an
        /// answer (retransmitted late) to its previous incarnation's request.
        /// heartbeat does not send it; absent means "accept".
        dest_generation: Option<u64>,
    },
    /// ipfail's `t=num_ping_nodes num_ping=<N> dest=<peer>` (plus `from_id`/`to_id=ipfail`,
    /// which route it to the peer's ipfail client in heartbeat).
    NumPingNodes {
        /// `dest`
        dest: String,
        /// `num_ping` (decimal)
        count: usize,
    },
    /// ipfail's `t=you_are_dead dest=<peer>`: "you reach fewer ping nodes: give up".
    YouAreDead {
        /// `dest`
        dest: String,
    },
    /// ipfail's `t=abort_giveup dest=<peer>`: "the counts are equal: do not give up".
    AbortGiveup {
        /// `dest`
        dest: String,
    },
    /// `t=hbapi-clstat st=join from_id=ipfail`: heartbeat sends it when its ipfail signs on;
    /// the peer's ipfail answers with its count.
    IpfailJoin,
}

/// An administrator's request (control socket / CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `hb_standby`: give these groups (my viewpoint) to the peer.
    Standby(Which),
    /// `hb_takeover`: ask the peer to give me these groups (my viewpoint).
    Takeover(Which),
    /// `heartbeat -k`: release everything, send `shutdone`, exit.
    Shutdown,
}

/// The two resource operations on a group (the core asks, the runner reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// start the group left to right
    Start,
    /// stop the group right to left
    Stop,
}

impl Op {
    /// `starting` / `stopping`, for log lines.
    pub fn verb_ing(self) -> &'static str {
        match self {
            Op::Start => "starting",
            Op::Stop => "stopping",
        }
    }
    /// `started` / `stopped`, for log lines.
    pub fn verb_ed(self) -> &'static str {
        match self {
            Op::Start => "started",
            Op::Stop => "stopped",
        }
    }
}

/// Input to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An authenticated message from another node, delivered once per `seq` (the wire layer
    /// drops duplicates as heartbeat does and reports them as [`Event::HeardDuplicate`]).
    Heard {
        /// `src`
        from: String,
        /// The medium it arrived on.
        link: LinkId,
        /// `hg` of the message (every heartbeat message carries it).
        generation: u64,
        /// The typed message.
        msg: Message,
    },
    /// Another copy of an already delivered message (same `seq`, e.g. on a second medium),
    /// dropped by the wire layer's duplicate check: it only proves that the link works.
    HeardDuplicate {
        /// `src`
        from: String,
        /// The medium it arrived on.
        link: LinkId,
    },
    /// Time passed; due at [`Cluster::next_deadline`] at the latest.
    Tick,
    /// An administrator's command.
    Command(Command),
    /// A group operation requested by [`Action::StartGroup`]/[`Action::StopGroup`] finished.
    ResourceResult {
        /// Group key.
        group: String,
        /// Which operation.
        op: Op,
        /// Whether every resource of the group succeeded.
        ok: bool,
        /// Human-readable outcome (e.g. the failing resource and its error).
        detail: String,
    },
    /// New configuration (SIGHUP / `wasmbeat reload`).
    Reload(ClusterParams),
    /// A local medium came up.
    LinkUp(LinkId),
    /// A local medium failed (send errors, interface down).
    LinkDown(LinkId),
    /// An ICMP echo reply from ping node member `member` (an address as
    /// written in ha.cf) arrived.
    PingReply {
        /// The address that answered.
        member: String,
    },
    /// The kernel reported a tracked interface's carrier (rtnetlink
    /// `IFF_LOWER_UP`): lost (`up == false`) or present.
    Carrier {
        /// Interface name as in `track_link`.
        iface: String,
        /// Carrier present.
        up: bool,
    },
    /// A fencing attempt asked for by [`Action::Fence`] ended, or the
    /// operator confirmed the node is off (`wasmbeat fence-ack`).
    FenceResult {
        /// The node that was to be fenced.
        node: String,
        /// Whether it is off now.
        ok: bool,
        /// Which device and how long it took, or why it failed.
        detail: String,
    },
    /// The witness answered an [`Action::AskTiebreak`] about `peer`, or
    /// could not be reached within the driver's time budget.
    TiebreakResult {
        /// The peer named in the request.
        peer: String,
        /// Granted, refused (the other side holds the lease) or unreachable.
        verdict: TiebreakVerdict,
        /// The witness's figures (holder, remaining time) or why no answer came.
        detail: String,
    },
}

/// The outcome of one exchange with the witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TiebreakVerdict {
    /// The lease is ours for the lease time from when we asked.
    Granted,
    /// The peer holds the lease: we are the losing side of a partition.
    Refused,
    /// No authenticated answer within the time budget.
    Unreachable,
}

/// Severity of a [`StateChange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// routine transition
    Info,
    /// something an operator should look at
    Warn,
    /// service is at risk (split brain, failed start, ...)
    Crit,
}

/// A human-readable record of a transition: what happened and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// Severity.
    pub level: Level,
    /// What kind of change, for metrics and notify hooks.
    pub cause: Cause,
    /// What happened, e.g. `node2 declared dead`.
    pub what: String,
    /// Why, with the figures that led to it.
    pub why: String,
}

/// The kind of a [`StateChange`]: the one vocabulary metrics
/// (`wasmbeat_transitions_total{cause}`) and notify hooks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A peer was heard (first time or after being declared dead).
    PeerUp,
    /// A peer restarted without being declared dead.
    PeerBack,
    /// A peer was declared dead.
    PeerDead,
    /// A peer shut down cleanly (shutdone).
    PeerShutdown,
    /// A medium to a peer, or a local one, went up or dead.
    Link,
    /// A partition healed and both nodes may have run the same groups.
    SplitBrain,
    /// A split brain's duplicate group released or confirmed.
    SplitBrainResolved,
    /// Taking over a dead or restarting peer's groups.
    Failover,
    /// Acquiring this node's own groups (initial, legacy).
    Acquire,
    /// Releasing a group to its preferred node (legacy ip-request).
    Release,
    /// Every node heard from or declared dead.
    CommunicationUp,
    /// A group started here.
    GroupStarted,
    /// A group stopped here.
    GroupStopped,
    /// A group failed to start or stop here.
    GroupFailed,
    /// The standby / takeover hand-shake.
    Standby,
    /// Graceful shutdown.
    Shutdown,
    /// A configuration reload.
    Reload,
    /// A failed monitor probe and the local restart it caused.
    Monitor,
    /// Monitors kept failing: groups handed to the peer.
    MonitorGiveUp,
    /// STONITH reports and fencing decisions.
    Fencing,
    /// Wire-level oddities: unknown senders, stale or lost messages.
    Protocol,
    /// A ping node answered again or was declared dead.
    PingNode,
    /// ipfail compared ping node counts and decided.
    Ipfail,
    /// The tie-breaker (witness) granted or refused the lease, or is out of reach.
    Tiebreak,
}

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 24] = [
        Cause::PeerUp,
        Cause::PeerBack,
        Cause::PeerDead,
        Cause::PeerShutdown,
        Cause::Link,
        Cause::SplitBrain,
        Cause::SplitBrainResolved,
        Cause::Failover,
        Cause::Acquire,
        Cause::Release,
        Cause::CommunicationUp,
        Cause::GroupStarted,
        Cause::GroupStopped,
        Cause::GroupFailed,
        Cause::Standby,
        Cause::Shutdown,
        Cause::Reload,
        Cause::Monitor,
        Cause::MonitorGiveUp,
        Cause::Fencing,
        Cause::Protocol,
        Cause::PingNode,
        Cause::Ipfail,
        Cause::Tiebreak,
    ];

    /// The label value (snake case, as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::PeerUp => "peer_up",
            Cause::PeerBack => "peer_back",
            Cause::PeerDead => "peer_dead",
            Cause::PeerShutdown => "peer_shutdown",
            Cause::Link => "link",
            Cause::SplitBrain => "split_brain",
            Cause::SplitBrainResolved => "split_brain_resolved",
            Cause::Failover => "failover",
            Cause::Acquire => "acquire",
            Cause::Release => "release",
            Cause::CommunicationUp => "communication_up",
            Cause::GroupStarted => "group_started",
            Cause::GroupStopped => "group_stopped",
            Cause::GroupFailed => "group_failed",
            Cause::Standby => "standby",
            Cause::Shutdown => "shutdown",
            Cause::Reload => "reload",
            Cause::Monitor => "monitor",
            Cause::MonitorGiveUp => "monitor_give_up",
            Cause::Fencing => "fencing",
            Cause::Protocol => "protocol",
            Cause::PingNode => "ping_node",
            Cause::Ipfail => "ipfail",
            Cause::Tiebreak => "tiebreak",
        }
    }
}

/// Output of the state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Broadcast this message on every medium.
    Send(Message),
    /// Start this group (left to right); answer with [`Event::ResourceResult`].
    StartGroup(String),
    /// Stop this group (right to left); answer with [`Event::ResourceResult`].
    StopGroup(String),
    /// Log / expose this transition.
    Notify(StateChange),
    /// Announce this running group's addresses again (gratuitous ARP / unsolicited NA):
    /// after a split brain the peer's copy taught neighbours the peer's MAC. Not a
    /// restart: no resource is stopped or started.
    Announce(String),
    /// Reset this dead node with the configured fencing devices; answer
    /// with [`Event::FenceResult`]. Its groups stay stopped here until then.
    Fence(String),
    /// Ask the witness for the tie-break lease against `peer` (acquire or
    /// renew, lasting `lease` unless renewed); answer with
    /// [`Event::TiebreakResult`] within a few seconds, `Unreachable` when
    /// no authenticated answer came.
    AskTiebreak {
        /// The peer we consider dead.
        peer: String,
        /// How long the witness keeps the lease ours without a renewal.
        lease: Duration,
    },
    /// `peer` is heard again: tell the witness we give the lease up (best
    /// effort, no answer expected).
    ReleaseTiebreak {
        /// The peer.
        peer: String,
    },
    /// Graceful shutdown finished: the daemon may exit.
    Exit,
}

/// Per-medium view of one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The medium.
    pub link: LinkId,
    /// When a packet from this peer last arrived on it.
    pub last_heard: Millis,
    /// Whether a packet arrived within the peer's dead time.
    pub up: bool,
}

/// One node in [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Whether this is the local node.
    pub local: bool,
    /// init / up / active / dead.
    pub status: NodeStatus,
    /// Last known generation (`hg`).
    pub generation: Option<u64>,
    /// When its last status message arrived.
    pub last_status: Option<Millis>,
    /// The dead time applied to it, in ms.
    pub deadtime_ms: u64,
    /// What it last reported holding (nice_failback).
    pub holds: RscHold,
    /// Whether it last reported being stable.
    pub stable: bool,
    /// Per-medium state.
    pub links: Vec<LinkStatus>,
    /// Where fencing of this node stands (always `none` for the local node).
    pub fencing: FenceView,
    /// The tie-break lease against this peer (always `none` for the local
    /// node and without a `tiebreaker`).
    #[serde(default)]
    pub tiebreak: TiebreakView,
}

/// The tie-break lease against one peer, in [`NodeView`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TiebreakView {
    /// Not wanted: the peer is alive (or no tie-breaker is configured).
    #[default]
    None,
    /// Asked, no answer yet.
    Asking {
        /// When the peer was found dead.
        since: Millis,
    },
    /// Ours: takeover allowed.
    Granted {
        /// When the peer was found dead.
        since: Millis,
        /// The lease runs out then unless renewed.
        until: Millis,
    },
    /// The peer holds it: we run nothing it may run.
    Refused {
        /// When the peer was found dead.
        since: Millis,
        /// The witness's words.
        detail: String,
    },
    /// The witness does not answer: we keep what we hold, take nothing over.
    Unreachable {
        /// When the peer was found dead.
        since: Millis,
        /// Why the last exchange failed.
        detail: String,
        /// Failed exchanges in a row.
        attempts: u32,
    },
}

/// Fencing state of a node in [`NodeView`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum FenceView {
    /// Nothing to do: alive, left cleanly, or dead holding nothing.
    #[default]
    None,
    /// Must be fenced before its groups start here.
    Pending {
        /// When fencing became necessary.
        since: Millis,
        /// Attempts made so far.
        attempts: u32,
        /// Why the last attempt failed.
        last_error: Option<String>,
    },
    /// Fenced (by a device or confirmed by the operator).
    Fenced {
        /// When.
        at: Millis,
        /// By what.
        by: String,
    },
}

/// Where a group is on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupRun {
    /// Not running here.
    Stopped,
    /// A start is under way.
    Starting,
    /// Running here.
    Running,
    /// A stop is under way.
    Stopping,
}

impl GroupRun {
    /// The word `status` and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRun::Stopped => "stopped",
            GroupRun::Starting => "starting",
            GroupRun::Running => "running",
            GroupRun::Stopping => "stopping",
        }
    }
}

/// One group in [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    /// Group key.
    pub key: String,
    /// Preferred node.
    pub preferred: String,
    /// Where it is here, for programs (metrics, systemd's status line).
    pub run: GroupRun,
    /// Local state for people: `run` (+ `, failed` when a start failed).
    pub local_state: String,
    /// Whether the local node intends to run it.
    pub wanted_here: bool,
    /// Who runs it as far as this node knows.
    pub owner: Option<String>,
}

/// The last transition, for `wasmbeat status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When.
    pub at: Millis,
    /// What and why.
    pub change: StateChange,
}

/// A read-only snapshot for status displays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Local node name.
    pub local: String,
    /// Snapshot time.
    pub now: Millis,
    /// Whether communication is up (all nodes heard from or declared dead).
    pub comm_up: bool,
    /// Resource protocol state, heartbeat's `rscstatus` vocabulary plus the phase.
    pub resource_state: String,
    /// What this node holds (`cl_status rscstatus`), or `transition`.
    pub rscstatus: String,
    /// Standby hand-shake in progress, if any.
    pub standby: Option<String>,
    /// Local medium state as reported by LinkUp/LinkDown.
    pub local_links: Vec<(LinkId, bool)>,
    /// All nodes, local first.
    pub nodes: Vec<NodeView>,
    /// All groups in haresources order.
    pub groups: Vec<GroupView>,
    /// The most recent notable transition.
    pub last_transition: Option<Transition>,
    /// Ping nodes (pseudo-nodes of type ping), in ha.cf order.
    #[serde(default)]
    pub ping_nodes: Vec<crate::ping::PingView>,
    /// ipfail's count as sent to the peer, when ipfail runs.
    #[serde(default)]
    pub ipfail: Option<IpfailView>,
}

/// ipfail in [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfailView {
    /// Ping nodes we count.
    pub mine: usize,
    /// The peer's last reported count.
    pub peer: Option<usize>,
    /// A pending give-away: (set, due).
    pub pending: Option<(RscHold, Millis)>,
}

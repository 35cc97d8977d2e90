//! The state machine behind [`Cluster`]. See `docs/cluster-states.md` for the diagrams.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

mod fencing;
mod legacy;
mod membership;
mod ping;
mod resources;
mod snapshot;
mod standby;
mod tiebreak;
mod timers;

/// heartbeat's RQSTDELAY: when both nodes start together and neither becomes stable, each
/// takes its own groups after this long.
const RQSTDELAY: Duration = Duration::from_secs(10);
/// heartbeat's STANDBY_INIT_TO_MS: how long a standby request waits for `info=other`.
const STANDBY_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// heartbeat's HB_STANDBY_RSC_TO_MS: how long the rest of a standby hand-shake may take.
const STANDBY_RSC_TIMEOUT: Duration = Duration::from_secs(3600);
/// heartbeat advertises `dt` = deadtime + 2 s during its first 5 s.
const START_DT_BONUS: Duration = Duration::from_secs(2);
const START_DT_PERIOD: Duration = Duration::from_secs(5);
/// `starting` is repeated while unanswered: a peer drops messages of a generation it has not
/// yet seen a status for, so a lost first status would otherwise stall start-up.
const STARTING_RESEND: Duration = Duration::from_secs(2);
/// After a failed start the group waits this long before it is tried here again (heartbeat
/// pushes it to the peer after 30 s and never retries; we push at once and retry later).
const FAILED_RETRY: Duration = Duration::from_secs(30);
/// A group is pushed to the peer after a failed start at most once per this period, so two
/// nodes that both fail to start it do not ping-pong it.
const PUSH_MEMORY: Duration = Duration::from_secs(300);
/// A standby/takeover request waits this long for both nodes to be stable before it is dropped.
const PENDING_WINDOW: Duration = Duration::from_secs(30);
/// Legacy mode: an unanswered `ip-request` is repeated this often.
const LEGACY_REREQUEST: Duration = Duration::from_secs(10);
/// A failing stop is retried this often (heartbeat: HA_STOPRETRYMAX=10 times, 1 s apart).
const STOP_RETRY: Duration = Duration::from_secs(1);
const STOP_RETRY_MAX: u32 = 10;

/// Where a group is here (the public [`GroupRun`], under its short name).
type Run = GroupRun;

#[derive(Clone, Debug)]
struct Group {
    key: String,
    preferred: String,
    /// The desired state; the reconciler turns it into start/stop actions, one at a time.
    want: bool,
    run: Run,
    /// Set after a failed start: not started again here before this time.
    retry_at: Option<Millis>,
    failed: Option<String>,
    pushed_at: Option<Millis>,
    stop_failures: u32,
    stop_retry_at: Option<Millis>,
    /// Graceful shutdown stops every group, also ones never started here (as heartbeat).
    stop_anyway: bool,
    /// Removed by a reload; dropped once stopped.
    removed: bool,
    /// Taken over from a dead/left/restarted node: auto_failback gives it back home.
    taken_over: bool,
    /// The peer ran a copy too (split brain, a takeover while we served): once only we
    /// run it, neighbours that learnt the peer's MAC must be told again.
    reannounce: bool,
}

#[derive(Clone, Debug)]
struct Peer {
    name: String,
    status: NodeStatus,
    heard_any: bool,
    generation: Option<u64>,
    last_status: Option<Millis>,
    dt: Option<Duration>,
    links: BTreeMap<LinkId, (Millis, bool)>,
    /// Sent `shutdone` in its current generation: late statuses of it are stale, not a heal.
    left: bool,
    dead_since: Option<Millis>,
    hold: RscHold,
    running: Option<BTreeSet<String>>,
    stable: bool,
    /// Has sent a resource report since it (re)appeared.
    reported: bool,
    /// STONITH of this peer.
    fence: fencing::FenceState,
    /// The tie-break lease against this peer.
    tiebreak: tiebreak::LeaseState,
}

/// Index of a peer in `Cluster::peers` (stable until a reload changes the node list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PeerId(usize);

/// Index of a group in `Cluster::groups` (stable until a reload drops a stopped group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupId(usize);

impl std::ops::Index<PeerId> for Vec<Peer> {
    type Output = Peer;
    fn index(&self, id: PeerId) -> &Peer {
        &self[id.0]
    }
}

impl std::ops::IndexMut<PeerId> for Vec<Peer> {
    fn index_mut(&mut self, id: PeerId) -> &mut Peer {
        &mut self[id.0]
    }
}

impl std::ops::Index<GroupId> for Vec<Group> {
    type Output = Group;
    fn index(&self, id: GroupId) -> &Group {
        &self[id.0]
    }
}

impl std::ops::IndexMut<GroupId> for Vec<Group> {
    fn index_mut(&mut self, id: GroupId) -> &mut Group {
        &mut self[id.0]
    }
}

/// The resource protocol's phase (heartbeat's `rsc_state` plus start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// before communication is up
    Init,
    /// sent `starting`, waiting for a report
    Starting,
    /// both sent `starting`
    BothStarting,
    /// got an unstable report; own groups are taken at the deadline
    RscRcvd(Millis),
    /// resources managed normally
    Stable,
    /// graceful shutdown: releasing everything
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GivePhase {
    AwaitOther,
    Releasing,
    AwaitDone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TakePhase {
    AwaitDone,
    Acquiring,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Standby {
    Not,
    /// We give `set` (our viewpoint) to `peer`.
    Giving {
        set: RscHold,
        peer: String,
        phase: GivePhase,
        deadline: Millis,
    },
    /// We take `set` (the giver's viewpoint) from `from`.
    Taking {
        set: RscHold,
        from: String,
        phase: TakePhase,
        deadline: Millis,
    },
}

#[derive(Clone, Debug)]
struct Pending {
    set: RscHold,
    reason: String,
    expires: Millis,
}

/// A wake-up later than its deadline by more than this means the node
/// itself stalled, not that the peers went quiet.
fn stall_lateness(p: &ClusterParams) -> Duration {
    p.keepalive.max(Duration::from_millis(250))
}

/// After a stall, how long the peers get to be heard before anyone is
/// declared dead: their queued packets are read at once, and a live peer
/// sends a fresh heartbeat within a keepalive.
fn stall_grace(p: &ClusterParams) -> Duration {
    p.keepalive * 2 + Duration::from_millis(100)
}

/// The failover core of one node. Pure: every input carries the time, every output is an
/// [`Action`] for the caller to perform.
#[derive(Clone, Debug)]
pub struct Cluster {
    p: ClusterParams,
    now: Millis,
    started_at: Millis,
    local_status: NodeStatus,
    comm_up: bool,
    next_status_at: Millis,
    peers: Vec<Peer>,
    local_links: BTreeMap<LinkId, bool>,
    groups: Vec<Group>,
    phase: Phase,
    standby: Standby,
    pending: Option<Pending>,
    starting_sent_at: Option<Millis>,
    force_report: bool,
    report_info: Option<String>,
    last_report: Option<(RscHold, Vec<String>, bool)>,
    shutting_down: bool,
    exited: bool,
    legacy_req: BTreeMap<String, Millis>,
    /// Groups a peer's report showed running here too, already answered with our report.
    dup_answered: BTreeSet<String>,
    /// Legacy: groups released for a requester, answered once stopped:
    /// key -> (requester, its generation when it asked).
    legacy_resp: BTreeMap<String, (String, Option<u64>)>,
    last_transition: Option<Transition>,
    /// No peer or link is declared dead before this: this node was itself
    /// stalled (see [`Cluster::handle`]) and the peers' packets may be
    /// queued unread.
    stall_grace_until: Millis,
    /// Ping node liveness (ha.cf ping/ping6/ping_group).
    ping: crate::ping::PingTracker,
    /// ipfail, when configured.
    ipfail: Option<crate::ipfail::Ipfail>,
    /// Tracked links (`track_link`): a lost carrier zeroes our ipfail count.
    links: crate::link::LinkTracker,
    /// The peer's last `num_ping_nodes` count.
    peer_ping_count: Option<usize>,
    /// The deadline given to the caller after the last event (the timer
    /// table's earliest entry then): computed once per event, read by
    /// [`Cluster::next_deadline`] and by the stall check of the next event.
    deadline: Option<Millis>,
    out: Vec<Action>,
}

fn new_peer(name: &str) -> Peer {
    Peer {
        name: name.to_string(),
        status: NodeStatus::Init,
        heard_any: false,
        generation: None,
        last_status: None,
        dt: None,
        links: BTreeMap::new(),
        left: false,
        dead_since: None,
        hold: RscHold::None,
        running: None,
        stable: false,
        reported: false,
        fence: fencing::FenceState::None,
        tiebreak: Default::default(),
    }
}

fn new_group(g: &GroupSpec) -> Group {
    Group {
        key: g.key.clone(),
        preferred: g.preferred.clone(),
        want: false,
        run: Run::Stopped,
        retry_at: None,
        failed: None,
        pushed_at: None,
        stop_failures: 0,
        stop_retry_at: None,
        stop_anyway: false,
        removed: false,
        taken_over: false,
        reannounce: false,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "(none)".to_string()
    } else {
        keys.join(", ")
    }
}

impl Cluster {
    /// A fresh node that has just started at `now`: nothing heard, nothing held.
    pub fn new(params: ClusterParams, now: Millis) -> Cluster {
        let peers = params
            .nodes
            .iter()
            .filter(|n| **n != params.local)
            .map(|n| new_peer(n))
            .collect();
        let groups = params.groups.iter().map(new_group).collect();
        let (ping, ipfail) = ping::build(&params, now);
        let links = crate::link::LinkTracker::new(&params.ping.track_links, params.ping.deadping);
        let mut c = Cluster {
            p: params,
            now,
            started_at: now,
            local_status: NodeStatus::Init,
            comm_up: false,
            next_status_at: now,
            peers,
            local_links: BTreeMap::new(),
            groups,
            phase: Phase::Init,
            standby: Standby::Not,
            pending: None,
            starting_sent_at: None,
            force_report: false,
            report_info: None,
            last_report: None,
            shutting_down: false,
            exited: false,
            legacy_req: BTreeMap::new(),
            dup_answered: BTreeSet::new(),
            legacy_resp: BTreeMap::new(),
            last_transition: None,
            stall_grace_until: now,
            ping,
            ipfail,
            links,
            peer_ping_count: None,
            deadline: None,
            out: Vec::new(),
        };
        c.deadline = c.earliest_timer();
        c
    }

    /// Feeds one event at time `now` (never earlier than the previous call) and returns
    /// what to do, in order.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Action> {
        // Called long after the deadline we gave, the caller was not running
        // (SIGSTOP, a paused VM, a starved machine): the silence it measured
        // is its own, and the peers' heartbeats may be queued unread. A
        // node coming back from a freeze that declared its peer dead at
        // once took over, announced, then lost the split brain, leaving
        // clients on its MAC (found by `xtask chaos`).
        if let Some(promised) = self.deadline {
            if now > promised.plus(stall_lateness(&self.p)) {
                self.stall_grace_until = now.plus(stall_grace(&self.p));
            }
        }
        if now > self.now {
            self.now = now;
        }
        if self.exited {
            return Vec::new();
        }
        match event {
            Event::Heard {
                from,
                link,
                generation,
                msg,
            } => self.on_heard(&from, link, generation, msg),
            Event::HeardDuplicate { from, link } => self.on_link_packet(&from, link),
            Event::Tick => {}
            Event::Command(c) => self.on_command(c),
            Event::ResourceResult {
                group,
                op,
                ok,
                detail,
            } => self.on_result(&group, op, ok, &detail),
            Event::Reload(params) => self.on_reload(params),
            Event::LinkUp(l) => self.on_local_link(l, true),
            Event::LinkDown(l) => self.on_local_link(l, false),
            Event::PingReply { member } => self.on_ping_reply(&member),
            Event::Carrier { iface, up } => self.on_carrier(&iface, up),
            Event::FenceResult { node, ok, detail } => self.on_fence_result(&node, ok, &detail),
            Event::TiebreakResult {
                peer,
                verdict,
                detail,
            } => self.on_tiebreak_result(&peer, verdict, &detail),
        }
        if !self.exited {
            self.timers();
            self.ping_timers();
            self.fence_timers();
            self.progress();
            self.tiebreak_timers();
        }
        if !self.exited {
            self.status_if_due();
        }
        self.deadline = self.earliest_timer();
        std::mem::take(&mut self.out)
    }

    /// Whether `name` is a peer heard from and not declared dead: the one
    /// liveness verdict, which the wire session asks for its ACK and
    /// retransmission bookkeeping.
    pub fn peer_alive(&self, name: &str) -> bool {
        self.peer_index(name)
            .is_some_and(|pi| self.peers[pi].heard_any && self.not_declared_dead(pi))
    }

    /// Whether this node is the preferred node of `group` (its haresources line names it).
    pub fn prefers_here(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|g| g.key == group && g.preferred == self.p.local)
    }

    // ---------------------------------------------------------------- helpers

    fn uses_nice_failback(&self) -> bool {
        self.p.auto_failback != AutoFailback::Legacy
    }

    fn notify(
        &mut self,
        level: Level,
        cause: Cause,
        what: impl Into<String>,
        why: impl Into<String>,
    ) {
        let change = StateChange {
            level,
            cause,
            what: what.into(),
            why: why.into(),
        };
        self.last_transition = Some(Transition {
            at: self.now,
            change: change.clone(),
        });
        self.out.push(Action::Notify(change));
    }

    fn send(&mut self, m: Message) {
        self.out.push(Action::Send(m));
    }

    /// When peer `p` (or one of its links last heard at `last`) is declared
    /// dead: after its dead time, and not during a stall grace.
    fn death_at(&self, p: &Peer, last: Millis) -> Millis {
        last.plus(self.dead_limit(p)).max(self.stall_grace_until)
    }

    fn dead_limit(&self, p: &Peer) -> Duration {
        if !self.comm_up {
            self.p.initdead
        } else {
            p.dt.unwrap_or(self.p.deadtime)
        }
    }

    fn advertised_dt(&self) -> Duration {
        if self.now.since(self.started_at) < START_DT_PERIOD {
            self.p.deadtime + START_DT_BONUS
        } else {
            self.p.deadtime
        }
    }

    fn peer_ids(&self) -> impl Iterator<Item = PeerId> {
        (0..self.peers.len()).map(PeerId)
    }

    fn group_ids(&self) -> impl Iterator<Item = GroupId> {
        (0..self.groups.len()).map(GroupId)
    }

    fn peer_index(&self, name: &str) -> Option<PeerId> {
        self.peers.iter().position(|p| p.name == name).map(PeerId)
    }

    fn not_declared_dead(&self, pi: PeerId) -> bool {
        self.peers[pi].status != NodeStatus::Dead
    }

    fn any_live_peer(&self) -> bool {
        self.peer_ids().any(|i| self.not_declared_dead(i))
    }

    /// Whether group `gi` belongs to `set` as seen by node `owner`.
    fn in_hold_set(&self, gi: GroupId, owner: &str, set: RscHold) -> bool {
        if self.groups[gi].preferred == owner {
            set.has_local()
        } else {
            set.has_foreign()
        }
    }

    fn groups_of(&self, owner: &str, set: RscHold) -> Vec<GroupId> {
        self.group_ids()
            .filter(|&gi| !self.groups[gi].removed && self.in_hold_set(gi, owner, set))
            .collect()
    }

    /// Whether a peer claims group `gi` (wanted or running), per its last report.
    fn peer_claims(&self, p: &Peer, gi: GroupId) -> bool {
        if let Some(r) = &p.running {
            if r.contains(&self.groups[gi].key) {
                return true;
            }
        }
        self.in_hold_set(gi, &p.name, p.hold)
    }

    /// Whether a peer has confirmed group `gi` running (precise when it sends `wb_running`).
    fn peer_runs(&self, p: &Peer, gi: GroupId) -> bool {
        match &p.running {
            Some(r) => r.contains(&self.groups[gi].key),
            None => self.in_hold_set(gi, &p.name, p.hold),
        }
    }

    /// A live peer reports running the group: starting it here would duplicate it, so the
    /// start waits for the peer's release (its report, `done`, `shutdone` or death).
    fn peer_still_runs(&self, gi: GroupId) -> bool {
        self.peers
            .iter()
            .any(|p| p.status != NodeStatus::Dead && p.reported && self.peer_runs(p, gi))
    }

    fn held_by_live_peer(&self, gi: GroupId, except: Option<PeerId>) -> bool {
        self.peer_ids().any(|i| {
            Some(i) != except && self.not_declared_dead(i) && self.peer_claims(&self.peers[i], gi)
        })
    }

    fn held_here(&self, gi: GroupId) -> bool {
        let g = &self.groups[gi];
        g.want || g.run != Run::Stopped
    }

    fn my_hold(&self) -> RscHold {
        let mut local = false;
        let mut foreign = false;
        for gi in self.group_ids() {
            if self.held_here(gi) {
                if self.groups[gi].preferred == self.p.local {
                    local = true;
                } else {
                    foreign = true;
                }
            }
        }
        RscHold::from_bits(local, foreign)
    }

    /// The set heartbeat would announce in `rsc_hold`: [`Self::my_hold`],
    /// except that an *empty* local half (no group prefers this node)
    /// counts as held once our initial acquisition is done, unless a live
    /// peer announces holding it. heartbeat keeps `i_hold_resources` as
    /// halves of responsibility, not as groups: a node without groups of
    /// its own reports `local` after start-up and `all` after taking the
    /// peer's groups over. Reporting `foreign` there made a heartbeat 3.0.6
    /// peer log "ERROR: No one owns foreign resources!" on every report
    /// (mixed ipfail lab, `ipfail_interop_lab.rs`).
    fn wire_hold(&self) -> RscHold {
        let mine = self.my_hold();
        let local_empty = self.groups.iter().all(|g| g.preferred != self.p.local);
        if !local_empty || self.phase != Phase::Stable {
            return mine;
        }
        let peer_holds_it = self
            .peer_ids()
            .any(|i| self.not_declared_dead(i) && self.peers[i].hold.has_foreign());
        RscHold::from_bits(!peer_holds_it, mine.has_foreign())
    }

    fn running_keys(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.run == Run::Running)
            .map(|g| g.key.clone())
            .collect()
    }

    fn group_settled(&self, gi: GroupId) -> bool {
        let g = &self.groups[gi];
        match g.run {
            Run::Running => g.want,
            Run::Stopped => {
                !g.want || g.retry_at.is_some_and(|t| t > self.now) || self.peer_still_runs(gi)
            }
            Run::Starting | Run::Stopping => false,
        }
    }

    fn all_settled(&self) -> bool {
        self.group_ids().all(|gi| self.group_settled(gi))
    }

    fn locally_stable(&self) -> bool {
        self.phase == Phase::Stable
            && self.standby == Standby::Not
            && !self.shutting_down
            && self.all_settled()
    }

    fn want_groups(&mut self, gis: &[GroupId]) -> Vec<String> {
        let mut keys = Vec::new();
        for &gi in gis {
            let g = &mut self.groups[gi];
            if !g.want && !g.removed {
                g.want = true;
                keys.push(g.key.clone());
            }
        }
        keys
    }
}

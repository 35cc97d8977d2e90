//! The state machine behind [`Cluster`]. See `docs/cluster-states.md` for the diagrams.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Stopped,
    Starting,
    Running,
    Stopping,
}

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
    /// We keep this group after a split brain while the peer still runs its copy: once the
    /// peer has released it, neighbours that learnt the peer's MAC must be told again.
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RState {
    /// before communication is up
    Init,
    /// sent `starting`, waiting for a report
    Starting,
    /// both sent `starting`
    BothStarting,
    /// got an unstable report; own groups are taken at the deadline
    RscRcvd(Millis),
    Stable,
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
    rstate: RState,
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
    legacy_resp: BTreeMap<String, String>,
    last_transition: Option<Transition>,
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
        Cluster {
            p: params,
            now,
            started_at: now,
            local_status: NodeStatus::Init,
            comm_up: false,
            next_status_at: now,
            peers,
            local_links: BTreeMap::new(),
            groups,
            rstate: RState::Init,
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
            out: Vec::new(),
        }
    }

    /// Feeds one event at time `now` (never earlier than the previous call) and returns
    /// what to do, in order.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Action> {
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
        }
        if !self.exited {
            self.timers();
            self.progress();
        }
        if !self.exited {
            self.status_if_due();
        }
        std::mem::take(&mut self.out)
    }

    /// The latest time at which the caller must deliver [`Event::Tick`] (none after exit).
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.exited {
            return None;
        }
        let mut d = vec![self.next_status_at];
        for p in &self.peers {
            if p.status != NodeStatus::Dead {
                let limit = self.dead_limit(p);
                d.push(p.last_status.unwrap_or(self.started_at).plus(limit));
                for (last, up) in p.links.values() {
                    if *up {
                        d.push(last.plus(limit));
                    }
                }
            }
        }
        if let RState::RscRcvd(t) = self.rstate {
            d.push(t);
        }
        match &self.standby {
            Standby::Giving { deadline, .. } | Standby::Taking { deadline, .. } => {
                d.push(*deadline)
            }
            Standby::Not => {}
        }
        if let Some(p) = &self.pending {
            d.push(p.expires);
        }
        if let Some(t) = self.starting_sent_at {
            if matches!(self.rstate, RState::Starting | RState::BothStarting) {
                d.push(t.plus(STARTING_RESEND));
            }
        }
        for t in self.legacy_req.values() {
            d.push(t.plus(LEGACY_REREQUEST));
        }
        for g in &self.groups {
            if g.want && g.run == Run::Stopped {
                if let Some(t) = g.retry_at.filter(|t| *t > self.now) {
                    d.push(t);
                }
            }
            if g.run == Run::Running && !g.want {
                if let Some(t) = g.stop_retry_at {
                    d.push(t);
                }
            }
        }
        d.into_iter().min()
    }

    /// Whether `name` is a peer heard from and not declared dead: the one
    /// liveness verdict, which the wire session asks for its ACK and
    /// retransmission bookkeeping.
    pub fn peer_alive(&self, name: &str) -> bool {
        self.peer_index(name)
            .is_some_and(|pi| self.peers[pi].heard_any && self.alive(pi))
    }

    /// Whether this node is the preferred node of `group` (its haresources line names it).
    pub fn prefers_here(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|g| g.key == group && g.preferred == self.p.local)
    }

    /// A read-only snapshot for `wasmbeat status` / `cl_status`.
    pub fn status(&self) -> ClusterStatus {
        let mut nodes = vec![NodeView {
            name: self.p.local.clone(),
            local: true,
            status: self.local_status,
            generation: Some(self.p.generation),
            last_status: None,
            deadtime_ms: self.p.deadtime.as_millis() as u64,
            holds: self.my_hold(),
            stable: self.locally_stable(),
            links: Vec::new(),
        }];
        for p in &self.peers {
            nodes.push(NodeView {
                name: p.name.clone(),
                local: false,
                status: p.status,
                generation: p.generation,
                last_status: p.last_status,
                deadtime_ms: self.dead_limit(p).as_millis() as u64,
                holds: p.hold,
                stable: p.stable,
                links: p
                    .links
                    .iter()
                    .map(|(l, (t, up))| LinkStatus {
                        link: l.clone(),
                        last_heard: *t,
                        up: *up,
                    })
                    .collect(),
            });
        }
        let groups = (0..self.groups.len())
            .map(|gi| {
                let g = &self.groups[gi];
                let mut st = match g.run {
                    Run::Stopped => "stopped",
                    Run::Starting => "starting",
                    Run::Running => "running",
                    Run::Stopping => "stopping",
                }
                .to_string();
                if g.failed.is_some() {
                    st.push_str(", failed");
                }
                let owner = if g.run != Run::Stopped || g.want {
                    Some(self.p.local.clone())
                } else {
                    self.peers
                        .iter()
                        .find(|p| p.status != NodeStatus::Dead && self.peer_covers(p, gi))
                        .map(|p| p.name.clone())
                };
                GroupView {
                    key: g.key.clone(),
                    preferred: g.preferred.clone(),
                    local_state: st,
                    wanted_here: g.want,
                    owner,
                }
            })
            .collect();
        let rscstatus = if self.locally_stable() {
            self.my_hold().as_str().to_string()
        } else {
            "transition".to_string()
        };
        ClusterStatus {
            local: self.p.local.clone(),
            now: self.now,
            comm_up: self.comm_up,
            resource_state: format!("{:?}", self.rstate),
            rscstatus,
            standby: match &self.standby {
                Standby::Not => None,
                s => Some(format!("{s:?}")),
            },
            local_links: self
                .local_links
                .iter()
                .map(|(l, u)| (l.clone(), *u))
                .collect(),
            nodes,
            groups,
            last_transition: self.last_transition.clone(),
        }
    }

    // ---------------------------------------------------------------- helpers

    fn nice(&self) -> bool {
        self.p.auto_failback != AutoFailback::Legacy
    }

    fn notify(&mut self, level: Level, what: impl Into<String>, why: impl Into<String>) {
        let change = StateChange {
            level,
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

    fn peer_index(&self, name: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.name == name)
    }

    fn alive(&self, pi: usize) -> bool {
        self.peers[pi].status != NodeStatus::Dead
    }

    fn any_live_peer(&self) -> bool {
        (0..self.peers.len()).any(|i| self.alive(i))
    }

    /// Whether group `gi` belongs to `set` as seen by node `owner`.
    fn in_set(&self, gi: usize, owner: &str, set: RscHold) -> bool {
        if self.groups[gi].preferred == owner {
            set.has_local()
        } else {
            set.has_foreign()
        }
    }

    fn groups_of(&self, owner: &str, set: RscHold) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&gi| !self.groups[gi].removed && self.in_set(gi, owner, set))
            .collect()
    }

    /// Whether a peer claims group `gi` (wanted or running), per its last report.
    fn peer_covers(&self, p: &Peer, gi: usize) -> bool {
        if let Some(r) = &p.running {
            if r.contains(&self.groups[gi].key) {
                return true;
            }
        }
        self.in_set(gi, &p.name, p.hold)
    }

    /// Whether a peer has confirmed group `gi` running (precise when it sends `wb_running`).
    fn peer_runs(&self, p: &Peer, gi: usize) -> bool {
        match &p.running {
            Some(r) => r.contains(&self.groups[gi].key),
            None => self.in_set(gi, &p.name, p.hold),
        }
    }

    /// A live peer reports running the group: starting it here would duplicate it, so the
    /// start waits for the peer's release (its report, `done`, `shutdone` or death).
    fn peer_still_runs(&self, gi: usize) -> bool {
        self.peers
            .iter()
            .any(|p| p.status != NodeStatus::Dead && p.reported && self.peer_runs(p, gi))
    }

    fn held_by_live_peer(&self, gi: usize, except: Option<usize>) -> bool {
        (0..self.peers.len())
            .any(|i| Some(i) != except && self.alive(i) && self.peer_covers(&self.peers[i], gi))
    }

    fn holds_here(&self, gi: usize) -> bool {
        let g = &self.groups[gi];
        g.want || g.run != Run::Stopped
    }

    fn my_hold(&self) -> RscHold {
        let mut local = false;
        let mut foreign = false;
        for gi in 0..self.groups.len() {
            if self.holds_here(gi) {
                if self.groups[gi].preferred == self.p.local {
                    local = true;
                } else {
                    foreign = true;
                }
            }
        }
        RscHold::from_bits(local, foreign)
    }

    fn running_keys(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.run == Run::Running)
            .map(|g| g.key.clone())
            .collect()
    }

    fn group_settled(&self, gi: usize) -> bool {
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
        (0..self.groups.len()).all(|gi| self.group_settled(gi))
    }

    fn locally_stable(&self) -> bool {
        self.rstate == RState::Stable
            && self.standby == Standby::Not
            && !self.shutting_down
            && self.all_settled()
    }

    fn want_groups(&mut self, gis: &[usize]) -> Vec<String> {
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

    fn cancel_standby(&mut self, why: &str) {
        if self.standby != Standby::Not {
            let s = format!("{:?}", self.standby);
            self.standby = Standby::Not;
            self.notify(
                Level::Warn,
                "cancelling pending standby operation",
                format!("{why} ({s})"),
            );
        }
    }

    // ---------------------------------------------------------------- membership

    fn on_heard(&mut self, from: &str, link: LinkId, generation: u64, msg: Message) {
        if from == self.p.local {
            return;
        }
        let Some(pi) = self.peer_index(from) else {
            self.notify(
                Level::Warn,
                format!("message from unknown node {from} ignored"),
                "it is not a configured node (ha.cf node)",
            );
            return;
        };
        self.on_link_packet(from, link.clone());
        let known = self.peers[pi].generation;
        if known.is_some_and(|k| generation < k) {
            // heartbeat: "attempted replay attack"; an old incarnation's straggler.
            return;
        }
        if let Message::Status { status, deadtime } = msg {
            self.on_status(pi, &link, generation, status, deadtime);
            return;
        }
        if known != Some(generation) {
            // heartbeat adopts a generation only from a status message; anything a new
            // incarnation sends before its first status is dropped as an old duplicate.
            return;
        }
        if !self.alive(pi) && msg != Message::Shutdone {
            return;
        }
        self.check_comm_up();
        self.dispatch(pi, msg);
    }

    fn on_link_packet(&mut self, from: &str, link: LinkId) {
        let Some(pi) = self.peer_index(from) else {
            return;
        };
        let was_up = self.peers[pi].links.get(&link).map(|(_, up)| *up);
        self.peers[pi].links.insert(link.clone(), (self.now, true));
        self.peers[pi].heard_any = true;
        if was_up == Some(false) && self.alive(pi) {
            self.notify(
                Level::Info,
                format!("link {from}:{link} up"),
                "packets arrive again",
            );
        }
    }

    fn on_status(
        &mut self,
        pi: usize,
        link: &LinkId,
        generation: u64,
        status: NodeStatus,
        deadtime: Duration,
    ) {
        let now = self.now;
        let name = self.peers[pi].name.clone();
        let known = self.peers[pi].generation;
        let dead = !self.alive(pi);
        match known {
            Some(k) if generation > k => {
                self.peers[pi].generation = Some(generation);
                if dead {
                    self.notify(
                        Level::Info,
                        format!("node {name} is back (generation {k} -> {generation})"),
                        format!("status {} heard on {link}", status.as_str()),
                    );
                } else {
                    self.peer_restarted(pi, k, generation);
                }
                self.reset_peer_view(pi);
            }
            Some(_) if dead => {
                if self.peers[pi].left {
                    // a status sent just before its shutdone; not a return
                    return;
                }
                self.returned_after_partition(pi, link);
            }
            Some(_) => {}
            None => {
                self.peers[pi].generation = Some(generation);
                if dead {
                    self.notify(
                        Level::Info,
                        format!("node {name} is up"),
                        format!(
                            "first heard (status {} on {link}) after it was declared dead",
                            status.as_str()
                        ),
                    );
                    self.reset_peer_view(pi);
                }
            }
        }
        if let Some(prev) = self.peers[pi].last_status {
            let gap = now.since(prev);
            if self.alive(pi) && gap > self.p.warntime {
                self.notify(
                    Level::Warn,
                    format!(
                        "late heartbeat from {name}: interval {} ms",
                        gap.as_millis()
                    ),
                    format!("warntime is {}", secs(self.p.warntime)),
                );
            }
        }
        if dead {
            self.peer_came_back(pi);
        }
        let p = &mut self.peers[pi];
        p.last_status = Some(now);
        p.dt = Some(deadtime);
        p.dead_since = None;
        p.left = false;
        if status != NodeStatus::Dead {
            p.status = status;
        } else if p.status == NodeStatus::Dead {
            p.status = NodeStatus::Up;
        }
        self.check_comm_up();
    }

    /// A peer we considered dead speaks again (restart, late start, healed partition). If
    /// both of us served groups meanwhile, only an exchange of reports reveals it: send ours
    /// (nice_failback) or ask for our own groups back (legacy).
    fn peer_came_back(&mut self, returning: usize) {
        if !self.comm_up || self.shutting_down {
            return;
        }
        if self.nice() {
            if self.rstate == RState::Stable {
                // `starting` makes the peer answer with a full report (heartbeat answers it
                // in any state); our own report follows.
                self.send(Message::Starting);
            }
            self.force_report = true;
        } else {
            // Ask back only what we serve: the peer then drops its duplicate while we keep
            // serving. An own group we do not run stays with the peer (pulling it would stop
            // a working copy); it comes home at the next comm-up, as in heartbeat.
            let local = self.p.local.clone();
            for gi in self.groups_of(&local, RscHold::Local) {
                let g = &mut self.groups[gi];
                match g.run {
                    Run::Running | Run::Starting => {}
                    Run::Stopped => {
                        g.want = false;
                        continue;
                    }
                    Run::Stopping => continue,
                }
                let key = g.key.clone();
                self.legacy_req.insert(key.clone(), self.now);
                self.send(Message::IpRequest { key });
            }
            // The returning node may never have noticed anything (only we declared it dead)
            // and then never asks: hand its groups back ourselves, the legacy way (release,
            // then ip-request-resp tells it to take them; taking a running group is a no-op).
            let back: Vec<(usize, String)> = (0..self.groups.len())
                .filter(|&gi| self.groups[gi].preferred != local && self.holds_here(gi))
                .filter_map(|gi| {
                    let pref = self.groups[gi].preferred.clone();
                    self.peer_index(&pref)
                        .filter(|&pi| self.alive(pi) || pi == returning)
                        .map(|_| (gi, pref))
                })
                .collect();
            for (gi, pref) in back {
                self.groups[gi].want = false;
                let key = self.groups[gi].key.clone();
                self.legacy_resp.insert(key, pref);
            }
        }
    }

    fn reset_peer_view(&mut self, pi: usize) {
        let p = &mut self.peers[pi];
        p.hold = RscHold::None;
        p.running = None;
        p.stable = false;
        p.reported = false;
        p.left = false;
        p.dead_since = None;
    }

    fn peer_restarted(&mut self, pi: usize, old: u64, new: u64) {
        let name = self.peers[pi].name.clone();
        let had: Vec<String> = (0..self.groups.len())
            .filter(|&gi| self.peer_covers(&self.peers[pi], gi))
            .map(|gi| self.groups[gi].key.clone())
            .collect();
        self.notify(
            Level::Warn,
            format!(
                "node {name} restarted (generation {old} -> {new}) without being declared dead"
            ),
            format!(
                "a restarted node runs nothing; groups it held: {}",
                list(&had)
            ),
        );
        if let Standby::Giving { peer, .. } | Standby::Taking { from: peer, .. } = &self.standby {
            if *peer == name {
                self.cancel_standby("peer restarted");
            }
        }
        if self.comm_up && !self.shutting_down && self.rstate != RState::Init {
            self.takeover_from(pi, &format!("{name} restarted"));
        }
    }

    fn returned_after_partition(&mut self, pi: usize, link: &LinkId) {
        let name = self.peers[pi].name.clone();
        let since = self.peers[pi]
            .dead_since
            .map(|t| secs(self.now.since(t)))
            .unwrap_or_else(|| "?".into());
        let both: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.want || g.run != Run::Stopped)
            .map(|g| g.key.clone())
            .collect();
        self.notify(
            Level::Crit,
            format!("split brain: cluster node {name} returning after partition"),
            format!(
                "it was declared dead {since} ago but kept its generation (heard on {link}); \
                 both nodes may have run the same groups (here: {}). Deadtime may be too small. \
                 Instead of restarting both nodes (heartbeat, ~21 s outage) the node that is not \
                 the preferred owner releases each duplicated group once both have reported",
                list(&both)
            ),
        );
        // the reports exchanged by peer_came_back() settle the duplicates (legacy: the
        // preferred node pulls its groups back with ip-request while it keeps serving them)
        self.reset_peer_view(pi);
    }

    fn declare_dead(&mut self, pi: usize) {
        let now = self.now;
        let limit = self.dead_limit(&self.peers[pi]);
        let name = self.peers[pi].name.clone();
        let silence = self.peers[pi]
            .last_status
            .map(|t| now.since(t))
            .unwrap_or_else(|| now.since(self.started_at));
        let links: Vec<String> = self.peers[pi]
            .links
            .iter()
            .map(|(l, (t, _))| format!("{l} last heard {} ago", secs(now.since(*t))))
            .collect();
        {
            let p = &mut self.peers[pi];
            p.status = NodeStatus::Dead;
            p.dead_since = Some(now);
            for v in p.links.values_mut() {
                v.1 = false;
            }
        }
        let which = if self.comm_up {
            "dead time"
        } else {
            "initdead"
        };
        self.notify(
            Level::Warn,
            format!("node {name} declared dead"),
            format!(
                "no status for {} ({which} {}); links: {}",
                secs(silence),
                secs(limit),
                if links.is_empty() {
                    "never heard".to_string()
                } else {
                    links.join("; ")
                }
            ),
        );
        if let Standby::Giving { peer, .. } | Standby::Taking { from: peer, .. } = &self.standby {
            if *peer == name {
                self.cancel_standby(&format!("{name} died"));
            }
        }
        if !self.comm_up || self.shutting_down {
            return;
        }
        self.send_stonith(pi);
        self.takeover_from(pi, &format!("{name} declared dead"));
    }

    fn send_stonith(&mut self, pi: usize) {
        let p = &self.peers[pi];
        let name = p.name.clone();
        let unneeded = p.heard_any && self.nice() && p.reported && p.hold == RscHold::None;
        if unneeded {
            self.send(Message::Stonith {
                node: name,
                result: StonithResult::Unneeded,
            });
        } else {
            self.send(Message::Stonith {
                node: name.clone(),
                result: StonithResult::NotConfigured,
            });
            self.notify(
                Level::Warn,
                format!("no STONITH device configured: {name} is not fenced"),
                "shared disks are not protected; taking over anyway (heartbeat does the same)",
            );
        }
    }

    /// The peer is gone (dead, left or restarted): take every group no other live peer holds.
    fn takeover_from(&mut self, pi: usize, why: &str) {
        if matches!(
            self.rstate,
            RState::Starting | RState::BothStarting | RState::RscRcvd(_) | RState::Init
        ) {
            self.rstate = RState::Stable;
        }
        {
            let p = &mut self.peers[pi];
            p.hold = RscHold::None;
            p.running = None;
            p.stable = true;
        }
        let gis: Vec<usize> = (0..self.groups.len())
            .filter(|&gi| !self.groups[gi].removed && !self.held_by_live_peer(gi, Some(pi)))
            .collect();
        for &gi in &gis {
            // a node taking over gets a fresh attempt even if a start failed here earlier
            self.groups[gi].retry_at = None;
        }
        let keys = self.want_groups(&gis);
        for &gi in &gis {
            if keys.contains(&self.groups[gi].key) {
                self.groups[gi].taken_over = true;
            }
        }
        let name = self.peers[pi].name.clone();
        let policy = match self.p.auto_failback {
            AutoFailback::On => {
                format!("auto_failback on: {name}'s groups go back when it returns")
            }
            AutoFailback::Off => "auto_failback off: they stay here".to_string(),
            AutoFailback::Legacy => {
                format!("auto_failback legacy: {name} pulls its groups back when it returns")
            }
        };
        if !keys.is_empty() {
            self.notify(
                Level::Warn,
                format!("taking over group(s) {}", list(&keys)),
                format!("{why}; {policy}"),
            );
        }
        self.report_info = Some("mach_down".into());
        self.force_report = true;
    }

    fn check_comm_up(&mut self) {
        if self.comm_up || self.shutting_down {
            return;
        }
        if !self
            .peers
            .iter()
            .all(|p| p.heard_any || p.status == NodeStatus::Dead)
        {
            return;
        }
        self.comm_up = true;
        self.local_status = NodeStatus::Active;
        self.next_status_at = self.now;
        let heard: Vec<String> = self
            .peers
            .iter()
            .filter(|p| p.status != NodeStatus::Dead)
            .map(|p| p.name.clone())
            .collect();
        let dead: Vec<usize> = (0..self.peers.len()).filter(|&i| !self.alive(i)).collect();
        let dead_names: Vec<String> = dead.iter().map(|&i| self.peers[i].name.clone()).collect();
        self.notify(
            Level::Info,
            "communication up",
            format!("heard: {}; dead: {}", list(&heard), list(&dead_names)),
        );
        let local = self.p.local.clone();
        if !self.nice() {
            self.rstate = RState::Stable;
            let own = self.groups_of(&local, RscHold::Local);
            if heard.is_empty() {
                let keys = self.want_groups(&own);
                self.notify(
                    Level::Info,
                    format!("acquiring own group(s) {}", list(&keys)),
                    "alone in the cluster (legacy)",
                );
            } else {
                for gi in own {
                    let key = self.groups[gi].key.clone();
                    self.legacy_req.insert(key.clone(), self.now);
                    self.send(Message::IpRequest { key });
                }
            }
        } else if !heard.is_empty() {
            self.send(Message::Starting);
            self.starting_sent_at = Some(self.now);
            self.rstate = RState::Starting;
        } else {
            self.send(Message::Starting);
            self.rstate = RState::Stable;
        }
        if heard.is_empty() {
            for &pi in &dead {
                self.send_stonith(pi);
            }
            let all: Vec<usize> = (0..self.groups.len()).collect();
            let keys = self.want_groups(&all);
            for g in &mut self.groups {
                g.taken_over = keys.contains(&g.key) && g.preferred != self.p.local;
            }
            self.force_report = true;
            self.notify(
                Level::Warn,
                format!("acquiring all groups: {}", list(&keys)),
                format!(
                    "no peer heard within initdead ({}): {} declared dead",
                    secs(self.p.initdead),
                    list(&dead_names)
                ),
            );
        }
    }

    // ---------------------------------------------------------------- messages

    fn dispatch(&mut self, pi: usize, msg: Message) {
        let name = self.peers[pi].name.clone();
        match msg {
            Message::Status { .. } => {}
            Message::Starting => self.on_starting(pi),
            Message::Resource {
                hold,
                full,
                stable,
                info,
                running,
            } => self.on_resource(pi, hold, full, stable, info, running),
            Message::AskResources { hold, step } => self.on_ask(pi, hold, step),
            Message::HbTakeover { which } => self.on_hb_takeover(pi, which),
            Message::Shutdone => self.on_shutdone(pi),
            Message::Stonith { node, result } => {
                self.notify(
                    Level::Info,
                    format!("{name} reports STONITH of {node}: {}", result.as_str()),
                    "stonith message",
                );
            }
            Message::IpRequest { key } => self.on_ip_request(pi, key),
            Message::IpRequestResp { dest, key, weown } => {
                if dest == self.p.local {
                    self.on_ip_response(pi, key, weown);
                }
            }
        }
    }

    fn on_starting(&mut self, pi: usize) {
        if !self.nice() {
            return;
        }
        let name = self.peers[pi].name.clone();
        {
            let p = &mut self.peers[pi];
            p.hold = RscHold::None;
            p.running = None;
            p.stable = false;
            p.reported = false;
        }
        if let Standby::Giving { peer, .. } | Standby::Taking { from: peer, .. } = &self.standby {
            if *peer == name {
                self.cancel_standby("peer restarted its resource manager");
            }
        }
        let stable = match self.rstate {
            RState::Starting => {
                self.rstate = RState::BothStarting;
                false
            }
            RState::BothStarting | RState::RscRcvd(_) => false,
            RState::Stable => self.locally_stable(),
            RState::Init | RState::Shutdown => return,
        };
        self.send_report(stable, None);
    }

    fn send_report(&mut self, stable: bool, info: Option<String>) {
        let hold = self.my_hold();
        let running = self.running_keys();
        self.last_report = Some((hold, running.clone(), stable));
        self.send(Message::Resource {
            hold,
            full: true,
            stable: Some(stable),
            info,
            running: Some(running),
        });
    }

    fn on_resource(
        &mut self,
        pi: usize,
        hold: RscHold,
        full: bool,
        stable: Option<bool>,
        info: Option<String>,
        running: Option<Vec<String>>,
    ) {
        if !self.nice() {
            return;
        }
        let name = self.peers[pi].name.clone();
        let was_stable = self.peers[pi].stable;
        {
            let p = &mut self.peers[pi];
            p.hold = if full || hold == RscHold::None {
                hold
            } else {
                RscHold::from_bits(
                    p.hold.has_local() || hold.has_local(),
                    p.hold.has_foreign() || hold.has_foreign(),
                )
            };
            if let Some(r) = running {
                p.running = Some(r.into_iter().collect());
            } else if full {
                p.running = None;
            }
            if let Some(s) = stable {
                p.stable = s;
            }
            p.reported = true;
        }
        let peer_stable = self.peers[pi].stable;
        match self.rstate {
            RState::Starting | RState::BothStarting | RState::RscRcvd(_) => {
                if peer_stable {
                    self.acquire_own(&format!(
                        "{name} is stable and holds {}{}",
                        hold.as_str(),
                        info.map(|i| format!(" ({i})")).unwrap_or_default()
                    ));
                } else if !matches!(self.rstate, RState::RscRcvd(_)) {
                    self.rstate = RState::RscRcvd(self.now.plus(RQSTDELAY));
                    self.notify(
                        Level::Info,
                        format!("{name} is starting too"),
                        format!(
                            "own groups will be acquired in {} (RQSTDELAY) unless {name} becomes stable first",
                            secs(RQSTDELAY)
                        ),
                    );
                }
            }
            RState::Stable => {
                if peer_stable && !was_stable {
                    self.force_report = true;
                }
                // A peer that declared us dead (while we did not notice anything) took over
                // our groups: answer once per duplicated group with our own report so it can
                // see who runs what and release.
                let dups: BTreeSet<String> = (0..self.groups.len())
                    .filter(|&gi| self.holds_here(gi) && self.peer_runs(&self.peers[pi], gi))
                    .map(|gi| self.groups[gi].key.clone())
                    .collect();
                if dups.iter().any(|k| !self.dup_answered.contains(k)) {
                    self.force_report = true;
                }
                self.dup_answered = dups;
            }
            RState::Init | RState::Shutdown => {}
        }
    }

    /// heartbeat's req_our_resources(): take our own groups unless someone holds them.
    fn acquire_own(&mut self, why: &str) {
        self.rstate = RState::Stable;
        let local = self.p.local.clone();
        let gis: Vec<usize> = self
            .groups_of(&local, RscHold::Local)
            .into_iter()
            .filter(|&gi| !self.held_by_live_peer(gi, None))
            .collect();
        let keys = self.want_groups(&gis);
        self.force_report = true;
        self.notify(
            Level::Info,
            format!("initial resource acquisition: {}", list(&keys)),
            why.to_string(),
        );
    }

    fn on_ask(&mut self, pi: usize, set: RscHold, step: StandbyStep) {
        let name = self.peers[pi].name.clone();
        if !self.nice() {
            self.notify(
                Level::Warn,
                format!("standby message from {name} ignored"),
                "standby mode only implemented when nice_failback is on (auto_failback on/off)",
            );
            return;
        }
        if self.rstate == RState::Shutdown {
            return;
        }
        let now = self.now;
        match (self.standby.clone(), step) {
            (Standby::Not, StandbyStep::Me) => {
                if !self.peers[pi].stable {
                    self.notify(
                        Level::Warn,
                        format!("standby request [{}] from {name} ignored", set.as_str()),
                        "other side is in flux",
                    );
                    return;
                }
                if !self.locally_stable() {
                    self.notify(
                        Level::Warn,
                        format!("standby request [{}] from {name} ignored", set.as_str()),
                        "local resources in flux",
                    );
                    return;
                }
                self.peers[pi].stable = false;
                self.send(Message::AskResources {
                    hold: set,
                    step: StandbyStep::Other,
                });
                self.standby = Standby::Taking {
                    set,
                    from: name.clone(),
                    phase: TakePhase::AwaitDone,
                    deadline: now.plus(STANDBY_RSC_TIMEOUT),
                };
                self.notify(
                    Level::Info,
                    format!("{name} wants to go standby [{}]; agreed", set.as_str()),
                    "ask_resources me received while both sides are stable",
                );
            }
            (
                Standby::Giving {
                    set: my_set,
                    peer,
                    phase: GivePhase::AwaitOther,
                    ..
                },
                StandbyStep::Other,
            ) if peer == name => {
                let local = self.p.local.clone();
                let gis = self.groups_of(&local, my_set);
                let mut keys = Vec::new();
                for gi in gis {
                    let g = &mut self.groups[gi];
                    if g.want || g.run != Run::Stopped {
                        keys.push(g.key.clone());
                    }
                    g.want = false;
                }
                self.peers[pi].stable = false;
                self.send_report(false, Some("standby".into()));
                self.standby = Standby::Giving {
                    set: my_set,
                    peer,
                    phase: GivePhase::Releasing,
                    deadline: now.plus(STANDBY_RSC_TIMEOUT),
                };
                self.notify(
                    Level::Info,
                    format!("standby: releasing {} for {name}", list(&keys)),
                    format!("{name} agreed to take our {} groups", my_set.as_str()),
                );
            }
            (
                Standby::Giving {
                    set: my_set,
                    peer,
                    phase: GivePhase::AwaitDone,
                    ..
                },
                StandbyStep::Done,
            ) if peer == name => {
                self.standby = Standby::Not;
                self.force_report = true;
                self.notify(
                    Level::Info,
                    format!(
                        "standby complete: {name} took our {} groups",
                        my_set.as_str()
                    ),
                    "ask_resources done received",
                );
            }
            (
                Standby::Taking {
                    set: their_set,
                    from,
                    phase: TakePhase::AwaitDone,
                    ..
                },
                StandbyStep::Done,
            ) if from == name => {
                let gis = self.groups_of(&name, their_set);
                {
                    let p = &mut self.peers[pi];
                    p.hold = RscHold::from_bits(
                        p.hold.has_local() && !their_set.has_local(),
                        p.hold.has_foreign() && !their_set.has_foreign(),
                    );
                }
                for &gi in &gis {
                    let key = self.groups[gi].key.clone();
                    if let Some(r) = &mut self.peers[pi].running {
                        r.remove(&key);
                    }
                }
                for &gi in &gis {
                    let g = &mut self.groups[gi];
                    g.retry_at = None;
                    g.failed = None;
                    // handed over by its owner, not taken from a dead node: no failback
                    g.taken_over = false;
                }
                let keys = self.want_groups(&gis);
                self.standby = Standby::Taking {
                    set: their_set,
                    from,
                    phase: TakePhase::Acquiring,
                    deadline: now.plus(STANDBY_RSC_TIMEOUT),
                };
                self.notify(
                    Level::Info,
                    format!("standby: acquiring {} from {name}", list(&keys)),
                    format!("{name} released its {} groups", their_set.as_str()),
                );
            }
            (state, step) => {
                self.notify(
                    Level::Warn,
                    format!(
                        "ignored standby message '{step:?}' [{}] from {name}",
                        set.as_str()
                    ),
                    format!("standby state {state:?}"),
                );
            }
        }
    }

    fn on_hb_takeover(&mut self, pi: usize, which: Which) {
        let name = self.peers[pi].name.clone();
        if !self.nice() {
            self.notify(
                Level::Warn,
                format!("takeover request from {name} ignored"),
                "standby mode only implemented when nice_failback is on",
            );
            return;
        }
        // The requester names groups from its viewpoint; we give the complement from ours.
        // heartbeat maps `failback` to `all` here (a quirk); we give only the requester's own.
        let set = match which {
            Which::All => RscHold::All,
            Which::Local | Which::Failback => RscHold::Foreign,
            Which::Foreign => RscHold::Local,
        };
        self.request_standby(set, format!("{name} ran hb_takeover {}", which.as_str()));
    }

    fn request_standby(&mut self, set: RscHold, reason: String) {
        if self.shutting_down {
            return;
        }
        self.notify(
            Level::Info,
            format!("standby [{}] requested", set.as_str()),
            reason.clone(),
        );
        self.pending = Some(Pending {
            set,
            reason,
            expires: self.now.plus(PENDING_WINDOW),
        });
    }

    fn on_shutdone(&mut self, pi: usize) {
        let name = self.peers[pi].name.clone();
        {
            let p = &mut self.peers[pi];
            p.left = true;
            p.status = NodeStatus::Dead;
            p.dead_since = Some(self.now);
            p.hold = RscHold::None;
            p.running = Some(BTreeSet::new());
            p.stable = true;
            for v in p.links.values_mut() {
                v.1 = false;
            }
        }
        self.notify(
            Level::Info,
            format!("node {name} shut down cleanly"),
            "shutdone received: it released all its groups",
        );
        if let Standby::Giving { peer, .. } | Standby::Taking { from: peer, .. } = &self.standby {
            if *peer == name {
                self.cancel_standby("peer shut down");
            }
        }
        if self.comm_up && !self.shutting_down {
            self.takeover_from(pi, &format!("{name} shut down"));
        }
    }

    fn on_ip_request(&mut self, pi: usize, key: String) {
        let name = self.peers[pi].name.clone();
        if self.nice() {
            return;
        }
        let Some(gi) = self.groups.iter().position(|g| g.key == key) else {
            return;
        };
        if self.holds_here(gi) {
            self.groups[gi].want = false;
            self.legacy_resp.insert(key.clone(), name.clone());
            self.notify(
                Level::Info,
                format!("releasing {key} for {name}"),
                "legacy ip-request: the preferred node asks for its group",
            );
        } else {
            self.send(Message::IpRequestResp {
                dest: name,
                key,
                weown: false,
            });
        }
    }

    fn on_ip_response(&mut self, pi: usize, key: String, weown: bool) {
        let name = self.peers[pi].name.clone();
        if self.nice() || self.shutting_down {
            return;
        }
        let Some(gi) = self.groups.iter().position(|g| g.key == key) else {
            return;
        };
        self.legacy_req.remove(&key);
        self.groups[gi].retry_at = None;
        let keys = self.want_groups(&[gi]);
        if !keys.is_empty() {
            self.notify(
                Level::Info,
                format!("acquiring {key}"),
                format!(
                    "{name} answered our ip-request ({})",
                    if weown {
                        "it released the group"
                    } else {
                        "it did not hold it"
                    }
                ),
            );
        }
    }

    // ---------------------------------------------------------------- commands, results

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Shutdown => self.begin_shutdown(),
            Command::Standby(_) | Command::Takeover(_) if !self.nice() => {
                self.notify(
                    Level::Warn,
                    format!("{c:?} refused"),
                    "standby mode only implemented when nice_failback is on (auto_failback on/off)",
                );
            }
            Command::Standby(which) => {
                self.request_standby(
                    which.as_hold(),
                    format!("operator: standby {}", which.as_str()),
                );
            }
            Command::Takeover(which) => {
                if self.shutting_down {
                    return;
                }
                if !self.any_live_peer() {
                    self.notify(
                        Level::Info,
                        format!("takeover {} needs no hand-off", which.as_str()),
                        "no live peer: every group is already ours",
                    );
                    return;
                }
                self.send(Message::HbTakeover { which });
                self.notify(
                    Level::Info,
                    format!("asked peer to hand over {} groups", which.as_str()),
                    "operator: takeover",
                );
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.rstate = RState::Shutdown;
        self.pending = None;
        self.standby = Standby::Not;
        let keys: Vec<String> = self.groups.iter().map(|g| g.key.clone()).collect();
        for g in &mut self.groups {
            g.want = false;
            if g.run == Run::Stopped {
                g.stop_anyway = true;
            }
        }
        if self.nice() {
            self.send(Message::Resource {
                hold: RscHold::None,
                full: true,
                stable: Some(false),
                info: Some("shutdown".into()),
                running: None,
            });
        }
        self.notify(
            Level::Info,
            "graceful shutdown: releasing all groups",
            format!(
                "operator request; stopping {} then sending shutdone",
                list(&keys)
            ),
        );
    }

    fn on_result(&mut self, key: &str, op: Op, ok: bool, detail: &str) {
        let Some(gi) = self.groups.iter().position(|g| g.key == key) else {
            self.notify(
                Level::Warn,
                format!("result for unknown group {key} ignored"),
                detail.to_string(),
            );
            return;
        };
        let now = self.now;
        match (self.groups[gi].run, op) {
            (Run::Starting, Op::Start) if ok => {
                let g = &mut self.groups[gi];
                g.run = Run::Running;
                g.failed = None;
                self.notify(
                    Level::Info,
                    format!("group {key} started"),
                    detail.to_string(),
                );
            }
            (Run::Starting, Op::Start) => {
                // Part of the group may be up: stop it all (heartbeat gives up the group).
                let g = &mut self.groups[gi];
                g.run = Run::Stopping;
                g.failed = Some(detail.to_string());
                g.retry_at = Some(now.plus(FAILED_RETRY));
                self.out.push(Action::StopGroup(key.to_string()));
                let peer = if self.nice() && self.any_live_peer() {
                    "handing it to the peer once stopped"
                } else {
                    "no peer can take it"
                };
                self.notify(
                    Level::Crit,
                    format!("giving up group {key}: start failed"),
                    format!("{detail}; {peer}; retry here in {}", secs(FAILED_RETRY)),
                );
            }
            (Run::Stopping, Op::Stop) if ok => {
                let g = &mut self.groups[gi];
                g.run = Run::Stopped;
                if !g.want {
                    g.taken_over = false;
                }
                g.stop_failures = 0;
                g.stop_retry_at = None;
                self.notify(
                    Level::Info,
                    format!("group {key} stopped"),
                    detail.to_string(),
                );
            }
            (Run::Stopping, Op::Stop) => {
                let g = &mut self.groups[gi];
                g.run = Run::Running;
                g.stop_failures += 1;
                g.stop_retry_at = Some(now.plus(STOP_RETRY));
                let n = g.stop_failures;
                if n == STOP_RETRY_MAX {
                    self.notify(
                        Level::Crit,
                        format!("group {key} cannot be stopped after {n} attempts"),
                        format!(
                            "{detail}; it may still run here, so no other node will be given it; \
                             heartbeat would reboot this node now; manual intervention required"
                        ),
                    );
                } else if n < STOP_RETRY_MAX {
                    self.notify(
                        Level::Warn,
                        format!("stop of group {key} failed (attempt {n})"),
                        format!("{detail}; retrying in {}", secs(STOP_RETRY)),
                    );
                }
            }
            (run, op) => {
                self.notify(
                    Level::Warn,
                    format!("unexpected {op:?} result for {key} ignored"),
                    format!("group is {run:?}"),
                );
            }
        }
    }

    fn on_reload(&mut self, params: ClusterParams) {
        if params.local != self.p.local {
            self.notify(
                Level::Crit,
                "reload ignored",
                format!(
                    "the local node name changed ({} -> {}); restart the daemon instead",
                    self.p.local, params.local
                ),
            );
            return;
        }
        let generation = self.p.generation;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for spec in &params.groups {
            match self.groups.iter_mut().find(|g| g.key == spec.key) {
                Some(g) => {
                    g.preferred = spec.preferred.clone();
                    g.removed = false;
                }
                None => {
                    self.groups.push(new_group(spec));
                    added.push(spec.key.clone());
                }
            }
        }
        for g in &mut self.groups {
            if !params.groups.iter().any(|s| s.key == g.key) && !g.removed {
                g.removed = true;
                g.want = false;
                removed.push(g.key.clone());
            }
        }
        for n in &params.nodes {
            if *n != params.local && self.peer_index(n).is_none() {
                self.peers.push(new_peer(n));
            }
        }
        self.peers.retain(|p| params.nodes.contains(&p.name));
        self.p = params;
        self.p.generation = generation;
        if self.comm_up && self.rstate == RState::Stable && !self.shutting_down {
            let local = self.p.local.clone();
            let gis: Vec<usize> = (0..self.groups.len())
                .filter(|&gi| {
                    let g = &self.groups[gi];
                    added.contains(&g.key)
                        && (g.preferred == local
                            || !self
                                .peers
                                .iter()
                                .any(|p| p.name == g.preferred && p.status != NodeStatus::Dead))
                        && !self.held_by_live_peer(gi, None)
                })
                .collect();
            self.want_groups(&gis);
        }
        self.force_report = true;
        self.notify(
            Level::Info,
            "configuration reloaded",
            format!(
                "groups added: {}; removed: {}",
                list(&added),
                list(&removed)
            ),
        );
    }

    fn on_local_link(&mut self, link: LinkId, up: bool) {
        let old = self.local_links.insert(link.clone(), up);
        if old != Some(up) {
            self.notify(
                if up { Level::Info } else { Level::Warn },
                format!("local link {link} {}", if up { "up" } else { "down" }),
                "reported by the transport",
            );
        }
    }

    // ---------------------------------------------------------------- time

    fn timers(&mut self) {
        let now = self.now;
        for pi in 0..self.peers.len() {
            if !self.alive(pi) {
                continue;
            }
            let limit = self.dead_limit(&self.peers[pi]);
            let base = self.peers[pi].last_status.unwrap_or(self.started_at);
            if now >= base.plus(limit) {
                self.declare_dead(pi);
                continue;
            }
            let expired: Vec<LinkId> = self.peers[pi]
                .links
                .iter()
                .filter(|(_, (t, up))| *up && now >= t.plus(limit))
                .map(|(l, _)| l.clone())
                .collect();
            for l in expired {
                if let Some(v) = self.peers[pi].links.get_mut(&l) {
                    v.1 = false;
                }
                let name = self.peers[pi].name.clone();
                self.notify(
                    Level::Warn,
                    format!("link {name}:{l} dead"),
                    format!(
                        "nothing heard on it for {}; other links still carry heartbeats",
                        secs(limit)
                    ),
                );
            }
        }
        self.check_comm_up();
        if let RState::RscRcvd(t) = self.rstate {
            if now >= t {
                self.acquire_own(&format!(
                    "no peer became stable within {} (RQSTDELAY): nodes started together",
                    secs(RQSTDELAY)
                ));
            }
        }
        match self.standby.clone() {
            Standby::Giving {
                phase, deadline, ..
            } if now >= deadline => {
                self.standby = Standby::Not;
                let what = if phase == GivePhase::AwaitOther {
                    "no reply to standby request; standby request cancelled"
                } else {
                    "standby hand-shake timed out"
                };
                self.notify(Level::Warn, what, format!("phase {phase:?}"));
            }
            Standby::Taking { deadline, .. } if now >= deadline => {
                self.standby = Standby::Not;
                self.notify(
                    Level::Warn,
                    "standby hand-shake timed out",
                    "peer never finished",
                );
            }
            _ => {}
        }
        if let Some(t) = self.starting_sent_at {
            if matches!(self.rstate, RState::Starting | RState::BothStarting)
                && now >= t.plus(STARTING_RESEND)
                && self.any_live_peer()
            {
                self.send(Message::Starting);
                self.starting_sent_at = Some(now);
            }
        }
        let due: Vec<String> = self
            .legacy_req
            .iter()
            .filter(|(_, t)| now >= t.plus(LEGACY_REREQUEST))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if self.any_live_peer() && !self.shutting_down {
                self.legacy_req.insert(key.clone(), now);
                self.send(Message::IpRequest { key });
            } else {
                self.legacy_req.remove(&key);
            }
        }
    }

    /// Own status every keepalive, and at once when the local status changed.
    fn status_if_due(&mut self) {
        if self.now >= self.next_status_at {
            let status = self.local_status;
            let deadtime = self.advertised_dt();
            self.send(Message::Status { status, deadtime });
            if self.local_status == NodeStatus::Init {
                self.local_status = NodeStatus::Up;
            }
            self.next_status_at = self.now.plus(self.p.keepalive);
        }
    }

    // ---------------------------------------------------------------- progress

    /// Everything that follows from the current state: resource operations, hand-shake steps,
    /// reports, failback and split-brain settlement. Idempotent.
    fn progress(&mut self) {
        self.reconcile();
        self.standby_progress();
        if self.shutting_down {
            if self
                .groups
                .iter()
                .all(|g| g.run == Run::Stopped && !g.stop_anyway)
            {
                self.send(Message::Shutdone);
                self.notify(
                    Level::Info,
                    "all groups released; shutdone sent",
                    "graceful shutdown complete",
                );
                self.exited = true;
                self.out.push(Action::Exit);
            }
            return;
        }
        if self.nice() && self.rstate == RState::Stable {
            self.settle_duplicates();
            self.reconcile();
            // the peer must see us stable before it gets an ask_resources from us
            self.report_if_changed();
            self.failure_push();
            self.auto_failback();
            self.start_pending();
        }
        if !self.nice() {
            self.legacy_answer();
        }
    }

    fn reconcile(&mut self) {
        let now = self.now;
        for gi in 0..self.groups.len() {
            let blocked = self.groups[gi].run == Run::Stopped
                && self.groups[gi].want
                && self.peer_still_runs(gi);
            let g = &mut self.groups[gi];
            if !g.want && g.run == Run::Stopped {
                g.taken_over = false;
            }
            match g.run {
                Run::Stopped if g.stop_anyway => {
                    g.stop_anyway = false;
                    g.run = Run::Stopping;
                    self.out.push(Action::StopGroup(g.key.clone()));
                }
                Run::Stopped
                    if g.want
                        && !g.removed
                        && !self.shutting_down
                        && !blocked
                        && g.retry_at.is_none_or(|t| now >= t) =>
                {
                    g.retry_at = None;
                    g.run = Run::Starting;
                    self.out.push(Action::StartGroup(g.key.clone()));
                }
                Run::Running if !g.want && g.stop_retry_at.is_none_or(|t| now >= t) => {
                    g.run = Run::Stopping;
                    self.out.push(Action::StopGroup(g.key.clone()));
                }
                _ => {}
            }
        }
        self.groups
            .retain(|g| !(g.removed && g.run == Run::Stopped));
    }

    fn standby_progress(&mut self) {
        let now = self.now;
        match self.standby.clone() {
            Standby::Giving {
                set,
                peer,
                phase: GivePhase::Releasing,
                ..
            } => {
                let local = self.p.local.clone();
                let gis = self.groups_of(&local, set);
                if gis
                    .iter()
                    .all(|&gi| self.groups[gi].run == Run::Stopped && !self.groups[gi].want)
                {
                    self.send(Message::AskResources {
                        hold: set,
                        step: StandbyStep::Done,
                    });
                    self.standby = Standby::Giving {
                        set,
                        peer: peer.clone(),
                        phase: GivePhase::AwaitDone,
                        deadline: now.plus(STANDBY_RSC_TIMEOUT),
                    };
                    self.notify(
                        Level::Info,
                        format!("standby: our {} groups are stopped", set.as_str()),
                        format!("{peer} may start them now"),
                    );
                }
            }
            Standby::Taking {
                set,
                from,
                phase: TakePhase::Acquiring,
                ..
            } => {
                let gis = self.groups_of(&from, set);
                if gis.iter().all(|&gi| self.group_settled(gi)) {
                    self.send(Message::AskResources {
                        hold: set,
                        step: StandbyStep::Done,
                    });
                    self.standby = Standby::Not;
                    self.force_report = true;
                    let keys: Vec<String> = gis
                        .iter()
                        .filter(|&&gi| self.groups[gi].run == Run::Running)
                        .map(|&gi| self.groups[gi].key.clone())
                        .collect();
                    self.notify(
                        Level::Info,
                        format!("standby takeover complete: running {}", list(&keys)),
                        format!("acquired {from}'s {} groups", set.as_str()),
                    );
                }
            }
            _ => {}
        }
    }

    /// After a split brain both nodes may run a group: the one that is not its preferred
    /// owner releases it once the preferred owner has reported running it.
    fn settle_duplicates(&mut self) {
        if self.standby != Standby::Not {
            return;
        }
        let local = self.p.local.clone();
        for pi in 0..self.peers.len() {
            if !self.alive(pi) || !self.peers[pi].reported || !self.peers[pi].stable {
                continue;
            }
            let pname = self.peers[pi].name.clone();
            for gi in 0..self.groups.len() {
                if !self.groups[gi].want {
                    continue;
                }
                if !self.peer_runs(&self.peers[pi], gi) {
                    if self.groups[gi].reannounce && self.groups[gi].run == Run::Running {
                        self.groups[gi].reannounce = false;
                        let key = self.groups[gi].key.clone();
                        self.out.push(Action::Announce(key.clone()));
                        self.notify(
                            Level::Info,
                            format!("split brain settled: re-announcing {key}"),
                            format!(
                                "{pname} released its copy; neighbours that followed its announcements are pointed back here"
                            ),
                        );
                    }
                    continue;
                }
                if self.groups[gi].run == Run::Stopped {
                    // wanted but never started here because the peer runs it: it is the
                    // peer's now (failback, if any, will bring it home by hand-shake)
                    self.groups[gi].want = false;
                    continue;
                }
                let pref = self.groups[gi].preferred.clone();
                let peer_is_rightful = if pref == local {
                    false
                } else if pref == pname {
                    true
                } else {
                    let pos = |n: &str| self.p.nodes.iter().position(|x| x == n);
                    pos(&pname) < pos(&local)
                };
                if !peer_is_rightful {
                    // We keep it; the peer releases its copy (see above).
                    self.groups[gi].reannounce = true;
                }
                if peer_is_rightful {
                    let g = &mut self.groups[gi];
                    g.want = false;
                    let key = g.key.clone();
                    {
                        self.notify(
                            Level::Crit,
                            format!("split brain resolution: releasing {key}"),
                            format!(
                                "{pname} runs it too and is its preferred owner; it keeps serving, no restart"
                            ),
                        );
                    }
                }
            }
        }
    }

    /// heartbeat runs `hb_standby` 30 s after a failed start; we hand the group's set to a
    /// stable peer as soon as the failed group is stopped (once per PUSH_MEMORY).
    fn failure_push(&mut self) {
        if self.pending.is_some() || self.standby != Standby::Not {
            return;
        }
        let now = self.now;
        let local = self.p.local.clone();
        let target = self.groups.iter().position(|g| {
            g.failed.is_some()
                && g.want
                && g.run == Run::Stopped
                && g.pushed_at.is_none_or(|t| now >= t.plus(PUSH_MEMORY))
        });
        let Some(gi) = target else { return };
        let peer_ok = self
            .peers
            .iter()
            .any(|p| p.status != NodeStatus::Dead && p.stable);
        if !peer_ok {
            return;
        }
        self.groups[gi].pushed_at = Some(now);
        let set = if self.groups[gi].preferred == local {
            RscHold::Local
        } else {
            RscHold::Foreign
        };
        let key = self.groups[gi].key.clone();
        self.request_standby(set, format!("start of {key} failed here"));
    }

    /// heartbeat's rsc_needs_failback, derived from state: groups taken over from their
    /// home go back (as one `foreign` hand-shake) once the home node is back and stable.
    fn auto_failback(&mut self) {
        if self.p.auto_failback != AutoFailback::On {
            return;
        }
        if self.pending.is_some() || !self.locally_stable() {
            return;
        }
        let local = self.p.local.clone();
        // Only groups taken over from their home go back; a group that is here because an
        // operator put it here stays (the hand-shake moves the whole foreign set).
        let foreign_held: Vec<usize> = (0..self.groups.len())
            .filter(|&gi| {
                let g = &self.groups[gi];
                g.preferred != local && g.taken_over && self.holds_here(gi)
            })
            .collect();
        if foreign_held.is_empty() {
            return;
        }
        let home_ready: Vec<String> = foreign_held
            .iter()
            .filter_map(|&gi| {
                let pref = &self.groups[gi].preferred;
                self.peers
                    .iter()
                    .find(|p| {
                        p.name == *pref && p.status != NodeStatus::Dead && p.stable && p.reported
                    })
                    .map(|p| p.name.clone())
            })
            .collect();
        if let Some(home) = home_ready.first() {
            self.request_standby(
                RscHold::Foreign,
                format!("auto_failback on: {home} is back and stable"),
            );
        }
    }

    fn start_pending(&mut self) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        if self.now >= p.expires {
            self.pending = None;
            self.notify(
                Level::Warn,
                format!("standby [{}] dropped", p.set.as_str()),
                format!(
                    "{}; the cluster did not become stable within {}",
                    p.reason,
                    secs(PENDING_WINDOW)
                ),
            );
            return;
        }
        if !self.locally_stable() {
            return;
        }
        let Some(pi) = (0..self.peers.len()).find(|&i| self.alive(i) && self.peers[i].stable)
        else {
            if !self.any_live_peer() {
                self.pending = None;
                self.notify(
                    Level::Warn,
                    format!("standby [{}] refused", p.set.as_str()),
                    format!("{}; no live peer could take the groups", p.reason),
                );
            }
            return;
        };
        self.pending = None;
        let peer = self.peers[pi].name.clone();
        self.send(Message::AskResources {
            hold: p.set,
            step: StandbyStep::Me,
        });
        self.standby = Standby::Giving {
            set: p.set,
            peer: peer.clone(),
            phase: GivePhase::AwaitOther,
            deadline: self.now.plus(STANDBY_REPLY_TIMEOUT),
        };
        self.notify(
            Level::Info,
            format!("going standby [{}]: asking {peer}", p.set.as_str()),
            p.reason,
        );
    }

    fn report_if_changed(&mut self) {
        if !self.comm_up || self.standby != Standby::Not {
            return;
        }
        let settled = self.all_settled();
        let cur = (self.my_hold(), self.running_keys(), settled);
        if self.force_report || self.last_report.as_ref() != Some(&cur) {
            self.force_report = false;
            let info = self.report_info.take();
            self.send_report(settled, info);
        }
    }

    fn legacy_answer(&mut self) {
        let ready: Vec<(String, String)> = self
            .legacy_resp
            .iter()
            .filter(|(k, _)| {
                self.groups
                    .iter()
                    .find(|g| g.key == **k)
                    .is_none_or(|g| g.run == Run::Stopped && !g.want)
            })
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        for (key, dest) in ready {
            self.legacy_resp.remove(&key);
            self.send(Message::IpRequestResp {
                dest,
                key,
                weown: true,
            });
        }
    }
}

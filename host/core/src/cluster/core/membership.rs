//! Membership: hearing peers, their links and generations, death, return, comm-up.

use super::*;

impl Cluster {
    pub(super) fn on_heard(&mut self, from: &str, link: LinkId, generation: u64, msg: Message) {
        if from == self.p.local {
            return;
        }
        let Some(pi) = self.peer_index(from) else {
            self.notify(
                Level::Warn,
                Cause::Protocol,
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
        if !self.not_declared_dead(pi) && msg != Message::Shutdone {
            return;
        }
        self.check_comm_up();
        self.dispatch(pi, msg);
    }

    pub(super) fn on_link_packet(&mut self, from: &str, link: LinkId) {
        let Some(pi) = self.peer_index(from) else {
            return;
        };
        let was_up = self.peers[pi].links.get(&link).map(|(_, up)| *up);
        self.peers[pi].links.insert(link.clone(), (self.now, true));
        self.peers[pi].heard_any = true;
        if was_up == Some(false) && self.not_declared_dead(pi) {
            self.notify(
                Level::Info,
                Cause::Link,
                format!("link {from}:{link} up"),
                "packets arrive again",
            );
        }
    }

    pub(super) fn on_status(
        &mut self,
        pi: PeerId,
        link: &LinkId,
        generation: u64,
        status: NodeStatus,
        deadtime: Duration,
    ) {
        let now = self.now;
        let name = self.peers[pi].name.clone();
        let known = self.peers[pi].generation;
        let dead = !self.not_declared_dead(pi);
        match known {
            Some(k) if generation > k => {
                self.peers[pi].generation = Some(generation);
                if dead {
                    self.notify(
                        Level::Info,
                        Cause::PeerUp,
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
                        Cause::PeerUp,
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
            if self.not_declared_dead(pi) && gap > self.p.warntime {
                self.notify(
                    Level::Warn,
                    Cause::Protocol,
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
    pub(super) fn peer_came_back(&mut self, returning: PeerId) {
        self.fencing_peer_back(returning);
        if !self.comm_up || self.shutting_down {
            return;
        }
        if self.uses_nice_failback() {
            if self.phase == Phase::Stable {
                // `starting` makes the peer answer with a full report (heartbeat answers it
                // in any state); our own report follows.
                self.send(Message::Starting);
            }
            self.force_report = true;
        } else {
            // Ask back only what we serve: the peer then drops its duplicate while we keep
            // serving. An own group we do not run stays with the peer (pulling it would stop
            // a working copy); it comes home at the next comm-up, as in heartbeat. Except
            // one whose start failed here and waits for its retry: nobody may run it, so
            // ask for it (the answer starts it here, whoever held it releasing first)
            // instead of dropping it, which left it running nowhere.
            let local = self.p.local.clone();
            for gi in self.groups_of(&local, RscHold::Local) {
                let g = &mut self.groups[gi];
                match g.run {
                    Run::Running | Run::Starting => {}
                    Run::Stopped => {
                        let retry_pending = g.want && g.failed.is_some();
                        g.want = false;
                        if !retry_pending {
                            continue;
                        }
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
            let back: Vec<(GroupId, String)> = self
                .group_ids()
                .filter(|&gi| self.groups[gi].preferred != local && self.held_here(gi))
                .filter_map(|gi| {
                    let pref = self.groups[gi].preferred.clone();
                    self.peer_index(&pref)
                        .filter(|&pi| self.not_declared_dead(pi) || pi == returning)
                        .map(|_| (gi, pref))
                })
                .collect();
            for (gi, pref) in back {
                self.groups[gi].want = false;
                let key = self.groups[gi].key.clone();
                let generation = self
                    .peer_index(&pref)
                    .and_then(|pi| self.peers[pi].generation);
                self.legacy_resp.insert(key, (pref, generation));
            }
        }
    }

    pub(super) fn reset_peer_view(&mut self, pi: PeerId) {
        let p = &mut self.peers[pi];
        p.hold = RscHold::None;
        p.running = None;
        p.stable = false;
        p.reported = false;
        p.left = false;
        p.dead_since = None;
    }

    pub(super) fn peer_restarted(&mut self, pi: PeerId, old: u64, new: u64) {
        let name = self.peers[pi].name.clone();
        let had: Vec<String> = self
            .group_ids()
            .filter(|&gi| self.peer_claims(&self.peers[pi], gi))
            .map(|gi| self.groups[gi].key.clone())
            .collect();
        self.notify(
            Level::Warn,
            Cause::PeerBack,
            format!(
                "node {name} restarted (generation {old} -> {new}) without being declared dead"
            ),
            format!(
                "a restarted node runs nothing; groups it held: {}",
                list(&had)
            ),
        );
        self.cancel_standby_with(&name, "peer restarted");
        if self.comm_up && !self.shutting_down && self.phase != Phase::Init {
            self.takeover_from(pi, &format!("{name} restarted"));
        }
    }

    pub(super) fn returned_after_partition(&mut self, pi: PeerId, link: &LinkId) {
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
            Cause::SplitBrain,
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

    pub(super) fn declare_dead(&mut self, pi: PeerId) {
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
            Cause::PeerDead,
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
        self.cancel_standby_with(&name, &format!("{name} died"));
        if !self.comm_up || self.shutting_down {
            return;
        }
        self.tiebreak_dead_peer(pi);
        self.stonith_dead_peer(pi);
        self.takeover_from(pi, &format!("{name} declared dead"));
    }

    /// The peer is gone (dead, left or restarted): take every group no other live peer holds.
    pub(super) fn takeover_from(&mut self, pi: PeerId, why: &str) {
        if matches!(
            self.phase,
            Phase::Starting | Phase::BothStarting | Phase::RscRcvd(_) | Phase::Init
        ) {
            self.phase = Phase::Stable;
        }
        {
            let p = &mut self.peers[pi];
            p.hold = RscHold::None;
            p.running = None;
            p.stable = true;
        }
        let gis: Vec<GroupId> = self
            .group_ids()
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
        let mut fence = if matches!(self.peers[pi].fence, fencing::FenceState::Pending { .. }) {
            format!("; they start once {name} is fenced")
        } else {
            String::new()
        };
        if self.p.tiebreaker && !self.peers[pi].left {
            fence.push_str("; they start once the tie-breaker grants us the lease");
        }
        if !keys.is_empty() {
            self.notify(
                Level::Warn,
                Cause::Failover,
                format!("taking over group(s) {}", list(&keys)),
                format!("{why}; {policy}{fence}"),
            );
        }
        self.report_info = Some("mach_down".into());
        self.force_report = true;
    }

    pub(super) fn check_comm_up(&mut self) {
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
        let dead: Vec<PeerId> = self
            .peer_ids()
            .filter(|&i| !self.not_declared_dead(i))
            .collect();
        let dead_names: Vec<String> = dead.iter().map(|&i| self.peers[i].name.clone()).collect();
        self.notify(
            Level::Info,
            Cause::CommunicationUp,
            "communication up",
            format!("heard: {}; dead: {}", list(&heard), list(&dead_names)),
        );
        self.ipfail_join();
        let local = self.p.local.clone();
        if !self.uses_nice_failback() {
            self.phase = Phase::Stable;
            let own = self.groups_of(&local, RscHold::Local);
            if heard.is_empty() {
                let keys = self.want_groups(&own);
                self.notify(
                    Level::Info,
                    Cause::Acquire,
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
            self.phase = Phase::Starting;
        } else {
            self.send(Message::Starting);
            self.phase = Phase::Stable;
        }
        if heard.is_empty() {
            for &pi in &dead {
                self.tiebreak_dead_peer(pi);
                self.stonith_dead_peer(pi);
            }
            let all: Vec<GroupId> = self.group_ids().collect();
            let keys = self.want_groups(&all);
            for g in &mut self.groups {
                g.taken_over = keys.contains(&g.key) && g.preferred != self.p.local;
            }
            self.force_report = true;
            self.notify(
                Level::Warn,
                Cause::Failover,
                format!("acquiring all groups: {}", list(&keys)),
                format!(
                    "no peer heard within initdead ({}): {} declared dead",
                    secs(self.p.initdead),
                    list(&dead_names)
                ),
            );
        }
    }

    pub(super) fn on_local_link(&mut self, link: LinkId, up: bool) {
        let old = self.local_links.insert(link.clone(), up);
        if old != Some(up) {
            self.notify(
                if up { Level::Info } else { Level::Warn },
                Cause::Link,
                format!("local link {link} {}", if up { "up" } else { "down" }),
                "reported by the transport",
            );
        }
    }

    pub(super) fn on_shutdone(&mut self, pi: PeerId) {
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
            Cause::PeerShutdown,
            format!("node {name} shut down cleanly"),
            "shutdone received: it released all its groups",
        );
        self.cancel_standby_with(&name, "peer shut down");
        if self.comm_up && !self.shutting_down {
            self.tiebreak_dead_peer(pi);
            self.takeover_from(pi, &format!("{name} shut down"));
        }
    }
}

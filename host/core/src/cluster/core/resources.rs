//! Resource groups: reports, acquisition, start/stop results, reconciliation, split-brain settlement, failback, reload.

use super::*;

impl Cluster {
    pub(super) fn dispatch(&mut self, pi: PeerId, msg: Message) {
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
                    Cause::Fencing,
                    format!("{name} reports STONITH of {node}: {}", result.as_str()),
                    "stonith message",
                );
                // The peer declared us dead: heartbeat cancels its standby with us right
                // then and takes our groups. Waiting for its next step would hold ours
                // until the one-hour standby deadline and refuse every new request.
                if node == self.p.local {
                    self.cancel_standby_with(&name, &format!("{name} declared us dead"));
                }
            }
            Message::IpRequest { key } => self.on_ip_request(pi, key),
            Message::IpRequestResp {
                dest,
                key,
                weown,
                dest_generation,
            } => {
                if dest == self.p.local {
                    self.on_ip_response(pi, key, weown, dest_generation);
                }
            }
            m @ (Message::NumPingNodes { .. }
            | Message::YouAreDead { .. }
            | Message::AbortGiveup { .. }
            | Message::IpfailJoin) => self.on_ipfail_message(pi, m),
        }
    }

    pub(super) fn on_starting(&mut self, pi: PeerId) {
        if !self.uses_nice_failback() {
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
        self.cancel_standby_with(&name, "peer restarted its resource manager");
        let stable = match self.phase {
            Phase::Starting => {
                self.phase = Phase::BothStarting;
                false
            }
            Phase::BothStarting | Phase::RscRcvd(_) => false,
            Phase::Stable => self.locally_stable(),
            Phase::Init | Phase::Shutdown => return,
        };
        self.send_report(stable, None);
    }

    pub(super) fn send_report(&mut self, stable: bool, info: Option<String>) {
        let hold = self.wire_hold();
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

    pub(super) fn on_resource(
        &mut self,
        pi: PeerId,
        hold: RscHold,
        full: bool,
        stable: Option<bool>,
        info: Option<String>,
        running: Option<Vec<String>>,
    ) {
        if !self.uses_nice_failback() {
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
        match self.phase {
            Phase::Starting | Phase::BothStarting | Phase::RscRcvd(_) => {
                if peer_stable {
                    self.acquire_own(&format!(
                        "{name} is stable and holds {}{}",
                        hold.as_str(),
                        info.map(|i| format!(" ({i})")).unwrap_or_default()
                    ));
                } else if !matches!(self.phase, Phase::RscRcvd(_)) {
                    self.phase = Phase::RscRcvd(self.now.plus(RQSTDELAY));
                    self.notify(
                        Level::Info, Cause::Failover,
                        format!("{name} is starting too"),
                        format!(
                            "own groups will be acquired in {} (RQSTDELAY) unless {name} becomes stable first",
                            secs(RQSTDELAY)
                        ),
                    );
                }
            }
            Phase::Stable => {
                if peer_stable && !was_stable {
                    self.force_report = true;
                }
                // A peer that declared us dead (while we did not notice anything) took over
                // our groups: answer once per duplicated group with our own report so it can
                // see who runs what and release.
                let dup_ids: Vec<GroupId> = self
                    .group_ids()
                    .filter(|&gi| self.held_here(gi) && self.peer_runs(&self.peers[pi], gi))
                    .collect();
                let mut dups = BTreeSet::new();
                for gi in dup_ids {
                    // Whoever keeps it, neighbours may follow the peer's copy.
                    self.groups[gi].reannounce = true;
                    dups.insert(self.groups[gi].key.clone());
                }
                if dups.iter().any(|k| !self.dup_answered.contains(k)) {
                    // heartbeat 3.0.6 (no running list) hands foreign groups back only on
                    // an unstable -> stable step of our reports (PerformAutoFailback); its
                    // takeover already counts us stable, so a stable report alone leaves
                    // both nodes serving for good (chaos --heartbeat, seed 7: 20-60 s).
                    // The step is what our restart would have shown it.
                    if self.peers[pi].running.is_none()
                        && self.p.auto_failback == AutoFailback::On
                        && self.standby == Standby::Not
                    {
                        self.send_report(false, None);
                    }
                    self.force_report = true;
                }
                self.dup_answered = dups;
            }
            Phase::Init | Phase::Shutdown => {}
        }
    }

    /// heartbeat's req_our_resources(): take our own groups unless someone holds them.
    pub(super) fn acquire_own(&mut self, why: &str) {
        self.phase = Phase::Stable;
        let local = self.p.local.clone();
        let gis: Vec<GroupId> = self
            .groups_of(&local, RscHold::Local)
            .into_iter()
            .filter(|&gi| !self.held_by_live_peer(gi, None))
            .collect();
        let keys = self.want_groups(&gis);
        self.force_report = true;
        self.notify(
            Level::Info,
            Cause::Acquire,
            format!("initial resource acquisition: {}", list(&keys)),
            why.to_string(),
        );
    }

    pub(super) fn on_result(&mut self, key: &str, op: Op, ok: bool, detail: &str) {
        let Some(gi) = self.groups.iter().position(|g| g.key == key).map(GroupId) else {
            self.notify(
                Level::Warn,
                Cause::Protocol,
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
                    Cause::GroupStarted,
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
                let peer = if self.uses_nice_failback() && self.any_live_peer() {
                    "handing it to the peer once stopped"
                } else {
                    "no peer can take it"
                };
                self.notify(
                    Level::Crit,
                    Cause::GroupFailed,
                    format!("giving up group {key}: start failed"),
                    format!("{detail}; {peer}; retry here in {}", secs(FAILED_RETRY)),
                );
            }
            (Run::Stopping, Op::Stop) if ok => {
                let g = &mut self.groups[gi];
                g.run = Run::Stopped;
                g.reannounce = false;
                if !g.want {
                    g.taken_over = false;
                }
                g.stop_failures = 0;
                g.stop_retry_at = None;
                self.notify(
                    Level::Info,
                    Cause::GroupStopped,
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
                        Cause::GroupFailed,
                        format!("group {key} cannot be stopped after {n} attempts"),
                        format!(
                            "{detail}; it may still run here, so no other node will be given it; \
                             heartbeat would reboot this node now; manual intervention required"
                        ),
                    );
                } else if n < STOP_RETRY_MAX {
                    self.notify(
                        Level::Warn,
                        Cause::GroupFailed,
                        format!("stop of group {key} failed (attempt {n})"),
                        format!("{detail}; retrying in {}", secs(STOP_RETRY)),
                    );
                }
            }
            (run, op) => {
                self.notify(
                    Level::Warn,
                    Cause::Protocol,
                    format!("unexpected {op:?} result for {key} ignored"),
                    format!("group is {run:?}"),
                );
            }
        }
    }

    pub(super) fn on_reload(&mut self, params: ClusterParams) {
        if params.local != self.p.local {
            self.notify(
                Level::Crit,
                Cause::Reload,
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
        let old_ping = std::mem::replace(&mut self.p, params).ping;
        self.p.generation = generation;
        self.reload_ping(&old_ping);
        if self.comm_up && self.phase == Phase::Stable && !self.shutting_down {
            let local = self.p.local.clone();
            let gis: Vec<GroupId> = self
                .group_ids()
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
            Cause::Reload,
            "configuration reloaded",
            format!(
                "groups added: {}; removed: {}",
                list(&added),
                list(&removed)
            ),
        );
    }

    /// Everything that follows from the current state: resource operations, hand-shake steps,
    /// reports, failback and split-brain settlement. Idempotent.
    pub(super) fn progress(&mut self) {
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
                    Cause::Shutdown,
                    "all groups released; shutdone sent",
                    "graceful shutdown complete",
                );
                self.exited = true;
                self.out.push(Action::Exit);
            }
            return;
        }
        if self.uses_nice_failback() && self.phase == Phase::Stable {
            self.settle_duplicates();
            self.reannounce_released();
            self.reconcile();
            // the peer must see us stable before it gets an ask_resources from us
            self.report_if_changed();
            self.failure_push();
            self.auto_failback();
            self.start_pending();
        }
        if !self.uses_nice_failback() {
            self.legacy_answer();
        }
    }

    pub(super) fn reconcile(&mut self) {
        let now = self.now;
        for gi in self.group_ids() {
            let blocked = self.groups[gi].run == Run::Stopped
                && self.groups[gi].want
                && (self.peer_still_runs(gi)
                    || self.fence_blocks(gi).is_some()
                    || self.tiebreak_blocks(gi).is_some());
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

    /// After a split brain both nodes may run a group: the one that is not its preferred
    /// owner releases it once the preferred owner has reported running it.
    pub(super) fn settle_duplicates(&mut self) {
        let local = self.p.local.clone();
        for pi in self.peer_ids() {
            if !self.not_declared_dead(pi) || !self.peers[pi].reported || !self.peers[pi].stable {
                continue;
            }
            let pname = self.peers[pi].name.clone();
            for gi in self.group_ids() {
                if !self.groups[gi].want {
                    continue;
                }
                if !self.peer_runs(&self.peers[pi], gi) {
                    continue;
                }
                // A standby hand-off in progress moves groups itself; deciding who
                // keeps a duplicate waits for it.
                if self.standby != Standby::Not {
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
                            Level::Crit, Cause::SplitBrainResolved,
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

    /// A group both nodes ran that only we run now: neighbours that followed the peer's
    /// announcements are pointed back here. At once, whatever the peer's stability or
    /// standby state: its report (or `shutdone`) says its copy is going, and until we
    /// announce neighbours send to its MAC (chaos runs: 10 s without service when a
    /// takeover raced the heal; 4-10 s when heartbeat settled a split brain by
    /// restarting and we announced only when it was back).
    pub(super) fn reannounce_released(&mut self) {
        for gi in self.group_ids() {
            if !self.groups[gi].reannounce || self.groups[gi].run != Run::Running {
                continue;
            }
            if self.peers.iter().any(|p| self.peer_runs(p, gi)) {
                continue;
            }
            self.groups[gi].reannounce = false;
            let key = self.groups[gi].key.clone();
            self.out.push(Action::Announce(key.clone()));
            self.notify(
                Level::Info,
                Cause::SplitBrainResolved,
                format!("split brain settled: re-announcing {key}"),
                "the peer released its copy; neighbours that followed its announcements are pointed back here",
            );
        }
    }

    /// heartbeat runs `hb_standby` 30 s after a failed start; we hand the group's set to a
    /// stable peer as soon as the failed group is stopped (once per PUSH_MEMORY).
    pub(super) fn failure_push(&mut self) {
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
        let Some(gi) = target.map(GroupId) else {
            return;
        };
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
    pub(super) fn auto_failback(&mut self) {
        if self.p.auto_failback != AutoFailback::On {
            return;
        }
        if self.pending.is_some() || !self.locally_stable() {
            return;
        }
        let local = self.p.local.clone();
        // Only groups taken over from their home go back; a group that is here because an
        // operator put it here stays (the hand-shake moves the whole foreign set).
        let foreign_held: Vec<GroupId> = self
            .group_ids()
            .filter(|&gi| {
                let g = &self.groups[gi];
                g.preferred != local && g.taken_over && self.held_here(gi)
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

    pub(super) fn report_if_changed(&mut self) {
        if !self.comm_up || self.standby != Standby::Not {
            return;
        }
        let settled = self.all_settled();
        let cur = (self.wire_hold(), self.running_keys(), settled);
        if self.force_report || self.last_report.as_ref() != Some(&cur) {
            self.force_report = false;
            let info = self.report_info.take();
            self.send_report(settled, info);
        }
    }
}

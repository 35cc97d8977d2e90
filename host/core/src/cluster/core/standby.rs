//! Standby and takeover: operator commands, the three-step ask_resources hand-shake, graceful shutdown.

use super::*;

impl Cluster {
    pub(super) fn on_command(&mut self, c: Command) {
        match c {
            Command::Shutdown => self.begin_shutdown(),
            Command::Standby(_) | Command::Takeover(_) if !self.uses_nice_failback() => {
                self.notify(
                    Level::Warn,
                    Cause::Standby,
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
                        Cause::Standby,
                        format!("takeover {} needs no hand-off", which.as_str()),
                        "no live peer: every group is already ours",
                    );
                    return;
                }
                self.send(Message::HbTakeover { which });
                self.notify(
                    Level::Info,
                    Cause::Standby,
                    format!("asked peer to hand over {} groups", which.as_str()),
                    "operator: takeover",
                );
            }
        }
    }

    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.phase = Phase::Shutdown;
        self.pending = None;
        self.standby = Standby::Not;
        let keys: Vec<String> = self.groups.iter().map(|g| g.key.clone()).collect();
        for g in &mut self.groups {
            g.want = false;
            if g.run == Run::Stopped {
                g.stop_anyway = true;
            }
        }
        if self.uses_nice_failback() {
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
            Cause::Shutdown,
            "graceful shutdown: releasing all groups",
            format!(
                "operator request; stopping {} then sending shutdone",
                list(&keys)
            ),
        );
    }

    pub(super) fn cancel_standby(&mut self, why: &str) {
        if self.standby != Standby::Not {
            let s = format!("{:?}", self.standby);
            self.standby = Standby::Not;
            self.notify(
                Level::Warn,
                Cause::Standby,
                "cancelling pending standby operation",
                format!("{why} ({s})"),
            );
        }
    }

    /// Drops a standby hand-off under way with `peer` (it died, left, restarted or
    /// declared us dead): it will not take its next step.
    pub(super) fn cancel_standby_with(&mut self, peer: &str, why: &str) {
        if let Standby::Giving { peer: p, .. } | Standby::Taking { from: p, .. } = &self.standby {
            if p == peer {
                self.cancel_standby(why);
            }
        }
    }

    pub(super) fn on_ask(&mut self, pi: PeerId, set: RscHold, step: StandbyStep) {
        let name = self.peers[pi].name.clone();
        if !self.uses_nice_failback() {
            self.notify(
                Level::Warn,
                Cause::Standby,
                format!("standby message from {name} ignored"),
                "standby mode only implemented when nice_failback is on (auto_failback on/off)",
            );
            return;
        }
        if self.phase == Phase::Shutdown {
            return;
        }
        let now = self.now;
        match (self.standby.clone(), step) {
            (Standby::Not, StandbyStep::Me) => {
                if !self.peers[pi].stable {
                    self.notify(
                        Level::Warn,
                        Cause::Standby,
                        format!("standby request [{}] from {name} ignored", set.as_str()),
                        "other side is in flux",
                    );
                    return;
                }
                if !self.locally_stable() {
                    self.notify(
                        Level::Warn,
                        Cause::Standby,
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
                    Cause::Standby,
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
                    Cause::Standby,
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
                    Cause::Standby,
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
                    Cause::Standby,
                    format!("standby: acquiring {} from {name}", list(&keys)),
                    format!("{name} released its {} groups", their_set.as_str()),
                );
            }
            (state, step) => {
                self.notify(
                    Level::Warn,
                    Cause::Standby,
                    format!(
                        "ignored standby message '{step:?}' [{}] from {name}",
                        set.as_str()
                    ),
                    format!("standby state {state:?}"),
                );
            }
        }
    }

    pub(super) fn on_hb_takeover(&mut self, pi: PeerId, which: Which) {
        let name = self.peers[pi].name.clone();
        if !self.uses_nice_failback() {
            self.notify(
                Level::Warn,
                Cause::Standby,
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

    pub(super) fn request_standby(&mut self, set: RscHold, reason: String) {
        if self.shutting_down {
            return;
        }
        self.notify(
            Level::Info,
            Cause::Standby,
            format!("standby [{}] requested", set.as_str()),
            reason.clone(),
        );
        self.pending = Some(Pending {
            set,
            reason,
            expires: self.now.plus(PENDING_WINDOW),
        });
    }

    pub(super) fn start_pending(&mut self) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        if self.now >= p.expires {
            self.pending = None;
            self.notify(
                Level::Warn,
                Cause::Standby,
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
        let Some(pi) = self
            .peer_ids()
            .find(|&i| self.not_declared_dead(i) && self.peers[i].stable)
        else {
            if !self.any_live_peer() {
                self.pending = None;
                self.notify(
                    Level::Warn,
                    Cause::Standby,
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
            Cause::Standby,
            format!("going standby [{}]: asking {peer}", p.set.as_str()),
            p.reason,
        );
    }

    pub(super) fn standby_progress(&mut self) {
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
                        Cause::Standby,
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
                        Cause::Standby,
                        format!("standby takeover complete: running {}", list(&keys)),
                        format!("acquired {from}'s {} groups", set.as_str()),
                    );
                }
            }
            _ => {}
        }
    }
}

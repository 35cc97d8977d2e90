//! The read-only status snapshot.

use super::*;

impl Cluster {
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
            fencing: FenceView::None,
            tiebreak: TiebreakView::None,
        }];
        for (pi, p) in self.peer_ids().zip(&self.peers) {
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
                fencing: Self::fence_view(p),
                tiebreak: self.tiebreak_view(pi),
            });
        }
        let groups = self
            .group_ids()
            .map(|gi| {
                let g = &self.groups[gi];
                let mut st = g.run.as_str().to_string();
                if g.failed.is_some() {
                    st.push_str(", failed");
                }
                if g.want && g.run == Run::Stopped {
                    if let Some(peer) = self.fence_blocks(gi) {
                        st.push_str(&format!(", waiting for {peer} to be fenced"));
                    }
                    if let Some(why) = self.tiebreak_blocks(gi) {
                        st.push_str(&format!(", {why}"));
                    }
                }
                let owner = if g.run != Run::Stopped || g.want {
                    Some(self.p.local.clone())
                } else {
                    self.peers
                        .iter()
                        .find(|p| p.status != NodeStatus::Dead && self.peer_claims(p, gi))
                        .map(|p| p.name.clone())
                };
                GroupView {
                    key: g.key.clone(),
                    preferred: g.preferred.clone(),
                    run: g.run,
                    local_state: st,
                    wanted_here: g.want,
                    owner,
                }
            })
            .collect();
        let rscstatus = if self.locally_stable() {
            self.wire_hold().as_str().to_string()
        } else {
            "transition".to_string()
        };
        ClusterStatus {
            local: self.p.local.clone(),
            now: self.now,
            comm_up: self.comm_up,
            resource_state: format!("{:?}", self.phase),
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
            ping_nodes: self.ping.view(),
            ipfail: self.ipfail_view(),
        }
    }
}

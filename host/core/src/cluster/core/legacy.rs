//! The legacy `ip-request` protocol (auto_failback legacy).

use super::*;

impl Cluster {
    pub(super) fn on_ip_request(&mut self, pi: PeerId, key: String) {
        let name = self.peers[pi].name.clone();
        if self.uses_nice_failback() {
            return;
        }
        let Some(gi) = self.groups.iter().position(|g| g.key == key).map(GroupId) else {
            return;
        };
        let generation = self.peers[pi].generation;
        if self.held_here(gi) {
            self.groups[gi].want = false;
            self.legacy_resp
                .insert(key.clone(), (name.clone(), generation));
            self.notify(
                Level::Info,
                Cause::Release,
                format!("releasing {key} for {name}"),
                "legacy ip-request: the preferred node asks for its group",
            );
        } else {
            self.send(Message::IpRequestResp {
                dest: name,
                key,
                weown: false,
                dest_generation: generation,
            });
        }
    }

    pub(super) fn on_ip_response(
        &mut self,
        pi: PeerId,
        key: String,
        weown: bool,
        dest_generation: Option<u64>,
    ) {
        let name = self.peers[pi].name.clone();
        if self.uses_nice_failback() || self.shutting_down {
            return;
        }
        if dest_generation.is_some_and(|g| g != self.p.generation) {
            self.notify(
                Level::Info,
                Cause::Protocol,
                format!("stale ip-request-resp for {key} from {name} ignored"),
                format!(
                    "it answers this node's previous start (generation {}), not this one ({})",
                    dest_generation.unwrap_or_default(),
                    self.p.generation
                ),
            );
            return;
        }
        let Some(gi) = self.groups.iter().position(|g| g.key == key).map(GroupId) else {
            return;
        };
        self.legacy_req.remove(&key);
        self.groups[gi].retry_at = None;
        let keys = self.want_groups(&[gi]);
        if !keys.is_empty() {
            self.notify(
                Level::Info,
                Cause::Acquire,
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

    pub(super) fn legacy_answer(&mut self) {
        let ready: Vec<(String, (String, Option<u64>))> = self
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
        for (key, (dest, dest_generation)) in ready {
            self.legacy_resp.remove(&key);
            self.send(Message::IpRequestResp {
                dest,
                key,
                weown: true,
                dest_generation,
            });
        }
    }
}

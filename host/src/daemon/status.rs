//! `wasmbeat status`: the typed report the daemon sends over the control
//! socket (also what `--json` prints) and its rendering for humans.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Shell;
use crate::cluster::{ClusterStatus, Op};
use crate::resources::GroupReport;
use crate::wire::SessionStats;

/// The daemon's state: the engine's cluster view plus what the shell knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Local node name.
    pub node: String,
    /// This start's generation (`hg`).
    pub generation: u64,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Membership, links and groups: the one liveness model (the core's).
    pub cluster: ClusterStatus,
    /// The wire session's per-peer sequence state.
    pub peers: Vec<SessionPeer>,
    /// Packets accepted and dropped by reason.
    pub packets: PacketCounts,
    /// Reliable-delivery counters.
    pub session: SessionStats,
    /// Whether heartbeat's flow control is still on.
    pub flow_control: bool,
    /// The last start/stop of each group, with per-resource steps.
    pub last_group_operations: Vec<GroupOperation>,
    /// What heartbeat's tools (`cl_status`) show besides the cluster view.
    #[serde(default)]
    pub heartbeat: HeartbeatFacts,
    /// ha.cf's `watchdog` device, when one is driven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<super::watchdog::WatchdogStatus>,
    /// Each medium's I/O errors since start, in ha.cf order.
    #[serde(default)]
    pub media: Vec<MediumIo>,
}

/// One medium's failed sends and reads since the daemon started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediumIo {
    /// The medium as ha.cf names it (`bcast eth0`).
    pub link: String,
    /// Packets it failed to send.
    pub send_errors: u64,
    /// Reads from it that failed.
    pub receive_errors: u64,
}

/// The configuration facts heartbeat's client API answers, as the daemon
/// runs them (after a reload: the reloaded ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatFacts {
    /// The cluster's nodes in ha.cf order (heartbeat's node table order).
    pub nodes: Vec<String>,
    /// The media in ha.cf order: the label the cluster view uses for a
    /// link and the name heartbeat shows for it (`cl_status listhblinks`).
    pub links: Vec<LinkName>,
    /// heartbeat's parameter table (`cl_status hbparameter`), plus
    /// `hbversion` (this daemon's version).
    pub parameters: BTreeMap<String, String>,
}

/// One medium's two names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkName {
    /// The link's label in [`ClusterStatus`] (`bcast eth0`).
    pub label: String,
    /// heartbeat's name for it (`eth0`).
    pub name: String,
}

/// What `hbparameter -p hbversion` answers: wasmbeat's version, in
/// heartbeat's `VERSION (ORIGIN)` form.
pub fn hbversion() -> String {
    format!("{} (wasmbeat)", env!("CARGO_PKG_VERSION"))
}

impl HeartbeatFacts {
    fn of(cfg: &crate::config::Config) -> HeartbeatFacts {
        let mut parameters = cfg.ha.parameters();
        // heartbeat answers `3.0.6 (node: <changeset>)`.
        parameters.insert("hbversion".into(), hbversion());
        HeartbeatFacts {
            nodes: cfg.ha.nodes.clone(),
            links: cfg
                .ha
                .media
                .iter()
                .map(|m| LinkName {
                    label: crate::transport::medium_label(m),
                    name: crate::transport::link_name(m),
                })
                .collect(),
            parameters,
        }
    }
}

/// One peer as the wire session sees it (liveness is in `cluster.nodes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPeer {
    /// Node name.
    pub name: String,
    /// Its generation as last seen on the wire.
    pub generation: u64,
    /// Last in-order seq received from it.
    pub last_seq: u64,
    /// Highest of our seqs it acknowledged.
    pub acked_seq: u64,
}

/// Packet counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketCounts {
    /// Messages accepted.
    pub accepted: u64,
    /// Drops by reason name (`auth_failed`, `replay`, `duplicate`, ...).
    pub dropped: BTreeMap<String, u64>,
}

/// The last operation on one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupOperation {
    /// Group key.
    pub group: String,
    /// Start or stop.
    pub op: Op,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took, in ms.
    pub elapsed_ms: f64,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// Per-resource steps in one line.
    pub summary: String,
}

impl GroupOperation {
    fn of(group: &str, op: Op, r: &GroupReport) -> GroupOperation {
        GroupOperation {
            group: group.to_string(),
            op,
            ok: r.ok,
            elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
            failure: r.failure.clone(),
            summary: r.summary(),
        }
    }
}

/// The daemon's current state.
pub(super) fn snapshot(shell: &Shell) -> StatusReport {
    let counters = shell.node.drop_counters();
    StatusReport {
        node: shell.cfg.local_node.clone(),
        generation: shell.node.generation(),
        uptime_s: shell.started.elapsed().as_secs_f64(),
        cluster: shell.node.cluster_status(),
        peers: shell
            .node
            .session_peers()
            .into_iter()
            .map(|p| SessionPeer {
                name: p.name,
                generation: p.generation,
                last_seq: p.last_seq,
                acked_seq: p.acked,
            })
            .collect(),
        packets: PacketCounts {
            accepted: counters.accepted(),
            dropped: counters
                .snapshot()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
        session: shell.node.session_stats(),
        flow_control: shell.node.flow_control(),
        last_group_operations: shell
            .reports
            .iter()
            .map(|(key, (op, r))| GroupOperation::of(key, *op, r))
            .collect(),
        heartbeat: HeartbeatFacts::of(&shell.cfg),
        watchdog: shell
            .watchdog
            .as_ref()
            .map(|w| w.status(std::time::Instant::now())),
        media: shell
            .media_errors
            .iter()
            .map(|e| MediumIo {
                link: e.label().to_string(),
                send_errors: e.send_errors(),
                receive_errors: e.receive_errors(),
            })
            .collect(),
    }
}

/// The cluster in one line, for systemd's `STATUS=` (what `systemctl
/// status` shows): what this node holds, each peer's state, and the groups
/// running here.
pub fn one_line(c: &crate::cluster::ClusterStatus) -> String {
    let peers: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| !n.local)
        .map(|n| format!("{} {}", n.name, n.status.as_str()))
        .collect();
    let running = c
        .groups
        .iter()
        .filter(|g| g.run == crate::cluster::GroupRun::Running)
        .count();
    format!(
        "{} holds {}; {} of {} group(s) running here; peers: {}",
        c.local,
        c.rscstatus,
        running,
        c.groups.len(),
        if peers.is_empty() {
            "none".to_string()
        } else {
            peers.join(", ")
        }
    )
}

/// A peer's fencing state for `status` (nothing when there is none).
fn fencing_words(f: &crate::cluster::FenceView, now: crate::cluster::Millis) -> String {
    use crate::cluster::FenceView;
    match f {
        FenceView::None => String::new(),
        FenceView::Pending {
            since,
            attempts,
            last_error,
        } => format!(
            "; fencing: pending for {:.1} s, {attempts} attempt(s){}",
            now.since(*since).as_secs_f64(),
            last_error
                .as_ref()
                .map(|e| format!(", last: {e}"))
                .unwrap_or_default()
        ),
        FenceView::Fenced { at, by } => format!(
            "; fencing: fenced {:.1} s ago ({by})",
            now.since(*at).as_secs_f64()
        ),
    }
}

/// A peer's tie-break lease for `status` (nothing when there is none).
fn tiebreak_words(t: &crate::cluster::TiebreakView, now: crate::cluster::Millis) -> String {
    use crate::cluster::TiebreakView;
    let ago = |t: &crate::cluster::Millis| now.since(*t).as_secs_f64();
    match t {
        TiebreakView::None => String::new(),
        TiebreakView::Asking { since } => {
            format!(
                "; tie-breaker: asking for the lease (dead {:.1} s)",
                ago(since)
            )
        }
        TiebreakView::Granted { since, until } => format!(
            "; tie-breaker: lease ours for {:.1} s more (dead {:.1} s)",
            until.since(now).as_secs_f64(),
            ago(since)
        ),
        TiebreakView::Refused { since, detail } => format!(
            "; tie-breaker: refused, it holds the lease (dead {:.1} s; {detail})",
            ago(since)
        ),
        TiebreakView::Unreachable {
            since,
            detail,
            attempts,
        } => format!(
            "; tie-breaker: unreachable, {attempts} exchange(s) (dead {:.1} s; {detail})",
            ago(since)
        ),
    }
}

/// Render a report for an operator.
pub fn render(v: &StatusReport) -> String {
    let mut out = String::new();
    let c = &v.cluster;
    let _ = writeln!(
        out,
        "node {} (generation {}), up {:.1} s; communication {}; holds {}",
        v.node,
        v.generation,
        v.uptime_s,
        if c.comm_up { "up" } else { "not up yet" },
        c.rscstatus
    );
    let _ = writeln!(out, "\nnodes:");
    for n in &c.nodes {
        let links: Vec<String> = n
            .links
            .iter()
            .map(|l| format!("{} {}", l.link, if l.up { "up" } else { "dead" }))
            .collect();
        let _ = writeln!(
            out,
            "  {:<12} {:<7} {}holds {}{}{}{}",
            n.name,
            n.status.as_str(),
            if n.local { "(this node) " } else { "" },
            n.holds.as_str(),
            if links.is_empty() {
                String::new()
            } else {
                format!("; links: {}", links.join(", "))
            },
            fencing_words(&n.fencing, c.now),
            tiebreak_words(&n.tiebreak, c.now)
        );
    }
    for p in &c.ping_nodes {
        let members = if p.members.len() == 1 && p.members[0] == p.name {
            String::new()
        } else {
            format!(" ({})", p.members.join(" "))
        };
        let _ = writeln!(
            out,
            "  {:<12} {:<7} ping node{members}; last echo reply {}{}",
            p.name,
            p.status.as_str(),
            p.last_reply
                .map_or("never".to_string(), |t| format!("at {t}")),
            if p.status == wasmbeat_core::ping::PingStatus::Ping && !p.counted {
                "; not counted until it has answered for deadping"
            } else {
                ""
            }
        );
    }
    if let Some(f) = &c.ipfail {
        let _ = writeln!(
            out,
            "  ipfail: we reach {} of {} ping node(s), peer reported {}{}",
            f.mine,
            c.ping_nodes.len(),
            f.peer.map_or("nothing yet".to_string(), |n| n.to_string()),
            f.pending.map_or(String::new(), |(set, at)| format!(
                "; giving {} groups away at {at}",
                set.as_str()
            ))
        );
    }
    let _ = writeln!(out, "\ngroups:");
    for g in &c.groups {
        let _ = writeln!(
            out,
            "  {:<32} preferred {:<10} owner {:<10} here: {}",
            g.key,
            g.preferred,
            g.owner.as_deref().unwrap_or("-"),
            g.local_state
        );
    }
    for r in &v.last_group_operations {
        let _ = writeln!(
            out,
            "    last {} of {}: {} ({:.1} ms) {}",
            match r.op {
                Op::Start => "start",
                Op::Stop => "stop",
            },
            r.group,
            if r.ok { "ok" } else { "FAILED" },
            r.elapsed_ms,
            r.summary
        );
    }
    if let Some(t) = &c.last_transition {
        let _ = writeln!(
            out,
            "\nlast transition at {}: {}: {}",
            t.at, t.change.what, t.change.why
        );
    }
    if let Some(w) = &v.watchdog {
        let _ = writeln!(
            out,
            "\nwatchdog {}: {}; last pet {:.1} s ago; {} pet(s), {} failed",
            w.device,
            w.timeout_s.map_or(
                "the device's own timeout (no timeout ioctls)".to_string(),
                |t| format!("timeout {t} s")
            ),
            w.last_pet_age_s,
            w.pets,
            w.failures
        );
    }
    let rejected: u64 = v
        .packets
        .dropped
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "duplicate" | "own_message"))
        .map(|(_, n)| n)
        .sum();
    let _ = writeln!(
        out,
        "\npackets: {} accepted, {} rejected (bad auth, malformed, replayed, ...)",
        v.packets.accepted, rejected
    );
    let media: Vec<String> = v
        .media
        .iter()
        .map(|m| {
            format!(
                "{} {} send / {} receive errors",
                m.link, m.send_errors, m.receive_errors
            )
        })
        .collect();
    if !media.is_empty() {
        let _ = writeln!(out, "media: {}", media.join("; "));
    }
    out
}

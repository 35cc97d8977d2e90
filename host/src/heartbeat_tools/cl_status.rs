//! `cl_status`: heartbeat 3.0.6's cluster status tool (`tools/cl_status.c`),
//! answered from the daemon's status report.
//!
//! Output lines, `-m` sentences and exit codes are heartbeat's: 0 ok,
//! 1 a "normal" failure (node or link dead, daemon stopped, unknown
//! parameter), 11 a parameter error, 12 timeout, 13 unknown error.
//! Messages heartbeat logs through `cl_log` go to stderr as
//! `cl_status: ERROR: ...` (heartbeat adds its pid and a timestamp).
//!
//! Every fact comes from the report: node and link liveness from the
//! engine's cluster view, link names and the parameter table from the
//! configuration the daemon runs ([`HeartbeatFacts`]).

use std::fmt::Write as _;

use super::{Output, QueryError};
use crate::cluster::NodeView;
use crate::daemon::status::{HeartbeatFacts, StatusReport};

/// Success.
pub const OK: u8 = 0;
/// A "normal" failure: node/link dead, heartbeat stopped, parameter unset.
pub const NORMAL_FAIL: u8 = 1;
/// Bad sub-command, options or arguments.
pub const PARAMETER_ERROR: u8 = 11;
/// The daemon did not answer within the time limit.
pub const TIMEOUT: u8 = 12;
/// Any other error.
pub const UNKNOWN_ERROR: u8 = 13;

/// heartbeat's help screen (`cl_status`, `cl_status -h`), verbatim.
pub const HELP: &str = "Usage: cl_status <sub-command> [<options>] [<parameters>]\n\
\n\
Sub-commands:\n\
clientstatus <node-name> <client-id> [<timeout>]\n\
\tShow the status of heartbeat clients.\n\
hblinkstatus <node-name> <link-name>\n\
\tShow the status of a heartbeat link\n\
hbstatus\n\
\tIndicate if heartbeat is running on the local system.\n\
\tOptions:\n\
\t\t-v\tverbose: also add \"listnodes -v\" output\n\
listnodes [<option>]\n\
\tList the nodes in the cluster.\n\
\tOptions:\n\
\t\t-p\tlist only 'ping' type nodes\n\
\t\t-n\tlist only 'normal' type nodes\n\
\t\t-v\tverbose: also list type and status,\n\
\t\t\tthen add \"listhblinks -v\" output\n\
listhblinks <node-name>\n\
\tList the network interfaces used as hearbeat links.\n\
\tOptions:\n\
\t\t-v\tverbose: list link status as well\n\
nodestatus <node-name>\n\
\tList the node status.\n\
nodeweight <node-name>\n\
\tList the node weight.\n\
nodesite <node-name>\n\
\tList the node site.\n\
nodetype <node-name>\n\
\tList the nodes of a given type.\n\
rscstatus\n\
\tShow the status of cluster resources.\n\
hbparameter -p <parameter-name>\n\
\tRetrieve the value of a cluster parameter.\n\
\tAs for the valid parameter names, please refer to the man page.\n";

/// heartbeat's default node weight (no `hb_setweight` support).
const DEFAULT_WEIGHT: u32 = 100;

/// A sub-command and the options heartbeat's getopt accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `hbstatus [-m] [-v]`.
    HbStatus,
    /// `listnodes [-m] [-p] [-n] [-v]`.
    ListNodes,
    /// `nodestatus [-m] NODE`.
    NodeStatus,
    /// `nodeweight [-m] NODE`.
    NodeWeight,
    /// `nodesite [-m] NODE`.
    NodeSite,
    /// `nodetype [-m] NODE`.
    NodeType,
    /// `listhblinks [-m] [-v] NODE`.
    ListHbLinks,
    /// `hblinkstatus [-m] NODE LINK`.
    HbLinkStatus,
    /// `clientstatus NODE CLIENT [TIMEOUT]` (no API clients in wasmbeat).
    ClientStatus,
    /// `rscstatus [-m]`.
    RscStatus,
    /// `hbparameter [-m] -p NAME`.
    HbParameter,
}

impl Sub {
    /// The sub-command spelled `name`.
    pub fn from_name(name: &str) -> Option<Sub> {
        Some(match name {
            "hbstatus" => Sub::HbStatus,
            "listnodes" => Sub::ListNodes,
            "nodestatus" => Sub::NodeStatus,
            "nodeweight" => Sub::NodeWeight,
            "nodesite" => Sub::NodeSite,
            "nodetype" => Sub::NodeType,
            "listhblinks" => Sub::ListHbLinks,
            "hblinkstatus" => Sub::HbLinkStatus,
            "clientstatus" => Sub::ClientStatus,
            "rscstatus" => Sub::RscStatus,
            "hbparameter" => Sub::HbParameter,
            _ => return None,
        })
    }

    /// heartbeat's getopt option string for it.
    fn optstr(self) -> &'static str {
        match self {
            Sub::HbStatus => "mv",
            Sub::ListNodes => "mpnv",
            Sub::ListHbLinks => "mv",
            Sub::HbParameter => "mp:",
            _ => "m",
        }
    }
}

/// Options and operands after the sub-command, as GNU getopt (which
/// permutes) leaves them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Option letters given, in order (`p` of hbparameter excluded).
    pub flags: Vec<char>,
    /// hbparameter's `-p` value (the last one).
    pub param: Option<String>,
    /// Operands (node, link names).
    pub operands: Vec<String>,
    /// getopt's complaints, one line each, for stderr.
    pub complaints: Vec<String>,
    /// Whether an option outside the sub-command's set was given.
    pub bad_option: bool,
}

impl Args {
    fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
}

/// Parse the arguments of `sub` (`args` excludes the sub-command) the way
/// heartbeat's `getopt(argc-1, argv+1, optstr)` does: options anywhere,
/// grouped letters, `--` ends options.
pub fn parse_args(sub: &str, optstr: &str, args: &[String]) -> Args {
    let mut out = Args::default();
    let takes_value = |c: char| optstr.contains(&format!("{c}:"));
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.operands.extend(args[i..].iter().cloned());
            break;
        }
        let Some(letters) = a.strip_prefix('-').filter(|l| !l.is_empty()) else {
            out.operands.push(a.clone());
            continue;
        };
        for (k, c) in letters.char_indices() {
            if !optstr.contains(c) || c == ':' {
                out.complaints
                    .push(format!("{sub}: invalid option -- '{c}'"));
                out.bad_option = true;
            } else if takes_value(c) {
                let rest = &letters[k + c.len_utf8()..];
                let value = if !rest.is_empty() {
                    Some(rest.to_string())
                } else if i < args.len() {
                    i += 1;
                    Some(args[i - 1].clone())
                } else {
                    out.complaints
                        .push(format!("{sub}: option requires an argument -- '{c}'"));
                    out.bad_option = true;
                    None
                };
                if value.is_some() {
                    out.param = value;
                }
                break;
            } else {
                out.flags.push(c);
            }
        }
    }
    out
}

/// The facts one answer needs, borrowed from the report.
pub struct View<'a> {
    report: &'a StatusReport,
    facts: &'a HeartbeatFacts,
}

impl<'a> View<'a> {
    /// A view of `report`.
    pub fn new(report: &'a StatusReport) -> View<'a> {
        View {
            report,
            facts: &report.heartbeat,
        }
    }

    /// Node names as heartbeat's tools list them: the reverse of ha.cf
    /// order (its client library prepends each node of the daemon's
    /// answer to its list, `client_lib.c` `hb_api_nodelist`).
    fn node_names(&self) -> Vec<&'a str> {
        self.facts.nodes.iter().rev().map(String::as_str).collect()
    }

    /// Ping node names, listed the same way (reverse of ha.cf order).
    fn ping_names(&self) -> Vec<&'a str> {
        let pings = &self.report.cluster.ping_nodes;
        pings.iter().rev().map(|p| p.name.as_str()).collect()
    }

    fn ping_node(&self, name: &str) -> Option<&'a wasmbeat_core::ping::PingView> {
        let pings = &self.report.cluster.ping_nodes;
        pings.iter().find(|p| p.name == name)
    }

    /// heartbeat's node type: `normal`, or `ping` for ping pseudo-nodes.
    fn node_type(&self, name: &str) -> &'static str {
        if self.node(name).is_none() && self.ping_node(name).is_some() {
            "ping"
        } else {
            "normal"
        }
    }

    fn node(&self, name: &str) -> Option<&'a NodeView> {
        self.report.cluster.nodes.iter().find(|n| n.name == name)
    }

    /// heartbeat's status word for a node.
    fn node_status(&self, name: &str) -> Option<&'static str> {
        self.node(name)
            .map(|n| n.status.as_str())
            .or_else(|| self.ping_node(name).map(|p| p.status.as_str()))
    }

    /// The link names of a node (every normal node has every medium), as
    /// heartbeat lists them: the reverse of ha.cf order (its client
    /// library prepends here too, `get_iflist`).
    fn links(&self, node: &str) -> Option<Vec<&'a str>> {
        self.node(node)?;
        Some(
            self.facts
                .links
                .iter()
                .rev()
                .map(|l| l.name.as_str())
                .collect(),
        )
    }

    /// `up` or `dead` for `node`'s link named `link`. A peer's link is up
    /// while the engine heard it on that medium within its dead time; the
    /// local node's link is up unless the engine was told the medium failed.
    fn link_status(&self, node: &str, link: &str) -> Option<&'static str> {
        let n = self.node(node)?;
        let label = &self.facts.links.iter().find(|l| l.name == link)?.label;
        let up = if n.local {
            self.report
                .cluster
                .local_links
                .iter()
                .find(|(l, _)| &l.0 == label)
                .is_none_or(|(_, up)| *up)
        } else {
            n.links.iter().any(|l| &l.link.0 == label && l.up)
        };
        Some(if up { "up" } else { "dead" })
    }
}

fn log(out: &mut Output, msg: &str) {
    let _ = writeln!(out.stderr, "cl_status: ERROR: {msg}");
}

fn done(mut out: Output, code: u8) -> Output {
    out.code = code;
    out
}

/// Run `cl_status ARGS` (without the program name), asking `query` for the
/// daemon's report when the sub-command needs it.
pub fn run(args: &[String], query: impl FnOnce() -> Result<StatusReport, QueryError>) -> Output {
    let mut out = Output::default();
    let Some(first) = args.first() else {
        out.stdout = HELP.into();
        return out;
    };
    if args.len() == 1 && first == "-h" {
        out.stdout = HELP.into();
        return out;
    }
    let Some(sub) = Sub::from_name(first) else {
        log(&mut out, &format!("{first}: invalid sub-command."));
        return done(out, PARAMETER_ERROR);
    };
    let parsed = parse_args(first, sub.optstr(), &args[1..]);
    let report = query();
    answer(sub, &parsed, report.as_ref())
}

/// The answer to one sub-command given the daemon's report (or why there
/// is none): pure, so every line and exit code is unit-tested.
pub fn answer(sub: Sub, args: &Args, report: Result<&StatusReport, &QueryError>) -> Output {
    let mut out = Output::default();
    for c in &args.complaints {
        let _ = writeln!(out.stderr, "{c}");
    }
    let human = args.has('m');
    let report = match report {
        Ok(r) => r,
        Err(QueryError::Timeout(_)) => return done(out, TIMEOUT),
        Err(e) if sub == Sub::HbStatus => {
            let running = matches!(e, QueryError::Refused(_));
            out.stdout = if running {
                "Heartbeat is apparently running on this machine, but refuses my connection\n"
            } else {
                "Heartbeat is stopped on this machine.\n"
            }
            .into();
            if args.has('v') {
                let _ = writeln!(out.stdout, "({e})");
            }
            return done(out, if running { OK } else { NORMAL_FAIL });
        }
        Err(e) => {
            log(&mut out, "Cannot signon with heartbeat");
            log(&mut out, &format!("REASON: {e}"));
            return done(out, NORMAL_FAIL);
        }
    };
    let view = View::new(report);
    // Sub-commands with a default case in their getopt loop refuse unknown
    // options; hbstatus ignores them.
    if args.bad_option && sub != Sub::HbStatus {
        return done(out, PARAMETER_ERROR);
    }
    let operand = |i: usize| args.operands.get(i).map(String::as_str);
    match sub {
        Sub::HbStatus => {
            if !args.has('v') {
                out.stdout = "Heartbeat is running on this machine.\n".into();
                return out;
            }
            let version = report.heartbeat.parameters.get("hbversion");
            if human {
                match version {
                    Some(v) => {
                        let _ = writeln!(out.stdout, "Heartbeat version {v}");
                    }
                    None => out
                        .stdout
                        .push_str("Heartbeat is running on this machine.\n"),
                }
                out.stdout
                    .push_str("Resources controlled by \"haresources\"\n");
            } else {
                let _ = writeln!(
                    out.stdout,
                    "version:\t{}",
                    version.map(String::as_str).unwrap_or("unknown")
                );
                out.stdout.push_str("managed by:\t\"haresources\"\n");
            }
            list_nodes(&mut out, &view, human, (false, false), true);
            out
        }
        Sub::ListNodes => {
            let code = list_nodes(
                &mut out,
                &view,
                human,
                (args.has('n'), args.has('p')),
                args.has('v'),
            );
            done(out, code)
        }
        Sub::NodeStatus | Sub::NodeWeight | Sub::NodeSite | Sub::NodeType => {
            let Some(node) = operand(0) else {
                out.stderr.push_str(match sub {
                    Sub::NodeType => "No enough parameter.\n",
                    _ => "Not enough parameters.\n",
                });
                return done(out, PARAMETER_ERROR);
            };
            let Some(status) = view.node_status(node) else {
                out.stderr.push_str(match sub {
                    Sub::NodeWeight => "Error. Maybe due to incorrect node name.\n",
                    _ => "Error. May be due to incorrect node name\n",
                });
                return done(out, PARAMETER_ERROR);
            };
            let line = match (sub, human) {
                (Sub::NodeStatus, false) => status.to_string(),
                (Sub::NodeStatus, true) => format!("The cluster node {node} is {status}"),
                (Sub::NodeWeight, false) => DEFAULT_WEIGHT.to_string(),
                (Sub::NodeWeight, true) => {
                    format!("The weight of the cluster node {node} is {DEFAULT_WEIGHT}")
                }
                (Sub::NodeSite, false) => String::new(),
                (Sub::NodeSite, true) => format!("The site of the cluster node {node} is "),
                (_, false) => view.node_type(node).to_string(),
                (_, true) => format!("The node {node}'s type: {}", view.node_type(node)),
            };
            let _ = writeln!(out.stdout, "{line}");
            let code = match sub {
                Sub::NodeStatus => nodestatus_code(status),
                _ => OK,
            };
            done(out, code)
        }
        Sub::ListHbLinks => {
            let Some(node) = operand(0) else {
                out.stderr.push_str("No enough parameter.\n");
                return done(out, PARAMETER_ERROR);
            };
            let code = list_links(&mut out, &view, node, human, args.has('v'));
            done(out, code)
        }
        Sub::HbLinkStatus => {
            let (Some(node), Some(link)) = (operand(0), operand(1)) else {
                out.stderr.push_str("No enough parameter.\n");
                return done(out, PARAMETER_ERROR);
            };
            let Some(status) = view.link_status(node, link) else {
                log(&mut out, "Cannot get heartbeat link status");
                log(&mut out, "REASON: no such node or link");
                return done(out, UNKNOWN_ERROR);
            };
            if human {
                let _ = writeln!(
                    out.stdout,
                    "The node {node}'s heartbeat link {link} is {status}"
                );
            } else {
                let _ = writeln!(out.stdout, "{status}");
            }
            done(out, if status == "up" { OK } else { NORMAL_FAIL })
        }
        Sub::ClientStatus => {
            if args.operands.len() < 2 {
                out.stderr.push_str("No enough parameter.\n");
                return done(out, PARAMETER_ERROR);
            }
            log(
                &mut out,
                &format!("Cannot get heartbeat client {}'s status", args.operands[1]),
            );
            log(
                &mut out,
                "REASON: wasmbeat has no heartbeat API clients (no respawn children)",
            );
            done(out, UNKNOWN_ERROR)
        }
        Sub::RscStatus => {
            let held = &report.cluster.rscstatus;
            if human {
                let _ = writeln!(out.stdout, "This node is holding {held} resources.");
            } else {
                let _ = writeln!(out.stdout, "{held}");
            }
            out
        }
        Sub::HbParameter => {
            let Some(name) = &args.param else {
                log(&mut out, "parameter name required");
                return done(out, PARAMETER_ERROR);
            };
            // `crm` is the old name of `pacemaker` (heartbeat maps it too).
            let key = if name == "crm" { "pacemaker" } else { name };
            let Some(value) = report.heartbeat.parameters.get(key) else {
                log(&mut out, &format!("Cannot get parameter {name}'s value"));
                log(&mut out, "REASON: parameter not set");
                return done(out, NORMAL_FAIL);
            };
            if human {
                let _ = writeln!(out.stdout, "Heartbeat parameter {name}'s value: {value}");
            } else {
                let _ = writeln!(out.stdout, "{value}");
            }
            out
        }
    }
}

/// `nodestatus`'s exit code: 0 for the statuses heartbeat counts as alive.
pub fn nodestatus_code(status: &str) -> u8 {
    match status {
        "active" | "up" | "ping" => OK,
        _ => NORMAL_FAIL,
    }
}

/// heartbeat's `__listnodes`: `(normal_only, ping_only)` filter (both
/// means neither); normal nodes, then ping nodes.
fn list_nodes(
    out: &mut Output,
    view: &View<'_>,
    human: bool,
    (normal_only, ping_only): (bool, bool),
    verbose: bool,
) -> u8 {
    let (normal_only, ping_only) = (normal_only && !ping_only, ping_only && !normal_only);
    if human {
        out.stdout.push_str("The nodes are as follow:\n");
    }
    let normal = if ping_only {
        Vec::new()
    } else {
        view.node_names()
    };
    let pings = if normal_only {
        Vec::new()
    } else {
        view.ping_names()
    };
    for node in normal {
        if verbose {
            let status = view.node_status(node).unwrap_or("dead");
            let _ = writeln!(out.stdout, "\n{node}\t{status}\t(nodetype: normal)");
            list_links(out, view, node, human, true);
        } else {
            let _ = writeln!(out.stdout, "{node}");
        }
    }
    for node in pings {
        if verbose {
            let status = view.node_status(node).unwrap_or("dead");
            let _ = writeln!(out.stdout, "\n{node}\t{status}\t(nodetype: ping)");
        } else {
            let _ = writeln!(out.stdout, "{node}");
        }
    }
    OK
}

/// heartbeat's `__listhblinks`.
fn list_links(out: &mut Output, view: &View<'_>, node: &str, human: bool, verbose: bool) -> u8 {
    let Some(links) = view.links(node) else {
        log(out, "Cannot start heartbeat link interface walk.");
        log(out, "REASON: EINVAL");
        return UNKNOWN_ERROR;
    };
    if human {
        out.stdout
            .push_str("\tthis node has the following heartbeat links:\n");
    }
    for link in links {
        if verbose {
            let status = view.link_status(node, link).unwrap_or("dead");
            let _ = writeln!(out.stdout, "\t{link}\t{status}");
        } else {
            let _ = writeln!(out.stdout, "\t{link}");
        }
    }
    OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterStatus, LinkId, LinkStatus, NodeStatus, RscHold};
    use crate::control::client::ClientError;
    use crate::daemon::status::{LinkName, PacketCounts};
    use crate::Millis;

    fn node(name: &str, local: bool, status: NodeStatus, eth0_up: Option<bool>) -> NodeView {
        NodeView {
            name: name.into(),
            local,
            status,
            generation: None,
            last_status: None,
            deadtime_ms: 5000,
            holds: RscHold::None,
            stable: true,
            links: eth0_up
                .map(|up| LinkStatus {
                    link: LinkId("bcast eth0".into()),
                    last_heard: Millis(0),
                    up,
                })
                .into_iter()
                .collect(),
            fencing: Default::default(),
            tiebreak: Default::default(),
        }
    }

    /// node2 (local, active) and node1 (a peer, `peer` status); media eth0
    /// then eth1; the peer heard on eth0 only.
    fn report(peer: NodeStatus, rscstatus: &str) -> StatusReport {
        let link = |name: &str| LinkName {
            label: format!("bcast {name}"),
            name: name.into(),
        };
        StatusReport {
            node: "node2".into(),
            generation: 1,
            uptime_s: 1.0,
            cluster: ClusterStatus {
                local: "node2".into(),
                now: Millis(0),
                comm_up: true,
                resource_state: "Stable".into(),
                rscstatus: rscstatus.into(),
                standby: None,
                local_links: vec![(LinkId("bcast eth1".into()), false)],
                nodes: vec![
                    node("node2", true, NodeStatus::Active, None),
                    node("node1", false, peer, Some(true)),
                ],
                groups: vec![],
                last_transition: None,
                ping_nodes: vec![wasmbeat_core::ping::PingView {
                    name: "10.0.0.254".into(),
                    members: vec!["10.0.0.254".into()],
                    status: wasmbeat_core::ping::PingStatus::Dead,
                    last_reply: None,
                    counted: false,
                }],
                ipfail: None,
            },
            peers: vec![],
            packets: PacketCounts {
                accepted: 0,
                dropped: Default::default(),
            },
            session: Default::default(),
            flow_control: true,
            last_group_operations: vec![],
            heartbeat: HeartbeatFacts {
                nodes: vec!["node1".into(), "node2".into()],
                links: vec![link("eth0"), link("eth1")],
                parameters: [("deadtime", "5"), ("hbversion", "0.1.0 (wasmbeat)")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            watchdog: None,
            media: vec![],
        }
    }

    fn ask(args: &[&str], r: &StatusReport) -> (String, u8) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run(&args, || Ok(r.clone()));
        (out.stdout, out.code)
    }

    fn s(text: &str, code: u8) -> (String, u8) {
        (text.to_string(), code)
    }

    #[test]
    fn node_questions_print_heartbeats_lines_and_codes() {
        let r = report(NodeStatus::Active, "local");
        assert_eq!(ask(&["nodestatus", "node1"], &r), s("active\n", OK));
        assert_eq!(
            ask(&["nodestatus", "node1", "-m"], &r),
            s("The cluster node node1 is active\n", OK)
        );
        assert_eq!(ask(&["nodestatus", "nosuch"], &r), s("", PARAMETER_ERROR));
        assert_eq!(ask(&["nodestatus"], &r), s("", PARAMETER_ERROR));
        assert_eq!(
            ask(&["nodestatus", "-x", "node1"], &r),
            s("", PARAMETER_ERROR)
        );
        assert_eq!(ask(&["nodetype", "node2"], &r), s("normal\n", OK));
        assert_eq!(ask(&["nodeweight", "node2"], &r), s("100\n", OK));
        assert_eq!(ask(&["nodesite", "node2"], &r), s("\n", OK));
        for (status, code) in [
            (NodeStatus::Dead, NORMAL_FAIL),
            (NodeStatus::Init, NORMAL_FAIL),
            (NodeStatus::Up, OK),
        ] {
            let r = report(status, "local");
            let want = format!("{}\n", status.as_str());
            assert_eq!(ask(&["nodestatus", "node1"], &r), (want, code));
        }
        assert_eq!(nodestatus_code("ping"), OK);
    }

    #[test]
    fn lists_come_in_heartbeats_reverse_order() {
        let r = report(NodeStatus::Active, "local");
        assert_eq!(ask(&["listnodes"], &r), s("node2\nnode1\n10.0.0.254\n", OK));
        assert_eq!(ask(&["listnodes", "-p"], &r), s("10.0.0.254\n", OK));
        assert_eq!(ask(&["listnodes", "-n"], &r), s("node2\nnode1\n", OK));
        assert_eq!(
            ask(&["listnodes", "-p", "-n"], &r),
            s("node2\nnode1\n10.0.0.254\n", OK)
        );
        assert_eq!(ask(&["nodetype", "10.0.0.254"], &r), s("ping\n", OK));
        assert_eq!(
            ask(&["nodestatus", "10.0.0.254"], &r),
            s("dead\n", NORMAL_FAIL)
        );
        assert_eq!(
            ask(&["listhblinks", "node1"], &r),
            s("\teth1\n\teth0\n", OK)
        );
        assert_eq!(
            ask(&["listhblinks", "-v", "node1"], &r),
            s("\teth1\tdead\n\teth0\tup\n", OK)
        );
        assert_eq!(
            ask(&["listnodes", "-mv"], &r),
            s(
                "The nodes are as follow:\n\nnode2\tactive\t(nodetype: normal)\n\
                 \tthis node has the following heartbeat links:\n\teth1\tdead\n\teth0\tup\n\
                 \nnode1\tactive\t(nodetype: normal)\n\
                 \tthis node has the following heartbeat links:\n\teth1\tdead\n\teth0\tup\n\
                 \n10.0.0.254\tdead\t(nodetype: ping)\n",
                OK
            )
        );
        assert_eq!(ask(&["listhblinks", "nosuch"], &r), s("", UNKNOWN_ERROR));
        assert_eq!(ask(&["listhblinks"], &r), s("", PARAMETER_ERROR));
    }

    #[test]
    fn link_status_follows_the_engines_view() {
        let r = report(NodeStatus::Active, "local");
        assert_eq!(ask(&["hblinkstatus", "node1", "eth0"], &r), s("up\n", OK));
        // Never heard on eth1: dead, as heartbeat starts every link.
        assert_eq!(
            ask(&["hblinkstatus", "node1", "eth1"], &r),
            s("dead\n", NORMAL_FAIL)
        );
        // The local node: up unless the medium was reported failed.
        assert_eq!(ask(&["hblinkstatus", "node2", "eth0"], &r), s("up\n", OK));
        assert_eq!(
            ask(&["hblinkstatus", "node2", "eth1"], &r),
            s("dead\n", NORMAL_FAIL)
        );
        assert_eq!(
            ask(&["hblinkstatus", "-m", "node1", "eth0"], &r),
            s("The node node1's heartbeat link eth0 is up\n", OK)
        );
        assert_eq!(
            ask(&["hblinkstatus", "node1", "eth9"], &r),
            s("", UNKNOWN_ERROR)
        );
        assert_eq!(ask(&["hblinkstatus", "node1"], &r), s("", PARAMETER_ERROR));
    }

    #[test]
    fn resources_and_parameters() {
        let r = report(NodeStatus::Active, "transition");
        assert_eq!(ask(&["rscstatus"], &r), s("transition\n", OK));
        assert_eq!(
            ask(&["rscstatus", "-m"], &r),
            s("This node is holding transition resources.\n", OK)
        );
        assert_eq!(ask(&["hbparameter", "-p", "deadtime"], &r), s("5\n", OK));
        assert_eq!(ask(&["hbparameter", "-pdeadtime"], &r), s("5\n", OK));
        assert_eq!(
            ask(&["hbparameter", "-m", "-p", "deadtime"], &r),
            s("Heartbeat parameter deadtime's value: 5\n", OK)
        );
        assert_eq!(ask(&["hbparameter", "-p", "node"], &r), s("", NORMAL_FAIL));
        assert_eq!(ask(&["hbparameter"], &r), s("", PARAMETER_ERROR));
        assert_eq!(ask(&["hbparameter", "-p"], &r), s("", PARAMETER_ERROR));
    }

    #[test]
    fn hbstatus_and_the_daemon_being_away() {
        let r = report(NodeStatus::Active, "local");
        assert_eq!(
            ask(&["hbstatus"], &r),
            s("Heartbeat is running on this machine.\n", OK)
        );
        let v = ask(&["hbstatus", "-v"], &r).0;
        assert!(
            v.starts_with(
                "version:\t0.1.0 (wasmbeat)\nmanaged by:\t\"haresources\"\n\nnode2\tactive"
            ),
            "{v}"
        );
        let away = |sub: &[&str], e: QueryError| {
            let args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
            let out = run(&args, || Err(e));
            (out.stdout, out.code)
        };
        let stopped = || QueryError::NotRunning(ClientError::NotRunning("/x".into()));
        assert_eq!(
            away(&["hbstatus"], stopped()),
            s("Heartbeat is stopped on this machine.\n", NORMAL_FAIL)
        );
        // heartbeat signs on before parsing: no parameter error without it.
        assert_eq!(away(&["nodestatus"], stopped()), s("", NORMAL_FAIL));
        assert_eq!(
            away(
                &["nodestatus", "node1"],
                QueryError::Timeout(super::super::TIMEOUT)
            ),
            s("", TIMEOUT)
        );
        assert_eq!(
            away(
                &["hbstatus"],
                QueryError::Refused(ClientError::Permission("/x".into()))
            ),
            s(
                "Heartbeat is apparently running on this machine, but refuses my connection\n",
                OK
            )
        );
        assert_eq!(away(&["nosuch"], stopped()), s("", PARAMETER_ERROR));
        assert_eq!(away(&[], stopped()), s(HELP, OK));
        assert_eq!(away(&["-h"], stopped()), s(HELP, OK));
    }

    #[test]
    fn getopt_permutes_and_groups_like_gnu() {
        let a = parse_args(
            "listnodes",
            "mpnv",
            &["-vm".into(), "x".into(), "-p".into()],
        );
        assert_eq!(a.flags, vec!['v', 'm', 'p']);
        assert_eq!(a.operands, vec!["x".to_string()]);
        let a = parse_args("nodestatus", "m", &["--".into(), "-m".into()]);
        assert_eq!(a.operands, vec!["-m".to_string()]);
        assert!(a.flags.is_empty());
        let a = parse_args("nodestatus", "m", &["-q".into()]);
        assert!(a.bad_option);
        assert_eq!(a.complaints, vec!["nodestatus: invalid option -- 'q'"]);
    }
}

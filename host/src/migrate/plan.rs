//! From heartbeat's files to a [`Plan`]: what the Pacemaker configuration
//! holds, independent of the crm or pcs syntax it is written in.

use std::path::Path;
use std::time::Duration;

use crate::config::diag::{Code, Diagnostic, Diagnostics, Severity};
use crate::config::token::{AgentRef, ResourceToken};
use crate::config::{authkeys, haresources, AutoFailback, Loaded};
use crate::grant::policy::DEFAULT_RESTARTS;
use crate::ocf::install::valid_agent_name;
use crate::ocf::metadata::DEFAULT_MONITOR_INTERVAL;
use crate::runtime::bind::{resolve_agent, BindError};
use crate::runtime::{bind_args, Deadlines, Runtime};

/// Score of the location constraint that prefers a group's haresources node.
pub const LOCATION_SCORE: u32 = 100;

/// Stickiness per resource with `auto_failback off`: above
/// [`LOCATION_SCORE`] already for one resource (a group's stickiness is
/// the sum of its members'), so a group stays where it runs when its
/// preferred node returns; finite, so standby and moves still work.
pub const STICKY: u32 = 200;

/// One Pacemaker primitive: one haresources resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primitive {
    /// Resource id.
    pub id: String,
    /// The agent type (`IPaddr`): `ocf:wasmbeat:IPaddr`.
    pub agent: String,
    /// Parameters by name, in the agent's declared order.
    pub params: Vec<(String, String)>,
    /// Recurring monitor interval.
    pub monitor: Duration,
    /// Whether `monitor` came from agents.toml (else the default).
    pub monitor_configured: bool,
    /// Failures before Pacemaker moves the group away (wasmbeat's local
    /// restarts plus the failure that gives up).
    pub migration_threshold: u32,
    /// The haresources token it comes from.
    pub token: String,
}

/// One resource group: one haresources line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// Group id.
    pub id: String,
    /// The node it prefers (the line's first field).
    pub node: String,
    /// Members in start order.
    pub primitives: Vec<Primitive>,
    /// haresources line.
    pub line: usize,
    /// The line as heartbeat reads it (node and tokens).
    pub source: String,
}

/// A remark in the generated configuration: something that maps
/// differently or not at all, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `ha.cf:3`, `agents.toml:7`, `authkeys`, ...
    pub source: String,
    /// What happens to it.
    pub text: String,
}

/// The whole Pacemaker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The configuration directory it was made from.
    pub config_dir: String,
    /// Cluster nodes.
    pub nodes: Vec<String>,
    /// `auto_failback` as read.
    pub auto_failback: AutoFailback,
    /// `rsc_defaults resource-stickiness`.
    pub stickiness: u32,
    /// Cluster properties, in order.
    pub properties: Vec<(String, String)>,
    /// Why each property has its value.
    pub property_notes: Vec<Note>,
    /// Corosync settings that carry heartbeat's (comments: not in the CIB).
    pub corosync: Vec<String>,
    /// Groups in haresources order.
    pub groups: Vec<GroupPlan>,
    /// Everything that does not map, in file order.
    pub notes: Vec<Note>,
    /// Start and stop timeouts (the agents' deadlines).
    pub deadlines: Deadlines,
}

/// An XML id from free text: letters, digits, `_`, `-` (dots too would
/// be valid XML, but read like addresses in crm's one-line syntax);
/// never starting with a digit.
fn xml_id(s: &str) -> String {
    let mut id: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        id.insert(0, 'r');
    }
    id
}

/// A primitive id: the agent's name, plus the first argument up to its
/// first `/` when it starts with a digit (an address or endpoint), so VIPs
/// and service endpoints name their primitives.
fn primitive_id(agent: &str, token: &ResourceToken) -> String {
    match token.args.first() {
        Some(a) if a.starts_with(|c: char| c.is_ascii_digit()) => {
            let head = a.split('/').next().unwrap_or(a);
            xml_id(&format!("{agent}_{head}"))
        }
        _ => xml_id(agent),
    }
}

/// `id`, or `id_2`, `id_3`, ... when taken.
fn unique(id: String, taken: &mut Vec<String>) -> String {
    let mut out = id.clone();
    let mut n = 2;
    while taken.contains(&out) {
        out = format!("{id}_{n}");
        n += 1;
    }
    taken.push(out.clone());
    out
}

/// What happens to an ha.cf directive under Pacemaker, for directives
/// other than `node` and `auto_failback` (which map).
fn hacf_note(directive: &str, value: &str) -> String {
    match directive {
        "deadtime" => format!(
            "failure detection is corosync's: totem token {} ms in corosync.conf",
            crate::config::duration::parse_duration(value)
                .map(|d| d.as_millis().to_string())
                .unwrap_or_else(|_| value.to_string())
        ),
        "keepalive" | "warntime" | "initdead" => {
            "corosync's totem timing replaces it (token, consensus); no CIB setting".into()
        }
        "bcast" | "mcast" | "ucast" | "bcast6" | "mcast6" | "ucast6" | "udpport" => {
            "does not map: corosync (knet) carries membership; list each node's ring0_addr in corosync.conf's nodelist".into()
        }
        "serial" | "baud" => "does not map: corosync has no serial links; use a second knet link (ring1_addr)".into(),
        "ping" | "ping_group" | "ping6" | "deadping" => {
            "does not map: use a cloned ocf:pacemaker:ping resource and a location rule on its pingd attribute (not generated)".into()
        }
        "stonith" | "stonith_host" => {
            "does not map: define a fence device (crm configure primitive ... stonith:TYPE / pcs stonith create) and set stonith-enabled=true".into()
        }
        // ipfail is a heartbeat API client: under Pacemaker its job (move
        // the groups to the node that reaches more ping nodes) is the ping
        // resource's, and the program itself would find no heartbeat.
        "respawn" if value.split_whitespace().nth(1).is_some_and(|p| p.ends_with("/ipfail")) => {
            "does not map: ipfail's job is a cloned ocf:pacemaker:ping resource and a location rule on its pingd attribute (not generated)".into()
        }
        "respawn" | "failfast" => {
            "does not map: run the program under systemd or as a cluster resource".into()
        }
        "watchdog" => "does not map: Pacemaker's watchdog fencing is sbd".into(),
        "track_link" => "does not map: use a cloned ocf:heartbeat:ethmonitor resource and a location rule on its attribute (not generated)".into(),
        "tiebreaker" => "does not map: Pacemaker's witness is corosync-qdevice with a corosync-qnetd server on the same third machine (pcs quorum device add model net host=ADDR algorithm=ffsplit; not generated)".into(),
        "use_logd" | "logfile" | "debugfile" | "logfacility" | "debug" => {
            "logging is set in /etc/default/pacemaker (PCMK_logfile) and corosync.conf's logging section".into()
        }
        "crm" => "heartbeat's own CRM switch; Pacemaker is the CRM now".into(),
        _ => "heartbeat-internal; no Pacemaker equivalent".into(),
    }
}

/// The notes for ha.cf's lines: each directive but `node` and
/// `auto_failback`, with its line.
fn hacf_notes(text: &str) -> Vec<Note> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        if matches!(directive, "node" | "auto_failback") {
            continue;
        }
        let value = words.collect::<Vec<_>>().join(" ");
        out.push(Note {
            source: format!("ha.cf:{}", i + 1),
            text: format!("{line}: {}", hacf_note(directive, &value)),
        });
    }
    out
}

/// An error at one haresources resource.
fn reject(g: &crate::config::ResourceGroup, i: usize, message: String, hint: &str) -> Diagnostic {
    let (line, col) = g.positions.get(i).copied().unwrap_or((g.line, 1));
    Diagnostic::error(Code::Untranslatable, haresources::FILE, Some(line), message)
        .col(col)
        .text(g.resources[i].text.clone())
        .hint(hint.to_string())
}

/// The Pacemaker agent type of a resource, or why there is none.
fn agent_type(t: &ResourceToken) -> Result<String, (String, &'static str)> {
    match &t.agent {
        AgentRef::Name(n) => Ok(n.clone()),
        AgentRef::WasmPath(p) if p.components().count() == 1 => {
            let stem = t.agent.display_name();
            if valid_agent_name(&stem) {
                Ok(stem)
            } else {
                Err((
                    format!("{}: the file name is not an OCF agent type", p.display()),
                    "rename it to letters, digits and ._- only",
                ))
            }
        }
        AgentRef::WasmPath(p) => Err((
            format!(
                "{}: an agent outside resource.d/ has no ocf:wasmbeat: name",
                p.display()
            ),
            "copy it to <config-dir>/resource.d/NAME.wasm, write NAME in haresources, and run `wasmbeat ocf install`",
        )),
    }
}

/// Read `dir` and decide the Pacemaker configuration. Agents are loaded
/// (through `rt`) to bind each resource's positional arguments to
/// parameter names, exactly as the daemon binds them. Everything that
/// cannot be translated is returned at once, each with file:line and a fix.
pub async fn plan(dir: &Path, rt: &Runtime) -> Result<Plan, Diagnostics> {
    let loaded = Loaded::from_dir(dir, None);
    // This node's name and the cluster key do not carry over: Pacemaker
    // runs on corosync's node names and key.
    let relevant = |d: &Diagnostic| d.code != Code::LocalNodeMissing && d.file != authkeys::FILE;
    let mut errors: Vec<Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && relevant(d))
        .cloned()
        .collect();
    let (Some(ha), Some(res)) = (&loaded.ha, &loaded.resources) else {
        if errors.is_empty() {
            errors.push(Diagnostic::error(
                Code::Unreadable,
                haresources::FILE,
                None,
                format!(
                    "{} is missing: nothing to migrate",
                    dir.join(haresources::FILE).display()
                ),
            ));
        }
        return Err(Diagnostics(errors));
    };
    let policy = &loaded.policy;
    let mut notes: Vec<Note> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning && relevant(d))
        .map(|d| Note {
            source: match d.line {
                Some(l) => format!("{}:{l}", d.file),
                None => d.file.clone(),
            },
            text: format!("warning: {}", d.message),
        })
        .collect();
    let hacf_text =
        std::fs::read_to_string(dir.join(crate::config::hacf::FILE)).unwrap_or_default();
    notes.extend(hacf_notes(&hacf_text));
    notes.push(Note {
        source: "authkeys".into(),
        text: "not carried over: corosync authenticates with its own key (corosync-keygen) and knet crypto".into(),
    });
    for hook in &policy.notify {
        notes.push(Note {
            source: format!("agents.toml:{}", hook.line),
            text: format!(
                "[notify.{}] does not map: use a Pacemaker alert (crm configure alert / pcs alert create) running the same program",
                hook.name
            ),
        });
    }
    // File order: ha.cf, haresources, authkeys, agents.toml; then by line.
    let rank = |n: &Note| {
        let (file, line) = n.source.split_once(':').unwrap_or((&n.source, "0"));
        let f = ["ha.cf", "haresources", "authkeys", "agents.toml"]
            .iter()
            .position(|x| *x == file)
            .unwrap_or(4);
        (f, line.parse::<usize>().unwrap_or(0))
    };
    notes.sort_by_key(rank);
    // Resources loading already refused (an unresolved agent) are
    // reported once, by that diagnostic.
    let refused: Vec<(usize, Option<usize>)> = errors
        .iter()
        .filter(|d| d.file == haresources::FILE)
        .filter_map(|d| d.line.map(|l| (l, d.column)))
        .collect();
    let mut taken: Vec<String> = Vec::new();
    let mut groups = Vec::new();
    for g in &res.groups {
        let mut primitives = Vec::new();
        for (i, t) in g.resources.iter().enumerate() {
            let (line, col) = g.positions.get(i).copied().unwrap_or((g.line, 1));
            if refused.contains(&(line, Some(col))) {
                continue;
            }
            let agent = match agent_type(t) {
                Ok(a) => a,
                Err((msg, hint)) => {
                    errors.push(reject(g, i, msg, hint));
                    continue;
                }
            };
            let resolved = match resolve_agent(rt, &t.agent, dir, policy) {
                Ok(r) if r.script.is_some() => {
                    errors.push(reject(
                        g,
                        i,
                        format!("{agent} is a heartbeat/LSB script wasmbeat runs by [lsb.{agent}] grant; Pacemaker runs such scripts itself, unconfined"),
                        "configure it as lsb:NAME by hand (or write a wasmbeat agent for it), then remove it from haresources",
                    ));
                    continue;
                }
                Ok(r) => r,
                Err(e) => {
                    let hint = match e {
                        BindError::Load(_) => {
                            "install the agent in <config-dir>/resource.d/ or fix the name"
                        }
                        _ => "fix the resource as `wasmbeat check` says",
                    };
                    errors.push(reject(g, i, e.to_string(), hint));
                    continue;
                }
            };
            let meta = match resolved.agent.meta_data().await {
                Ok(m) => m,
                Err(e) => {
                    errors.push(reject(
                        g,
                        i,
                        format!("{agent} meta-data: {e}"),
                        "fix or replace the agent",
                    ));
                    continue;
                }
            };
            let bound = match bind_args(&meta, &t.args) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(reject(
                        g,
                        i,
                        e.to_string(),
                        "fix the arguments as `wasmbeat check` says",
                    ));
                    continue;
                }
            };
            // Declared order reads like the agent's meta-data.
            let params = meta
                .params
                .iter()
                .filter_map(|p| bound.iter().find(|(n, _)| *n == p.name).cloned())
                .collect();
            let spec = policy.monitor_spec(&t.agent.display_name(), &t.text);
            primitives.push(Primitive {
                id: unique(primitive_id(&agent, t), &mut taken),
                agent,
                params,
                monitor: spec.map_or(DEFAULT_MONITOR_INTERVAL, |s| s.interval),
                monitor_configured: spec.is_some(),
                migration_threshold: spec.map_or(DEFAULT_RESTARTS, |s| s.max_restarts) + 1,
                token: t.text.clone(),
            });
        }
        let first = primitives
            .first()
            .map_or_else(|| g.key.clone(), |p| p.id.clone());
        groups.push(GroupPlan {
            id: unique(xml_id(&format!("grp_{first}")), &mut taken),
            node: g.preferred_node.clone(),
            primitives,
            line: g.line,
            source: std::iter::once(g.preferred_node.clone())
                .chain(g.resources.iter().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let two = ha.nodes.len() == 2;
    let stickiness = match ha.auto_failback {
        AutoFailback::Off => STICKY,
        AutoFailback::On | AutoFailback::Legacy => 0,
    };
    let mut property_notes = vec![Note {
        source: "ha.cf".into(),
        text: if ha.stonith.is_empty() && ha.stonith_hosts.is_empty() {
            "stonith-enabled=false: heartbeat's haresources mode did not fence; Pacemaker refuses to start resources without a fence device otherwise. Add one and turn this on".into()
        } else {
            "stonith-enabled=false until a fence device replaces ha.cf's stonith lines (noted above)"
                .into()
        },
    }];
    property_notes.push(Note {
        source: "ha.cf".into(),
        text: if two {
            "no-quorum-policy=stop with corosync's two_node: 1, the survivor of two keeps quorum and takes over, as heartbeat did".into()
        } else {
            format!("no-quorum-policy=stop: with {} nodes a partition without a majority stops its resources", ha.nodes.len())
        },
    });
    property_notes.push(Note {
        source: "ha.cf".into(),
        text: match ha.auto_failback {
            AutoFailback::On => format!("auto_failback on: resource-stickiness={stickiness}, groups return to their node (location score {LOCATION_SCORE})"),
            AutoFailback::Off => format!("auto_failback off: resource-stickiness={stickiness} per resource outweighs the location score {LOCATION_SCORE}, groups stay where they run"),
            AutoFailback::Legacy => format!("auto_failback legacy (absent): heartbeat's old protocol moved groups back, as resource-stickiness={stickiness}"),
        },
    });
    let mut corosync = vec![
        "totem { transport: knet; token: TOKEN_MS }".to_string(),
        format!(
            "nodelist {{ {} }}",
            ha.nodes
                .iter()
                .enumerate()
                .map(|(i, n)| format!(
                    "node {{ name: {n}; nodeid: {}; ring0_addr: ADDRESS_OF_{n} }}",
                    i + 1
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    corosync.push(if two {
        "quorum { provider: corosync_votequorum; two_node: 1 }".into()
    } else {
        "quorum { provider: corosync_votequorum }".into()
    });
    Ok(Plan {
        config_dir: dir.display().to_string(),
        nodes: ha.nodes.clone(),
        auto_failback: ha.auto_failback,
        stickiness,
        properties: vec![
            ("stonith-enabled".into(), "false".into()),
            ("no-quorum-policy".into(), "stop".into()),
        ],
        property_notes,
        corosync,
        groups,
        notes,
        deadlines: rt.config().deadlines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_xml_ids_and_unique() {
        let t = ResourceToken::parse("IPaddr::100.200.230.1/100.200.230.6").unwrap();
        assert_eq!(primitive_id("IPaddr", &t), "IPaddr_100_200_230_1");
        let h = ResourceToken::parse("httpd").unwrap();
        assert_eq!(primitive_id("httpd", &h), "httpd");
        assert_eq!(xml_id("1a b"), "r1a_b");
        let mut taken = vec![];
        assert_eq!(unique("x".into(), &mut taken), "x");
        assert_eq!(unique("x".into(), &mut taken), "x_2");
    }

    #[test]
    fn hacf_lines_get_notes_except_what_maps() {
        let n = hacf_notes("# c\nnode a\nauto_failback on\ndeadtime 5\nping 10.0.0.1 # gw\n");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].source, "ha.cf:4");
        assert!(n[0].text.contains("token 5000 ms"), "{:?}", n[0]);
        assert_eq!(n[1].source, "ha.cf:5");
        assert!(
            n[1].text.starts_with("ping 10.0.0.1: does not map"),
            "{:?}",
            n[1]
        );
    }
}

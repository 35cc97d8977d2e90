//! Which fence devices ha.cf configures for this node: `stonith_host`
//! lines whose host is `*` or this node (others are ignored, as heartbeat
//! ignores them), and `stonith TYPE FILE` (parameters read from FILE),
//! each resolved to a built-in device or a fence agent component, with its
//! parameters and HTTP grant. Every problem is a diagnostic with file,
//! line and the fix.

use std::path::{Path, PathBuf};

use super::grant::HttpGrant;
use crate::config::diag::{Code, Diagnostic};
use crate::config::hacf::{HaCf, FILE as HACF};
use crate::grant::policy::{Policy, FILE as POLICY};

/// The built-in fence agent for a generic REST power switch.
pub const HTTP_SWITCH: &str = "http-switch";
/// The built-in manual device: the operator power-cycles and confirms.
pub const MEATWARE: &str = "meatware";
/// Built-in fence device names.
pub const BUILTIN: &[&str] = &[HTTP_SWITCH, MEATWARE];

/// Where a fence agent's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary (`http-switch`).
    Builtin(&'static str),
    /// A component file.
    File(PathBuf),
}

/// What a configured device is.
#[derive(Debug, Clone, PartialEq, Eq)]
// A handful per configuration, never moved in bulk.
#[allow(clippy::large_enum_variant)]
pub enum PlanKind {
    /// Built-in meatware for these nodes.
    Meatware {
        /// Nodes it can fence.
        hosts: Vec<String>,
    },
    /// A cluster-glue STONITH plugin, run as heartbeat runs it.
    ClusterGlue(super::cluster_glue::GlueDevice),
    /// A fence agent component.
    Agent {
        /// Its code.
        source: Source,
        /// `key=value` parameters as written.
        params: Vec<(String, String)>,
        /// Endpoints it may reach.
        grants: Vec<HttpGrant>,
        /// The agents.toml section that widens the grant.
        section: String,
        /// Its commands and limits (`process`).
        commands: crate::grant::policy::Section,
    },
}

/// One device, resolved but not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// The directive as written, up to the type (`stonith_host * http-switch`).
    pub directive: String,
    /// Where (`ha.cf:12`).
    pub at: String,
    /// The file it was written in (`ha.cf`; `fence test` for the CLI).
    pub file: String,
    /// Line in ha.cf (0: not from a file).
    pub line: usize,
    /// The device type as written (`http-switch`, `/opt/fence/x.wasm`).
    pub name: String,
    /// What it is.
    pub kind: PlanKind,
}

/// Parameter names whose values are not printed.
fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "pass", "secret", "key", "community"]
        .iter()
        .any(|s| n.contains(s))
}

impl DevicePlan {
    /// One line for `check` and `status`.
    pub fn describe(&self) -> String {
        match &self.kind {
            PlanKind::Meatware { hosts } => format!(
                "{} {} (built-in; the operator power-cycles the node and confirms with `wasmbeat fence-ack NODE`): {}",
                self.at,
                self.directive,
                hosts.join(", ")
            ),
            PlanKind::ClusterGlue(g) => format!(
                "{} {} (cluster-glue plugin run by {} as heartbeat runs it, outside the sandbox{})",
                self.at,
                self.directive,
                super::cluster_glue::STONITH_TOOL,
                if g.params.is_empty() {
                    ""
                } else {
                    "; its parameters are not shown"
                }
            ),
            PlanKind::Agent {
                source,
                params,
                grants,
                commands,
                ..
            } => {
                let from = match source {
                    Source::Builtin(_) => "built-in".to_string(),
                    Source::File(p) => p.display().to_string(),
                };
                let params: Vec<String> = params
                    .iter()
                    .map(|(k, v)| {
                        if secret(k) {
                            format!("{k}=(hidden)")
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                let mut may: Vec<String> = grants.iter().map(|g| g.text.clone()).collect();
                may.extend(commands.commands.iter().map(|c| {
                    let argv: Vec<String> = c.argv.iter().map(|t| t.to_string()).collect();
                    format!("command {} = {}", c.name, argv.join(" "))
                }));
                format!(
                    "{} {} [{from}] {}; may reach: {}",
                    self.at,
                    self.directive,
                    params.join(" "),
                    may.join(", ")
                )
            }
        }
    }
}

/// One device line to resolve.
pub struct Entry<'a> {
    /// The directive as written up to the type.
    pub directive: String,
    /// Its file (for messages).
    pub file: &'a str,
    /// Its line.
    pub line: usize,
    /// The device type.
    pub kind: &'a str,
    /// Its parameters.
    pub params: Vec<String>,
}

/// Resolve the devices of `ha` for node `local` (None: only `*` lines).
pub fn plan(
    ha: &HaCf,
    policy: &Policy,
    local: Option<&str>,
    config_dir: &Path,
) -> (Vec<DevicePlan>, Vec<Diagnostic>) {
    let mut entries = Vec::new();
    let mut diags = Vec::new();
    for s in &ha.stonith {
        let line = s.line.0;
        match std::fs::read_to_string(&s.config_file) {
            Ok(text) => entries.push(Entry {
                directive: format!("stonith {}", s.kind),
                file: HACF,
                line,
                kind: &s.kind,
                params: text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.starts_with('#'))
                    .flat_map(str::split_whitespace)
                    .map(str::to_string)
                    .collect(),
            }),
            Err(e) => diags.push(
                Diagnostic::error(
                    Code::Fence,
                    HACF,
                    Some(line),
                    format!(
                        "stonith {}: cannot read its configuration file {}: {e}",
                        s.kind, s.config_file
                    ),
                )
                .text(s.config_file.clone())
                .hint("fix the path, or give the parameters on a stonith_host line"),
            ),
        }
    }
    for s in ha.stonith_hosts_for(local) {
        entries.push(Entry {
            directive: format!("stonith_host {} {}", s.host, s.kind),
            file: HACF,
            line: s.line.0,
            kind: &s.kind,
            params: s.params.clone(),
        });
    }
    let mut out = Vec::new();
    for e in entries {
        match plan_entry(&e, policy, config_dir) {
            Ok(p) => out.push(p),
            Err(d) => diags.extend(d),
        }
    }
    (out, diags)
}

fn line_opt(line: usize) -> Option<usize> {
    (line > 0).then_some(line)
}

/// Resolve one device line.
pub fn plan_entry(
    e: &Entry<'_>,
    policy: &Policy,
    config_dir: &Path,
) -> Result<DevicePlan, Vec<Diagnostic>> {
    let at = if e.line > 0 {
        format!("{}:{}", e.file, e.line)
    } else {
        e.file.to_string()
    };
    let error = |msg: String, hint: &str| {
        Diagnostic::error(Code::Fence, e.file, line_opt(e.line), msg)
            .text(e.kind.to_string())
            .hint(hint.to_string())
    };
    let mk = |kind| DevicePlan {
        directive: e.directive.clone(),
        at: at.clone(),
        file: e.file.to_string(),
        line: e.line,
        name: e.kind.to_string(),
        kind,
    };
    if e.kind == MEATWARE {
        let mut hosts = Vec::new();
        let mut diags = Vec::new();
        for p in &e.params {
            let ok = !p.contains('=')
                && wasmbeat_args::value::check(wasmbeat_args::value::ValueType::Name, p).is_ok();
            if ok {
                hosts.push(p.to_lowercase());
            } else {
                diags.push(error(
                    format!(
                        "{}: {p:?} is not a node name (meatware takes the nodes it can fence)",
                        e.directive
                    ),
                    "write e.g. stonith_host * meatware node1 node2",
                ));
            }
        }
        if hosts.is_empty() && diags.is_empty() {
            diags.push(error(
                format!("{}: meatware needs the nodes it can fence", e.directive),
                "write e.g. stonith_host * meatware node1 node2",
            ));
        }
        return if diags.is_empty() {
            Ok(mk(PlanKind::Meatware { hosts }))
        } else {
            Err(diags)
        };
    }

    let mut diags = Vec::new();
    // Which agent: built-in, a .wasm path, or resource.d/NAME.wasm.
    let rd = crate::config::agents::resource_dir(config_dir);
    let (source, section_name) = if e.kind == HTTP_SWITCH {
        (Source::Builtin(HTTP_SWITCH), HTTP_SWITCH.to_string())
    } else if e.kind.ends_with(".wasm") {
        let p = Path::new(e.kind);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            rd.join(p)
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() {
            diags.push(error(
                format!(
                    "{}: fence agent file {} does not exist",
                    e.directive,
                    path.display()
                ),
                "install the component there, or fix the path",
            ));
        }
        (Source::File(path), stem)
    } else {
        let path = rd.join(format!("{}.wasm", e.kind));
        if !path.is_file() && super::cluster_glue::plugin_path(e.kind).is_some() {
            // heartbeat's own device: its parameters stay positional.
            return Ok(mk(PlanKind::ClusterGlue(super::cluster_glue::GlueDevice {
                kind: e.kind.to_string(),
                params: e.params.join(" "),
            })));
        }
        if !path.is_file() {
            diags.push(error(
                format!(
                    "{}: no fence agent named {:?}: not built in ({}) and {} does not exist",
                    e.directive,
                    e.kind,
                    BUILTIN.join(", "),
                    path.display()
                ),
                "use http-switch (a REST power switch), meatware (the operator), a fence agent component, or a cluster-glue plugin (install cluster-glue; `stonith -L` lists them) (docs/fencing.md)",
            ));
            return Err(diags);
        }
        (Source::File(path), e.kind.to_string())
    };
    let section = format!("[fence.{section_name}]");

    let mut params: Vec<(String, String)> = Vec::new();
    let mut positional: Vec<&str> = Vec::new();
    for p in &e.params {
        match p.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if params.iter().any(|(q, _)| q == k) {
                    diags.push(error(
                        format!("{}: parameter {k} is given twice", e.directive),
                        "give each parameter once",
                    ));
                } else {
                    params.push((k.to_string(), v.to_string()));
                }
            }
            _ => positional.push(p.as_str()),
        }
    }

    if !positional.is_empty() {
        diags.push(error(
            format!(
                "{}: positional parameter(s) {}: wasmbeat's fence agents take key=value parameters (heartbeat's cluster-glue plugins took positional ones)",
                e.directive,
                positional.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(" "),
            ),
            &format!(
                "write the parameters as key=value, e.g. stonith_host * {HTTP_SWITCH} base=http://10.9.0.254:8080/pdu (`wasmbeat fence test {} ...` shows the agent's parameters)",
                e.kind
            ),
        ));
    }

    // The grant: a built-in http-switch reaches its own `base`; anything
    // else only what agents.toml's [fence.NAME] says.
    let mut grants = Vec::new();
    if matches!(source, Source::Builtin(_)) {
        match params.iter().find(|(k, _)| k == "base") {
            None => diags.push(error(
                format!(
                    "{}: http-switch needs base=URL, the switch's address",
                    e.directive
                ),
                "write e.g. stonith_host * http-switch base=http://10.9.0.254:8080/pdu",
            )),
            Some((_, base)) => match HttpGrant::parse(base) {
                Ok(g) => grants.push(g),
                Err(err) => diags.push(error(
                    format!("{}: base={base}: {err}", e.directive),
                    "write e.g. base=http://10.9.0.254:8080/pdu",
                )),
            },
        }
    }
    let policy_line = policy.fence.get(&section_name).map(|f| f.line);
    if let Some(f) = policy.fence.get(&section_name) {
        grants.extend(f.http.iter().cloned());
    }
    let has_commands = policy
        .fence
        .get(&section_name)
        .is_some_and(|f| !f.grant.commands.is_empty());
    if grants.is_empty() && !has_commands && matches!(source, Source::File(_)) {
        diags.push(error(
            format!(
                "{}: the fence agent {section_name} has no HTTP grant: it could reach nothing",
                e.directive
            ),
            &format!(
                "add to {POLICY}: {section} http = [\"http://SWITCH:PORT/PREFIX\"] (requests may go to that origin, under that path)"
            ),
        ));
    }
    for g in &grants {
        if let Err(err) = g.usable() {
            let from_policy = !params.iter().any(|(k, v)| k == "base" && *v == g.text);
            let mut d = error(format!("{}: {err}", e.directive), "use an http:// endpoint");
            if from_policy {
                d.file = POLICY.to_string();
                d.line = policy_line;
            }
            diags.push(d);
        }
    }
    if diags.is_empty() {
        Ok(mk(PlanKind::Agent {
            source,
            params,
            grants,
            section,
            commands: policy
                .fence
                .get(&section_name)
                .map(|f| f.grant.clone())
                .unwrap_or_default(),
        }))
    } else {
        Err(diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cf(lines: &str) -> HaCf {
        let (c, d) = HaCf::parse(&format!(
            "node node1 node2\nbcast eth0\nauto_failback on\n{lines}"
        ));
        assert!(!d.iter().any(|d| d.is_error()), "{d:?}");
        c
    }

    fn errors(d: &[Diagnostic]) -> Vec<String> {
        d.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn only_star_and_this_node_s_lines_count_in_file_order() {
        let ha = cf("stonith_host node2 meatware node1\nstonith_host * http-switch base=http://10.9.0.254:8080/pdu token=s3cret\nstonith_host node1 meatware node2\n");
        let (p, d) = plan(
            &ha,
            &Policy::default(),
            Some("node1"),
            Path::new("/nonexistent"),
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].at, "ha.cf:5");
        assert!(
            matches!(&p[0].kind, PlanKind::Agent { grants, .. } if grants[0].text == "http://10.9.0.254:8080/pdu")
        );
        assert!(
            p[0].describe().contains("token=(hidden)"),
            "{}",
            p[0].describe()
        );
        assert!(!p[0].describe().contains("s3cret"));
        assert_eq!(
            p[1].kind,
            PlanKind::Meatware {
                hosts: vec!["node2".into()]
            }
        );
        let (p, _) = plan(&ha, &Policy::default(), None, Path::new("/nonexistent"));
        assert_eq!(p.len(), 1, "without a local node only * lines");
    }

    #[test]
    fn positional_unknown_and_ungranted_devices_are_errors_at_their_line() {
        let ha = cf("stonith_host * http-switch 10.9.0.254 admin\n");
        let (p, d) = plan(
            &ha,
            &Policy::default(),
            Some("node1"),
            Path::new("/nonexistent"),
        );
        assert!(p.is_empty());
        let e = errors(&d);
        assert!(
            e.iter().any(|e| e.starts_with("ha.cf:4")
                && e.contains("positional parameter(s) \"10.9.0.254\" \"admin\"")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.contains("needs base=URL")), "{e:?}");

        let ha = cf("stonith_host * nosuchswitch 10.0.0.3 login pw\n");
        let (_, d) = plan(
            &ha,
            &Policy::default(),
            Some("node1"),
            Path::new("/nonexistent"),
        );
        let e = errors(&d);
        assert!(
            e[0].contains("no fence agent named \"nosuchswitch\""),
            "{e:?}"
        );
        assert!(e[0].contains("cluster-glue"), "{e:?}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("resource.d")).unwrap();
        std::fs::write(dir.path().join("resource.d/acme.wasm"), b"").unwrap();
        let ha = cf("stonith_host * acme.wasm host=pdu1\n");
        let (_, d) = plan(&ha, &Policy::default(), Some("node1"), dir.path());
        let e = errors(&d);
        assert!(
            e[0].contains("has no HTTP grant") && e[0].contains("[fence.acme] http = ["),
            "{e:?}"
        );
        let (policy, pd) = Policy::parse("[fence.acme]\nhttp = [\"http://10.9.0.254:8080/pdu\"]\n");
        assert!(pd.is_empty(), "{pd:?}");
        let (p, d) = plan(&ha, &policy, Some("node1"), dir.path());
        assert!(d.is_empty(), "{d:?}");
        assert!(p[0]
            .describe()
            .contains("may reach: http://10.9.0.254:8080/pdu"));
    }

    #[test]
    fn a_stonith_line_reads_its_parameters_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("switch.cfg");
        std::fs::write(
            &conf,
            "# the lab switch\nbase=http://10.9.0.254:8080/pdu\ntoken=x\n",
        )
        .unwrap();
        let ha = cf(&format!(
            "stonith http-switch {}\nstonith meatware /nonexistent/meat.cfg\n",
            conf.display()
        ));
        let (p, d) = plan(&ha, &Policy::default(), Some("node1"), dir.path());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].at, "ha.cf:4");
        assert!(matches!(&p[0].kind, PlanKind::Agent { params, .. } if params.len() == 2));
        let e = errors(&d);
        assert!(
            e.len() == 1 && e[0].starts_with("ha.cf:5") && e[0].contains("cannot read"),
            "{e:?}"
        );
    }

    #[test]
    fn https_is_refused_as_not_implemented_and_meatware_needs_nodes() {
        let ha =
            cf("stonith_host * http-switch base=https://10.9.0.254/pdu\nstonith_host * meatware\n");
        let (p, d) = plan(
            &ha,
            &Policy::default(),
            Some("node1"),
            Path::new("/nonexistent"),
        );
        assert!(p.is_empty());
        let e = errors(&d);
        assert!(
            e.iter()
                .any(|e| e.starts_with("ha.cf:4") && e.contains("not implemented yet")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("ha.cf:5") && e.contains("meatware needs the nodes")),
            "{e:?}"
        );
    }
}

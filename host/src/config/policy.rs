//! The agent policy file, `<config-dir>/agents.toml`: grants beyond the
//! built-in defaults, per agent and per resource, and the heartbeat/LSB
//! scripts wasmbeat may run. Absent file = no extra grants.
//!
//! ```toml
//! # Every resource of an agent (built-in or resource.d/NAME.wasm).
//! [agent.myagent]
//! programs = ["/usr/local/bin/mytool"]
//!
//! # One resource, by its haresources token exactly as written.
//! [resource."httpd::10.0.0.10:80"]
//! replace = true                  # replace the default grant instead of adding to it
//! programs = ["/usr/sbin/apache2"]
//! probe = ["10.0.0.10:80"]         # ip:port targets for tcp/http/dns/mysql probes
//! pidfiles = ["/run/apache2/apache2.pid"]
//! paths = ["/etc/apache2/apache2.conf"]   # may be inspected (kind only)
//! addresses = ["10.0.0.10"]        # may be added/removed/announced
//! netlink_read = true              # may list links and addresses
//!
//! # A heartbeat resource script or init script named in haresources.
//! [lsb.postfix]
//! script = "/etc/init.d/postfix"   # optional: default resource.d/NAME, then /etc/init.d/NAME
//! ```
//!
//! Sections apply in order: built-in default, then `[agent.NAME]`, then
//! `[resource."TOKEN"]`; a section with `replace = true` starts from nothing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike};

use super::diag::{Code, Diagnostic};

/// The file name inside the configuration directory.
pub const FILE: &str = "agents.toml";

/// Grants (and monitoring settings) of one policy section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSpec {
    /// Replace the grant so far instead of adding to it.
    pub replace: bool,
    /// Absolute program paths.
    pub programs: Vec<PathBuf>,
    /// Probe targets.
    pub probe: Vec<SocketAddr>,
    /// Pid files.
    pub pidfiles: Vec<PathBuf>,
    /// Inspectable paths.
    pub paths: Vec<PathBuf>,
    /// Addresses (on the interface whose subnet contains them).
    pub addresses: Vec<IpAddr>,
    /// Listing links and addresses.
    pub netlink_read: bool,
    /// Line of the section header, for messages.
    pub line: usize,
    /// `monitor = "10"`: probe the resource this often while its group runs
    /// here (heartbeat time syntax). Not a grant: resource monitoring is a
    /// wasmbeat extension, off unless set.
    pub monitor: Option<std::time::Duration>,
    /// `restarts = 3`: local restarts after failed probes before the group
    /// is handed to the peer.
    pub restarts: Option<u32>,
}

/// Permission to run one heartbeat/LSB script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsbGrant {
    /// An explicit script path; None: heartbeat's lookup order.
    pub script: Option<PathBuf>,
    /// Line of the section header.
    pub line: usize,
}

/// The whole policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `[agent.NAME]` sections.
    pub agents: BTreeMap<String, GrantSpec>,
    /// `[resource."TOKEN"]` sections.
    pub resources: BTreeMap<String, GrantSpec>,
    /// `[lsb.NAME]` sections.
    pub lsb: BTreeMap<String, LsbGrant>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Parser<'a> {
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|s| line_of(self.text, s.start))
    }

    fn error(&mut self, line: Option<usize>, text: &str, msg: String, hint: &str) {
        let mut d = Diagnostic::error(Code::BadPolicy, FILE, line, msg).text(text.to_string());
        if !hint.is_empty() {
            d = d.hint(hint.to_string());
        }
        self.diags.push(d);
    }

    fn strings(&mut self, item: &Item, key: &str, line: Option<usize>) -> Vec<String> {
        let Some(arr) = item.as_array() else {
            self.error(
                line,
                key,
                format!("{key} must be an array of strings"),
                &format!("write e.g. {key} = [\"...\"]"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let l = self.line(v.span()).or(line);
                    self.error(
                        l,
                        key,
                        format!("{key}: a {} is not a string", v.type_name()),
                        "",
                    );
                }
            }
        }
        out
    }

    fn abs_paths(&mut self, item: &Item, key: &str, line: Option<usize>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for s in self.strings(item, key, line) {
            if s.starts_with('/') && !s.split('/').any(|c| c == "..") {
                out.push(PathBuf::from(s));
            } else {
                self.error(
                    line,
                    &s,
                    format!("{key}: {s:?} is not an absolute path without '..'"),
                    "grants name exact absolute paths",
                );
            }
        }
        out
    }

    fn grant(&mut self, t: &dyn TableLike, header_line: Option<usize>) -> GrantSpec {
        let mut g = GrantSpec {
            line: header_line.unwrap_or(0),
            ..GrantSpec::default()
        };
        for (key, _) in t.iter() {
            let (k, item) = t.get_key_value(key).expect("key from iter");
            let line = self.line(k.span()).or(header_line);
            match key {
                "replace" | "netlink_read" => match item.as_bool() {
                    Some(b) if key == "replace" => g.replace = b,
                    Some(b) => g.netlink_read = b,
                    None => self.error(line, key, format!("{key} must be true or false"), ""),
                },
                "programs" => g.programs = self.abs_paths(item, key, line),
                "pidfiles" => g.pidfiles = self.abs_paths(item, key, line),
                "paths" => g.paths = self.abs_paths(item, key, line),
                "probe" => {
                    for s in self.strings(item, key, line) {
                        match s.parse() {
                            Ok(a) => g.probe.push(a),
                            Err(_) => self.error(
                                line,
                                &s,
                                format!("probe: {s:?} is not ip:port"),
                                "write e.g. \"10.0.0.10:80\" or \"[fd77::10]:80\"",
                            ),
                        }
                    }
                }
                "addresses" => {
                    for s in self.strings(item, key, line) {
                        match s.parse() {
                            Ok(a) => g.addresses.push(a),
                            Err(_) => self.error(
                                line,
                                &s,
                                format!("addresses: {s:?} is not an IP address"),
                                "",
                            ),
                        }
                    }
                }
                "monitor" => match item
                    .as_str()
                    .map(super::duration::parse_duration)
                    .or_else(|| item.as_integer().map(|n| Ok(std::time::Duration::from_secs(n.max(0) as u64))))
                {
                    Some(Ok(d)) if !d.is_zero() => g.monitor = Some(d),
                    _ => self.error(
                        line,
                        key,
                        "monitor must be a positive interval".to_string(),
                        "write e.g. monitor = \"10\" (seconds) or monitor = \"500ms\"",
                    ),
                },
                "restarts" => match item.as_integer().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => g.restarts = Some(n),
                    None => self.error(
                        line,
                        key,
                        "restarts must be a whole number >= 0".to_string(),
                        "write e.g. restarts = 3",
                    ),
                },
                other => self.error(
                    line,
                    other,
                    format!("unknown grant {other:?}"),
                    "keys are replace, programs, probe, pidfiles, paths, addresses, netlink_read, monitor, restarts",
                ),
            }
        }
        g
    }
}

impl Policy {
    /// Parse the text of agents.toml; every problem becomes a diagnostic
    /// with its line (the policy is still returned, without the bad parts).
    pub fn parse(text: &str) -> (Policy, Vec<Diagnostic>) {
        let mut p = Parser {
            text,
            diags: Vec::new(),
        };
        let mut policy = Policy::default();
        let doc = match toml_edit::Document::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let line = p.line(e.span());
                let msg = e.message().trim().to_string();
                p.error(
                    line,
                    "",
                    format!("not valid TOML: {msg}"),
                    "see the format in the wasmbeat documentation (agents.toml)",
                );
                return (policy, p.diags);
            }
        };
        let root = doc.as_table();
        for (kind, _) in root.iter() {
            let (k, item) = root.get_key_value(kind).expect("key from iter");
            let kline = p.line(k.span());
            let Some(section) = item.as_table_like() else {
                p.error(
                    kline,
                    kind,
                    format!("{kind:?} must be a table of sections"),
                    "write [agent.NAME], [resource.\"TOKEN\"] or [lsb.NAME]",
                );
                continue;
            };
            if !matches!(kind, "agent" | "resource" | "lsb") {
                p.error(
                    kline,
                    kind,
                    format!("unknown section kind {kind:?}"),
                    "sections are [agent.NAME], [resource.\"TOKEN\"] and [lsb.NAME]",
                );
                continue;
            }
            for (name, _) in section.iter() {
                let (nk, body) = section.get_key_value(name).expect("key from iter");
                let line = p.line(nk.span()).or(kline);
                let Some(t) = body.as_table_like() else {
                    p.error(
                        line,
                        name,
                        format!("{kind}.{name} must be a table"),
                        &format!("write [{kind}.\"{name}\"] followed by key = value lines"),
                    );
                    continue;
                };
                match kind {
                    "agent" => {
                        let g = p.grant(t, line);
                        policy.agents.insert(name.to_string(), g);
                    }
                    "resource" => {
                        let g = p.grant(t, line);
                        policy.resources.insert(name.to_string(), g);
                    }
                    _ => {
                        let l = p.lsb(name, t, line);
                        if let Some(l) = l {
                            policy.lsb.insert(name.to_string(), l);
                        }
                    }
                }
            }
        }
        (policy, p.diags)
    }

    /// Read `<dir>/agents.toml`; a missing file is an empty policy.
    pub fn load(dir: &Path) -> (Policy, Vec<Diagnostic>) {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => Policy::parse(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Policy::default(), Vec::new()),
            Err(e) => (
                Policy::default(),
                vec![Diagnostic::error(
                    Code::Unreadable,
                    FILE,
                    None,
                    format!("cannot read {}: {e}", path.display()),
                )],
            ),
        }
    }

    /// The sections that apply to a resource, in application order.
    pub fn sections_for(&self, agent: &str, resource: &str) -> Vec<&GrantSpec> {
        self.agents
            .get(agent)
            .into_iter()
            .chain(self.resources.get(resource))
            .collect()
    }

    /// The script an `[lsb.NAME]` grant lets wasmbeat run, found the way
    /// heartbeat finds resource scripts (`<config-dir>/resource.d/NAME`,
    /// then `/etc/init.d/NAME`, first existing executable file) unless the
    /// section pins `script`. None if not granted; Err(tried) if granted
    /// but no such script exists.
    pub fn lsb_script(
        &self,
        name: &str,
        config_dir: &Path,
    ) -> Option<Result<PathBuf, Vec<PathBuf>>> {
        let g = self.lsb.get(name)?;
        let candidates = match &g.script {
            Some(p) => vec![p.clone()],
            None => script_candidates(name, config_dir),
        };
        Some(
            candidates
                .iter()
                .find(|p| is_executable_file(p))
                .cloned()
                .ok_or(candidates),
        )
    }
}

/// Where heartbeat looks for a resource script NAME, in order.
pub fn script_candidates(name: &str, config_dir: &Path) -> Vec<PathBuf> {
    vec![
        config_dir.join("resource.d").join(name),
        Path::new("/etc/init.d").join(name),
    ]
}

/// A regular file with an execute bit.
pub fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Parser<'_> {
    fn lsb(&mut self, name: &str, t: &dyn TableLike, line: Option<usize>) -> Option<LsbGrant> {
        if name.is_empty() || name.contains('/') {
            self.error(
                line,
                name,
                format!("lsb.{name:?}: a script name has no '/'"),
                "use the name as written in haresources; pin the path with script = \"...\"",
            );
            return None;
        }
        let mut g = LsbGrant {
            script: None,
            line: line.unwrap_or(0),
        };
        for (key, _) in t.iter() {
            let (k, item) = t.get_key_value(key).expect("key from iter");
            let kl = self.line(k.span()).or(line);
            match (key, item.as_str()) {
                ("script", Some(s)) if s.starts_with('/') && !s.split('/').any(|c| c == "..") => {
                    g.script = Some(PathBuf::from(s))
                }
                ("script", _) => self.error(
                    kl,
                    key,
                    "script must be an absolute path string".to_string(),
                    "",
                ),
                (other, _) => self.error(
                    kl,
                    other,
                    format!("unknown key {other:?} in [lsb.{name}]"),
                    "the only key is script = \"/path/to/script\"",
                ),
            }
        }
        Some(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# comment
[agent.myagent]
programs = ["/usr/local/bin/tool"]

[resource."httpd::10.0.0.10:80"]
replace = true
programs = ["/usr/sbin/nginx"]
probe = ["10.0.0.10:80", "[fd77::1]:80"]
pidfiles = ["/run/nginx.pid"]
paths = ["/etc/nginx/nginx.conf"]
addresses = ["10.0.0.10"]
netlink_read = true

[lsb.postfix]
[lsb.legacy]
script = "/opt/legacy/init"
"#;

    #[test]
    fn monitor_settings_parse_and_bad_values_name_their_line() {
        let (p, d) = Policy::parse("[agent.IPaddr]\nmonitor = \"500ms\"\nrestarts = 2\n[resource.\"httpd\"]\nmonitor = 10\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            p.agents["IPaddr"].monitor,
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(p.agents["IPaddr"].restarts, Some(2));
        assert_eq!(
            p.resources["httpd"].monitor,
            Some(std::time::Duration::from_secs(10))
        );
        let (_, d) = Policy::parse("[agent.x]\nmonitor = \"soon\"\nrestarts = -1\n");
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].line, Some(2));
        assert!(d[0].message.contains("monitor must be a positive interval"));
        assert_eq!(d[1].line, Some(3));
    }

    #[test]
    fn sample_parses() {
        let (p, d) = Policy::parse(SAMPLE);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            p.agents["myagent"].programs,
            vec![PathBuf::from("/usr/local/bin/tool")]
        );
        let r = &p.resources["httpd::10.0.0.10:80"];
        assert!(r.replace && r.netlink_read);
        assert_eq!(r.line, 5);
        assert_eq!(r.probe.len(), 2);
        assert_eq!(p.lsb["postfix"].script, None);
        assert_eq!(
            p.lsb["legacy"].script,
            Some(PathBuf::from("/opt/legacy/init"))
        );
        assert_eq!(p.sections_for("myagent", "httpd::10.0.0.10:80").len(), 2);
        assert_eq!(p.sections_for("httpd", "httpd").len(), 0);
    }

    #[test]
    fn errors_carry_lines() {
        let text = "[resource.httpd]\nprograms = [\"apache2\"]\nprobe = [\"x:1\"]\nbogus = 1\n[lsb.a]\nscript = \"rel\"\n[other.x]\n";
        let (_, d) = Policy::parse(text);
        let lines: Vec<Option<usize>> = d.iter().map(|d| d.line).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(3), Some(4), Some(6), Some(7)],
            "{d:#?}"
        );
        assert!(d.iter().all(|d| d.file == FILE && d.is_error()));
        assert!(d[0]
            .to_string()
            .starts_with("agents.toml:2: programs: \"apache2\""));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let (_, d) = Policy::parse("[agent.x]\nprograms = [\"/a\"\n");
        assert_eq!(d.len(), 1);
        assert!(d[0].line.is_some(), "{d:?}");
        assert!(d[0].message.contains("not valid TOML"));
    }

    #[test]
    fn lsb_lookup_follows_heartbeat_order() {
        let dir = tempfile::tempdir().unwrap();
        let rd = dir.path().join("resource.d");
        std::fs::create_dir(&rd).unwrap();
        let script = rd.join("svc");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let (p, _) = Policy::parse("[lsb.svc]\n[lsb.gone]\n");
        assert_eq!(p.lsb_script("nope", dir.path()), None);
        // Not executable yet: not found.
        assert!(matches!(p.lsb_script("svc", dir.path()), Some(Err(_))));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(p.lsb_script("svc", dir.path()), Some(Ok(script)));
        let Some(Err(tried)) = p.lsb_script("gone", dir.path()) else {
            panic!()
        };
        assert_eq!(tried[1], PathBuf::from("/etc/init.d/gone"));
    }
}

//! The agent policy file, `<config-dir>/agents.toml`: what the
//! administrator grants beyond the built-in agents' own needs, per agent
//! and per resource, and the heartbeat/LSB scripts wasmbeat may run.
//! Absent file = nothing beyond the built-in defaults.
//!
//! ```toml
//! # Every resource of an agent (built-in or resource.d/NAME.wasm).
//! [agent.myagent]
//! accept_declared = true          # grant what the agent declares (see `wasmbeat check`)
//! commands.server = ["/usr/sbin/mydaemon", "-f", "-c", "{config}"]
//! probe = ["{listen}"]                 # holes: the resource's own parameters
//!
//! # One resource, by its haresources token exactly as written.
//! [resource."httpd::10.0.0.10:80"]
//! replace = true                  # start from nothing instead of adding
//! pidfiles = ["/run/apache2/apache2.pid"]
//! paths = ["/etc/apache2/apache2.conf"]   # may be inspected (kind only)
//! addresses = ["10.0.0.10/24/eth0"]       # IPaddr grammar: IP[/MASK[/NIC[/BROADCAST]]]
//! netlink_read = true             # may list links and addresses
//! pids_max = 64                   # the resource's cgroup: at most 64 tasks
//! memory_max = "512M"             # and this much memory
//!
//! [resource."httpd::10.0.0.10:80".commands.server]
//! argv = ["/usr/sbin/apache2", "-DFOREGROUND", "-f", "{config}"]
//! capabilities = ["net-bind-service", "setuid", "setgid", "kill"]
//! user = "root"                   # run as this user (default: root)
//!
//! # A command run on each state change (group started/stopped here, peer
//! # dead/back, split brain, monitor give-up), in order, one at a time,
//! # never on the heartbeat path. Its arguments get CAUSE NODE WHAT WHY.
//! [notify.pager]
//! argv = ["/usr/local/sbin/ha-notify", "--to", "oncall"]   # fixed text only
//! events = ["group_started", "group_stopped", "peer_dead", "split_brain"]  # default: the list below
//! user = "nobody"                 # default nobody: no root shell by default
//! capabilities = []               # default none
//! timeout = 10                    # seconds (or "500ms"); killed with what it started
//!
//! # A heartbeat resource script or init script named in haresources.
//! [lsb.postfix]
//! script = "/etc/init.d/postfix"   # optional: default resource.d/NAME, then /etc/init.d/NAME
//! capabilities = ["all"]           # optional: the script's capabilities (default all)
//! ```
//!
//! Sections apply in order: the agent's own declared needs (built-in
//! agents, or any agent a section sets `accept_declared` for), then
//! `[agent.NAME]`, then `[resource."TOKEN"]`; `replace = true` starts from
//! nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Item, TableLike};

use super::capability::{self, Capability};
use super::launchers;
use super::template::Template;
use crate::config::diag::{Code, Diagnostic};
use crate::monitor::MonitorSpec;

/// The file name inside the configuration directory.
pub const FILE: &str = "agents.toml";

/// A command granted by the administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// What the agent asks for.
    pub name: String,
    /// `argv[0]` and arguments.
    pub argv: Vec<Template>,
    /// Capabilities the process keeps (None: the agent's declaration, or none).
    pub capabilities: Option<Vec<Capability>>,
    /// Run as this user instead of root.
    pub user: Option<String>,
    /// Line of the definition.
    pub line: usize,
}

/// The administrator's limits on what one resource's processes may use
/// (its cgroup); unset ones keep the confinement defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSpec {
    /// `pids_max`: tasks at once.
    pub pids_max: Option<u64>,
    /// `memory_max`: bytes.
    pub memory_max: Option<u64>,
}

impl LimitSpec {
    /// The limits a resource's processes run under.
    pub fn effective(&self) -> crate::confine::ProcessLimits {
        let d = crate::confine::ProcessLimits::default();
        crate::confine::ProcessLimits {
            pids_max: self.pids_max.or(d.pids_max),
            memory_max: self.memory_max.or(d.memory_max),
            ..d
        }
    }
}

/// The grants (and monitoring settings) of one policy section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Replace the grant so far instead of adding to it.
    pub replace: bool,
    /// Grant what the agent declares in its meta-data (as `wasmbeat check`
    /// shows it), bound to the resource's parameters; built-in agents
    /// always have this.
    pub accept_declared: bool,
    /// Listing links and addresses.
    pub netlink_read: bool,
    /// Addresses (IPaddr grammar, templates).
    pub addresses: Vec<Template>,
    /// Commands by name.
    pub commands: Vec<CommandSpec>,
    /// Probe targets (templates).
    pub probe: Vec<Template>,
    /// Pid files (templates).
    pub pidfiles: Vec<Template>,
    /// Inspectable paths (templates).
    pub paths: Vec<Template>,
    /// Cgroup limits.
    pub limits: LimitSpec,
    /// Line of the section header, for messages.
    pub line: usize,
    /// `monitor = "10"`: probe the resource this often while its group runs
    /// here (heartbeat time syntax). Not a grant: resource monitoring is a
    /// wasmbeat extension, off unless set.
    pub monitor: Option<Duration>,
    /// `restarts = 3`: local restarts after failed probes before the group
    /// is handed to the peer.
    pub restarts: Option<u32>,
}

/// Permission to run one heartbeat/LSB script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsbGrant {
    /// An explicit script path; None: heartbeat's lookup order.
    pub script: Option<PathBuf>,
    /// Capabilities the script keeps (None: all, as an init script expects).
    pub capabilities: Option<Vec<Capability>>,
    /// Run as this user instead of root.
    pub user: Option<String>,
    /// Line of the section header.
    pub line: usize,
}

/// Local restarts after failed probes before a monitored resource's group
/// is given up, when `restarts` is unset.
pub const DEFAULT_RESTARTS: u32 = 3;

/// The whole policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `[agent.NAME]` sections.
    pub agents: BTreeMap<String, Section>,
    /// `[resource."TOKEN"]` sections.
    pub resources: BTreeMap<String, Section>,
    /// `[lsb.NAME]` sections.
    pub lsb: BTreeMap<String, LsbGrant>,
    /// `[notify.NAME]` hooks, in file order.
    pub notify: Vec<NotifyHook>,
    /// `[fence.NAME]` grants of fence agents.
    pub fence: BTreeMap<String, FenceSection>,
}

/// `[fence.NAME]`: what a fence agent (built-in `http-switch`, or
/// `NAME.wasm`) may reach, beyond a built-in agent's own `base`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceSection {
    /// `http = ["http://10.9.0.254:8080/pdu"]`: endpoints (origin and path
    /// prefix), each checked when parsed.
    pub http: Vec<crate::fence::grant::HttpGrant>,
    /// `commands.NAME = [...]` (and `pids_max`, `memory_max`): vendor
    /// commands the agent may run through `process`, as for resources.
    pub grant: Section,
    /// Line of the section header.
    pub line: usize,
}

/// Keys of a `[fence.NAME]` section.
const FENCE_KEYS: &[&str] = &["http", "commands", "pids_max", "memory_max"];

/// A `[notify.NAME]` hook: a command the daemon runs on state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyHook {
    /// The section name (`pager` of `[notify.pager]`).
    pub name: String,
    /// Program and fixed arguments; the event's CAUSE NODE WHAT WHY follow.
    pub argv: Vec<String>,
    /// The causes it runs for.
    pub events: Vec<crate::cluster::Cause>,
    /// Run as this user (default `nobody`).
    pub user: String,
    /// Capabilities it keeps (default none).
    pub capabilities: Vec<Capability>,
    /// Killed, with everything it started, after this long.
    pub timeout: Duration,
    /// Line of the section.
    pub line: usize,
}

/// What a hook runs for when `events` is not given: the changes an
/// operator is paged for.
pub const DEFAULT_NOTIFY_EVENTS: &[crate::cluster::Cause] = &[
    crate::cluster::Cause::GroupStarted,
    crate::cluster::Cause::GroupStopped,
    crate::cluster::Cause::GroupFailed,
    crate::cluster::Cause::PeerDead,
    crate::cluster::Cause::PeerUp,
    crate::cluster::Cause::PeerBack,
    crate::cluster::Cause::SplitBrain,
    crate::cluster::Cause::SplitBrainResolved,
    crate::cluster::Cause::Failover,
    crate::cluster::Cause::MonitorGiveUp,
    crate::cluster::Cause::Fencing,
    crate::cluster::Cause::Tiebreak,
];

/// Where a section applies, for messages (`[agent.httpd]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionRef {
    /// `[agent.NAME]`.
    Agent(String),
    /// `[resource."TOKEN"]`.
    Resource(String),
}

impl std::fmt::Display for SectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SectionRef::Agent(n) => write!(f, "[agent.{n}]"),
            SectionRef::Resource(t) => write!(f, "[resource.\"{t}\"]"),
        }
    }
}

/// 1-based line of a byte offset. The end of a file that ends with a
/// newline (where TOML reports an unclosed array or table) belongs to the
/// last line: there is no line after it to show or to edit.
fn line_of(text: &str, offset: usize) -> usize {
    // Bytes, not a str slice: an offset inside a character must not panic.
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    line.min(text.lines().count().max(1))
}

const GRANT_KEYS: &str = "replace, accept_declared, netlink_read, addresses, commands, probe, \
                          pidfiles, paths, pids_max, memory_max, monitor, restarts";

struct Parser<'a> {
    text: &'a str,
    diags: Vec<Diagnostic>,
}

/// Parse `512M`, `1G`, `65536` (bytes) for `memory_max`.
fn parse_bytes(item: &Item) -> Option<u64> {
    if let Some(n) = item.as_integer() {
        return u64::try_from(n).ok().filter(|n| *n > 0);
    }
    let s = item.as_str()?.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
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
        let values: Vec<&toml_edit::Value> = match item.as_array() {
            Some(arr) => arr.iter().collect(),
            None => {
                self.error(
                    line,
                    key,
                    format!("{key} must be an array of strings"),
                    &format!("write e.g. {key} = [\"...\"]"),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for v in values {
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

    fn templates(&mut self, item: &Item, key: &str, line: Option<usize>) -> Vec<Template> {
        let mut out = Vec::new();
        for s in self.strings(item, key, line) {
            match Template::parse(&s) {
                Ok(t) => out.push(t),
                Err(e) => self.error(
                    line,
                    &s,
                    format!("{key}: {e}"),
                    "holes are {parameter}, {parameter|default} or a whole element {parameter?}",
                ),
            }
        }
        out
    }

    fn capabilities(&mut self, item: &Item, line: Option<usize>) -> Option<Vec<Capability>> {
        let names = self.strings(item, "capabilities", line);
        match capability::parse_list(&names) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(line, &e.0, format!("capabilities: {e}"), "");
                None
            }
        }
    }

    fn user(&mut self, item: &Item, line: Option<usize>) -> Option<String> {
        match item.as_str() {
            Some(u)
                if wasmbeat_args::value::check(wasmbeat_args::value::ValueType::Name, u)
                    .is_ok() =>
            {
                Some(u.to_string())
            }
            _ => {
                self.error(
                    line,
                    "user",
                    "user must be a user name string".to_string(),
                    "write e.g. user = \"nobody\"",
                );
                None
            }
        }
    }

    /// A `[notify.NAME]` hook. Its argv is fixed text: an event's words
    /// arrive as separate arguments, never through a shell or a hole.
    fn notify(&mut self, name: &str, t: &dyn TableLike, line: Option<usize>) -> Option<NotifyHook> {
        let mut hook = NotifyHook {
            name: name.to_string(),
            argv: Vec::new(),
            events: DEFAULT_NOTIFY_EVENTS.to_vec(),
            user: "nobody".to_string(),
            capabilities: Vec::new(),
            timeout: Duration::from_secs(10),
            line: line.unwrap_or(0),
        };
        for (key, _) in t.iter() {
            let (k, v) = t.get_key_value(key).expect("key from iter");
            let kl = self.line(k.span()).or(line);
            match key {
                "argv" => hook.argv = self.strings(v, "argv", kl),
                "user" => hook.user = self.user(v, kl)?,
                "capabilities" => hook.capabilities = self.capabilities(v, kl)?,
                // Seconds as a number, or heartbeat's time syntax ("500ms").
                "timeout" => match v
                    .as_float()
                    .or_else(|| v.as_integer().map(|n| n as f64))
                    .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                    .or_else(|| {
                        v.as_str()
                            .and_then(|t| crate::config::duration::parse_duration(t).ok())
                    }) {
                    Some(d) if !d.is_zero() => hook.timeout = d,
                    _ => self.error(
                        kl,
                        "timeout",
                        format!("notify.{name}: timeout must be a number of seconds or a time like \"500ms\""),
                        "write timeout = 10",
                    ),
                },
                "events" => {
                    hook.events.clear();
                    for e in self.strings(v, "events", kl) {
                        match crate::cluster::Cause::ALL.iter().find(|c| c.as_str() == e) {
                            Some(c) => hook.events.push(*c),
                            None => self.error(
                                kl,
                                &e,
                                format!("notify.{name}: unknown event {e:?}"),
                                &format!(
                                    "events are: {}",
                                    crate::cluster::Cause::ALL
                                        .iter()
                                        .map(|c| c.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ),
                        }
                    }
                }
                other => self.error(
                    kl,
                    other,
                    format!("unknown key {other:?} in notify.{name}"),
                    "a notify hook has argv, events, user, capabilities and timeout",
                ),
            }
        }
        let program = hook.argv.first().cloned().unwrap_or_default();
        if !program.starts_with('/') || program.split('/').any(|c| c == "..") {
            self.error(
                line,
                &program,
                format!(
                    "notify.{name}: argv must start with an absolute program path without '..'"
                ),
                "write argv = [\"/usr/local/sbin/ha-notify\"]",
            );
            return None;
        }
        Some(hook)
    }

    /// One command: `NAME = [argv...]` or a table with argv/capabilities/user.
    fn command(&mut self, name: &str, item: &Item, line: Option<usize>) -> Option<CommandSpec> {
        let mut spec = CommandSpec {
            name: name.to_string(),
            argv: Vec::new(),
            capabilities: None,
            user: None,
            line: line.unwrap_or(0),
        };
        if item.is_array() {
            spec.argv = self.templates(item, "argv", line);
        } else if let Some(t) = item.as_table_like() {
            for (key, _) in t.iter() {
                let (k, v) = t.get_key_value(key).expect("key from iter");
                let kl = self.line(k.span()).or(line);
                match key {
                    "argv" => spec.argv = self.templates(v, "argv", kl),
                    "capabilities" => spec.capabilities = self.capabilities(v, kl),
                    "user" => spec.user = self.user(v, kl),
                    other => self.error(
                        kl,
                        other,
                        format!("unknown key {other:?} in command {name}"),
                        "a command has argv, capabilities and user",
                    ),
                }
            }
        } else {
            self.error(
                line,
                name,
                format!("commands.{name} must be an argv array or a table"),
                &format!("write commands.{name} = [\"/usr/sbin/prog\", \"arg\"]"),
            );
            return None;
        }
        let Some(first) = spec.argv.first() else {
            self.error(
                line,
                name,
                format!("command {name} has no argv"),
                &format!("write commands.{name} = [\"/usr/sbin/prog\", \"arg\"]"),
            );
            return None;
        };
        if !first.has_holes() {
            let program = first.source();
            if !program.starts_with('/') || program.split('/').any(|c| c == "..") {
                self.error(
                    line,
                    program,
                    format!(
                        "command {name}: {program:?} is not an absolute program path without '..'"
                    ),
                    "commands name their program by absolute path",
                );
                return None;
            }
            if launchers::is_launcher(Path::new(program))
                && spec.argv.iter().any(Template::has_holes)
            {
                self.error(
                    line,
                    program,
                    format!(
                        "command {name}: {program} runs other programs (a shell, interpreter or launcher), so its \
                         arguments must be fixed text, without {{parameter}} holes"
                    ),
                    "write the whole command line out, or grant the program the interpreter would run instead",
                );
                return None;
            }
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            || name.is_empty()
        {
            self.error(
                line,
                name,
                format!("command name {name:?} may hold only letters, digits, '-' and '_'"),
                "",
            );
            return None;
        }
        Some(spec)
    }

    fn commands(&mut self, item: &Item, line: Option<usize>) -> Vec<CommandSpec> {
        let Some(t) = item.as_table_like() else {
            self.error(
                line,
                "commands",
                "commands must be a table of NAME = [argv...]".to_string(),
                "write commands.server = [\"/usr/sbin/prog\", \"-f\"]",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, _) in t.iter() {
            let (k, v) = t.get_key_value(name).expect("key from iter");
            let l = self.line(k.span()).or(line);
            out.extend(self.command(name, v, l));
        }
        out
    }

    fn section(&mut self, t: &dyn TableLike, header_line: Option<usize>) -> Section {
        let mut g = Section {
            line: header_line.unwrap_or(0),
            ..Section::default()
        };
        for (key, _) in t.iter() {
            let (k, item) = t.get_key_value(key).expect("key from iter");
            let line = self.line(k.span()).or(header_line);
            match key {
                "replace" | "netlink_read" | "accept_declared" => match item.as_bool() {
                    Some(b) if key == "replace" => g.replace = b,
                    Some(b) if key == "accept_declared" => g.accept_declared = b,
                    Some(b) => g.netlink_read = b,
                    None => self.error(line, key, format!("{key} must be true or false"), ""),
                },
                "commands" => g.commands = self.commands(item, line),
                "pidfiles" => g.pidfiles = self.templates(item, key, line),
                "paths" => g.paths = self.templates(item, key, line),
                "probe" => g.probe = self.templates(item, key, line),
                "addresses" => g.addresses = self.templates(item, key, line),
                "programs" => self.error(
                    line,
                    key,
                    "programs is no longer a grant: an agent cannot pass arguments of its own to a program".to_string(),
                    "grant whole command lines instead: commands.NAME = [\"/usr/sbin/prog\", \"-f\", \"{config}\"], \
                     and have the agent ask for NAME",
                ),
                "pids_max" => match item.as_integer().and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0) {
                    Some(n) => g.limits.pids_max = Some(n),
                    None => self.error(line, key, "pids_max must be a whole number >= 1".to_string(), "write e.g. pids_max = 64"),
                },
                "memory_max" => match parse_bytes(item) {
                    Some(n) => g.limits.memory_max = Some(n),
                    None => self.error(
                        line,
                        key,
                        "memory_max must be a positive size".to_string(),
                        "write e.g. memory_max = \"512M\" (K, M, G suffixes) or a number of bytes",
                    ),
                },
                "monitor" => match item
                    .as_str()
                    .map(crate::config::duration::parse_duration)
                    .or_else(|| {
                        item.as_integer()
                            .map(|n| Ok(Duration::from_secs(n.max(0) as u64)))
                    }) {
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
                    &format!("keys are {GRANT_KEYS}"),
                ),
            }
        }
        g
    }

    /// A `[fence.NAME]` section: `http = [...]` endpoints.
    fn fence(&mut self, name: &str, t: &dyn TableLike, line: Option<usize>) -> FenceSection {
        let mut f = FenceSection {
            http: Vec::new(),
            grant: Section::default(),
            line: line.unwrap_or(0),
        };
        // Commands and limits are read as in [agent.NAME] sections.
        let mut rest = toml_edit::Table::new();
        for (key, item) in t.iter() {
            if key != "http" && FENCE_KEYS.contains(&key) {
                rest.insert(key, item.clone());
            }
        }
        f.grant = self.section(&rest, line);
        for (key, _) in t.iter() {
            let (k, item) = t.get_key_value(key).expect("key from iter");
            let kl = self.line(k.span()).or(line);
            match key {
                "commands" | "pids_max" | "memory_max" => {}
                "http" => {
                    for u in self.strings(item, "http", kl) {
                        match crate::fence::grant::HttpGrant::parse(&u) {
                            Ok(g) => f.http.push(g),
                            Err(e) => self.error(
                                kl,
                                &u,
                                format!("fence.{name}: http endpoint {u:?}: {e}"),
                                "write http = [\"http://HOST:PORT/PATH-PREFIX\"] (requests may go to that origin, under that path)",
                            ),
                        }
                    }
                }
                other => self.error(
                    kl,
                    other,
                    format!("unknown key {other:?} in [fence.{name}]"),
                    "a fence section has http = [\"http://HOST:PORT/PREFIX\", ...], commands.NAME = [\"/usr/sbin/prog\", ...], pids_max and memory_max",
                ),
            }
        }
        f
    }

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
            capabilities: None,
            user: None,
            line: line.unwrap_or(0),
        };
        for (key, _) in t.iter() {
            let (k, item) = t.get_key_value(key).expect("key from iter");
            let kl = self.line(k.span()).or(line);
            match key {
                "script" => match item.as_str() {
                    Some(s) if s.starts_with('/') && !s.split('/').any(|c| c == "..") => {
                        g.script = Some(PathBuf::from(s))
                    }
                    _ => self.error(
                        kl,
                        key,
                        "script must be an absolute path string".to_string(),
                        "",
                    ),
                },
                "capabilities" => g.capabilities = self.capabilities(item, kl),
                "user" => g.user = self.user(item, kl),
                other => self.error(
                    kl,
                    other,
                    format!("unknown key {other:?} in [lsb.{name}]"),
                    "the keys are script = \"/path/to/script\", capabilities = [...] and user = \"name\"",
                ),
            }
        }
        Some(g)
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
                    "write [agent.NAME], [resource.\"TOKEN\"], [lsb.NAME] or [notify.NAME]",
                );
                continue;
            };
            if !matches!(kind, "agent" | "resource" | "lsb" | "notify" | "fence") {
                p.error(
                    kline,
                    kind,
                    format!("unknown section kind {kind:?}"),
                    "sections are [agent.NAME], [resource.\"TOKEN\"], [lsb.NAME], [notify.NAME] and [fence.NAME]",
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
                        let g = p.section(t, line);
                        policy.agents.insert(name.to_string(), g);
                    }
                    "resource" => {
                        let g = p.section(t, line);
                        policy.resources.insert(name.to_string(), g);
                    }
                    "notify" => {
                        if let Some(h) = p.notify(name, t, line) {
                            policy.notify.push(h);
                        }
                    }
                    "fence" => {
                        let f = p.fence(name, t, line);
                        policy.fence.insert(name.to_string(), f);
                    }
                    _ => {
                        if let Some(l) = p.lsb(name, t, line) {
                            policy.lsb.insert(name.to_string(), l);
                        }
                    }
                }
            }
        }
        (policy, p.diags)
    }

    /// Read `<dir>/agents.toml`; a missing file is an empty policy. The
    /// file grants root's powers to agents, so it is refused unless only
    /// root (or the user wasmbeat runs as) could have written it.
    pub fn load(dir: &Path) -> (Policy, Vec<Diagnostic>) {
        let path = dir.join(FILE);
        if path.exists() {
            if let Err(e) = crate::trust::check("agent policy", &path) {
                return (
                    Policy::default(),
                    vec![Diagnostic::error(
                        Code::Unreadable,
                        FILE,
                        None,
                        e.to_string(),
                    )],
                );
            }
        }
        match std::fs::read_to_string(&path) {
            Ok(t) => {
                let (policy, mut diags) = Policy::parse(&t);
                // A hook that cannot run would fail at every event, unseen
                // until the page that never came.
                for h in &policy.notify {
                    if !is_executable_file(Path::new(&h.argv[0])) {
                        diags.push(
                            Diagnostic::error(
                                Code::BadPolicy,
                                FILE,
                                Some(h.line),
                                format!(
                                    "notify.{}: {} is not an executable file",
                                    h.name, h.argv[0]
                                ),
                            )
                            .hint("install the program or fix argv".to_string()),
                        );
                    }
                }
                (policy, diags)
            }
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
    pub fn sections_for(&self, agent: &str, resource: &str) -> Vec<&Section> {
        self.named_sections_for(agent, resource)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// How a resource is monitored, from the `monitor`/`restarts` keys
    /// of the sections that apply (the most specific wins); None when no
    /// section sets `monitor` (heartbeat's behaviour: never probed).
    pub fn monitor_spec(&self, agent: &str, resource: &str) -> Option<MonitorSpec> {
        let sections = self.sections_for(agent, resource);
        let interval = sections.iter().rev().find_map(|s| s.monitor)?;
        let max_restarts = sections
            .iter()
            .rev()
            .find_map(|s| s.restarts)
            .unwrap_or(DEFAULT_RESTARTS);
        Some(MonitorSpec {
            interval,
            max_restarts,
        })
    }

    /// [`Policy::sections_for`] with each section's name, for messages.
    pub fn named_sections_for(&self, agent: &str, resource: &str) -> Vec<(SectionRef, &Section)> {
        self.agents
            .get(agent)
            .map(|s| (SectionRef::Agent(agent.to_string()), s))
            .into_iter()
            .chain(
                self.resources
                    .get(resource)
                    .map(|s| (SectionRef::Resource(resource.to_string()), s)),
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# comment
[agent.myagent]
commands.tool = ["/usr/local/bin/tool", "--config", "{config}"]
probe = ["{listen}"]

[resource."httpd::10.0.0.10:80"]
replace = true
probe = ["10.0.0.10:80", "[fd77::1]:80"]
pidfiles = ["/run/nginx.pid"]
paths = ["/etc/nginx/nginx.conf"]
addresses = ["10.0.0.10/24/eth0"]
netlink_read = true
pids_max = 32
memory_max = "256M"

[resource."httpd::10.0.0.10:80".commands.server]
argv = ["/usr/sbin/nginx", "-g", "daemon off;"]
capabilities = ["net-bind-service", "CAP_SETUID", "setgid"]
user = "root"

[lsb.postfix]
[lsb.legacy]
script = "/opt/legacy/init"
capabilities = ["kill"]
"#;

    #[test]
    fn sample_parses() {
        let (p, d) = Policy::parse(SAMPLE);
        assert!(d.is_empty(), "{d:?}");
        let a = &p.agents["myagent"];
        assert_eq!(a.commands.len(), 1);
        assert_eq!(a.commands[0].name, "tool");
        assert_eq!(a.commands[0].argv[2].source(), "{config}");
        assert_eq!(a.commands[0].line, 3);
        let r = &p.resources["httpd::10.0.0.10:80"];
        assert!(r.replace && r.netlink_read);
        assert_eq!(r.line, 6);
        assert_eq!(r.probe.len(), 2);
        assert_eq!(r.limits.pids_max, Some(32));
        assert_eq!(r.limits.memory_max, Some(256 << 20));
        let server = &r.commands[0];
        assert_eq!(server.capabilities.as_ref().map(Vec::len), Some(3));
        assert_eq!(server.user.as_deref(), Some("root"));
        assert_eq!(p.lsb["postfix"].script, None);
        assert_eq!(
            p.lsb["legacy"].script,
            Some(PathBuf::from("/opt/legacy/init"))
        );
        assert_eq!(p.lsb["legacy"].capabilities.as_ref().map(Vec::len), Some(1));
        assert_eq!(p.sections_for("myagent", "httpd::10.0.0.10:80").len(), 2);
        assert_eq!(p.sections_for("httpd", "httpd").len(), 0);
    }

    #[test]
    fn monitor_spec_takes_the_most_specific_section_and_default_restarts() {
        let (p, d) = Policy::parse(
            "[agent.httpd]\nmonitor = \"5\"\nrestarts = 1\n[resource.\"httpd::x\"]\nmonitor = \"30\"\n[agent.named]\nmonitor = \"7\"\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let spec = |a: &str, r: &str| {
            p.monitor_spec(a, r)
                .map(|s| (s.interval.as_secs(), s.max_restarts))
        };
        assert_eq!(spec("httpd", "httpd"), Some((5, 1)));
        assert_eq!(spec("httpd", "httpd::x"), Some((30, 1)));
        assert_eq!(spec("named", "named"), Some((7, DEFAULT_RESTARTS)));
        assert_eq!(spec("mysqld", "mysqld"), None);
    }

    #[test]
    fn monitor_settings_parse_and_bad_values_name_their_line() {
        let (p, d) = Policy::parse(
            "[agent.IPaddr]\nmonitor = \"500ms\"\nrestarts = 2\n[resource.\"httpd\"]\nmonitor = 10\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.agents["IPaddr"].monitor, Some(Duration::from_millis(500)));
        assert_eq!(p.agents["IPaddr"].restarts, Some(2));
        assert_eq!(p.resources["httpd"].monitor, Some(Duration::from_secs(10)));
        let (_, d) = Policy::parse("[agent.x]\nmonitor = \"soon\"\nrestarts = -1\n");
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].line, Some(2));
        assert!(d[0].message.contains("monitor must be a positive interval"));
        assert_eq!(d[1].line, Some(3));
    }

    #[test]
    fn notify_hooks_default_to_nobody_without_capabilities() {
        let (p, d) = Policy::parse(
            "[notify.pager]\nargv = [\"/usr/local/sbin/ha-notify\", \"--to\", \"oncall\"]\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let h = &p.notify[0];
        assert_eq!((h.name.as_str(), h.user.as_str()), ("pager", "nobody"));
        assert!(h.capabilities.is_empty());
        assert_eq!(h.timeout, Duration::from_secs(10));
        assert_eq!(h.events, DEFAULT_NOTIFY_EVENTS);
        let (p, d) = Policy::parse(
            "[notify.x]\nargv = [\"/bin/true\"]\nevents = [\"split_brain\"]\ntimeout = \"500ms\"\nuser = \"root\"\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.notify[0].events, [crate::cluster::Cause::SplitBrain]);
        assert_eq!(p.notify[0].timeout, Duration::from_millis(500));
        assert_eq!(p.notify[0].user, "root");
    }

    #[test]
    fn notify_hooks_refuse_relative_programs_and_unknown_events() {
        let (p, d) = Policy::parse("[notify.x]\nargv = [\"ha-notify\"]\n");
        assert!(p.notify.is_empty());
        assert!(d[0].to_string().contains("absolute program path"), "{d:?}");
        let (_, d) =
            Policy::parse("[notify.x]\nargv = [\"/bin/true\"]\nevents = [\"group_sarted\"]\n");
        let text = d[0].to_string();
        assert!(
            text.contains("agents.toml:3") && text.contains("group_started"),
            "{text}"
        );
        let (_, d) = Policy::parse("[notify.x]\nargv = [\"/bin/true\"]\ntimeout = \"soon\"\n");
        assert!(d[0].to_string().contains("timeout"), "{d:?}");
    }

    #[test]
    fn errors_carry_lines() {
        let text = "[resource.httpd]\ncommands.x = [\"apache2\"]\nprobe = [\"{x\"]\nbogus = 1\n[lsb.a]\nscript = \"rel\"\n[other.x]\n";
        let (_, d) = Policy::parse(text);
        let lines: Vec<Option<usize>> = d.iter().map(|d| d.line).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(3), Some(4), Some(6), Some(7)],
            "{d:#?}"
        );
        assert!(d.iter().all(|d| d.file == FILE && d.is_error()));
        assert!(
            d[0].to_string().starts_with("agents.toml:2: command x"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn programs_are_refused_with_the_replacement() {
        let (_, d) = Policy::parse("[agent.x]\nprograms = [\"/usr/sbin/apache2\"]\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(2));
        assert!(
            d[0].message.contains("programs is no longer a grant"),
            "{}",
            d[0]
        );
        assert!(d[0].to_string().contains("commands.NAME"), "{}", d[0]);
    }

    #[test]
    fn fence_sections_grant_endpoints_and_commands_and_nothing_else() {
        let (p, d) = Policy::parse(
            "[fence.acme]\nhttp = [\"http://10.9.0.254:8080/pdu\"]\ncommands.ipmi = [\"/usr/bin/ipmitool\", \"-H\", \"{host}\", \"power\", \"cycle\"]\npids_max = 8\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let f = &p.fence["acme"];
        assert_eq!(f.http[0].text, "http://10.9.0.254:8080/pdu");
        assert_eq!(f.grant.commands[0].name, "ipmi");
        assert_eq!(f.grant.limits.pids_max, Some(8));
        assert_eq!(f.line, 1);
        let (_, d) = Policy::parse(
            "[fence.acme]\nhttp = [\"http://a@b/pdu\", \"ftp://x/\"]\naddresses = [\"10.0.0.1\"]\n",
        );
        let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("user name in the URL"), "{msgs:?}");
        assert!(msgs[1].contains("only http:// and https://"), "{msgs:?}");
        assert!(
            msgs[2].contains("unknown key \"addresses\" in [fence.acme]"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().all(|m| m.starts_with("agents.toml:")),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_shell_with_holes_is_refused_and_a_fixed_one_accepted() {
        let (_, d) =
            Policy::parse("[agent.x]\ncommands.go = [\"/bin/sh\", \"-c\", \"{script}\"]\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("runs other programs"), "{}", d[0]);
        let (p, d) =
            Policy::parse("[agent.x]\ncommands.go = [\"/bin/sh\", \"-c\", \"exec /usr/sbin/x\"]\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.agents["x"].commands[0].argv.len(), 3);
    }

    #[test]
    fn bad_limits_capabilities_and_users() {
        let (_, d) = Policy::parse(
            "[agent.x]\npids_max = 0\nmemory_max = \"lots\"\ncommands.a = { argv = [\"/bin/true\"], capabilities = [\"root\"], user = \"-x\" }\n",
        );
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(d.len(), 4, "{msgs:?}");
        assert!(msgs[0].contains("pids_max"));
        assert!(msgs[1].contains("memory_max"));
        assert!(msgs[2].contains("not a Linux capability"));
        assert!(msgs[3].contains("user must be"));
    }

    #[test]
    fn a_policy_others_could_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(FILE);
        std::fs::write(&f, "[agent.x]\nnetlink_read = true\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (p, d) = Policy::load(dir.path());
        assert!(d.is_empty(), "{d:?}");
        assert!(p.agents["x"].netlink_read);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (p, d) = Policy::load(dir.path());
        assert_eq!(p, Policy::default());
        assert!(d[0].message.contains("chmod go-w"), "{d:?}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let (_, d) = Policy::parse("[agent.x]\nprobe = [\"/a\"\n");
        assert_eq!(d.len(), 1);
        assert!(d[0].line.is_some(), "{d:?}");
        assert!(d[0].message.contains("not valid TOML"));
    }

    #[test]
    fn syntax_error_at_end_of_file_names_the_last_line() {
        // Found by the agents_toml fuzz target: TOML reports an unclosed
        // array at the end of the file, which used to be line 3 of 2.
        let (_, d) = Policy::parse("[agent.x]\nprobe = [\"/a\"\n");
        assert_eq!(d[0].line, Some(2), "{d:?}");
        let (_, d) = Policy::parse("[agent.x]\nprobe = [\"/a\"");
        assert_eq!(d[0].line, Some(2), "{d:?}");
        assert_eq!(line_of("a\n\u{e9}", 3), 2, "an offset inside a character");
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

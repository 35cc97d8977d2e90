//! `ha.cf`: heartbeat 3.0.6's main configuration, read line by line in
//! order, as `config.c parse_config` does, into [`HaCf`].

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use super::diag::{Code, Diagnostic};
use super::duration::{format_duration, parse_duration};

/// The name diagnostics use for this file.
pub const FILE: &str = "ha.cf";

/// heartbeat's default UDP port (`ha-cluster` in /etc/services).
pub const DEFAULT_UDPPORT: u16 = 694;
/// heartbeat's default serial speed.
pub const DEFAULT_BAUD: u32 = 19200;
/// Serial speeds heartbeat accepts.
pub const BAUD_RATES: &[u32] = &[9600, 19200, 38400, 57600, 115200, 230400, 460800];
/// heartbeat's MAXNODE.
pub const MAX_NODES: usize = 100;

/// `auto_failback`: which resource protocol runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFailback {
    /// nice_failback protocol; resources move back to their preferred node.
    On,
    /// nice_failback protocol; resources stay where they are.
    Off,
    /// The old ip-request protocol (heartbeat's default when the directive is absent).
    Legacy,
}

/// `autojoin`: whether unlisted nodes may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoJoin {
    /// Only listed nodes (the only value haresources mode allows).
    None,
    /// Nodes other than this one may join unlisted.
    Other,
    /// Any node may join unlisted.
    Any,
}

/// `uuidfrom`: where the node UUID comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UuidFrom {
    /// `/var/lib/heartbeat/hb_uuid` (created at first start).
    File,
    /// Derived from the node name.
    Nodename,
}

/// `msgfmt`: whether the classic inner `auth` field is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgFmt {
    /// heartbeat's default.
    Classic,
    /// Netstring.
    Netstring,
}

/// `hbgenmethod`: how the generation number is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenMethod {
    /// Stored on disk and incremented at each start (default).
    File,
    /// The time of day at start.
    Time,
}

/// One heartbeat communication medium.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Medium {
    /// UDP broadcast on an interface, to `port` (the `udpport` in effect on that line).
    Bcast {
        /// Interface name.
        iface: String,
        /// UDP port.
        port: u16,
    },
    /// UDP unicast to one peer (`ucast`, or `ucast6` for an IPv6 peer).
    Ucast {
        /// Interface name.
        iface: String,
        /// Peer address.
        peer: IpAddr,
        /// UDP port.
        port: u16,
    },
    /// UDP multicast (`mcast`, or `mcast6` for an IPv6 group).
    Mcast {
        /// Interface name.
        iface: String,
        /// Multicast group.
        group: IpAddr,
        /// UDP port (mcast lines carry their own).
        port: u16,
        /// TTL / hop limit (heartbeat accepts 0-4).
        ttl: u8,
        /// Whether own packets are looped back.
        loop_: bool,
    },
    /// A serial line at `baud` (the `baud` in effect on that line).
    Serial {
        /// Device path.
        device: String,
        /// Line speed.
        baud: u32,
    },
}

/// A `ping_group` pseudo-node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PingGroup {
    /// The pseudo-node's name.
    pub name: String,
    /// Hosts pinged; the group is up if any answers.
    pub hosts: Vec<String>,
}

/// A `respawn` or `failfast` child.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Respawn {
    /// User to run as.
    pub user: String,
    /// Program and arguments as written.
    pub command: String,
    /// `failfast`: reboot if the child dies abnormally.
    pub failfast: bool,
}

/// A `stonith` device (one for the whole cluster).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stonith {
    /// cluster-glue plugin type.
    pub kind: String,
    /// Its configuration file.
    pub config_file: String,
}

/// A `stonith_host` device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StonithHost {
    /// Host the device is attached to, or `*`.
    pub host: String,
    /// cluster-glue plugin type.
    pub kind: String,
    /// Plugin parameters.
    pub params: Vec<String>,
}

/// A directive wasmbeat accepts for compatibility and keeps verbatim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OtherDirective {
    /// Directive name.
    pub name: String,
    /// The rest of the line.
    pub value: String,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Everything ha.cf says, with heartbeat's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HaCf {
    /// Cluster members, lowercased, in file order.
    pub nodes: Vec<String>,
    /// Interval between own heartbeats (default 1 s).
    #[serde(rename = "keepalive_ms", serialize_with = "ser_ms")]
    pub keepalive: Duration,
    /// Silence after which a node is dead (default 30 s).
    #[serde(rename = "deadtime_ms", serialize_with = "ser_ms")]
    pub deadtime: Duration,
    /// Gap that logs a late-heartbeat warning (default deadtime/2).
    #[serde(rename = "warntime_ms", serialize_with = "ser_ms")]
    pub warntime: Duration,
    /// Dead time until communication is first up (derived from deadtime by default).
    #[serde(rename = "initdead_ms", serialize_with = "ser_ms")]
    pub initdead: Duration,
    /// Dead time for ping nodes (default deadtime).
    #[serde(rename = "deadping_ms", serialize_with = "ser_ms")]
    pub deadping: Duration,
    /// The last `udpport` (each medium records the port in effect on its line).
    pub udpport: u16,
    /// The last `baud`.
    pub baud: u32,
    /// Media in file order.
    pub media: Vec<Medium>,
    /// Resource protocol.
    pub auto_failback: AutoFailback,
    /// `ping` pseudo-nodes.
    pub ping: Vec<String>,
    /// `ping_group` pseudo-nodes.
    pub ping_groups: Vec<PingGroup>,
    /// `hbaping` pseudo-nodes.
    pub hbaping: Vec<String>,
    /// `respawn`/`failfast` children.
    pub respawn: Vec<Respawn>,
    /// `apiauth` lines as written.
    pub apiauth: Vec<String>,
    /// `use_logd`, when given.
    pub use_logd: Option<bool>,
    /// `logfile`, when given.
    pub logfile: Option<String>,
    /// `debugfile`, when given.
    pub debugfile: Option<String>,
    /// `logfacility`, when given.
    pub logfacility: Option<String>,
    /// Debug level 0-255.
    pub debug: u8,
    /// SCHED_FIFO + mlockall (heartbeat default on).
    pub realtime: bool,
    /// Compression plugin, when given.
    pub compression: Option<String>,
    /// Added to the node count for the `ttl` field.
    pub hopfudge: u8,
    /// Unlisted nodes joining.
    pub autojoin: AutoJoin,
    /// Node UUID source.
    pub uuidfrom: UuidFrom,
    /// Wire message format.
    pub msgfmt: MsgFmt,
    /// Generation number method.
    pub hbgenmethod: GenMethod,
    /// `stonith` devices.
    pub stonith: Vec<Stonith>,
    /// `stonith_host` devices.
    pub stonith_hosts: Vec<StonithHost>,
    /// `watchdog` device, when given.
    pub watchdog: Option<String>,
    /// Other accepted directives, kept verbatim in order.
    pub other: Vec<OtherDirective>,
}

/// How heartbeat splits a directive's arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Split on whitespace and commas, handler once per value.
    PerValue,
    /// The whole rest of the line.
    WholeLine,
}

/// Every directive heartbeat 3.0.6 accepts, with how its values are split.
const DIRECTIVES: &[(&str, Kind)] = &[
    ("node", Kind::PerValue),
    ("keepalive", Kind::PerValue),
    ("deadtime", Kind::PerValue),
    ("warntime", Kind::PerValue),
    ("initdead", Kind::PerValue),
    ("deadping", Kind::PerValue),
    ("udpport", Kind::PerValue),
    ("udp", Kind::PerValue),
    ("bcast", Kind::PerValue),
    ("serial", Kind::PerValue),
    ("baud", Kind::PerValue),
    ("ucast", Kind::WholeLine),
    ("ucast6", Kind::WholeLine),
    ("mcast", Kind::WholeLine),
    ("mcast6", Kind::WholeLine),
    ("ping", Kind::PerValue),
    ("ping_group", Kind::WholeLine),
    ("hbaping", Kind::PerValue),
    ("auto_failback", Kind::PerValue),
    ("nice_failback", Kind::PerValue),
    ("respawn", Kind::WholeLine),
    ("failfast", Kind::WholeLine),
    ("apiauth", Kind::WholeLine),
    ("use_logd", Kind::PerValue),
    ("logfile", Kind::PerValue),
    ("debugfile", Kind::PerValue),
    ("logfacility", Kind::PerValue),
    ("conn_logd_time", Kind::PerValue),
    ("debug", Kind::PerValue),
    ("realtime", Kind::PerValue),
    ("rtprio", Kind::PerValue),
    ("memreserve", Kind::PerValue),
    ("coredumps", Kind::PerValue),
    ("coreroot", Kind::PerValue),
    ("msgfmt", Kind::PerValue),
    ("compression", Kind::PerValue),
    ("compression_threshold", Kind::PerValue),
    ("traditional_compression", Kind::PerValue),
    ("max_rexmit_delay", Kind::PerValue),
    ("hopfudge", Kind::PerValue),
    ("hbgenmethod", Kind::PerValue),
    ("uuidfrom", Kind::PerValue),
    ("autojoin", Kind::PerValue),
    ("crm", Kind::PerValue),
    ("pacemaker", Kind::PerValue),
    ("crm_daemon_dir", Kind::PerValue),
    ("crmd_spawns_pengine", Kind::PerValue),
    ("record_config_changes", Kind::PerValue),
    ("record_pengine_inputs", Kind::PerValue),
    ("enable_config_writes", Kind::PerValue),
    ("stonith", Kind::WholeLine),
    ("stonith_host", Kind::WholeLine),
    ("watchdog", Kind::PerValue),
    ("env", Kind::PerValue),
    ("use_apphbd", Kind::PerValue),
    ("log_badpack", Kind::PerValue),
    ("syslogmsgfmt", Kind::PerValue),
    ("normalpoll", Kind::PerValue),
    ("quorum_server", Kind::PerValue),
    ("cluster", Kind::PerValue),
];

/// Directives whose values must be `on`/`off`-style booleans and that are
/// kept verbatim in [`HaCf::other`].
const OTHER_BOOLEANS: &[&str] = &[
    "coredumps",
    "traditional_compression",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
    "use_apphbd",
    "log_badpack",
    "syslogmsgfmt",
    "normalpoll",
];

/// Accepted directives wasmbeat does not act on, with what it does instead.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "stonith",
        "wasmbeat does not fence nodes yet; a dead node's resources are taken over without STONITH",
    ),
    (
        "stonith_host",
        "wasmbeat does not fence nodes yet; a dead node's resources are taken over without STONITH",
    ),
    (
        "watchdog",
        "wasmbeat does not drive a hardware watchdog yet",
    ),
    ("hbaping", "Fibre Channel ping nodes are not supported"),
    (
        "ping",
        "ping nodes (and ipfail) are not implemented by wasmbeat yet; they are not probed",
    ),
    (
        "ping_group",
        "ping nodes (and ipfail) are not implemented by wasmbeat yet; they are not probed",
    ),
    (
        "respawn",
        "wasmbeat does not start respawn children (e.g. ipfail); run them under systemd instead",
    ),
    (
        "failfast",
        "wasmbeat does not start failfast children; run them under systemd instead",
    ),
    (
        "apiauth",
        "wasmbeat has no heartbeat client API socket; its control socket is root-only",
    ),
    ("conn_logd_time", "wasmbeat does not use ha_logd"),
    (
        "debug",
        "wasmbeat's log level is set with RUST_LOG (e.g. RUST_LOG=debug)",
    ),
    (
        "rtprio",
        "wasmbeat picks the middle SCHED_RR priority itself",
    ),
    ("memreserve", "wasmbeat does not pre-lock memory"),
    ("coredumps", "core dumps follow the system's settings"),
    ("coreroot", "core dumps follow the system's settings"),
    (
        "env",
        "wasmbeat does not start respawn children, so env has no effect",
    ),
    ("use_apphbd", "apphbd is not supported"),
    ("quorum_server", "quorum servers are not supported"),
    ("crm_daemon_dir", "Pacemaker-only directive"),
    ("crmd_spawns_pengine", "Pacemaker-only directive"),
    ("record_config_changes", "Pacemaker-only directive"),
    ("record_pengine_inputs", "Pacemaker-only directive"),
    ("enable_config_writes", "Pacemaker-only directive"),
];

/// Syslog facility numbers (RFC 5424) for the `logfacility` names heartbeat
/// accepts (`none`, also accepted, turns syslog off and has no number).
pub fn syslog_facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "ftp" => 11,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// A token with its 1-based column.
type Tok<'a> = (usize, &'a str);

fn tokens(line: &str, split_commas: bool) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let sep = c.is_whitespace() || (split_commas && c == ',');
        match (sep, start) {
            (true, Some(s)) => {
                out.push((s + 1, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s + 1, &line[s..]));
    }
    out
}

/// heartbeat's boolean syntax (cl_str_to_boolean).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Collects values while reading, then applies heartbeat's defaults.
#[derive(Default)]
struct Reader {
    nodes: Vec<String>,
    keepalive: Option<(Duration, usize)>,
    deadtime: Option<(Duration, usize)>,
    warntime: Option<(Duration, usize)>,
    initdead: Option<(Duration, usize)>,
    deadping: Option<(Duration, usize)>,
    udpport: Option<(u16, usize)>,
    baud: Option<(u32, usize)>,
    media: Vec<(Medium, usize)>,
    auto_failback: Option<(AutoFailback, usize)>,
    ping: Vec<String>,
    ping_groups: Vec<PingGroup>,
    hbaping: Vec<String>,
    respawn: Vec<Respawn>,
    apiauth: Vec<String>,
    use_logd: Option<bool>,
    logfile: Option<String>,
    debugfile: Option<String>,
    logfacility: Option<String>,
    debug: u8,
    realtime: Option<bool>,
    compression: Option<String>,
    hopfudge: u8,
    autojoin: Option<(AutoJoin, usize)>,
    uuidfrom: Option<UuidFrom>,
    msgfmt: Option<MsgFmt>,
    hbgenmethod: Option<GenMethod>,
    stonith: Vec<Stonith>,
    stonith_hosts: Vec<StonithHost>,
    watchdog: Option<String>,
    crm_seen: Option<usize>,
    other: Vec<OtherDirective>,
    warned_unimplemented: Vec<&'static str>,
    /// (line, column, text) of each timing value, to point timing diagnostics at it.
    timing_values: Vec<(usize, usize, String)>,
    diags: Vec<Diagnostic>,
}

impl HaCf {
    /// Parse ha.cf text. Returns the configuration (defaults applied) and
    /// every diagnostic found; the caller decides whether errors are fatal.
    pub fn parse(text: &str) -> (HaCf, Vec<Diagnostic>) {
        let mut r = Reader {
            hopfudge: 1,
            ..Reader::default()
        };
        for (idx, raw) in text.lines().enumerate() {
            r.line(idx + 1, raw);
        }
        r.finish()
    }
}

impl Reader {
    fn err(&mut self, code: Code, line: usize, col: usize, text: &str, msg: String, hint: &str) {
        let mut d = Diagnostic::error(code, FILE, Some(line), msg)
            .text(text)
            .col(col);
        if !hint.is_empty() {
            d = d.hint(hint);
        }
        self.diags.push(d);
    }

    fn warn(&mut self, code: Code, line: usize, col: usize, text: &str, msg: String, hint: &str) {
        let mut d = Diagnostic::warning(code, FILE, Some(line), msg)
            .text(text)
            .col(col);
        if !hint.is_empty() {
            d = d.hint(hint);
        }
        self.diags.push(d);
    }

    fn line(&mut self, no: usize, raw: &str) {
        let content = raw.split('#').next().unwrap_or_default();
        let content = content.trim_end_matches(['\r', '\n']);
        let toks = tokens(content, false);
        let Some(&(dcol, name)) = toks.first() else {
            return;
        };
        let Some(&(_, kind)) = DIRECTIVES.iter().find(|(n, _)| *n == name) else {
            let best = DIRECTIVES
                .iter()
                .map(|(n, _)| (edit_distance(&name.to_ascii_lowercase(), n), *n))
                .min()
                .filter(|(d, _)| *d <= 2);
            let hint = match best {
                Some((_, n)) => {
                    format!("did you mean \"{n}\"? (directive names are case-sensitive)")
                }
                None => "see ha.cf(5) for the directives heartbeat accepts".to_string(),
            };
            self.err(
                Code::UnknownDirective,
                no,
                dcol,
                name,
                format!("unknown directive \"{name}\" (heartbeat: \"Illegal directive\")"),
                &hint,
            );
            return;
        };
        if let Some(&(key, why)) = NOT_IMPLEMENTED.iter().find(|(n, _)| *n == name) {
            // Once per directive: a file with ten stonith_host lines needs
            // one warning, not ten.
            if !self.warned_unimplemented.contains(&key) {
                self.warned_unimplemented.push(key);
                self.warn(
                    Code::NotImplemented,
                    no,
                    dcol,
                    name,
                    format!("\"{name}\" is accepted but not acted on: {why}"),
                    "",
                );
            }
        }
        let rest_start = dcol - 1 + name.len();
        let rest = &content[rest_start..];
        match kind {
            Kind::WholeLine => {
                let vals: Vec<Tok> = tokens(rest, false)
                    .into_iter()
                    .map(|(c, t)| (c + rest_start, t))
                    .collect();
                if vals.is_empty() {
                    self.missing(no, dcol, name);
                    return;
                }
                self.whole_line(no, dcol, name, rest.trim(), &vals);
            }
            Kind::PerValue => {
                let vals: Vec<Tok> = tokens(rest, true)
                    .into_iter()
                    .map(|(c, t)| (c + rest_start, t))
                    .collect();
                if vals.is_empty() {
                    self.missing_ignored(no, dcol, name);
                    return;
                }
                if vals.len() > 1 && !is_list_directive(name) {
                    self.warn(
                        Code::Repeated,
                        no,
                        vals[1].0,
                        vals[1].1,
                        format!(
                            "{name} takes one value but {} were given; heartbeat applies each in turn, so only \"{}\" counts",
                            vals.len(),
                            vals[vals.len() - 1].1
                        ),
                        "keep a single value",
                    );
                }
                for (col, v) in vals {
                    self.value(no, col, name, v);
                }
            }
        }
    }

    fn missing(&mut self, no: usize, col: usize, name: &str) {
        let example = example_for(name);
        self.err(
            Code::MissingValue,
            no,
            col,
            name,
            format!("{name} needs a value"),
            &format!("write e.g. \"{example}\""),
        );
    }

    fn missing_ignored(&mut self, no: usize, col: usize, name: &str) {
        // heartbeat calls the handler once per value, so with none the line
        // does nothing at all.
        let example = example_for(name);
        self.warn(
            Code::MissingValue,
            no,
            col,
            name,
            format!("{name} has no value, so the line does nothing (heartbeat ignores it too)"),
            &format!("write e.g. \"{example}\" or remove the line"),
        );
    }

    fn set_once(&mut self, slot_line: Option<usize>, no: usize, col: usize, name: &str, v: &str) {
        if let Some(prev) = slot_line {
            if prev != no {
                self.warn(
                    Code::Repeated,
                    no,
                    col,
                    v,
                    format!("{name} is set again (first on line {prev}); the last value counts, as in heartbeat"),
                    "remove one of the lines",
                );
            }
        }
    }

    fn duration(&mut self, no: usize, col: usize, name: &str, v: &str) -> Option<Duration> {
        match parse_duration(v) {
            Ok(d) => Some(d),
            Err(e) => {
                let extra = if matches!(e, super::duration::DurationError::BadUnit(_, ref u) if u.eq_ignore_ascii_case("s") || u.eq_ignore_ascii_case("sec"))
                {
                    " (heartbeat has no \"s\" suffix: plain numbers are seconds)"
                } else {
                    ""
                };
                self.err(
                    Code::BadDuration,
                    no,
                    col,
                    v,
                    format!("{name} {v:?} is not a duration{extra}"),
                    &format!("write e.g. \"{name} 5\" or \"{name} 500ms\""),
                );
                None
            }
        }
    }

    fn boolean(&mut self, no: usize, col: usize, name: &str, v: &str) -> Option<bool> {
        let b = parse_bool(v);
        if b.is_none() {
            self.err(
                Code::BadBoolean,
                no,
                col,
                v,
                format!("{name} {v:?} is not a boolean"),
                &format!(
                    "write \"{name} on\" or \"{name} off\" (also true/false, yes/no, y/n, 1/0)"
                ),
            );
        }
        b
    }

    fn number<T: std::str::FromStr>(
        &mut self,
        no: usize,
        col: usize,
        name: &str,
        v: &str,
        range: &str,
    ) -> Option<T> {
        match v.parse::<T>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    Code::BadNumber,
                    no,
                    col,
                    v,
                    format!("{name} {v:?} is not a whole number in {range}"),
                    &format!("write e.g. \"{}\"", example_for(name)),
                );
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        no: usize,
        col: usize,
        name: &str,
        v: &str,
        opts: &[(&str, T)],
    ) -> Option<T> {
        let found = opts
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(v))
            .map(|(_, t)| *t);
        if found.is_none() {
            let names: Vec<&str> = opts.iter().map(|(n, _)| *n).collect();
            self.err(
                Code::BadValue,
                no,
                col,
                v,
                format!("{name} {v:?} is not one of {}", names.join(", ")),
                &format!("write e.g. \"{name} {}\"", names[0]),
            );
        }
        found
    }

    fn value(&mut self, no: usize, col: usize, name: &str, v: &str) {
        match name {
            "node" => self.node(no, col, v),
            "keepalive" | "deadtime" | "warntime" | "initdead" | "deadping" => {
                let prev = match name {
                    "keepalive" => self.keepalive,
                    "deadtime" => self.deadtime,
                    "warntime" => self.warntime,
                    "initdead" => self.initdead,
                    _ => self.deadping,
                }
                .map(|(_, l)| l);
                self.set_once(prev, no, col, name, v);
                if let Some(d) = self.duration(no, col, name, v) {
                    self.timing_values.push((no, col, v.to_string()));
                    let slot = Some((d, no));
                    match name {
                        "keepalive" => self.keepalive = slot,
                        "deadtime" => self.deadtime = slot,
                        "warntime" => self.warntime = slot,
                        "initdead" => self.initdead = slot,
                        _ => self.deadping = slot,
                    }
                }
            }
            "udpport" => {
                self.set_once(self.udpport.map(|p| p.1), no, col, name, v);
                let Some(port) = self.number::<u16>(no, col, name, v, "1..65535") else {
                    return;
                };
                if port == 0 {
                    self.err(
                        Code::BadNumber,
                        no,
                        col,
                        v,
                        "udpport 0 is not a usable port".into(),
                        "write e.g. \"udpport 694\"",
                    );
                    return;
                }
                let before: Vec<usize> = self
                    .media
                    .iter()
                    .filter(|(m, _)| matches!(m, Medium::Bcast { .. } | Medium::Ucast { .. }))
                    .map(|(_, l)| *l)
                    .collect();
                if !before.is_empty() {
                    let old = self.udpport.map(|p| p.0).unwrap_or(DEFAULT_UDPPORT);
                    let lines: Vec<String> = before.iter().map(|l| l.to_string()).collect();
                    self.warn(
                        Code::OrderAfterMedia,
                        no,
                        col,
                        v,
                        format!(
                            "udpport comes after media on line(s) {}, which keep port {old}, as in heartbeat (it reads udpport when each medium line is parsed)",
                            lines.join(", ")
                        ),
                        "move \"udpport\" above the bcast/ucast lines",
                    );
                }
                self.udpport = Some((port, no));
            }
            "baud" => {
                if let Some((_, prev)) = self.baud {
                    self.err(
                        Code::Repeated,
                        no,
                        col,
                        v,
                        format!("baud is set again (first on line {prev}); heartbeat allows it only once"),
                        "remove one of the lines",
                    );
                    return;
                }
                let Some(b) = self.number::<u32>(no, col, name, v, &format!("{BAUD_RATES:?}"))
                else {
                    return;
                };
                if !BAUD_RATES.contains(&b) {
                    self.err(
                        Code::BadValue,
                        no,
                        col,
                        v,
                        format!("baud {b} is not a supported speed"),
                        "write one of 9600, 19200, 38400, 57600, 115200, 230400, 460800",
                    );
                    return;
                }
                let before: Vec<String> = self
                    .media
                    .iter()
                    .filter(|(m, _)| matches!(m, Medium::Serial { .. }))
                    .map(|(_, l)| l.to_string())
                    .collect();
                if !before.is_empty() {
                    self.warn(
                        Code::OrderAfterMedia,
                        no,
                        col,
                        v,
                        format!(
                            "baud comes after serial media on line(s) {}, which keep {DEFAULT_BAUD} baud, as in heartbeat",
                            before.join(", ")
                        ),
                        "move \"baud\" above the serial lines",
                    );
                }
                self.baud = Some((b, no));
            }
            "udp" | "bcast" => {
                if name == "udp" {
                    self.warn(
                        Code::Obsolete,
                        no,
                        col,
                        name,
                        "\"udp\" is an old name for \"bcast\"".into(),
                        "write \"bcast\"",
                    );
                }
                if !valid_iface(v) {
                    self.bad_iface(no, col, name, v);
                    return;
                }
                let port = self.udpport.map(|p| p.0).unwrap_or(DEFAULT_UDPPORT);
                self.media.push((
                    Medium::Bcast {
                        iface: v.to_string(),
                        port,
                    },
                    no,
                ));
            }
            "serial" => {
                let baud = self.baud.map(|b| b.0).unwrap_or(DEFAULT_BAUD);
                self.media.push((
                    Medium::Serial {
                        device: v.to_string(),
                        baud,
                    },
                    no,
                ));
            }
            "ping" => self.ping.push(v.to_string()),
            "hbaping" => self.hbaping.push(v.to_string()),
            "auto_failback" => {
                self.set_once(self.auto_failback.map(|a| a.1), no, col, name, v);
                let af = if v.eq_ignore_ascii_case("legacy") {
                    Some(AutoFailback::Legacy)
                } else {
                    match parse_bool(v) {
                        Some(true) => Some(AutoFailback::On),
                        Some(false) => Some(AutoFailback::Off),
                        None => {
                            self.err(
                                Code::BadValue,
                                no,
                                col,
                                v,
                                format!("auto_failback {v:?} is not on, off or legacy"),
                                "write \"auto_failback on\" (move back to the preferred node) or \"auto_failback off\" (stay)",
                            );
                            None
                        }
                    }
                };
                if let Some(af) = af {
                    self.auto_failback = Some((af, no));
                }
            }
            "nice_failback" => {
                if self.boolean(no, col, name, v).is_none() {
                    return;
                }
                // heartbeat tests the *global* setting, not the value given:
                // after an auto_failback line it means off, otherwise legacy.
                let effect = if self.auto_failback.is_some() {
                    AutoFailback::Off
                } else {
                    AutoFailback::Legacy
                };
                self.warn(
                    Code::Obsolete,
                    no,
                    col,
                    name,
                    format!(
                        "nice_failback is obsolete; heartbeat logs an error and, whatever the value, treats it here as \"auto_failback {}\"",
                        if effect == AutoFailback::Off { "off" } else { "legacy" }
                    ),
                    "replace it with \"auto_failback on\" or \"auto_failback off\"",
                );
                self.auto_failback = Some((effect, no));
            }
            "use_logd" => self.use_logd = self.boolean(no, col, name, v).or(self.use_logd),
            "logfile" => self.logfile = Some(v.to_string()),
            "debugfile" => self.debugfile = Some(v.to_string()),
            "logfacility" => {
                if v != "none" && syslog_facility_code(v).is_none() {
                    self.err(
                        Code::BadValue,
                        no,
                        col,
                        v,
                        format!("logfacility {v:?} is not a syslog facility"),
                        "write e.g. \"logfacility local0\", \"logfacility daemon\" or \"logfacility none\"",
                    );
                    return;
                }
                self.logfacility = Some(v.to_string());
            }
            "debug" => {
                if let Some(d) = self.number::<u8>(no, col, name, v, "0..255") {
                    self.debug = d;
                }
            }
            "hopfudge" => {
                if let Some(h) = self.number::<u8>(no, col, name, v, "0..255") {
                    self.hopfudge = h;
                }
            }
            "realtime" => {
                if let Some(b) = self.boolean(no, col, name, v) {
                    self.realtime = Some(b);
                }
            }
            "compression" => {
                if !matches!(v, "zlib" | "bz2") {
                    self.err(
                        Code::BadValue,
                        no,
                        col,
                        v,
                        format!("compression {v:?} is not a heartbeat compression plugin"),
                        "write \"compression zlib\" or \"compression bz2\"",
                    );
                    return;
                }
                self.compression = Some(v.to_string());
            }
            "autojoin" => {
                if let Some(a) = self.choice(
                    no,
                    col,
                    name,
                    v,
                    &[
                        ("none", AutoJoin::None),
                        ("other", AutoJoin::Other),
                        ("any", AutoJoin::Any),
                    ],
                ) {
                    self.autojoin = Some((a, no));
                }
            }
            "uuidfrom" => {
                if let Some(u) = self.choice(
                    no,
                    col,
                    name,
                    v,
                    &[("file", UuidFrom::File), ("nodename", UuidFrom::Nodename)],
                ) {
                    self.uuidfrom = Some(u);
                }
            }
            "msgfmt" => {
                if let Some(m) = self.choice(
                    no,
                    col,
                    name,
                    v,
                    &[
                        ("classic", MsgFmt::Classic),
                        ("netstring", MsgFmt::Netstring),
                    ],
                ) {
                    self.msgfmt = Some(m);
                }
            }
            "hbgenmethod" => {
                if let Some(m) = self.choice(
                    no,
                    col,
                    name,
                    v,
                    &[("file", GenMethod::File), ("time", GenMethod::Time)],
                ) {
                    self.hbgenmethod = Some(m);
                }
            }
            "crm" | "pacemaker" => self.crm(no, col, name, v),
            "watchdog" => self.watchdog = Some(v.to_string()),
            "conn_logd_time" => {
                if self.duration(no, col, name, v).is_some() {
                    self.keep(name, v);
                }
            }
            "max_rexmit_delay" | "compression_threshold" | "rtprio" | "memreserve" => {
                if let Some(n) = self.number::<i64>(no, col, name, v, "whole numbers") {
                    if name != "rtprio" && n <= 0 {
                        self.err(
                            Code::BadNumber,
                            no,
                            col,
                            v,
                            format!("{name} must be greater than 0"),
                            &format!("write e.g. \"{}\"", example_for(name)),
                        );
                        return;
                    }
                    self.keep(name, v);
                }
            }
            n if OTHER_BOOLEANS.contains(&n) => {
                if self.boolean(no, col, name, v).is_some() {
                    self.keep(name, v);
                }
            }
            _ => self.keep(name, v),
        }
    }

    fn keep(&mut self, name: &str, v: &str) {
        self.other.push(OtherDirective {
            name: name.to_string(),
            value: v.to_string(),
        });
    }

    fn crm(&mut self, no: usize, col: usize, name: &str, v: &str) {
        if let Some(prev) = self.crm_seen {
            self.err(
                Code::Repeated,
                no,
                col,
                v,
                format!(
                    "{name} is set again (first on line {prev}); heartbeat allows it only once"
                ),
                "remove one of the lines",
            );
            return;
        }
        self.crm_seen = Some(no);
        let lower = v.to_ascii_lowercase();
        match parse_bool(v) {
            Some(false) => {}
            Some(true) => self.crm_error(no, col, name, v),
            None if matches!(
                lower.as_str(),
                "respawn" | "minimal" | "manual" | "ccm-only" | "valgrind"
            ) =>
            {
                self.crm_error(no, col, name, v)
            }
            None => self.err(
                Code::BadValue,
                no,
                col,
                v,
                format!("{name} {v:?} is not a value heartbeat accepts"),
                &format!("write \"{name} off\" (wasmbeat runs haresources mode)"),
            ),
        }
    }

    fn crm_error(&mut self, no: usize, col: usize, name: &str, v: &str) {
        self.err(
            Code::CrmEnabled,
            no,
            col,
            v,
            format!("{name} {v} enables Pacemaker, which disables haresources; wasmbeat runs haresources (v1) mode only"),
            &format!("write \"{name} off\" (or remove the line) and describe resources in haresources"),
        );
    }

    fn node(&mut self, no: usize, col: usize, v: &str) {
        let name = v.to_lowercase();
        if name.len() >= 100 {
            self.err(
                Code::BadNodeName,
                no,
                col,
                v,
                format!("node name {v:?} is too long (heartbeat allows at most 99 bytes)"),
                "use the machine's short `uname -n`",
            );
            return;
        }
        if self.nodes.contains(&name) {
            self.warn(
                Code::Repeated,
                no,
                col,
                v,
                format!("node {name:?} is listed twice (names are compared lowercased)"),
                "remove the duplicate",
            );
            return;
        }
        if self.nodes.len() >= MAX_NODES {
            self.err(
                Code::BadNodeName,
                no,
                col,
                v,
                format!("too many nodes: heartbeat supports at most {MAX_NODES}"),
                "",
            );
            return;
        }
        self.nodes.push(name);
    }

    fn bad_iface(&mut self, no: usize, col: usize, name: &str, v: &str) {
        self.err(
            Code::BadMedium,
            no,
            col,
            v,
            format!("{name}: {v:?} is not a valid interface name"),
            &format!("write e.g. \"{}\"", example_for(name)),
        );
    }

    fn whole_line(&mut self, no: usize, dcol: usize, name: &str, rest: &str, vals: &[Tok]) {
        match name {
            "ucast" | "ucast6" => self.ucast(no, name, vals),
            "mcast" | "mcast6" => self.mcast(no, dcol, name, vals),
            "ping_group" => {
                if vals.len() < 2 {
                    self.err(
                        Code::MissingValue,
                        no,
                        dcol,
                        rest,
                        "ping_group needs a name and at least one host".into(),
                        "write e.g. \"ping_group group1 10.10.10.254 10.10.10.253\"",
                    );
                    return;
                }
                self.ping_groups.push(PingGroup {
                    name: vals[0].1.to_string(),
                    hosts: vals[1..].iter().map(|(_, h)| h.to_string()).collect(),
                });
            }
            "respawn" | "failfast" => {
                if vals.len() < 2 {
                    self.err(
                        Code::MissingValue,
                        no,
                        dcol,
                        rest,
                        format!("{name} needs a user and a program"),
                        &format!("write e.g. \"{name} hacluster /usr/libexec/heartbeat/ipfail\""),
                    );
                    return;
                }
                let command = vals[1..]
                    .iter()
                    .map(|(_, t)| *t)
                    .collect::<Vec<_>>()
                    .join(" ");
                self.respawn.push(Respawn {
                    user: vals[0].1.to_string(),
                    command,
                    failfast: name == "failfast",
                });
            }
            "apiauth" => self.apiauth.push(rest.to_string()),
            "stonith" => {
                if vals.len() != 2 {
                    self.err(
                        Code::BadValue,
                        no,
                        dcol,
                        rest,
                        "stonith needs exactly a device type and a configuration file".into(),
                        "write e.g. \"stonith baytech /etc/ha.d/conf/stonith.baytech\"",
                    );
                    return;
                }
                self.stonith.push(Stonith {
                    kind: vals[0].1.to_string(),
                    config_file: vals[1].1.to_string(),
                });
            }
            "stonith_host" => {
                if vals.len() < 2 {
                    self.err(
                        Code::BadValue,
                        no,
                        dcol,
                        rest,
                        "stonith_host needs a host (or *), a device type and its parameters".into(),
                        "write e.g. \"stonith_host * baytech 10.0.0.3 mylogin mysecretpassword\"",
                    );
                    return;
                }
                self.stonith_hosts.push(StonithHost {
                    host: vals[0].1.to_lowercase(),
                    kind: vals[1].1.to_string(),
                    params: vals[2..].iter().map(|(_, t)| t.to_string()).collect(),
                });
            }
            _ => {}
        }
    }

    fn ucast(&mut self, no: usize, name: &str, vals: &[Tok]) {
        let v6 = name == "ucast6";
        if vals.len() < 2 {
            let (col, t) = vals[0];
            self.err(
                Code::BadMedium,
                no,
                col,
                t,
                format!("{name} needs an interface and a peer address"),
                &format!("write e.g. \"{}\"", example_for(name)),
            );
            return;
        }
        let (icol, iface) = vals[0];
        if !valid_iface(iface) {
            self.bad_iface(no, icol, name, iface);
            return;
        }
        let (pcol, peer_text) = vals[1];
        let Some(peer) = resolve_peer(peer_text, v6) else {
            self.err(
                Code::BadMedium,
                no,
                pcol,
                peer_text,
                format!(
                    "{name} peer {peer_text:?} is not an {} address or a resolvable host name",
                    if v6 { "IPv6" } else { "IPv4" }
                ),
                &format!("write e.g. \"{}\"", example_for(name)),
            );
            return;
        };
        if vals.len() > 2 {
            self.warn(
                Code::BadMedium,
                no,
                vals[2].0,
                vals[2].1,
                format!(
                    "{name} takes one peer per line; heartbeat ignores {:?} and the rest",
                    vals[2].1
                ),
                "write one ucast line per peer",
            );
        }
        let port = self.udpport.map(|p| p.0).unwrap_or(DEFAULT_UDPPORT);
        self.media.push((
            Medium::Ucast {
                iface: iface.to_string(),
                peer,
                port,
            },
            no,
        ));
    }

    fn mcast(&mut self, no: usize, dcol: usize, name: &str, vals: &[Tok]) {
        let v6 = name == "mcast6";
        let hint = format!("write e.g. \"{}\"", example_for(name));
        if vals.len() < 5 {
            self.err(
                Code::BadMedium,
                no,
                dcol,
                name,
                format!("{name} needs 5 values: interface, group, port, ttl, loop"),
                &hint,
            );
            return;
        }
        let (icol, iface) = vals[0];
        if !valid_iface(iface) {
            self.bad_iface(no, icol, name, iface);
            return;
        }
        let (gcol, gtext) = vals[1];
        let group: Option<IpAddr> = gtext.parse().ok();
        let group = match group {
            Some(g) if g.is_multicast() && g.is_ipv6() == v6 => g,
            _ => {
                self.err(
                    Code::BadMedium,
                    no,
                    gcol,
                    gtext,
                    format!(
                        "{name} group {gtext:?} is not an {} multicast address",
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                    &hint,
                );
                return;
            }
        };
        let (pcol, ptext) = vals[2];
        let port = match ptext.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                self.err(
                    Code::BadMedium,
                    no,
                    pcol,
                    ptext,
                    format!("{name} port {ptext:?} is not a port number"),
                    &hint,
                );
                return;
            }
        };
        let (tcol, ttext) = vals[3];
        let ttl = match ttext.parse::<u8>() {
            Ok(t) if t <= 4 => t,
            _ => {
                self.err(
                    Code::BadMedium,
                    no,
                    tcol,
                    ttext,
                    format!("{name} ttl {ttext:?} is out of range: heartbeat 3.0.6 accepts 0-4 (the man page's 0-255 is wrong)"),
                    "use 1 for the local subnet",
                );
                return;
            }
        };
        let (lcol, ltext) = vals[4];
        let loop_ = match ltext {
            "0" => false,
            "1" => true,
            _ => {
                self.err(
                    Code::BadMedium,
                    no,
                    lcol,
                    ltext,
                    format!("{name} loop {ltext:?} must be 0 or 1"),
                    "use 0",
                );
                return;
            }
        };
        self.media.push((
            Medium::Mcast {
                iface: iface.to_string(),
                group,
                port,
                ttl,
                loop_,
            },
            no,
        ));
    }

    fn finish(mut self) -> (HaCf, Vec<Diagnostic>) {
        let keepalive = self
            .keepalive
            .map(|k| k.0)
            .unwrap_or(Duration::from_secs(1));
        let deadtime = self
            .deadtime
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(30));
        let warntime = self.warntime.map(|w| w.0).unwrap_or(deadtime / 2);
        let initdead = self.initdead.map(|i| i.0).unwrap_or_else(|| {
            if deadtime > Duration::from_secs(10) {
                deadtime
            } else if deadtime < Duration::from_secs(6) {
                Duration::from_secs(12)
            } else {
                deadtime * 2
            }
        });
        let deadping = self.deadping.map(|d| d.0).unwrap_or(deadtime);
        let kline = self.keepalive.map(|k| k.1);
        let dline = self.deadtime.map(|d| d.1).or(kline);
        let fmt = format_duration;

        if keepalive.is_zero() {
            self.timing_err(
                kline,
                "keepalive 0 would send heartbeats in a busy loop".into(),
                "write e.g. \"keepalive 1\" or \"keepalive 200ms\"".into(),
            );
        }
        if deadtime <= keepalive * 2 {
            self.timing_err(
                dline,
                format!(
                    "deadtime {} must be more than twice keepalive {} (heartbeat refuses to start)",
                    fmt(deadtime),
                    fmt(keepalive)
                ),
                format!(
                    "raise deadtime above {} or lower keepalive",
                    fmt(keepalive * 2)
                ),
            );
        }
        if let Some((_, l)) = self.initdead {
            if initdead < deadtime {
                self.timing_err(
                    Some(l),
                    format!(
                        "initdead {} must be at least deadtime {} (heartbeat refuses to start)",
                        fmt(initdead),
                        fmt(deadtime)
                    ),
                    format!("write e.g. \"initdead {}\"", fmt(deadtime * 2)),
                );
            } else if initdead < Duration::from_secs(10) {
                self.diags.push(
                    Diagnostic::warning(
                        Code::Timing,
                        FILE,
                        Some(l),
                        format!(
                            "initdead {} is under 10 s; after a reboot the network may not be up in time and the peer would be declared dead",
                            fmt(initdead)
                        ),
                    )
                    .hint("heartbeat suggests at least twice deadtime"),
                );
            }
        }
        if let Some((_, l)) = self.deadping {
            if deadping <= keepalive * 2 {
                self.timing_err(
                    Some(l),
                    format!(
                        "deadping {} must be more than twice keepalive {} (heartbeat refuses to start)",
                        fmt(deadping),
                        fmt(keepalive)
                    ),
                    format!("raise deadping above {}", fmt(keepalive * 2)),
                );
            }
        }
        if let Some((_, l)) = self.warntime {
            if warntime.is_zero() {
                self.timing_err(
                    Some(l),
                    "warntime must be greater than 0".into(),
                    format!("write e.g. \"warntime {}\"", fmt(deadtime / 2)),
                );
            } else if warntime >= deadtime {
                self.diags.push(
                    Diagnostic::warning(
                        Code::Timing,
                        FILE,
                        Some(l),
                        format!(
                            "warntime {} is not less than deadtime {}: a node is declared dead before a heartbeat can be late, so the \"late heartbeat\" warning can never fire (heartbeat accepts this silently)",
                            fmt(warntime),
                            fmt(deadtime)
                        ),
                    )
                    .text(fmt(warntime))
                    .hint(format!(
                        "set warntime between keepalive and deadtime, e.g. \"warntime {}\"",
                        fmt(deadtime / 2)
                    )),
                );
            }
        }
        let autojoin = self.autojoin.map(|a| a.0).unwrap_or(AutoJoin::None);
        if let Some((a, l)) = self.autojoin {
            if a != AutoJoin::None {
                self.diags.push(
                    Diagnostic::error(
                        Code::Autojoin,
                        FILE,
                        Some(l),
                        "autojoin conflicts with haresources resource management (heartbeat: \"R1 style resource management conflicts with autojoin set\")",
                    )
                    .hint("write \"autojoin none\" and list every machine with \"node\""),
                );
            }
        }
        if self.nodes.is_empty() && autojoin != AutoJoin::Any {
            self.diags.push(
                Diagnostic::error(Code::NoNodes, FILE, None, "no \"node\" directive: the cluster has no members")
                    .hint("add one line per machine with its `uname -n`, e.g. \"node node1\" and \"node node2\""),
            );
        }
        if self.media.is_empty() {
            self.diags.push(
                Diagnostic::error(Code::NoMedia, FILE, None, "no heartbeat medium (bcast, ucast, mcast or serial): the nodes could not hear each other")
                    .hint("add e.g. \"bcast eth0\" or \"ucast eth0 10.0.0.2\""),
            );
        }
        let auto_failback = match self.auto_failback {
            Some((a, _)) => a,
            None => {
                self.diags.push(
                    Diagnostic::warning(
                        Code::LegacyFailback,
                        FILE,
                        None,
                        "no auto_failback directive: heartbeat then uses the deprecated \"legacy\" resource protocol",
                    )
                    .hint("add \"auto_failback on\" or \"auto_failback off\""),
                );
                AutoFailback::Legacy
            }
        };
        for d in self.diags.iter_mut().filter(|d| d.code == Code::Timing) {
            if let Some((_, col, text)) = self
                .timing_values
                .iter()
                .rev()
                .find(|(l, _, _)| Some(*l) == d.line)
            {
                d.column = Some(*col);
                d.text = text.clone();
            }
        }
        let hacf = HaCf {
            nodes: self.nodes,
            keepalive,
            deadtime,
            warntime,
            initdead,
            deadping,
            udpport: self.udpport.map(|p| p.0).unwrap_or(DEFAULT_UDPPORT),
            baud: self.baud.map(|b| b.0).unwrap_or(DEFAULT_BAUD),
            media: self.media.into_iter().map(|(m, _)| m).collect(),
            auto_failback,
            ping: self.ping,
            ping_groups: self.ping_groups,
            hbaping: self.hbaping,
            respawn: self.respawn,
            apiauth: self.apiauth,
            use_logd: self.use_logd,
            logfile: self.logfile,
            debugfile: self.debugfile,
            logfacility: self.logfacility,
            debug: self.debug,
            realtime: self.realtime.unwrap_or(true),
            compression: self.compression,
            hopfudge: self.hopfudge,
            autojoin,
            uuidfrom: self.uuidfrom.unwrap_or(UuidFrom::File),
            msgfmt: self.msgfmt.unwrap_or(MsgFmt::Classic),
            hbgenmethod: self.hbgenmethod.unwrap_or(GenMethod::File),
            stonith: self.stonith,
            stonith_hosts: self.stonith_hosts,
            watchdog: self.watchdog,
            other: self.other,
        };
        (hacf, self.diags)
    }

    fn timing_err(&mut self, line: Option<usize>, msg: String, hint: String) {
        self.diags
            .push(Diagnostic::error(Code::Timing, FILE, line, msg).hint(hint));
    }
}

fn is_list_directive(name: &str) -> bool {
    matches!(
        name,
        "node" | "bcast" | "udp" | "serial" | "ping" | "hbaping"
    )
}

fn valid_iface(v: &str) -> bool {
    !v.is_empty() && v.len() <= 15 && v.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

fn resolve_peer(text: &str, v6: bool) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return (ip.is_ipv6() == v6).then_some(ip);
    }
    // heartbeat resolves host names with gethostbyname when the line is read.
    (text, 0)
        .to_socket_addrs()
        .ok()?
        .map(|sa| sa.ip())
        .find(|ip| ip.is_ipv6() == v6)
}

fn example_for(name: &str) -> &'static str {
    match name {
        "node" => "node node1 node2",
        "keepalive" => "keepalive 2",
        "deadtime" => "deadtime 30",
        "warntime" => "warntime 10",
        "initdead" => "initdead 120",
        "deadping" => "deadping 30",
        "udpport" => "udpport 694",
        "baud" => "baud 19200",
        "bcast" | "udp" => "bcast eth0",
        "serial" => "serial /dev/ttyS0",
        "ucast" => "ucast eth0 192.168.1.2",
        "ucast6" => "ucast6 eth0 fd77::2",
        "mcast" => "mcast eth0 239.0.0.1 694 1 0",
        "mcast6" => "mcast6 eth0 ff12::1:2:3:4 694 1 0",
        "debug" => "debug 1",
        "hopfudge" => "hopfudge 1",
        "max_rexmit_delay" => "max_rexmit_delay 250",
        "compression_threshold" => "compression_threshold 2",
        "memreserve" => "memreserve 6500",
        "rtprio" => "rtprio 5",
        "auto_failback" => "auto_failback on",
        "ping" => "ping 10.10.10.254",
        _ => "see ha.cf(5)",
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Prints valid ha.cf that parses back to the same [`HaCf`] (defaults are
/// written out explicitly; `udpport`/`baud` lines precede the media they apply to).
impl fmt::Display for HaCf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = format_duration;
        writeln!(f, "# written by wasmbeat")?;
        writeln!(f, "keepalive {}", d(self.keepalive))?;
        writeln!(f, "deadtime {}", d(self.deadtime))?;
        writeln!(f, "warntime {}", d(self.warntime))?;
        writeln!(f, "initdead {}", d(self.initdead))?;
        writeln!(f, "deadping {}", d(self.deadping))?;
        let mut port = None;
        let mut baud = None;
        for m in &self.media {
            match m {
                Medium::Bcast { port: p, .. } | Medium::Ucast { port: p, .. }
                    if port != Some(*p) =>
                {
                    writeln!(f, "udpport {p}")?;
                    port = Some(*p);
                }
                Medium::Serial { baud: b, .. } if baud.is_none() => {
                    writeln!(f, "baud {b}")?;
                    baud = Some(*b);
                }
                _ => {}
            }
            match m {
                Medium::Bcast { iface, .. } => writeln!(f, "bcast {iface}")?,
                Medium::Ucast { iface, peer, .. } => {
                    let kw = if peer.is_ipv6() { "ucast6" } else { "ucast" };
                    writeln!(f, "{kw} {iface} {peer}")?
                }
                Medium::Mcast {
                    iface,
                    group,
                    port,
                    ttl,
                    loop_,
                } => {
                    let kw = if group.is_ipv6() { "mcast6" } else { "mcast" };
                    writeln!(f, "{kw} {iface} {group} {port} {ttl} {}", u8::from(*loop_))?
                }
                Medium::Serial { device, .. } => writeln!(f, "serial {device}")?,
            }
        }
        if port != Some(self.udpport) {
            writeln!(f, "udpport {}", self.udpport)?;
        }
        if baud.is_none() {
            writeln!(f, "baud {}", self.baud)?;
        }
        let af = match self.auto_failback {
            AutoFailback::On => "on",
            AutoFailback::Off => "off",
            AutoFailback::Legacy => "legacy",
        };
        writeln!(f, "auto_failback {af}")?;
        for n in &self.nodes {
            writeln!(f, "node {n}")?;
        }
        for p in &self.ping {
            writeln!(f, "ping {p}")?;
        }
        for g in &self.ping_groups {
            writeln!(f, "ping_group {} {}", g.name, g.hosts.join(" "))?;
        }
        for h in &self.hbaping {
            writeln!(f, "hbaping {h}")?;
        }
        for r in &self.respawn {
            let kw = if r.failfast { "failfast" } else { "respawn" };
            writeln!(f, "{kw} {} {}", r.user, r.command)?;
        }
        for a in &self.apiauth {
            writeln!(f, "apiauth {a}")?;
        }
        if let Some(b) = self.use_logd {
            writeln!(f, "use_logd {}", on_off(b))?;
        }
        if let Some(v) = &self.logfile {
            writeln!(f, "logfile {v}")?;
        }
        if let Some(v) = &self.debugfile {
            writeln!(f, "debugfile {v}")?;
        }
        if let Some(v) = &self.logfacility {
            writeln!(f, "logfacility {v}")?;
        }
        writeln!(f, "debug {}", self.debug)?;
        writeln!(f, "realtime {}", on_off(self.realtime))?;
        if let Some(c) = &self.compression {
            writeln!(f, "compression {c}")?;
        }
        writeln!(f, "hopfudge {}", self.hopfudge)?;
        let aj = match self.autojoin {
            AutoJoin::None => "none",
            AutoJoin::Other => "other",
            AutoJoin::Any => "any",
        };
        writeln!(f, "autojoin {aj}")?;
        let uf = match self.uuidfrom {
            UuidFrom::File => "file",
            UuidFrom::Nodename => "nodename",
        };
        writeln!(f, "uuidfrom {uf}")?;
        let mf = match self.msgfmt {
            MsgFmt::Classic => "classic",
            MsgFmt::Netstring => "netstring",
        };
        writeln!(f, "msgfmt {mf}")?;
        let gm = match self.hbgenmethod {
            GenMethod::File => "file",
            GenMethod::Time => "time",
        };
        writeln!(f, "hbgenmethod {gm}")?;
        for s in &self.stonith {
            writeln!(f, "stonith {} {}", s.kind, s.config_file)?;
        }
        for s in &self.stonith_hosts {
            write!(f, "stonith_host {} {}", s.host, s.kind)?;
            for p in &s.params {
                write!(f, " {p}")?;
            }
            writeln!(f)?;
        }
        if let Some(w) = &self.watchdog {
            writeln!(f, "watchdog {w}")?;
        }
        for o in &self.other {
            writeln!(f, "{} {}", o.name, o.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_heartbeat() {
        let (c, _) = HaCf::parse("node a\nbcast eth0\nauto_failback off\n");
        assert_eq!(c.keepalive, Duration::from_secs(1));
        assert_eq!(c.deadtime, Duration::from_secs(30));
        assert_eq!(c.warntime, Duration::from_secs(15));
        assert_eq!(c.initdead, Duration::from_secs(30));
        assert_eq!(c.udpport, 694);
        let (c, _) = HaCf::parse("node a\nbcast eth0\ndeadtime 5\n");
        assert_eq!(c.initdead, Duration::from_secs(12));
        assert_eq!(c.auto_failback, AutoFailback::Legacy);
        let (c, _) = HaCf::parse("node a\nbcast eth0\ndeadtime 8\n");
        assert_eq!(c.initdead, Duration::from_secs(16));
    }

    #[test]
    fn values_split_on_commas_and_blanks_and_names_lowercase() {
        let (c, d) = HaCf::parse("node Node1,NODE2 node3\nbcast eth0 eth1\nauto_failback on\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.nodes, vec!["node1", "node2", "node3"]);
        assert_eq!(c.media.len(), 2);
    }

    #[test]
    fn media_record_the_port_in_effect() {
        let (c, d) = HaCf::parse("node a\nbcast eth0\nudpport 700\nbcast eth1\nauto_failback on\n");
        assert_eq!(
            c.media[0],
            Medium::Bcast {
                iface: "eth0".into(),
                port: 694
            }
        );
        assert_eq!(
            c.media[1],
            Medium::Bcast {
                iface: "eth1".into(),
                port: 700
            }
        );
        let w = d.iter().find(|x| x.code == Code::OrderAfterMedia).unwrap();
        assert_eq!(w.line, Some(3));
        assert!(!w.is_error());
    }

    #[test]
    fn crm_on_is_refused_off_is_fine() {
        let (_, d) = HaCf::parse("node a\nbcast eth0\ncrm respawn\n");
        assert!(d.iter().any(|x| x.code == Code::CrmEnabled && x.is_error()));
        let (_, d) = HaCf::parse("node a\nbcast eth0\ncrm off\nauto_failback on\n");
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn unknown_directive_suggests_the_nearest() {
        let (_, d) = HaCf::parse("node a\nbcast eth0\ndeadtme 5\n");
        let e = &d[0];
        assert_eq!(e.code, Code::UnknownDirective);
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("did you mean \"deadtime\""), "{e}");
    }

    #[test]
    fn mcast_ttl_is_limited_like_heartbeat() {
        let (_, d) = HaCf::parse("node a\nmcast eth0 239.0.0.1 694 5 0\n");
        assert!(d
            .iter()
            .any(|x| x.code == Code::BadMedium && x.column == Some(26)));
    }

    #[test]
    fn display_round_trips_a_rich_file() {
        let text = "keepalive 200ms\ndeadtime 2\nudpport 700\nbcast eth0\nucast eth1 10.0.0.2\n\
                    mcast eth2 239.1.2.3 694 1 0\nbaud 38400\nserial /dev/ttyS0\nauto_failback legacy\n\
                    node a\nnode b\nping 10.0.0.254\nping_group g 10.0.0.1 10.0.0.2\nrespawn hacluster /usr/libexec/heartbeat/ipfail -x\n\
                    use_logd yes\nstonith_host * baytech 10.0.0.3 login pw\nconn_logd_time 60\nrealtime off\n";
        let (c, d) = HaCf::parse(text);
        assert!(!d.iter().any(Diagnostic::is_error), "{d:?}");
        let (c2, d2) = HaCf::parse(&c.to_string());
        assert!(!d2.iter().any(Diagnostic::is_error), "{d2:?}");
        assert_eq!(c, c2);
    }
}

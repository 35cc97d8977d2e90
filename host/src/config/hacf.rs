//! `ha.cf`: heartbeat 3.0.6's main configuration, read line by line in
//! order, as `config.c parse_config` does, into [`HaCf`].
//!
//! Reading happens in three steps: every line is checked against its
//! entry in the directive table ([`DIRECTIVES`]: grammar, example, how the
//! value applies, whether wasmbeat acts on it) with heartbeat's defaults
//! underneath; then host names are looked up ([`Unresolved::resolve`], the
//! only step that may touch the network); then the defaults derived from
//! other settings are filled in and the whole-file rules checked.

mod directives;
mod finish;
mod lines;
mod parameters;
mod reader;
mod resolve;
mod watchdog;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::diag::Diagnostic;

pub use directives::{Directive, Repeat, Support, DIRECTIVES, WASMBEAT_DIRECTIVES};
pub use resolve::{Resolve, SystemResolver};
pub use watchdog::{choose_watchdog_timeout, WatchdogTimeout};

/// The name diagnostics use for this file.
pub const FILE: &str = "ha.cf";

/// heartbeat's default UDP port (`ha-cluster` in /etc/services).
pub const DEFAULT_UDPPORT: u16 = 694;
/// heartbeat's default serial speed.
pub const DEFAULT_BAUD: u32 = 19200;
/// heartbeat's `max_rexmit_delay` when ha.cf does not set it.
pub const DEFAULT_MAX_REXMIT_DELAY: Duration = Duration::from_millis(250);
/// Serial speeds heartbeat accepts.
pub const BAUD_RATES: &[u32] = &[9600, 19200, 38400, 57600, 115200, 230400, 460800];
/// heartbeat's MAXNODE.
pub const MAX_NODES: usize = 100;

/// `auto_failback` lives with the engine that runs it.
pub use wasmbeat_core::cluster::AutoFailback;

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

impl Medium {
    /// The ha.cf directive that declares this medium, as heartbeat spells
    /// it (`ucast6`/`mcast6` for IPv6).
    pub fn keyword(&self) -> &'static str {
        match self {
            Medium::Bcast { .. } => "bcast",
            Medium::Ucast { peer, .. } if peer.is_ipv6() => "ucast6",
            Medium::Ucast { .. } => "ucast",
            Medium::Mcast { group, .. } if group.is_ipv6() => "mcast6",
            Medium::Mcast { .. } => "mcast",
            Medium::Serial { .. } => "serial",
        }
    }

    /// A UDP medium (anyone on that network can send to it), as opposed to
    /// a serial cable.
    pub fn is_network(&self) -> bool {
        !matches!(self, Medium::Serial { .. })
    }
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

impl Respawn {
    /// Whether this is heartbeat's ipfail (`.../ipfail`, any directory):
    /// wasmbeat runs its own, built in, in its place.
    pub fn is_ipfail(&self) -> bool {
        let program = self.command.split_whitespace().next().unwrap_or("");
        std::path::Path::new(program).file_name() == Some(std::ffi::OsStr::new("ipfail"))
    }
}

/// A `stonith` device (one for the whole cluster).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stonith {
    /// cluster-glue plugin type.
    pub kind: String,
    /// Its configuration file.
    pub config_file: String,
    /// Where it was written.
    #[serde(skip)]
    pub line: SourceLine,
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
    /// Where it was written, for fencing's file:line messages.
    #[serde(skip)]
    pub line: SourceLine,
}

/// The 1-based line a directive was written on. Not part of its value:
/// two configurations that say the same compare equal wherever their
/// lines are (0: not read from a file).
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceLine(pub usize);

impl PartialEq for SourceLine {
    fn eq(&self, _: &SourceLine) -> bool {
        true
    }
}

impl Eq for SourceLine {}

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
    /// `ping6` pseudo-nodes (IPv6).
    pub ping6: Vec<String>,
    /// wasmbeat-only `track_link` interfaces (carrier watched). Left out
    /// of the JSON when empty: heartbeat's own files describe as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_link: Vec<String>,
    /// wasmbeat-only `tiebreaker ADDR:PORT`: the witness (`wasmbeat
    /// witness`) that decides which side of a partition runs the groups.
    /// Left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiebreaker: Option<std::net::SocketAddr>,
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
    /// Upper bound of the random wait before asking a peer to resend a
    /// missed message with more than one peer, and the period of repeated
    /// requests (`max_rexmit_delay`, whole milliseconds; 250 ms).
    #[serde(rename = "max_rexmit_delay_ms", serialize_with = "ser_ms")]
    pub max_rexmit_delay: Duration,
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
    /// `watchdog` device, when given: opened at start and petted with each
    /// of our heartbeats (daemon/watchdog.rs).
    pub watchdog: Option<String>,
    /// Other accepted directives, kept verbatim in order.
    pub other: Vec<OtherDirective>,
    /// Each one-value directive's last value as written (`keepalive 1`
    /// stays `"1"`): what heartbeat records for its client API and
    /// `cl_status hbparameter` answers (see [`HaCf::parameters`]). Only the
    /// spelling of settings the typed fields already hold, so it is left
    /// out of the JSON form.
    #[serde(skip)]
    pub written: std::collections::BTreeMap<String, String>,
}

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

/// heartbeat's boolean syntax (cl_str_to_boolean).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// ha.cf read line by line, with host names not yet looked up.
pub struct Unresolved(reader::Reader);

impl HaCf {
    /// Whether ipfail runs (`respawn <user> <path>/ipfail`): wasmbeat's
    /// built-in ipfail takes its place.
    pub fn ipfail(&self) -> bool {
        self.respawn.iter().any(|r| !r.failfast && r.is_ipfail())
    }

    /// The `stonith_host` lines node `local` uses: those for `*` and for
    /// `local` itself (heartbeat ignores the lines of other hosts); with no
    /// node (a `check` of the shared file), the `*` lines.
    pub fn stonith_hosts_for<'a>(
        &'a self,
        local: Option<&'a str>,
    ) -> impl Iterator<Item = &'a StonithHost> {
        self.stonith_hosts.iter().filter(move |s| {
            s.host == "*" || local.is_some_and(|l| l.eq_ignore_ascii_case(&s.host))
        })
    }

    /// Whether node `local` fences dead peers before taking over.
    pub fn fencing_configured(&self, local: &str) -> bool {
        !self.stonith.is_empty() || self.stonith_hosts_for(Some(local)).next().is_some()
    }

    /// The ping nodes in ha.cf order of kind: `ping`, `ping6` (one node per
    /// address, named by it), then `ping_group` (one node per group).
    pub fn ping_nodes(&self) -> Vec<wasmbeat_core::ping::PingNodeSpec> {
        use wasmbeat_core::ping::PingNodeSpec;
        self.ping
            .iter()
            .chain(&self.ping6)
            .map(|a| PingNodeSpec {
                name: a.clone(),
                members: vec![a.clone()],
            })
            .chain(self.ping_groups.iter().map(|g| PingNodeSpec {
                name: g.name.clone(),
                members: g.hosts.clone(),
            }))
            .collect()
    }

    /// Parse ha.cf text, looking host names up with the system resolver.
    /// Returns the configuration (defaults applied) and every diagnostic
    /// found; the caller decides whether errors are fatal.
    pub fn parse(text: &str) -> (HaCf, Vec<Diagnostic>) {
        HaCf::read(text).resolve(&SystemResolver)
    }

    /// Read ha.cf text without any name lookup; [`Unresolved::resolve`]
    /// finishes the job.
    pub fn read(text: &str) -> Unresolved {
        let mut r = reader::Reader::new();
        for (idx, raw) in text.lines().enumerate() {
            lines::read_line(&mut r, idx + 1, raw);
        }
        Unresolved(r)
    }
}

impl Unresolved {
    /// The host names still to be looked up (`ucast` peers), in file order.
    pub fn host_names(&self) -> Vec<&str> {
        self.0
            .media
            .iter()
            .filter_map(|(m, _)| match m {
                reader::MediumLine::Named(p) => Some(p.host.as_str()),
                reader::MediumLine::Ready(_) => None,
            })
            .collect()
    }

    /// Look the host names up with `resolver`, apply the defaults derived
    /// from other settings and check the whole-file rules.
    pub fn resolve(self, resolver: &dyn Resolve) -> (HaCf, Vec<Diagnostic>) {
        let mut r = self.0;
        let late = resolve::resolve_names(&mut r, resolver);
        finish::finish(r, late)
    }
}

/// Prints valid ha.cf that parses back to the same [`HaCf`]: the media in
/// file order (with the `udpport`/`baud` lines they need), then every
/// setting in directive-table order, defaults written out, then the
/// directives kept verbatim.
impl fmt::Display for HaCf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# written by wasmbeat")?;
        directives::write_media(self, f)?;
        for write in DIRECTIVES
            .iter()
            .chain(directives::WASMBEAT_DIRECTIVES)
            .filter_map(|d| d.write)
        {
            write(self, f)?;
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
    use crate::config::diag::Code;

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

    /// Found by the `hacf` fuzz target: serial lines on both sides of the
    /// one `baud` line run at different speeds, and the printed file must
    /// say so.
    #[test]
    fn serial_speeds_on_both_sides_of_baud_survive_printing() {
        for text in [
            "node a\nserial /dev/ttyS0\nbaud 38400\nserial /dev/ttyS1\nauto_failback on\n",
            "node a\nbaud 38400\nserial /dev/ttyS0\nauto_failback on\n",
            "node a\nserial /dev/ttyS0\nbaud 38400\nauto_failback on\n",
            "node a\nserial /dev/ttyS0\nauto_failback on\n",
        ] {
            let (c, _) = HaCf::parse(text);
            let printed = c.to_string();
            let (back, d) = HaCf::parse(&printed);
            assert!(!d.iter().any(|x| x.is_error()), "{d:?}\n{printed}");
            assert_eq!(back.media, c.media, "{text}\n--- printed\n{printed}");
            assert_eq!(back.baud, c.baud, "{text}\n--- printed\n{printed}");
        }
    }

    #[test]
    fn crm_on_is_refused_off_is_fine() {
        let (_, d) = HaCf::parse("node a\nbcast eth0\ncrm respawn\n");
        assert!(d.iter().any(|x| x.code == Code::CrmEnabled && x.is_error()));
        let (_, d) = HaCf::parse("node a\nbcast eth0\ncrm off\nauto_failback on\n");
        assert!(d.is_empty(), "{d:?}");
    }

    /// Errors and warnings of `line` after a valid base file.
    fn judged(line: &str) -> (HaCf, Vec<crate::config::Diagnostic>) {
        HaCf::parse(&format!("node a\nbcast eth0\nauto_failback on\n{line}\n"))
    }

    fn errors(d: &[crate::config::Diagnostic]) -> Vec<String> {
        d.iter()
            .filter(|x| x.is_error())
            .map(|x| x.to_string())
            .collect()
    }

    #[test]
    fn directives_heartbeat_always_refuses_are_refused_with_why_and_fix() {
        for (name, fix) in [
            ("normalpoll", "remove the line"),
            ("hbaping", "ping 10.0.0.254"),
            ("crm_daemon_dir", "without Pacemaker"),
        ] {
            let (_, d) = judged(&format!("{name} fc0"));
            let e = errors(&d);
            assert_eq!(e.len(), 1, "{name}: {d:?}");
            assert!(e[0].starts_with("ha.cf:4:1: "), "{}", e[0]);
            assert!(
                e[0].contains("refused by Debian's heartbeat 3.0.6"),
                "{}",
                e[0]
            );
            assert!(e[0].contains(fix), "{}", e[0]);
            assert!(!e[0].contains("did you mean"), "{}", e[0]);
        }
        // Their accepted neighbours: ping (a ping node) is read, and honoured.
        let (c, d) = judged("ping 10.0.0.254");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert_eq!(c.ping, ["10.0.0.254"]);
    }

    #[test]
    fn ping6_is_accepted_and_honoured() {
        let (c, d) = judged("ping6 fd77::fe");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert_eq!(c.ping6, ["fd77::fe"]);
        assert!(!d.iter().any(|x| x.code == Code::NotImplemented), "{d:?}");
        // An address of the wrong family can never be probed: said at once.
        let (c, d) = judged("ping6 10.0.0.254");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert!(
            d.iter()
                .any(|x| x.code == Code::BadValue && x.message.contains("not an IPv6")),
            "{d:?}"
        );
        assert_eq!(c.ping6, ["10.0.0.254"]);
        // Without a value the line does nothing, in heartbeat too: a
        // warning, no ping node.
        let (c, d) = judged("ping6");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert!(d.iter().any(|x| x.code == Code::MissingValue), "{d:?}");
        assert!(c.ping6.is_empty());
    }

    #[test]
    fn respawn_ipfail_is_the_built_in_ipfail_and_other_programs_are_warned() {
        let (c, d) = judged("ping 10.0.0.254\nrespawn hacluster /usr/lib/heartbeat/ipfail");
        assert!(d.is_empty(), "{d:?}");
        assert!(c.ipfail());
        let (c, d) = judged("respawn hacluster /usr/local/bin/watcher");
        assert!(!c.ipfail());
        assert!(
            d.iter().any(|x| x.code == Code::NotImplemented
                && x.message.contains("starts no respawn children")),
            "{d:?}"
        );
        let (c, _) = judged("failfast hacluster /usr/lib/heartbeat/ipfail");
        assert!(
            !c.ipfail(),
            "failfast reboots on exit; not what ipfail means"
        );
    }

    #[test]
    fn ping_groups_are_one_node_each_and_ping_addresses_one_each() {
        let (c, _) =
            judged("ping 10.0.0.1 10.0.0.2\nping_group up 10.0.1.1 10.0.1.2\nping6 fd77::1");
        let names: Vec<String> = c.ping_nodes().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["10.0.0.1", "10.0.0.2", "fd77::1", "up"]);
    }

    #[test]
    fn max_rexmit_delay_is_honoured_in_whole_milliseconds() {
        let (c, d) = judged("max_rexmit_delay 400");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.max_rexmit_delay, Duration::from_millis(400));
        assert!(c.to_string().contains("max_rexmit_delay 400\n"));
        let (c, _) = judged("");
        assert_eq!(c.max_rexmit_delay, Duration::from_millis(250));
        for bad in ["0", "-5", "fast", "2147483648"] {
            let (c, d) = judged(&format!("max_rexmit_delay {bad}"));
            assert_eq!(errors(&d).len(), 1, "{bad}: {d:?}");
            assert_eq!(c.max_rexmit_delay, Duration::from_millis(250));
        }
    }

    #[test]
    fn uuidfrom_file_is_silent_nodename_is_warned_bogus_refused() {
        let (_, d) = judged("uuidfrom file");
        assert!(d.is_empty(), "{d:?}");
        let (_, d) = judged("uuidfrom nodename");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert!(d
            .iter()
            .any(|x| x.code == Code::NotImplemented && x.message.contains("hb_uuid")));
        let (_, d) = judged("uuidfrom bogus");
        assert_eq!(errors(&d).len(), 1, "{d:?}");
    }

    #[test]
    fn compression_directives_are_warned_bad_values_refused() {
        for ok in [
            "compression zlib",
            "compression bz2",
            "compression_threshold 2",
            "traditional_compression on",
        ] {
            let (_, d) = judged(ok);
            assert!(errors(&d).is_empty(), "{ok}: {d:?}");
            assert!(
                d.iter()
                    .any(|x| x.code == Code::NotImplemented
                        && x.message.contains("never compresses")),
                "{ok}: {d:?}"
            );
        }
        for bad in [
            "compression lz4",
            "compression_threshold 0",
            "traditional_compression maybe",
        ] {
            let (_, d) = judged(bad);
            assert_eq!(errors(&d).len(), 1, "{bad}: {d:?}");
        }
    }

    #[test]
    fn ucast6_takes_numeric_peers_scoped_by_the_line_interface() {
        for (line, peer) in [
            ("ucast6 eth0 fe80::2", "fe80::2"),
            ("ucast6 eth0 fe80::2%eth0", "fe80::2"),
            ("ucast6 eth0 fd77::2", "fd77::2"),
        ] {
            let (c, d) = judged(line);
            assert!(d.is_empty(), "{line}: {d:?}");
            let want = Medium::Ucast {
                iface: "eth0".into(),
                peer: peer.parse().unwrap(),
                port: 694,
            };
            assert_eq!(c.media[1], want, "{line}");
            assert_eq!(c.media[1].keyword(), "ucast6");
        }
        for (line, says) in [
            ("ucast6 eth0 fe80::2%eth1", "not the line's interface eth0"),
            ("ucast6 eth0 fe80::2%2", "interface index"),
            ("ucast6 eth0 peer-host", "no host names"),
            ("ucast6 eth0 10.0.0.2", "not an IPv6 address"),
            ("ucast6 eth0 ff02::1", "multicast"),
            ("ucast6 eth0 ::", "unspecified"),
            ("ucast6 eth0 ::1", "loopback"),
            ("ucast6 eth0", "needs an interface and a peer"),
        ] {
            let (c, d) = judged(line);
            let e = errors(&d);
            assert_eq!(e.len(), 1, "{line}: {d:?}");
            assert!(e[0].contains(says), "{line}: {}", e[0]);
            assert!(e[0].starts_with("ha.cf:4:"), "{}", e[0]);
            assert_eq!(c.media.len(), 1, "{line}: the medium is dropped");
        }
        // A scope on a global address means nothing: kept, with a warning.
        let (c, d) = judged("ucast6 eth0 fd77::2%eth0");
        assert!(errors(&d).is_empty(), "{d:?}");
        assert!(
            d.iter().any(|x| x.message.contains("is not link-local")),
            "{d:?}"
        );
        assert_eq!(c.media.len(), 2);
    }

    #[test]
    fn mcast6_takes_the_groups_heartbeat_takes() {
        for g in [
            "ff12::1:2:3:4",
            "ff02::77",
            "ff05::1:3",
            "ff08::9",
            "ff14::1",
        ] {
            let (c, d) = judged(&format!("mcast6 eth0 {g} 694 1 0"));
            assert!(d.is_empty(), "{g}: {d:?}");
            assert_eq!(c.media[1].keyword(), "mcast6");
        }
        for g in [
            "ff01::1",
            "ff0e::1",
            "ff32::1",
            "ff02::",
            "ff03::1",
            "239.0.0.1",
            "fd77::1",
        ] {
            let (c, d) = judged(&format!("mcast6 eth0 {g} 694 1 0"));
            assert_eq!(errors(&d).len(), 1, "{g}: {d:?}");
            assert_eq!(c.media.len(), 1, "{g}");
        }
        let (_, d) = judged("mcast6 eth0 ff12::1:2:3:4 694 5 0");
        let e = errors(&d);
        assert!(e.len() == 1 && e[0].contains("hops \"5\""), "{e:?}");
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
        let (mut c, d) = HaCf::parse(text);
        assert!(!d.iter().any(Diagnostic::is_error), "{d:?}");
        let (mut c2, d2) = HaCf::parse(&c.to_string());
        assert!(!d2.iter().any(Diagnostic::is_error), "{d2:?}");
        // Display writes every setting in its canonical spelling; how the
        // admin spelled a value is not a setting.
        c.written.clear();
        c2.written.clear();
        assert_eq!(c, c2);
    }

    /// A resolver with fixed answers that counts its lookups.
    struct Fixed(Vec<(&'static str, IpAddr)>, std::cell::Cell<usize>);

    impl Resolve for Fixed {
        fn lookup(&self, host: &str) -> Vec<IpAddr> {
            self.1.set(self.1.get() + 1);
            self.0
                .iter()
                .filter(|(h, _)| *h == host)
                .map(|(_, ip)| *ip)
                .collect()
        }
    }

    #[test]
    fn host_names_are_looked_up_after_reading_and_only_then() {
        let text = "node a\nucast eth0 peer-b\nucast eth0 10.0.0.9\nucast eth1 nowhere 10.0.0.7\nauto_failback on\n";
        let unresolved = HaCf::read(text);
        assert_eq!(unresolved.host_names(), ["peer-b", "nowhere"]);
        let dns = Fixed(
            vec![
                ("peer-b", "fd00::2".parse().unwrap()),
                ("peer-b", "10.0.0.2".parse().unwrap()),
            ],
            Default::default(),
        );
        let (c, d) = unresolved.resolve(&dns);
        assert_eq!(dns.1.get(), 2, "one lookup per name, none for an address");
        // The first address of the line's family, in file order with the literal.
        let peers: Vec<String> = c
            .media
            .iter()
            .map(|m| match m {
                Medium::Ucast { peer, .. } => peer.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(peers, ["10.0.0.2", "10.0.0.9"]);
        // The name that does not resolve is an error at its own line and
        // column; the ignored third value is not mentioned for a bad line.
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].code, d[0].line, d[0].column),
            (Code::BadMedium, Some(4), Some(12))
        );
        assert!(d[0].is_error());
        assert!(d[0]
            .message
            .contains("\"nowhere\" is not an IPv4 address or a resolvable host name"));
    }

    #[test]
    fn lookup_results_keep_line_order_and_udpport_notes_follow_them() {
        let text =
            "node a\nucast eth0 gone\nbcast eth1\nudpport 700\nbcast eth0 eth0\nauto_failback on\n";
        let (_, d) = HaCf::read(text).resolve(&Fixed(vec![], Default::default()));
        let lines: Vec<_> = d.iter().map(|x| (x.line, x.code)).collect();
        assert_eq!(
            lines,
            [(Some(2), Code::BadMedium), (Some(4), Code::OrderAfterMedia)]
        );
        // The ucast line that failed keeps no port, so the note names line 3 only.
        assert!(
            d[1].message.contains("on line(s) 3, which keep port 694"),
            "{}",
            d[1]
        );
    }

    #[test]
    fn the_table_holds_exactly_heartbeats_directives() {
        // heartbeat 3.0.6 config.c: Directives[] and WLdirectives[], as
        // Debian's build accepts them (it refuses normalpoll and hbaping,
        // takes ping6, and refuses every crm_daemon_dir line through an
        // inverted check; tests/config_vs_heartbeat.rs asks it).
        let heartbeat = [
            "node",
            "keepalive",
            "deadtime",
            "warntime",
            "initdead",
            "deadping",
            "udpport",
            "udp",
            "bcast",
            "serial",
            "baud",
            "ucast",
            "ucast6",
            "mcast",
            "mcast6",
            "ping",
            "ping_group",
            "ping6",
            "auto_failback",
            "nice_failback",
            "respawn",
            "failfast",
            "apiauth",
            "use_logd",
            "logfile",
            "debugfile",
            "logfacility",
            "conn_logd_time",
            "debug",
            "realtime",
            "rtprio",
            "memreserve",
            "coredumps",
            "coreroot",
            "msgfmt",
            "compression",
            "compression_threshold",
            "traditional_compression",
            "max_rexmit_delay",
            "hopfudge",
            "hbgenmethod",
            "uuidfrom",
            "autojoin",
            "crm",
            "pacemaker",
            "crmd_spawns_pengine",
            "record_config_changes",
            "record_pengine_inputs",
            "enable_config_writes",
            "stonith",
            "stonith_host",
            "watchdog",
            "env",
            "use_apphbd",
            "log_badpack",
            "syslogmsgfmt",
            "quorum_server",
            "cluster",
        ];
        let mut table: Vec<&str> = DIRECTIVES.iter().map(|d| d.name).collect();
        let mut want = heartbeat.to_vec();
        table.sort_unstable();
        want.sort_unstable();
        assert_eq!(table, want);
    }

    #[test]
    fn every_example_is_a_valid_line() {
        let base = "node a\nbcast eth0\nauto_failback on\n";
        for d in DIRECTIVES {
            let (_, diags) = HaCf::parse(&format!("{base}{}\n", d.example));
            let errors: Vec<_> = diags.iter().filter(|x| x.is_error()).collect();
            assert!(
                errors.is_empty(),
                "{}: example {:?}: {errors:?}",
                d.name,
                d.example
            );
        }
    }

    #[test]
    fn directives_not_acted_on_are_reported_once_each() {
        for d in DIRECTIVES {
            let (_, diags) = HaCf::parse(&format!("{}\n{}\n", d.example, d.example));
            let warned = diags
                .iter()
                .filter(|x| x.code == Code::NotImplemented)
                .count();
            let expected = usize::from(matches!(d.support, Support::NotHonoured(_)));
            assert_eq!(warned, expected, "{}: {diags:?}", d.name);
        }
    }

    #[test]
    fn baud_range_text_lists_the_rates() {
        let baud = Directive::find("baud").unwrap();
        assert_eq!(baud.grammar(), format!("{BAUD_RATES:?}"));
    }
}

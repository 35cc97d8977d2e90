//! The ha.cf directive table: one entry per directive heartbeat 3.0.6
//! accepts, giving its value grammar, an example, whether wasmbeat acts on
//! it, how a value applies to [`HaCf`] and how the setting prints back.
//! Adding a directive means adding its entry here (plus, for a typed
//! setting, its field and default in `HaCf`).

use std::fmt;
use std::time::Duration;

use super::super::diag::Code;
use super::super::duration::format_duration;
use super::reader::{valid_iface, At, MediumLine, PeerName, PortNote, Reader, Tok};
use super::resolve::{extra_peer, unresolvable_peer};
use Apply::{Bool, Line, Time, Word, Words};

use super::{
    parse_bool, syslog_facility_code, AutoFailback, AutoJoin, GenMethod, HaCf, Medium, MsgFmt,
    OtherDirective, PingGroup, Respawn, Stonith, StonithHost, UuidFrom, BAUD_RATES, DEFAULT_BAUD,
    MAX_NODES,
};

/// Whether wasmbeat acts on a directive it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// wasmbeat does what the directive says.
    Honoured,
    /// Accepted and kept; reading the file warns once that wasmbeat does
    /// not act on it, and says what it does instead.
    NotHonoured(&'static str),
}

/// What a second line setting the same thing means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Any number of lines: lists, media, and settings heartbeat
    /// overwrites without a word.
    Any,
    /// The last value counts (as in heartbeat), with a warning naming the
    /// first line.
    LastWins,
    /// A second line is an error (heartbeat refuses it too).
    Once,
}

/// Prints a setting back as ha.cf lines.
pub(super) type Write = fn(&HaCf, &mut fmt::Formatter<'_>) -> fmt::Result;

/// A directive's value grammar together with the function applying a
/// value that passed it. Values failing the grammar get the grammar's
/// diagnostic and never reach `apply`.
#[derive(Clone, Copy)]
pub(super) enum Apply {
    /// One heartbeat time (seconds, or `ms`/`us`).
    Time(fn(&mut Reader, At<'_>, Duration)),
    /// One heartbeat boolean (on/off, yes/no, true/false, y/n, 1/0).
    Bool(fn(&mut Reader, At<'_>, bool)),
    /// One whole number in `min..=max`; `range` is how messages state it.
    Number {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
        /// The range as diagnostics print it.
        range: &'static str,
        /// Applies the number.
        apply: fn(&mut Reader, At<'_>, i64),
    },
    /// One of `words` (any case); `apply` gets the word's index.
    Keyword {
        /// The accepted words; the first is the one hints suggest.
        words: &'static [&'static str],
        /// Applies the chosen word.
        apply: fn(&mut Reader, At<'_>, usize),
    },
    /// One word, checked by `apply` itself.
    Word(fn(&mut Reader, At<'_>)),
    /// A list of words (blank- or comma-separated), each applied in turn.
    Words(fn(&mut Reader, At<'_>)),
    /// The rest of the line as blank-separated fields (heartbeat does not
    /// split these on commas); `At::text` is the whole rest.
    Line(fn(&mut Reader, At<'_>, &[Tok<'_>])),
}

/// One ha.cf directive.
pub struct Directive {
    /// The name, as heartbeat spells it (case-sensitive).
    pub name: &'static str,
    /// A line using it, for hints ("write e.g. ...").
    pub example: &'static str,
    /// Whether wasmbeat acts on it.
    pub support: Support,
    /// What repeating it means.
    pub repeat: Repeat,
    /// The setting it writes: its own name, or the one it is an old
    /// spelling of (repeats are counted per setting).
    pub(super) setting: &'static str,
    /// Its grammar and how a value applies.
    pub(super) apply: Apply,
    /// How the setting prints back; None when another entry prints it
    /// (aliases, the media, which print in file order).
    pub(super) write: Option<Write>,
}

impl Directive {
    /// Accepted, but wasmbeat does not act on it (warned once per file).
    const fn not_honoured(self, why: &'static str) -> Directive {
        Directive {
            support: Support::NotHonoured(why),
            ..self
        }
    }

    /// Accepted without a warning, though wasmbeat does not act on it.
    /// The last value counts, with a warning.
    const fn last_wins(self) -> Directive {
        Directive {
            repeat: Repeat::LastWins,
            ..self
        }
    }

    /// A second line is an error.
    const fn once(self) -> Directive {
        Directive {
            repeat: Repeat::Once,
            ..self
        }
    }

    /// An old spelling of `setting`.
    const fn sets(self, setting: &'static str) -> Directive {
        Directive { setting, ..self }
    }

    /// Printed back by `write`.
    const fn write(self, write: Write) -> Directive {
        Directive {
            write: Some(write),
            ..self
        }
    }

    /// The directive named `name` (case-sensitive, as in heartbeat).
    pub fn find(name: &str) -> Option<&'static Directive> {
        DIRECTIVES
            .iter()
            .chain(WASMBEAT_DIRECTIVES)
            .find(|d| d.name == name)
    }

    /// The value grammar in words, e.g. for documentation.
    pub fn grammar(&self) -> &'static str {
        match self.apply {
            Apply::Time(_) => "a time: seconds, or with ms/us",
            Apply::Bool(_) => "a boolean: on/off, yes/no, true/false, y/n, 1/0",
            Apply::Number { range, .. } => range,
            Apply::Keyword { .. } => "one of a fixed set of words",
            Apply::Word(_) => "one word",
            Apply::Words(_) => "a list of words, blank- or comma-separated",
            Apply::Line(_) => "the rest of the line, as fields",
        }
    }

    /// Whether the directive takes the rest of the line rather than values
    /// heartbeat splits on blanks and commas.
    pub(super) fn whole_line(&self) -> bool {
        matches!(self.apply, Apply::Line(_))
    }
}

/// Any whole number (such values are kept as written).
const WHOLE: (i64, i64, &str) = (i64::MIN, i64::MAX, "whole numbers");

const fn number(range: (i64, i64, &'static str), apply: fn(&mut Reader, At<'_>, i64)) -> Apply {
    Apply::Number {
        min: range.0,
        max: range.1,
        range: range.2,
        apply,
    }
}

const fn keyword(words: &'static [&'static str], apply: fn(&mut Reader, At<'_>, usize)) -> Apply {
    Apply::Keyword { words, apply }
}

/// The words of a keyword table, in order.
const fn words<T: Copy, const N: usize>(table: [(&'static str, T); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].0;
        i += 1;
    }
    out
}

/// The word of a keyword table for `value`.
fn word_of<T: PartialEq>(table: &[(&'static str, T)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| v == value)
        .map_or("", |(w, _)| *w)
}

const AUTO_FAILBACK: [(&str, AutoFailback); 3] = [
    ("on", AutoFailback::On),
    ("off", AutoFailback::Off),
    ("legacy", AutoFailback::Legacy),
];
const AUTOJOIN: [(&str, AutoJoin); 3] = [
    ("none", AutoJoin::None),
    ("other", AutoJoin::Other),
    ("any", AutoJoin::Any),
];
const AUTOJOIN_WORDS: [&str; 3] = words(AUTOJOIN);
const UUIDFROM: [(&str, UuidFrom); 2] =
    [("file", UuidFrom::File), ("nodename", UuidFrom::Nodename)];
const UUIDFROM_WORDS: [&str; 2] = words(UUIDFROM);
const MSGFMT: [(&str, MsgFmt); 2] = [
    ("classic", MsgFmt::Classic),
    ("netstring", MsgFmt::Netstring),
];
const MSGFMT_WORDS: [&str; 2] = words(MSGFMT);
const HBGENMETHOD: [(&str, GenMethod); 2] = [("file", GenMethod::File), ("time", GenMethod::Time)];
const HBGENMETHOD_WORDS: [&str; 2] = words(HBGENMETHOD);

const PACEMAKER_ONLY: &str = "Pacemaker-only directive";
const NO_CORES: &str = "core dumps follow the system's settings";
const NO_COMPRESSION: &str = "wasmbeat never compresses messages";

const BAUD: (i64, i64, &str) = (
    0,
    u32::MAX as i64,
    "[9600, 19200, 38400, 57600, 115200, 230400, 460800]",
);
const PORT: (i64, i64, &str) = (0, u16::MAX as i64, "1..65535");
const BYTE: (i64, i64, &str) = (0, 255, "0..255");
/// heartbeat reads max_rexmit_delay into a C int of milliseconds.
const REXMIT_MS: (i64, i64, &str) = (1, i32::MAX as i64, "1..2147483647 (milliseconds)");

/// Every directive heartbeat 3.0.6 accepts, one entry each: name, example,
/// grammar with the function applying a value, then what repeating it
/// means, whether wasmbeat acts on it and how it prints back. Printing
/// follows this order (after the media).
#[rustfmt::skip]
pub const DIRECTIVES: &[Directive] = &[
    // Membership and timing.
    d("node", "node node1 node2", Words(node)).write(|c, f| lines(f, "node", &c.nodes)),
    d("keepalive", "keepalive 2", Time(|r, at, t| r.cf.keepalive = r.timing(at, t))).last_wins()
        .write(|c, f| writeln!(f, "keepalive {}", format_duration(c.keepalive))),
    d("deadtime", "deadtime 30", Time(|r, at, t| r.cf.deadtime = r.timing(at, t))).last_wins()
        .write(|c, f| writeln!(f, "deadtime {}", format_duration(c.deadtime))),
    d("warntime", "warntime 10", Time(|r, at, t| r.cf.warntime = r.timing(at, t))).last_wins()
        .write(|c, f| writeln!(f, "warntime {}", format_duration(c.warntime))),
    d("initdead", "initdead 120", Time(|r, at, t| r.cf.initdead = r.timing(at, t))).last_wins()
        .write(|c, f| writeln!(f, "initdead {}", format_duration(c.initdead))),
    d("deadping", "deadping 30", Time(|r, at, t| r.cf.deadping = r.timing(at, t))).last_wins()
        .write(|c, f| writeln!(f, "deadping {}", format_duration(c.deadping))),
    // Media: printed together, in file order, by `write_media`.
    d("udpport", "udpport 694", number(PORT, udpport)).last_wins(),
    d("baud", "baud 19200", number(BAUD, baud)).once(),
    d("bcast", "bcast eth0", Words(bcast)),
    d("udp", "bcast eth0", Words(udp)).sets("bcast"),
    d("ucast", "ucast eth0 192.168.1.2", Line(ucast)),
    d("ucast6", "ucast6 eth0 fd77::2", Line(ucast)),
    d("mcast", "mcast eth0 239.0.0.1 694 1 0", Line(mcast)),
    d("mcast6", "mcast6 eth0 ff12::1:2:3:4 694 1 0", Line(mcast)),
    d("serial", "serial /dev/ttyS0", Words(serial)),
    // Resources.
    d("auto_failback", "auto_failback on", Word(auto_failback)).last_wins()
        .write(|c, f| writeln!(f, "auto_failback {}", word_of(&AUTO_FAILBACK, &c.auto_failback))),
    d("nice_failback", "auto_failback on", Bool(nice_failback)).sets("auto_failback"),
    d("ping", "ping 10.10.10.254", Words(ping)).write(|c, f| lines(f, "ping", &c.ping)),
    d("ping_group", "ping_group group1 10.10.10.254 10.10.10.253", Line(ping_group))
        .write(write_ping_groups),
    d("ping6", "ping6 fd77::fe", Words(ping)).write(|c, f| lines(f, "ping6", &c.ping6)),
    // Child processes and the client API. `respawn ... ipfail` is honoured
    // by the built-in ipfail; other programs are warned about per line.
    d("respawn", "respawn hacluster /usr/libexec/heartbeat/ipfail", Line(respawn))
        .write(write_respawn),
    d("failfast", "failfast hacluster /usr/libexec/heartbeat/ipfail", Line(respawn))
        .not_honoured("wasmbeat does not start failfast children; run them under systemd instead"),
    d("apiauth", "apiauth ipfail uid=hacluster", Line(|r, at, _| r.cf.apiauth.push(at.text.into())))
        .not_honoured("wasmbeat has no heartbeat client API socket; its control socket is root-only")
        .write(|c, f| lines(f, "apiauth", &c.apiauth)),
    d("env", "env HA_DEBUG=1", Word(keep))
        .not_honoured("wasmbeat does not start respawn children, so env has no effect"),
    // Logging.
    d("use_logd", "use_logd yes", Bool(|r, _, b| r.cf.use_logd = Some(b)))
        .write(|c, f| line(f, "use_logd", c.use_logd.map(on_off))),
    d("logfile", "logfile /var/log/ha-log", Word(|r, at| r.cf.logfile = Some(at.text.into())))
        .write(|c, f| line(f, "logfile", c.logfile.as_deref())),
    d("debugfile", "debugfile /var/log/ha-debug", Word(|r, at| r.cf.debugfile = Some(at.text.into())))
        .write(|c, f| line(f, "debugfile", c.debugfile.as_deref())),
    d("logfacility", "logfacility local0", Word(logfacility))
        .write(|c, f| line(f, "logfacility", c.logfacility.as_deref())),
    d("conn_logd_time", "conn_logd_time 60", Time(|r, at, _| keep(r, at)))
        .not_honoured("wasmbeat does not use ha_logd"),
    d("debug", "debug 1", number(BYTE, |r, _, n| r.cf.debug = n as u8))
        .not_honoured("wasmbeat's log level is set with RUST_LOG (e.g. RUST_LOG=debug)")
        .write(|c, f| writeln!(f, "debug {}", c.debug)),
    d("log_badpack", "log_badpack on", Bool(keep_bool))
        .not_honoured("bad packets are always counted (status shows them) and logged at trace level"),
    d("syslogmsgfmt", "syslogmsgfmt off", Bool(keep_bool)).not_honoured("log lines follow wasmbeat's own format"),
    // Scheduling and memory.
    d("realtime", "realtime on", Bool(|r, _, b| r.cf.realtime = b))
        .write(|c, f| writeln!(f, "realtime {}", on_off(c.realtime))),
    d("rtprio", "rtprio 5", number(WHOLE, |r, at, _| keep(r, at)))
        .not_honoured("wasmbeat picks the middle SCHED_RR priority itself"),
    d("memreserve", "memreserve 6500", number(WHOLE, positive)).not_honoured("wasmbeat does not pre-lock memory"),
    d("coredumps", "coredumps true", Bool(keep_bool)).not_honoured(NO_CORES),
    d("coreroot", "coreroot /var/lib/heartbeat/cores", Word(keep)).not_honoured(NO_CORES),
    // Wire format.
    d("msgfmt", "msgfmt classic", keyword(&MSGFMT_WORDS, |r, _, i| r.cf.msgfmt = MSGFMT[i].1))
        .write(|c, f| writeln!(f, "msgfmt {}", word_of(&MSGFMT, &c.msgfmt))),
    d("compression", "compression zlib", Word(compression)).not_honoured(NO_COMPRESSION)
        .write(|c, f| line(f, "compression", c.compression.as_deref())),
    d("compression_threshold", "compression_threshold 2", number(WHOLE, positive)).not_honoured(NO_COMPRESSION),
    d("traditional_compression", "traditional_compression off", Bool(keep_bool)).not_honoured(NO_COMPRESSION),
    d("max_rexmit_delay", "max_rexmit_delay 250", number(REXMIT_MS, max_rexmit_delay)).last_wins()
        .write(|c, f| writeln!(f, "max_rexmit_delay {}", c.max_rexmit_delay.as_millis())),
    d("hopfudge", "hopfudge 1", number(BYTE, |r, _, n| r.cf.hopfudge = n as u8))
        .write(|c, f| writeln!(f, "hopfudge {}", c.hopfudge)),
    // Identity and membership rules.
    d("hbgenmethod", "hbgenmethod file", keyword(&HBGENMETHOD_WORDS, |r, _, i| r.cf.hbgenmethod = HBGENMETHOD[i].1))
        .write(|c, f| writeln!(f, "hbgenmethod {}", word_of(&HBGENMETHOD, &c.hbgenmethod))),
    d("uuidfrom", "uuidfrom file", keyword(&UUIDFROM_WORDS, uuidfrom))
        .write(|c, f| writeln!(f, "uuidfrom {}", word_of(&UUIDFROM, &c.uuidfrom))),
    d("autojoin", "autojoin none", keyword(&AUTOJOIN_WORDS, |r, _, i| r.cf.autojoin = AUTOJOIN[i].1))
        .write(|c, f| writeln!(f, "autojoin {}", word_of(&AUTOJOIN, &c.autojoin))),
    d("cluster", "cluster linux-ha", Word(keep)).not_honoured("the cluster name is not used"),
    d("quorum_server", "quorum_server quorumd.example.com", Word(keep)).not_honoured("quorum servers are not supported"),
    d("use_apphbd", "use_apphbd off", Bool(keep_bool)).not_honoured("apphbd is not supported"),
    // Pacemaker: haresources mode needs it off.
    d("crm", "crm off", Word(crm)),
    d("pacemaker", "pacemaker off", Word(crm)).sets("crm"),
    d("crmd_spawns_pengine", "crmd_spawns_pengine on", Bool(keep_bool)).not_honoured(PACEMAKER_ONLY),
    d("record_config_changes", "record_config_changes on", Bool(keep_bool)).not_honoured(PACEMAKER_ONLY),
    d("record_pengine_inputs", "record_pengine_inputs on", Bool(keep_bool)).not_honoured(PACEMAKER_ONLY),
    d("enable_config_writes", "enable_config_writes on", Bool(keep_bool)).not_honoured(PACEMAKER_ONLY),
    // Fencing.
    d("stonith", "stonith baytech /etc/ha.d/conf/stonith.baytech", Line(stonith))
        .write(|c, f| c.stonith.iter().try_for_each(|s| writeln!(f, "stonith {} {}", s.kind, s.config_file))),
    d("stonith_host", "stonith_host * baytech 10.0.0.3 mylogin mysecretpassword", Line(stonith_host))
        .write(write_stonith_hosts),
    d("watchdog", "watchdog /dev/watchdog", Word(|r, at| r.cf.watchdog = Some(at.text.into())))
        .write(|c, f| line(f, "watchdog", c.watchdog.as_deref())),
];

/// Directives only wasmbeat reads. heartbeat 3.0.6 refuses a ha.cf with
/// any of them ("Illegal directive"), so reading one warns that the file is
/// wasmbeat-only; they stay out of [`DIRECTIVES`], which is heartbeat's
/// table and is compared with the real daemon.
#[rustfmt::skip]
pub const WASMBEAT_DIRECTIVES: &[Directive] = &[
    // Link tracking: a tracked interface losing carrier makes ipfail count
    // 0 at once (`wasmbeat_core::link`).
    d("track_link", "track_link eth0", Words(track_link))
        .write(|c, f| lines(f, "track_link", &c.track_link)),
    // Tie-breaker: a witness on a third machine decides which side of a
    // partition runs the groups (`wasmbeat_core::witness`).
    d("tiebreaker", "tiebreaker 192.168.1.254:7405", Word(tiebreaker)).once()
        .write(|c, f| line(f, "tiebreaker", c.tiebreaker.map(|a| a.to_string()).as_deref())),
];

/// `tiebreaker ADDR:PORT`: an IP address literal and a UDP port (no name:
/// a failover must not wait for DNS); IPv6 as `[addr]:port`.
fn tiebreaker(r: &mut Reader, at: At<'_>) {
    let Ok(addr) = at.text.parse::<std::net::SocketAddr>() else {
        r.err(
            Code::BadValue,
            at,
            format!("tiebreaker {:?} is not an address and port", at.text),
            "write the witness's IP address and UDP port, e.g. \"tiebreaker 192.168.1.254:7405\" or \"tiebreaker [2001:db8::9]:7405\"",
        );
        return;
    };
    if addr.port() == 0 {
        r.err(
            Code::BadValue,
            at,
            format!("tiebreaker {}: port 0", at.text),
            "give the port wasmbeat witness --listen uses, e.g. 7405",
        );
        return;
    }
    r.warn(
        Code::WasmbeatOnly,
        at,
        format!(
            "tiebreaker {} is wasmbeat-only: heartbeat 3.0.6 refuses this ha.cf (\"Illegal directive\"); a heartbeat peer never asks the witness, so it does not protect a mixed cluster",
            at.text
        ),
        "keep this line only in the ha.cf of wasmbeat nodes, and give every node of the cluster the same one",
    );
    r.cf.tiebreaker = Some(addr);
}

/// `track_link IFACE`: watched through rtnetlink link events; needs the
/// built-in ipfail (it moves the groups) and, being wasmbeat's own, makes
/// the file one heartbeat refuses.
fn track_link(r: &mut Reader, at: At<'_>) {
    r.warn(
        Code::WasmbeatOnly,
        at,
        format!(
            "track_link {} is wasmbeat-only: heartbeat 3.0.6 refuses this ha.cf (\"Illegal directive\"); a heartbeat peer keeps its own copy without it",
            at.text
        ),
        "keep this line only in the ha.cf of wasmbeat nodes",
    );
    r.cf.track_link.push(at.text.into());
}

/// A table entry: honoured, may repeat, not printed (until said otherwise).
const fn d(name: &'static str, example: &'static str, apply: Apply) -> Directive {
    Directive {
        name,
        example,
        support: Support::Honoured,
        repeat: Repeat::Any,
        setting: name,
        apply,
        write: None,
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// `NAME VALUE`, if there is a value.
fn line(f: &mut fmt::Formatter<'_>, name: &str, value: Option<&str>) -> fmt::Result {
    match value {
        Some(v) => writeln!(f, "{name} {v}"),
        None => Ok(()),
    }
}

/// `NAME VALUE` for each value.
fn lines(f: &mut fmt::Formatter<'_>, name: &str, values: &[String]) -> fmt::Result {
    values.iter().try_for_each(|v| writeln!(f, "{name} {v}"))
}

/// `respawn` and `failfast` lines share one list.
fn write_respawn(c: &HaCf, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    c.respawn.iter().try_for_each(|r| {
        let kw = if r.failfast { "failfast" } else { "respawn" };
        writeln!(f, "{kw} {} {}", r.user, r.command)
    })
}

fn write_ping_groups(c: &HaCf, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    c.ping_groups
        .iter()
        .try_for_each(|g| writeln!(f, "ping_group {} {}", g.name, g.hosts.join(" ")))
}

fn write_stonith_hosts(c: &HaCf, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    c.stonith_hosts.iter().try_for_each(|s| {
        write!(f, "stonith_host {} {}", s.host, s.kind)?;
        s.params.iter().try_for_each(|p| write!(f, " {p}"))?;
        writeln!(f)
    })
}

/// Print the media in file order, each preceded by the `udpport`/`baud`
/// line it needs, then the final `udpport` and `baud` if no medium showed them
/// (`baud` only if it is not the default).
pub(super) fn write_media(c: &HaCf, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut port = None;
    // `baud` may appear once: serial lines above it keep the default, those
    // below take its value, so the line goes before the first serial medium
    // whose speed differs from the default (the fuzzer found the printer
    // writing the first serial's speed and dropping the second one's).
    let mut baud = DEFAULT_BAUD;
    let mut baud_written = false;
    for m in &c.media {
        match m {
            Medium::Bcast { port: p, .. } | Medium::Ucast { port: p, .. } if port != Some(*p) => {
                writeln!(f, "udpport {p}")?;
                port = Some(*p);
            }
            Medium::Serial { baud: b, .. } if *b != baud && !baud_written => {
                writeln!(f, "baud {b}")?;
                baud = *b;
                baud_written = true;
            }
            _ => {}
        }
        match m {
            Medium::Bcast { iface, .. } => writeln!(f, "bcast {iface}")?,
            Medium::Ucast { iface, peer, .. } => {
                let kw = m.keyword();
                writeln!(f, "{kw} {iface} {peer}")?
            }
            Medium::Mcast {
                iface,
                group,
                port,
                ttl,
                loop_,
            } => {
                let kw = m.keyword();
                writeln!(f, "{kw} {iface} {group} {port} {ttl} {}", u8::from(*loop_))?
            }
            Medium::Serial { device, .. } => writeln!(f, "serial {device}")?,
        }
    }
    if port != Some(c.udpport) {
        writeln!(f, "udpport {}", c.udpport)?;
    }
    if !baud_written && c.baud != baud {
        writeln!(f, "baud {}", c.baud)?;
    }
    Ok(())
}

/// Keep the value verbatim in [`HaCf::other`].
fn keep(r: &mut Reader, at: At<'_>) {
    r.cf.other.push(OtherDirective {
        name: at.name.to_string(),
        value: at.text.to_string(),
    });
}

fn keep_bool(r: &mut Reader, at: At<'_>, _: bool) {
    keep(r, at);
}

/// Keep a number that must be above 0.
fn positive(r: &mut Reader, at: At<'_>, n: i64) {
    if n <= 0 {
        r.err(
            Code::BadNumber,
            at,
            format!("{} must be greater than 0", at.name),
            &Reader::example_hint(at),
        );
        return;
    }
    keep(r, at);
}

fn node(r: &mut Reader, at: At<'_>) {
    let v = at.text;
    let name = v.to_lowercase();
    if name.len() >= 100 {
        r.err(
            Code::BadNodeName,
            at,
            format!("node name {v:?} is too long (heartbeat allows at most 99 bytes)"),
            "use the machine's short `uname -n`",
        );
        return;
    }
    if r.cf.nodes.contains(&name) {
        r.warn(
            Code::Repeated,
            at,
            format!("node {name:?} is listed twice (names are compared lowercased)"),
            "remove the duplicate",
        );
        return;
    }
    if r.cf.nodes.len() >= MAX_NODES {
        r.err(
            Code::BadNodeName,
            at,
            format!("too many nodes: heartbeat supports at most {MAX_NODES}"),
            "",
        );
        return;
    }
    r.cf.nodes.push(name);
}

fn udpport(r: &mut Reader, at: At<'_>, port: i64) {
    if port == 0 {
        r.err(
            Code::BadNumber,
            at,
            "udpport 0 is not a usable port".into(),
            &Reader::example_hint(at),
        );
        return;
    }
    // heartbeat reads udpport when each medium line is parsed: earlier
    // media keep the old port.
    let media_lines = r.media_lines(MediumLine::uses_udpport);
    if !media_lines.is_empty() {
        let note = PortNote {
            diag: r.diags.len(),
            old_port: r.cf.udpport,
            media_lines,
        };
        let hint = "move \"udpport\" above the bcast/ucast lines";
        r.warn(Code::OrderAfterMedia, at, note.message(), hint);
        r.port_notes.push(note);
    }
    r.cf.udpport = port as u16;
}

fn baud(r: &mut Reader, at: At<'_>, b: i64) {
    let b = b as u32;
    if !BAUD_RATES.contains(&b) {
        r.err(
            Code::BadValue,
            at,
            format!("baud {b} is not a supported speed"),
            "write one of 9600, 19200, 38400, 57600, 115200, 230400, 460800",
        );
        return;
    }
    let before = r.media_lines(|m| matches!(m, MediumLine::Ready(Medium::Serial { .. })));
    if !before.is_empty() {
        let lines: Vec<String> = before.iter().map(usize::to_string).collect();
        r.warn(
            Code::OrderAfterMedia,
            at,
            format!(
                "baud comes after serial media on line(s) {}, which keep {DEFAULT_BAUD} baud, as in heartbeat",
                lines.join(", ")
            ),
            "move \"baud\" above the serial lines",
        );
    }
    r.cf.baud = b;
}

fn bad_iface(r: &mut Reader, at: At<'_>) {
    r.err(
        Code::BadMedium,
        at,
        format!("{}: {:?} is not a valid interface name", at.name, at.text),
        &Reader::example_hint(at),
    );
}

/// The old name of `bcast`.
fn udp(r: &mut Reader, at: At<'_>) {
    r.warn(
        Code::Obsolete,
        At {
            text: at.name,
            ..at
        },
        "\"udp\" is an old name for \"bcast\"".into(),
        "write \"bcast\"",
    );
    bcast(r, at);
}

fn serial(r: &mut Reader, at: At<'_>) {
    let baud = r.cf.baud;
    let device = at.text.to_string();
    r.push_medium(MediumLine::Ready(Medium::Serial { device, baud }), at.line);
}

fn bcast(r: &mut Reader, at: At<'_>) {
    if !valid_iface(at.text) {
        bad_iface(r, at);
        return;
    }
    let port = r.cf.udpport;
    r.push_medium(
        MediumLine::Ready(Medium::Bcast {
            iface: at.text.to_string(),
            port,
        }),
        at.line,
    );
}

/// `ucast IFACE PEER`: an address literal is checked now; a host name is
/// looked up once the whole file is read (`resolve`).
fn ucast(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    let v6 = at.name == "ucast6";
    let field = |tok| at.field(tok);
    if vals.len() < 2 {
        r.err(
            Code::BadMedium,
            field(vals[0]),
            format!("{} needs an interface and a peer address", at.name),
            &Reader::example_hint(at),
        );
        return;
    }
    let iface = field(vals[0]);
    if !valid_iface(iface.text) {
        bad_iface(r, iface);
        return;
    }
    let peer = field(vals[1]);
    let extra = vals.get(2).map(|&(col, text)| (col, text.to_string()));
    let port = r.cf.udpport;
    if v6 {
        let Some(ip) = ucast6_peer(r, iface.text, peer) else {
            return;
        };
        if let Some((col, text)) = &extra {
            r.diags.push(extra_peer(at.name, at.line, *col, text));
        }
        let medium = Medium::Ucast {
            iface: iface.text.to_string(),
            peer: ip.into(),
            port,
        };
        r.push_medium(MediumLine::Ready(medium), at.line);
        return;
    }
    let medium = match peer.text.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_ipv6() == v6 => {
            if let Some((col, text)) = &extra {
                r.diags.push(extra_peer(at.name, at.line, *col, text));
            }
            MediumLine::Ready(Medium::Ucast {
                iface: iface.text.to_string(),
                peer: ip,
                port,
            })
        }
        Ok(_) => {
            let d = unresolvable_peer(at.name, at.example, v6, at.line, peer.col, peer.text);
            r.diags.push(d);
            return;
        }
        Err(_) => MediumLine::Named(PeerName {
            directive: at.name,
            example: at.example,
            iface: iface.text.to_string(),
            host: peer.text.to_string(),
            col: peer.col,
            v6,
            port,
            extra,
        }),
    };
    r.push_medium(medium, at.line);
}

/// A `ucast6` peer as heartbeat's ucast6 plugin takes it: a numeric IPv6
/// unicast address (it looks up no host names), optionally with a
/// `%scope`. A link-local peer is reached through the line's interface, so
/// a scope may only name that interface; heartbeat refuses any other
/// ("index does not match scope id"). An interface index (`%2`) is refused
/// too, though heartbeat takes it when it happens to match: indexes change
/// when interfaces are re-created, names are what the admin means.
fn ucast6_peer(r: &mut Reader, iface: &str, peer: At<'_>) -> Option<std::net::Ipv6Addr> {
    let (addr, scope) = match peer.text.split_once('%') {
        Some((a, s)) => (a, Some(s)),
        None => (peer.text, None),
    };
    let hint = format!("write e.g. \"ucast6 {iface} fe80::2\" (a link-local peer is reached through {iface}) or \"ucast6 {iface} fd77::2\"");
    let Ok(ip) = addr.parse::<std::net::Ipv6Addr>() else {
        let msg = format!("ucast6 peer {:?} is not an IPv6 address: heartbeat's ucast6 takes numeric addresses only, no host names", peer.text);
        r.err(Code::BadMedium, peer, msg, &hint);
        return None;
    };
    let refused = if ip.is_multicast() {
        Some("a multicast address (use mcast6 for a group)")
    } else if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("the loopback address")
    } else {
        None
    };
    if let Some(what) = refused {
        let msg = format!("ucast6 peer {addr} is {what}, which heartbeat's ucast6 refuses");
        r.err(Code::BadMedium, peer, msg, &hint);
        return None;
    }
    let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
    match scope {
        None => {}
        Some(s) if s == iface && link_local => {}
        Some(s) if s == iface => {
            let msg = format!("ucast6 peer {addr} is not link-local, so its scope %{s} means nothing and is ignored");
            r.warn(
                Code::BadMedium,
                peer,
                msg,
                &format!("write \"ucast6 {iface} {addr}\""),
            );
        }
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            let msg = format!("ucast6 peer scope %{s} is an interface index, which changes when interfaces are re-created");
            let fix = format!("write the interface name, \"{addr}%{iface}\", or just \"{addr}\": the line's interface {iface} is the scope");
            r.err(Code::BadMedium, peer, msg, &fix);
            return None;
        }
        Some(s) => {
            let msg = format!("ucast6 peer scope %{s} is not the line's interface {iface}: heartbeat refuses it (\"index does not match scope id\"), and packets would leave through {iface} anyway");
            let fix = format!("write \"ucast6 {iface} {addr}\", or \"ucast6 {s} {addr}\" if the peer is reached through {s}");
            r.err(Code::BadMedium, peer, msg, &fix);
            return None;
        }
    }
    Some(ip)
}

/// Whether heartbeat's mcast6 takes `group` (its `is_valid_mcast6_addr`):
/// no flag but "transient", a link-, admin-, site- or organization-local
/// scope (never interface-local or global), and a non-zero group id.
fn heartbeat_mcast6_group(group: &std::net::Ipv6Addr) -> bool {
    let o = group.octets();
    o[0] == 0xff
        && o[1] & 0xe0 == 0
        && matches!(o[1] & 0x0f, 0x2 | 0x4 | 0x5 | 0x8)
        && o[2..].iter().any(|b| *b != 0)
}

fn mcast(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    let name = at.name;
    let v6 = name == "mcast6";
    let hint = Reader::example_hint(at);
    let field = |tok| at.field(tok);
    if vals.len() < 5 {
        r.err(
            Code::BadMedium,
            At { text: name, ..at },
            format!("{name} needs 5 values: interface, group, port, ttl, loop"),
            &hint,
        );
        return;
    }
    let iface = field(vals[0]);
    if !valid_iface(iface.text) {
        bad_iface(r, iface);
        return;
    }
    let family = if v6 { "IPv6" } else { "IPv4" };
    let g = field(vals[1]);
    let group = match g.text.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_multicast() && ip.is_ipv6() == v6 => ip,
        _ => {
            let msg = format!(
                "{name} group {:?} is not an {family} multicast address",
                g.text
            );
            r.err(Code::BadMedium, g, msg, &hint);
            return;
        }
    };
    if let std::net::IpAddr::V6(g6) = group {
        if !heartbeat_mcast6_group(&g6) {
            let msg = format!(
                "mcast6 group {g6} is refused by heartbeat's mcast6: it takes link-local (ff02::/16, ff12::/16), admin-local (ff04), site-local (ff05) or organization-local (ff08) groups, with no flag but transient and a non-zero group id"
            );
            r.err(
                Code::BadMedium,
                g,
                msg,
                "use e.g. \"ff12::1:2:3:4\" (transient, link-local)",
            );
            return;
        }
    }
    let p = field(vals[2]);
    let port = match p.text.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => {
            let msg = format!("{name} port {:?} is not a port number", p.text);
            r.err(Code::BadMedium, p, msg, &hint);
            return;
        }
    };
    let t = field(vals[3]);
    let ttl = match t.text.parse::<u8>() {
        Ok(ttl) if ttl <= 4 => ttl,
        _ => {
            let what = if v6 { "hops" } else { "ttl" };
            let msg = format!(
                "{name} {what} {:?} is out of range: heartbeat 3.0.6 accepts 0-4 (the man page's 0-255 is wrong)",
                t.text
            );
            r.err(Code::BadMedium, t, msg, "use 1 for the local subnet");
            return;
        }
    };
    let l = field(vals[4]);
    let loop_ = match l.text {
        "0" => false,
        "1" => true,
        _ => {
            let msg = format!("{name} loop {:?} must be 0 or 1", l.text);
            r.err(Code::BadMedium, l, msg, "use 0");
            return;
        }
    };
    r.push_medium(
        MediumLine::Ready(Medium::Mcast {
            iface: iface.text.to_string(),
            group,
            port,
            ttl,
            loop_,
        }),
        at.line,
    );
}

fn auto_failback(r: &mut Reader, at: At<'_>) {
    let v = at.text;
    let af = if v.eq_ignore_ascii_case("legacy") {
        AutoFailback::Legacy
    } else {
        match parse_bool(v) {
            Some(true) => AutoFailback::On,
            Some(false) => AutoFailback::Off,
            None => {
                r.err(
                    Code::BadValue,
                    at,
                    format!("auto_failback {v:?} is not on, off or legacy"),
                    "write \"auto_failback on\" (move back to the preferred node) or \"auto_failback off\" (stay)",
                );
                return;
            }
        }
    };
    r.cf.auto_failback = af;
}

fn nice_failback(r: &mut Reader, at: At<'_>, _: bool) {
    // heartbeat tests the *global* setting, not the value given: after an
    // auto_failback line it means off, otherwise legacy.
    let effect = if r.set_at.contains_key("auto_failback") {
        AutoFailback::Off
    } else {
        AutoFailback::Legacy
    };
    r.warn(
        Code::Obsolete,
        At { text: at.name, ..at },
        format!(
            "nice_failback is obsolete; heartbeat logs an error and, whatever the value, treats it here as \"auto_failback {}\"",
            word_of(&AUTO_FAILBACK, &effect)
        ),
        "replace it with \"auto_failback on\" or \"auto_failback off\"",
    );
    r.cf.auto_failback = effect;
}

fn ping_group(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    if vals.len() < 2 {
        r.err(
            Code::MissingValue,
            at,
            "ping_group needs a name and at least one host".into(),
            &Reader::example_hint(at),
        );
        return;
    }
    r.cf.ping_groups.push(PingGroup {
        name: vals[0].1.to_string(),
        hosts: vals[1..].iter().map(|(_, h)| h.to_string()).collect(),
    });
}

/// `ping`/`ping6`: one ping node per address. heartbeat's ping plugin
/// takes IPv4 addresses, ping6 IPv6 ones; wasmbeat probes addresses only,
/// so anything else would never answer and is said at once.
fn ping(r: &mut Reader, at: At<'_>) {
    let v6 = at.name == "ping6";
    let ok = match at.text.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_ipv6() == v6,
        Err(_) => false,
    };
    if !ok {
        let want = if v6 { "an IPv6" } else { "an IPv4" };
        r.warn(
            Code::BadValue,
            at,
            format!(
                "{} {:?} is not {want} address: wasmbeat cannot probe it, so this ping node is dead from the start",
                at.name, at.text
            ),
            "write the router's address, e.g. \"ping 10.10.10.254\" or \"ping6 fd77::fe\"",
        );
    }
    if v6 {
        r.cf.ping6.push(at.text.into());
    } else {
        r.cf.ping.push(at.text.into());
    }
}

fn respawn(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    if vals.len() < 2 {
        r.err(
            Code::MissingValue,
            at,
            format!("{} needs a user and a program", at.name),
            &Reader::example_hint(at),
        );
        return;
    }
    let command = vals[1..]
        .iter()
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join(" ");
    let child = Respawn {
        user: vals[0].1.to_string(),
        command,
        failfast: at.name == "failfast",
    };
    if at.name == "respawn" && !child.is_ipfail() {
        r.warn(
            Code::NotImplemented,
            At { text: at.name, ..at },
            format!(
                "\"respawn {}\" is accepted but not acted on: wasmbeat starts no respawn children (ipfail is built in)",
                at.text
            ),
            "run the program under systemd instead",
        );
    }
    r.cf.respawn.push(child);
}

fn logfacility(r: &mut Reader, at: At<'_>) {
    let v = at.text;
    if v != "none" && syslog_facility_code(v).is_none() {
        r.err(
            Code::BadValue,
            at,
            format!("logfacility {v:?} is not a syslog facility"),
            "write e.g. \"logfacility local0\", \"logfacility daemon\" or \"logfacility none\"",
        );
        return;
    }
    r.cf.logfacility = Some(v.to_string());
}

/// Whole milliseconds, as heartbeat's atoi reads them; the session waits
/// a random time up to this before asking for a missed message again.
fn max_rexmit_delay(r: &mut Reader, _: At<'_>, ms: i64) {
    r.cf.max_rexmit_delay = Duration::from_millis(ms as u64);
}

/// `uuidfrom file` is what wasmbeat does; `nodename` is reported.
fn uuidfrom(r: &mut Reader, at: At<'_>, i: usize) {
    r.cf.uuidfrom = UUIDFROM[i].1;
    if r.cf.uuidfrom != UuidFrom::File {
        r.warn(
            Code::NotImplemented,
            at,
            "\"uuidfrom nodename\" is accepted but not acted on: the node UUID always comes from hb_uuid in the state directory, as with uuidfrom file".to_string(),
            "",
        );
    }
}

fn compression(r: &mut Reader, at: At<'_>) {
    let v = at.text;
    if !matches!(v, "zlib" | "bz2") {
        r.err(
            Code::BadValue,
            at,
            format!("compression {v:?} is not a heartbeat compression plugin"),
            "write \"compression zlib\" or \"compression bz2\"",
        );
        return;
    }
    r.cf.compression = Some(v.to_string());
}

/// `crm`/`pacemaker`: one line at most, whatever its value (so the line is
/// counted before the value is judged), and only "off" runs haresources.
fn crm(r: &mut Reader, at: At<'_>) {
    let (name, v) = (at.name, at.text);
    if let Some(prev) = r.set_at.get("crm") {
        let msg =
            format!("{name} is set again (first on line {prev}); heartbeat allows it only once");
        r.err(Code::Repeated, at, msg, "remove one of the lines");
        return;
    }
    r.set_at.insert("crm", at.line);
    let enables = match parse_bool(v) {
        Some(on) => on,
        None if matches!(
            v.to_ascii_lowercase().as_str(),
            "respawn" | "minimal" | "manual" | "ccm-only" | "valgrind"
        ) =>
        {
            true
        }
        None => {
            r.err(
                Code::BadValue,
                at,
                format!("{name} {v:?} is not a value heartbeat accepts"),
                &format!("write \"{name} off\" (wasmbeat runs haresources mode)"),
            );
            return;
        }
    };
    if enables {
        r.err(
            Code::CrmEnabled,
            at,
            format!("{name} {v} enables Pacemaker, which disables haresources; wasmbeat runs haresources (v1) mode only"),
            &format!("write \"{name} off\" (or remove the line) and describe resources in haresources"),
        );
    }
}

fn stonith(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    if vals.len() != 2 {
        r.err(
            Code::BadValue,
            at,
            "stonith needs exactly a device type and a configuration file".into(),
            &Reader::example_hint(at),
        );
        return;
    }
    r.cf.stonith.push(Stonith {
        kind: vals[0].1.to_string(),
        config_file: vals[1].1.to_string(),
        line: super::SourceLine(at.line),
    });
}

fn stonith_host(r: &mut Reader, at: At<'_>, vals: &[Tok<'_>]) {
    if vals.len() < 2 {
        r.err(
            Code::BadValue,
            at,
            "stonith_host needs a host (or *), a device type and its parameters".into(),
            &Reader::example_hint(at),
        );
        return;
    }
    r.cf.stonith_hosts.push(StonithHost {
        host: vals[0].1.to_lowercase(),
        kind: vals[1].1.to_string(),
        params: vals[2..].iter().map(|(_, t)| t.to_string()).collect(),
        line: super::SourceLine(at.line),
    });
}

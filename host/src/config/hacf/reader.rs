//! The state of one ha.cf read: the configuration as the directives so far
//! left it, which line last set each setting, media whose peer names are
//! still to be looked up, and the diagnostics found. Directive `apply`
//! functions write here; nothing here knows the directive table.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::diag::{Code, Diagnostic};
use super::{
    AutoFailback, AutoJoin, GenMethod, HaCf, Medium, MsgFmt, UuidFrom, DEFAULT_BAUD,
    DEFAULT_MAX_REXMIT_DELAY, DEFAULT_UDPPORT, FILE,
};

/// A token with its 1-based column.
pub(super) type Tok<'a> = (usize, &'a str);

/// Split `line` into tokens on blanks (and commas, as heartbeat does for
/// per-value directives).
pub(super) fn tokens(line: &str, split_commas: bool) -> Vec<Tok<'_>> {
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

/// Where a value sits, for diagnostics: its line, 1-based column, the
/// directive it belongs to, the value as written, and the directive's example.
#[derive(Debug, Clone, Copy)]
pub(super) struct At<'a> {
    /// 1-based line.
    pub line: usize,
    /// 1-based column of `text`.
    pub col: usize,
    /// The directive's name.
    pub name: &'static str,
    /// The value as written (for whole-line directives: the rest of the line).
    pub text: &'a str,
    /// The directive's example, for "write e.g." hints.
    pub example: &'static str,
}

impl At<'_> {
    /// The same directive's field `tok` (a whole-line directive's value).
    pub fn field<'b>(&self, (col, text): Tok<'b>) -> At<'b> {
        At {
            line: self.line,
            col,
            name: self.name,
            text,
            example: self.example,
        }
    }
}

/// A `ucast` peer given by host name, looked up after the whole file is read.
#[derive(Debug, Clone)]
pub(super) struct PeerName {
    /// `ucast` or `ucast6`.
    pub directive: &'static str,
    /// The directive's example.
    pub example: &'static str,
    /// Interface.
    pub iface: String,
    /// The host name as written.
    pub host: String,
    /// Its column.
    pub col: usize,
    /// Whether an IPv6 address is wanted.
    pub v6: bool,
    /// The UDP port in effect on the line.
    pub port: u16,
    /// A third value heartbeat ignores (column, text), warned about once the
    /// line is known to be good.
    pub extra: Option<(usize, String)>,
}

/// A medium line: complete, or waiting for its peer's address.
#[derive(Debug, Clone)]
pub(super) enum MediumLine {
    /// Fully known.
    Ready(Medium),
    /// A `ucast` whose peer is a host name.
    Named(PeerName),
}

impl MediumLine {
    /// Whether the medium is a UDP one that carries the `udpport` in effect.
    pub fn uses_udpport(&self) -> bool {
        matches!(
            self,
            MediumLine::Ready(Medium::Bcast { .. } | Medium::Ucast { .. }) | MediumLine::Named(_)
        )
    }
}

/// `udpport` after UDP media: which lines keep the old port. Warned about
/// where it is read; the warning is revised once the media are final (a
/// peer name that does not resolve drops its line).
#[derive(Debug, Clone)]
pub(super) struct PortNote {
    /// Index of the warning in [`Reader::diags`].
    pub diag: usize,
    /// The port the earlier media keep.
    pub old_port: u16,
    /// The lines of those media.
    pub media_lines: Vec<usize>,
}

impl PortNote {
    /// The warning's message.
    pub fn message(&self) -> String {
        let lines: Vec<String> = self.media_lines.iter().map(usize::to_string).collect();
        format!(
            "udpport comes after media on line(s) {}, which keep port {}, as in heartbeat (it reads udpport when each medium line is parsed)",
            lines.join(", "),
            self.old_port
        )
    }
}

/// Everything one read of ha.cf has gathered so far.
pub(super) struct Reader {
    /// The configuration as the directives so far left it, on heartbeat's
    /// defaults; settings derived from others are filled in at the end.
    pub cf: HaCf,
    /// Setting name -> line of the last value that took effect.
    pub set_at: BTreeMap<&'static str, usize>,
    /// Media with their lines, in file order.
    pub media: Vec<(MediumLine, usize)>,
    /// (line, column, text) of each timing value, to point timing diagnostics at it.
    pub timing_values: Vec<(usize, usize, String)>,
    /// `udpport` lines that came after UDP media.
    pub port_notes: Vec<PortNote>,
    /// Directives already warned about as not acted on (one warning each).
    pub warned: Vec<&'static str>,
    /// Diagnostics, in line order.
    pub diags: Vec<Diagnostic>,
}

impl Reader {
    /// An empty read: heartbeat's defaults, nothing set.
    pub fn new() -> Reader {
        let zero = Duration::ZERO;
        Reader {
            cf: HaCf {
                nodes: Vec::new(),
                keepalive: Duration::from_secs(1),
                deadtime: Duration::from_secs(30),
                // Derived from deadtime unless given (see `finish`).
                warntime: zero,
                initdead: zero,
                deadping: zero,
                udpport: DEFAULT_UDPPORT,
                baud: DEFAULT_BAUD,
                media: Vec::new(),
                auto_failback: AutoFailback::Legacy,
                ping: Vec::new(),
                ping_groups: Vec::new(),
                ping6: Vec::new(),
                track_link: Vec::new(),
                tiebreaker: None,
                respawn: Vec::new(),
                apiauth: Vec::new(),
                use_logd: None,
                logfile: None,
                debugfile: None,
                logfacility: None,
                debug: 0,
                realtime: true,
                compression: None,
                hopfudge: 1,
                max_rexmit_delay: DEFAULT_MAX_REXMIT_DELAY,
                autojoin: AutoJoin::None,
                uuidfrom: UuidFrom::File,
                msgfmt: MsgFmt::Classic,
                hbgenmethod: GenMethod::File,
                stonith: Vec::new(),
                stonith_hosts: Vec::new(),
                watchdog: None,
                other: Vec::new(),
                written: BTreeMap::new(),
            },
            set_at: BTreeMap::new(),
            media: Vec::new(),
            timing_values: Vec::new(),
            port_notes: Vec::new(),
            warned: Vec::new(),
            diags: Vec::new(),
        }
    }

    /// The number of errors found so far.
    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// An error at `at` (an empty hint is left out).
    pub fn err(&mut self, code: Code, at: At<'_>, msg: String, hint: &str) {
        self.diags.push(diagnostic(true, code, at, msg, hint));
    }

    /// A warning at `at` (an empty hint is left out).
    pub fn warn(&mut self, code: Code, at: At<'_>, msg: String, hint: &str) {
        self.diags.push(diagnostic(false, code, at, msg, hint));
    }

    /// "write e.g. <example>": the usual hint.
    pub fn example_hint(at: At<'_>) -> String {
        format!("write e.g. \"{}\"", at.example)
    }

    /// A timing value `t` read at `at`: remembered, so whole-file timing
    /// diagnostics can point at it.
    pub fn timing(&mut self, at: At<'_>, t: Duration) -> Duration {
        self.timing_values
            .push((at.line, at.col, at.text.to_string()));
        t
    }

    /// Add a medium read on `line`.
    pub fn push_medium(&mut self, medium: MediumLine, line: usize) {
        self.media.push((medium, line));
    }

    /// Lines of the media so far for which `keep` holds.
    pub fn media_lines(&self, keep: impl Fn(&MediumLine) -> bool) -> Vec<usize> {
        self.media
            .iter()
            .filter(|(m, _)| keep(m))
            .map(|(_, l)| *l)
            .collect()
    }
}

/// A diagnostic at `at`, pointing at its text and column.
pub(super) fn diagnostic(
    error: bool,
    code: Code,
    at: At<'_>,
    msg: String,
    hint: &str,
) -> Diagnostic {
    let d = if error {
        Diagnostic::error(code, FILE, Some(at.line), msg)
    } else {
        Diagnostic::warning(code, FILE, Some(at.line), msg)
    };
    let d = d.text(at.text).col(at.col);
    if hint.is_empty() {
        d
    } else {
        d.hint(hint)
    }
}

/// Whether `v` can be an interface name (what the kernel allows).
pub(super) fn valid_iface(v: &str) -> bool {
    !v.is_empty() && v.len() <= 15 && v.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

//! Where log lines go: stderr always (systemd's journal picks it up), plus
//! heartbeat's `logfile` (info and up), `debugfile` (everything) and syslog
//! when `logfacility` names a facility or `use_logd yes` asks for the log
//! daemon (wasmbeat has no logd of its own; syslog is its stand-in).
//! Text from agents and spawned servers goes through [`untrusted`] and a
//! [`budget::LineBudget`] before it reaches any of them.

pub mod budget;
pub mod untrusted;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The log destinations heartbeat's ha.cf can name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTargets {
    /// `logfile`: info and above, appended.
    pub logfile: Option<PathBuf>,
    /// `debugfile`: everything including debug, appended.
    pub debugfile: Option<PathBuf>,
    /// `logfacility` (e.g. `local0`, `daemon`); `none` disables syslog.
    pub facility: Option<String>,
    /// `use_logd yes`: log through the system logger.
    pub use_logd: bool,
}

/// Why logging could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A log file could not be opened for appending.
    #[error("cannot open log file {path}: {source}; check the directory exists and is writable, or fix the logfile/debugfile line in ha.cf")]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One event's text, buffered and handed to its sink in one piece on drop,
/// so lines from different threads never interleave. `severity` is the
/// event's syslog severity, for sinks that mark it.
struct EventBuffer {
    severity: u8,
    text: Vec<u8>,
    sink: Option<Sink>,
}

impl EventBuffer {
    fn new(meta: Option<&tracing::Metadata<'_>>, sink: Sink) -> Self {
        EventBuffer {
            severity: meta.map_or(7, |m| syslog_severity(m.level())),
            text: Vec::new(),
            sink: Some(sink),
        }
    }
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink(self.severity, &self.text);
        }
    }
}

/// Where one event's text goes, with its severity.
type Sink = Box<dyn FnOnce(u8, &[u8]) + Send>;

/// Appends each event to a shared file.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<File>>);

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        let file = self.0.clone();
        EventBuffer::new(
            None,
            Box::new(move |_, text| {
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(text);
                }
            }),
        )
    }
}

/// syslog(3) severity of a tracing level: the one mapping both syslog and
/// the journal's stream prefixes use.
fn syslog_severity(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Sends each event as one datagram to the local syslog socket.
#[derive(Clone)]
struct Syslog {
    socket: Arc<UnixDatagram>,
    facility: u8,
}

impl Syslog {
    fn sink(&self) -> Sink {
        let (socket, facility) = (self.socket.clone(), self.facility);
        Box::new(move |severity, text| {
            let text = String::from_utf8_lossy(text);
            let pri = u16::from(facility) * 8 + u16::from(severity);
            let line = format!("<{pri}>wasmbeat[{}]: {}", std::process::id(), text.trim());
            let _ = socket.send(line.as_bytes());
        })
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer::new(None, self.sink())
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EventBuffer::new(Some(meta), self.sink())
    }
}

/// stderr when it is systemd's journal stream: each line starts with its
/// syslog priority (`<3>` … `<7>`), which journald turns into the entry's
/// PRIORITY (SyslogLevelPrefix=, on by default), so `journalctl -p warning`
/// works.
#[derive(Clone, Copy)]
struct JournalStderr;

impl JournalStderr {
    fn sink() -> Sink {
        Box::new(|severity, text| {
            let text = String::from_utf8_lossy(text);
            // Multi-line events (a config error) keep their priority on every line.
            let mut out = String::with_capacity(text.len() + 8);
            for line in text.trim_end().lines() {
                out.push_str(&format!("<{severity}>{line}\n"));
            }
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
        })
    }
}

impl<'a> MakeWriter<'a> for JournalStderr {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer::new(None, Self::sink())
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EventBuffer::new(Some(meta), Self::sink())
    }
}

/// Whether stderr is the journal stream systemd set up (`JOURNAL_STREAM`
/// holds its `device:inode`; a redirected stderr no longer matches).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    meta.dev() == dev && meta.ino() == ino
}

fn open_append(path: &Path) -> Result<File, LoggingError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LoggingError::File {
            path: path.to_path_buf(),
            source,
        })
}

/// Install the global subscriber. `RUST_LOG` overrides the stderr level
/// (default info). Returns a note for each configured target that could not
/// be honoured (e.g. no syslog socket), to be logged once logging works.
pub fn init(targets: &LogTargets) -> Result<Vec<String>, LoggingError> {
    let mut notes = Vec::new();
    let stderr_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Under systemd the journal stamps time and keeps the level as the
    // entry's priority; elsewhere stderr gets the usual timestamped lines.
    let (journal, stderr) = if stderr_is_journal() {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(JournalStderr)
            .with_filter(stderr_filter);
        (Some(layer), None)
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(stderr_filter);
        (None, Some(layer))
    };

    let logfile = match &targets.logfile {
        Some(p) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(SharedFile(Arc::new(Mutex::new(open_append(p)?))))
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        ),
        None => None,
    };
    let debugfile = match &targets.debugfile {
        Some(p) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(SharedFile(Arc::new(Mutex::new(open_append(p)?))))
                .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
        ),
        None => None,
    };

    let facility = match targets.facility.as_deref() {
        Some("none") => None,
        Some(name) => match crate::config::hacf::syslog_facility_code(name) {
            Some(code) => Some(code),
            None => {
                notes.push(format!(
                    "logfacility {name:?} is not a syslog facility; using daemon"
                ));
                Some(3)
            }
        },
        None if targets.use_logd => Some(3),
        None => None,
    };
    let syslog = facility.and_then(|facility| {
        let socket = UnixDatagram::unbound().ok()?;
        match socket.connect("/dev/log") {
            Ok(()) => Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .without_time()
                    .with_target(false)
                    .with_writer(Syslog {
                        socket: Arc::new(socket),
                        facility,
                    })
                    .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
            ),
            Err(e) => {
                notes.push(format!(
                    "syslog requested (logfacility/use_logd) but /dev/log is unavailable ({e}); logging to stderr only"
                ));
                None
            }
        }
    });

    // A second init (tests) keeps the first subscriber; that is harmless.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(journal)
        .with(logfile)
        .with(debugfile)
        .with(syslog)
        .try_init();
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_map_to_syslog_codes() {
        assert_eq!(
            crate::config::hacf::syslog_facility_code("local0"),
            Some(16)
        );
        assert_eq!(crate::config::hacf::syslog_facility_code("daemon"), Some(3));
        assert_eq!(crate::config::hacf::syslog_facility_code("bogus"), None);
    }

    #[test]
    fn unwritable_logfile_is_a_clear_error() {
        let err = init(&LogTargets {
            logfile: Some("/nonexistent-dir/x.log".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.log"));
    }
}

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

/// A writer that appends to a shared file, one event at a time.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<File>>);

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFileGuard;
    fn make_writer(&'a self) -> SharedFileGuard {
        SharedFileGuard(self.0.clone(), Vec::new())
    }
}

/// Buffers one event and appends it on drop, so lines never interleave.
struct SharedFileGuard(Arc<Mutex<File>>, Vec<u8>);

impl Write for SharedFileGuard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SharedFileGuard {
    fn drop(&mut self) {
        if let Ok(mut f) = self.0.lock() {
            let _ = f.write_all(&self.1);
        }
    }
}

/// Sends each event as one datagram to the local syslog socket.
#[derive(Clone)]
struct Syslog {
    socket: Arc<UnixDatagram>,
    facility: u8,
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine(self.clone(), Vec::new())
    }
}

/// One syslog datagram being assembled.
struct SyslogLine(Syslog, Vec<u8>);

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.1);
        let text = text.trim_end();
        // Severity from the level word the compact formatter writes first.
        let severity = if text.starts_with("ERROR") {
            3
        } else if text.starts_with(" WARN") || text.starts_with("WARN") {
            4
        } else if text.starts_with(" INFO") || text.starts_with("INFO") {
            6
        } else {
            7
        };
        let pri = u16::from(self.0.facility) * 8 + severity;
        let line = format!(
            "<{pri}>wasmbeat[{}]: {}",
            std::process::id(),
            text.trim_start()
        );
        let _ = self.0.socket.send(line.as_bytes());
    }
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
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(stderr_filter);

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

//! heartbeat 3.0.6's command-line tools served by the `wasmbeat` binary,
//! so the scripts and monitoring checks of a heartbeat shop keep working
//! on a migrated node: `cl_status`, `hb_standby` and `hb_takeover`.
//!
//! The binary acts as one of them when started under its name (a symlink
//! `cl_status -> wasmbeat`), or as `wasmbeat cl_status ARGS...`. Each tool
//! asks the running daemon over its control socket (the same one `wasmbeat
//! status` uses) and prints what heartbeat's tool prints, with its exit
//! codes; the formatting is pure ([`cl_status::answer`], [`standby::parse`])
//! and this module does the IO.
//!
//! Which daemon: the one serving `$WASMBEAT_CONFIG_DIR` (default
//! `/etc/ha.d`) with its runtime files under `$WASMBEAT_RUNTIME_DIR`
//! (default `/run/wasmbeat`), the `--config-dir`/`--runtime-dir` of
//! `wasmbeat run`. heartbeat's tools take no such options, so these are
//! environment variables.

pub mod cl_status;
pub mod standby;

use std::path::PathBuf;
use std::time::Duration;

use crate::control::client::{self, ClientError};
use crate::control::{Request, Response, RuntimePaths};
use crate::daemon::status::StatusReport;

/// Environment variable naming the daemon's configuration directory.
pub const CONFIG_DIR_ENV: &str = "WASMBEAT_CONFIG_DIR";
/// Environment variable naming the parent of its runtime directory.
pub const RUNTIME_DIR_ENV: &str = "WASMBEAT_RUNTIME_DIR";

/// heartbeat's tool a program name (argv[0]'s file name) stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `cl_status`.
    ClStatus,
    /// `hb_standby`.
    HbStandby,
    /// `hb_takeover`.
    HbTakeover,
}

impl Tool {
    /// The tool named `name` (a file name or a path), if it is one.
    pub fn from_program_name(name: &str) -> Option<Tool> {
        let base = name.rsplit('/').next().unwrap_or(name);
        Tool::from_name(base)
    }

    /// The tool spelled exactly `name`.
    pub fn from_name(name: &str) -> Option<Tool> {
        match name {
            "cl_status" => Some(Tool::ClStatus),
            "hb_standby" => Some(Tool::HbStandby),
            "hb_takeover" => Some(Tool::HbTakeover),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::ClStatus => "cl_status",
            Tool::HbStandby => "hb_standby",
            Tool::HbTakeover => "hb_takeover",
        }
    }
}

/// What a tool prints and how it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code.
    pub code: u8,
}

impl Output {
    /// Print the output on this process's stdout and stderr.
    pub fn emit(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.stdout.as_bytes());
        let _ = out.flush();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(self.stderr.as_bytes());
    }
}

/// Why the daemon could not answer: the tools map each to heartbeat's
/// behaviour when its API cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nothing listens (heartbeat: "Heartbeat is stopped").
    #[error("{0}")]
    NotRunning(ClientError),
    /// The socket refused us (heartbeat: "refuses my connection").
    #[error("{0}")]
    Refused(ClientError),
    /// No answer in time (heartbeat: the 5 s alarm, exit 12).
    #[error("no answer from wasmbeat within {0:?}")]
    Timeout(Duration),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// How long a tool waits for the daemon: heartbeat's cl_status limits the
/// whole command to 5 s.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The control socket of the daemon the tools talk to (see the module doc).
pub fn socket_path() -> PathBuf {
    let config = std::env::var_os(CONFIG_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG_DIR));
    let runtime = std::env::var_os(RUNTIME_DIR_ENV).map(PathBuf::from);
    RuntimePaths::for_config_dir(&config, runtime.as_deref()).socket
}

/// Send `request` to the daemon and classify a failure.
fn ask(request: &Request) -> Result<Response, QueryError> {
    match client::call(&socket_path(), request, TIMEOUT) {
        Ok(r) => Ok(r),
        Err(e @ (ClientError::NotRunning(_) | ClientError::Stale(_))) => {
            Err(QueryError::NotRunning(e))
        }
        Err(e @ ClientError::Permission(_)) => Err(QueryError::Refused(e)),
        Err(ClientError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(QueryError::Timeout(TIMEOUT))
        }
        Err(e) => Err(QueryError::Other(e.to_string())),
    }
}

/// The daemon's status report.
pub fn query_status() -> Result<StatusReport, QueryError> {
    match ask(&Request::Status)? {
        Response::Status { status } => Ok(*status),
        Response::Error { message } => Err(QueryError::Other(message)),
        Response::Ok { message } => Err(QueryError::Other(format!(
            "unexpected answer to a status request: {message}"
        ))),
    }
}

/// Run `tool` with its arguments (without the program name) against the
/// running daemon.
pub fn run(tool: Tool, args: &[String]) -> Output {
    match tool {
        Tool::ClStatus => cl_status::run(args, query_status),
        Tool::HbStandby | Tool::HbTakeover => standby::run(tool, args, ask),
    }
}

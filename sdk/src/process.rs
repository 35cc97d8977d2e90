//! Commands on the host: only those granted to the resource, by name. The
//! command line is fixed by the grant (the agent's declaration filled from
//! the administrator's parameters, or agents.toml); the agent cannot add
//! arguments. What the resource starts runs confined and is stopped with it.

use std::time::Duration;

use crate::bindings::wasmbeat::agent::process as wit;
use crate::Error;

pub use wit::Output;

/// Linux signal numbers agents commonly need.
pub mod sig {
    /// SIGHUP: reload configuration.
    pub const HUP: i32 = 1;
    /// SIGQUIT: graceful shutdown for nginx.
    pub const QUIT: i32 = 3;
    /// SIGKILL: cannot be caught.
    pub const KILL: i32 = 9;
    /// SIGTERM: the usual clean shutdown.
    pub const TERM: i32 = 15;
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Run the granted command `command` to completion; after `timeout` it
/// and everything it started are killed and [`Error::Timeout`] returned.
pub fn run(command: &str, timeout: Duration) -> Result<Output, Error> {
    wit::run(command, ms(timeout))
}

/// Start the granted long-running command `command`; returns its PID.
pub fn spawn(command: &str) -> Result<u32, Error> {
    wit::spawn(command)
}

/// Send a signal to a process this resource spawned or found with
/// [`pidfile_pid`] in this operation.
pub fn signal(pid: u32, signal: i32) -> Result<(), Error> {
    wit::signal(pid, signal)
}

/// Whether a process this resource spawned, or found with [`pidfile_pid`]
/// in this operation, is still alive.
pub fn is_alive(pid: u32) -> bool {
    wit::is_alive(pid)
}

/// The live process a granted pid file names, if it belongs to this
/// resource (started by it, or running one of its commands' programs).
pub fn pidfile_pid(pidfile: &str) -> Result<Option<u32>, Error> {
    wit::pidfile_pid(pidfile)
}

/// How a process this resource spawned ended (None while it runs), with
/// the tail of its stderr.
pub fn spawned_exit(pid: u32) -> Option<Output> {
    wit::spawned_exit(pid)
}

impl Output {
    /// `exit code N` / `signal N`, for messages.
    pub fn how(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown status".into(),
        }
    }

    /// The last non-empty line of stderr (else stdout), trimmed, for
    /// messages; empty if both are empty.
    pub fn last_line(&self) -> String {
        for stream in [&self.stderr, &self.stdout] {
            let text = String::from_utf8_lossy(stream);
            if let Some(l) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                return l.chars().take(300).collect();
            }
        }
        String::new()
    }
}

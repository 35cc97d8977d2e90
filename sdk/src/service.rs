//! The life cycle of a network server run in the foreground and found
//! again through its pid file: the common part of the `named`, `httpd` and
//! `mysqld` agents, usable by any agent that manages a daemon.
//!
//! - `start` is a no-op if the pid file names a live server that answers
//!   its probe; otherwise it spawns the server and returns once the probe
//!   answers and the pid file names the spawned process, or fails with
//!   the reason (the server's exit code and last stderr line, or the last
//!   probe error) after the start timeout, stopping what it started.
//! - `stop` sends the server's own shutdown signal, waits for the process
//!   to go, escalates to SIGKILL after the stop timeout, then waits for
//!   the port to close. Stopping a stopped server succeeds.
//! - `monitor` is running when the pid file names a live server that
//!   answers, failed when it lives but does not answer, not running else.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::process::{self, sig};
use crate::{log, probe, Error, Status};

/// Result of one probe: `Ok(detail)` when the service answered.
pub type ProbeResult = Result<String, String>;

/// How to run and recognise one server.
#[derive(Debug, Clone)]
pub struct Server {
    /// Name for messages (`named`, `apache2`, `mariadbd`).
    pub name: String,
    /// The granted command that runs it in the foreground with this
    /// resource's paths (the agent declares it, e.g. `server`).
    pub command: String,
    /// The pid file the server writes.
    pub pid_file: String,
    /// Where it listens (probed; must close on stop).
    pub listen: SocketAddr,
    /// The signal that makes it shut down cleanly.
    pub stop_signal: i32,
    /// How long start may take until the probe answers.
    pub start_timeout: Duration,
    /// How long the clean shutdown may take before SIGKILL.
    pub stop_timeout: Duration,
    /// The Debian package providing the binary, for messages.
    pub package: String,
}

/// Pause between polls while waiting for a server.
const POLL: Duration = Duration::from_millis(100);
/// How long to wait for a process to vanish after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the port to close once the process is gone.
const PORT_GRACE: Duration = Duration::from_secs(3);

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

impl Server {
    /// The live server its pid file names, if any.
    pub fn running_pid(&self) -> Result<Option<u32>, Error> {
        process::pidfile_pid(&self.pid_file)
    }

    /// Whether something accepts TCP connections at the listen address.
    pub fn port_open(&self) -> bool {
        probe::tcp_connect(self.listen, Duration::from_millis(500)).is_ok()
    }

    /// Start (idempotent); `probe` says whether the service answers.
    pub fn start(&self, probe: &dyn Fn() -> ProbeResult) -> Result<(), Error> {
        let t0 = Instant::now();
        if let Some(pid) = self.running_pid()? {
            // Already running (maybe still starting): give it the start timeout.
            let mut last = String::new();
            let ok = wait_until(self.start_timeout, || match probe() {
                Ok(_) => true,
                Err(why) => {
                    last = why;
                    !process::is_alive(pid)
                }
            });
            if ok && process::is_alive(pid) {
                log::info(&format!(
                    "{} already running as pid {pid} and answering at {}",
                    self.name, self.listen
                ));
                return Ok(());
            }
            if process::is_alive(pid) {
                return Err(Error::Failed(format!(
                    "{} runs as pid {pid} (from {}) but does not answer at {} after {:?}: {last}",
                    self.name, self.pid_file, self.listen, self.start_timeout
                )));
            }
        }
        // A server that just died may hold its port for a moment longer.
        if !wait_until(PORT_GRACE, || !self.port_open()) {
            return Err(Error::Failed(format!(
                "{} is not running according to {}, but something already listens at {}; \
                 is another server (or another node's) using that address?",
                self.name, self.pid_file, self.listen
            )));
        }
        log::info(&format!(
            "starting {} (command {})",
            self.name, self.command
        ));
        let pid = process::spawn(&self.command).map_err(|e| match e {
            Error::NotInstalled(m) => Error::NotInstalled(format!(
                "{} is not installed ({m}); install the Debian package {} or set binary=",
                self.name, self.package
            )),
            other => other,
        })?;
        let mut last: String;
        loop {
            if let Some(out) = process::spawned_exit(pid) {
                let line = out.last_line();
                return Err(Error::Failed(format!(
                    "{} exited during start ({}){}",
                    self.name,
                    out.how(),
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!(": {line}")
                    }
                )));
            }
            match probe() {
                Ok(detail) => {
                    // Monitor and stop find the server through its pid
                    // file; a server writing elsewhere would be orphaned.
                    let named = wait_until(
                        self.start_timeout
                            .saturating_sub(t0.elapsed())
                            .max(Duration::from_secs(1)),
                        || matches!(self.running_pid(), Ok(Some(p)) if p == pid),
                    );
                    if !named {
                        self.kill_spawned(pid);
                        return Err(Error::NotConfigured(format!(
                            "{} answers at {} but {} does not name it (pid {pid}); \
                             pid_file must be the pid file the server's configuration writes",
                            self.name, self.listen, self.pid_file
                        )));
                    }
                    log::info(&format!(
                        "{} started as pid {pid} in {:?}: {detail}",
                        self.name,
                        t0.elapsed()
                    ));
                    return Ok(());
                }
                Err(why) => last = why,
            }
            if t0.elapsed() >= self.start_timeout {
                self.kill_spawned(pid);
                return Err(Error::Failed(format!(
                    "{} did not answer at {} within {:?} (last probe: {last}); stopped it again",
                    self.name, self.listen, self.start_timeout
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stop a process this start spawned: its stop signal, then SIGKILL.
    fn kill_spawned(&self, pid: u32) {
        let _ = process::signal(pid, self.stop_signal);
        if !wait_until(self.stop_timeout, || !process::is_alive(pid)) {
            let _ = process::signal(pid, sig::KILL);
            wait_until(KILL_GRACE, || !process::is_alive(pid));
        }
    }

    /// Stop (idempotent).
    pub fn stop(&self) -> Result<(), Error> {
        let Some(pid) = self.running_pid()? else {
            if self.port_open() {
                log::warn(&format!(
                    "{} is not running according to {}, yet something listens at {}; not ours to stop",
                    self.name, self.pid_file, self.listen
                ));
            }
            return Ok(());
        };
        let t0 = Instant::now();
        log::info(&format!(
            "stopping {} (pid {pid}) with signal {}",
            self.name, self.stop_signal
        ));
        process::signal(pid, self.stop_signal)?;
        if !wait_until(self.stop_timeout, || !process::is_alive(pid)) {
            log::warn(&format!(
                "{} (pid {pid}) still running {:?} after signal {}; sending SIGKILL",
                self.name, self.stop_timeout, self.stop_signal
            ));
            // It may exit between the check and the signal.
            let _ = process::signal(pid, sig::KILL);
            if !wait_until(KILL_GRACE, || !process::is_alive(pid)) {
                return Err(Error::Failed(format!(
                    "{} (pid {pid}) survived SIGKILL for {KILL_GRACE:?}",
                    self.name
                )));
            }
        }
        if !wait_until(PORT_GRACE, || !self.port_open()) {
            return Err(Error::Failed(format!(
                "{} (pid {pid}) is gone but {} still accepts connections (leftover worker processes?)",
                self.name, self.listen
            )));
        }
        log::info(&format!("{} stopped in {:?}", self.name, t0.elapsed()));
        Ok(())
    }

    /// Monitor.
    pub fn monitor(&self, probe: &dyn Fn() -> ProbeResult) -> Result<Status, Error> {
        let Some(pid) = self.running_pid()? else {
            return Ok(Status::NotRunning);
        };
        match probe() {
            Ok(_) => Ok(Status::Running),
            Err(why) => {
                log::warn(&format!(
                    "{} runs as pid {pid} but does not answer at {}: {why}",
                    self.name, self.listen
                ));
                Ok(Status::Failed)
            }
        }
    }
}

/// A duration parameter in whole seconds (1..=3600).
pub fn seconds(args: &crate::Args, name: &str, default: u64) -> Result<Duration, Error> {
    let s: u64 = args.get_or(name, default)?;
    if !(1..=3600).contains(&s) {
        return Err(Error::InvalidArgs(format!(
            "parameter {name}={s} must be between 1 and 3600 seconds"
        )));
    }
    Ok(Duration::from_secs(s))
}

/// An `ip:port` parameter.
pub fn socket_addr(args: &crate::Args, name: &str, default: &str) -> Result<SocketAddr, Error> {
    let v = args.raw(name).unwrap_or(default);
    v.parse().map_err(|_| {
        Error::InvalidArgs(format!(
            "parameter {name}={v:?} is not ip:port (e.g. 10.0.0.10:80 or [fd77::10]:80)"
        ))
    })
}

/// An absolute-path parameter.
pub fn abs_path(args: &crate::Args, name: &str, default: &str) -> Result<String, Error> {
    let v = args.raw(name).unwrap_or(default);
    if v.starts_with('/') && !v.split('/').any(|c| c == "..") {
        Ok(v.to_string())
    } else {
        Err(Error::InvalidArgs(format!(
            "parameter {name}={v:?} must be an absolute path without '..'"
        )))
    }
}

/// Check that a granted configuration file exists.
pub fn require_file(what: &str, path: &str) -> Result<(), Error> {
    use crate::files::{inspect, PathKind};
    match inspect(path)? {
        PathKind::File => Ok(()),
        PathKind::Missing => Err(Error::NotInstalled(format!("{what} {path} does not exist"))),
        _ => Err(Error::NotConfigured(format!(
            "{what} {path} is not a regular file"
        ))),
    }
}

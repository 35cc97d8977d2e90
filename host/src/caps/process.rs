//! Running and spawning host programs for a resource. Policy (which
//! programs) is checked by `Caps`; this module tracks what a resource
//! spawned so it can only signal its own processes.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::CapError;

/// Output kept per stream; more is read and discarded so the child never
/// blocks on a full pipe.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a run-to-completion program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    /// Captured stdout (at most [`OUTPUT_LIMIT`]).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most [`OUTPUT_LIMIT`]).
    pub stderr: Vec<u8>,
}

/// The only environment variable programs get.
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .current_dir("/");
    c
}

async fn read_limited<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> Vec<u8> {
    let Some(mut r) = r else { return Vec::new() };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Run `program` to completion; kill it after `timeout`.
pub async fn run(program: &str, args: &[String], timeout: Duration) -> Result<RunOutput, CapError> {
    let mut child = command(program, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let all = async {
        let (o, e, status) = tokio::join!(read_limited(out), read_limited(err), child.wait());
        (o, e, status)
    };
    match tokio::time::timeout(timeout, all).await {
        Err(_) => Err(CapError::Timeout),
        Ok((_, _, Err(e))) => Err(CapError::Failed(format!("waiting for {program}: {e}"))),
        Ok((stdout, stderr, Ok(status))) => {
            use std::os::unix::process::ExitStatusExt;
            Ok(RunOutput {
                exit_code: status.code(),
                signal: status.signal(),
                stdout,
                stderr,
            })
        }
    }
}

fn spawn_error(program: &str, e: std::io::Error) -> CapError {
    if e.kind() == std::io::ErrorKind::NotFound {
        CapError::NotInstalled(format!("{program}: not found"))
    } else {
        CapError::Failed(format!("cannot start {program}: {e}"))
    }
}

/// Stderr kept per spawned process (the tail, where the reason for an
/// exit usually is).
pub const SPAWN_STDERR_TAIL: usize = 8 * 1024;

#[derive(Default)]
struct Spawned {
    /// `Some` once reaped: (exit code, signal).
    exit: Option<(Option<i32>, Option<i32>)>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Processes spawned by one resource, alive or reaped, shared by all the
/// resource's operations (start spawns, stop signals).
#[derive(Clone, Default)]
pub struct ProcessTable {
    procs: Arc<Mutex<HashMap<u32, Spawned>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProcessTable {
    /// An empty table.
    pub fn new() -> ProcessTable {
        ProcessTable::default()
    }

    /// Spawn a long-running program; a background thread reaps it so it
    /// never lingers as a zombie, and another keeps the tail of its stderr.
    /// Threads rather than tasks: the server outlives the async runtime of
    /// the operation that started it (the CLI, a test, a daemon reload).
    pub fn spawn(&self, program: &str, args: &[String]) -> Result<u32, CapError> {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(program)
            .args(args)
            // Its own process group: signals to wasmbeat's group (a Ctrl-C)
            // do not reach it, and SIGKILL can take its workers with it.
            .process_group(0)
            .env_clear()
            .env("PATH", SAFE_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .current_dir("/")
            .spawn()
            .map_err(|e| spawn_error(program, e))?;
        let pid = child.id();
        let tail = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&tail);
            // Reads until every holder of the pipe (also forked children)
            // closes it, so a chatty server never blocks on a full pipe.
            let _ = std::thread::Builder::new()
                .name(format!("stderr-{pid}"))
                .spawn(move || {
                    use std::io::{BufRead, Read};
                    // Each line also goes to wasmbeat's log: a server run
                    // in the foreground has no other place to report to.
                    let mut r = std::io::BufReader::new(err);
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match r.by_ref().take(4096).read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {
                                let text = String::from_utf8_lossy(&line);
                                let text = text.trim_end();
                                if !text.is_empty() {
                                    tracing::info!(target: "wasmbeat::server", pid, "{text}");
                                }
                                let mut t = lock(&tail);
                                t.extend_from_slice(&line);
                                let excess = t.len().saturating_sub(SPAWN_STDERR_TAIL);
                                t.drain(..excess);
                            }
                        }
                    }
                });
        }
        lock(&self.procs).insert(
            pid,
            Spawned {
                exit: None,
                stderr: tail,
            },
        );
        let table = self.clone();
        let reaper = std::thread::Builder::new()
            .name(format!("reap-{pid}"))
            .spawn(move || {
                use std::os::unix::process::ExitStatusExt;
                let exit = match child.wait() {
                    Ok(s) => (s.code(), s.signal()),
                    Err(_) => (None, None),
                };
                if let Some(p) = lock(&table.procs).get_mut(&pid) {
                    p.exit = Some(exit);
                }
            });
        if let Err(e) = reaper {
            // Without a reaper the exit would never be seen: undo the start.
            kill(pid, libc::SIGKILL).ok();
            return Err(CapError::Failed(format!("cannot watch {program}: {e}")));
        }
        Ok(pid)
    }

    /// Whether `pid` was spawned through this table.
    pub fn owns(&self, pid: u32) -> bool {
        lock(&self.procs).contains_key(&pid)
    }

    /// Whether `pid` was spawned here and has not been reaped.
    pub fn is_alive(&self, pid: u32) -> bool {
        lock(&self.procs)
            .get(&pid)
            .is_some_and(|p| p.exit.is_none())
    }

    /// How a process spawned here ended (None while it runs or if it is
    /// not ours), with the tail of its stderr.
    pub fn exit_of(&self, pid: u32) -> Option<RunOutput> {
        let procs = lock(&self.procs);
        let p = procs.get(&pid)?;
        let (exit_code, signal) = p.exit?;
        let stderr = lock(&p.stderr).clone();
        Some(RunOutput {
            exit_code,
            signal,
            stdout: Vec::new(),
            stderr,
        })
    }

    /// Send `signal` to a live process spawned here.
    pub fn signal(&self, pid: u32, signal: i32) -> Result<(), CapError> {
        if !self.is_alive(pid) {
            return Err(CapError::Failed(format!("process {pid} is not running")));
        }
        signal_leader(pid, signal)
    }
}

/// `kill(2)` with the error mapped.
pub(crate) fn kill(pid: u32, signal: i32) -> Result<(), CapError> {
    let pid_t =
        libc::pid_t::try_from(pid).map_err(|_| CapError::InvalidArgs(format!("bad pid {pid}")))?;
    if pid_t <= 0 {
        return Err(CapError::InvalidArgs(format!("bad pid {pid}")));
    }
    // SAFETY: plain syscall on a positive PID the caller has vetted.
    if unsafe { libc::kill(pid_t, signal) } != 0 {
        return Err(CapError::Failed(format!(
            "signal {signal} to {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Signal a process; SIGKILL to a process-group leader goes to its whole
/// group, so a server's workers do not outlive it (they would keep its
/// port open).
pub(crate) fn signal_leader(pid: u32, signal: i32) -> Result<(), CapError> {
    kill(pid, signal)?;
    if signal == libc::SIGKILL && proc_info(pid).is_some_and(|i| i.pgid == pid) {
        let group = -(libc::pid_t::try_from(pid)
            .map_err(|_| CapError::InvalidArgs(format!("bad pid {pid}")))?);
        // SAFETY: plain syscall; the group is led by a process we vetted.
        unsafe { libc::kill(group, libc::SIGKILL) };
    }
    Ok(())
}

/// What `/proc` says about a process: identity (start time, so a
/// recycled PID is told apart) and liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// Whether it has exited but not been reaped (state `Z`) or is dead (`X`).
    pub zombie: bool,
    /// Its process group (`/proc/PID/stat` field 5).
    pub pgid: u32,
    /// The executable (`/proc/PID/exe`), without a ` (deleted)` suffix.
    pub exe: Option<std::path::PathBuf>,
}

/// Look a process up in `/proc`; None if there is no such PID.
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); field 22 is rest[19].
    let state = *fields.first()?;
    let start_time = fields.get(19)?.parse().ok()?;
    let pgid = fields.get(2)?.parse().ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| {
            let s = p.to_string_lossy();
            match s.strip_suffix(" (deleted)") {
                Some(t) => std::path::PathBuf::from(t),
                None => p,
            }
        });
    Some(ProcInfo {
        start_time,
        zombie: state == "Z" || state == "X",
        pgid,
        exe,
    })
}

/// Parse a pid file's content: the first line, a positive decimal PID.
pub fn parse_pidfile(text: &str) -> Option<u32> {
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 0 && pid <= i32::MAX as u32).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_content() {
        assert_eq!(parse_pidfile("1234\n"), Some(1234));
        assert_eq!(parse_pidfile(" 77 \nextra"), Some(77));
        assert_eq!(parse_pidfile(""), None);
        assert_eq!(parse_pidfile("0"), None);
        assert_eq!(parse_pidfile("-1"), None);
        assert_eq!(parse_pidfile("abc"), None);
        assert_eq!(parse_pidfile("99999999999"), None);
    }

    #[test]
    fn own_process_is_found_in_proc() {
        let me = proc_info(std::process::id()).unwrap();
        assert!(!me.zombie);
        assert!(me.pgid > 0);
        assert!(me.exe.is_some());
        assert!(proc_info(u32::MAX - 1).is_none());
    }
}

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

fn command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
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

/// Processes spawned by one resource, alive or reaped, shared by all the
/// resource's operations (start spawns, stop signals).
#[derive(Clone, Default)]
pub struct ProcessTable {
    alive: Arc<Mutex<HashMap<u32, bool>>>,
}

impl ProcessTable {
    /// An empty table.
    pub fn new() -> ProcessTable {
        ProcessTable::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, bool>> {
        self.alive.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawn a long-running program; a background task reaps it so it
    /// never lingers as a zombie. Must run inside a tokio runtime.
    pub fn spawn(&self, program: &str, args: &[String]) -> Result<u32, CapError> {
        let mut child = command(program, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| spawn_error(program, e))?;
        let pid = child
            .id()
            .ok_or_else(|| CapError::Failed(format!("{program} exited at once")))?;
        self.lock().insert(pid, true);
        let table = self.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            table.lock().insert(pid, false);
        });
        Ok(pid)
    }

    /// Whether `pid` was spawned through this table.
    pub fn owns(&self, pid: u32) -> bool {
        self.lock().contains_key(&pid)
    }

    /// Whether `pid` was spawned here and has not been reaped.
    pub fn is_alive(&self, pid: u32) -> bool {
        self.lock().get(&pid).copied().unwrap_or(false)
    }

    /// Send `signal` to a live process spawned here.
    pub fn signal(&self, pid: u32, signal: i32) -> Result<(), CapError> {
        if !self.is_alive(pid) {
            return Err(CapError::Failed(format!("process {pid} is not running")));
        }
        let pid_t = libc::pid_t::try_from(pid)
            .map_err(|_| CapError::InvalidArgs(format!("bad pid {pid}")))?;
        // SAFETY: plain syscall. The PID is one we spawned and had not seen
        // reaped a moment ago, so recycling is only possible in that window.
        if unsafe { libc::kill(pid_t, signal) } != 0 {
            return Err(CapError::Failed(format!(
                "signal {signal} to {pid}: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}

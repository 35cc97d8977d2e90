//! Running and spawning the processes a resource's grant names, confined
//! by [`crate::confine`]: each resource has one [`ProcessTable`] that owns
//! its cgroup (made when it first starts something), tracks what it
//! spawned so it can only signal its own processes, reaps them, and caps
//! how many may be alive at once.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::CapError;
use crate::confine::cgroup::{pidfd_open, pidfd_signal, Leaf};
use crate::confine::{Launch, LaunchError, ProcessLimits, ResourceCgroup};
use crate::logging::budget::{Admit, LineBudget};
use crate::logging::untrusted::{sanitize_bytes, MAX_LINE_BYTES};

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

fn launch_error(e: LaunchError) -> CapError {
    match e {
        LaunchError::UnknownUser(_) => CapError::NotInstalled(e.to_string()),
        LaunchError::UserLookup { .. } => CapError::Failed(e.to_string()),
        _ => CapError::InvalidArgs(e.to_string()),
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

/// Where a spawned server's stdout and stderr go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ServerOutput {
    /// Stderr line by line into wasmbeat's log (within a budget), stdout
    /// nowhere: for the daemon, which lives as long as its servers.
    #[default]
    Log,
    /// Both appended to `DIR/<resource>.log`: for callers that exit while
    /// the server runs on (the OCF bridge, `wasmbeat agent … start`). A
    /// pipe to such a caller closes when it exits, and a server that
    /// writes to stderr afterwards gets EPIPE or dies of SIGPIPE.
    File(PathBuf),
}

/// Default directory of [`ServerOutput::File`] logs.
pub const DEFAULT_SERVER_LOG_DIR: &str = "/var/log/wasmbeat";

/// The file a resource's servers write to under [`ServerOutput::File`]:
/// the resource name with everything but `[A-Za-z0-9._-]` as `_` (a
/// resource name is a haresources token: `/` and `:` are common).
pub fn server_log_path(dir: &Path, resource: &str) -> PathBuf {
    let name: String = resource
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    dir.join(format!("{name}.log"))
}

/// Open (append) the server log of `resource` in `dir`, making `dir`
/// (0750) and the file (0640) when missing; also the file's length now,
/// where this server's output will begin.
fn open_server_log(dir: &Path, resource: &str) -> std::io::Result<(std::fs::File, PathBuf, u64)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    let path = server_log_path(dir, resource);
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&path)?;
    let start = file.metadata()?.len();
    Ok((file, path, start))
}

/// The last [`SPAWN_STDERR_TAIL`] bytes `path` got from offset `start` on.
fn file_tail(path: &Path, start: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = start.max(len.saturating_sub(SPAWN_STDERR_TAIL as u64));
    let mut out = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_ok() {
        let _ = f.take(SPAWN_STDERR_TAIL as u64).read_to_end(&mut out);
    }
    out
}

/// Reaped entries kept for `exit_of` after their process ended (older
/// ones are pruned).
const KEPT_EXITS: usize = 16;

struct Spawned {
    /// `Some` once reaped: (exit code, signal).
    exit: Option<(Option<i32>, Option<i32>)>,
    /// Whether its watcher thread still runs (reaping, or reading stderr
    /// that a grandchild keeps open).
    watching: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Names exactly this process, even once its PID is recycled;
    /// released once it is reaped (a kept exit costs no descriptor).
    pidfd: Option<Arc<OwnedFd>>,
    /// Its own cgroup (the whole tree it starts), if cgroups work here.
    leaf: Option<Arc<Leaf>>,
    /// Spawn order, to prune the oldest reaped entries first.
    order: u64,
}

impl Spawned {
    /// Still holding something: its process, its watcher thread, or a
    /// process of its tree.
    fn live(&self) -> bool {
        self.exit.is_none() || self.watching || self.leaf.as_ref().is_some_and(|l| l.populated())
    }
}

enum CgroupState {
    NotYet,
    Made(Arc<ResourceCgroup>),
    Unavailable,
}

struct Inner {
    resource: String,
    limits: ProcessLimits,
    cgroup: Mutex<CgroupState>,
    procs: Mutex<HashMap<u32, Spawned>>,
    /// Stderr lines its servers may put in wasmbeat's log.
    server_log: LineBudget,
    /// Where its servers' output goes.
    output: ServerOutput,
    next_order: AtomicU64,
}

/// Processes started by one resource, alive or reaped, shared by all the
/// resource's operations (start spawns, stop signals), and the resource's
/// cgroup. Dropping the last clone removes the cgroup once it is empty
/// (it never kills: a server outlives `wasmbeat agent start`).
#[derive(Clone)]
pub struct ProcessTable {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills a process tree when dropped unless disarmed: a `run` abandoned
/// by its operation's deadline takes its whole tree with it.
struct TreeGuard {
    leaf: Option<Arc<Leaf>>,
    pgid: u32,
    armed: bool,
}

impl TreeGuard {
    fn kill(&mut self) {
        self.armed = false;
        if !self.leaf.as_ref().is_some_and(|l| l.kill()) {
            kill_group(self.pgid);
        }
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

/// SIGKILL a process group (the fallback where no cgroup holds the tree).
fn kill_group(pgid: u32) {
    if let Ok(p) = libc::pid_t::try_from(pgid) {
        if p > 1 {
            // SAFETY: plain syscall on a group we created (process_group(0)).
            unsafe { libc::kill(-p, libc::SIGKILL) };
        }
    }
}

impl ProcessTable {
    /// The table of resource `resource` (names its cgroup), with `limits`.
    pub fn new(resource: &str, limits: ProcessLimits) -> ProcessTable {
        Self::with_output(resource, limits, ServerOutput::Log)
    }

    /// [`ProcessTable::new`] whose servers' output goes to `output`.
    pub fn with_output(
        resource: &str,
        limits: ProcessLimits,
        output: ServerOutput,
    ) -> ProcessTable {
        ProcessTable {
            inner: Arc::new(Inner {
                resource: resource.to_string(),
                limits,
                cgroup: Mutex::new(CgroupState::NotYet),
                procs: Mutex::new(HashMap::new()),
                server_log: LineBudget::for_server(),
                output,
                next_order: AtomicU64::new(0),
            }),
        }
    }

    /// The resource's cgroup, made on first use; None where cgroups cannot
    /// be made (see `confine::support`) or making it failed (logged once).
    pub fn cgroup(&self) -> Option<Arc<ResourceCgroup>> {
        let mut state = lock(&self.inner.cgroup);
        match &*state {
            CgroupState::Made(c) => return Some(Arc::clone(c)),
            CgroupState::Unavailable => return None,
            CgroupState::NotYet => {}
        }
        let bases = &crate::confine::support().bases;
        match ResourceCgroup::create(bases, &self.inner.resource, &self.inner.limits) {
            Ok(Some(c)) => {
                let c = Arc::new(c);
                tracing::debug!(resource = %self.inner.resource, dir = ?c.v2_dir(), applied = ?c.applied(), "made the resource's cgroup");
                *state = CgroupState::Made(Arc::clone(&c));
                Some(c)
            }
            Ok(None) => {
                *state = CgroupState::Unavailable;
                None
            }
            Err(e) => {
                tracing::warn!(resource = %self.inner.resource,
                    "cannot make a cgroup for the resource ({e}); its processes are tracked by process group");
                *state = CgroupState::Unavailable;
                None
            }
        }
    }

    /// Whether this resource's processes are told apart by cgroup (true
    /// where cgroups work here, even before the first one is made).
    pub fn tracks_by_cgroup(&self) -> bool {
        match &*lock(&self.inner.cgroup) {
            CgroupState::Made(_) => true,
            CgroupState::Unavailable => false,
            CgroupState::NotYet => crate::confine::support().bases.any(),
        }
    }

    /// Whether `pid` is in this resource's cgroup (something it started,
    /// or started by what it started).
    pub fn in_cgroup(&self, pid: u32) -> bool {
        match &*lock(&self.inner.cgroup) {
            CgroupState::Made(c) => c.contains(pid),
            _ => false,
        }
    }

    /// The resource this table belongs to.
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// Entries still holding a process or a thread.
    pub fn live_count(&self) -> usize {
        lock(&self.inner.procs)
            .values()
            .filter(|p| p.live())
            .count()
    }

    /// Forget reaped entries beyond the newest [`KEPT_EXITS`] and remove
    /// the cgroups of trees that have ended.
    fn prune(&self) {
        let mut procs = lock(&self.inner.procs);
        let mut dead: Vec<(u64, u32)> = procs
            .iter()
            .filter(|(_, p)| !p.live())
            .map(|(pid, p)| (p.order, *pid))
            .collect();
        if dead.len() > KEPT_EXITS {
            dead.sort_unstable();
            for (_, pid) in &dead[..dead.len() - KEPT_EXITS] {
                procs.remove(pid);
            }
        }
        drop(procs);
        if let CgroupState::Made(c) = &*lock(&self.inner.cgroup) {
            c.prune();
        }
    }

    /// A leaf cgroup for one process tree and the files its first process
    /// joins through (None where there is no cgroup).
    fn leaf(&self, kind: &str) -> Result<Option<(Leaf, crate::confine::cgroup::Join)>, CapError> {
        match self.cgroup() {
            None => Ok(None),
            Some(c) => c.leaf(kind).map(Some).map_err(|e| {
                CapError::Failed(format!(
                    "cannot make a cgroup for {}: {e}",
                    self.inner.resource
                ))
            }),
        }
    }

    /// Run `launch` to completion; after `timeout`, kill everything it
    /// started (its own cgroup, or its process group where there is none).
    pub async fn run(&self, launch: &Launch, timeout: Duration) -> Result<RunOutput, CapError> {
        let prepared = launch.prepare().map_err(launch_error)?;
        let program = launch.program();
        let leaf = self.leaf("run")?;
        let (leaf, join) = match leaf {
            Some((l, j)) => (Some(Arc::new(l)), Some(j)),
            None => (None, None),
        };
        let fds = join.as_ref().map(|j| j.raw()).unwrap_or_default();
        let mut cmd = tokio::process::Command::from(prepared.command(launch, &fds));
        let spawned = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        drop(join);
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.prune();
                return Err(spawn_error(program, e));
            }
        };
        let mut guard = TreeGuard {
            leaf,
            pgid: child.id().unwrap_or(0),
            armed: true,
        };
        let out = child.stdout.take();
        let err = child.stderr.take();
        let finished = tokio::time::timeout(timeout, async {
            tokio::join!(read_limited(out), read_limited(err), child.wait())
        })
        .await;
        let result = match finished {
            Err(_) => {
                guard.kill();
                let _ = child.wait().await;
                tracing::warn!(resource = %self.inner.resource,
                    "{program} ran past its timeout of {timeout:?}: killed it and everything it started");
                Err(CapError::Timeout)
            }
            Ok((_, _, Err(e))) => Err(CapError::Failed(format!("waiting for {program}: {e}"))),
            Ok((stdout, stderr, Ok(status))) => {
                // What it started in the background (an init script's
                // daemon) stays, in the resource's cgroup.
                guard.armed = false;
                use std::os::unix::process::ExitStatusExt;
                Ok(RunOutput {
                    exit_code: status.code(),
                    signal: status.signal(),
                    stdout,
                    stderr,
                })
            }
        };
        self.prune();
        result
    }

    /// Spawn a long-running process; one watcher thread per process reaps
    /// it (so it never lingers as a zombie) and keeps the tail of its
    /// stderr. A thread rather than a task: the server outlives the async
    /// runtime of the operation that started it (the CLI, a test, a
    /// daemon reload). At most `max_spawned` may be alive at once.
    pub fn spawn(&self, launch: &Launch) -> Result<u32, CapError> {
        let prepared = launch.prepare().map_err(launch_error)?;
        let program = launch.program();
        self.prune();
        let live = self.live_count();
        let max = self.inner.limits.max_spawned;
        if live >= max {
            return Err(CapError::Denied(format!(
                "spawn {program}: {} already has {live} spawned process(es) alive, the limit \
                 (max_spawned = {max}); stop one first",
                self.inner.resource
            )));
        }
        let leaf = self.leaf("spawn")?;
        let (leaf, join) = match leaf {
            Some((l, j)) => (Some(Arc::new(l)), Some(j)),
            None => (None, None),
        };
        let fds = join.as_ref().map(|j| j.raw()).unwrap_or_default();
        let mut cmd = prepared.command(launch, &fds);
        let mut log_file = None;
        match &self.inner.output {
            ServerOutput::Log => {
                cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            }
            ServerOutput::File(dir) => {
                let opened =
                    open_server_log(dir, &self.inner.resource).and_then(|(f, path, start)| {
                        cmd.stdout(Stdio::from(f.try_clone()?))
                            .stderr(Stdio::from(f));
                        Ok((path, start))
                    });
                match opened {
                    Ok(at) => log_file = Some(at),
                    Err(e) => {
                        self.prune();
                        return Err(CapError::Failed(format!(
                            "cannot open the server log of {} in {}: {e}",
                            self.inner.resource,
                            dir.display()
                        )));
                    }
                }
            }
        }
        let spawned = cmd.spawn();
        drop(join);
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.prune();
                return Err(spawn_error(program, e));
            }
        };
        let pid = child.id();
        let undo = |child: &mut std::process::Child, leaf: &Option<Arc<Leaf>>| {
            if !leaf.as_ref().is_some_and(|l| l.kill()) {
                kill_group(pid);
            }
            let _ = child.kill();
            let _ = child.wait();
        };
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                undo(&mut child, &leaf);
                return Err(CapError::Failed(format!(
                    "cannot watch {program} (pidfd_open: {e})"
                )));
            }
        };
        let tail = Arc::new(Mutex::new(Vec::new()));
        let order = self.inner.next_order.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.procs).insert(
            pid,
            Spawned {
                exit: None,
                watching: true,
                stderr: Arc::clone(&tail),
                pidfd: Some(Arc::clone(&pidfd)),
                leaf: leaf.clone(),
                order,
            },
        );
        let stderr = child.stderr.take();
        let table = self.clone();
        let watcher = std::thread::Builder::new()
            .name(format!("proc-{pid}"))
            .spawn({
                let pidfd = Arc::clone(&pidfd);
                move || table.watch(pid, child, &pidfd, stderr, log_file, &tail)
            });
        if let Err(e) = watcher {
            // The child moved into the failed closure and was dropped
            // without a wait: kill its tree by the means left.
            if !leaf.as_ref().is_some_and(|l| l.kill()) {
                let _ = pidfd_signal(&pidfd, libc::SIGKILL);
                kill_group(pid);
            }
            lock(&self.inner.procs).remove(&pid);
            return Err(CapError::Failed(format!("cannot watch {program}: {e}")));
        }
        Ok(pid)
    }

    /// The watcher thread of one spawned process: log and keep its stderr
    /// lines, reap it when it exits, end when its stderr closes too.
    fn watch(
        &self,
        pid: u32,
        mut child: std::process::Child,
        pidfd: &OwnedFd,
        stderr: Option<std::process::ChildStderr>,
        log_file: Option<(PathBuf, u64)>,
        tail: &Mutex<Vec<u8>>,
    ) {
        use std::io::Read;
        let mut stderr = stderr;
        let mut exited = false;
        let mut line: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: if exited { -1 } else { pidfd.as_raw_fd() },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stderr.as_ref().map_or(-1, |s| s.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if exited && stderr.is_none() {
                break;
            }
            // SAFETY: poll(2) over two pollfds we own; -1 entries are ignored.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            if fds[1].revents != 0 {
                let r = stderr.as_mut().map_or(Ok(0), |s| s.read(&mut buf));
                match r {
                    Ok(0) | Err(_) => {
                        self.server_line(pid, &line, tail);
                        line.clear();
                        stderr = None;
                    }
                    Ok(k) => {
                        for &b in &buf[..k] {
                            line.push(b);
                            if b == b'\n' || line.len() >= MAX_LINE_BYTES {
                                self.server_line(pid, &line, tail);
                                line.clear();
                            }
                        }
                    }
                }
            }
            if !exited && fds[0].revents != 0 {
                use std::os::unix::process::ExitStatusExt;
                let exit = match child.wait() {
                    Ok(s) => (s.code(), s.signal()),
                    Err(_) => (None, None),
                };
                // Written to a file: its tail is read back before the exit
                // is published, for start's "exited during start" message.
                if let Some((path, start)) = &log_file {
                    *lock(tail) = file_tail(path, *start);
                }
                if let Some(p) = lock(&self.inner.procs).get_mut(&pid) {
                    p.exit = Some(exit);
                    p.pidfd = None;
                }
                exited = true;
            }
        }
        if !exited {
            let _ = child.wait();
        }
        if let Some(p) = lock(&self.inner.procs).get_mut(&pid) {
            p.watching = false;
            p.pidfd = None;
            if p.exit.is_none() {
                p.exit = Some((None, None));
            }
        }
    }

    /// One stderr line of a spawned server: into its tail, and (escaped,
    /// within the resource's budget) into wasmbeat's log.
    fn server_line(&self, pid: u32, raw: &[u8], tail: &Mutex<Vec<u8>>) {
        if raw.is_empty() {
            return;
        }
        {
            let mut t = lock(tail);
            t.extend_from_slice(raw);
            let excess = t.len().saturating_sub(SPAWN_STDERR_TAIL);
            t.drain(..excess);
        }
        let text = sanitize_bytes(raw.strip_suffix(b"\n").unwrap_or(raw), MAX_LINE_BYTES);
        if text.trim().is_empty() {
            return;
        }
        let resource = &self.inner.resource;
        match self.inner.server_log.admit() {
            Admit::Drop => {}
            Admit::Log { suppressed } => {
                if suppressed > 0 {
                    tracing::warn!(target: "wasmbeat::server", resource, pid,
                        "{suppressed} stderr line(s) of the resource's servers suppressed (rate limit)");
                }
                tracing::info!(target: "wasmbeat::server", resource, pid, "{text}");
            }
        }
    }

    /// Whether `pid` was spawned through this table (and not yet pruned).
    pub fn owns(&self, pid: u32) -> bool {
        lock(&self.inner.procs).contains_key(&pid)
    }

    /// Whether `pid` was spawned here and has not been reaped.
    pub fn is_alive(&self, pid: u32) -> bool {
        lock(&self.inner.procs)
            .get(&pid)
            .is_some_and(|p| p.exit.is_none())
    }

    /// How a process spawned here ended (None while it runs or if it is
    /// not ours), with the tail of its stderr.
    pub fn exit_of(&self, pid: u32) -> Option<RunOutput> {
        let procs = lock(&self.inner.procs);
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

    /// Send `signal` to a live process spawned here, through its pidfd;
    /// SIGKILL takes its whole tree (its cgroup, or its process group).
    pub fn signal(&self, pid: u32, signal: i32) -> Result<(), CapError> {
        let (pidfd, leaf) = {
            let procs = lock(&self.inner.procs);
            match procs.get(&pid) {
                Some(Spawned {
                    exit: None,
                    pidfd: Some(fd),
                    leaf,
                    ..
                }) => (Arc::clone(fd), leaf.clone()),
                _ => return Err(CapError::Failed(format!("process {pid} is not running"))),
            }
        };
        if signal == libc::SIGKILL {
            if leaf.as_ref().is_some_and(|l| l.is_cgroup()) {
                if leaf.as_ref().is_some_and(|l| l.kill()) {
                    return Ok(());
                }
            } else {
                kill_group(pid);
            }
        }
        match pidfd_signal(&pidfd, signal) {
            Ok(()) => Ok(()),
            // Already gone with its group, not yet reaped by its watcher.
            Err(e) if signal == libc::SIGKILL && e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(CapError::Failed(format!("signal {signal} to {pid}: {e}"))),
        }
    }

    /// SIGKILL everything this resource started that is still running
    /// (after its agent stopped it: workers and daemonized leftovers).
    /// Returns how many processes were killed.
    pub fn kill_all(&self) -> usize {
        let cgroup = match &*lock(&self.inner.cgroup) {
            CgroupState::Made(c) => Some(Arc::clone(c)),
            _ => None,
        };
        let killed = match cgroup {
            Some(c) => {
                let (n, gone) = c.kill_all();
                if !gone {
                    tracing::warn!(resource = %self.inner.resource,
                        "processes of the resource survived SIGKILL for 2 s");
                }
                n
            }
            None => {
                let live: Vec<(u32, Arc<OwnedFd>)> = lock(&self.inner.procs)
                    .iter()
                    .filter_map(|(pid, p)| Some((*pid, Arc::clone(p.pidfd.as_ref()?))))
                    .collect();
                for (pid, fd) in &live {
                    kill_group(*pid);
                    let _ = pidfd_signal(fd, libc::SIGKILL);
                }
                live.len()
            }
        };
        self.prune();
        killed
    }
}

/// Signal a process found through a pid file, through the pidfd opened
/// when it was found (so a recycled PID is never signalled); SIGKILL to a
/// process-group leader goes to its whole group, so a server's workers do
/// not outlive it (they would keep its port open).
pub(crate) fn signal_found(pidfd: &OwnedFd, pid: u32, signal: i32) -> Result<(), CapError> {
    pidfd_signal(pidfd, signal)
        .map_err(|e| CapError::Failed(format!("signal {signal} to {pid}: {e}")))?;
    if signal == libc::SIGKILL && proc_info(pid).is_some_and(|i| i.pgid == pid) {
        kill_group(pid);
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

//! One cgroup per resource, made lazily when the resource first starts a
//! process, holding everything it starts: `pids.max` and `memory.max` on
//! it, one child cgroup per spawned process (so a SIGKILL takes that
//! process's whole tree, daemonized grandchildren included) and per `run`
//! (so a timeout kills everything the command started), `cgroup.kill` to
//! stop it all, and membership to tell the resource's processes from
//! others with a recycled PID.
//!
//! Names are `wasmbeat-<daemon pid>-<n>-<resource>`: unique per process
//! and per resource, so daemons and tests sharing a machine never meet.
//! Only cgroups made here are ever written to or removed; a cgroup is
//! removed (rmdir) once empty, when the resource's process table is
//! dropped, never while a process in it runs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::hierarchy::{self, Place};
use super::ProcessLimits;

/// How long a kill waits for a cgroup to empty before reporting failure.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Where resource cgroups are made on this machine, and which limits each
/// hierarchy carries (decided once per process, see `support`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bases {
    /// The v2 directory resource cgroups are made in.
    pub(crate) v2: Option<Place>,
    /// `pids` is enabled for children of the v2 base.
    pub(crate) v2_pids: bool,
    /// `memory` is enabled for children of the v2 base.
    pub(crate) v2_memory: bool,
    /// The kernel has `cgroup.kill` (Linux 5.14).
    pub(crate) v2_kill: bool,
    /// The v1 pids directory, used when v2 has no pids controller.
    pub(crate) v1_pids: Option<Place>,
    /// The v1 memory directory, used when v2 has no memory controller.
    pub(crate) v1_memory: Option<Place>,
}

impl Bases {
    /// Whether any cgroup can be made at all.
    pub(crate) fn any(&self) -> bool {
        self.v2.is_some() || self.v1_pids.is_some() || self.v1_memory.is_some()
    }
}

/// Characters allowed in the resource part of a cgroup name; anything
/// else (the `::` and `/` of resource tokens) becomes `_`.
fn sanitize(resource: &str) -> String {
    let mut s: String = resource
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(96);
    s
}

static NEXT: AtomicU64 = AtomicU64::new(1);

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn open_procs(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("cgroup.procs"))
        .map_err(|e| io::Error::new(e.kind(), format!("{}/cgroup.procs: {e}", dir.display())))?;
    Ok(OwnedFd::from(f))
}

/// PIDs in `dir` and every cgroup below it.
fn procs_below(dir: &Path, out: &mut Vec<u32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                procs_below(&e.path(), out);
            }
        }
    }
}

/// Remove `dir` and the (empty) cgroups below it, deepest first. Returns
/// false if something is still populated (EBUSY) and was left in place.
fn remove_tree(dir: &Path) -> bool {
    let mut ok = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                ok &= remove_tree(&e.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => ok,
        Err(e) if e.kind() == io::ErrorKind::NotFound => ok,
        Err(_) => false,
    }
}

/// Open a pidfd for `pid` (Linux 5.3): a handle that keeps naming this
/// process even after its PID is recycled.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid_t =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open(2) on integers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Send `signal` through a pidfd: never reaches a process that merely
/// reuses the PID.
pub(crate) fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal(2) with no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SIGKILL every process in `dir` and below, by pidfd after checking each
/// is still in that cgroup (a PID read from cgroup.procs may have been
/// recycled by the time it is signalled), until empty or the wait is over.
/// Returns whether it emptied.
fn kill_by_listing(dir: &Path, rel: &str, v2: bool, controller: &str) -> bool {
    let t0 = Instant::now();
    loop {
        let mut pids = Vec::new();
        procs_below(dir, &mut pids);
        if pids.is_empty() {
            return true;
        }
        if t0.elapsed() > KILL_WAIT {
            return false;
        }
        for pid in pids {
            let Ok(fd) = pidfd_open(pid) else { continue };
            let path = if v2 {
                hierarchy::v2_path_of(pid)
            } else {
                hierarchy::v1_path_of(pid, controller)
            };
            if path.is_some_and(|p| within(&p, rel)) {
                let _ = pidfd_signal(&fd, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether cgroup path `p` is `rel` or below it.
fn within(p: &str, rel: &str) -> bool {
    p == rel
        || p.strip_prefix(rel)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn join_rel(base: &str, name: &str) -> String {
    if base == "/" {
        format!("/{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// Wait until a v2 cgroup reports no live process (`populated 0`).
fn wait_unpopulated(dir: &Path) -> bool {
    let t0 = Instant::now();
    loop {
        if !populated(dir) {
            return true;
        }
        if t0.elapsed() > KILL_WAIT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a v2 cgroup (or any below it) has a live process.
fn populated(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(t) => t.lines().any(|l| l.trim() == "populated 1"),
        Err(_) => {
            let mut pids = Vec::new();
            procs_below(dir, &mut pids);
            !pids.is_empty()
        }
    }
}

/// Which limits a resource cgroup carries and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedLimits {
    /// `pids.max` as written, with "v2" or "v1".
    pub pids_max: Option<(u64, &'static str)>,
    /// Memory limit in bytes as written, with "v2" or "v1".
    pub memory_max: Option<(u64, &'static str)>,
}

/// The cgroup(s) of one resource.
#[derive(Debug)]
pub struct ResourceCgroup {
    /// v2 directory and its path as `/proc/PID/cgroup` shows it.
    v2: Option<(PathBuf, String)>,
    v2_kill: bool,
    /// v1 directories (pids, memory) with their controller and path.
    v1: Vec<(PathBuf, String, &'static str)>,
    applied: AppliedLimits,
    next_leaf: AtomicU64,
}

/// A child cgroup of a resource for one spawned process or one run; in
/// v1-only setups (no v2 tree) there is none and the process joins the
/// resource's v1 cgroups directly.
#[derive(Debug)]
pub struct Leaf {
    v2: Option<(PathBuf, String)>,
    v2_kill: bool,
}

/// Open `cgroup.procs` files a child writes itself into before exec.
pub(crate) struct Join {
    fds: Vec<OwnedFd>,
}

impl Join {
    /// The raw descriptors, for the pre-exec hook.
    pub(crate) fn raw(&self) -> Vec<RawFd> {
        self.fds.iter().map(|f| f.as_raw_fd()).collect()
    }
}

impl ResourceCgroup {
    /// Make the cgroup(s) for `resource` under `bases` with `limits`.
    /// `Ok(None)`: no hierarchy is usable here. Limits that cannot be
    /// written are logged and left out of [`ResourceCgroup::applied`].
    pub(crate) fn create(
        bases: &Bases,
        resource: &str,
        limits: &ProcessLimits,
    ) -> io::Result<Option<ResourceCgroup>> {
        if !bases.any() {
            return Ok(None);
        }
        let name = format!(
            "wasmbeat-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            sanitize(resource)
        );
        let mut cg = ResourceCgroup {
            v2: None,
            v2_kill: bases.v2_kill,
            v1: Vec::new(),
            applied: AppliedLimits::default(),
            next_leaf: AtomicU64::new(1),
        };
        let warn = |what: &str, e: &io::Error| {
            tracing::warn!(resource, "{what} not applied: {e}");
        };
        if let Some(base) = &bases.v2 {
            let dir = base.dir.join(&name);
            std::fs::create_dir(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            if let (true, Some(n)) = (bases.v2_pids, limits.pids_max) {
                match write_file(&dir.join("pids.max"), &n.to_string()) {
                    Ok(()) => cg.applied.pids_max = Some((n, "v2")),
                    Err(e) => warn("pids.max", &e),
                }
            }
            if let (true, Some(n)) = (bases.v2_memory, limits.memory_max) {
                match write_file(&dir.join("memory.max"), &n.to_string()) {
                    Ok(()) => cg.applied.memory_max = Some((n, "v2")),
                    Err(e) => warn("memory.max", &e),
                }
            }
            cg.v2 = Some((dir, join_rel(&base.rel, &name)));
        }
        if let (Some(base), Some(n), None) = (&bases.v1_pids, limits.pids_max, cg.applied.pids_max)
        {
            let dir = base.dir.join(&name);
            match std::fs::create_dir(&dir)
                .and_then(|()| write_file(&dir.join("pids.max"), &n.to_string()))
            {
                Ok(()) => cg.applied.pids_max = Some((n, "v1")),
                Err(e) => warn("pids.max", &e),
            }
            if dir.exists() {
                cg.v1.push((dir, join_rel(&base.rel, &name), "pids"));
            }
        }
        if let (Some(base), Some(n), None) =
            (&bases.v1_memory, limits.memory_max, cg.applied.memory_max)
        {
            let dir = base.dir.join(&name);
            match std::fs::create_dir(&dir)
                .and_then(|()| write_file(&dir.join("memory.limit_in_bytes"), &n.to_string()))
            {
                Ok(()) => cg.applied.memory_max = Some((n, "v1")),
                Err(e) => warn("memory limit", &e),
            }
            if dir.exists() {
                cg.v1.push((dir, join_rel(&base.rel, &name), "memory"));
            }
        }
        if cg.v2.is_none() && cg.v1.is_empty() {
            return Ok(None);
        }
        Ok(Some(cg))
    }

    /// The limits in force.
    pub fn applied(&self) -> &AppliedLimits {
        &self.applied
    }

    /// The v2 directory, if there is one (for tests and logs).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2.as_ref().map(|(d, _)| d.as_path())
    }

    /// A new child cgroup named `<kind>-<n>` for one process tree, and the
    /// open `cgroup.procs` files its first process must write itself into.
    pub(crate) fn leaf(&self, kind: &str) -> io::Result<(Leaf, Join)> {
        let mut fds = Vec::new();
        let v2 = match &self.v2 {
            Some((dir, rel)) => {
                let name = format!("{kind}-{}", self.next_leaf.fetch_add(1, Ordering::Relaxed));
                let leaf = dir.join(&name);
                std::fs::create_dir(&leaf)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", leaf.display())))?;
                match open_procs(&leaf) {
                    Ok(fd) => fds.push(fd),
                    Err(e) => {
                        let _ = std::fs::remove_dir(&leaf);
                        return Err(e);
                    }
                }
                Some((leaf, format!("{rel}/{name}")))
            }
            None => None,
        };
        for (dir, _, _) in &self.v1 {
            fds.push(open_procs(dir)?);
        }
        Ok((
            Leaf {
                v2,
                v2_kill: self.v2_kill,
            },
            Join { fds },
        ))
    }

    /// Whether `pid` is in this resource's cgroup or one below it.
    pub fn contains(&self, pid: u32) -> bool {
        if let Some((_, rel)) = &self.v2 {
            return hierarchy::v2_path_of(pid).is_some_and(|p| within(&p, rel));
        }
        self.v1.first().is_some_and(|(_, rel, controller)| {
            hierarchy::v1_path_of(pid, controller).is_some_and(|p| within(&p, rel))
        })
    }

    /// PIDs of every process in the resource's cgroups.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Some((dir, _)) = &self.v2 {
            procs_below(dir, &mut pids);
        } else if let Some((dir, _, _)) = self.v1.first() {
            procs_below(dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILL everything in the resource's cgroups and wait (bounded)
    /// until they are empty. Returns how many processes there were and
    /// whether they are all gone.
    pub fn kill_all(&self) -> (usize, bool) {
        let n = self.pids().len();
        if n == 0 {
            return (0, true);
        }
        let gone = match (&self.v2, self.v1.first()) {
            (Some((dir, rel)), _) => kill_tree_v2(dir, rel, self.v2_kill),
            (None, Some((dir, rel, controller))) => kill_by_listing(dir, rel, false, controller),
            (None, None) => true,
        };
        (n, gone)
    }

    /// Remove the empty child cgroups (processes that ended); keep the
    /// populated ones.
    pub(crate) fn prune(&self) {
        if let Some((dir, _)) = &self.v2 {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) && !populated(&e.path()) {
                        remove_tree(&e.path());
                    }
                }
            }
        }
    }
}

fn kill_tree_v2(dir: &Path, rel: &str, has_kill: bool) -> bool {
    if has_kill && write_file(&dir.join("cgroup.kill"), "1").is_ok() {
        return wait_unpopulated(dir);
    }
    kill_by_listing(dir, rel, true, "")
}

impl Drop for ResourceCgroup {
    fn drop(&mut self) {
        // Never kills: a server started by `wasmbeat agent start` outlives
        // the command, and its cgroup stays until it is empty.
        let mut left = Vec::new();
        if let Some((dir, _)) = &self.v2 {
            if !remove_tree(dir) {
                left.push(dir.clone());
            }
        }
        for (dir, _, _) in &self.v1 {
            if !remove_tree(dir) {
                left.push(dir.clone());
            }
        }
        if !left.is_empty() {
            tracing::debug!("cgroups still in use, left in place: {left:?}");
        }
    }
}

impl Leaf {
    /// SIGKILL the whole tree of this process (also what it daemonized).
    /// False if there is no v2 leaf (the caller falls back to the process
    /// group) or it did not empty in time.
    pub(crate) fn kill(&self) -> bool {
        match &self.v2 {
            Some((dir, rel)) => kill_tree_v2(dir, rel, self.v2_kill),
            None => false,
        }
    }

    /// Whether a process of this tree still lives.
    pub(crate) fn populated(&self) -> bool {
        self.v2.as_ref().is_some_and(|(dir, _)| populated(dir))
    }

    /// Whether this leaf is a v2 cgroup (kill and populated work).
    pub(crate) fn is_cgroup(&self) -> bool {
        self.v2.is_some()
    }
}

/// Whether `pid` sits in a cgroup that some wasmbeat process made for a
/// resource named `resource` (a server started by an earlier `wasmbeat
/// agent start` or before a daemon restart). Reads only.
pub fn in_wasmbeat_cgroup_of(pid: u32, resource: &str) -> bool {
    let suffix = format!("-{}", sanitize(resource));
    let path = hierarchy::v2_path_of(pid).or_else(|| hierarchy::v1_path_of(pid, "pids"));
    path.is_some_and(|p| {
        p.split('/').any(|part| {
            part.strip_prefix("wasmbeat-")
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                .is_some_and(|ids| {
                    let mut it = ids.split('-');
                    matches!((it.next(), it.next(), it.next()), (Some(a), Some(b), None)
                        if a.parse::<u32>().is_ok() && b.parse::<u64>().is_ok())
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_path_components() {
        assert_eq!(
            sanitize("IPaddr::10.0.0.1/24/eth0"),
            "IPaddr__10.0.0.1_24_eth0"
        );
        assert_eq!(sanitize("../x\ny"), ".._x_y");
        assert_eq!(sanitize(&"a".repeat(500)).len(), 96);
    }

    #[test]
    fn cgroup_paths_nest_by_component() {
        assert!(within("/wasmbeat-1-2-x", "/wasmbeat-1-2-x"));
        assert!(within("/wasmbeat-1-2-x/spawn-1", "/wasmbeat-1-2-x"));
        assert!(!within("/wasmbeat-1-2-xy", "/wasmbeat-1-2-x"));
        assert_eq!(join_rel("/", "a"), "/a");
        assert_eq!(join_rel("/s.slice", "a"), "/s.slice/a");
    }
}

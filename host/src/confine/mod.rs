//! Confinement of the processes agents start. What to start is fixed by
//! the administrator's grant ([`Launch`]); this module makes sure that
//! whatever it is runs with no more than it was given: no_new_privs, a
//! reduced capability bounding set, an optional user, an empty
//! environment, no inherited descriptors, and one cgroup per resource with
//! `pids.max` and a memory limit ([`ProcessLimits`]), stopped as a whole.
//! [`support`] says what of that this machine allows.
//!
//! Files by concern: `launch` (the spec and the command it becomes),
//! `privileges` (what the child does between fork and exec), `hierarchy`
//! (finding the cgroup mounts), `cgroup` (the resource's cgroups),
//! `support` (what is applicable here).

pub mod cgroup;
mod hierarchy;
pub mod launch;
mod privileges;
pub mod support;

pub use cgroup::{AppliedLimits, ResourceCgroup};
pub use launch::{parse_capability, Launch, LaunchError, SAFE_PATH};
pub use support::{log_support_once, support, ConfinementSupport};

/// Limits on what one resource may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Spawned processes that may be alive at once (a spawn past it is
    /// refused). Default 16: a resource runs one server, rarely a few.
    pub max_spawned: usize,
    /// `pids.max` of the resource's cgroup: processes and threads of
    /// everything it started together. Default 1024 (a MariaDB with its
    /// default 151 connections runs about 200 threads; an Apache with
    /// mpm_event a few hundred at most). None: no limit.
    pub pids_max: Option<u64>,
    /// Memory limit of the resource's cgroup in bytes. Default: three
    /// quarters of the machine's RAM, so a runaway server is killed by the
    /// kernel before it starves the daemon's heartbeats. None: no limit.
    pub memory_max: Option<u64>,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            max_spawned: 16,
            pids_max: Some(1024),
            memory_max: total_memory().map(|m| m / 4 * 3),
        }
    }
}

/// Physical memory of this machine in bytes.
fn total_memory() -> Option<u64> {
    nix::sys::sysinfo::sysinfo().ok().map(|i| i.ram_total())
}

//! Dropping privileges in a child between fork and exec: no_new_privs,
//! the capability bounding set, the inheritable and ambient sets, the user
//! and groups. Everything here that runs in the child is a raw syscall on
//! data prepared before fork: after fork in a multi-threaded process only
//! async-signal-safe calls are allowed (no allocation, no locks, no NSS).

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two words.
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capability sets as (effective, permitted,
/// inheritable) bit masks.
pub(crate) fn current_sets() -> io::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header and room for two words.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Set the calling thread's capability sets (async-signal-safe).
fn set_sets(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: capset(2) with a version-3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The highest capability number this kernel knows.
pub(crate) fn last_cap() -> u32 {
    static LAST: OnceLock<u32> = OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// CAP_SETPCAP, needed to drop from the bounding set.
const CAP_SETPCAP: u32 = 8;

/// A uid, gid and supplementary groups, resolved before fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) uid: libc::uid_t,
    pub(crate) gid: libc::gid_t,
    pub(crate) groups: Vec<libc::gid_t>,
}

/// What the child does to its privileges before exec.
#[derive(Debug, Clone)]
pub(crate) struct Privileges {
    /// Capabilities to keep (bit per capability number).
    keep: u64,
    /// Capabilities the daemon has now: the child cannot keep more.
    permitted_now: u64,
    /// Whether the daemon may drop from the bounding set (CAP_SETPCAP).
    can_drop_bounding: bool,
    last_cap: u32,
    ids: Option<Ids>,
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl(2) with integer arguments only.
    if unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Move the calling process into the cgroup whose `cgroup.procs` is open
/// as `fd` ("0" is the writer itself). The kernel checks the permission of
/// whoever opened the file, so this works after privileges are dropped too.
pub(crate) fn join_cgroup(fd: RawFd) -> io::Result<()> {
    // SAFETY: write(2) of a static one-byte buffer to an fd the parent
    // opened and keeps open until spawn returns.
    let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if n != 1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Privileges {
    /// Keep the capabilities in `keep` (bits), switch to `ids` if given.
    pub(crate) fn new(keep: u64, ids: Option<Ids>) -> Privileges {
        let (effective, permitted) = current_sets().map(|(e, p, _)| (e, p)).unwrap_or((0, 0));
        Privileges {
            keep,
            permitted_now: permitted,
            can_drop_bounding: effective & (1 << CAP_SETPCAP) != 0,
            last_cap: last_cap(),
            ids,
        }
    }

    /// In the child, after fork and before exec: apply everything. Only
    /// raw syscalls; no allocation.
    pub(crate) fn apply_in_child(&self) -> io::Result<()> {
        // Nothing this process executes can gain privileges: setuid bits
        // and file capabilities are ignored from here on.
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
        if self.can_drop_bounding {
            for cap in 0..=self.last_cap.min(63) {
                if self.keep & (1u64 << cap) == 0 {
                    if let Err(e) = prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) {
                        // EINVAL: a number this kernel does not know.
                        if e.raw_os_error() != Some(libc::EINVAL) {
                            return Err(e);
                        }
                    }
                }
            }
        }
        // SAFETY: prctl(2) with integer arguments only.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        let keep = self.keep & self.permitted_now;
        match &self.ids {
            Some(ids) if ids.uid != 0 => self.become_user(ids, keep),
            other => {
                if let Some(ids) = other {
                    set_ids(ids)?;
                }
                // Root keeps its uid: after exec it gets exactly the
                // bounding set; the inheritable set must be empty or it
                // would add to that.
                set_sets(keep, keep, 0)
            }
        }?;
        // No descriptor of the daemon's survives exec, whatever a library
        // opened without O_CLOEXEC (ENOSYS before Linux 5.11: best effort).
        // SAFETY: close_range(2) on integers; CLOEXEC closes nothing now.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            )
        };
        Ok(())
    }

    /// Switch to a non-root user; with capabilities to keep, carry them
    /// across setuid and exec as ambient capabilities.
    fn become_user(&self, ids: &Ids, keep: u64) -> io::Result<()> {
        if keep != 0 {
            prctl(libc::PR_SET_KEEPCAPS, 1)?;
        }
        set_ids(ids)?;
        if keep != 0 {
            set_sets(keep, keep, keep)?;
            for cap in 0..64u32 {
                if keep & (1u64 << cap) != 0 {
                    // SAFETY: prctl(2) with integer arguments only.
                    let r = unsafe {
                        libc::prctl(
                            libc::PR_CAP_AMBIENT,
                            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                            libc::c_ulong::from(cap),
                            0 as libc::c_ulong,
                            0 as libc::c_ulong,
                        )
                    };
                    if r != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            prctl(libc::PR_SET_KEEPCAPS, 0)?;
            Ok(())
        } else {
            // setuid cleared effective and permitted; clear inheritable too.
            set_sets(0, 0, 0)
        }
    }
}

/// Supplementary groups, gid, uid: in that order (setgid and setgroups
/// need the privilege setuid gives up).
fn set_ids(ids: &Ids) -> io::Result<()> {
    // SAFETY: setgroups(2) over a slice prepared before fork.
    if unsafe { libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain syscalls on integers.
    if unsafe { libc::setresgid(ids.gid, ids.gid, ids.gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(ids.uid, ids.uid, ids.uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the calling process can drop capabilities from the bounding set
/// of what it starts (it holds CAP_SETPCAP).
pub(crate) fn can_drop_bounding() -> bool {
    current_sets().is_ok_and(|(e, _, _)| e & (1 << CAP_SETPCAP) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_read_back() {
        let (e, p, _) = current_sets().unwrap();
        assert_eq!(e & !p, 0, "effective is a subset of permitted");
        assert!(last_cap() >= 37, "kernel knows at least CAP_AUDIT_READ");
    }
}

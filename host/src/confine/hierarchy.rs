//! Where this process may make cgroups: the cgroup v2 (unified) mount and,
//! on hybrid machines whose v2 tree has no controllers, the v1 `pids` and
//! `memory` hierarchies, found from `/proc/self/mountinfo` and
//! `/proc/self/cgroup`.
//!
//! wasmbeat only makes cgroups below its own cgroup, and only where that
//! is its to manage: the root of a hierarchy (no service manager, or a
//! container with its own cgroup namespace), or a subtree delegated to it
//! (systemd's `Delegate=yes`, which marks the directory with the
//! `trusted.delegate` or `user.delegate` extended attribute). In a
//! delegated v2 subtree that has processes of its own (the daemon), the
//! daemon first moves into a leaf of its own so the controllers can be
//! enabled for its siblings, as systemd's delegation rules ask.

use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo` that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mounted directory of the hierarchy (usually `/`).
    pub(crate) root: String,
    /// Where it is mounted.
    pub(crate) point: PathBuf,
    /// `cgroup2` or `cgroup`.
    pub(crate) fstype: String,
    /// Super-block options (`rw,pids` for a v1 pids hierarchy).
    pub(crate) options: Vec<String>,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts in a mountinfo text.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup2" && fstype != "cgroup" {
            continue;
        }
        mounts.push(Mount {
            root: unescape(pre[3]),
            point: PathBuf::from(unescape(pre[4])),
            fstype: fstype.to_string(),
            options: post[2].split(',').map(String::from).collect(),
        });
    }
    mounts
}

/// One line of `/proc/PID/cgroup`: hierarchy id, controllers, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    /// 0 for the unified hierarchy.
    pub(crate) id: u32,
    /// Controllers bound to the hierarchy (v1), empty for v2.
    pub(crate) controllers: Vec<String>,
    /// Path relative to the hierarchy (or cgroup namespace) root.
    pub(crate) path: String,
}

/// Parse `/proc/PID/cgroup`.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let controllers = it
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            let path = it.next()?.to_string();
            Some(Membership {
                id,
                controllers,
                path,
            })
        })
        .collect()
}

/// The cgroup v2 path of `pid` (`0::PATH`), if it has one.
pub(crate) fn v2_path_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_proc_cgroup(&text)
        .into_iter()
        .find(|m| m.id == 0 && m.controllers.is_empty())
        .map(|m| m.path)
}

/// The v1 path of `pid` in the hierarchy of `controller`.
pub(crate) fn v1_path_of(pid: u32, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_proc_cgroup(&text)
        .into_iter()
        .find(|m| m.id != 0 && m.controllers.iter().any(|c| c == controller))
        .map(|m| m.path)
}

/// Where this process sits in one hierarchy, as a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// Its cgroup as `/proc/self/cgroup` writes it (`/` for the root).
    pub(crate) rel: String,
    /// The same cgroup as a directory.
    pub(crate) dir: PathBuf,
}

/// Map a cgroup path to its directory under the mount (which may expose
/// only a subtree: its `root` field).
fn place(mount: &Mount, rel: &str) -> Option<Place> {
    let inside = if mount.root == "/" {
        rel
    } else {
        rel.strip_prefix(mount.root.as_str())?
    };
    let inside = inside.trim_start_matches('/');
    Some(Place {
        rel: rel.to_string(),
        dir: if inside.is_empty() {
            mount.point.clone()
        } else {
            mount.point.join(inside)
        },
    })
}

/// This process's place in the unified hierarchy and in the v1
/// hierarchies of `pids` and `memory`, from mountinfo and
/// `/proc/self/cgroup` texts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Places {
    /// cgroup v2.
    pub(crate) v2: Option<Place>,
    /// The v1 hierarchy with the pids controller.
    pub(crate) v1_pids: Option<Place>,
    /// The v1 hierarchy with the memory controller.
    pub(crate) v1_memory: Option<Place>,
}

/// Find this process's places (pure: the texts are given).
pub(crate) fn places(mountinfo: &str, self_cgroup: &str) -> Places {
    let mounts = parse_mountinfo(mountinfo);
    let member = parse_proc_cgroup(self_cgroup);
    let v2 = mounts.iter().find(|m| m.fstype == "cgroup2").and_then(|m| {
        let rel = member
            .iter()
            .find(|c| c.id == 0 && c.controllers.is_empty())?;
        place(m, &rel.path)
    });
    let v1 = |controller: &str| {
        let m = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == controller))?;
        let rel = member
            .iter()
            .find(|c| c.id != 0 && c.controllers.iter().any(|x| x == controller))?;
        place(m, &rel.path)
    };
    Places {
        v2,
        v1_pids: v1("pids"),
        v1_memory: v1("memory"),
    }
}

/// This process's places on this machine.
pub(crate) fn own_places() -> Places {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    places(&mountinfo, &cgroup)
}

/// Whether a cgroup directory was delegated to the process in it (systemd
/// `Delegate=yes` sets one of these extended attributes to "1").
pub(crate) fn is_delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| xattr_is_one(dir, name))
}

fn xattr_is_one(dir: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(dir.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    let mut buf = [0u8; 8];
    // SAFETY: getxattr(2) into a buffer of the size passed.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    len > 0 && buf[..len as usize].starts_with(b"1")
}

/// Whether `dir` can be written (mkdir of children): root passes the
/// permission check, but not a read-only mount.
pub(crate) fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(p) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path.
    unsafe { libc::access(p.as_ptr(), libc::W_OK) == 0 }
}

/// The controllers listed in a cgroup v2 file (`cgroup.controllers`,
/// `cgroup.subtree_control`).
pub(crate) fn controllers(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: hybrid, v2 without controllers, pids and
    /// memory on v1, the process in a v1 memory cgroup of someone else.
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/925c
0::/
";

    /// Debian 12 with systemd: pure v2 at /sys/fs/cgroup, the daemon in
    /// its service's cgroup.
    const V2_MOUNTS: &str = "\
25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_SELF: &str = "0::/system.slice/wasmbeat.service\n";

    #[test]
    fn hybrid_layout() {
        let p = places(HYBRID_MOUNTS, HYBRID_SELF);
        assert_eq!(
            p.v2,
            Some(Place {
                rel: "/".into(),
                dir: "/sys/fs/cgroup/unified".into()
            })
        );
        assert_eq!(p.v1_pids.unwrap().dir, PathBuf::from("/sys/fs/cgroup/pids"));
        let mem = p.v1_memory.unwrap();
        assert_eq!(mem.rel, "/process_api/925c");
        assert_eq!(
            mem.dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/925c")
        );
    }

    #[test]
    fn pure_v2_layout() {
        let p = places(V2_MOUNTS, V2_SELF);
        assert_eq!(
            p.v2.unwrap().dir,
            PathBuf::from("/sys/fs/cgroup/system.slice/wasmbeat.service")
        );
        assert!(p.v1_pids.is_none() && p.v1_memory.is_none());
    }

    #[test]
    fn subtree_mounts_and_escapes() {
        // A container sees a subtree mounted at /sys/fs/cgroup.
        let mounts = "1 0 0:1 /docker/abc /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n";
        let p = places(mounts, "0::/docker/abc/inner\n");
        assert_eq!(p.v2.unwrap().dir, PathBuf::from("/sys/fs/cgroup x/inner"));
        // Outside the mounted subtree: no place.
        assert!(places(mounts, "0::/elsewhere\n").v2.is_none());
        assert!(places("", "0::/\n").v2.is_none());
    }

    #[test]
    fn own_places_are_found_on_this_machine() {
        let p = own_places();
        // Every Linux this runs on has at least one of the hierarchies.
        assert!(
            p.v2.is_some() || p.v1_pids.is_some(),
            "no cgroup hierarchy found: {p:?}"
        );
    }
}

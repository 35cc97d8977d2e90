//! The launch spec: what one process an agent asked for is, as the
//! administrator's grant fixed it, and its translation into a
//! `std::process::Command` whose child is confined before it executes a
//! single instruction of the program.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use super::privileges::{self, Ids, Privileges};

/// One process to start, filled by the host from the resource's grant
/// (never from text the agent supplied).
///
/// The child gets: its own process group, `no_new_privs`, a capability
/// bounding set of exactly `capabilities` (inheritable and ambient sets
/// cleared, so root gets exactly those after exec and no file capability
/// or setuid bit can add any), the `user`'s uid, gid and supplementary
/// groups if one is named, an environment of only `PATH`, no inherited
/// file descriptors beyond stdio, `/` as working directory, and the
/// resource's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    /// Program and arguments; `argv[0]` is an absolute path.
    pub argv: Vec<String>,
    /// Run as this user (a name from the user database, or a numeric uid);
    /// `None` keeps the daemon's user (root).
    pub user: Option<String>,
    /// Capabilities the process keeps, by their Linux names
    /// (`CAP_NET_BIND_SERVICE`); all others are dropped for good.
    pub capabilities: Vec<String>,
}

/// Why a launch spec cannot be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// No program at all.
    #[error("empty command: argv needs at least the program")]
    Empty,
    /// The program is not an absolute path.
    #[error("program {0:?} is not an absolute path")]
    RelativeProgram(String),
    /// An argument cannot be passed to exec.
    #[error("argument {0:?} contains a NUL byte")]
    NulByte(String),
    /// Not a capability name Linux knows.
    #[error("unknown capability {0:?} (write the Linux name, e.g. CAP_NET_BIND_SERVICE; see capabilities(7))")]
    UnknownCapability(String),
    /// The user does not exist on this node.
    #[error("user {0:?} does not exist on this node")]
    UnknownUser(String),
    /// The user database could not be read.
    #[error("looking up user {user:?}: {reason}")]
    UserLookup {
        /// The user asked for.
        user: String,
        /// What went wrong.
        reason: String,
    },
}

/// The number Linux gives capability `name` (`CAP_NET_ADMIN` is 12).
/// For the grant module to validate names when it reads agents.toml.
pub fn parse_capability(name: &str) -> Result<u8, LaunchError> {
    name.parse::<caps::Capability>()
        .map(|c| c.index())
        .map_err(|_| LaunchError::UnknownCapability(name.to_string()))
}

impl Launch {
    /// A launch of `argv` as the daemon's user with no capabilities.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Launch {
        Launch {
            argv: argv.into_iter().map(Into::into).collect(),
            user: None,
            capabilities: Vec::new(),
        }
    }

    /// The program (`argv[0]`), or "" for an empty spec.
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or("")
    }

    /// Check the spec without touching the system beyond the user
    /// database: absolute program, no NUL bytes, known capability names,
    /// an existing user.
    pub fn validate(&self) -> Result<(), LaunchError> {
        self.prepare().map(|_| ())
    }

    /// Everything the child needs, resolved before fork (the child may
    /// only make async-signal-safe calls: no allocation, no NSS lookups).
    pub(crate) fn prepare(&self) -> Result<Prepared, LaunchError> {
        let program = self.argv.first().ok_or(LaunchError::Empty)?;
        if !program.starts_with('/') {
            return Err(LaunchError::RelativeProgram(program.clone()));
        }
        for a in &self.argv {
            if a.contains('\0') {
                return Err(LaunchError::NulByte(a.clone()));
            }
        }
        let mut keep = 0u64;
        for c in &self.capabilities {
            keep |= 1u64 << parse_capability(c)?;
        }
        let ids = self.user.as_deref().map(resolve_user).transpose()?;
        Ok(Prepared {
            privileges: Privileges::new(keep, ids),
        })
    }
}

/// Resolve a user name or numeric uid to ids and supplementary groups.
fn resolve_user(user: &str) -> Result<Ids, LaunchError> {
    use nix::unistd::{Uid, User};
    let lookup = |e: nix::Error| LaunchError::UserLookup {
        user: user.to_string(),
        reason: e.to_string(),
    };
    let found = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)).map_err(lookup)?,
        Err(_) => User::from_name(user).map_err(lookup)?,
    };
    let u = found.ok_or_else(|| LaunchError::UnknownUser(user.to_string()))?;
    let name =
        CString::new(u.name.as_bytes()).map_err(|_| LaunchError::UnknownUser(user.into()))?;
    let groups = nix::unistd::getgrouplist(&name, u.gid)
        .map_err(lookup)?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(Ids {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
    })
}

/// A launch spec resolved for fork.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    privileges: Privileges,
}

/// The only environment variable programs get.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Prepared {
    /// A command for `launch` (which this was prepared from) whose child
    /// joins the cgroups behind `cgroup_procs` (open `cgroup.procs` files,
    /// kept open by the caller until spawn returns), then drops privileges,
    /// then executes. Stdio: stdin null; stdout and stderr as the caller
    /// sets them.
    pub(crate) fn command(&self, launch: &Launch, cgroup_procs: &[RawFd]) -> std::process::Command {
        let mut c = std::process::Command::new(&launch.argv[0]);
        c.args(&launch.argv[1..])
            .env_clear()
            .env("PATH", SAFE_PATH)
            .stdin(Stdio::null())
            .current_dir("/")
            // Its own process group: a Ctrl-C to wasmbeat's group does not
            // reach it, and the group can be killed as a whole where no
            // cgroup could be made.
            .process_group(0);
        let privileges = self.privileges.clone();
        let fds: Vec<RawFd> = cgroup_procs.to_vec();
        // SAFETY: the closure runs between fork and exec; it only makes
        // raw syscalls (write, prctl, setgroups, setres[ug]id, capset,
        // close_range) on data prepared before fork, and allocates nothing.
        unsafe {
            c.pre_exec(move || {
                for fd in &fds {
                    privileges::join_cgroup(*fd)?;
                }
                privileges.apply_in_child()
            });
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_validated_before_anything_runs() {
        assert_eq!(
            Launch::new(Vec::<String>::new()).validate(),
            Err(LaunchError::Empty)
        );
        assert_eq!(
            Launch::new(["sleep", "1"]).validate(),
            Err(LaunchError::RelativeProgram("sleep".into()))
        );
        assert!(matches!(
            Launch::new(["/bin/echo", "a\0b"]).validate(),
            Err(LaunchError::NulByte(_))
        ));
        let mut l = Launch::new(["/bin/true"]);
        l.capabilities = vec!["CAP_NET_BIND_SERVICE".into(), "CAP_SETUID".into()];
        l.validate().unwrap();
        l.capabilities.push("NET_ADMIN".into());
        let e = l.validate().unwrap_err();
        assert!(e.to_string().contains("CAP_NET_BIND_SERVICE"), "{e}");
        let mut l = Launch::new(["/bin/true"]);
        l.user = Some("no-such-user-wasmbeat".into());
        assert_eq!(
            l.validate(),
            Err(LaunchError::UnknownUser("no-such-user-wasmbeat".into()))
        );
        l.user = Some("root".into());
        l.validate().unwrap();
        l.user = Some("0".into());
        l.validate().unwrap();
    }

    #[test]
    fn capability_names_map_to_linux_numbers() {
        assert_eq!(parse_capability("CAP_CHOWN").unwrap(), 0);
        assert_eq!(parse_capability("CAP_NET_ADMIN").unwrap(), 12);
        assert_eq!(parse_capability("CAP_NET_BIND_SERVICE").unwrap(), 10);
        assert!(parse_capability("cap_net_admin").is_err());
    }
}

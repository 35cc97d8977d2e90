//! Whether a file the daemon will execute or obey could have been written
//! by someone other than the administrator. Agents (`.wasm`), agents.toml
//! and the compiled-agent cache decide what runs with the daemon's
//! authority, so each must be owned by root (or by the user wasmbeat runs
//! as, for unprivileged test runs) and not writable by group or others;
//! so must every directory above it, or a file could be swapped by
//! renaming. A world-writable directory with the sticky bit (`/tmp`) is
//! accepted: only an entry's owner can rename or remove it there, and the
//! entry itself is checked.
//!
//! Symlinks are followed for the directories above (the administrator's
//! layout, e.g. `/var/run -> /run`); the final path is checked as what it
//! points to, after checking the link itself is trusted.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a path is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Owned by a user other than root or the running user.
    #[error("{what} {path} is owned by uid {uid}, not root: refusing it (fix: chown root:root {path})", path = path.display())]
    Owner {
        /// What the path is for (agent, cache directory, ...).
        what: &'static str,
        /// The offending path (the file or one of its directories).
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Writable by group or others.
    #[error("{what} {path} is writable by {who} (mode {mode:04o}): refusing it (fix: chmod go-w {path})", path = path.display())]
    Writable {
        /// What the path is for.
        what: &'static str,
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "group", "others" or "group and others".
        who: &'static str,
    },
    /// Its metadata could not be read.
    #[error("cannot check {what} {path}: {source}", path = path.display())]
    Io {
        /// What the path is for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl TrustError {
    /// The path that failed the check.
    pub fn path(&self) -> &Path {
        match self {
            TrustError::Owner { path, .. }
            | TrustError::Writable { path, .. }
            | TrustError::Io { path, .. } => path,
        }
    }
}

/// The running effective user (root for the daemon).
fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Check one path's own metadata (no parents). `is_dir_above`: it is a
/// directory above the target, where the sticky bit excuses world-write.
fn check_one(
    what: &'static str,
    path: &Path,
    meta: &std::fs::Metadata,
    is_dir_above: bool,
) -> Result<(), TrustError> {
    let me = euid();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(TrustError::Owner {
            what,
            path: path.to_path_buf(),
            uid: meta.uid(),
        });
    }
    // Symlinks' own permission bits mean nothing.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & libc::S_ISVTX != 0;
    let group_w = mode & 0o020 != 0;
    let other_w = mode & 0o002 != 0;
    if (group_w || other_w) && !(is_dir_above && sticky && meta.is_dir()) {
        let who = match (group_w, other_w) {
            (true, true) => "group and others",
            (true, false) => "group",
            _ => "others",
        };
        return Err(TrustError::Writable {
            what,
            path: path.to_path_buf(),
            mode,
            who,
        });
    }
    Ok(())
}

fn lstat(what: &'static str, path: &Path) -> Result<std::fs::Metadata, TrustError> {
    std::fs::symlink_metadata(path).map_err(|source| TrustError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Check that `path` (a file or directory that exists) and every directory
/// above it are owned by root or the running user and not writable by
/// group or others. `what` names it in the error ("agent", "agent cache").
pub fn check(what: &'static str, path: &Path) -> Result<(), TrustError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| TrustError::Io {
                what,
                path: path.to_path_buf(),
                source,
            })?
            .join(path)
    };
    // The link itself (if the final component is one), then what it
    // resolves to with all directories of the resolved path.
    let own = lstat(what, &abs)?;
    check_one(what, &abs, &own, false)?;
    let real = std::fs::canonicalize(&abs).map_err(|source| TrustError::Io {
        what,
        path: abs.clone(),
        source,
    })?;
    let target = lstat(what, &real)?;
    check_one(what, &real, &target, false)?;
    for dir in real.ancestors().skip(1) {
        let m = lstat(what, dir)?;
        check_one(what, dir, &m, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn owned_and_not_writable_is_trusted_and_each_weakness_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        chmod(d, 0o755);
        let f = d.join("agent.wasm");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
        check("agent", &f).expect("0644 file in a 0755 directory");

        chmod(&f, 0o664);
        let e = check("agent", &f).unwrap_err();
        assert!(
            matches!(e, TrustError::Writable { who: "group", .. }),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&f.display().to_string()) && msg.contains("chmod go-w"),
            "{msg}"
        );

        chmod(&f, 0o644);
        chmod(d, 0o777);
        let e = check("agent", &f).unwrap_err();
        assert_eq!(e.path(), d, "{e}");
        // Sticky world-writable directories (like /tmp) are accepted.
        chmod(d, 0o1777);
        check("agent", &f).expect("sticky directory");
        chmod(d, 0o755);

        // A symlink is judged by itself and by what it points to.
        let link = d.join("link.wasm");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        check("agent", &link).unwrap();
        chmod(&f, 0o646);
        assert!(matches!(
            check("agent", &link),
            Err(TrustError::Writable { who: "others", .. })
        ));

        let e = check("agent", &d.join("missing")).unwrap_err();
        assert!(matches!(e, TrustError::Io { .. }), "{e}");
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        if euid() != 0 {
            eprintln!("SKIP a_file_owned_by_another_user_is_refused: needs root to chown");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.wasm");
        std::fs::write(&f, b"x").unwrap();
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
        let e = check("agent", &f).unwrap_err();
        assert!(matches!(e, TrustError::Owner { uid: 65534, .. }), "{e}");
        assert!(e.to_string().contains("chown root:root"), "{e}");
    }
}

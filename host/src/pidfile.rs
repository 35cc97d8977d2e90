//! The daemon's pid file: written at start and locked (flock) for the
//! daemon's lifetime, so a second instance on the same config dir is refused
//! even if a crashed daemon left the file behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the pid file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another live daemon holds the lock.
    #[error("another wasmbeat (pid {pid}) already runs for this configuration (lock held on {path}); stop it first or use another --config-dir")]
    AlreadyRunning {
        /// Pid written by the holder, or `?` if unreadable.
        pid: String,
        /// The pid file.
        path: PathBuf,
    },
    /// Creating, locking or writing the file failed.
    #[error("pid file {path}: {source}")]
    Io {
        /// The pid file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A held pid file; the lock is released and the file removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _file: File,
}

impl PidFile {
    /// Create/lock `path` and write our pid into it.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(PidFileError::AlreadyRunning {
                    pid: if pid.is_empty() {
                        "?".into()
                    } else {
                        pid.into()
                    },
                    path: path.to_path_buf(),
                });
            }
            return Err(io(err));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = std::env::temp_dir().join(format!("wb-pid-{}", std::process::id()));
        let path = dir.join("x.pid");
        let first = PidFile::acquire(&path).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.trim(), std::process::id().to_string());
        match PidFile::acquire(&path) {
            Err(PidFileError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        assert!(!path.exists());
        let again = PidFile::acquire(&path).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }
}

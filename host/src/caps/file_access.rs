//! Reading the files a grant names (pid files, inspected paths) so that no
//! file can hang or flood an operation: opened with `O_NOFOLLOW` and
//! `O_NONBLOCK` (a FIFO, a device or a symlink planted in place of a pid
//! file is refused at once, never waited on), checked with `fstat` before
//! a byte is read, read to a small cap, and done on a blocking-pool thread
//! that the operation abandons after [`FILE_CALL_TIMEOUT`] (a hung network
//! filesystem costs a thread, not the agent runtime's workers).
//!
//! Symlinks: a pid file's final component is never followed (its content
//! names a process to signal; whoever can write the directory it sits in,
//! often the service's own user, could point it anywhere). `files.inspect`
//! follows them: granted paths are often distribution symlinks
//! (`/usr/bin/python3`), only kind and emptiness are reported, and nothing
//! but a directory is ever opened. The directories above either are the
//! administrator's layout and are followed (`/var/run -> /run`).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{CapError, PathKind};

/// How long one file call may take before the operation gives up on it.
pub const FILE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes read from a pid file; a larger file is not a pid file.
pub const PIDFILE_MAX_BYTES: u64 = 4096;

/// File calls in flight at once, process-wide: threads stuck in a hung
/// filesystem hold their permit, so they can never exhaust the blocking
/// pool; later calls then time out instead.
static IN_FLIGHT: Semaphore = Semaphore::const_new(4);

/// Run blocking file work `f` on the blocking pool; give up after
/// [`FILE_CALL_TIMEOUT`] (the thread is left to finish on its own).
pub async fn off_thread<T: Send + 'static>(
    what: String,
    f: impl FnOnce() -> Result<T, CapError> + Send + 'static,
) -> Result<T, CapError> {
    off_thread_within(what, FILE_CALL_TIMEOUT, f).await
}

async fn off_thread_within<T: Send + 'static>(
    what: String,
    limit: Duration,
    f: impl FnOnce() -> Result<T, CapError> + Send + 'static,
) -> Result<T, CapError> {
    let work = async {
        let permit = IN_FLIGHT
            .acquire()
            .await
            .map_err(|_| CapError::Failed(format!("{what}: file access shut down")))?;
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await;
        joined.map_err(|e| CapError::Failed(format!("{what}: {e}")))?
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("{what} did not finish within {limit:?}: abandoned (hung filesystem?)");
            Err(CapError::Timeout)
        }
    }
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// The text of a pid file; None if it does not exist. Refused (not
/// waited on): a symlink, a FIFO, a device, a directory, anything over
/// [`PIDFILE_MAX_BYTES`].
pub fn read_pidfile(path: &Path) -> Result<Option<String>, CapError> {
    let shown = path.display();
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CapError::Failed(format!(
                "pid file {shown} is a symbolic link: not followed (grant the file it points to)"
            )))
        }
        Err(e) => return Err(CapError::Failed(format!("reading pid file {shown}: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| CapError::Failed(format!("reading pid file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(CapError::Failed(format!(
            "pid file {shown} is {}, not a regular file: refused",
            kind_name(meta.file_type())
        )));
    }
    if meta.len() > PIDFILE_MAX_BYTES {
        return Err(CapError::Failed(format!(
            "pid file {shown} is {} bytes, not a pid file (at most {PIDFILE_MAX_BYTES}): refused",
            meta.len()
        )));
    }
    let mut text = Vec::new();
    (&file)
        .take(PIDFILE_MAX_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| CapError::Failed(format!("reading pid file {shown}: {e}")))?;
    Ok(Some(String::from_utf8_lossy(&text).into_owned()))
}

/// What is at `path` (symlinks followed) without opening anything but
/// directories: opening a device can have effects, opening a FIFO blocks.
pub fn inspect(path: &Path) -> Result<PathKind, CapError> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PathKind::Missing),
        Err(e) => return Err(CapError::Failed(format!("inspecting {shown}: {e}"))),
    };
    if meta.is_file() {
        return Ok(PathKind::File);
    }
    if !meta.is_dir() {
        return Ok(PathKind::Other);
    }
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| CapError::Failed(format!("listing {shown}: {e}")))?;
    let mut entries = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dir))
        .map_err(|e| CapError::Failed(format!("listing {shown}: {e}")))?;
    let any = entries.iter().any(|e| {
        e.ok()
            .is_some_and(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
    });
    Ok(if any {
        PathKind::Directory
    } else {
        PathKind::EmptyDirectory
    })
}

/// [`read_pidfile`] off the agent's thread, abandoned after the timeout.
pub async fn read_pidfile_bounded(path: PathBuf) -> Result<Option<String>, CapError> {
    let what = format!("reading pid file {}", path.display());
    off_thread(what, move || read_pidfile(&path)).await
}

/// [`inspect`] off the agent's thread, abandoned after the timeout.
pub async fn inspect_bounded(path: PathBuf) -> Result<PathKind, CapError> {
    let what = format!("inspecting {}", path.display());
    off_thread(what, move || inspect(&path)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn pid_files_that_are_not_small_regular_files_fail_fast() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = d.join("good.pid");
        std::fs::write(&good, "123\n").unwrap();
        assert_eq!(read_pidfile(&good).unwrap().as_deref(), Some("123\n"));
        assert_eq!(read_pidfile(&d.join("missing.pid")).unwrap(), None);

        let fifo = d.join("fifo.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = Instant::now();
        let e = read_pidfile(&fifo).unwrap_err();
        assert!(
            e.to_string().contains("is a FIFO, not a regular file"),
            "{e}"
        );
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());

        let link = d.join("link.pid");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let e = read_pidfile(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let e = read_pidfile(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");

        let huge = d.join("huge.pid");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let e = read_pidfile(&huge).unwrap_err();
        assert!(e.to_string().contains("1073741824 bytes"), "{e}");

        let e = read_pidfile(d).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
    }

    #[test]
    fn inspect_reports_kinds_and_opens_only_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(inspect(d).unwrap(), PathKind::EmptyDirectory);
        std::fs::write(d.join("f"), "x").unwrap();
        assert_eq!(inspect(d).unwrap(), PathKind::Directory);
        assert_eq!(inspect(&d.join("f")).unwrap(), PathKind::File);
        assert_eq!(inspect(&d.join("nope")).unwrap(), PathKind::Missing);
        std::os::unix::fs::symlink("/etc", d.join("l")).unwrap();
        assert_eq!(inspect(&d.join("l")).unwrap(), PathKind::Directory);
        assert_eq!(inspect(Path::new("/dev/null")).unwrap(), PathKind::Other);
        // A FIFO is reported, not opened (opening it would block).
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = Instant::now();
        assert_eq!(inspect(&fifo).unwrap(), PathKind::Other);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_hung_call_is_abandoned_at_its_timeout() {
        let rt = rt();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t0 = Instant::now();
        let r = rt.block_on(off_thread_within(
            "test call".into(),
            Duration::from_millis(200),
            move || {
                // Blocks like a read on a hung NFS server, until released.
                let _ = rx.recv();
                Ok(())
            },
        ));
        let took = t0.elapsed();
        assert_eq!(r, Err(CapError::Timeout));
        assert!(took < Duration::from_secs(2), "took {took:?}");
        // Positive control: a call that finishes returns its value.
        let v = rt.block_on(off_thread_within(
            "quick".into(),
            Duration::from_secs(5),
            || Ok(7),
        ));
        assert_eq!(v, Ok(7));
        drop(tx);
    }
}

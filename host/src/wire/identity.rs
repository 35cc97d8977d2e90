//! The node's persisted identity: UUID and generation number, kept the way
//! heartbeat keeps them (`/var/lib/heartbeat/hb_uuid`, 16 raw bytes, and
//! `hb_generation`, 16 bytes of right-aligned decimal), so a node migrated
//! from heartbeat keeps its UUID and its generation keeps increasing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Heartbeat's state directory (the default for [`Identity::load_or_create`]).
pub const HEARTBEAT_STATE_DIR: &str = "/var/lib/heartbeat";
/// UUID file name inside the state directory.
pub const UUID_FILE: &str = "hb_uuid";
/// Generation file name inside the state directory.
pub const GENERATION_FILE: &str = "hb_generation";

pub use crate::config::hacf::GenMethod;
pub use wasmbeat_core::wire::Identity;

/// Errors reading or writing the identity files.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Filesystem error on a path.
    #[error("{path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The UUID file is not 16 bytes.
    #[error("{0}: UUID file must hold exactly 16 bytes")]
    BadUuid(PathBuf),
    /// The generation file does not hold a decimal number.
    #[error("{0}: generation file does not hold a decimal number")]
    BadGeneration(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write a file durably: temp file, fsync, rename, so a crash never leaves
/// a half-written generation (which would break replay protection). Also
/// used for the peer state file ([`super::peer_state`]).
pub(crate) fn write_durable(path: &Path, data: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Load (or create) the UUID in `dir` and advance the generation.
pub fn load_or_create(dir: &Path, method: GenMethod) -> Result<Identity, IdentityError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let upath = dir.join(UUID_FILE);
    let uuid = match fs::read(&upath) {
        Ok(b) => {
            <[u8; 16]>::try_from(b.as_slice()).map_err(|_| IdentityError::BadUuid(upath.clone()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut u: [u8; 16] = rand::random();
            u[6] = (u[6] & 0x0f) | 0x40;
            u[8] = (u[8] & 0x3f) | 0x80;
            write_durable(&upath, &u)?;
            tracing::info!(path = %upath.display(), "created node UUID");
            u
        }
        Err(e) => return Err(io(&upath)(e)),
    };
    let gpath = dir.join(GENERATION_FILE);
    let generation = match method {
        GenMethod::Time => super::environment::wall_secs(),
        GenMethod::File => {
            let now = super::environment::wall_secs();
            let next = match fs::read(&gpath) {
                Ok(b) => {
                    let s = String::from_utf8_lossy(&b);
                    let prev: u64 = s
                        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
                        .parse()
                        .map_err(|_| IdentityError::BadGeneration(gpath.clone()))?;
                    // Never below the clock: a start whose generation could
                    // not be written (below) used the clock, and the next
                    // one must still be newer for the peer to accept it.
                    (prev + 1).max(now)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!("no previous generation, starting at the current time");
                    now
                }
                Err(e) => return Err(io(&gpath)(e)),
            };
            // A full or read-only state directory must not keep a node from
            // starting (it may be the only one left): run with a generation
            // that is newer than any persisted one and say so.
            if let Err(e) = write_durable(&gpath, format!("{next:>16}").as_bytes()) {
                let _ = fs::remove_file(gpath.with_extension("tmp"));
                tracing::warn!(
                    generation = next,
                    "cannot persist the generation ({e}); running with generation {next} \
                     from the clock; free or remount {} so the next start can record it",
                    dir.display()
                );
            }
            next
        }
    };
    Ok(Identity { uuid, generation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_generation_still_starts_newer_than_the_last() {
        let dir = std::env::temp_dir().join(format!("wb-ident-ro-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = load_or_create(&dir, GenMethod::File).unwrap();
        // The generation file cannot be replaced: a directory is in the way
        // of the temp file (as ENOSPC or EROFS would refuse it).
        fs::create_dir_all(dir.join(GENERATION_FILE).with_extension("tmp").join("x")).unwrap();
        let second = load_or_create(&dir, GenMethod::File).unwrap();
        assert!(second.generation > first.generation);
        assert_eq!(second.uuid, first.uuid);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generation_increases_and_uuid_is_stable() {
        let dir = std::env::temp_dir().join(format!("wb-ident-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = load_or_create(&dir, GenMethod::File).unwrap();
        let b = load_or_create(&dir, GenMethod::File).unwrap();
        assert_eq!(a.uuid, b.uuid);
        assert!(
            b.generation > a.generation,
            "{} then {}",
            a.generation,
            b.generation
        );
        assert_eq!(fs::read(dir.join(GENERATION_FILE)).unwrap().len(), 16);
        // heartbeat's own file format (right-aligned decimal) is read as-is.
        fs::write(dir.join(GENERATION_FILE), b"      4095554621").unwrap();
        assert_eq!(
            load_or_create(&dir, GenMethod::File).unwrap().generation,
            4095554622
        );
        // A generation behind the clock catches up with it.
        fs::write(dir.join(GENERATION_FILE), b"      1000").unwrap();
        let caught_up = load_or_create(&dir, GenMethod::File).unwrap().generation;
        assert!(
            caught_up >= super::super::environment::wall_secs() - 5,
            "{caught_up}"
        );
        fs::write(dir.join(UUID_FILE), b"short").unwrap();
        assert!(matches!(
            load_or_create(&dir, GenMethod::File),
            Err(IdentityError::BadUuid(_))
        ));
        fs::write(dir.join(UUID_FILE), [7u8; 16]).unwrap();
        fs::write(dir.join(GENERATION_FILE), b"garbage").unwrap();
        assert!(matches!(
            load_or_create(&dir, GenMethod::File),
            Err(IdentityError::BadGeneration(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! Where a daemon keeps its control socket and pid file: one directory per
//! configuration directory, so two daemons with different config dirs (the
//! demo's two nodes on one machine) never collide.

use std::path::{Path, PathBuf};

/// The default parent of per-config runtime directories.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/wasmbeat";

/// The runtime files of the daemon serving one configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// Directory holding the files below (mode 0700).
    pub dir: PathBuf,
    /// The control socket (mode 0600).
    pub socket: PathBuf,
    /// The pid file, locked while the daemon runs.
    pub pid_file: PathBuf,
}

impl RuntimePaths {
    /// Paths for `config_dir` under `runtime_dir` (default [`DEFAULT_RUNTIME_DIR`]).
    /// `/etc/ha.d` maps to the runtime dir itself; any other directory gets a
    /// sub-directory named after a hash of its absolute path (socket paths
    /// are limited to 107 bytes, so the path itself cannot be used).
    pub fn for_config_dir(config_dir: &Path, runtime_dir: Option<&Path>) -> RuntimePaths {
        let base = runtime_dir.unwrap_or(Path::new(DEFAULT_RUNTIME_DIR));
        let absolute =
            std::fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
        let dir = if absolute == Path::new("/etc/ha.d") {
            base.to_path_buf()
        } else {
            base.join(format!(
                "cfg-{:016x}",
                fnv1a(absolute.as_os_str().as_encoded_bytes())
            ))
        };
        RuntimePaths {
            socket: dir.join("control.sock"),
            pid_file: dir.join("wasmbeat.pid"),
            dir,
        }
    }
}

/// FNV-1a: a stable, dependency-free hash for naming directories (not security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_config_dirs_get_distinct_short_sockets() {
        let a = RuntimePaths::for_config_dir(Path::new("/tmp/a/ha.d"), None);
        let b = RuntimePaths::for_config_dir(Path::new("/tmp/b/ha.d"), None);
        assert_ne!(a.socket, b.socket);
        assert!(a.socket.as_os_str().len() < 100);
        let default = RuntimePaths::for_config_dir(Path::new("/etc/ha.d"), None);
        assert_eq!(default.socket, Path::new("/run/wasmbeat/control.sock"));
    }
}

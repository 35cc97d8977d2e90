//! The CLI side of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Request, Response};

/// Why a control command could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket file: the daemon for this config dir is not running.
    #[error("wasmbeat is not running for this configuration (no control socket at {0}); start it with `wasmbeat run`")]
    NotRunning(PathBuf),
    /// The socket exists but nobody listens (daemon crashed or was killed).
    #[error("wasmbeat is not running (stale control socket {0}, connection refused); start it with `wasmbeat run`")]
    Stale(PathBuf),
    /// Opening the socket was refused: it is root-only.
    #[error("permission denied on {0}; the control socket is root-only, run this as root")]
    Permission(PathBuf),
    /// Any other IO failure talking to the daemon.
    #[error("talking to wasmbeat over {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The daemon answered something that is not a response.
    #[error("malformed answer from wasmbeat over {path}: {source}")]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Send one request to the daemon listening on `socket` and wait (bounded)
/// for its response.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => ClientError::NotRunning(socket.to_path_buf()),
                std::io::ErrorKind::ConnectionRefused => ClientError::Stale(socket.to_path_buf()),
                std::io::ErrorKind::PermissionDenied => {
                    ClientError::Permission(socket.to_path_buf())
                }
                _ => io(e),
            })
        }
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(request.encode().as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|source| ClientError::Protocol {
        path: socket.to_path_buf(),
        source,
    })
}

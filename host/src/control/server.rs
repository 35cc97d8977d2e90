//! The daemon side of the control socket: accepts connections, reads one
//! request per line, hands it to the daemon loop and writes its answer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::protocol::MAX_REQUEST_LINE;
use super::{Request, Response};

/// A request waiting for the daemon loop, with the channel for its answer.
pub type Pending = (Request, oneshot::Sender<Response>);

/// Bind the control socket at `path` (replacing a stale one), root-only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    // The caller holds the pid-file lock, so a socket left here is stale.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serve connections forever, forwarding each request to `to_daemon`.
pub async fn serve(listener: UnixListener, to_daemon: mpsc::Sender<Pending>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, to_daemon.clone()));
            }
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(stream: UnixStream, to_daemon: mpsc::Sender<Pending>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_REQUEST_LINE as u64);
    let mut line = Vec::new();
    let response = match reader.read_until(b'\n', &mut line).await {
        Ok(0) => return,
        Ok(_) => match Request::decode(&line) {
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if to_daemon.send((request, tx)).await.is_err() {
                    Response::Error {
                        message: "daemon is shutting down".into(),
                    }
                } else {
                    rx.await.unwrap_or(Response::Error {
                        message: "daemon dropped the request (shutting down?)".into(),
                    })
                }
            }
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Err(e) => Response::Error {
            message: format!("reading control request: {e}"),
        },
    };
    let _ = write.write_all(response.encode().as_bytes()).await;
}

//! Health probes. Policy (which targets) is checked by `Caps`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::CapError;

/// Open a TCP connection to `target` within `timeout`; the connect time.
pub async fn tcp_connect(target: SocketAddr, timeout: Duration) -> Result<Duration, CapError> {
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
        Err(_) => Err(CapError::Timeout),
        Ok(Err(e)) => Err(CapError::Failed(format!("connect {target}: {e}"))),
        Ok(Ok(_stream)) => Ok(t0.elapsed()),
    }
}

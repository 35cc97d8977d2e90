//! Health probes against granted targets.

use std::net::SocketAddr;
use std::time::Duration;

use crate::bindings::wasmbeat::agent::probe as wit;
use crate::Error;

/// Connect over TCP to `target` within `timeout`; returns the connect time.
pub fn tcp_connect(target: SocketAddr, timeout: Duration) -> Result<Duration, Error> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    wit::tcp_connect(&target.to_string(), ms).map(Duration::from_micros)
}

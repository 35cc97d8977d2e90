//! Health probes against granted targets.

use std::net::SocketAddr;
use std::time::Duration;

use crate::bindings::wasmbeat::agent::probe as wit;
use crate::Error;

pub use wit::{DnsAnswer, MysqlGreeting};

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Connect over TCP to `target` within `timeout`; returns the connect time.
pub fn tcp_connect(target: SocketAddr, timeout: Duration) -> Result<Duration, Error> {
    wit::tcp_connect(&target.to_string(), ms(timeout)).map(Duration::from_micros)
}

/// `GET path` with `Host: host`; the response's status code.
pub fn http_get(
    target: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<u16, Error> {
    wit::http_get(&target.to_string(), host, path, ms(timeout))
}

/// DNS query type numbers.
pub mod qtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
}

/// One DNS query over UDP; any well-formed response is returned.
pub fn dns_query(
    target: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<DnsAnswer, Error> {
    wit::dns_query(&target.to_string(), name, qtype, ms(timeout))
}

/// The greeting of a MySQL/MariaDB server (no authentication).
pub fn mysql_handshake(target: SocketAddr, timeout: Duration) -> Result<MysqlGreeting, Error> {
    wit::mysql_handshake(&target.to_string(), ms(timeout))
}

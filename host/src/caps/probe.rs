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

/// Reject request paths that could smuggle a second request or header.
fn valid_http_path(path: &str) -> bool {
    path.starts_with('/') && path.len() <= 1024 && path.bytes().all(|b| b.is_ascii_graphic())
}

/// Reject Host values that are not a plain host name, address or `[v6]:port`.
fn valid_http_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// `GET path HTTP/1.0` to `target`; the response's status code.
pub async fn http_get(
    target: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<u16, CapError> {
    if !valid_http_path(path) {
        return Err(CapError::InvalidArgs(format!(
            "HTTP path {path:?} must start with '/' and hold only visible ASCII"
        )));
    }
    if !valid_http_host(host) {
        return Err(CapError::InvalidArgs(format!(
            "HTTP host {host:?} is not a host name or address"
        )));
    }
    let work = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| CapError::Failed(format!("connect {target}: {e}")))?;
        let req = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: wasmbeat-probe\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| CapError::Failed(format!("sending to {target}: {e}")))?;
        // Only the status line matters; read until its end (bounded).
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 1024 {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| CapError::Failed(format!("reading from {target}: {e}")))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse_status_line(&buf).ok_or_else(|| {
            let line = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
            CapError::Failed(format!(
                "{target} did not answer with an HTTP status line (got {line:?})"
            ))
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CapError::Timeout)?
}

/// `HTTP/1.x NNN ...` -> NNN.
fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..=999).contains(&code).then_some(code)
}

/// What a DNS server answered (see the WIT `dns-answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Response code.
    pub rcode: u8,
    /// AA flag.
    pub authoritative: bool,
    /// Answer-section record count.
    pub answers: u16,
}

/// Encode a DNS query for `name`/`qtype`, class IN, RD set.
fn dns_query_packet(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, CapError> {
    let bad = |why: &str| CapError::InvalidArgs(format!("DNS name {name:?}: {why}"));
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00]); // RD
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("labels must be 1-63 bytes"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("only letters, digits, '-' and '_' are allowed"));
            }
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
    }
    p.push(0);
    if p.len() - 12 > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]); // IN
    Ok(p)
}

/// Parse the header of a response to query `id`; None if it is not one.
fn parse_dns_response(id: u16, r: &[u8]) -> Option<DnsAnswer> {
    if r.len() < 12 || u16::from_be_bytes([r[0], r[1]]) != id || r[2] & 0x80 == 0 {
        return None;
    }
    Some(DnsAnswer {
        rcode: r[3] & 0x0f,
        authoritative: r[2] & 0x04 != 0,
        answers: u16::from_be_bytes([r[6], r[7]]),
    })
}

/// One DNS query over UDP to `target`; the header of the response.
pub async fn dns_query(
    target: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<DnsAnswer, CapError> {
    let id: u16 = rand::random();
    let q = dns_query_packet(id, name, qtype)?;
    let work = async {
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| CapError::Failed(format!("opening a UDP socket: {e}")))?;
        sock.connect(target)
            .await
            .map_err(|e| CapError::Failed(format!("connect {target}: {e}")))?;
        sock.send(&q)
            .await
            .map_err(|e| CapError::Failed(format!("sending to {target}: {e}")))?;
        let mut buf = [0u8; 1500];
        // Ignore stray datagrams; only the answer to our ID counts.
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| CapError::Failed(format!("no DNS answer from {target}: {e}")))?;
            if let Some(a) = parse_dns_response(id, &buf[..n]) {
                return Ok(a);
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CapError::Timeout)?
}

/// The first packet of a MySQL server (see the WIT `mysql-greeting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlGreeting {
    /// Protocol-10 handshake with the server version.
    Handshake(String),
    /// Error packet: code and message.
    Refused(u16, String),
}

/// Parse the payload of a server's first packet.
fn parse_mysql_greeting(payload: &[u8]) -> Result<MysqlGreeting, String> {
    match payload.first() {
        Some(10) => {
            let rest = &payload[1..];
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or("handshake without a terminated server version")?;
            Ok(MysqlGreeting::Handshake(
                String::from_utf8_lossy(&rest[..end]).into_owned(),
            ))
        }
        Some(0xff) if payload.len() >= 3 => {
            let code = u16::from_le_bytes([payload[1], payload[2]]);
            let mut msg = &payload[3..];
            // Protocol 4.1 error packets carry '#' and a 5-byte SQL state.
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            Ok(MysqlGreeting::Refused(
                code,
                String::from_utf8_lossy(msg).into_owned(),
            ))
        }
        Some(v) => Err(format!("unknown protocol version {v}")),
        None => Err("empty packet".into()),
    }
}

/// Read a MySQL server's greeting at `target`.
pub async fn mysql_handshake(
    target: SocketAddr,
    timeout: Duration,
) -> Result<MysqlGreeting, CapError> {
    let work = async {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| CapError::Failed(format!("connect {target}: {e}")))?;
        let mut head = [0u8; 4];
        s.read_exact(&mut head)
            .await
            .map_err(|e| CapError::Failed(format!("no MySQL greeting from {target}: {e}")))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        if len == 0 || len > 16 * 1024 {
            return Err(CapError::Failed(format!(
                "{target} sent a {len}-byte first packet: not a MySQL server"
            )));
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload)
            .await
            .map_err(|e| CapError::Failed(format!("short MySQL greeting from {target}: {e}")))?;
        parse_mysql_greeting(&payload)
            .map_err(|e| CapError::Failed(format!("{target}: not a MySQL greeting: {e}")))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CapError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 x\r\nA: b"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK\r\n"), None);
        assert!(!valid_http_path("/a b"));
        assert!(!valid_http_path("/a\r\nX: y"));
        assert!(!valid_http_path("a"));
        assert!(valid_http_path("/server-status?auto"));
        assert!(!valid_http_host("a\r\nb"));
        assert!(valid_http_host("[fd77::1]:80"));
    }

    #[test]
    fn dns_packets() {
        let q = dns_query_packet(0x1234, "www.example.test.", 1).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..16], &[3, b'w', b'w', b'w']);
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        let root = dns_query_packet(1, ".", 2).unwrap();
        assert_eq!(root.len(), 12 + 1 + 4);
        assert!(dns_query_packet(1, "a..b", 1).is_err());
        assert!(dns_query_packet(1, "a b", 1).is_err());
        assert!(dns_query_packet(1, &"x".repeat(64), 1).is_err());
        let mut r = q.clone();
        r[2] = 0x85; // QR, AA, RD
        r[3] = 0x83; // RA, NXDOMAIN
        r[7] = 2;
        assert_eq!(
            parse_dns_response(0x1234, &r),
            Some(DnsAnswer {
                rcode: 3,
                authoritative: true,
                answers: 2
            })
        );
        assert_eq!(parse_dns_response(0x1235, &r), None);
        assert_eq!(parse_dns_response(0x1234, &q), None, "a query is no answer");
    }

    #[test]
    fn mysql_greetings() {
        let mut p = vec![10];
        p.extend_from_slice(b"10.11.6-MariaDB-0+deb12u1\0rest");
        assert_eq!(
            parse_mysql_greeting(&p).unwrap(),
            MysqlGreeting::Handshake("10.11.6-MariaDB-0+deb12u1".into())
        );
        let mut e = vec![0xff, 0x6a, 0x04];
        e.extend_from_slice(b"Host 'x' is not allowed");
        assert_eq!(
            parse_mysql_greeting(&e).unwrap(),
            MysqlGreeting::Refused(1130, "Host 'x' is not allowed".into())
        );
        assert!(parse_mysql_greeting(b"\x09abc").is_err());
        assert!(parse_mysql_greeting(b"\x0aabc").is_err());
    }
}

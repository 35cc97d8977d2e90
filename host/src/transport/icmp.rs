//! The ping medium: ICMP / ICMPv6 echo requests to the ping nodes every
//! keepalive (heartbeat probes with each outgoing status), and their
//! replies handed to the heartbeat loop as "member X answered". Whether a
//! ping node is alive is the core's verdict, from those replies alone.
//!
//! Each address family gets one thread with a blocking socket and a
//! receive timeout: a send that fails (the uplink is down) or a reply that
//! never comes cannot delay a heartbeat, and the loop only ever receives
//! finished replies through a channel.
//!
//! Raw sockets, because the daemon runs as root and unprivileged ICMP
//! datagram sockets are off by default (`net.ipv4.ping_group_range = 1 0`);
//! if a raw socket is refused, the datagram kind is tried.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::mpsc;

/// Why the ping medium could not start.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// Neither a raw nor a datagram ICMP socket could be opened.
    #[error("cannot open an {family} socket for the ping nodes: {source}")]
    Socket {
        /// `ICMP` or `ICMPv6`.
        family: &'static str,
        /// The error of the raw socket.
        source: std::io::Error,
    },
}

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Start probing `members` (addresses as written in ha.cf) every
/// `interval`; each echo reply is sent on `replies` as the member's text.
/// The threads end when `replies` is closed.
pub fn start(
    members: &[String],
    interval: Duration,
    replies: mpsc::Sender<String>,
) -> Result<(), PingError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for m in members {
        match m.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V4(_)) => v4.push((ip, m.clone())),
            Ok(ip @ IpAddr::V6(_)) => v6.push((ip, m.clone())),
            // `check` warns about it; the ping node stays dead, as one
            // that never answers.
            Err(_) => tracing::warn!(
                "ping node {m:?} is not an IP address and is never probed (wasmbeat probes addresses, not host names): it will be declared dead"
            ),
        }
    }
    for (targets, v6) in [(v4, false), (v6, true)] {
        if targets.is_empty() {
            continue;
        }
        let (sock, raw) = open(v6)?;
        let tx = replies.clone();
        std::thread::Builder::new()
            .name(
                if v6 {
                    "wasmbeat-ping6"
                } else {
                    "wasmbeat-ping"
                }
                .into(),
            )
            .spawn(move || probe(sock, raw, v6, targets, interval, tx))
            .map_err(|source| PingError::Socket {
                family: family(v6),
                source,
            })?;
    }
    Ok(())
}

fn family(v6: bool) -> &'static str {
    if v6 {
        "ICMPv6"
    } else {
        "ICMP"
    }
}

fn open(v6: bool) -> Result<(Socket, bool), PingError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => Ok((s, true)),
        Err(raw_err) => Socket::new(domain, Type::DGRAM, Some(proto))
            .map(|s| (s, false))
            .map_err(|_| PingError::Socket {
                family: family(v6),
                source: raw_err,
            }),
    }
}

/// RFC 1071 checksum (ICMPv4; the kernel computes ICMPv6's).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"wasmbeat ping node probe");
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The ICMP message of a received datagram: raw IPv4 sockets deliver the
/// IP header too, IPv6 and datagram sockets do not.
fn icmp_part(buf: &[u8], raw: bool, v6: bool) -> Option<&[u8]> {
    if raw && !v6 {
        let ihl = usize::from(buf.first()? & 0x0f) * 4;
        buf.get(ihl..)
    } else {
        Some(buf)
    }
}

/// Whether `icmp` is a reply to one of our echoes (a datagram socket's
/// identifier is the kernel's choice, and it only delivers our own).
fn is_our_reply(icmp: &[u8], raw: bool, v6: bool, ident: u16) -> bool {
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    icmp.len() >= 8 && icmp[0] == want && (!raw || icmp[4..6] == ident.to_be_bytes())
}

fn probe(
    sock: Socket,
    raw: bool,
    v6: bool,
    targets: Vec<(IpAddr, String)>,
    interval: Duration,
    tx: mpsc::Sender<String>,
) {
    let ident = (std::process::id() & 0xffff) as u16;
    let mut seq: u16 = 0;
    let mut next = Instant::now();
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    // Send errors repeat every probe while an uplink is down: say it once
    // per target until a send works again.
    let mut failing = vec![false; targets.len()];
    tracing::info!(
        "probing ping node address(es) {} by {} echo every {:.1} s ({} socket)",
        targets
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        family(v6),
        interval.as_secs_f64(),
        if raw { "raw" } else { "datagram" }
    );
    loop {
        if tx.is_closed() {
            return;
        }
        let now = Instant::now();
        if now >= next {
            seq = seq.wrapping_add(1);
            let packet = echo(v6, ident, seq);
            for (i, (ip, member)) in targets.iter().enumerate() {
                let to = SockAddr::from(SocketAddr::new(*ip, 0));
                match sock.send_to(&packet, &to) {
                    Ok(_) if failing[i] => {
                        failing[i] = false;
                        tracing::info!("echo requests to ping node {member} can be sent again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing[i] => {
                        failing[i] = true;
                        tracing::warn!("cannot send an echo request to ping node {member}: {e}; it will be declared dead after deadping unless this clears");
                    }
                    Err(_) => {}
                }
            }
            next = now + interval;
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if sock.set_read_timeout(Some(wait)).is_err() {
            std::thread::sleep(wait);
            continue;
        }
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        // SAFETY: recv_from initialised the first `n` bytes.
        let data: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let Some(icmp) = icmp_part(data, raw, v6) else {
            continue;
        };
        if !is_our_reply(icmp, raw, v6, ident) {
            continue;
        }
        let Some(src) = from.as_socket().map(|a| a.ip()) else {
            continue;
        };
        if let Some((_, member)) = targets.iter().find(|(ip, _)| *ip == src) {
            // A full channel means the loop is busy; the next reply will do.
            let _ = tx.try_send(member.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_carry_a_valid_checksum_and_our_identifier() {
        let p = echo(false, 0x1234, 7);
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0, "a correct checksum sums to zero");
        assert_eq!(&p[4..6], &[0x12, 0x34]);
        assert_eq!(&p[6..8], &[0, 7]);
    }

    #[test]
    fn replies_are_recognised_by_type_and_identifier() {
        let mut reply = echo(false, 0x1234, 1);
        reply[0] = ECHO_REPLY_V4;
        assert!(is_our_reply(&reply, true, false, 0x1234));
        assert!(
            !is_our_reply(&reply, true, false, 0x4321),
            "someone else's ping"
        );
        assert!(
            !is_our_reply(&echo(false, 0x1234, 1), true, false, 0x1234),
            "a request"
        );
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&reply);
        assert_eq!(icmp_part(&ip, true, false), Some(&reply[..]));
    }

    #[test]
    fn host_names_are_skipped_without_opening_a_socket() {
        let (tx, _rx) = mpsc::channel(1);
        assert!(start(&["router.example".into()], Duration::from_secs(1), tx).is_ok());
    }
}

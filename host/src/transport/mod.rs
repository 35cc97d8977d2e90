//! The heartbeat media: `bcast`, `ucast`, `mcast` (UDP via socket2 on
//! tokio) and `serial` (termios). Every medium carries the same message;
//! [`Transport::send`] puts each packet on all of them (netstring on UDP,
//! classic text on serial, as heartbeat does) and [`Transport::recv`]
//! yields packets tagged with the medium index, which the
//! [`crate::wire::Endpoint`] uses for per-link up/down status.

pub mod peer;
pub mod realtime;
pub mod serial;
pub mod udp;

use crate::wire::OutPacket;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Heartbeat's default `udpport` (IANA ha-cluster).
pub const DEFAULT_UDPPORT: u16 = 694;
/// Heartbeat's default serial `baud`.
pub const DEFAULT_BAUD: u32 = 19200;

/// One medium line of ha.cf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediumSpec {
    /// `bcast IFACE`: UDP to the interface's broadcast address on udpport.
    Bcast {
        /// Interface name.
        iface: String,
    },
    /// `ucast IFACE PEER`: UDP to one peer on udpport.
    Ucast {
        /// Interface name.
        iface: String,
        /// Peer address.
        peer: IpAddr,
    },
    /// `mcast IFACE GROUP PORT TTL LOOP`.
    Mcast {
        /// Interface name.
        iface: String,
        /// IPv4 multicast group.
        group: Ipv4Addr,
        /// UDP port (not udpport).
        port: u16,
        /// Multicast TTL (heartbeat accepts 0..=4).
        ttl: u8,
        /// Loop own packets back.
        loopback: bool,
    },
    /// `serial DEVICE` at `baud`.
    Serial {
        /// TTY device path.
        device: PathBuf,
        /// Line speed.
        baud: u32,
    },
}

impl MediumSpec {
    /// The link name heartbeat shows (`cl_status listhblinks`): the
    /// interface for UDP media, the device path for serial.
    pub fn link_name(&self) -> String {
        match self {
            MediumSpec::Bcast { iface }
            | MediumSpec::Ucast { iface, .. }
            | MediumSpec::Mcast { iface, .. } => iface.clone(),
            MediumSpec::Serial { device, .. } => device.display().to_string(),
        }
    }
}

/// Errors opening or using a medium.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Interface missing or without the needed address.
    #[error("interface {iface}: {why}")]
    Interface {
        /// Interface name.
        iface: String,
        /// What is wrong.
        why: String,
    },
    /// Socket setup failed.
    #[error("{medium}: {op}: {source}")]
    Socket {
        /// Medium description.
        medium: String,
        /// Failing operation.
        op: &'static str,
        /// OS error.
        source: std::io::Error,
    },
    /// Serial device setup failed.
    #[error("serial {device}: {why}")]
    Serial {
        /// Device path.
        device: String,
        /// What failed.
        why: String,
    },
    /// Invalid medium description.
    #[error("bad medium spec {0:?}")]
    BadSpec(String),
}

/// A received packet.
#[derive(Debug)]
pub struct Inbound {
    /// Index of the medium (order of the specs).
    pub link: usize,
    /// The raw packet.
    pub data: Vec<u8>,
    /// UDP source address, if any.
    pub from: Option<SocketAddr>,
}

enum Sender {
    Udp(Arc<tokio::net::UdpSocket>, SocketAddr),
    Serial(mpsc::Sender<Arc<[u8]>>),
}

/// All configured media of one node.
pub struct Transport {
    names: Vec<String>,
    senders: Vec<Sender>,
    send_errors: Vec<Arc<AtomicU64>>,
    rx: mpsc::Receiver<Inbound>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    udp_classic: bool,
}

impl Drop for Transport {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Transport {
    /// Open every medium (must run inside a tokio runtime).
    pub async fn open(specs: &[MediumSpec], udpport: u16) -> Result<Transport, TransportError> {
        let (tx, rx) = mpsc::channel(1024);
        let mut t = Transport {
            names: Vec::new(),
            senders: Vec::new(),
            send_errors: Vec::new(),
            rx,
            tasks: Vec::new(),
            udp_classic: false,
        };
        for (link, spec) in specs.iter().enumerate() {
            t.names.push(spec.link_name());
            t.send_errors.push(Arc::new(AtomicU64::new(0)));
            match spec {
                MediumSpec::Serial { device, baud } => {
                    let (sender, tasks) = serial::open(device, *baud, link, tx.clone())?;
                    t.senders.push(Sender::Serial(sender));
                    t.tasks.extend(tasks);
                }
                udp_spec => {
                    let m = udp::open(udp_spec, udpport)?;
                    let recv = Arc::new(m.recv);
                    let tx = tx.clone();
                    t.tasks
                        .push(tokio::spawn(udp::receive_loop(recv, link, tx)));
                    t.senders.push(Sender::Udp(Arc::new(m.send), m.dest));
                }
            }
            tracing::info!(link, medium = ?spec, "medium open");
        }
        Ok(t)
    }

    /// Send the classic text form on UDP media too, as heartbeat before
    /// cluster-glue 1.0.10 did (default: netstring, like stock 3.0.6).
    pub fn set_udp_classic(&mut self, classic: bool) {
        self.udp_classic = classic;
    }

    /// Link names, indexed like [`Inbound::link`].
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Send one packet on every medium. A failing medium is logged and
    /// counted, never fatal: the others still carry the heartbeat.
    pub async fn send(&self, pkt: &OutPacket) {
        for (i, s) in self.senders.iter().enumerate() {
            let r = match s {
                Sender::Udp(sock, dest) => {
                    let bytes = if self.udp_classic {
                        &pkt.classic
                    } else {
                        &pkt.netstring
                    };
                    sock.send_to(bytes, *dest).await.map(|_| ())
                }
                Sender::Serial(q) => {
                    // No trailing NUL on a serial line: heartbeat's reader
                    // wants `>>>` alone on a line, and a NUL before the next
                    // message's `>>>` makes it skip that message.
                    let text: Arc<[u8]> = match pkt.classic.strip_suffix(b"\0") {
                        Some(t) => t.into(),
                        None => pkt.classic.clone(),
                    };
                    q.try_send(text)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                }
            };
            if let Err(e) = r {
                let n = self.send_errors[i].fetch_add(1, Ordering::Relaxed) + 1;
                // A dead medium fails every keepalive; warn on the 1st, 2nd,
                // 4th, 8th... error instead of flooding the log.
                if n.is_power_of_two() {
                    tracing::warn!(link = %self.names[i], error = %e, errors = n, "write error on medium");
                } else {
                    tracing::debug!(link = %self.names[i], error = %e, t = %pkt.msg_type, "write error on medium");
                }
            }
        }
    }

    /// Next received packet from any medium.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv().await
    }

    /// Write errors per medium.
    pub fn send_errors(&self) -> Vec<u64> {
        self.send_errors
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

impl std::str::FromStr for MediumSpec {
    type Err = TransportError;

    /// Parse the ha.cf forms `bcast eth0`, `ucast eth0 10.0.0.2`,
    /// `mcast eth0 239.0.0.1 694 1 0`, `serial /dev/ttyS0 [baud]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TransportError::BadSpec(s.to_string());
        let w: Vec<&str> = s.split_whitespace().collect();
        match w.as_slice() {
            ["bcast", iface] => Ok(MediumSpec::Bcast {
                iface: iface.to_string(),
            }),
            ["ucast", iface, peer] => Ok(MediumSpec::Ucast {
                iface: iface.to_string(),
                peer: peer.parse().map_err(|_| bad())?,
            }),
            ["mcast", iface, group, port, ttl, lp] => {
                let group: Ipv4Addr = group.parse().map_err(|_| bad())?;
                let ttl: u8 = ttl.parse().map_err(|_| bad())?;
                if !group.is_multicast() || ttl > 4 {
                    return Err(bad());
                }
                Ok(MediumSpec::Mcast {
                    iface: iface.to_string(),
                    group,
                    port: port.parse().map_err(|_| bad())?,
                    ttl,
                    loopback: match *lp {
                        "0" => false,
                        "1" => true,
                        _ => return Err(bad()),
                    },
                })
            }
            ["serial", dev] => Ok(MediumSpec::Serial {
                device: dev.into(),
                baud: DEFAULT_BAUD,
            }),
            ["serial", dev, baud] => Ok(MediumSpec::Serial {
                device: dev.into(),
                baud: baud.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_medium_lines() {
        assert_eq!(
            "mcast eth0 239.0.0.1 694 1 0"
                .parse::<MediumSpec>()
                .unwrap(),
            MediumSpec::Mcast {
                iface: "eth0".into(),
                group: "239.0.0.1".parse().unwrap(),
                port: 694,
                ttl: 1,
                loopback: false
            }
        );
        assert!("mcast eth0 10.0.0.1 694 1 0".parse::<MediumSpec>().is_err());
        assert!("mcast eth0 239.0.0.1 694 5 0"
            .parse::<MediumSpec>()
            .is_err());
        assert!("ucast eth0 nothost".parse::<MediumSpec>().is_err());
        assert_eq!(
            "serial /dev/ttyS0"
                .parse::<MediumSpec>()
                .unwrap()
                .link_name(),
            "/dev/ttyS0"
        );
    }
}

//! The heartbeat media: `bcast`, `ucast`, `mcast` (UDP via socket2 on
//! tokio) and `serial` (termios). Every medium carries the same message;
//! [`Transport::send`] puts each packet on all of them (netstring on UDP,
//! classic text on serial, as heartbeat does) and [`Transport::recv`]
//! yields packets tagged with the medium index, which the
//! [`crate::wire::Endpoint`] uses for per-link up/down status.

pub mod carrier;
pub mod icmp;
mod medium_errors;
mod own_echo;
pub mod realtime;
pub mod serial;
pub mod udp;

use crate::config::Medium;
use crate::wire::OutPacket;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use medium_errors::MediumErrors;

/// The link name heartbeat shows (`cl_status listhblinks`): the interface
/// for UDP media, the device path for serial.
pub fn link_name(medium: &Medium) -> String {
    match medium {
        Medium::Bcast { iface, .. } | Medium::Ucast { iface, .. } | Medium::Mcast { iface, .. } => {
            iface.clone()
        }
        Medium::Serial { device, .. } => device.clone(),
    }
}

/// The label the daemon shows for a link: the medium kind, the link name
/// and, for ucast/mcast, the peer or group (`bcast eth0`, `ucast eth0 10.0.0.2`).
pub fn medium_label(medium: &Medium) -> String {
    let name = link_name(medium);
    let kw = medium.keyword();
    match medium {
        Medium::Bcast { .. } | Medium::Serial { .. } => format!("{kw} {name}"),
        Medium::Ucast { peer, .. } => format!("{kw} {name} {peer}"),
        Medium::Mcast { group, .. } => format!("{kw} {name} {group}"),
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
    /// Socket setup failed. The medium is not repeated in the message:
    /// [`OpenError`] already names it.
    #[error("{op}: {source}")]
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

/// Media that could not be opened, each with why. heartbeat refuses to
/// start when any medium fails to open (`initialize_heartbeat` stops at the
/// first `make_io_childpair` failure); wasmbeat refuses too, but tries
/// every medium first so one start names all that need fixing. Refusing
/// matters most when none opens: such a node would hear nobody, declare
/// its peer dead after initdead and take every group (split brain by
/// configuration).
#[derive(Debug)]
pub struct OpenError {
    /// Each failing medium's label (`ucast6 eth0 fe80::2`) and error.
    pub failed: Vec<(String, TransportError)>,
    /// How many media ha.cf lists.
    pub total: usize,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.failed.len() == self.total {
            write!(
                f,
                "none of the {} heartbeat media in ha.cf can be opened; refusing to start a node that would hear nobody and take every group after initdead:",
                self.total
            )?;
        } else {
            write!(
                f,
                "{} of the {} heartbeat media in ha.cf cannot be opened; refusing to start (heartbeat refuses too):",
                self.failed.len(),
                self.total
            )?;
        }
        for (label, e) in &self.failed {
            write!(f, "\n  {label}: {e}")?;
        }
        write!(f, "\nfix the interface or device named above (`ip link`, `ip addr`), or remove that medium from ha.cf")
    }
}

impl std::error::Error for OpenError {}

/// A received packet.
#[derive(Debug)]
pub struct Inbound {
    /// Index of the medium (order of the media).
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
    senders: Vec<Sender>,
    /// Each medium's failures, indexed like [`Inbound::link`].
    errors: Vec<Arc<MediumErrors>>,
    /// UDP receive sockets with their medium index, read by [`Self::recv`]
    /// itself: a packet wakes the loop that handles it, with no task and
    /// channel between them (the idle daemon's every keepalive).
    udp_recv: Vec<(usize, tokio::net::UdpSocket)>,
    /// Where the next [`Self::recv`] starts looking (see `poll_recv`).
    next_rx: usize,
    /// One byte more than MAXMSG, so an oversized datagram stays
    /// detectably oversized instead of being truncated to a valid length.
    buf: Vec<u8>,
    /// Serial media's packets (their reader tasks frame the byte stream).
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
    /// Open every medium (must run inside a tokio runtime). UDP media use
    /// the port each ha.cf line recorded (the `udpport` in effect there).
    pub async fn open(media: &[Medium]) -> Result<Transport, OpenError> {
        let (tx, rx) = mpsc::channel(1024);
        let mut t = Transport {
            senders: Vec::new(),
            errors: Vec::new(),
            udp_recv: Vec::new(),
            next_rx: 0,
            buf: vec![0u8; crate::wire::codec::MAXMSG + 1],
            rx,
            tasks: Vec::new(),
            udp_classic: false,
        };
        let mut failed = Vec::new();
        for (link, spec) in media.iter().enumerate() {
            let errors = Arc::new(MediumErrors::new(medium_label(spec)));
            t.errors.push(Arc::clone(&errors));
            let opened = match spec {
                Medium::Serial { device, baud } => {
                    serial::open(Path::new(device), *baud, link, tx.clone(), errors).map(
                        |(sender, tasks)| {
                            t.senders.push(Sender::Serial(sender));
                            t.tasks.extend(tasks);
                        },
                    )
                }
                udp_spec => udp::open(udp_spec).map(|m| {
                    t.udp_recv.push((link, m.recv));
                    t.senders.push(Sender::Udp(Arc::new(m.send), m.dest));
                }),
            };
            match opened {
                Ok(()) => tracing::info!(link, medium = %medium_label(spec), "medium open"),
                Err(e) => failed.push((medium_label(spec), e)),
            }
        }
        if !failed.is_empty() {
            // Dropping `t` aborts the receive tasks of the media that did open.
            return Err(OpenError {
                failed,
                total: media.len(),
            });
        }
        Ok(t)
    }

    /// Send the classic text form on UDP media too, as heartbeat before
    /// cluster-glue 1.0.10 did (default: netstring, like stock 3.0.6).
    pub fn set_udp_classic(&mut self, classic: bool) {
        self.udp_classic = classic;
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
                self.errors[i].on_send_error(&e, &pkt.msg_type);
            }
        }
    }

    /// Next received packet from any medium. Cancel-safe: a packet is
    /// taken off its socket only when it is returned.
    pub async fn recv(&mut self) -> Option<Inbound> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll the UDP sockets and the serial media's channel in turn, from
    /// where the last packet came from on, so a flooded medium cannot
    /// starve the others.
    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Inbound>> {
        use std::task::Poll;
        // Slot n is the serial media's channel.
        let n = self.udp_recv.len();
        for i in 0..=n {
            let at = (self.next_rx + i) % (n + 1);
            let got = if at == n {
                match self.rx.poll_recv(cx) {
                    Poll::Ready(Some(p)) => Some(p),
                    // No serial media (or they ended): nothing to wait for.
                    Poll::Ready(None) | Poll::Pending => None,
                }
            } else {
                self.poll_udp(at, cx)
            };
            if let Some(p) = got {
                self.next_rx = (at + 1) % (n + 1);
                return Poll::Ready(Some(p));
            }
        }
        Poll::Pending
    }

    /// One datagram from UDP socket `at`, or None with its waker registered.
    fn poll_udp(&mut self, at: usize, cx: &mut std::task::Context<'_>) -> Option<Inbound> {
        let (link, sock) = &self.udp_recv[at];
        // An error (an ICMP error queued on the socket) is consumed by the
        // call that reports it: try again, boundedly, until a datagram or
        // WouldBlock (which registers the waker).
        for _ in 0..4 {
            let mut buf = tokio::io::ReadBuf::new(&mut self.buf);
            match sock.poll_recv_from(cx, &mut buf) {
                std::task::Poll::Ready(Ok(from)) => {
                    return Some(Inbound {
                        link: *link,
                        data: buf.filled().to_vec(),
                        from: Some(from),
                    })
                }
                std::task::Poll::Ready(Err(e)) => self.errors[*link].on_receive_error(&e),
                std::task::Poll::Pending => return None,
            }
        }
        // Still failing: no waker is registered for this socket, so it is
        // read again at the loop's next turn (its next deadline, at most
        // MAX_SLEEP away), where the old receive task slept 100 ms.
        None
    }

    /// Each medium's error counts, indexed like [`Inbound::link`]: live
    /// handles, for `status` and the metrics to read when asked.
    pub fn errors(&self) -> Vec<Arc<MediumErrors>> {
        self.errors.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Free UDP ports on loopback (bound, then released).
    fn free_ports() -> (u16, u16) {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        )
    }

    /// The loop reads the sockets itself: every medium's packets come out
    /// tagged with its index, whole, and a flooded medium does not hold
    /// back the other one.
    #[tokio::test(flavor = "current_thread")]
    async fn packets_come_from_every_medium_and_a_flood_starves_none() {
        // SO_BINDTODEVICE needs root, as the daemon does.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (p0, p1) = free_ports();
        let lo = |port| Medium::Ucast {
            iface: "lo".into(),
            peer: "127.0.0.1".parse().unwrap(),
            port,
        };
        let mut t = Transport::open(&[lo(p0), lo(p1)]).await.expect("open");
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50u8 {
            peer.send_to(&[i; 300], ("127.0.0.1", p0)).unwrap();
        }
        peer.send_to(b"other medium", ("127.0.0.1", p1)).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let p = tokio::time::timeout(std::time::Duration::from_secs(5), t.recv())
                .await
                .expect("a packet within 5 s")
                .expect("media open");
            got.push((p.link, p.data));
        }
        assert_eq!(got[0], (0, vec![0; 300]), "the first datagram, whole");
        assert!(
            got.iter()
                .any(|(link, d)| *link == 1 && d == b"other medium"),
            "medium 1's packet waited behind medium 0's flood: {:?}",
            got.iter().map(|(l, d)| (l, d.len())).collect::<Vec<_>>()
        );
    }

    #[test]
    fn labels_and_ipv6_refusal() {
        let bcast = Medium::Bcast {
            iface: "eth0".into(),
            port: 694,
        };
        assert_eq!(link_name(&bcast), "eth0");
        assert_eq!(medium_label(&bcast), "bcast eth0");
        let serial = Medium::Serial {
            device: "/dev/ttyS0".into(),
            baud: 19200,
        };
        assert_eq!(link_name(&serial), "/dev/ttyS0");
        assert_eq!(medium_label(&serial), "serial /dev/ttyS0");
        let ucast = Medium::Ucast {
            iface: "eth0".into(),
            peer: "10.0.0.2".parse().unwrap(),
            port: 694,
        };
        assert_eq!(medium_label(&ucast), "ucast eth0 10.0.0.2");
        let mcast6 = Medium::Mcast {
            iface: "eth0".into(),
            group: "ff02::77".parse().unwrap(),
            port: 694,
            ttl: 1,
            loop_: false,
        };
        assert_eq!(medium_label(&mcast6), "mcast6 eth0 ff02::77");
        let ucast6 = Medium::Ucast {
            iface: "eth0".into(),
            peer: "fd77::2".parse().unwrap(),
            port: 694,
        };
        assert_eq!(medium_label(&ucast6), "ucast6 eth0 fd77::2");
    }
}

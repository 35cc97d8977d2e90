//! Our own broadcast heartbeats, dropped in the kernel.
//!
//! Linux loops every IPv4 broadcast back to the sender's host
//! (`ip_mc_output` clones it for local delivery, whatever
//! IP_MULTICAST_LOOP says), so a bcast medium's receive socket gets each
//! heartbeat this node sends: with a 50 ms keepalive, 20 packets a second
//! that were read, decoded, HMAC-checked and only then dropped as our own.
//! A socket filter on the receive socket discards them before they are
//! queued: the packets whose source is exactly our send socket (its port
//! and the interface address it sends from). A peer never sends from our
//! address, so nothing else matches; if the address changes, our echoes
//! get through again and the core drops them as before.

use std::io;
use std::net::SocketAddrV4;

use socket2::{SockFilter, Socket};

/// `SKF_NET_OFF` (linux/filter.h): loads relative to the network header.
const SKF_NET_OFF: i32 = -0x100000;
/// Offset of the source address in the IPv4 header.
const IPV4_SRC: i32 = 12;

/// One classic BPF instruction.
fn insn(code: u32, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter::new(code as u16, jt, jf, k)
}

/// The program: drop UDP datagrams from `from`, accept everything else.
/// A UDP socket's filter sees the packet from the UDP header on.
fn program(from: SocketAddrV4) -> [SockFilter; 6] {
    use libc::{BPF_ABS, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let accept = u32::MAX;
    [
        // A = source port
        insn(BPF_LD | BPF_H | BPF_ABS, 0, 0, 0),
        // not ours: accept (jump to insn 5)
        insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, u32::from(from.port())),
        // A = IPv4 source address
        insn(
            BPF_LD | BPF_W | BPF_ABS,
            0,
            0,
            (SKF_NET_OFF + IPV4_SRC) as u32,
        ),
        // ours: drop; else accept
        insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, u32::from(*from.ip())),
        insn(BPF_RET | BPF_K, 0, 0, 0),
        insn(BPF_RET | BPF_K, 0, 0, accept),
    ]
}

/// Attach the filter dropping datagrams sent from `from` to `recv`.
pub fn drop_echoes_of(recv: &Socket, from: SocketAddrV4) -> io::Result<()> {
    recv.attach_filter(&program(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    /// On loopback: datagrams from the filtered socket vanish, those from
    /// another port of the same address, and from another address, arrive.
    #[test]
    fn only_the_send_sockets_own_datagrams_are_dropped() {
        let recv = UdpSocket::bind("127.0.0.1:0").unwrap();
        recv.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = recv.local_addr().unwrap();
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other_port = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other_addr = UdpSocket::bind("127.0.0.2:0").unwrap();
        let std::net::SocketAddr::V4(from) = ours.local_addr().unwrap() else {
            unreachable!()
        };
        drop_echoes_of(&socket2::SockRef::from(&recv), from).unwrap();
        ours.send_to(b"echo", to).unwrap();
        other_port.send_to(b"port", to).unwrap();
        // Same port number on another address: not ours.
        let same_port_elsewhere = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 3), from.port()));
        other_addr.send_to(b"addr", to).unwrap();
        if let Ok(s) = &same_port_elsewhere {
            s.send_to(b"twin", to).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        let want = if same_port_elsewhere.is_ok() { 3 } else { 2 };
        while got.len() < want {
            let (n, _) = recv
                .recv_from(&mut buf)
                .expect("a datagram that is not ours");
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert!(!got.contains(&"echo".to_string()), "{got:?}");
        recv.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(
            recv.recv_from(&mut buf).is_err(),
            "our own datagram was delivered after the others"
        );
    }
}

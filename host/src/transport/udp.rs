//! UDP media with the socket options heartbeat's bcast/ucast/mcast plugins
//! use (spec §5.1): a receive socket bound to the port (and device), and a
//! separate send socket.

use super::TransportError;
use crate::config::Medium;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::net::UdpSocket;

/// An opened UDP medium.
pub struct UdpMedium {
    /// Socket packets are sent from.
    pub send: UdpSocket,
    /// Socket packets are received on.
    pub recv: UdpSocket,
    /// Where packets go.
    pub dest: SocketAddr,
}

/// IPv4 address and broadcast address of an interface.
pub fn iface_v4(iface: &str) -> Result<(Ipv4Addr, Option<Ipv4Addr>), TransportError> {
    let err = |why: &str| TransportError::Interface {
        iface: iface.to_string(),
        why: why.to_string(),
    };
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| err(&e.to_string()))?;
    for a in addrs.filter(|a| a.interface_name == iface) {
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            let brd = a
                .broadcast
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|b| b.ip());
            return Ok((sin.ip(), brd));
        }
    }
    Err(err("no IPv4 address (missing interface?)"))
}

/// Refuse an IPv6 medium on an interface without any IPv6 address (IPv6
/// disabled on it, or not configured yet): its sockets would open and
/// every send fail, leaving the node deaf on that medium.
fn require_v6(iface: &str) -> Result<(), TransportError> {
    let err = |why: String| TransportError::Interface {
        iface: iface.to_string(),
        why,
    };
    let mut addrs = nix::ifaddrs::getifaddrs().map_err(|e| err(e.to_string()))?;
    if addrs.any(|a| {
        a.interface_name == iface
            && a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in6())
                .is_some()
    }) {
        Ok(())
    } else {
        Err(err(
            "no IPv6 address (is IPv6 disabled on it? see sysctl net.ipv6.conf.<iface>.disable_ipv6)"
                .into(),
        ))
    }
}

/// Where bcast heartbeats go: the interface's broadcast address, or the
/// link's limited broadcast when it has none. `ip addr add A/N dev D`
/// without `brd +` leaves none, and getifaddrs then reports the
/// interface's own address: sending there (as heartbeat does with the
/// 0.0.0.0 it gets) reaches only this host, so both nodes would go active.
fn bcast_destination(iface: &str, addr: Ipv4Addr, brd: Option<Ipv4Addr>) -> Ipv4Addr {
    match brd {
        Some(b) if b != addr && !b.is_unspecified() => b,
        _ => {
            tracing::warn!(
                "{iface} has no broadcast address; sending bcast heartbeats to 255.255.255.255 on {iface} \
                 (give {addr} one with `ip addr ... brd +` to use the subnet's)"
            );
            Ipv4Addr::BROADCAST
        }
    }
}

fn sock_err<'a>(
    medium: &'a Medium,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> TransportError + 'a {
    move |source| TransportError::Socket {
        medium: super::medium_label(medium),
        op,
        source,
    }
}

fn udp_socket(spec: &Medium) -> Result<Socket, TransportError> {
    udp_socket_in(spec, Domain::IPV4)
}

fn udp_socket_in(spec: &Medium, domain: Domain) -> Result<Socket, TransportError> {
    let s =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(sock_err(spec, "socket"))?;
    s.set_nonblocking(true)
        .map_err(sock_err(spec, "O_NONBLOCK"))?;
    if domain == Domain::IPV6 {
        // IPv6 media carry IPv6 only; an IPv4 medium on the same port has
        // its own socket.
        s.set_only_v6(true).map_err(sock_err(spec, "IPV6_V6ONLY"))?;
    }
    Ok(s)
}

/// The interface index, for IPv6 scopes and multicast.
fn iface_index(iface: &str) -> Result<u32, TransportError> {
    nix::net::if_::if_nametoindex(iface).map_err(|e| TransportError::Interface {
        iface: iface.to_string(),
        why: format!("no such interface ({e})"),
    })
}

/// Link-local (fe80::/10) and multicast link-scope addresses need the
/// interface as their scope; heartbeat's ucast6 takes it from the line's
/// interface too.
fn scope_for(addr: &Ipv6Addr, index: u32) -> u32 {
    let link_local = (addr.segments()[0] & 0xffc0) == 0xfe80;
    let mcast_link = addr.is_multicast() && (addr.segments()[0] & 0x000f) <= 2;
    if link_local || mcast_link {
        index
    } else {
        0
    }
}

fn into_tokio(spec: &Medium, s: Socket) -> Result<UdpSocket, TransportError> {
    UdpSocket::from_std(s.into()).map_err(sock_err(spec, "register with tokio"))
}

fn set_dontroute(spec: &Medium, s: &Socket) -> Result<(), TransportError> {
    let on: libc::c_int = 1;
    // SAFETY: plain setsockopt on a valid fd with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DONTROUTE,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(sock_err(spec, "SO_DONTROUTE")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Bound to 0.0.0.0:port (or [::]:port) on the device, as heartbeat's
/// bcast/ucast readers.
fn port_listener(
    spec: &Medium,
    iface: &str,
    port: u16,
    reuse_port: bool,
) -> Result<Socket, TransportError> {
    port_listener_in(spec, iface, port, reuse_port, Domain::IPV4)
}

fn port_listener_in(
    spec: &Medium,
    iface: &str,
    port: u16,
    reuse_port: bool,
    domain: Domain,
) -> Result<Socket, TransportError> {
    let r = udp_socket_in(spec, domain)?;
    r.set_reuse_address(true)
        .map_err(sock_err(spec, "SO_REUSEADDR"))?;
    if reuse_port {
        match r.set_reuse_port(true) {
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
            other => other.map_err(sock_err(spec, "SO_REUSEPORT"))?,
        }
    }
    r.bind_device(Some(iface.as_bytes()))
        .map_err(sock_err(spec, "SO_BINDTODEVICE"))?;
    let any: SocketAddr = if domain == Domain::IPV6 {
        SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into()
    } else {
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into()
    };
    r.bind(&SockAddr::from(any))
        .map_err(sock_err(spec, "bind"))?;
    Ok(r)
}

/// Open a bcast/ucast/mcast medium.
pub fn open(spec: &Medium) -> Result<UdpMedium, TransportError> {
    match spec {
        Medium::Bcast { iface, port } => {
            let (addr, brd) = iface_v4(iface)?;
            let brd = bcast_destination(iface, addr, brd);
            let recv = port_listener(spec, iface, *port, false)?;
            let send = udp_socket(spec)?;
            send.set_broadcast(true)
                .map_err(sock_err(spec, "SO_BROADCAST"))?;
            set_dontroute(spec, &send)?;
            send.bind_device(Some(iface.as_bytes()))
                .map_err(sock_err(spec, "SO_BINDTODEVICE"))?;
            // A port of its own now, so the receive socket can tell our
            // looped-back broadcasts by it (see own_echo).
            send.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
                .map_err(sock_err(spec, "bind"))?;
            match send.local_addr().ok().and_then(|a| a.as_socket_ipv4()) {
                Some(local) => {
                    let ours = SocketAddrV4::new(addr, local.port());
                    if let Err(e) = super::own_echo::drop_echoes_of(&recv, ours) {
                        tracing::debug!(%iface, error = %e, "own broadcasts are not filtered in the kernel");
                    }
                }
                None => tracing::debug!(%iface, "send socket has no local port"),
            }
            Ok(UdpMedium {
                send: into_tokio(spec, send)?,
                recv: into_tokio(spec, recv)?,
                dest: SocketAddr::new(brd.into(), *port),
            })
        }
        Medium::Ucast {
            iface,
            peer: peer @ IpAddr::V4(_),
            port,
        } => {
            let recv = port_listener(spec, iface, *port, true)?;
            let send = udp_socket(spec)?;
            // IPTOS_LOWDELAY, as heartbeat's ucast writer.
            send.set_tos_v4(0x10).map_err(sock_err(spec, "IP_TOS"))?;
            send.bind_device(Some(iface.as_bytes()))
                .map_err(sock_err(spec, "SO_BINDTODEVICE"))?;
            Ok(UdpMedium {
                send: into_tokio(spec, send)?,
                recv: into_tokio(spec, recv)?,
                dest: SocketAddr::new(*peer, *port),
            })
        }
        Medium::Mcast {
            iface,
            group: IpAddr::V4(group),
            port,
            ttl,
            loop_,
        } => {
            let (addr, _) = iface_v4(iface)?;
            let recv = udp_socket(spec)?;
            recv.set_reuse_address(true)
                .map_err(sock_err(spec, "SO_REUSEADDR"))?;
            recv.bind(&SockAddr::from(SocketAddrV4::new(*group, *port)))
                .map_err(sock_err(spec, "bind"))?;
            recv.join_multicast_v4(group, &addr)
                .map_err(sock_err(spec, "IP_ADD_MEMBERSHIP"))?;
            let send = udp_socket(spec)?;
            send.set_multicast_if_v4(&addr)
                .map_err(sock_err(spec, "IP_MULTICAST_IF"))?;
            send.set_multicast_ttl_v4(*ttl as u32)
                .map_err(sock_err(spec, "IP_MULTICAST_TTL"))?;
            send.set_multicast_loop_v4(*loop_)
                .map_err(sock_err(spec, "IP_MULTICAST_LOOP"))?;
            Ok(UdpMedium {
                send: into_tokio(spec, send)?,
                recv: into_tokio(spec, recv)?,
                dest: SocketAddr::new((*group).into(), *port),
            })
        }
        Medium::Ucast {
            iface,
            peer: IpAddr::V6(peer),
            port,
        } => {
            let index = iface_index(iface)?;
            require_v6(iface)?;
            let recv = port_listener_in(spec, iface, *port, true, Domain::IPV6)?;
            let send = udp_socket_in(spec, Domain::IPV6)?;
            // Low-delay traffic class, as IPTOS_LOWDELAY on IPv4.
            send.set_tclass_v6(0x10)
                .map_err(sock_err(spec, "IPV6_TCLASS"))?;
            send.bind_device(Some(iface.as_bytes()))
                .map_err(sock_err(spec, "SO_BINDTODEVICE"))?;
            Ok(UdpMedium {
                send: into_tokio(spec, send)?,
                recv: into_tokio(spec, recv)?,
                dest: SocketAddrV6::new(*peer, *port, 0, scope_for(peer, index)).into(),
            })
        }
        Medium::Mcast {
            iface,
            group: IpAddr::V6(group),
            port,
            ttl,
            loop_,
        } => {
            let index = iface_index(iface)?;
            require_v6(iface)?;
            let recv = port_listener_in(spec, iface, *port, true, Domain::IPV6)?;
            recv.join_multicast_v6(group, index)
                .map_err(sock_err(spec, "IPV6_ADD_MEMBERSHIP"))?;
            let send = udp_socket_in(spec, Domain::IPV6)?;
            send.set_multicast_if_v6(index)
                .map_err(sock_err(spec, "IPV6_MULTICAST_IF"))?;
            send.set_multicast_hops_v6(u32::from(*ttl))
                .map_err(sock_err(spec, "IPV6_MULTICAST_HOPS"))?;
            send.set_multicast_loop_v6(*loop_)
                .map_err(sock_err(spec, "IPV6_MULTICAST_LOOP"))?;
            Ok(UdpMedium {
                send: into_tokio(spec, send)?,
                recv: into_tokio(spec, recv)?,
                dest: SocketAddrV6::new(*group, *port, 0, scope_for(group, index)).into(),
            })
        }
        Medium::Serial { .. } => Err(TransportError::BadSpec("serial is not a UDP medium".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcast_goes_to_the_interface_broadcast_or_the_limited_one() {
        let addr = Ipv4Addr::new(10, 0, 0, 1);
        let subnet = Ipv4Addr::new(10, 0, 0, 255);
        assert_eq!(bcast_destination("eth0", addr, Some(subnet)), subnet);
        // No `brd`: getifaddrs echoes the address itself (or nothing).
        for brd in [Some(addr), Some(Ipv4Addr::UNSPECIFIED), None] {
            assert_eq!(bcast_destination("eth0", addr, brd), Ipv4Addr::BROADCAST);
        }
    }
}

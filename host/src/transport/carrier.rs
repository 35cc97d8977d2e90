//! Carrier of the `track_link` interfaces, from rtnetlink link events
//! (RTMGRP_LINK): one thread blocks on a NETLINK_ROUTE socket and reports
//! `(interface, carrier)` for tracked interfaces, their state at start
//! (an RTM_GETLINK dump) and then every change. The decision what a lost
//! carrier means is the core's (`wasmbeat_core::link`); this is only IO.
//!
//! Carrier = `IFF_UP && IFF_LOWER_UP`: a veth whose peer end is set down,
//! a pulled cable, or the interface itself taken down.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::sync::mpsc;

/// The link watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The netlink socket could not be opened, bound or asked.
    #[error("cannot watch link carrier through rtnetlink ({what}): {source}")]
    Netlink {
        /// Which step failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

const IFF_LOWER_UP: u32 = 0x1_0000;
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;

fn os(what: &'static str) -> CarrierError {
    CarrierError::Netlink {
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// Start watching `ifaces`; reports go to `tx` as `(name, carrier)`. The
/// thread ends once `tx` is closed (checked at least once a second).
pub fn start(ifaces: &[String], tx: mpsc::Sender<(String, bool)>) -> Result<(), CarrierError> {
    // SAFETY: plain socket(2); the fd is owned right below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(os("socket"));
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_nl is valid; fields set below.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = libc::RTMGRP_LINK as u32;
    // SAFETY: sa is a valid sockaddr_nl of the given size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(os("bind RTMGRP_LINK"));
    }
    // Wake at least once a second to notice a closed channel.
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a valid timeval.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    // The state at start: a dump of every link (answers arrive on the
    // same socket, before or among the events).
    let mut req = [0u8; NLMSG_HDR + IFINFO];
    req[0..4].copy_from_slice(&((NLMSG_HDR + IFINFO) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[NLMSG_HDR] = libc::AF_UNSPEC as u8;
    // SAFETY: send of a valid buffer on a valid socket.
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(os("RTM_GETLINK dump"));
    }
    let tracked: Vec<String> = ifaces.to_vec();
    std::thread::Builder::new()
        .name("carrier".into())
        .spawn(move || watch(sock, tracked, tx))
        .map_err(|source| CarrierError::Netlink {
            what: "thread",
            source,
        })?;
    Ok(())
}

fn watch(sock: OwnedFd, tracked: Vec<String>, tx: mpsc::Sender<(String, bool)>) {
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if tx.is_closed() {
            return;
        }
        // SAFETY: recv into a buffer we own.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                // Events lost under load: the next event of each link
                // tells its state again; say it once.
                Some(libc::ENOBUFS) => {
                    tracing::warn!("rtnetlink link events overflowed; carrier state catches up at the next event");
                    continue;
                }
                _ => {
                    tracing::error!(error = %e, "rtnetlink link watch stopped: track_link no longer sees carrier changes");
                    return;
                }
            }
        }
        for (name, carrier) in parse(&buf[..n as usize]) {
            if !tracked.contains(&name) || last.get(&name) == Some(&carrier) {
                continue;
            }
            last.insert(name.clone(), carrier);
            if tx.blocking_send((name, carrier)).is_err() {
                return;
            }
        }
        std::thread::sleep(Duration::ZERO);
    }
}

/// `(name, carrier)` of each RTM_NEWLINK in a netlink datagram.
fn parse(mut b: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(b[4..6].try_into().unwrap());
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        if ty == libc::RTM_NEWLINK && len >= NLMSG_HDR + IFINFO {
            let body = &b[NLMSG_HDR..len];
            let flags = u32::from_ne_bytes(body[8..12].try_into().unwrap());
            let carrier = flags & libc::IFF_UP as u32 != 0 && flags & IFF_LOWER_UP != 0;
            let mut attrs = &body[IFINFO..];
            while attrs.len() >= 4 {
                let alen = u16::from_ne_bytes(attrs[0..2].try_into().unwrap()) as usize;
                let aty = u16::from_ne_bytes(attrs[2..4].try_into().unwrap());
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if aty == libc::IFLA_IFNAME {
                    let v = &attrs[4..alen];
                    let v = v.split(|&c| c == 0).next().unwrap_or(v);
                    out.push((String::from_utf8_lossy(v).into_owned(), carrier));
                }
                attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

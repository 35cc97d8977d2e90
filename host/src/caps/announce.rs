//! Address announcements on the link: gratuitous ARP (IPv4) and unsolicited
//! neighbour advertisements (IPv6), sent as raw Ethernet frames through an
//! AF_PACKET socket. The first repetition is sent by the caller; the rest
//! run as background tasks that the process can wait for (the CLI does,
//! so a short-lived `wasmbeat agent ... start` still sends them all).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::task::JoinHandle;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1 (all nodes) mapped to Ethernet.
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// An ARP frame announcing `ip` at `mac`: a request (`reply == false`,
/// target MAC zero) or a reply (target MAC = own MAC), both broadcast, with
/// sender IP = target IP = the announced address, as heartbeat's send_arp.
pub fn arp_frame(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]); // Ethernet, IPv4, hlen, plen
    f.extend_from_slice(&(if reply { 2u16 } else { 1u16 }).to_be_bytes());
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&if reply { mac } else { [0; 6] });
    f.extend_from_slice(&ip.octets());
    f.resize(60, 0); // minimum Ethernet frame; veth does not pad for us
    f
}

/// An unsolicited neighbour advertisement for `ip` at `mac` to all nodes,
/// with the Override flag (so neighbours replace a stale MAC) and the
/// target link-layer address option.
pub fn na_frame(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let dst: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type NA, code, checksum placeholder
    icmp.extend_from_slice(&[0x20, 0, 0, 0]); // flags: Override
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    let sum = icmpv6_checksum(&ip, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&ALL_NODES_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no class/flow
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]); // next header ICMPv6, hop limit 255 (required by NDP)
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A raw packet socket, created in the calling thread's network
/// namespace; one serves every announcement of a burst (see
/// `node_net`), whatever the interface.
pub struct PacketSocket(Option<Socket>);

impl PacketSocket {
    /// Open one (needs CAP_NET_RAW).
    pub fn open() -> io::Result<PacketSocket> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                io::Error::new(
                    e.kind(),
                    format!("{e} (raw packet sockets need CAP_NET_RAW, i.e. root)"),
                )
            } else {
                e
            }
        })?;
        Ok(PacketSocket(Some(socket)))
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // Closing a packet socket waits for an RCU grace period
        // (synchronize_net in packet_release, ~10 ms), which would stall
        // the operation or the executor thread; close it elsewhere.
        if let Some(s) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("wasmbeat-close".into())
                .spawn(move || drop(s));
            if let Err(e) = spawned {
                tracing::debug!("closing packet socket inline: {e}");
            }
        }
    }
}

/// Frames to one interface through a shared packet socket.
struct FrameSender {
    socket: Arc<PacketSocket>,
    ifindex: u32,
}

impl FrameSender {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let ifindex = self.ifindex as i32;
        // SAFETY: we write a sockaddr_ll, which fits in sockaddr_storage,
        // and report its exact length.
        let ((), addr) = unsafe {
            SockAddr::try_init(|storage, len| {
                let mut ll: libc::sockaddr_ll = std::mem::zeroed();
                ll.sll_family = libc::AF_PACKET as u16;
                ll.sll_protocol = ethertype.to_be();
                ll.sll_ifindex = ifindex;
                ll.sll_halen = 6;
                ll.sll_addr[..6].copy_from_slice(&dst);
                std::ptr::write(storage.cast::<libc::sockaddr_ll>(), ll);
                *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                Ok(())
            })?
        };
        match &self.socket.0 {
            Some(s) => s.send_to(frame, &addr).map(|_| ()),
            None => Err(io::Error::other("packet socket already closed")),
        }
    }

    /// One repetition: ARP request+reply, or one NA.
    fn send_once(&self, mac: [u8; 6], ip: IpAddr) -> io::Result<()> {
        match ip {
            IpAddr::V4(v4) => {
                self.send(&arp_frame(mac, v4, false))?;
                self.send(&arp_frame(mac, v4, true))
            }
            IpAddr::V6(v6) => self.send(&na_frame(mac, v6)),
        }
    }

    fn send_reply_half(&self, mac: [u8; 6], ip: IpAddr, reply: bool) -> io::Result<()> {
        match ip {
            IpAddr::V4(v4) => self.send(&arp_frame(mac, v4, reply)),
            IpAddr::V6(v6) if !reply => self.send(&na_frame(mac, v6)),
            IpAddr::V6(_) => Ok(()),
        }
    }
}

/// Repetitions an address may be announced with in a burst: six starts of
/// heartbeat's default five, enough for a failover and a few split-brain
/// re-announcements.
pub const BURST: u32 = 30;
/// Repetitions regained per second after a burst: heartbeat's default
/// cadence (5 repetitions, 200 ms apart) kept up forever, so a flapping
/// cluster never has a takeover go unannounced (with 1 per second, a chaos
/// run's sixth failover in half a minute was silent and clients followed
/// the old MAC for 5 s), while an agent looping on `announce` stays at 10
/// frames a second per address instead of the 10,000 seen without a budget.
pub const REFILL_PER_SEC: u32 = 5;

/// Per-address announcement budget (a token bucket): an agent looping on
/// `announce` cannot flood its link.
#[derive(Debug, Default)]
pub struct Budget {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

/// The budget of an address is used up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhausted {
    /// When one repetition will be available.
    pub wait: Duration,
}

impl Budget {
    /// Take up to `count` repetitions for `ip` at `now`: as many as the
    /// bucket holds (the first frames of an announcement are the ones that
    /// move neighbours; the rest only repeat them), or say when one will be
    /// there.
    pub fn spend(&mut self, ip: IpAddr, count: u32, now: Instant) -> Result<u32, Exhausted> {
        let (tokens, at) = self.buckets.entry(ip).or_insert((f64::from(BURST), now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * f64::from(REFILL_PER_SEC)).min(f64::from(BURST));
        *at = now;
        let granted = count.min((*tokens + 1e-9) as u32);
        if granted == 0 {
            return Err(Exhausted {
                wait: Duration::from_secs_f64((1.0 - *tokens).max(0.0) / f64::from(REFILL_PER_SEC)),
            });
        }
        *tokens -= f64::from(granted);
        Ok(granted)
    }
}

/// Owner of the background announcement tasks of one runtime.
#[derive(Clone, Default)]
pub struct Announcer {
    tasks: Arc<Mutex<HashMap<IpAddr, JoinHandle<()>>>>,
    budget: Arc<Mutex<Budget>>,
}

impl Announcer {
    /// A new announcer with no pending tasks.
    pub fn new() -> Announcer {
        Announcer::default()
    }

    /// Announce `ip` on interface `ifindex` with `mac` through `socket`: the first
    /// repetition now, the remaining `count - 1` in the background,
    /// `interval` apart (for IPv4 the reply follows the request by half an
    /// interval, as heartbeat's send_arp). Must run inside a tokio runtime.
    pub fn announce(
        &self,
        socket: Arc<PacketSocket>,
        ifindex: u32,
        mac: [u8; 6],
        ip: IpAddr,
        count: u32,
        interval: Duration,
    ) -> io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        self.cancel(ip);
        let sender = FrameSender { socket, ifindex };
        sender.send_once(mac, ip)?;
        if count == 1 {
            return Ok(());
        }
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for k in 1..count {
                let at = start + interval * k;
                tokio::time::sleep_until(at).await;
                if let Err(e) = sender.send_reply_half(mac, ip, false) {
                    tracing::warn!(%ip, "announcement {k} of {count} failed: {e}");
                    return;
                }
                tokio::time::sleep_until(at + interval / 2).await;
                if let Err(e) = sender.send_reply_half(mac, ip, true) {
                    tracing::warn!(%ip, "announcement {k} of {count} failed: {e}");
                    return;
                }
            }
            tracing::debug!(%ip, count, "announcements done");
        });
        self.lock().insert(ip, task);
        Ok(())
    }

    /// Take up to `count` repetitions of `ip`'s budget (see [`Budget::spend`]).
    pub fn spend(&self, ip: IpAddr, count: u32) -> Result<u32, Exhausted> {
        self.budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spend(ip, count, Instant::now())
    }

    /// Stop announcing `ip` (its address was removed; heartbeat's stop
    /// likewise kills a still-running send_arp).
    pub fn cancel(&self, ip: IpAddr) {
        if let Some(t) = self.lock().remove(&ip) {
            t.abort();
        }
    }

    /// Number of announcement tasks not yet finished.
    pub fn pending(&self) -> usize {
        let mut tasks = self.lock();
        tasks.retain(|_, t| !t.is_finished());
        tasks.len()
    }

    /// Wait until every background announcement has been sent.
    pub async fn wait_idle(&self) {
        loop {
            let next = {
                let mut tasks = self.lock();
                let key = tasks.keys().next().copied();
                key.and_then(|k| tasks.remove(&k))
            };
            match next {
                Some(t) => {
                    let _ = t.await;
                }
                None => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_bursts_then_refills_at_heartbeats_cadence() {
        let mut b = Budget::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..6 {
            assert_eq!(b.spend(ip, 5, t0), Ok(5));
        }
        let e = b.spend(ip, 1, t0).unwrap_err();
        assert_eq!(e.wait, Duration::from_millis(200));
        // Another address has its own budget.
        assert_eq!(b.spend(other, 5, t0), Ok(5));
        // Short of the whole count: what is there goes out, the first
        // frames being the ones that matter.
        assert_eq!(b.spend(ip, 5, t0 + Duration::from_millis(600)), Ok(3));
        // A takeover every second keeps all its five repetitions.
        for s in 2..10 {
            assert_eq!(
                b.spend(ip, 5, t0 + Duration::from_secs(s)),
                Ok(5),
                "at {s} s"
            );
        }
        // A loop of single announcements, once the bucket is empty, gets
        // five per second.
        let t = t0 + Duration::from_secs(10);
        assert!(b.spend(ip, 100, t).is_ok());
        let sent = (0..=100)
            .filter(|k| b.spend(ip, 1, t + Duration::from_millis(10 * k)).is_ok())
            .count();
        assert_eq!(sent, 5, "{sent} in one second");
        // Refilled after a quiet spell, never beyond the burst.
        assert_eq!(b.spend(ip, 100, t0 + Duration::from_secs(120)), Ok(30));
        assert!(b.spend(ip, 1, t0 + Duration::from_secs(120)).is_err());
    }

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    #[test]
    fn arp_request_and_reply_match_send_arp() {
        let ip: Ipv4Addr = "10.77.0.10".parse().unwrap();
        let req = arp_frame(MAC, ip, false);
        assert_eq!(req.len(), 60);
        assert_eq!(&req[0..6], &[0xff; 6]);
        assert_eq!(&req[6..12], &MAC);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        assert_eq!(&req[20..22], &[0, 1]); // request
        assert_eq!(&req[22..28], &MAC);
        assert_eq!(&req[28..32], &ip.octets());
        assert_eq!(&req[32..38], &[0; 6]);
        assert_eq!(&req[38..42], &ip.octets());
        let rep = arp_frame(MAC, ip, true);
        assert_eq!(&rep[20..22], &[0, 2]); // reply
        assert_eq!(&rep[32..38], &MAC);
    }

    #[test]
    fn na_has_valid_checksum_and_override_flag() {
        let ip: Ipv6Addr = "fd77::10".parse().unwrap();
        let f = na_frame(MAC, ip);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14 + 7], 255, "hop limit must be 255 or receivers drop it");
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20);
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[26..32], &MAC);
        // Summing including the checksum field must give 0xffff (i.e. 0 after !).
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(&ip, &dst, icmp), 0);
    }
}

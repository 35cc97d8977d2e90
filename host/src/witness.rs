//! The tie-breaker over UDP: `wasmbeat witness` (the service on a third
//! machine) and the client the daemon uses to ask it. The protocol and the
//! lease table are pure, in [`wasmbeat_core::witness`]; this module owns
//! the sockets and the clock. `docs/tiebreaker.md` explains the design.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbeat_core::cluster::TiebreakVerdict;
use wasmbeat_core::wire::auth::Keyring;
use wasmbeat_core::wire::keys::AuthMethod;
use wasmbeat_core::witness::{Ask, Reply, Request, Verdict, Witness, MAX_DATAGRAM};
use wasmbeat_core::Millis;

/// One exchange (request, resends, answer) ends within this: the core
/// retries an unreachable witness a second later.
pub const EXCHANGE_BUDGET: Duration = Duration::from_millis(1500);
/// A request unanswered this long is sent again (with a new seq).
pub const RESEND: Duration = Duration::from_millis(300);

/// The keyring of an authkeys file for the witness protocol: refuses
/// `crc`, which anyone could forge.
pub fn keyring_from(path: &Path) -> Result<Keyring, String> {
    let (keys, _) = crate::config::authkeys::AuthKeys::load(path).map_err(|d| {
        d.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if matches!(keys.method, AuthMethod::Crc) {
        return Err(format!(
            "{}: the active key is crc, which is no authentication: anyone could take the tie-break lease; use sha1 (or hmac-sha256)",
            path.display()
        ));
    }
    keys.keyring().map_err(|e| e.to_string())
}

/// The daemon's side: asks the witness at `addr` on behalf of `node`.
#[derive(Clone, Debug)]
pub struct Client {
    addr: SocketAddr,
    node: String,
    generation: u64,
    ring: Keyring,
    seq: Arc<AtomicU64>,
}

impl Client {
    /// A client for one daemon run (`generation` is the run's `hg`; `seq`
    /// is shared by every exchange of the run, so it only grows).
    pub fn new(
        addr: SocketAddr,
        node: &str,
        generation: u64,
        ring: Keyring,
        seq: Arc<AtomicU64>,
    ) -> Client {
        Client {
            addr,
            node: node.to_string(),
            generation,
            ring,
            seq,
        }
    }

    fn request(&self, ask: Ask, peer: &str, lease: Duration) -> Request {
        Request {
            ask,
            node: self.node.clone(),
            peer: peer.to_string(),
            generation: self.generation,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            lease,
        }
    }

    async fn socket(&self) -> std::io::Result<tokio::net::UdpSocket> {
        let any: SocketAddr = if self.addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let s = tokio::net::UdpSocket::bind(any).await?;
        s.connect(self.addr).await?;
        Ok(s)
    }

    /// Ask for (or renew) the lease against `peer`: the verdict and the
    /// figures, `Unreachable` when no authenticated answer came within
    /// [`EXCHANGE_BUDGET`].
    pub async fn acquire(&self, peer: &str, lease: Duration) -> (TiebreakVerdict, String) {
        let started = Instant::now();
        let sock = match self.socket().await {
            Ok(s) => s,
            Err(e) => {
                return (
                    TiebreakVerdict::Unreachable,
                    format!("witness {}: {e}", self.addr),
                )
            }
        };
        let mut sent: Vec<Request> = Vec::new();
        let mut last_error = String::new();
        let mut dropped = 0u32;
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        while started.elapsed() < EXCHANGE_BUDGET {
            let req = self.request(Ask::Acquire, peer, lease);
            if let Err(e) = sock.send(&req.encode(&self.ring)).await {
                last_error = e.to_string();
            }
            sent.push(req);
            let resend_at = Instant::now() + RESEND;
            let until = resend_at.min(started + EXCHANGE_BUDGET);
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let n = match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => {
                        // ICMP port unreachable: nothing listens (yet); resend later
                        last_error = e.to_string();
                        tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
                        break;
                    }
                    Ok(Ok(n)) => n,
                };
                match Reply::decode(&buf[..n], &self.ring) {
                    Ok(reply) if sent.iter().any(|r| reply.answers(r)) => {
                        let ms = started.elapsed().as_millis();
                        let holder = reply.holder.as_deref().unwrap_or("nobody");
                        let figures = format!(
                            "witness {} answered in {ms} ms: {holder} holds the lease for {} ms",
                            self.addr,
                            reply.remaining.as_millis()
                        );
                        return match reply.verdict {
                            Verdict::Granted => (TiebreakVerdict::Granted, figures),
                            Verdict::Refused => (TiebreakVerdict::Refused, figures),
                            Verdict::Released => (
                                TiebreakVerdict::Unreachable,
                                format!("witness {}: `released` to an acquire", self.addr),
                            ),
                        };
                    }
                    Ok(_) => {
                        dropped += 1;
                        last_error =
                            "a reply to no request of this exchange (stale or replayed)".into();
                    }
                    Err(e) => {
                        dropped += 1;
                        last_error = format!("reply dropped: {e}");
                    }
                }
            }
        }
        let mut detail = format!(
            "no authenticated answer from witness {} within {} ms ({} request(s) sent",
            self.addr,
            EXCHANGE_BUDGET.as_millis(),
            sent.len()
        );
        if dropped > 0 {
            detail.push_str(&format!(", {dropped} reply(s) dropped"));
        }
        if !last_error.is_empty() {
            detail.push_str(&format!("; last: {last_error}"));
        }
        detail.push(')');
        (TiebreakVerdict::Unreachable, detail)
    }

    /// Give the lease against `peer` up: two datagrams, no answer awaited
    /// (a lost release costs the other side at most one lease time).
    pub async fn release(&self, peer: &str) {
        let Ok(sock) = self.socket().await else {
            return;
        };
        for _ in 0..2 {
            let req = self.request(Ask::Release, peer, Duration::ZERO);
            let _ = sock.send(&req.encode(&self.ring)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `wasmbeat witness`: serve the tie-break lease on `listen` until killed.
/// No cluster state, no resources: the table of leases in memory only.
pub fn serve(listen: SocketAddr, ring: Keyring) -> std::io::Result<()> {
    let sock = UdpSocket::bind(listen)?;
    let started = Instant::now();
    let mut witness = Witness::new();
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    println!(
        "wasmbeat witness listening on {} (key slot {})",
        sock.local_addr()?,
        ring.active().index
    );
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let now = Millis(started.elapsed().as_millis() as u64);
        match witness.handle(now, &buf[..n], &ring) {
            Ok((reply, line)) => {
                println!("{from}: {line}");
                if let Err(e) = sock.send_to(&reply, from) {
                    println!("{from}: reply not sent: {e}");
                }
            }
            Err(e) => {
                let c = &witness.counters;
                println!(
                    "{from}: dropped ({e}); dropped so far: {} replayed, {} forged, {} malformed",
                    c.replayed, c.forged, c.malformed
                );
            }
        }
    }
}

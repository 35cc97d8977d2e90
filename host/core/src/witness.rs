//! The tie-breaker (witness) protocol: one small UDP exchange between a
//! cluster node and `wasmbeat witness` on a third machine, and the
//! witness's whole state (who holds the lease of which node pair). Pure:
//! the daemon owns the socket and the clock, both sides of the exchange
//! are here so they are tested together. The rules the cluster applies to
//! the answers are in `cluster/core/tiebreak.rs`; `docs/tiebreaker.md`
//! explains what it protects against.
//!
//! # Datagram
//!
//! Text lines `name=value\n` in a fixed order, the last one
//! `auth=<slot> <hexdigest>` computed with the cluster's authkeys
//! ([`Keyring::sign`], the same HMACs the heartbeat wire uses) over every
//! byte before it:
//!
//! ```text
//! wbwitness=1
//! t=acquire | release                 (node -> witness)
//! t=granted | refused | released      (witness -> node)
//! node=<the asking node>  peer=<the node it considers dead>
//! hg=<asking node's generation>  seq=<counter within it>
//! lease_ms=<lease asked for>          (requests)
//! holder=<node> remaining_ms=<n>      (replies: who holds the pair's lease)
//! auth=1 9f0c...
//! ```
//!
//! A request is fresh when its (`hg`, `seq`) is above the last one the
//! witness accepted from that node: replays and forgeries are dropped and
//! counted. A reply is accepted only by the exchange that sent its
//! (`hg`, `seq`), and a request can never pass for a reply (`t` differs
//! and is signed).

use crate::time::Millis;
use crate::wire::auth::Keyring;
use std::collections::BTreeMap;
use std::time::Duration;

/// First line of every datagram.
pub const MAGIC: &str = "wbwitness=1";
/// Largest datagram either side sends or accepts.
pub const MAX_DATAGRAM: usize = 1024;
/// Longest node name accepted.
const MAX_NAME: usize = 64;
/// The witness clamps the lease asked for into this range.
pub const LEASE_MIN: Duration = Duration::from_secs(1);
/// See [`LEASE_MIN`].
pub const LEASE_MAX: Duration = Duration::from_secs(600);

/// What a node asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Grant (or renew) the pair's lease to me.
    Acquire,
    /// I hear my peer again: I give the lease up.
    Release,
}

/// A node's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Acquire or release.
    pub ask: Ask,
    /// The asking node (ha.cf name).
    pub node: String,
    /// The peer it considers dead.
    pub peer: String,
    /// The asking node's heartbeat generation (persisted, grows per start).
    pub generation: u64,
    /// A counter within the generation: every datagram a new one.
    pub seq: u64,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
}

/// The witness's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The lease is the asker's until `remaining` from now (unless renewed).
    Granted,
    /// Another node holds it for `remaining` more.
    Refused,
    /// A release was taken note of.
    Released,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::Refused => "refused",
            Verdict::Released => "released",
        }
    }
}

/// A witness reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// What was decided.
    pub verdict: Verdict,
    /// The node the reply is for.
    pub node: String,
    /// The peer named in the request.
    pub peer: String,
    /// The request's generation.
    pub generation: u64,
    /// The request's seq.
    pub seq: u64,
    /// The pair's lease holder after the request (none after a release).
    pub holder: Option<String>,
    /// How long the holder's lease still runs.
    pub remaining: Duration,
}

impl Reply {
    /// Whether this answers `req` (same node, peer and counters).
    pub fn answers(&self, req: &Request) -> bool {
        self.node == req.node
            && self.peer == req.peer
            && self.generation == req.generation
            && self.seq == req.seq
    }
}

/// Why a datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// Not this protocol, a missing or bad field, too long.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The signature does not verify with any key of the authkeys file.
    #[error("authentication failed: {0}")]
    Forged(String),
    /// (hg, seq) not above the last accepted from that node.
    #[error("replay: {node} hg={generation} seq={seq} is not newer than hg={last_generation} seq={last_seq}")]
    Replayed {
        /// Claimed sender.
        node: String,
        /// Its generation.
        generation: u64,
        /// Its seq.
        seq: u64,
        /// Last accepted generation.
        last_generation: u64,
        /// Last accepted seq.
        last_seq: u64,
    },
}

fn check_name(what: &str, v: &str) -> Result<(), WitnessError> {
    if v.is_empty() || v.len() > MAX_NAME || v.bytes().any(|b| b <= b' ' || b == b'=') {
        return Err(WitnessError::Malformed(format!("bad {what} {v:?}")));
    }
    Ok(())
}

fn seal(fields: &[(&str, String)], ring: &Keyring) -> Vec<u8> {
    let mut out = format!("{MAGIC}\n");
    for (k, v) in fields {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    let auth = ring.sign(out.as_bytes());
    out.push_str("auth=");
    out.push_str(&auth);
    out.push('\n');
    out.into_bytes()
}

/// Verify and split a datagram into its fields (in order, `auth` excluded).
fn open(bytes: &[u8], ring: &Keyring) -> Result<Vec<(String, String)>, WitnessError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(WitnessError::Malformed(format!("{} bytes", bytes.len())));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| WitnessError::Malformed("not UTF-8".into()))?;
    if !text.starts_with(MAGIC) || !text[MAGIC.len()..].starts_with('\n') {
        return Err(WitnessError::Malformed("not a witness datagram".into()));
    }
    let Some(at) = text.rfind("\nauth=") else {
        return Err(WitnessError::Forged("no auth line".into()));
    };
    let signed = &text[..at + 1];
    let token = text[at + 6..].trim_end_matches('\n');
    ring.verify_token(token, signed.as_bytes())
        .map_err(|e| WitnessError::Forged(e.to_string()))?;
    let body = &text[(MAGIC.len() + 1).min(at + 1)..at + 1];
    body.lines()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| WitnessError::Malformed(format!("line {l:?}")))
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str, WitnessError> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| WitnessError::Malformed(format!("no {name}")))
}

fn number(fields: &[(String, String)], name: &str) -> Result<u64, WitnessError> {
    field(fields, name)?
        .parse()
        .map_err(|_| WitnessError::Malformed(format!("{name} is not a number")))
}

impl Request {
    /// The signed datagram.
    pub fn encode(&self, ring: &Keyring) -> Vec<u8> {
        let t = match self.ask {
            Ask::Acquire => "acquire",
            Ask::Release => "release",
        };
        seal(
            &[
                ("t", t.into()),
                ("node", self.node.clone()),
                ("peer", self.peer.clone()),
                ("hg", self.generation.to_string()),
                ("seq", self.seq.to_string()),
                ("lease_ms", self.lease.as_millis().to_string()),
            ],
            ring,
        )
    }

    /// Verify and parse a request datagram.
    pub fn decode(bytes: &[u8], ring: &Keyring) -> Result<Request, WitnessError> {
        let f = open(bytes, ring)?;
        let ask = match field(&f, "t")? {
            "acquire" => Ask::Acquire,
            "release" => Ask::Release,
            other => return Err(WitnessError::Malformed(format!("t={other} in a request"))),
        };
        let node = field(&f, "node")?.to_string();
        let peer = field(&f, "peer")?.to_string();
        check_name("node", &node)?;
        check_name("peer", &peer)?;
        if node == peer {
            return Err(WitnessError::Malformed("node and peer are the same".into()));
        }
        Ok(Request {
            ask,
            node,
            peer,
            generation: number(&f, "hg")?,
            seq: number(&f, "seq")?,
            lease: Duration::from_millis(number(&f, "lease_ms")?),
        })
    }
}

impl Reply {
    /// The signed datagram.
    pub fn encode(&self, ring: &Keyring) -> Vec<u8> {
        seal(
            &[
                ("t", self.verdict.as_str().into()),
                ("node", self.node.clone()),
                ("peer", self.peer.clone()),
                ("hg", self.generation.to_string()),
                ("seq", self.seq.to_string()),
                ("holder", self.holder.clone().unwrap_or_else(|| "-".into())),
                ("remaining_ms", self.remaining.as_millis().to_string()),
            ],
            ring,
        )
    }

    /// Verify and parse a reply datagram.
    pub fn decode(bytes: &[u8], ring: &Keyring) -> Result<Reply, WitnessError> {
        let f = open(bytes, ring)?;
        let verdict = match field(&f, "t")? {
            "granted" => Verdict::Granted,
            "refused" => Verdict::Refused,
            "released" => Verdict::Released,
            other => return Err(WitnessError::Malformed(format!("t={other} in a reply"))),
        };
        let holder = match field(&f, "holder")? {
            "-" => None,
            h => Some(h.to_string()),
        };
        Ok(Reply {
            verdict,
            node: field(&f, "node")?.to_string(),
            peer: field(&f, "peer")?.to_string(),
            generation: number(&f, "hg")?,
            seq: number(&f, "seq")?,
            holder,
            remaining: Duration::from_millis(number(&f, "remaining_ms")?),
        })
    }
}

/// What the witness counted since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessCounters {
    /// Leases granted to a node that did not hold them.
    pub granted: u64,
    /// Renewals by the holder.
    pub renewed: u64,
    /// Requests refused (another node holds the lease).
    pub refused: u64,
    /// Releases.
    pub released: u64,
    /// Dropped: (hg, seq) not newer.
    pub replayed: u64,
    /// Dropped: signature does not verify.
    pub forged: u64,
    /// Dropped: not a witness request.
    pub malformed: u64,
}

#[derive(Clone, Debug)]
struct Lease {
    holder: String,
    expires: Millis,
}

/// The witness: first come, first served, per node pair; a lease ends when
/// its holder releases it or stops renewing it for the lease time.
#[derive(Clone, Debug, Default)]
pub struct Witness {
    leases: BTreeMap<(String, String), Lease>,
    seen: BTreeMap<String, (u64, u64)>,
    /// Counters for its log lines.
    pub counters: WitnessCounters,
}

impl Witness {
    /// A witness that has granted nothing.
    pub fn new() -> Witness {
        Witness::default()
    }

    /// One datagram received at `now`: the reply to send back and a line
    /// for the log, or why it was dropped (no reply: a forger learns nothing).
    pub fn handle(
        &mut self,
        now: Millis,
        packet: &[u8],
        ring: &Keyring,
    ) -> Result<(Vec<u8>, String), WitnessError> {
        let req = match Request::decode(packet, ring) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    WitnessError::Forged(_) => self.counters.forged += 1,
                    _ => self.counters.malformed += 1,
                }
                return Err(e);
            }
        };
        let last = self.seen.get(&req.node).copied().unwrap_or((0, 0));
        if (req.generation, req.seq) <= last {
            self.counters.replayed += 1;
            return Err(WitnessError::Replayed {
                node: req.node,
                generation: req.generation,
                seq: req.seq,
                last_generation: last.0,
                last_seq: last.1,
            });
        }
        self.seen
            .insert(req.node.clone(), (req.generation, req.seq));
        let pair = if req.node < req.peer {
            (req.node.clone(), req.peer.clone())
        } else {
            (req.peer.clone(), req.node.clone())
        };
        let current = self.leases.get(&pair).filter(|l| l.expires > now).cloned();
        let lease = req.lease.clamp(LEASE_MIN, LEASE_MAX);
        let (verdict, holder, remaining, line) = match (req.ask, current) {
            (Ask::Acquire, Some(l)) if l.holder != req.node => {
                self.counters.refused += 1;
                let left = l.expires.since(now);
                let line = format!(
                    "refused {} against {}: {} holds the lease for {} ms more",
                    req.node,
                    req.peer,
                    l.holder,
                    left.as_millis()
                );
                (Verdict::Refused, Some(l.holder), left, line)
            }
            (Ask::Acquire, held) => {
                let renewal = held.is_some();
                if renewal {
                    self.counters.renewed += 1;
                } else {
                    self.counters.granted += 1;
                }
                self.leases.insert(
                    pair,
                    Lease {
                        holder: req.node.clone(),
                        expires: now.plus(lease),
                    },
                );
                let line = format!(
                    "{} {} the lease against {} for {} ms",
                    if renewal { "renewed" } else { "granted" },
                    req.node,
                    req.peer,
                    lease.as_millis()
                );
                (Verdict::Granted, Some(req.node.clone()), lease, line)
            }
            (Ask::Release, held) => {
                self.counters.released += 1;
                let line = match held {
                    Some(l) if l.holder == req.node => {
                        self.leases.remove(&pair);
                        format!("{} released the lease against {}", req.node, req.peer)
                    }
                    Some(l) => {
                        return Ok((
                            Reply {
                                verdict: Verdict::Released,
                                node: req.node.clone(),
                                peer: req.peer.clone(),
                                generation: req.generation,
                                seq: req.seq,
                                holder: Some(l.holder.clone()),
                                remaining: l.expires.since(now),
                            }
                            .encode(ring),
                            format!(
                                "{} released a lease it does not hold ({} holds it)",
                                req.node, l.holder
                            ),
                        ))
                    }
                    None => format!("{} released (nothing held)", req.node),
                };
                (Verdict::Released, None, Duration::ZERO, line)
            }
        };
        let reply = Reply {
            verdict,
            node: req.node,
            peer: req.peer,
            generation: req.generation,
            seq: req.seq,
            holder,
            remaining,
        };
        Ok((reply.encode(ring), line))
    }

    /// The leases still running at `now`: (pair, holder, remaining).
    pub fn leases(&self, now: Millis) -> Vec<(String, String, Duration)> {
        self.leases
            .iter()
            .filter(|(_, l)| l.expires > now)
            .map(|((a, b), l)| (format!("{a}/{b}"), l.holder.clone(), l.expires.since(now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::keys::{AuthMethod, Secret};

    fn ring(secret: &str) -> Keyring {
        Keyring::single(1, AuthMethod::Sha1(Secret::new(secret)))
    }

    fn req(node: &str, peer: &str, seq: u64, ask: Ask) -> Request {
        Request {
            ask,
            node: node.into(),
            peer: peer.into(),
            generation: 7,
            seq,
            lease: Duration::from_secs(10),
        }
    }

    fn verdict(w: &mut Witness, now: u64, r: &Request, k: &Keyring) -> Verdict {
        let (bytes, _) = w.handle(Millis(now), &r.encode(k), k).unwrap();
        let reply = Reply::decode(&bytes, k).unwrap();
        assert!(reply.answers(r));
        reply.verdict
    }

    #[test]
    fn requests_and_replies_round_trip_and_are_signed() {
        let k = ring("s3cret");
        let r = req("node1", "node2", 3, Ask::Acquire);
        let bytes = r.encode(&k);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("wbwitness=1\nt=acquire\nnode=node1\n"),
            "{text}"
        );
        assert!(text.contains("\nauth=1 "), "{text}");
        assert_eq!(Request::decode(&bytes, &k), Ok(r.clone()));
        // a request never passes for a reply, even correctly signed
        assert!(matches!(
            Reply::decode(&bytes, &k),
            Err(WitnessError::Malformed(_))
        ));
        // another key, or one flipped byte: forged
        assert!(matches!(
            Request::decode(&bytes, &ring("other")),
            Err(WitnessError::Forged(_))
        ));
        let mut bad = bytes.clone();
        let at = text.find("node1").unwrap() + 4;
        bad[at] = b'2';
        assert!(matches!(
            Request::decode(&bad, &k),
            Err(WitnessError::Forged(_))
        ));
    }

    #[test]
    fn first_asker_wins_the_other_is_refused_until_the_lease_lapses() {
        let k = ring("s3cret");
        let mut w = Witness::new();
        let a = |seq| req("node1", "node2", seq, Ask::Acquire);
        let b = |seq| req("node2", "node1", seq, Ask::Acquire);
        assert_eq!(verdict(&mut w, 1000, &a(1), &k), Verdict::Granted);
        assert_eq!(verdict(&mut w, 1010, &b(1), &k), Verdict::Refused);
        // the holder renews; the other is still refused
        assert_eq!(verdict(&mut w, 6000, &a(2), &k), Verdict::Granted);
        assert_eq!(verdict(&mut w, 15_000, &b(2), &k), Verdict::Refused);
        // node1 stops renewing: 10 s after its last renewal node2 gets it
        assert_eq!(verdict(&mut w, 16_001, &b(3), &k), Verdict::Granted);
        assert_eq!(verdict(&mut w, 16_100, &a(3), &k), Verdict::Refused);
        // a release by the holder frees it at once
        assert_eq!(
            verdict(&mut w, 17_000, &req("node2", "node1", 4, Ask::Release), &k),
            Verdict::Released
        );
        assert_eq!(verdict(&mut w, 17_001, &a(4), &k), Verdict::Granted);
        assert_eq!(w.counters.granted, 3);
        assert_eq!(w.counters.renewed, 1);
        assert_eq!(w.counters.refused, 3);
    }

    #[test]
    fn replays_and_forgeries_are_dropped_and_counted() {
        let k = ring("s3cret");
        let mut w = Witness::new();
        let first = req("node1", "node2", 5, Ask::Acquire).encode(&k);
        assert!(w.handle(Millis(0), &first, &k).is_ok());
        // the same datagram again, or an older one
        assert!(matches!(
            w.handle(Millis(1), &first, &k),
            Err(WitnessError::Replayed { .. })
        ));
        let older = req("node1", "node2", 4, Ask::Release).encode(&k);
        assert!(matches!(
            w.handle(Millis(2), &older, &k),
            Err(WitnessError::Replayed { .. })
        ));
        // a new generation starts afresh
        let mut restarted = req("node1", "node2", 1, Ask::Acquire);
        restarted.generation = 8;
        assert!(w.handle(Millis(3), &restarted.encode(&k), &k).is_ok());
        // forged: signed with another key
        let forged = req("node2", "node1", 9, Ask::Acquire).encode(&ring("guess"));
        assert!(matches!(
            w.handle(Millis(4), &forged, &k),
            Err(WitnessError::Forged(_))
        ));
        assert!(matches!(
            w.handle(Millis(5), b"hello", &k),
            Err(WitnessError::Malformed(_))
        ));
        assert_eq!(
            (w.counters.replayed, w.counters.forged, w.counters.malformed),
            (2, 1, 1)
        );
        // the forged request did not take the lease from node1
        assert_eq!(w.leases(Millis(6))[0].1, "node1");
    }
}

//! The session layer: one node's view of the wire, without IO.
//!
//! [`Endpoint`] stamps and signs outgoing messages, keeps the history of its
//! own sequenced messages, and for every received packet runs decode ->
//! verify -> header -> replay checks, counting each drop. With heartbeat's
//! flow control (`protocol=1`) it also does what 3.0.6 expects of a healthy
//! peer (spec §5.7, §5.10): ACKs (`NS_ackmsg`), retransmission requests for
//! gaps (`NS_rexmit`) and answers to them (resend or `NS_nak_rexmit`), and
//! the `reqnodes`/`repnodes` exchange.
//!
//! It is sans-IO: callers feed it packets and the time ([`Millis`]), tell it
//! the wall clock and load average it stamps into `ts` and `ld`
//! ([`Endpoint::set_environment`]), seed its randomness through
//! [`EndpointConfig::seed`], and drain outgoing packets with
//! [`Endpoint::poll_transmit`]; the transport sends each packet on every
//! medium.
//!
//! Liveness is not modelled here: whether a peer is alive (for ACK
//! accounting, retransmission requests and `reqnodes`) is the failover
//! core's verdict, passed in as a [`Liveness`] predicate.
//!
//! # Hardening beyond heartbeat (each drop counted by [`DropReason`])
//!
//! - **Only the active key verifies.** A message signed with another slot
//!   listed in authkeys is dropped (`inactive_key`) unless it arrives within
//!   the key-rotation window ([`EndpointConfig::key_rotation_window`]) that
//!   opens when the keys are loaded (start, or a reload that changed them).
//!   heartbeat accepts every listed slot forever, so a retired key that was
//!   never removed stays a way in.
//! - **`ts` freshness for `NS_*`.** Unsequenced messages have no seq, so a
//!   captured `NS_rexmit`/`NS_ackmsg`/`NS_nak_rexmit` could be replayed for
//!   the whole life of the sender's generation. Per peer we keep the `ts` of
//!   its newest in-order sequenced message (its clock as it last showed it,
//!   refreshed every keepalive by its status) and drop an `NS_*` whose `ts`
//!   is more than [`TS_TOLERANCE_SECS`] older (`stale`). Only the sender's
//!   own clock is compared with itself, never with ours, so skewed clocks
//!   do not matter; a backward step on the sender re-anchors at its next
//!   sequenced message, and sequenced messages (statuses: liveness) are
//!   never judged by `ts`, so no clock step can cause a failover.
//! - **Answer budget.** Each peer's `NS_rexmit` and `reqnodes` are answered
//!   (resends, `NS_nak_rexmit`, `repnodes`) from a token bucket
//!   ([`ANSWER_BURST`], [`ANSWER_RATE`] per second): a flood of requests,
//!   replayed or not, yields a bounded number of packets (`rate_limited`).
//! - **Sequence space.** Our own seq never wraps: past `u64::MAX -`
//!   [`SEQ_RESERVE`] [`Endpoint::seq_exhausted`] asks the Node to restart
//!   into a new generation, and seq `u64::MAX` itself is never sent.
//! - **Restored peer state.** [`Endpoint::restore_peers`] takes the last
//!   (generation, seq) per peer the host persisted before our restart, so a
//!   message captured before it (an old `hb_takeover`) is still a replay.

use super::auth::Keyring;
use super::codec::{self, Limits};
use super::fields::*;
use super::message::Message;
use super::replay::{PeerSeq, SeqVerdict};
use super::Identity;
use super::{DropCounters, DropReason};
use crate::time::Millis;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Heartbeat's MAXMSGHIST: own sequenced messages kept for retransmission.
pub const MAX_HISTORY: usize = 500;
/// Most sequence numbers resent for one `NS_rexmit`.
pub const MAX_REXMIT_BATCH: u64 = 50;
/// A message is not resent again within this time of its last resend.
/// The original send does not count (heartbeat's `lastrexmit` starts at 0):
/// a gap found right after a heal is filled at the first request.
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(240);
/// How long a missing seq is requested before it is declared lost.
pub const REXMIT_GIVE_UP: Duration = Duration::from_secs(10);
/// Period of `reqnodes` repeats until a `repnodes` arrives.
pub const REQNODES_INTERVAL: Duration = Duration::from_secs(1);
/// How often a simple driver calls [`Endpoint::handle_timeout`] (the daemon
/// sleeps until [`Endpoint::next_timeout`] instead).
pub const TICK: Duration = Duration::from_millis(50);

/// Most messages held back per peer waiting for a gap to fill; beyond it the
/// oldest is delivered out of order rather than memory growing.
pub const MAX_HELD: usize = 200;

/// How much older than the sender's newest sequenced message an `NS_*`
/// message's `ts` may be. heartbeat stamps whole seconds of the same clock
/// into both, so a genuine one is at most a second or two behind (sent
/// just before the status it arrives after); 30 s also absorbs a slow path
/// while keeping a captured `NS_*` replayable for no longer than that.
pub const TS_TOLERANCE_SECS: u64 = 30;

/// Answers (resends, `NS_nak_rexmit`, `repnodes`) a peer may draw at once.
/// Twice heartbeat's largest retransmission batch ([`MAX_REXMIT_BATCH`]).
pub const ANSWER_BURST: u64 = 100;
/// Answers per second a peer's budget refills by. A genuine 250-message
/// gap (heartbeat's FLOWCONTROL_LIMIT) is answered within about 2 s, well
/// inside the requester's [`REXMIT_GIVE_UP`].
pub const ANSWER_RATE: u64 = 100;

/// Own sequence numbers kept back at the top of the u64 space: once fewer
/// remain, [`Endpoint::seq_exhausted`] is true so the Node can still say
/// goodbye (release, `shutdone`) before the space runs out.
pub const SEQ_RESERVE: u64 = 1 << 16;

/// Default [`EndpointConfig::key_rotation_window`].
pub const DEFAULT_KEY_ROTATION_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The caller's verdict on whether a peer is alive (the core owns liveness).
pub type Liveness<'a> = &'a dyn Fn(&str) -> bool;

/// Static settings of an endpoint.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Local node name (lowercase).
    pub node: String,
    /// Every configured node, including the local one, in ha.cf order.
    pub nodes: Vec<String>,
    /// authkeys.
    pub keyring: Keyring,
    /// Decoder limits.
    pub limits: Limits,
    /// Advertise `protocol=1` and take part in ACK / retransmit / reqnodes.
    pub flow_control: bool,
    /// Add the inner classic `auth` field to netstring messages
    /// (`msgfmt classic`, heartbeat's default; byte-for-byte like stock).
    pub classic_auth_field: bool,
    /// ha.cf `hopfudge` (ttl = node count + hopfudge).
    pub hopfudge: u8,
    /// ha.cf `max_rexmit_delay`.
    pub max_rexmit_delay: Duration,
    /// Seed of the retransmission jitter and the ACK residue (the daemon
    /// draws it from the OS; simulations fix it).
    pub seed: u64,
    /// How long after the keys are loaded (start, or a reload that changed
    /// authkeys) the other listed slots still verify, so two nodes can
    /// switch `auth N` one after the other. Zero: only the active slot,
    /// always.
    pub key_rotation_window: Duration,
}

impl EndpointConfig {
    /// Defaults as heartbeat's: flow control on, classic auth field on,
    /// hopfudge 1, max_rexmit_delay 250 ms, seed 0.
    pub fn new(node: &str, nodes: &[&str], keyring: Keyring) -> EndpointConfig {
        EndpointConfig {
            node: node.to_ascii_lowercase(),
            nodes: nodes.iter().map(|n| n.to_ascii_lowercase()).collect(),
            keyring,
            limits: Limits::default(),
            flow_control: true,
            classic_auth_field: true,
            hopfudge: 1,
            max_rexmit_delay: Duration::from_millis(250),
            seed: 0,
            key_rotation_window: DEFAULT_KEY_ROTATION_WINDOW,
        }
    }
}

/// One signed message ready for the media, in both framings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutPacket {
    /// Netstring form with trailer (UDP media).
    pub netstring: Arc<[u8]>,
    /// Classic text form with `auth` field (serial media).
    pub classic: Arc<[u8]>,
    /// The message type, for logs.
    pub msg_type: String,
    /// Its sequence number, if sequenced.
    pub seq: Option<u64>,
    /// True when this is a retransmission from history.
    pub resend: bool,
}

/// Something the caller (core / daemon) should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An authenticated, fresh message for us: `status` and every type the
    /// session layer does not handle itself.
    Message {
        /// Its standard fields.
        header: Header,
        /// The whole message.
        message: Message,
        /// Index of the medium it arrived on.
        link: usize,
    },
    /// A peer restarted (its status carried a higher generation).
    PeerRestarted {
        /// Node name.
        node: String,
        /// Generation before.
        old: u64,
        /// Generation now.
        new: u64,
    },
    /// A `repnodes` answer to our `reqnodes`.
    NodeList {
        /// Who answered.
        from: String,
        /// Its `nodelist`.
        nodes: Vec<String>,
        /// Its `delnodelist`.
        deleted: Vec<String>,
    },
    /// Another copy of an already received message (same seq, e.g. from a
    /// second medium): counted as a `duplicate` drop, reported only because
    /// it proves that `link` carries the node's packets.
    Duplicate {
        /// Node name.
        node: String,
        /// Medium index.
        link: usize,
    },
    /// A peer's message we could not get retransmitted.
    Lost {
        /// Node name.
        node: String,
        /// Sequence number lost.
        seq: u64,
    },
    /// A peer does not speak flow control; it is now off cluster-wide.
    FlowControlDisabled {
        /// The node whose status lacked `protocol`.
        node: String,
    },
}

/// The endpoint's view of one peer, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Node name.
    pub name: String,
    /// Its UUID, once heard.
    pub uuid: Option<[u8; 16]>,
    /// Its generation.
    pub generation: u64,
    /// Last in-order seq received.
    pub last_seq: u64,
    /// Highest of our seqs it acknowledged.
    pub acked: u64,
}

/// Counters of the reliable-delivery machinery, for status and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionStats {
    /// `NS_ackmsg` sent.
    pub acks_sent: u64,
    /// `NS_ackmsg` received for us.
    pub acks_received: u64,
    /// `NS_rexmit` requests sent for our gaps.
    pub rexmit_requested: u64,
    /// `NS_rexmit` requests received.
    pub rexmit_received: u64,
    /// Own messages resent from history.
    pub resent: u64,
    /// `NS_nak_rexmit` sent.
    pub naks_sent: u64,
    /// Gaps filled by a late or retransmitted message.
    pub gaps_filled: u64,
    /// Peer messages given up on.
    pub lost: u64,
    /// Messages held back until an earlier missing seq arrived or was given up.
    pub held_back: u64,
    /// `reqnodes` answered with `repnodes`.
    pub reqnodes_answered: u64,
    /// `repnodes` received.
    pub repnodes_received: u64,
    /// Answers (resends, NAKs, repnodes) not sent: the peer's budget was spent.
    #[serde(default)]
    pub answers_throttled: u64,
}

/// The last (generation, seq) accepted from one peer: what the host
/// persists so that a restart of ours does not reopen the peer's past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// Node name.
    pub node: String,
    /// Its generation.
    pub generation: u64,
    /// Highest seq accepted in that generation.
    pub seq: u64,
}

/// A token bucket in thousandths of a token, refilled by the time passed in.
#[derive(Debug, Clone)]
struct Budget {
    milli: u64,
    at: Millis,
}

impl Budget {
    fn full() -> Budget {
        Budget {
            milli: ANSWER_BURST * 1000,
            at: Millis(0),
        }
    }

    fn refill(&mut self, now: Millis) {
        let ms = now.since(self.at).as_millis() as u64;
        self.milli = (self.milli + ms.saturating_mul(ANSWER_RATE)).min(ANSWER_BURST * 1000);
        self.at = self.at.max(now);
    }

    /// Whether at least one answer is available (does not spend it).
    fn available(&mut self, now: Millis) -> bool {
        self.refill(now);
        self.milli >= 1000
    }

    /// Spend one answer; false when none is left.
    fn take(&mut self, now: Millis) -> bool {
        self.refill(now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// Slots other than the active one accepted until a deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationWindow {
    /// The other listed slots.
    pub slots: Vec<u8>,
    /// When they stop verifying.
    pub until: Millis,
}

#[derive(Debug)]
struct Peer {
    uuid: Option<[u8; 16]>,
    seq: PeerSeq,
    ack_trigger: u64,
    /// Missing seq -> (first requested, next request due).
    rexmit: BTreeMap<u64, (Millis, Millis)>,
    acked: u64,
    /// Messages for the caller that arrived while an earlier seq was
    /// missing, by seq: delivered in order once the gap fills or is given
    /// up, so a retransmission never lands after what followed it.
    held: BTreeMap<u64, Event>,
    /// `ts` of its newest in-order sequenced message (0: none yet): its
    /// clock as it last showed it, the reference for `NS_*` freshness.
    ts_ref: u64,
    /// What its requests may still make us send.
    budget: Budget,
}

#[derive(Debug)]
struct HistEntry {
    seq: u64,
    packet: OutPacket,
    /// When it was last resent on request (`None`: never).
    last_resent: Option<Millis>,
}

/// One node's wire session. See the module docs.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    uuid: [u8; 16],
    generation: u64,
    next_seq: u64,
    flow_control: bool,
    peers: BTreeMap<String, Peer>,
    history: VecDeque<HistEntry>,
    out: VecDeque<OutPacket>,
    reqnodes: Option<(String, Millis)>,
    nodes_exchanged: bool,
    counters: Arc<DropCounters>,
    stats: SessionStats,
    uuid_clash_warned: bool,
    rng: StdRng,
    /// Wall-clock seconds at a monotonic instant, as last told by the host:
    /// `ts` is derived from it for every message.
    wall: (Millis, u64),
    /// The load average line stamped into `ld`, as last told by the host.
    loadavg: String,
    /// Other authkeys slots still accepted, and until when.
    rotation: Option<RotationWindow>,
    /// Inactive slots already warned about (one warning each per keyring).
    inactive_warned: Vec<u8>,
    /// The refusal to send past the seq space was logged.
    seq_refusal_logged: bool,
}

impl Endpoint {
    /// A session for `cfg`, with this start's identity.
    pub fn new(cfg: EndpointConfig, identity: Identity) -> Endpoint {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let peers = cfg
            .nodes
            .iter()
            .filter(|n| **n != cfg.node)
            .map(|n| {
                (
                    n.clone(),
                    Peer {
                        uuid: None,
                        seq: PeerSeq::default(),
                        ack_trigger: rng.gen_range(0..10),
                        rexmit: BTreeMap::new(),
                        held: BTreeMap::new(),
                        acked: 0,
                        ts_ref: 0,
                        budget: Budget::full(),
                    },
                )
            })
            .collect();
        Endpoint {
            flow_control: cfg.flow_control,
            cfg,
            uuid: identity.uuid,
            generation: identity.generation,
            next_seq: 1,
            peers,
            history: VecDeque::new(),
            out: VecDeque::new(),
            reqnodes: None,
            nodes_exchanged: false,
            counters: Arc::new(DropCounters::default()),
            stats: SessionStats::default(),
            uuid_clash_warned: false,
            rng,
            wall: (Millis(0), 1),
            loadavg: "n/a".to_string(),
            rotation: None,
            inactive_warned: Vec::new(),
            seq_refusal_logged: false,
        }
    }

    /// Open the key-rotation window at `now`: for
    /// [`EndpointConfig::key_rotation_window`] every listed authkeys slot
    /// verifies, then only the active one. The Node calls it at start;
    /// [`Endpoint::set_keyring`] at a reload.
    pub fn open_key_rotation_window(&mut self, now: Millis) {
        let slots = self.cfg.keyring.other_slots();
        let window = self.cfg.key_rotation_window;
        self.inactive_warned.clear();
        self.rotation = (!slots.is_empty() && !window.is_zero()).then(|| RotationWindow {
            slots,
            until: now.plus(window),
        });
        let active = self.cfg.keyring.active().index;
        match &self.rotation {
            Some(w) => tracing::info!(
                "authkeys: signing with key {active}; key(s) {:?} also verify for {}s (key-rotation window), then only key {active}",
                w.slots,
                window.as_secs()
            ),
            None => tracing::debug!("authkeys: only key {active} verifies"),
        }
    }

    /// Replace the keys (a reload changed authkeys) and open a new
    /// key-rotation window at `now`.
    pub fn set_keyring(&mut self, keyring: Keyring, now: Millis) {
        self.cfg.keyring = keyring;
        self.open_key_rotation_window(now);
    }

    /// The key-rotation window, while one is open at `now`.
    pub fn key_rotation(&self, now: Millis) -> Option<&RotationWindow> {
        self.rotation.as_ref().filter(|w| now < w.until)
    }

    /// Restore each peer's last accepted (generation, seq) from before our
    /// restart (the host persisted them). Call before the first packet;
    /// unknown nodes and empty states are ignored.
    pub fn restore_peers(&mut self, states: &[PeerState]) {
        for st in states {
            if let Some(p) = self.peers.get_mut(&st.node) {
                if st.generation != 0 && p.seq.generation == 0 {
                    p.seq = PeerSeq::restored(st.generation, st.seq);
                }
            }
        }
    }

    /// Each heard peer's last accepted (generation, seq), for the host to
    /// persist.
    pub fn peer_state(&self) -> Vec<PeerState> {
        self.peers
            .iter()
            .filter(|(_, p)| p.seq.generation != 0)
            .map(|(name, p)| PeerState {
                node: name.clone(),
                generation: p.seq.generation,
                seq: p.seq.last_seq.max(p.seq.floor_seq),
            })
            .collect()
    }

    /// True once fewer than [`SEQ_RESERVE`] own sequence numbers remain:
    /// time to restart into a new generation (peers only accept a seq reset
    /// with a higher generation).
    pub fn seq_exhausted(&self) -> bool {
        self.next_seq > u64::MAX - SEQ_RESERVE
    }

    /// The wall clock (`wall_secs` since the epoch at monotonic `now`) and,
    /// when known, the `/proc/loadavg` line, stamped into later messages.
    pub fn set_environment(&mut self, now: Millis, wall_secs: u64, loadavg: Option<String>) {
        self.wall = (now, wall_secs.max(1));
        if let Some(l) = loadavg {
            self.loadavg = l;
        }
    }

    fn wall_secs(&self, now: Millis) -> u64 {
        self.wall.1 + now.since(self.wall.0).as_secs()
    }

    /// The drop counters (shareable with a status reporter).
    pub fn counters(&self) -> Arc<DropCounters> {
        self.counters.clone()
    }

    /// Reliable-delivery counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Local node name.
    pub fn node(&self) -> &str {
        &self.cfg.node
    }

    /// This start's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether flow control is (still) on.
    pub fn flow_control(&self) -> bool {
        self.flow_control
    }

    /// True once a `repnodes` answered our `reqnodes` (or none was needed).
    pub fn nodes_exchanged(&self) -> bool {
        self.nodes_exchanged
    }

    /// Own sequenced messages not yet acknowledged by every live peer.
    pub fn unacked(&self, alive: Liveness) -> u64 {
        let last = self.next_seq - 1;
        let min_acked = self
            .peers
            .iter()
            .filter(|(name, _)| alive(name))
            .map(|(_, p)| p.acked)
            .min()
            .unwrap_or(last);
        last.saturating_sub(min_acked)
    }

    /// A `status` message body: `t=status`, `st`, `dt` (hex ms). The session
    /// adds `protocol` while flow control is on.
    pub fn status_message(st: &str, deadtime_ms: u64) -> Message {
        let mut m = Message::new(T_STATUS);
        m.push_str(F_STATUS, st)
            .push_fmt(F_DT, format_args!("{deadtime_ms:x}"));
        m
    }

    /// Stamp the standard fields, sign, queue for sending; returns the seq
    /// (None for `NS_*` types, and for a sequenced message refused because
    /// the seq space is used up).
    pub fn send(&mut self, mut msg: Message, now: Millis) -> Option<u64> {
        let t = msg.msg_type().unwrap_or_default().to_string();
        let sequenced = !is_unsequenced(&t);
        if sequenced && self.next_seq == u64::MAX {
            // heartbeat would wrap to 0, which every receiver refuses, then
            // to small seqs, which they drop as old: sending nothing is the
            // same outcome without pretending.
            if !std::mem::replace(&mut self.seq_refusal_logged, true) {
                tracing::error!(
                    "sequence numbers of generation {} are used up: not sending {t}; restart wasmbeat to start a new generation",
                    self.generation
                );
            }
            return None;
        }
        for f in [
            F_SRC, F_SRCUUID, F_SEQ, F_HG, F_TS, F_LD, F_TTL, F_AUTH, F_DESTUUID,
        ] {
            msg.remove(f);
        }
        if t == T_STATUS {
            msg.remove(F_PROTOCOL);
            if self.flow_control {
                msg.push_str(F_PROTOCOL, PROTOCOL_VERSION);
            }
        }
        if let Some(dest) = msg.get_str(F_DEST).map(str::to_ascii_lowercase) {
            let uuid = if dest == self.cfg.node {
                Some(self.uuid)
            } else {
                self.peers.get(&dest).and_then(|p| p.uuid)
            };
            if let Some(u) = uuid {
                msg.push_bin(F_DESTUUID, &u);
            }
        }
        msg.push_str(F_SRC, &self.cfg.node);
        msg.push_bin(F_SRCUUID, &self.uuid);
        let seq = if sequenced {
            let s = self.next_seq;
            self.next_seq += 1;
            msg.push_fmt(F_SEQ, format_args!("{s:x}"));
            Some(s)
        } else {
            None
        };
        msg.push_fmt(F_HG, format_args!("{:x}", self.generation));
        msg.push_fmt(F_TS, format_args!("{:x}", self.wall_secs(now)));
        if sequenced {
            msg.push_str(F_LD, &self.loadavg);
        }
        msg.push_fmt(
            F_TTL,
            format_args!("{}", self.cfg.nodes.len() + self.cfg.hopfudge as usize),
        );
        let packet = self.seal(msg, t, seq);
        if let Some(s) = seq {
            self.history.push_back(HistEntry {
                seq: s,
                packet: packet.clone(),
                last_resent: None,
            });
            while self.history.len() > MAX_HISTORY {
                self.history.pop_front();
            }
        }
        self.out.push_back(packet);
        seq
    }

    /// Sign a fully stamped message into both framings.
    fn seal(&self, mut msg: Message, msg_type: String, seq: Option<u64>) -> OutPacket {
        let ring = &self.cfg.keyring;
        // Signed in place: the classic form always carries `auth` (last),
        // the netstring form only with `msgfmt classic`. Every keepalive
        // passes here, so no copy of the message is made.
        ring.add_classic_auth(&mut msg);
        let classic = codec::encode_classic(&msg).into();
        if !self.cfg.classic_auth_field {
            msg.remove(F_AUTH);
        }
        let mut ns = codec::encode_netstring_body(&msg);
        let token = ring.sign(&ns);
        codec::append_trailer(&mut ns, &token);
        OutPacket {
            netstring: ns.into(),
            classic,
            msg_type,
            seq,
            resend: false,
        }
    }

    /// Next packet to put on every medium.
    pub fn poll_transmit(&mut self) -> Option<OutPacket> {
        self.out.pop_front()
    }

    /// Handle one received packet from medium `link`. Returns the events for
    /// the caller, or why the packet was dropped (also counted).
    pub fn receive(
        &mut self,
        packet: &[u8],
        link: usize,
        now: Millis,
    ) -> Result<Vec<Event>, DropReason> {
        let mut r = self.receive_inner(packet, link, now);
        if let Ok(events) = &mut r {
            events.extend(self.release_held());
        }
        match &r {
            Ok(events) if matches!(events[..], [Event::Duplicate { .. }]) => {
                self.counters.count(DropReason::Duplicate)
            }
            Ok(_) => self.counters.count_accepted(),
            Err(reason) => self.counters.count(*reason),
        }
        r
    }

    fn receive_inner(
        &mut self,
        packet: &[u8],
        link: usize,
        now: Millis,
    ) -> Result<Vec<Event>, DropReason> {
        let frame = codec::decode(packet, &self.cfg.limits).map_err(|e| {
            tracing::debug!(error = %e, "dropping undecodable packet");
            DropReason::of_decode(&e)
        })?;
        let slot = self.cfg.keyring.verify(&frame, packet).map_err(|e| {
            tracing::debug!(error = %e, src = ?frame.message.get_str(F_SRC), "dropping unauthenticated packet");
            match e {
                super::auth::AuthError::Missing => DropReason::AuthMissing,
                _ => DropReason::AuthFailed,
            }
        })?;
        self.check_slot(slot, frame.message.get_str(F_SRC), now)?;
        let msg = frame.message;
        let header = Header::parse(&msg).map_err(|e| {
            tracing::debug!(error = %e, "dropping message with bad standard fields");
            DropReason::BadHeader
        })?;
        if header.src == self.cfg.node {
            return Err(DropReason::OwnMessage);
        }
        if header.srcuuid == Some(self.uuid) && !self.uuid_clash_warned {
            // Usually a cloned state directory; heartbeat would confuse the
            // two nodes (it looks nodes up by UUID first).
            self.uuid_clash_warned = true;
            tracing::warn!(node = %header.src, "peer uses our node UUID (copied hb_uuid?)");
        }
        let mut events = Vec::new();
        let max_delay = self.cfg.max_rexmit_delay;
        let flow = self.flow_control;
        let only_peer = self.peers.len() == 1;
        let my_uuid = self.uuid;
        let my_name = self.cfg.node.clone();
        let Some(peer) = self.peers.get_mut(&header.src) else {
            tracing::debug!(src = %header.src, "dropping message from a node not in the configuration");
            return Err(DropReason::UnknownNode);
        };
        if let Some(u) = header.srcuuid {
            if peer.uuid.is_some_and(|old| old != u) {
                tracing::info!(node = %header.src, "node changed its uuid");
            }
            peer.uuid = Some(u);
        }
        let is_status = header.msg_type == T_STATUS;
        let verdict = peer.seq.check(header.generation, header.seq, is_status);
        match &verdict {
            // Counted as a drop, but the copy still proves the medium works:
            // the caller credits the link.
            SeqVerdict::Duplicate => {
                return Ok(vec![Event::Duplicate {
                    node: header.src.clone(),
                    link,
                }])
            }
            SeqVerdict::Old | SeqVerdict::OldGeneration => {
                tracing::debug!(src = %header.src, hg = header.generation, seq = ?header.seq, "dropping replayed/old message");
                return Err(DropReason::Replay);
            }
            SeqVerdict::Restarted { old } => {
                tracing::info!(node = %header.src, old, new = header.generation, "heartbeat restart on node");
                peer.rexmit.clear();
                // What the old incarnation said and we held is history.
                peer.held.clear();
                peer.ts_ref = header.ts;
                events.push(Event::PeerRestarted {
                    node: header.src.clone(),
                    old: *old,
                    new: header.generation,
                });
            }
            SeqVerdict::Accept { gap, filled } => {
                match header.seq {
                    // The newest seq so far: the sender's clock as it is now
                    // (even if it stepped back: re-anchor, never judge).
                    Some(s) if !*filled && s == peer.seq.last_seq => peer.ts_ref = header.ts,
                    Some(_) => {}
                    None if peer.ts_ref != 0
                        && header.ts.saturating_add(TS_TOLERANCE_SECS) < peer.ts_ref =>
                    {
                        tracing::debug!(src = %header.src, t = %header.msg_type, ts = header.ts, newest = peer.ts_ref, "dropping stale unsequenced message (replay?)");
                        return Err(DropReason::Stale);
                    }
                    None => {}
                }
                if *filled {
                    self.stats.gaps_filled += 1;
                    if let Some(s) = header.seq {
                        peer.rexmit.remove(&s);
                    }
                }
                if flow {
                    for &s in gap {
                        // heartbeat waits a random 50 ms..max_rexmit_delay so
                        // that of many nodes missing one packet, one asks and
                        // the others see the (broadcast) resend. With one
                        // peer there is nobody else to wait for, and what
                        // waits behind the gap (after a heal: the peer's
                        // resource report) should not.
                        let delay = if only_peer {
                            0
                        } else {
                            self.rng
                                .gen_range(50..=max_delay.as_millis().max(50) as u64)
                        };
                        peer.rexmit
                            .insert(s, (now, now.plus(Duration::from_millis(delay))));
                    }
                }
            }
        }
        // ACK in-order progress at one random residue of seq mod 10, like
        // heartbeat, so every peer's history keeps draining.
        if flow {
            if let Some(s) = header.seq {
                if peer.seq.missing.is_empty()
                    && s == peer.seq.last_seq
                    && s % 10 == peer.ack_trigger
                {
                    let mut ack = Message::new(T_ACKMSG);
                    ack.push_str(F_DEST, &header.src)
                        .push_fmt(F_ACKSEQ, format_args!("{s:x}"));
                    self.stats.acks_sent += 1;
                    self.send(ack, now);
                }
            }
        }
        // Seq tracking is done; only now decide whether the message is ours.
        let for_us = match (&header.dest, header.destuuid) {
            (Some(d), _) => *d == my_name,
            (None, Some(u)) => u == my_uuid,
            (None, None) => true,
        };
        if !for_us {
            return Ok(events);
        }
        let peer = self.peers.get_mut(&header.src).expect("looked up above");
        match header.msg_type.as_str() {
            T_STATUS => {
                if self.flow_control && !msg.has(F_PROTOCOL) {
                    tracing::warn!(node = %header.src, "flow control disabled due to a peer without protocol support");
                    self.flow_control = false;
                    // Nothing will be retransmitted any more: deliver what
                    // was waiting, in order, and never hold again.
                    for p in self.peers.values_mut() {
                        p.rexmit.clear();
                        p.seq.missing.clear();
                    }
                    self.reqnodes = None;
                    self.nodes_exchanged = true;
                    events.push(Event::FlowControlDisabled {
                        node: header.src.clone(),
                    });
                }
                events.push(Event::Message {
                    header,
                    message: msg,
                    link,
                });
            }
            T_ACKMSG => {
                self.stats.acks_received += 1;
                if let Some(a) = msg.get_hex(F_ACKSEQ) {
                    // Late/out-of-order ACKs and ACKs of seqs we never sent are ignored.
                    if a < self.next_seq && a > peer.acked {
                        peer.acked = a;
                    }
                }
            }
            T_REXMIT => {
                if let (Some(first), Some(last)) = (msg.get_dec(F_FIRSTSEQ), msg.get_dec(F_LASTSEQ))
                {
                    self.stats.rexmit_received += 1;
                    if !peer.budget.available(now) {
                        tracing::debug!(src = %header.src, first, last, "retransmission request over the peer's answer budget: ignored");
                        return Err(DropReason::RateLimited);
                    }
                    let src = header.src.clone();
                    self.answer_rexmit(&src, first, last, now);
                }
            }
            T_NAKREXMIT => {
                if let Some(s) = msg.get_hex(F_FIRSTSEQ) {
                    if peer.seq.give_up(s) {
                        peer.rexmit.remove(&s);
                        tracing::warn!(node = %header.src, seq = s, "irretrievably lost packet");
                        self.stats.lost += 1;
                        events.push(Event::Lost {
                            node: header.src.clone(),
                            seq: s,
                        });
                    }
                }
            }
            T_REQNODES => {
                if !peer.budget.take(now) {
                    self.stats.answers_throttled += 1;
                    tracing::debug!(src = %header.src, "reqnodes over the peer's answer budget: not answered");
                    return Err(DropReason::RateLimited);
                }
                let mut rep = Message::default();
                let mut list = String::new();
                for n in &self.cfg.nodes {
                    list.push_str(n);
                    list.push(' ');
                }
                // Field order as heartbeat sends it: dest before t.
                rep.push_str(F_DEST, &header.src)
                    .push_str(F_TYPE, T_REPNODES)
                    .push_str(F_NODELIST, &list)
                    .push_str(F_DELNODELIST, " ");
                self.stats.reqnodes_answered += 1;
                self.send(rep, now);
            }
            T_REPNODES => {
                let split = |f: &str| -> Vec<String> {
                    msg.get_str(f)
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect()
                };
                self.stats.repnodes_received += 1;
                if self
                    .reqnodes
                    .as_ref()
                    .is_some_and(|(to, _)| *to == header.src)
                {
                    self.reqnodes = None;
                    self.nodes_exchanged = true;
                }
                events.push(Event::NodeList {
                    from: header.src.clone(),
                    nodes: split(F_NODELIST),
                    deleted: split(F_DELNODELIST),
                });
            }
            _ => {
                let seq = header.seq;
                let hold = self.flow_control
                    && seq.is_some_and(|s| peer.seq.missing.first().is_some_and(|m| *m < s));
                let event = Event::Message {
                    header,
                    message: msg,
                    link,
                };
                match seq {
                    Some(s) if hold => {
                        self.stats.held_back += 1;
                        peer.held.insert(s, event);
                    }
                    _ => events.push(event),
                }
            }
        }
        Ok(events)
    }

    /// Held messages whose earlier seqs all arrived or were given up, in
    /// seq order (and the oldest beyond [`MAX_HELD`]).
    fn release_held(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for p in self.peers.values_mut() {
            while let Some((&s, _)) = p.held.first_key_value() {
                let gap_below = p.seq.missing.first().is_some_and(|m| *m < s);
                if gap_below && p.held.len() <= MAX_HELD {
                    break;
                }
                if let Some(e) = p.held.remove(&s) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// Accept a verified slot: the active one always, another listed one
    /// only inside the key-rotation window.
    fn check_slot(
        &mut self,
        slot: u8,
        claimed_src: Option<&str>,
        now: Millis,
    ) -> Result<(), DropReason> {
        let active = self.cfg.keyring.active().index;
        if slot == active
            || self
                .key_rotation(now)
                .is_some_and(|w| w.slots.contains(&slot))
        {
            return Ok(());
        }
        if self.inactive_warned.contains(&slot) {
            tracing::debug!(slot, src = ?claimed_src, "dropping message signed with an inactive authkeys slot");
        } else {
            self.inactive_warned.push(slot);
            tracing::warn!(
                "dropping messages signed with authkeys key {slot} (from {}): only key {active} (auth {active}) verifies outside the key-rotation window; finish the key rotation on that node, or reload here to reopen the window",
                claimed_src.unwrap_or("?")
            );
        }
        Err(DropReason::InactiveKey)
    }

    /// Resend what `to` asks for, or NAK it, each answer drawn from its
    /// budget (resends skipped as too recent cost nothing).
    fn answer_rexmit(&mut self, to: &str, first: u64, last: u64, now: Millis) {
        if last < first {
            return;
        }
        let last = last.min(first.saturating_add(MAX_REXMIT_BATCH - 1));
        for s in first..=last {
            if let Some(h) = self.history.iter_mut().find(|h| h.seq == s) {
                if h.last_resent
                    .is_none_or(|t| now.since(t) >= MIN_RESEND_INTERVAL)
                {
                    let Some(p) = self.peers.get_mut(to) else {
                        return;
                    };
                    if !p.budget.take(now) {
                        self.stats.answers_throttled += 1;
                        continue;
                    }
                    h.last_resent = Some(now);
                    self.stats.resent += 1;
                    let mut again = h.packet.clone();
                    again.resend = true;
                    self.out.push_back(again);
                }
            } else {
                let oldest = self.history.front().map(|h| h.seq).unwrap_or(self.next_seq);
                let why = if s < oldest {
                    "seqno too low"
                } else {
                    "seqno not found"
                };
                let Some(p) = self.peers.get_mut(to) else {
                    return;
                };
                if !p.budget.take(now) {
                    self.stats.answers_throttled += 1;
                    continue;
                }
                let mut nak = Message::new(T_NAKREXMIT);
                nak.push_str(F_DEST, to)
                    .push_fmt(F_FIRSTSEQ, format_args!("{s:x}"))
                    .push_str(F_INFO, why);
                self.stats.naks_sent += 1;
                self.send(nak, now);
            }
        }
    }

    /// Start the `reqnodes` exchange with the first live peer (heartbeat
    /// does this once every node was heard from or declared dead). Returns
    /// false when there is nothing to ask (no flow control, no live peer).
    pub fn request_nodes(&mut self, now: Millis, alive: Liveness) -> bool {
        if !self.flow_control {
            self.nodes_exchanged = true;
            return false;
        }
        let target = self
            .cfg
            .nodes
            .iter()
            .find(|n| self.peers.contains_key(*n) && alive(n))
            .cloned();
        match target {
            Some(t) => {
                self.send_reqnodes(&t, now);
                self.reqnodes = Some((t, now.plus(REQNODES_INTERVAL)));
                true
            }
            None => {
                self.nodes_exchanged = true;
                false
            }
        }
    }

    fn send_reqnodes(&mut self, to: &str, now: Millis) {
        let mut m = Message::new(T_REQNODES);
        m.push_str(F_DEST, to);
        self.send(m, now);
    }

    /// Timers: retransmission requests and give-ups, `reqnodes` repeats.
    /// Call at [`Endpoint::next_timeout`], or simply about every [`TICK`].
    pub fn handle_timeout(&mut self, now: Millis, alive: Liveness) -> Vec<Event> {
        let mut events = Vec::new();
        let mut requests = Vec::new();
        let period = self.cfg.max_rexmit_delay;
        for (name, p) in self.peers.iter_mut() {
            let live = alive(name);
            let mut lost = Vec::new();
            for (&s, (first, next)) in p.rexmit.iter_mut() {
                if now.since(*first) > REXMIT_GIVE_UP {
                    lost.push(s);
                } else if *next <= now && live {
                    requests.push((name.clone(), s));
                    *next = now.plus(period);
                }
            }
            for s in lost {
                self.stats.lost += 1;
                p.rexmit.remove(&s);
                p.seq.give_up(s);
                events.push(Event::Lost {
                    node: name.clone(),
                    seq: s,
                });
            }
        }
        events.extend(self.release_held());
        for (to, s) in requests {
            self.stats.rexmit_requested += 1;
            let mut m = Message::new(T_REXMIT);
            m.push_str(F_DEST, &to)
                .push_fmt(F_FIRSTSEQ, format_args!("{s}"))
                .push_fmt(F_LASTSEQ, format_args!("{s}"));
            self.send(m, now);
        }
        if let Some((to, due)) = self.reqnodes.clone() {
            if due <= now {
                self.send_reqnodes(&to, now);
                self.reqnodes = Some((to, now.plus(REQNODES_INTERVAL)));
            }
        }
        events
    }

    /// When [`Endpoint::handle_timeout`] next has work to do: a
    /// retransmission to request or give up, a reqnodes retry. None when
    /// nothing is pending, so an idle endpoint costs no wake-ups.
    pub fn next_timeout(&self, now: Millis, alive: Liveness) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n: Millis| n.min(t)));
        for (name, p) in &self.peers {
            let live = alive(name);
            for (first, due) in p.rexmit.values() {
                // Give-up is strictly after REXMIT_GIVE_UP.
                at(first.plus(REXMIT_GIVE_UP + Duration::from_millis(1)));
                // A request is only sent to a live peer; a dead one's due
                // requests wait for its next packet, which recomputes this.
                if live || *due > now {
                    at(*due);
                }
            }
        }
        if let Some((_, due)) = &self.reqnodes {
            at(*due);
        }
        next
    }

    /// The session's view of every peer (identity and sequence state).
    pub fn peers(&self) -> Vec<PeerView> {
        self.peers
            .iter()
            .map(|(name, p)| PeerView {
                name: name.clone(),
                uuid: p.uuid,
                generation: p.seq.generation,
                last_seq: p.seq.last_seq,
                acked: p.acked,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::keys::{AuthMethod, Secret};

    /// Our own seq never wraps: the reserve flags the end early, seq
    /// `u64::MAX` is never sent, unsequenced messages still go out.
    #[test]
    fn own_seq_space_ends_without_wrapping() {
        let ring = Keyring::single(1, AuthMethod::Sha1(Secret::new("s")));
        let cfg = EndpointConfig::new("alpha", &["alpha", "beta"], ring);
        let mut e = Endpoint::new(
            cfg,
            Identity {
                uuid: [1; 16],
                generation: 9,
            },
        );
        let now = Millis(0);
        assert!(!e.seq_exhausted());
        e.next_seq = u64::MAX - SEQ_RESERVE;
        assert!(!e.seq_exhausted());
        assert_eq!(
            e.send(Message::new("custom"), now),
            Some(u64::MAX - SEQ_RESERVE)
        );
        assert!(e.seq_exhausted());
        e.next_seq = u64::MAX - 1;
        assert_eq!(e.send(Message::new("custom"), now), Some(u64::MAX - 1));
        assert_eq!(e.send(Message::new("custom"), now), None);
        assert_eq!(e.send(Message::new("custom"), now), None);
        assert_eq!(e.next_seq, u64::MAX);
        let mut ack = Message::new(T_ACKMSG);
        ack.push_str(F_DEST, "beta").push_str(F_ACKSEQ, "1");
        assert_eq!(e.send(ack, now), None);
        let sent: Vec<_> = std::iter::from_fn(|| e.poll_transmit()).collect();
        assert_eq!(sent.len(), 3, "two sequenced, one NS_ackmsg");
        assert_eq!(sent[1].seq, Some(u64::MAX - 1));
        assert_eq!(e.unacked(&|_| true), u64::MAX - 1);
    }
}

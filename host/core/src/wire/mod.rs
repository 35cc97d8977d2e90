//! Heartbeat 3.0.6 wire protocol: message model, both framings, authkeys
//! authentication, standard fields, persisted identity, replay protection
//! and the reliable-delivery session layer (ACK / retransmit / node lists).
//! Pure: the persisted identity files are read by the host, which hands the
//! result in as an [`Identity`].
//!
//! Receive path: [`codec::decode`] -> [`auth::Keyring::verify`] ->
//! [`fields::Header::parse`] -> [`replay::PeerSeq::check`]; the
//! [`session::Endpoint`] runs all of it and counts every drop by reason in
//! [`DropCounters`].
//!
//! # Mapping to the failover core
//!
//! The core's typed messages map to [`Message`] by field name; constants
//! for every R1 type and field are in [`fields`]. Outgoing: build only the
//! type-specific fields, in heartbeat's order, and hand the message to
//! [`Endpoint::send`], which appends `protocol` (status), `destuuid`,
//! `src`, `srcuuid`, `seq`, `hg`, `ts`, `ld`, `ttl`, `auth` and signs:
//!
//! ```text
//! Status { st, deadtime }  -> Endpoint::status_message(st, deadtime_ms)   t=status st dt(hex ms)
//! Starting                 -> Message::new("starting")
//! Resource { hold, full, stable, info }
//!                          -> t=resource rsc_hold [rtype=full] [isstable=1|0] [info]
//! AskResources { hold, info } -> t=ask_resources rsc_hold info(me|other|done)
//! HbTakeover { hold }      -> t=hb_takeover rsc_hold
//! Shutdone                 -> t=shutdone st=dead
//! Stonith { node, result } -> t=stonith node result
//! IpRequest { key }        -> t=ip-request ipaddr
//! IpRequestResp { dest, key, weown, dest_generation }
//!                          -> dest t=ip-request-resp ipaddr weown ok=OK [wb_desthg]
//! ```
//!
//! Incoming: [`Event::Message`] carries the parsed [`fields::Header`]
//! (`src`, `generation`, `seq`, `dest`, ...) and the [`Message`]; read the
//! type's fields with [`Message::get_str`] / [`Message::get_hex`].
//!
//! Handled entirely in the session layer (never passed up): `NS_ackmsg`,
//! `NS_rexmit`, `NS_nak_rexmit`, `reqnodes` (answered with `repnodes`).
//! Passed up: `status` (after the session noted `st`, `dt`, `protocol`),
//! `repnodes` (as [`Event::NodeList`]), and every other type, including
//! unknown ones (heartbeat hands those to rc.d scripts; the core may
//! ignore them). Also reported: [`Event::PeerRestarted`],
//! [`Event::Duplicate`] (a second copy: proof that its medium works),
//! [`Event::Lost`] and [`Event::FlowControlDisabled`]. Liveness of peers
//! and media is the failover core's (`crate::cluster`), not the session's.

pub mod auth;
pub mod codec;
pub mod fields;
pub mod keys;
pub mod message;
pub mod replay;
pub mod session;
pub mod typed;

pub use auth::Keyring;
pub use codec::{DecodeError, Format, Limits};
pub use message::{Field, Message, Value};
pub use session::{
    Endpoint, EndpointConfig, Event, Liveness, OutPacket, PeerState, PeerView, RotationWindow,
    SessionStats,
};

/// This node's UUID and the generation of the current start (the host
/// persists them the way heartbeat does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// 16-byte node UUID (random v4 when created).
    pub uuid: [u8; 16],
    /// Generation of this start (`hg`).
    pub generation: u64,
}

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an incoming packet was dropped (one counter each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Larger than the limit.
    Oversized,
    /// Ended early.
    Truncated,
    /// Not a heartbeat framing / malformed.
    Malformed,
    /// Too many fields or a field too long.
    LimitExceeded,
    /// No signature.
    AuthMissing,
    /// Signature wrong (bad key, tampered) or unknown slot.
    AuthFailed,
    /// Missing/invalid standard fields (t, src, ts, seq).
    BadHeader,
    /// `src` is not a configured node.
    UnknownNode,
    /// Same seq already received (normal with redundant media).
    Duplicate,
    /// Old seq or old generation: replay.
    Replay,
    /// Our own message heard back (normal on bcast).
    OwnMessage,
    /// Correctly signed, but with an authkeys slot other than the active
    /// `auth N` one, outside the key-rotation window.
    InactiveKey,
    /// An unsequenced (`NS_*`) message whose `ts` is far older than the
    /// sender's clock as its latest sequenced message showed it: a replay.
    Stale,
    /// A request (`NS_rexmit`, `reqnodes`) over the sender's answer budget:
    /// not answered, so a flood cannot make us transmit without bound.
    RateLimited,
}

impl DropReason {
    /// All reasons, for iteration.
    pub const ALL: [DropReason; 14] = [
        DropReason::Oversized,
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::LimitExceeded,
        DropReason::AuthMissing,
        DropReason::AuthFailed,
        DropReason::BadHeader,
        DropReason::UnknownNode,
        DropReason::Duplicate,
        DropReason::Replay,
        DropReason::OwnMessage,
        DropReason::InactiveKey,
        DropReason::Stale,
        DropReason::RateLimited,
    ];

    /// Stable snake_case name for status output and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Oversized => "oversized",
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::LimitExceeded => "limit_exceeded",
            DropReason::AuthMissing => "auth_missing",
            DropReason::AuthFailed => "auth_failed",
            DropReason::BadHeader => "bad_header",
            DropReason::UnknownNode => "unknown_node",
            DropReason::Duplicate => "duplicate",
            DropReason::Replay => "replay",
            DropReason::OwnMessage => "own_message",
            DropReason::InactiveKey => "inactive_key",
            DropReason::Stale => "stale",
            DropReason::RateLimited => "rate_limited",
        }
    }

    /// The counter a decode error falls under.
    pub fn of_decode(e: &DecodeError) -> DropReason {
        match e {
            DecodeError::TooLong { .. } => DropReason::Oversized,
            DecodeError::Truncated => DropReason::Truncated,
            DecodeError::TooManyFields(_) | DecodeError::ValueTooLong { .. } => {
                DropReason::LimitExceeded
            }
            _ => DropReason::Malformed,
        }
    }
}

/// Counters of dropped packets by reason; shared, lock-free.
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: [AtomicU64; DropReason::ALL.len()],
    accepted: AtomicU64,
}

impl DropCounters {
    /// Count one drop.
    pub fn count(&self, r: DropReason) {
        self.counts[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Current count for one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts[r as usize].load(Ordering::Relaxed)
    }

    /// Count one accepted message.
    pub fn count_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// (name, count) for every reason, in a fixed order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .map(|&r| (r.name(), self.get(r)))
            .collect()
    }
}

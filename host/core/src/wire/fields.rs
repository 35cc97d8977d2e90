//! Field names and message types of heartbeat 3.0.6 (cluster-glue `ha_msg.h`,
//! heartbeat `heartbeat.h`), and the standard header every message carries.

use super::message::Message;
use std::borrow::Cow;

/// Message type.
pub const F_TYPE: &str = "t";
/// Sender node name.
pub const F_SRC: &str = "src";
/// Sender node UUID (16 raw bytes, binary field).
pub const F_SRCUUID: &str = "srcuuid";
/// Sequence number (hex), absent on `NS_*` messages.
pub const F_SEQ: &str = "seq";
/// Sender generation (hex).
pub const F_HG: &str = "hg";
/// Sender's `time(NULL)` (hex).
pub const F_TS: &str = "ts";
/// Sender's /proc/loadavg line.
pub const F_LD: &str = "ld";
/// Node count + hopfudge (decimal, informational).
pub const F_TTL: &str = "ttl";
/// Classic signature `N hexdigest`.
pub const F_AUTH: &str = "auth";
/// Destination node name.
pub const F_DEST: &str = "dest";
/// Destination node UUID (binary).
pub const F_DESTUUID: &str = "destuuid";
/// Node status (`init`, `up`, `active`, `dead`).
pub const F_STATUS: &str = "st";
/// Sender's deadtime in ms (hex).
pub const F_DT: &str = "dt";
/// Flow-control capability marker (`1`).
pub const F_PROTOCOL: &str = "protocol";
/// Acknowledged sequence number (hex).
pub const F_ACKSEQ: &str = "ackseq";
/// First sequence number of a retransmit request (decimal) or NAK (hex).
pub const F_FIRSTSEQ: &str = "firstseq";
/// Last sequence number of a retransmit request (decimal).
pub const F_LASTSEQ: &str = "lastseq";
/// Free-text info.
pub const F_INFO: &str = "info";
/// `repnodes`: every normal node name followed by a space.
pub const F_NODELIST: &str = "nodelist";
/// `repnodes`: deleted nodes, each followed by a space (or one space).
pub const F_DELNODELIST: &str = "delnodelist";

/// Periodic heartbeat / status change.
pub const T_STATUS: &str = "status";
/// Flow-control acknowledgement.
pub const T_ACKMSG: &str = "NS_ackmsg";
/// Retransmission request.
pub const T_REXMIT: &str = "NS_rexmit";
/// Retransmission refusal.
pub const T_NAKREXMIT: &str = "NS_nak_rexmit";
/// Node-list request at comm-up.
pub const T_REQNODES: &str = "reqnodes";
/// Node-list reply.
pub const T_REPNODES: &str = "repnodes";

/// nice_failback: "I just came up, tell me what you hold".
pub const T_STARTING: &str = "starting";
/// nice_failback resource report (`rsc_hold`, `rtype`, `isstable`, `info`).
pub const T_RESOURCE: &str = "resource";
/// Standby protocol (`rsc_hold`, `info` = me/other/done).
pub const T_ASK_RESOURCES: &str = "ask_resources";
/// Written by hb_takeover (`rsc_hold`).
pub const T_HB_TAKEOVER: &str = "hb_takeover";
/// Last message of a graceful stop (`st=dead`).
pub const T_SHUTDONE: &str = "shutdone";
/// Fencing outcome (`node`, `result`).
pub const T_STONITH: &str = "stonith";
/// Legacy: please release this group (`ipaddr`).
pub const T_IP_REQUEST: &str = "ip-request";
/// Legacy: go-ahead (`dest`, `ipaddr`, `weown`, `ok`).
pub const T_IP_REQUEST_RESP: &str = "ip-request-resp";
/// `none`/`local`/`foreign`/`all` (`failback` in hb_takeover).
pub const F_RSC_HOLD: &str = "rsc_hold";
/// `full` in a complete resource report.
pub const F_RTYPE: &str = "rtype";
/// `1`/`0`: the sender's resource state is stable.
pub const F_ISSTABLE: &str = "isstable";
/// Node name field of `stonith`.
pub const F_NODE: &str = "node";
/// Result field of `stonith`.
pub const F_RESULT: &str = "result";
/// Group key of the legacy protocol.
pub const F_IPADDR: &str = "ipaddr";
/// `yes`/`no` in `ip-request-resp`.
pub const F_WEOWN: &str = "weown";
/// `OK` in `ip-request-resp`.
pub const F_OK: &str = "ok";

/// The field names of every heartbeat and of the standard header: a
/// decoded message names these without an allocation of its own.
const COMMON: [&str; 14] = [
    F_TYPE, F_SRC, F_SRCUUID, F_SEQ, F_HG, F_TS, F_LD, F_TTL, F_AUTH, F_DEST, F_DESTUUID, F_STATUS,
    F_DT, F_PROTOCOL,
];

/// A field name as a message holds it: borrowed when it is a common one.
pub fn field_name(name: &str) -> Cow<'static, str> {
    match COMMON.iter().find(|c| **c == name) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.to_string()),
    }
}

/// Flow-control protocol version we advertise (heartbeat sends `1`).
pub const PROTOCOL_VERSION: &str = "1";

/// The standard fields every received message must carry (spec §5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// `t`.
    pub msg_type: String,
    /// `src`, lowercased like heartbeat does.
    pub src: String,
    /// `srcuuid`, when present and 16 bytes.
    pub srcuuid: Option<[u8; 16]>,
    /// `seq`; None only for `NS_*` types.
    pub seq: Option<u64>,
    /// `hg` (0 when absent, which only a never-restarted view accepts).
    pub generation: u64,
    /// `ts` (non-zero).
    pub ts: u64,
    /// `dest`, lowercased.
    pub dest: Option<String>,
    /// `destuuid`, when present and 16 bytes.
    pub destuuid: Option<[u8; 16]>,
}

/// Why a message's standard fields are unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// No `t`.
    #[error("message has no type (t)")]
    NoType,
    /// No `src`, or empty / over-long.
    #[error("message has no valid src")]
    NoSrc,
    /// `ts` missing, not hex, or zero.
    #[error("message has no valid ts")]
    BadTs,
    /// `seq` missing / zero / not hex on a sequenced type.
    #[error("message of type {0} has no valid seq")]
    BadSeq(String),
    /// `hg` present but not hex.
    #[error("message has a malformed hg")]
    BadGeneration,
}

/// True for types that carry no sequence number.
pub fn is_unsequenced(msg_type: &str) -> bool {
    msg_type.starts_with("NS_")
}

fn uuid16(b: Option<&[u8]>) -> Option<[u8; 16]> {
    b.and_then(|b| <[u8; 16]>::try_from(b).ok())
}

impl Header {
    /// Extract and validate the standard fields.
    pub fn parse(msg: &Message) -> Result<Header, HeaderError> {
        let msg_type = msg
            .msg_type()
            .filter(|t| !t.is_empty())
            .ok_or(HeaderError::NoType)?;
        let src = msg
            .get_str(F_SRC)
            .filter(|s| !s.is_empty() && s.len() < 100)
            .ok_or(HeaderError::NoSrc)?
            .to_ascii_lowercase();
        let ts = msg
            .get_hex(F_TS)
            .filter(|&t| t != 0)
            .ok_or(HeaderError::BadTs)?;
        let seq = if is_unsequenced(msg_type) {
            None
        } else {
            Some(
                msg.get_hex(F_SEQ)
                    .filter(|&s| s != 0)
                    .ok_or_else(|| HeaderError::BadSeq(msg_type.to_string()))?,
            )
        };
        let generation = match msg.get(F_HG) {
            None => 0,
            Some(_) => msg.get_hex(F_HG).ok_or(HeaderError::BadGeneration)?,
        };
        Ok(Header {
            msg_type: msg_type.to_string(),
            src,
            srcuuid: uuid16(msg.get_bin(F_SRCUUID)),
            seq,
            generation,
            ts,
            dest: msg.get_str(F_DEST).map(|d| d.to_ascii_lowercase()),
            destuuid: uuid16(msg.get_bin(F_DESTUUID)),
        })
    }
}

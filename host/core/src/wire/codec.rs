//! Encoding and decoding of heartbeat's two wire forms, with strict limits.
//!
//! Netstring (`###\n` ... `%%%\n` + auth trailer) is what stock 3.0.6 sends
//! on UDP; classic text (`>>>\n` ... `<<<\n`) is what older nodes and every
//! serial link carry. Receivers accept both (spec §5.2-5.3).

use super::message::{Field, Message, Value};
use base64::Engine as _;
use std::borrow::Cow;

/// Start of a classic message.
pub const CLASSIC_START: &[u8] = b">>>\n";
/// End of a classic message.
pub const CLASSIC_END: &[u8] = b"<<<\n";
/// Start of a netstring message.
pub const NETSTRING_START: &[u8] = b"###\n";
/// End of the netstring body (the auth trailer follows).
pub const NETSTRING_END: &[u8] = b"%%%\n";

/// Heartbeat's MAXMSG: the largest encoded message it will read.
pub const MAXMSG: usize = 262_144;

/// Bounds applied while decoding; anything beyond them is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted packet in bytes.
    pub max_message: usize,
    /// Most fields in one message.
    pub max_fields: usize,
    /// Longest field name in bytes.
    pub max_name: usize,
    /// Longest field value in bytes (decoded).
    pub max_value: usize,
}

impl Default for Limits {
    /// Heartbeat's MAXMSG for the whole message; the per-field bounds are far
    /// above anything R1 sends (messages are ~200-360 bytes) yet keep a
    /// hostile packet from making us allocate much.
    fn default() -> Self {
        Limits {
            max_message: MAXMSG,
            max_fields: 256,
            max_name: 64,
            max_value: 16 * 1024,
        }
    }
}

/// Which of the two framings a message arrived in / is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `###\n` ... `%%%\n` + trailer.
    Netstring,
    /// `>>>\n` ... `<<<\n`.
    Classic,
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero-length packet.
    #[error("empty packet")]
    Empty,
    /// Packet larger than `Limits::max_message`.
    #[error("packet of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Packet length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Neither `###\n` nor `>>>\n` at the start.
    #[error("unknown framing (neither ###\\n nor >>>\\n)")]
    BadMagic,
    /// The packet ended before the message did.
    #[error("truncated message")]
    Truncated,
    /// A netstring length prefix is not a decimal number or is inconsistent.
    #[error("bad netstring length at byte {at}")]
    BadLength {
        /// Offset of the problem.
        at: usize,
    },
    /// A netstring item does not end in `,`.
    #[error("netstring item at byte {at} not terminated by ','")]
    MissingComma {
        /// Offset of the problem.
        at: usize,
    },
    /// A field lacks `(t)` or `=`.
    #[error("malformed field at byte {at}")]
    BadField {
        /// Offset of the problem.
        at: usize,
    },
    /// Field type digit outside 0..=5.
    #[error("unknown field type {0}")]
    BadFieldType(u8),
    /// More fields than `Limits::max_fields`.
    #[error("more than {0} fields")]
    TooManyFields(usize),
    /// A field name is empty, too long or contains bytes heartbeat never sends.
    #[error("bad field name")]
    BadName,
    /// A value longer than `Limits::max_value`.
    #[error("field value of {len} bytes exceeds the {max}-byte limit")]
    ValueTooLong {
        /// Value length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A classic binary value is not valid base64.
    #[error("bad base64 in field {0}")]
    BadBase64(String),
    /// Bytes after the end of the message (other than classic's NUL).
    #[error("{0} trailing bytes after the message")]
    TrailingGarbage(usize),
    /// The netstring trailer is not `N hexdigest`.
    #[error("malformed auth trailer")]
    BadTrailer,
}

/// A decoded packet: the message and what is needed to verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The fields, in received order (netstring: the inner `auth` field, if
    /// any, is kept as an ordinary field, as heartbeat does).
    pub message: Message,
    /// Which framing it arrived in.
    pub format: Format,
    /// Netstring only: length of the signed prefix (`###\n` .. `%%%\n`).
    pub signed_len: usize,
    /// Netstring only: the trailer's `N hexdigest` text, when present.
    pub trailer: Option<String>,
}

/// Decode one packet (either framing) within `limits`.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Frame, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    if buf.len() > limits.max_message {
        return Err(DecodeError::TooLong {
            len: buf.len(),
            max: limits.max_message,
        });
    }
    if buf.starts_with(NETSTRING_START) {
        decode_netstring(buf, limits)
    } else if buf.starts_with(CLASSIC_START) {
        decode_classic(buf, limits)
    } else if buf.len() < 4 && (NETSTRING_START.starts_with(buf) || CLASSIC_START.starts_with(buf))
    {
        Err(DecodeError::Truncated)
    } else {
        Err(DecodeError::BadMagic)
    }
}

/// Read one `LEN:payload,` item at `pos`; returns (payload range, next pos).
fn netstring_item(
    buf: &[u8],
    pos: usize,
    max: usize,
) -> Result<(usize, usize, usize), DecodeError> {
    let mut i = pos;
    while i < buf.len() && buf[i].is_ascii_digit() {
        i += 1;
        // A length of more than 9 digits can never fit within the limits.
        if i - pos > 9 {
            return Err(DecodeError::BadLength { at: pos });
        }
    }
    if i == buf.len() {
        return Err(DecodeError::Truncated);
    }
    if i == pos || buf[i] != b':' {
        return Err(DecodeError::BadLength { at: pos });
    }
    // Reject "01:" style leading zeros: heartbeat never emits them and a
    // canonical form keeps re-encoding byte-exact.
    if buf[pos] == b'0' && i - pos > 1 {
        return Err(DecodeError::BadLength { at: pos });
    }
    let len: usize = std::str::from_utf8(&buf[pos..i])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::BadLength { at: pos })?;
    if len > max {
        return Err(DecodeError::ValueTooLong { len, max });
    }
    let start = i + 1;
    let end = start
        .checked_add(len)
        .ok_or(DecodeError::BadLength { at: pos })?;
    if end >= buf.len() {
        return Err(DecodeError::Truncated);
    }
    if buf[end] != b',' {
        return Err(DecodeError::MissingComma { at: end });
    }
    Ok((start, end, end + 1))
}

fn check_name(name: &[u8], limits: &Limits) -> Result<Cow<'static, str>, DecodeError> {
    if name.is_empty()
        || name.len() > limits.max_name
        || !name
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'=' && b != b'(' && b != b')')
    {
        return Err(DecodeError::BadName);
    }
    Ok(super::fields::field_name(
        std::str::from_utf8(name).expect("ASCII checked"),
    ))
}

fn decode_netstring(buf: &[u8], limits: &Limits) -> Result<Frame, DecodeError> {
    let mut pos = NETSTRING_START.len();
    let mut msg = Message::default();
    loop {
        if buf.len() - pos < NETSTRING_END.len() && NETSTRING_END.starts_with(&buf[pos..]) {
            return Err(DecodeError::Truncated);
        }
        if buf[pos..].starts_with(NETSTRING_END) {
            pos += NETSTRING_END.len();
            break;
        }
        if msg.fields.len() >= limits.max_fields {
            return Err(DecodeError::TooManyFields(limits.max_fields));
        }
        // The payload is "(t)name=value"; allow for the 4 framing bytes + name.
        let item_max = limits.max_value + limits.max_name + 4;
        let (start, end, next) = netstring_item(buf, pos, item_max)?;
        let item = &buf[start..end];
        if item.len() < 4 || item[0] != b'(' || item[2] != b')' || !item[1].is_ascii_digit() {
            return Err(DecodeError::BadField { at: start });
        }
        let ty = item[1] - b'0';
        if ty > 5 {
            return Err(DecodeError::BadFieldType(ty));
        }
        let rest = &item[3..];
        let eq = rest
            .iter()
            .position(|&b| b == b'=')
            .ok_or(DecodeError::BadField { at: start })?;
        let name = check_name(&rest[..eq], limits)?;
        let raw = &rest[eq + 1..];
        if raw.len() > limits.max_value {
            return Err(DecodeError::ValueTooLong {
                len: raw.len(),
                max: limits.max_value,
            });
        }
        let value = match ty {
            0 => Value::Str(raw.to_vec()),
            1 => Value::Bin(raw.to_vec()),
            ty => Value::Other {
                ty,
                raw: raw.to_vec(),
            },
        };
        msg.fields.push(Field { name, value });
        pos = next;
        if pos >= buf.len() {
            return Err(DecodeError::Truncated);
        }
    }
    let signed_len = pos;
    let trailer = if pos == buf.len() {
        None
    } else {
        let (start, end, next) = netstring_item(buf, pos, 200)?;
        if next != buf.len() {
            return Err(DecodeError::TrailingGarbage(buf.len() - next));
        }
        let t = std::str::from_utf8(&buf[start..end]).map_err(|_| DecodeError::BadTrailer)?;
        if parse_auth_token(t).is_none() {
            return Err(DecodeError::BadTrailer);
        }
        Some(t.to_string())
    };
    Ok(Frame {
        message: msg,
        format: Format::Netstring,
        signed_len,
        trailer,
    })
}

fn decode_classic(buf: &[u8], limits: &Limits) -> Result<Frame, DecodeError> {
    let mut pos = CLASSIC_START.len();
    let mut msg = Message::default();
    loop {
        let nl = match buf[pos..].iter().position(|&b| b == b'\n') {
            Some(n) => pos + n,
            None => return Err(DecodeError::Truncated),
        };
        let line = &buf[pos..nl];
        let next = nl + 1;
        if line == b"<<<" {
            pos = next;
            break;
        }
        if msg.fields.len() >= limits.max_fields {
            return Err(DecodeError::TooManyFields(limits.max_fields));
        }
        let (ty, body) = if line.len() >= 3 && line[0] == b'(' && line[2] == b')' {
            if !line[1].is_ascii_digit() {
                return Err(DecodeError::BadField { at: pos });
            }
            (line[1] - b'0', &line[3..])
        } else {
            (0, line)
        };
        if ty > 5 {
            return Err(DecodeError::BadFieldType(ty));
        }
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or(DecodeError::BadField { at: pos })?;
        let name = check_name(&body[..eq], limits)?;
        let text = &body[eq + 1..];
        if text.len() > limits.max_value * 2 {
            return Err(DecodeError::ValueTooLong {
                len: text.len(),
                max: limits.max_value,
            });
        }
        let value = match ty {
            // Heartbeat sends an embedded newline as 0x13 in classic text.
            0 => Value::Str(
                text.iter()
                    .map(|&b| if b == 0x13 { b'\n' } else { b })
                    .collect(),
            ),
            1 => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| DecodeError::BadBase64(name.to_string()))?;
                Value::Bin(bytes)
            }
            ty => Value::Other {
                ty,
                raw: text.to_vec(),
            },
        };
        if let Value::Str(v) | Value::Bin(v) = &value {
            if v.len() > limits.max_value {
                return Err(DecodeError::ValueTooLong {
                    len: v.len(),
                    max: limits.max_value,
                });
            }
        }
        msg.fields.push(Field { name, value });
        pos = next;
    }
    // Heartbeat's classic sender includes the terminating NUL; accept it.
    let rest = &buf[pos..];
    if !(rest.is_empty() || rest == b"\0") {
        return Err(DecodeError::TrailingGarbage(rest.len()));
    }
    Ok(Frame {
        message: msg,
        format: Format::Classic,
        signed_len: 0,
        trailer: None,
    })
}

/// Split an auth token `"N hexdigest"` into (N, digest).
pub fn parse_auth_token(t: &str) -> Option<(u8, &str)> {
    let (n, d) = t.split_once(' ')?;
    if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if d.is_empty() || d.len() > 128 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((n.parse().ok()?, d))
}

/// The netstring body `###\n ... %%%\n` (what the trailer signs).
pub fn encode_netstring_body(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + msg.fields.len() * 24);
    out.extend_from_slice(NETSTRING_START);
    for f in &msg.fields {
        let val: &[u8] = match &f.value {
            Value::Str(v) | Value::Bin(v) => v,
            Value::Other { raw, .. } => raw,
        };
        let len = 3 + f.name.len() + 1 + val.len();
        push_decimal(&mut out, len);
        out.push(b':');
        out.extend_from_slice(&[b'(', b'0' + f.value.type_digit(), b')']);
        out.extend_from_slice(f.name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(val);
        out.push(b',');
    }
    out.extend_from_slice(NETSTRING_END);
    out
}

/// Append the netstring auth trailer `LEN:N hexdigest,` to a body.
pub fn append_trailer(body: &mut Vec<u8>, token: &str) {
    push_decimal(body, token.len());
    body.push(b':');
    body.extend_from_slice(token.as_bytes());
    body.push(b',');
}

/// Append `n` in decimal without a temporary string (every field of every
/// keepalive has a length prefix).
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    use std::io::Write;
    write!(out, "{n}").expect("writing to a Vec cannot fail");
}

/// One classic text line for a field (without the newline), as used both
/// on the wire and as input to the classic `auth` digest.
pub fn classic_line(f: &Field, out: &mut Vec<u8>) {
    match &f.value {
        Value::Str(v) => {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b'=');
            out.extend(v.iter().map(|&b| if b == b'\n' { 0x13 } else { b }));
        }
        Value::Bin(v) => {
            out.extend_from_slice(b"(1)");
            out.extend_from_slice(f.name.as_bytes());
            out.push(b'=');
            let engine = &base64::engine::general_purpose::STANDARD;
            let start = out.len();
            out.resize(start + base64::encoded_len(v.len(), true).unwrap_or(0), 0);
            let written = engine
                .encode_slice(v, &mut out[start..])
                .expect("sized by encoded_len");
            out.truncate(start + written);
        }
        Value::Other { ty, raw } => {
            out.extend_from_slice(&[b'(', b'0' + ty, b')']);
            out.extend_from_slice(f.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(raw);
        }
    }
}

/// The classic text form `>>>\n` lines `<<<\n` NUL (the message must
/// already carry its `auth` field; heartbeat appends the NUL too).
pub fn encode_classic(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + msg.fields.len() * 24);
    out.extend_from_slice(CLASSIC_START);
    for f in &msg.fields {
        classic_line(f, &mut out);
        out.push(b'\n');
    }
    out.extend_from_slice(CLASSIC_END);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_framing_errors() {
        let l = Limits::default();
        assert_eq!(decode(b"", &l), Err(DecodeError::Empty));
        assert_eq!(decode(b"hello", &l), Err(DecodeError::BadMagic));
        assert_eq!(decode(b"##", &l), Err(DecodeError::Truncated));
        assert_eq!(
            decode(b"###\n9:(0)t=x,%%%\n", &l),
            Err(DecodeError::MissingComma { at: 15 })
        );
        assert_eq!(decode(b"###\n6:(0)t=x,%%", &l), Err(DecodeError::Truncated));
        assert_eq!(
            decode(b"###\n6:(9)t=x,%%%\n", &l),
            Err(DecodeError::BadFieldType(9))
        );
        assert_eq!(
            decode(b"###\n6:(0)tx_,%%%\n", &l),
            Err(DecodeError::BadField { at: 6 })
        );
        assert_eq!(
            decode(b"###\n06:(0)t=x,%%%\n", &l),
            Err(DecodeError::BadLength { at: 4 })
        );
        assert_eq!(decode(b">>>\nt=x\n", &l), Err(DecodeError::Truncated));
        assert_eq!(
            decode(b">>>\nt=x\n<<<\nzz", &l),
            Err(DecodeError::TrailingGarbage(2))
        );
        assert!(matches!(
            decode(b">>>\n(1)u=***\n<<<\n", &l),
            Err(DecodeError::BadBase64(_))
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let l = Limits {
            max_message: 100,
            max_fields: 2,
            max_name: 4,
            max_value: 8,
        };
        assert!(matches!(
            decode(&[b'#'; 101], &l),
            Err(DecodeError::TooLong { .. })
        ));
        assert_eq!(
            decode(b">>>\na=1\nb=2\nc=3\n<<<\n", &l),
            Err(DecodeError::TooManyFields(2))
        );
        assert_eq!(
            decode(b">>>\nabcde=1\n<<<\n", &l),
            Err(DecodeError::BadName)
        );
        assert!(matches!(
            decode(b"###\n18:(0)a=0123456789abcd,%%%\n", &l),
            Err(DecodeError::ValueTooLong { .. })
        ));
    }

    #[test]
    fn both_forms_round_trip() {
        let mut m = Message::new("status");
        m.push_str("st", "active")
            .push_bin("srcuuid", &[0, 1, 2, 255, b',', b'\n']);
        m.push_str("weird", "a,b=c");
        let ns = encode_netstring_body(&m);
        let f = decode(&ns, &Limits::default()).unwrap();
        assert_eq!(f.message, m);
        assert_eq!(f.signed_len, ns.len());
        assert_eq!(f.trailer, None);
        let c = encode_classic(&m);
        let f = decode(&c, &Limits::default()).unwrap();
        assert_eq!(f.message, m);
        assert_eq!(f.format, Format::Classic);
    }
}

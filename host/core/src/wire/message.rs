//! The heartbeat message model: an ordered list of typed fields.
//!
//! Order matters on the wire (the classic `auth` digest is computed over the
//! received field order), so a message is a `Vec`, not a map.

use std::borrow::Cow;

/// One field value, typed as cluster-glue types them (`ha_msg.h`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Type 0: a string. Kept as bytes because heartbeat does not require
    /// UTF-8; accessors expose it as `&str` when it is valid UTF-8.
    Str(Vec<u8>),
    /// Type 1: binary (R1 uses it only for the 16-byte `srcuuid`/`destuuid`).
    Bin(Vec<u8>),
    /// Types 2..=5 (struct, list, compressed, uncompressed-struct), carried
    /// opaquely: R1 never sends them, but a receiver must not choke on them.
    Other {
        /// The cluster-glue type digit.
        ty: u8,
        /// The raw on-wire bytes (netstring) or text (classic).
        raw: Vec<u8>,
    },
}

impl Value {
    /// The cluster-glue type digit of this value.
    pub fn type_digit(&self) -> u8 {
        match self {
            Value::Str(_) => 0,
            Value::Bin(_) => 1,
            Value::Other { ty, .. } => *ty,
        }
    }
}

/// A named field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Field name (ASCII, no `=`). Borrowed for the names wasmbeat and
    /// heartbeat use: no allocation per field of every keepalive.
    pub name: Cow<'static, str>,
    /// Field value.
    pub value: Value,
}

/// A heartbeat message: the ordered field list plus typed accessors.
///
/// This is the mapping point for the failover core: a typed core message is
/// turned into a `Message` with [`Message::new`] + [`Message::push_str`]
/// (type-specific fields only; the session layer stamps `src`, `seq`, `hg`,
/// ... and signs), and a received `Message` is read with the `get_*`
/// accessors (`t`, then the type's fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Fields in wire order.
    pub fields: Vec<Field>,
}

impl Message {
    /// A message whose first field is `t=<msg_type>`.
    pub fn new(msg_type: &str) -> Message {
        let mut m = Message::default();
        m.push_str(super::fields::F_TYPE, msg_type);
        m
    }

    /// The message type (`t`), if present and UTF-8.
    pub fn msg_type(&self) -> Option<&str> {
        self.get_str(super::fields::F_TYPE)
    }

    /// Append a string field (even if one of that name exists).
    pub fn push_str(&mut self, name: impl Into<Cow<'static, str>>, value: &str) -> &mut Self {
        self.fields.push(Field {
            name: name.into(),
            value: Value::Str(value.as_bytes().to_vec()),
        });
        self
    }

    /// Append a string field written by `format_args!` (hex seq, ts, ...)
    /// straight into the value, without an intermediate `String`.
    pub fn push_fmt(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: std::fmt::Arguments,
    ) -> &mut Self {
        use std::io::Write;
        let mut v = Vec::new();
        v.write_fmt(value).expect("writing to a Vec cannot fail");
        self.fields.push(Field {
            name: name.into(),
            value: Value::Str(v),
        });
        self
    }

    /// Append a binary field.
    pub fn push_bin(&mut self, name: impl Into<Cow<'static, str>>, value: &[u8]) -> &mut Self {
        self.fields.push(Field {
            name: name.into(),
            value: Value::Bin(value.to_vec()),
        });
        self
    }

    /// Set a string field: replace the first field of that name in place, or append.
    pub fn set_str(&mut self, name: impl Into<Cow<'static, str>>, value: &str) -> &mut Self {
        self.set(name, Value::Str(value.as_bytes().to_vec()))
    }

    /// Set a field of any type: replace in place, or append.
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, value: Value) -> &mut Self {
        let name = name.into();
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.value = value;
        } else {
            self.fields.push(Field { name, value });
        }
        self
    }

    /// Remove every field of that name.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.fields.retain(|f| f.name != name);
        self
    }

    /// The first field of that name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }

    /// A string field as `&str` (None if absent, not a string, or not UTF-8).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A binary field's bytes.
    pub fn get_bin(&self, name: &str) -> Option<&[u8]> {
        match self.get(name)? {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// A string field holding lowercase hex without `0x` (seq, hg, ts, dt, ackseq).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        parse_hex(self.get_str(name)?)
    }

    /// A string field holding a decimal number (protocol, ttl, firstseq in NS_rexmit).
    pub fn get_dec(&self, name: &str) -> Option<u64> {
        let s = self.get_str(name)?.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// True when a field of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }
}

/// Parse heartbeat's hex numbers (`%lx`, no `0x`, case-insensitive), rejecting junk.
pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

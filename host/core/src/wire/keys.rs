//! The keys of an authkeys file as the wire layer uses them (the parser
//! lives in the host's `config::authkeys`).

use std::fmt;

/// A shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wrap secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes (the HMAC key).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// An authentication method with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// Unkeyed CRC-32: protects against corruption only.
    Crc,
    /// HMAC-MD5.
    Md5(Secret),
    /// HMAC-SHA1 (what heartbeat users normally configure).
    Sha1(Secret),
    /// HMAC-SHA256: wasmbeat-only; a heartbeat 3.0.6 peer cannot verify it.
    HmacSha256(Secret),
}

impl AuthMethod {
    /// The method's name as written in authkeys.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5(_) => "md5",
            AuthMethod::Sha1(_) => "sha1",
            AuthMethod::HmacSha256(_) => "hmac-sha256",
        }
    }

    /// The secret, for keyed methods.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            AuthMethod::Crc => None,
            AuthMethod::Md5(s) | AuthMethod::Sha1(s) | AuthMethod::HmacSha256(s) => Some(s),
        }
    }

    /// Whether heartbeat 3.0.6 understands this method.
    pub fn heartbeat_compatible(&self) -> bool {
        !matches!(self, AuthMethod::HmacSha256(_))
    }
}

/// One numbered key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKey {
    /// The key's index (0..16).
    pub index: u8,
    /// Method and secret.
    pub method: AuthMethod,
    /// 1-based line in authkeys.
    pub line: usize,
}

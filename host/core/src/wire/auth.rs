//! Message authentication exactly as heartbeat 3.0.6 computes it (spec §2,
//! §5.4), plus one wasmbeat-only method.
//!
//! Two signatures exist: the classic `auth` field, computed over
//! `name=value\n` lines of every other field in message order, and the
//! netstring trailer, computed over the raw bytes `###\n`..`%%%\n`. Both
//! carry `"<N> <hexdigest>"` where N is the key slot.

use super::codec::{self, classic_line, Format, Frame};
use super::fields::F_AUTH;
use super::keys::{AuthKey, AuthMethod, Secret};
use super::message::Message;
use hmac::{Hmac, Mac};

/// The lowercase hex digest of `data` under `method`, as heartbeat prints it.
///
/// The method and its secret come from `config::authkeys` so there is one
/// parsed representation of a key; only the cryptography lives here.
pub fn digest(method: &AuthMethod, data: &[u8]) -> String {
    fn hmac<M: Mac + hmac::digest::KeyInit>(key: &Secret, data: &[u8]) -> String {
        let mut m = <M as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
        m.update(data);
        hex::encode(m.finalize().into_bytes())
    }
    match method {
        AuthMethod::Crc => {
            const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);
            // heartbeat formats with %lx: no leading zeros.
            format!("{:x}", CKSUM.checksum(data))
        }
        AuthMethod::Md5(k) => hmac::<Hmac<md5::Md5>>(k, data),
        AuthMethod::Sha1(k) => hmac::<Hmac<sha1::Sha1>>(k, data),
        AuthMethod::HmacSha256(k) => hmac::<Hmac<sha2::Sha256>>(k, data),
    }
}

/// Why a message failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No netstring trailer and no classic `auth` field.
    #[error("message carries no authentication")]
    Missing,
    /// The `auth` value is not `N hexdigest`.
    #[error("malformed auth token")]
    Malformed,
    /// Signed with a slot we have no key for.
    #[error("no key for auth slot {0}")]
    UnknownSlot(u8),
    /// Digest mismatch (wrong key, tampering).
    #[error("authtoken does not match (slot {0})")]
    Mismatch(u8),
    /// The keyring's active slot has no key.
    #[error("active auth slot {0} has no key")]
    NoActiveKey(u8),
    /// Slot outside 0..=15.
    #[error("auth slot {0} out of range 0..15")]
    SlotRange(u8),
}

/// The keys of one authkeys file: the active one signs; verification
/// reports which slot a message was signed with, and the session decides
/// whether that slot is still accepted (only the active one, outside a
/// key-rotation window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    active: u8,
    keys: Vec<AuthKey>,
}

impl Keyring {
    /// Keys plus the slot selected by `auth N`.
    pub fn new(active: u8, keys: Vec<AuthKey>) -> Result<Keyring, AuthError> {
        if let Some(k) = keys.iter().find(|k| k.index > 15) {
            return Err(AuthError::SlotRange(k.index));
        }
        if !keys.iter().any(|k| k.index == active) {
            return Err(AuthError::NoActiveKey(active));
        }
        Ok(Keyring { active, keys })
    }

    /// A keyring with a single key in slot `index`, which is active.
    pub fn single(index: u8, method: AuthMethod) -> Keyring {
        Keyring {
            active: index,
            // Line 0: the key was not read from an authkeys file.
            keys: vec![AuthKey {
                index,
                method,
                line: 0,
            }],
        }
    }

    /// The slot that signs outgoing messages.
    pub fn active(&self) -> &AuthKey {
        self.keys
            .iter()
            .find(|k| k.index == self.active)
            .expect("checked in new")
    }

    fn slot(&self, n: u8) -> Option<&AuthKey> {
        self.keys.iter().find(|k| k.index == n)
    }

    /// Every listed slot other than the active one (the keys a rotation
    /// window would accept).
    pub fn other_slots(&self) -> Vec<u8> {
        self.keys
            .iter()
            .map(|k| k.index)
            .filter(|&i| i != self.active)
            .collect()
    }

    /// `"N hexdigest"` for `data` with the active key.
    pub fn sign(&self, data: &[u8]) -> String {
        let k = self.active();
        format!("{} {}", k.index, digest(&k.method, data))
    }

    /// Check a `"N hexdigest"` token against `data`; returns the slot N
    /// that signed it.
    ///
    /// Uses slot N's own key. (Heartbeat's netstring verifier takes slot N's
    /// algorithm but its *active* key, which only matters while two nodes
    /// sign with different slots during a key rotation; using slot N's key
    /// accepts exactly what a correctly configured peer sends.)
    pub fn verify_token(&self, token: &str, data: &[u8]) -> Result<u8, AuthError> {
        let (n, got) = codec::parse_auth_token(token).ok_or(AuthError::Malformed)?;
        let key = self.slot(n).ok_or(AuthError::UnknownSlot(n))?;
        let want = digest(&key.method, data);
        // Exact, case-sensitive comparison (heartbeat compares the strings
        // as they are; it only ever prints lowercase hex), in constant time.
        if want.len() == got.len() && constant_eq(want.as_bytes(), got.as_bytes()) {
            Ok(n)
        } else {
            Err(AuthError::Mismatch(n))
        }
    }

    /// Verify a decoded frame: netstring by its trailer (an inner `auth`
    /// field is not checked, as in heartbeat), classic by its `auth` field.
    /// Returns the slot that signed it.
    pub fn verify(&self, frame: &Frame, packet: &[u8]) -> Result<u8, AuthError> {
        match frame.format {
            Format::Netstring => {
                let t = frame.trailer.as_deref().ok_or(AuthError::Missing)?;
                self.verify_token(t, &packet[..frame.signed_len])
            }
            Format::Classic => {
                let t = frame.message.get_str(F_AUTH).ok_or(AuthError::Missing)?;
                self.verify_token(t, &classic_auth_data(&frame.message))
            }
        }
    }

    /// Set (replace or append) the classic `auth` field of `msg`.
    pub fn add_classic_auth(&self, msg: &mut Message) {
        msg.remove(F_AUTH);
        let token = self.sign(&classic_auth_data(msg));
        msg.push_str(F_AUTH, &token);
    }
}

/// What the classic `auth` field signs: one line per field except `auth`.
pub fn classic_auth_data(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    for f in msg.fields.iter().filter(|f| f.name != F_AUTH) {
        classic_line(f, &mut out);
        out.push(b'\n');
    }
    out
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_cksum_without_length() {
        // CRC-32/CKSUM check value for "123456789" (no length appended).
        assert_eq!(digest(&AuthMethod::Crc, b"123456789"), "765e7680");
        // Leading zeros are dropped like %lx (digest of "" is !0 = ffffffff).
        assert_eq!(digest(&AuthMethod::Crc, b""), "ffffffff");
    }

    #[test]
    fn hmacs_match_rfc_vectors() {
        // RFC 2202 test case 2.
        let k = Secret::new("Jefe");
        let d = b"what do ya want for nothing?";
        assert_eq!(
            digest(&AuthMethod::Md5(k.clone()), d),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            digest(&AuthMethod::Sha1(k.clone()), d),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            digest(&AuthMethod::HmacSha256(k), d),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keyring_slots() {
        let ring = Keyring::new(
            2,
            vec![
                AuthKey {
                    index: 1,
                    method: AuthMethod::Sha1(Secret::new("old")),
                    line: 2,
                },
                AuthKey {
                    index: 2,
                    method: AuthMethod::Md5(Secret::new("new")),
                    line: 3,
                },
            ],
        )
        .unwrap();
        let tok = ring.sign(b"x");
        assert!(tok.starts_with("2 "));
        assert_eq!(ring.verify_token(&tok, b"x"), Ok(2));
        let old = format!("1 {}", digest(&AuthMethod::Sha1(Secret::new("old")), b"x"));
        assert_eq!(ring.verify_token(&old, b"x"), Ok(1));
        assert_eq!(ring.other_slots(), vec![1]);
        assert_eq!(ring.verify_token(&tok, b"y"), Err(AuthError::Mismatch(2)));
        assert_eq!(
            ring.verify_token("3 abcd", b"x"),
            Err(AuthError::UnknownSlot(3))
        );
        assert_eq!(ring.verify_token("zz", b"x"), Err(AuthError::Malformed));
        assert!(Keyring::new(5, vec![]).is_err());
    }
}

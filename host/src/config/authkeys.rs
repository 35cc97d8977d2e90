//! `authkeys`: `auth N` selects which of the numbered keys (`N method
//! [secret]`) signs outgoing messages; every listed key verifies incoming
//! ones. Read as heartbeat's `auth.c parse_authfile` reads it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::diag::{Code, Diagnostic};

/// The name diagnostics use for this file.
pub const FILE: &str = "authkeys";
/// heartbeat's MAXAUTH: key indexes are 0..MAXAUTH.
pub const MAX_AUTH: u8 = 16;

use wasmbeat_core::wire::auth::{AuthError, Keyring};
pub use wasmbeat_core::wire::keys::{AuthKey, AuthMethod, Secret};

/// The parsed authkeys file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeys {
    /// The `auth N` selection: the key that signs outgoing messages.
    pub active_index: u8,
    /// The active key's method (a copy of `keys[..].method` for that index).
    pub method: AuthMethod,
    /// Every key line, in file order (all are accepted on receive).
    pub keys: Vec<AuthKey>,
}

impl AuthKeys {
    /// The keyring this file describes: `auth N` signs, every key verifies.
    pub fn keyring(&self) -> Result<Keyring, AuthError> {
        Keyring::new(self.active_index, self.keys.clone())
    }

    /// The key with this index, if listed.
    pub fn key(&self, index: u8) -> Option<&AuthMethod> {
        self.keys
            .iter()
            .find(|k| k.index == index)
            .map(|k| &k.method)
    }

    /// Read the file, refusing it (as heartbeat does) when group or others can read it.
    pub fn load(path: &Path) -> Result<(AuthKeys, Vec<Diagnostic>), Vec<Diagnostic>> {
        let meta = std::fs::metadata(path).map_err(|e| {
            vec![Diagnostic::error(
                Code::Unreadable,
                FILE,
                None,
                format!("cannot read {}: {e}", path.display()),
            )
            .hint("create it with e.g. \"auth 1\" and \"1 sha1 <secret>\", mode 600")]
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::error(
                Code::Unreadable,
                FILE,
                None,
                format!("cannot read {}: {e}", path.display()),
            )]
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        let perm = (mode & 0o044 != 0).then(|| {
            Diagnostic::error(
                Code::AuthPermissions,
                FILE,
                None,
                format!(
                    "{} is readable by group or others (mode {mode:04o}); heartbeat refuses such a key file and so does wasmbeat",
                    path.display()
                ),
            )
            .text(format!("{mode:04o}"))
            .hint(format!("run: chmod 600 {}", path.display()))
        });
        match (Self::parse(&text), perm) {
            (Ok(ok), None) => Ok(ok),
            (Ok((_, mut d)), Some(p)) => {
                d.insert(0, p);
                Err(d)
            }
            (Err(mut d), p) => {
                if let Some(p) = p {
                    d.insert(0, p);
                }
                Err(d)
            }
        }
    }

    /// Parse authkeys text. Errors if heartbeat would refuse it.
    pub fn parse(text: &str) -> Result<(AuthKeys, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut keys: Vec<AuthKey> = Vec::new();
        let mut auth: Option<(i64, usize)> = None;
        let mut active: Option<AuthMethod> = None;
        for (idx, raw) in text.lines().enumerate() {
            let no = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with('a') {
                let n = (words[0] == "auth")
                    .then(|| words.get(1).and_then(|w| w.parse::<i64>().ok()))
                    .flatten();
                match n {
                    Some(n) if words.len() == 2 => {
                        if let Some((_, prev)) = auth {
                            diags.push(
                                Diagnostic::warning(
                                    Code::AuthSyntax,
                                    FILE,
                                    Some(no),
                                    format!("a second auth line (first on line {prev}); the last one counts"),
                                )
                                .text(line)
                                .hint("keep exactly one \"auth N\" line, at the top"),
                            );
                        }
                        auth = Some((n, no));
                        active = None;
                    }
                    _ => diags.push(
                        Diagnostic::error(
                            Code::AuthSyntax,
                            FILE,
                            Some(no),
                            format!("{line:?} is not an auth line"),
                        )
                        .text(line)
                        .hint("write \"auth 1\" to sign with key number 1"),
                    ),
                }
                continue;
            }
            let index = words[0].parse::<i64>();
            let (Ok(index), Some(method)) = (index, words.get(1)) else {
                diags.push(
                    Diagnostic::error(
                        Code::AuthSyntax,
                        FILE,
                        Some(no),
                        format!(
                            "{line:?} is neither \"auth N\" nor a key line \"N method [secret]\""
                        ),
                    )
                    .text(line)
                    .hint("write e.g. \"1 sha1 MySecret\""),
                );
                continue;
            };
            if !(0..i64::from(MAX_AUTH)).contains(&index) {
                diags.push(
                    Diagnostic::error(
                        Code::AuthSyntax,
                        FILE,
                        Some(no),
                        format!("key index {index} is out of range 0..{}", MAX_AUTH - 1),
                    )
                    .text(words[0])
                    .col(1)
                    .hint("number keys 1 to 15"),
                );
                continue;
            }
            let secret = words.get(2).copied();
            if words.len() > 3 {
                diags.push(
                    Diagnostic::warning(
                        Code::AuthSyntax,
                        FILE,
                        Some(no),
                        "the secret is a single word: heartbeat ignores everything after the first blank",
                    )
                    .text(words[3..].join(" "))
                    .hint("remove the blanks from the secret (both nodes must use the same one)"),
                );
            }
            let m = match (method.to_ascii_lowercase().as_str(), secret) {
                ("crc", None) => AuthMethod::Crc,
                ("crc", Some(_)) => {
                    diags.push(
                        Diagnostic::error(
                            Code::AuthMethod,
                            FILE,
                            Some(no),
                            "crc does not use a key (heartbeat: \"Auth method [crc] doesn't use a key\")",
                        )
                        .hint(format!("write \"{index} crc\", or better \"{index} sha1 <secret>\"")),
                    );
                    continue;
                }
                ("md5" | "sha1" | "hmac-sha256", None) => {
                    diags.push(
                        Diagnostic::error(
                            Code::AuthMethod,
                            FILE,
                            Some(no),
                            format!("{method} needs a secret (heartbeat: \"Auth method [{method}] requires a key\")"),
                        )
                        .hint(format!("write \"{index} {method} <secret>\"")),
                    );
                    continue;
                }
                ("md5", Some(s)) => AuthMethod::Md5(Secret::new(s)),
                ("sha1", Some(s)) => AuthMethod::Sha1(Secret::new(s)),
                ("hmac-sha256", Some(s)) => {
                    diags.push(
                        Diagnostic::warning(
                            Code::WasmbeatOnly,
                            FILE,
                            Some(no),
                            "hmac-sha256 is a wasmbeat-only method: heartbeat 3.0.6 peers cannot read this file or verify such messages",
                        )
                        .hint("use sha1 while any heartbeat node is in the cluster"),
                    );
                    AuthMethod::HmacSha256(Secret::new(s))
                }
                _ => {
                    diags.push(
                        Diagnostic::error(
                            Code::AuthMethod,
                            FILE,
                            Some(no),
                            format!("unknown authentication method {method:?} (heartbeat: \"Invalid authtype\")"),
                        )
                        .text(*method)
                        .hint("use sha1, md5 or crc (or the wasmbeat-only hmac-sha256)"),
                    );
                    continue;
                }
            };
            let index = index as u8;
            if let Some(prev) = keys.iter().position(|k| k.index == index) {
                diags.push(
                    Diagnostic::warning(
                        Code::AuthSyntax,
                        FILE,
                        Some(no),
                        format!(
                            "key {index} is listed again (first on line {}); the last one counts",
                            keys[prev].line
                        ),
                    )
                    .hint("give each key its own number"),
                );
                keys.remove(prev);
            }
            if auth.is_some_and(|(n, _)| n == i64::from(index)) {
                active = Some(m.clone());
            }
            keys.push(AuthKey {
                index,
                method: m,
                line: no,
            });
        }
        match (auth, &active) {
            (None, _) => diags.push(
                Diagnostic::error(
                    Code::AuthNoActive,
                    FILE,
                    None,
                    "no \"auth N\" line: nothing selects the key that signs messages (heartbeat: \"Missing auth directive\")",
                )
                .hint("add \"auth 1\" as the first line"),
            ),
            (Some((n, l)), None) => {
                let later = keys.iter().any(|k| i64::from(k.index) == n);
                let hint = if later {
                    format!("heartbeat selects the key while reading, so move \"auth {n}\" above the \"{n} ...\" line")
                } else {
                    format!("add a key line \"{n} sha1 <secret>\" below it, or select a listed key")
                };
                diags.push(
                    Diagnostic::error(
                        Code::AuthNoActive,
                        FILE,
                        Some(l),
                        format!("auth {n} selects key {n}, but no key {n} follows it"),
                    )
                    .text(format!("auth {n}"))
                    .hint(hint),
                );
            }
            _ => {}
        }
        if super::diag::has_errors(&diags) {
            return Err(diags);
        }
        let (Some((n, _)), Some(method)) = (auth, active) else {
            return Err(diags);
        };
        Ok((
            AuthKeys {
                active_index: n as u8,
                method,
                keys,
            },
            diags,
        ))
    }
}

/// `crc` keys are unkeyed: on a UDP medium anyone who can reach the port
/// can sign any message with them (a takeover, a standby). heartbeat's own
/// documentation keeps crc for serial links. Refused when any network
/// medium is configured unless the administrator allows it (`allowed`:
/// `--allow-crc-on-network`), then a warning. A crc key that is listed but
/// not active is refused as well: it would verify during every key-rotation
/// window.
pub fn crc_on_network(auth: &AuthKeys, media: &[super::Medium], allowed: bool) -> Vec<Diagnostic> {
    let Some(net) = media.iter().find(|m| m.is_network()) else {
        return Vec::new();
    };
    let medium = net.keyword();
    auth.keys
        .iter()
        .filter(|k| k.method == AuthMethod::Crc)
        .map(|k| {
            let n = k.index;
            let role = if n == auth.active_index {
                format!("auth {n} selects crc")
            } else {
                format!("key {n} is crc (it would verify during key rotations)")
            };
            let message = format!(
                "{role}, which authenticates nothing: anyone who can reach the {medium} medium in ha.cf can forge any message (takeover, standby)"
            );
            let d = if allowed {
                Diagnostic::warning(Code::CrcOnNetwork, FILE, Some(k.line), format!("{message}; allowed by --allow-crc-on-network"))
            } else {
                Diagnostic::error(Code::CrcOnNetwork, FILE, Some(k.line), message).hint(format!(
                    "write \"{n} sha1 <secret>\" (the same file on every node); crc is for serial-only clusters, or pass --allow-crc-on-network (WASMBEAT_ALLOW_CRC_ON_NETWORK=1) if this network carries nothing else"
                ))
            };
            d.text(format!("{n} crc"))
        })
        .collect()
}

/// Prints valid authkeys text (including the secrets: it is the file's content).
impl fmt::Display for AuthKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "auth {}", self.active_index)?;
        for k in &self.keys {
            write!(f, "{} {}", k.index, k.method.name())?;
            if let Some(s) = k.method.secret() {
                write!(f, " {}", String::from_utf8_lossy(s.as_bytes()))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbeat_core::wire::auth::digest;

    #[test]
    fn sample_with_rotation() {
        let (a, d) = AuthKeys::parse("#c\nauth 2\n1 crc\n2 sha1 HI!\n3 md5 Hello!\n").unwrap();
        assert!(d.is_empty());
        assert_eq!(a.active_index, 2);
        assert_eq!(a.method, AuthMethod::Sha1(Secret::new("HI!")));
        assert_eq!(a.keys.len(), 3);
        assert_eq!(a.key(3).map(AuthMethod::name), Some("md5"));
        assert!(
            !format!("{a:?}").contains("HI!"),
            "secrets must not leak into logs"
        );
    }

    #[test]
    fn auth_must_precede_its_key() {
        let d = AuthKeys::parse("1 sha1 x\nauth 1\n").unwrap_err();
        assert_eq!(d[0].code, Code::AuthNoActive);
        assert_eq!(d[0].line, Some(2));
        assert!(d[0].to_string().contains("move \"auth 1\" above"));
    }

    #[test]
    fn method_rules() {
        assert!(AuthKeys::parse("auth 1\n1 crc key\n").is_err());
        assert!(AuthKeys::parse("auth 1\n1 sha1\n").is_err());
        assert!(AuthKeys::parse("auth 1\n1 rot13 x\n").is_err());
        assert!(AuthKeys::parse("auth 16\n16 sha1 x\n").is_err());
        let (a, d) = AuthKeys::parse("auth 1\n1 hmac-sha256 k\n").unwrap();
        assert_eq!(a.method.name(), "hmac-sha256");
        assert_eq!(d[0].code, Code::WasmbeatOnly);
    }

    #[test]
    fn display_round_trips() {
        let (a, _) = AuthKeys::parse("auth 3\n1 crc\n3 md5 Hello!\n").unwrap();
        let (b, _) = AuthKeys::parse(&a.to_string()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn keyring_from_authkeys_file() {
        let (a, _) = AuthKeys::parse("auth 2\n1 sha1 old\n2 md5 new\n").unwrap();
        let ring = a.keyring().unwrap();
        let tok = ring.sign(b"x");
        assert_eq!(
            tok,
            format!("2 {}", digest(&AuthMethod::Md5(Secret::new("new")), b"x"))
        );
        let old = format!("1 {}", digest(&AuthMethod::Sha1(Secret::new("old")), b"x"));
        ring.verify_token(&old, b"x").unwrap();
        assert!(
            !format!("{ring:?}").contains("old"),
            "secrets must not leak into logs"
        );
    }
}

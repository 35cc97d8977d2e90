//! Linux capability names as grants spell them (`net-bind-service`, also
//! `net_bind_service` or `CAP_NET_BIND_SERVICE`), over the `caps` crate's
//! table. A granted command keeps only the capabilities its grant lists;
//! the confinement code turns these into the process's bounding set.

use std::fmt;

/// One Linux capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(u8);

/// A capability name no kernel knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Linux capability (write e.g. net-bind-service, setuid, setgid, kill, chown, dac-override)")]
pub struct UnknownCapability(pub String);

fn known(c: caps::Capability) -> Capability {
    Capability(c.index())
}

fn table() -> impl Iterator<Item = caps::Capability> {
    caps::all().into_iter()
}

impl Capability {
    /// Parse `net-bind-service`, `net_bind_service` or `CAP_NET_BIND_SERVICE`.
    pub fn parse(text: &str) -> Result<Capability, UnknownCapability> {
        let upper = text.to_ascii_uppercase().replace('-', "_");
        let linux = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        linux
            .parse::<caps::Capability>()
            .map(known)
            .map_err(|_| UnknownCapability(text.to_string()))
    }

    /// Every capability (what an unconfined root process has).
    pub fn all() -> Vec<Capability> {
        let mut v: Vec<Capability> = table().map(known).collect();
        v.sort();
        v
    }

    /// The kernel's number for it (`CAP_NET_BIND_SERVICE` is 10).
    pub fn number(self) -> u32 {
        u32::from(self.0)
    }

    /// The Linux name, `CAP_NET_BIND_SERVICE`.
    pub fn linux_name(self) -> String {
        table()
            .find(|c| c.index() == self.0)
            .map(|c| c.to_string())
            .unwrap_or_else(|| format!("CAP_{}", self.0))
    }

    /// The grant spelling, `net-bind-service`.
    pub fn name(self) -> String {
        let linux = self.linux_name();
        linux
            .strip_prefix("CAP_")
            .unwrap_or(&linux)
            .to_ascii_lowercase()
            .replace('_', "-")
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Parse a list where the single word `all` means every capability.
pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Capability>, UnknownCapability> {
    if items.len() == 1 && items[0].as_ref().eq_ignore_ascii_case("all") {
        return Ok(Capability::all());
    }
    let mut out: Vec<Capability> = items
        .iter()
        .map(|s| Capability::parse(s.as_ref()))
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let c = Capability::parse("CAP_NET_BIND_SERVICE").unwrap();
        assert_eq!((c.number(), c.name()), (10, "net-bind-service".to_string()));
        assert_eq!(c.linux_name(), "CAP_NET_BIND_SERVICE");
        assert_eq!(Capability::parse("net_admin").unwrap().number(), 12);
        assert_eq!(Capability::parse("sys-admin").unwrap().number(), 21);
        assert_eq!(
            Capability::parse("checkpoint-restore").unwrap().number(),
            40
        );
        assert!(Capability::parse("root").is_err());
        assert_eq!(parse_list(&["all"]).unwrap().len(), Capability::all().len());
        assert!(Capability::all().len() >= 41);
        assert_eq!(
            parse_list(&["setuid", "setgid", "setuid"]).unwrap(),
            vec![Capability(6), Capability(7)]
        );
    }
}

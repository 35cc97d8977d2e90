//! Linux capability names as grants spell them. A granted command keeps
//! only the capabilities its grant lists; the confinement code turns these
//! into the process's bounding set.

use std::fmt;

/// The capabilities of Linux 6.x, by number (`linux/capability.h`).
const NAMES: [&str; 41] = [
    "chown",
    "dac-override",
    "dac-read-search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux-immutable",
    "net-bind-service",
    "net-broadcast",
    "net-admin",
    "net-raw",
    "ipc-lock",
    "ipc-owner",
    "sys-module",
    "sys-rawio",
    "sys-chroot",
    "sys-ptrace",
    "sys-pacct",
    "sys-admin",
    "sys-boot",
    "sys-nice",
    "sys-resource",
    "sys-time",
    "sys-tty-config",
    "mknod",
    "lease",
    "audit-write",
    "audit-control",
    "setfcap",
    "mac-override",
    "mac-admin",
    "syslog",
    "wake-alarm",
    "block-suspend",
    "audit-read",
    "perfmon",
    "bpf",
    "checkpoint-restore",
];

/// One Linux capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(u8);

/// A capability name no kernel knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Linux capability (write e.g. net-bind-service, setuid, setgid, kill, chown, dac-override)")]
pub struct UnknownCapability(pub String);

impl Capability {
    /// Parse `net-bind-service`, `net_bind_service` or `CAP_NET_BIND_SERVICE`.
    pub fn parse(text: &str) -> Result<Capability, UnknownCapability> {
        let lower = text.to_ascii_lowercase().replace('_', "-");
        let name = lower.strip_prefix("cap-").unwrap_or(&lower);
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| UnknownCapability(text.to_string()))
    }

    /// Every capability (what an unconfined root process has).
    pub fn all() -> Vec<Capability> {
        (0..NAMES.len() as u8).map(Capability).collect()
    }

    /// The kernel's number for it (`CAP_NET_BIND_SERVICE` is 10).
    pub fn number(self) -> u32 {
        u32::from(self.0)
    }

    /// The grant spelling, `net-bind-service`.
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
        assert_eq!((c.number(), c.name()), (10, "net-bind-service"));
        assert_eq!(Capability::parse("net_admin").unwrap().number(), 12);
        assert_eq!(Capability::parse("sys-admin").unwrap().number(), 21);
        assert_eq!(
            Capability::parse("checkpoint-restore").unwrap().number(),
            40
        );
        assert!(Capability::parse("root").is_err());
        assert_eq!(parse_list(&["all"]).unwrap().len(), 41);
        assert_eq!(
            parse_list(&["setuid", "setgid", "setuid"]).unwrap(),
            vec![Capability(6), Capability(7)]
        );
    }
}

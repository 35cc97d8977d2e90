//! Grants in words: the effective grant of a resource for `wasmbeat
//! check`, and the agents.toml line that would allow a denied call.

use wasmbeat_args::address::{Broadcast, Netmask};

use super::{AddressGrant, CommandGrant, Grant, Origin};

/// Quote an argument the way a shell user would read it.
fn quoted(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@,=~:".contains(c))
    {
        arg.to_string()
    } else {
        format!("{arg:?}")
    }
}

/// `IP/MASK/NIC/BROADCAST` as granted.
pub fn address_text(a: &AddressGrant) -> String {
    let s = &a.spec;
    let mut t = s.ip.to_string();
    match (s.netmask, s.prefix(a.rule)) {
        (
            Some(Netmask::Dotted {
                mask,
                contiguous: false,
            }),
            Ok(Some(p)),
        ) => t.push_str(&format!("/{p} (heartbeat's reading of netmask {mask})")),
        (_, Ok(Some(p))) => t.push_str(&format!("/{p}")),
        _ => {}
    }
    if let Some(n) = &s.nic {
        t.push_str(&format!(" on {n}"));
        if let Some(l) = &s.label {
            t.push_str(&format!(" (label {n}:{l})"));
        }
    } else {
        t.push_str(" on the interface whose subnet contains it");
    }
    match s.broadcast {
        Broadcast::Auto => {}
        Broadcast::Off => t.push_str(", no broadcast"),
        Broadcast::Addr(b) => t.push_str(&format!(", broadcast {b}")),
    }
    t
}

/// One command as `check` shows it.
pub fn command_text(c: &CommandGrant) -> String {
    let argv: Vec<String> = c.argv.iter().map(|a| quoted(a)).collect();
    let caps = if c.capabilities.is_empty() {
        "no capabilities".to_string()
    } else if c.capabilities.len() == super::Capability::all().len() {
        "all capabilities".to_string()
    } else {
        format!(
            "capabilities {}",
            c.capabilities
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let user = c
        .user
        .as_deref()
        .map(|u| format!(", as {u}"))
        .unwrap_or_default();
    let from = match &c.origin {
        Origin::Declared => String::new(),
        Origin::Policy { section, line } => format!(" (agents.toml:{line} {section})"),
        Origin::Direct => String::new(),
    };
    format!(
        "command {}: {} [{caps}{user}]{from}",
        c.name,
        argv.join(" ")
    )
}

impl Grant {
    /// One line per granted item, for `wasmbeat check`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.netlink_read {
            out.push("list links and addresses".to_string());
        }
        out.extend(
            self.addresses
                .iter()
                .map(|a| format!("address {}", address_text(a))),
        );
        out.extend(self.commands.iter().map(command_text));
        out.extend(self.probes.iter().map(|p| format!("probe {p}")));
        out.extend(
            self.pidfiles
                .iter()
                .map(|p| format!("pid file {}", p.display())),
        );
        out.extend(
            self.paths
                .iter()
                .map(|p| format!("inspect {}", p.display())),
        );
        if let Some(n) = self.limits.pids_max {
            out.push(format!("at most {n} processes"));
        }
        if let Some(n) = self.limits.memory_max {
            out.push(format!("at most {} MiB of memory", n >> 20));
        }
        if out.is_empty() {
            out.push("nothing".to_string());
        }
        out
    }

    /// All items on one line, for logs.
    pub fn describe(&self) -> String {
        self.lines().join("; ")
    }
}

/// The agents.toml line that would grant a denied call.
pub fn hint(resource: &str, agent: &str, key_and_value: &str) -> String {
    format!(
        "to allow it, add {key_and_value} to [resource.\"{resource}\"] in agents.toml, \
         or to [agent.{agent}] for all its resources"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Capability;

    #[test]
    fn check_lines_read_like_a_command_line() {
        let g = Grant {
            netlink_read: true,
            addresses: vec![AddressGrant::parse("10.0.0.10/24/eth0:web").unwrap()],
            commands: vec![CommandGrant {
                name: "server".into(),
                argv: vec!["/usr/sbin/nginx".into(), "-g".into(), "daemon off;".into()],
                capabilities: vec![Capability::parse("net-bind-service").unwrap()],
                user: None,
                origin: Origin::Policy {
                    section: "[agent.x]".into(),
                    line: 3,
                },
            }],
            probes: vec!["10.0.0.10:80".parse().unwrap()],
            ..Grant::none()
        };
        assert_eq!(
            g.lines(),
            [
                "list links and addresses",
                "address 10.0.0.10/24 on eth0 (label eth0:web)",
                "command server: /usr/sbin/nginx -g \"daemon off;\" [capabilities net-bind-service] (agents.toml:3 [agent.x])",
                "probe 10.0.0.10:80",
            ]
        );
        assert_eq!(Grant::none().describe(), "nothing");
    }
}

//! What a resource may do: the grant every capability call is checked
//! against. The default grant is nothing; built-in agents get a grant
//! derived from their own resource arguments.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Which interface a granted address may be configured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfaceRule {
    /// Exactly this interface (the resource named it, `IP/CIDR/eth0`).
    Named(String),
    /// An interface that already has an address whose subnet contains the
    /// granted address (the interface heartbeat's findif would select).
    OnSubnet,
}

/// One address a resource may add, remove and announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressGrant {
    /// The address itself (any prefix length).
    pub ip: IpAddr,
    /// Where it may be configured.
    pub iface: IfaceRule,
}

/// Everything one resource may do beyond computing and logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Whether the resource may list links and addresses.
    pub netlink_read: bool,
    /// Addresses it may add, remove and announce.
    pub addresses: Vec<AddressGrant>,
    /// Absolute paths of programs it may run or spawn.
    pub programs: Vec<PathBuf>,
    /// Targets it may probe.
    pub probe_targets: Vec<SocketAddr>,
}

/// Why a default grant could not be derived from a resource's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The IPaddr argument has no parsable IP in front.
    #[error("IPaddr argument {0:?} does not start with an IPv4 or IPv6 address")]
    BadIp(String),
    /// IPaddr was given no address.
    #[error("IPaddr needs an address argument (IP[/CIDR[/IFACE[/BROADCAST]]])")]
    ArgCount(usize),
}

impl Grant {
    /// The empty grant: no capability at all.
    pub fn none() -> Grant {
        Grant::default()
    }

    /// The address grant (if any) that covers `ip`.
    pub fn address(&self, ip: IpAddr) -> Option<&AddressGrant> {
        self.addresses.iter().find(|g| g.ip == ip)
    }

    /// The built-in default grant for a built-in agent name and its
    /// positional haresources arguments; `Ok(Grant::none())` for agents
    /// that have no built-in grant.
    pub fn builtin_default(agent: &str, args: &[String]) -> Result<Grant, GrantError> {
        match agent {
            "IPaddr" | "IPaddr2" => ipaddr_grant(args),
            _ => Ok(Grant::none()),
        }
    }
}

/// IPaddr may touch exactly the address of its own argument, on the
/// interface the argument names or else the one whose subnet contains it.
///
/// Only the IP and IFACE matter for the grant; the full
/// `IP/CIDR/IFACE/BROADCAST` parse (netmask forms, broadcast) happens in
/// the agent, which reports bad input to the user. Arguments bind as the
/// runtime binds them to IPaddr's parameters (`ip`, `cidr_netmask`, `nic`,
/// ...: positional in that order, or `name=value`), and a third `/` field
/// starting with a digit is a broadcast address, not an interface, as in
/// heartbeat's wrapper.
fn ipaddr_grant(args: &[String]) -> Result<Grant, GrantError> {
    const PARAMS: [&str; 6] = [
        "ip",
        "cidr_netmask",
        "nic",
        "broadcast",
        "arp_count",
        "arp_interval",
    ];
    let mut named: Vec<(&str, &str)> = Vec::new();
    let mut positional: Vec<&str> = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if PARAMS.contains(&k) => named.push((k, v)),
            _ => positional.push(a),
        }
    }
    let get = |name: &str| -> Option<&str> {
        named
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .or_else(|| {
                // Positional values fill the parameters not given by name, in order.
                let free: Vec<&str> = PARAMS
                    .iter()
                    .copied()
                    .filter(|p| !named.iter().any(|(k, _)| k == p))
                    .collect();
                free.iter()
                    .position(|p| *p == name)
                    .and_then(|i| positional.get(i).copied())
            })
    };
    let Some(ip_arg) = get("ip") else {
        return Err(GrantError::ArgCount(0));
    };
    // haresources splits on `::`, so `IPaddr::fd77::10/64` arrives as
    // `fd77`, `10/64`; the agent reassembles it the same way.
    let head = |t: &str| t.split('/').next().unwrap_or_default().to_string();
    let joined = positional.join("::");
    let rejoined = head(ip_arg).parse::<IpAddr>().is_err()
        && positional.len() > 1
        && head(&joined).parse::<std::net::Ipv6Addr>().is_ok();
    let ip_arg: &str = if rejoined { &joined } else { ip_arg };
    // The same IP/CIDR/IFACE/BROADCAST rules `wasmbeat check` applies.
    let parsed = crate::config::ipaddr_args::parse(ip_arg)
        .map_err(|_| GrantError::BadIp(ip_arg.to_string()))?;
    let ip = parsed.ip;
    let nic = match parsed.iface {
        Some(n) => Some(n),
        None if rejoined => None,
        // heartbeat also accepts `nic:label`; the label is not an interface.
        None => get("nic").map(|n| n.split(':').next().unwrap_or(n).to_string()),
    };
    let iface = match nic {
        Some(n) => IfaceRule::Named(n),
        None => IfaceRule::OnSubnet,
    };
    Ok(Grant {
        netlink_read: true,
        addresses: vec![AddressGrant { ip, iface }],
        programs: Vec::new(),
        probe_targets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(arg: &str) -> Result<Grant, GrantError> {
        Grant::builtin_default("IPaddr", &[arg.to_string()])
    }

    #[test]
    fn ipaddr_grant_covers_only_its_own_address() {
        let gr = g("10.77.0.10/24/eth0/10.77.0.255").unwrap();
        assert_eq!(
            gr.addresses,
            vec![AddressGrant {
                ip: "10.77.0.10".parse().unwrap(),
                iface: IfaceRule::Named("eth0".into())
            }]
        );
        assert!(gr.programs.is_empty() && gr.probe_targets.is_empty());
        assert!(gr.address("10.77.0.11".parse().unwrap()).is_none());
    }

    #[test]
    fn ipaddr_grant_interface_rules() {
        assert_eq!(
            g("10.77.0.10").unwrap().addresses[0].iface,
            IfaceRule::OnSubnet
        );
        assert_eq!(
            g("10.77.0.10/24/10.77.0.255").unwrap().addresses[0].iface,
            IfaceRule::OnSubnet
        );
        assert_eq!(
            g("10.77.0.10/24/eth1:web").unwrap().addresses[0].iface,
            IfaceRule::Named("eth1".into())
        );
        assert_eq!(
            g("fd77::10/64/eth0").unwrap().addresses[0].ip,
            "fd77::10".parse::<IpAddr>().unwrap()
        );
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let gr = Grant::builtin_default("IPaddr", &s(&["10.77.0.10/24", "arp_count=3"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::OnSubnet);
        let gr = Grant::builtin_default("IPaddr", &s(&["nic=eth2", "10.77.0.10"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth2".into()));
        let gr = Grant::builtin_default("IPaddr", &s(&["fd77", "10/64/eth1"])).unwrap();
        assert_eq!(gr.addresses[0].ip, "fd77::10".parse::<IpAddr>().unwrap());
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth1".into()));
        let gr = Grant::builtin_default("IPaddr", &s(&["10.77.0.10", "24", "eth3"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth3".into()));
    }

    #[test]
    fn bad_ipaddr_arguments_have_no_grant() {
        assert!(matches!(g("eth0"), Err(GrantError::BadIp(_))));
        assert!(matches!(
            Grant::builtin_default("IPaddr2", &[]),
            Err(GrantError::ArgCount(0))
        ));
        assert_eq!(Grant::builtin_default("httpd", &[]).unwrap(), Grant::none());
    }
}

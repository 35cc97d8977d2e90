//! The `IPaddr` agent (also serves `IPaddr2`): a floating IP address.
//!
//! Accepts heartbeat's haresources argument forms `IP`, `IP/CIDR`,
//! `IP/CIDR/IFACE`, `IP/CIDR/IFACE/BROADCAST` and `IP/CIDR/BROADCAST` (a
//! third field starting with a digit is a broadcast address, as in
//! heartbeat's wrapper), with CIDR a prefix length or a dotted netmask,
//! IPv4 or IPv6. Without IFACE the interface is the one with an address
//! whose subnet contains IP (longest prefix wins), as heartbeat's findif.
//! `start` adds the address (IPv4 label `IFACE:N` like IPaddr) and
//! announces it; `stop` removes it; `monitor` reports whether it is
//! configured. All operations are idempotent.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use wasmbeat_sdk::net::{self, Address, NewAddress};
use wasmbeat_sdk::{export_agent, log, Agent, Args, Error, Meta, Param, Status};

struct IpAddrAgent;

/// Default repetitions: heartbeat 3.0.6's IPaddr2 sends 5 request+reply pairs.
const DEFAULT_ARP_COUNT: u32 = 5;
/// Default pair interval (ms): IPaddr2's 200 ms, frames 100 ms apart.
const DEFAULT_ARP_INTERVAL_MS: u64 = 200;

/// The address as written, split into heartbeat's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    ip: IpAddr,
    prefix: Option<u8>,
    nic: Option<String>,
    label: Option<String>,
    broadcast: Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broadcast {
    /// Not given: inherit from the interface's address or compute.
    Auto,
    /// `-`: no broadcast address.
    None,
    /// Explicit.
    Addr(Ipv4Addr),
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgs(msg)
}

/// Parse a CIDR field: prefix length, or (IPv4) a contiguous dotted netmask.
fn parse_mask(ip: IpAddr, text: &str) -> Result<u8, Error> {
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    if let Ok(bits) = text.parse::<u8>() {
        if bits > max {
            return Err(invalid(format!(
                "prefix length /{bits} is larger than {max}"
            )));
        }
        return Ok(bits);
    }
    match (ip, text.parse::<Ipv4Addr>()) {
        (IpAddr::V4(_), Ok(mask)) => {
            let m = u32::from(mask);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return Err(invalid(format!(
                    "{text} is not a valid netmask (its one-bits are not contiguous). \
                     The second field is the netmask: heartbeat's IPaddr silently turns such a value \
                     into a bogus prefix and IPaddr2 rejects it. For a broadcast address write \
                     IP/CIDR/IFACE/BROADCAST."
                )));
            }
            Ok(m.leading_ones() as u8)
        }
        _ => Err(invalid(format!(
            "netmask {text:?} is neither a prefix length (0-{max}) nor a dotted IPv4 netmask"
        ))),
    }
}

fn parse_broadcast(ip: IpAddr, text: &str) -> Result<Broadcast, Error> {
    if ip.is_ipv6() {
        return Err(invalid(format!(
            "IPv6 address {ip} cannot have a broadcast address ({text})"
        )));
    }
    match text {
        "+" => Ok(Broadcast::Auto),
        "-" => Ok(Broadcast::None),
        _ => text
            .parse()
            .map(Broadcast::Addr)
            .map_err(|_| invalid(format!("broadcast {text:?} is not an IPv4 address"))),
    }
}

/// Merge a value embedded in the `ip` argument with the named parameter.
fn merge<T: PartialEq + std::fmt::Debug>(
    name: &str,
    embedded: Option<T>,
    named: Option<T>,
) -> Result<Option<T>, Error> {
    match (embedded, named) {
        (Some(a), Some(b)) if a != b => Err(invalid(format!(
            "{name} given twice with different values ({a:?} in ip, {b:?} as {name})"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

/// The `ip` argument, reassembled if it is an IPv6 address that
/// haresources split apart: `IPaddr::fd77::10/64` arrives as `ip=fd77`,
/// `cidr_netmask=10/64` because `::` separates arguments. Returns the text
/// and whether the other positional parameters were consumed by it.
fn ip_text(args: &Args) -> Result<(String, bool), Error> {
    let raw: String = args.require("ip")?;
    let head = |t: &str| t.split('/').next().unwrap_or_default().to_string();
    if head(&raw).parse::<IpAddr>().is_ok() {
        return Ok((raw, false));
    }
    let pieces: Vec<&str> = ["ip", "cidr_netmask", "nic", "broadcast"]
        .iter()
        .map_while(|n| args.raw(n))
        .collect();
    let joined = pieces.join("::");
    if pieces.len() > 1 && head(&joined).parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((joined, true));
    }
    Ok((raw, false))
}

fn parse_spec(args: &Args) -> Result<Spec, Error> {
    let (raw, rejoined) = ip_text(args)?;
    let fields: Vec<&str> = raw.split('/').collect();
    if fields.len() > 4 {
        return Err(invalid(format!(
            "{raw:?} has {} fields; the form is IP[/CIDR[/IFACE[/BROADCAST]]]",
            fields.len()
        )));
    }
    if fields.iter().skip(1).any(|f| f.is_empty()) {
        return Err(invalid(format!("{raw:?} has an empty field")));
    }
    let ip: IpAddr = fields[0]
        .parse()
        .map_err(|_| invalid(format!("{:?} is not an IPv4 or IPv6 address", fields[0])))?;
    let mut prefix = fields.get(1).map(|m| parse_mask(ip, m)).transpose()?;
    let (mut nic, mut brd) = (None, None);
    match fields.get(2) {
        Some(f) if f.starts_with(|c: char| c.is_ascii_digit()) => {
            if fields.len() == 4 {
                return Err(invalid(format!(
                    "{raw:?}: the third field {f:?} is a broadcast address, so there can be no fourth"
                )));
            }
            brd = Some(parse_broadcast(ip, f)?);
        }
        Some(f) => {
            nic = Some(f.to_string());
            brd = fields.get(3).map(|b| parse_broadcast(ip, b)).transpose()?;
        }
        None => {}
    }
    if !rejoined {
        if let Some(m) = args.raw("cidr_netmask") {
            prefix = merge("cidr_netmask", prefix, Some(parse_mask(ip, m)?))?;
        }
        nic = merge("nic", nic, args.get::<String>("nic")?)?;
        if let Some(b) = args.raw("broadcast") {
            brd = merge("broadcast", brd, Some(parse_broadcast(ip, b)?))?;
        }
    }
    // heartbeat's IPaddr2 accepts `nic:label`.
    let (nic, label) = match nic {
        Some(n) => match n.split_once(':') {
            Some((dev, _)) if ip.is_ipv6() => {
                return Err(invalid(format!(
                    "IPv6 addresses have no labels ({dev}:...)"
                )));
            }
            Some(("", _)) => return Err(invalid(format!("{n:?}: empty interface name"))),
            Some((dev, _)) => (Some(dev.to_string()), Some(n.clone())),
            None => (Some(n), None),
        },
        None => (None, None),
    };
    Ok(Spec {
        ip,
        prefix,
        nic,
        label,
        broadcast: brd.unwrap_or(Broadcast::Auto),
    })
}

/// Where and how the address goes.
#[derive(Debug)]
struct Plan {
    spec: Spec,
    nic: String,
    prefix: u8,
    broadcast: Option<Ipv4Addr>,
}

/// Pick the interface and netmask like heartbeat's findif: the address
/// (other than IP itself) whose subnet contains IP with the longest prefix.
fn plan(spec: Spec, addrs: &[Address]) -> Result<Plan, Error> {
    if let Some(nic) = &spec.nic {
        if !net::links()?.iter().any(|l| &l.name == nic) {
            return Err(Error::NotConfigured(format!(
                "interface {nic} does not exist"
            )));
        }
    }
    let best = addrs
        .iter()
        .filter(|a| a.address != spec.ip && a.subnet_contains(spec.ip))
        .filter(|a| spec.nic.as_ref().is_none_or(|n| &a.link_name == n))
        .max_by_key(|a| a.prefix_len);
    let ip = spec.ip;
    let nic = match (&spec.nic, best) {
        (Some(n), _) => n.clone(),
        (None, Some(a)) => a.link_name.clone(),
        (None, None) => {
            return Err(Error::NotConfigured(format!(
                "no local interface has a subnet containing {ip}; add the interface \
                 explicitly ({ip}/CIDR/IFACE) or check the address"
            )))
        }
    };
    let prefix = match (spec.prefix, best) {
        (Some(p), _) => p,
        (None, Some(a)) => a.prefix_len,
        (None, None) => {
            return Err(Error::NotConfigured(format!(
                "cannot choose a netmask: no address on {nic} has a subnet containing {ip}; \
                 give it explicitly ({ip}/CIDR/{nic})"
            )))
        }
    };
    let broadcast = match spec.broadcast {
        Broadcast::Addr(b) => Some(b),
        Broadcast::None => None,
        Broadcast::Auto => match (ip, best) {
            (IpAddr::V4(_), Some(a)) if a.prefix_len == prefix && a.broadcast.is_some() => {
                a.broadcast
            }
            (IpAddr::V4(v4), _) if prefix < 31 => {
                Some(Ipv4Addr::from(u32::from(v4) | (u32::MAX >> prefix)))
            }
            _ => None,
        },
    };
    Ok(Plan {
        spec,
        nic,
        prefix,
        broadcast,
    })
}

/// An unused `nic:N` alias label, as heartbeat's IPaddr picks one.
fn free_label(nic: &str, addrs: &[Address]) -> Option<String> {
    (0..100)
        .map(|n| format!("{nic}:{n}"))
        .find(|l| !addrs.iter().any(|a| a.label.as_deref() == Some(l.as_str())))
        .filter(|l| l.len() <= 15)
}

/// Addresses equal to IP (on the named interface, if one was named).
fn configured<'a>(spec: &Spec, addrs: &'a [Address]) -> Vec<&'a Address> {
    addrs
        .iter()
        .filter(|a| a.address == spec.ip)
        .filter(|a| spec.nic.as_ref().is_none_or(|n| &a.link_name == n))
        .collect()
}

impl Agent for IpAddrAgent {
    fn meta_data() -> Meta {
        Meta::new(
            "IPaddr",
            env!("CARGO_PKG_VERSION"),
            "Manages a floating IPv4/IPv6 address: adds it to an interface and announces it \
             with gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6). \
             Compatible with heartbeat's IPaddr/IPaddr2 argument forms.",
        )
        .param(
            Param::string(
                "ip",
                "The address, optionally as IP/CIDR, IP/CIDR/IFACE, IP/CIDR/IFACE/BROADCAST or IP/CIDR/BROADCAST",
            )
            .required(),
        )
        .param(Param::string(
            "cidr_netmask",
            "Prefix length or dotted netmask (default: that of the interface's subnet containing ip)",
        ))
        .param(Param::string(
            "nic",
            "Interface, optionally nic:label (default: the one whose subnet contains ip)",
        ))
        .param(Param::string(
            "broadcast",
            "IPv4 broadcast address, + to compute, - for none (default: the interface's)",
        ))
        .param(
            Param::integer("arp_count", "Announcements (ARP request+reply pairs or NAs) sent on start")
                .default(&DEFAULT_ARP_COUNT.to_string()),
        )
        .param(
            Param::integer("arp_interval", "Milliseconds between announcements")
                .default(&DEFAULT_ARP_INTERVAL_MS.to_string()),
        )
    }

    fn validate(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        args.get::<u32>("arp_count")?;
        args.get::<u64>("arp_interval")?;
        plan(spec, &net::addresses()?).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        let count = args.get_or("arp_count", DEFAULT_ARP_COUNT)?;
        let interval = Duration::from_millis(args.get_or("arp_interval", DEFAULT_ARP_INTERVAL_MS)?);
        let addrs = net::addresses()?;
        let plan = plan(spec, &addrs)?;
        let ip = plan.spec.ip;
        if let Some(a) = addrs.iter().find(|a| a.address == ip) {
            if a.link_name == plan.nic {
                // Already up: announce again anyway. A start on a running
                // address is how the host refreshes neighbours after a
                // split brain, when they may have learnt the peer's MAC.
                log::info(&format!(
                    "{ip} is already configured on {}; announcing it again",
                    plan.nic
                ));
                return announce(&plan.nic, ip, count, interval);
            }
            return Err(Error::Failed(format!(
                "{ip} is already configured on {}, not on {}",
                a.link_name, plan.nic
            )));
        }
        let label = match (ip, &plan.spec.label) {
            (IpAddr::V6(_), _) => None,
            (_, Some(l)) => Some(l.clone()),
            (_, None) => free_label(&plan.nic, &addrs),
        };
        net::add_address(&NewAddress {
            link_name: plan.nic.clone(),
            address: ip,
            prefix_len: plan.prefix,
            broadcast: plan.broadcast,
            label,
        })?;
        log::info(&format!("added {ip}/{} on {}", plan.prefix, plan.nic));
        announce(&plan.nic, ip, count, interval)
    }

    fn stop(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        for a in configured(&spec, &net::addresses()?) {
            net::remove_address(&a.link_name, a.address, a.prefix_len)?;
            log::info(&format!(
                "removed {}/{} from {}",
                a.address, a.prefix_len, a.link_name
            ));
        }
        Ok(())
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        let spec = parse_spec(args)?;
        Ok(if configured(&spec, &net::addresses()?).is_empty() {
            Status::NotRunning
        } else {
            Status::Running
        })
    }
}

export_agent!(IpAddrAgent);

/// Announce `ip` on `nic`; a failed announcement is only a warning, since
/// the address is up and works (neighbours just learn it later).
fn announce(nic: &str, ip: IpAddr, count: u32, interval: Duration) -> Result<(), Error> {
    match net::announce(nic, ip, count, interval) {
        Ok(()) => Ok(()),
        Err(Error::Failed(m)) => {
            log::warn(&format!("{ip} is up but could not be announced: {m}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ip: &str) -> Result<Spec, Error> {
        parse_spec(&Args::new(vec![("ip".into(), ip.into())]))
    }

    #[test]
    fn heartbeat_forms() {
        let s = spec("10.0.0.1/255.255.255.0/eth0/10.0.0.255").unwrap();
        assert_eq!(s.prefix, Some(24));
        assert_eq!(s.nic.as_deref(), Some("eth0"));
        assert_eq!(s.broadcast, Broadcast::Addr("10.0.0.255".parse().unwrap()));
        let s = spec("10.0.0.1/24/10.0.0.127").unwrap();
        assert_eq!(s.nic, None);
        assert_eq!(s.broadcast, Broadcast::Addr("10.0.0.127".parse().unwrap()));
        assert!(spec("100.200.230.1/100.200.230.6").is_err());
        assert!(spec("fd77::1/64/eth0").is_ok());
        assert!(spec("fd77::1/129").is_err());
        let s = spec("10.0.0.1/24/eth0:web").unwrap();
        assert_eq!(
            (s.nic.as_deref(), s.label.as_deref()),
            (Some("eth0"), Some("eth0:web"))
        );
        assert_eq!(
            spec("10.0.0.1/24/eth0/-").unwrap().broadcast,
            Broadcast::None
        );
        assert!(spec("10.0.0.1/24/10.0.0.255/10.0.0.1").is_err());
        assert!(spec("10.0.0.1//eth0").is_err());
        assert_eq!(spec("10.0.0.1/255.255.255.252").unwrap().prefix, Some(30));
        assert_eq!(spec("10.0.0.1/0.0.0.0").unwrap().prefix, Some(0));
        let both = Args::new(vec![
            ("ip".into(), "10.0.0.1/24".into()),
            ("cidr_netmask".into(), "16".into()),
        ]);
        assert!(matches!(parse_spec(&both), Err(Error::InvalidArgs(_))));
        let same = Args::new(vec![
            ("ip".into(), "10.0.0.1/24".into()),
            ("cidr_netmask".into(), "255.255.255.0".into()),
        ]);
        assert_eq!(parse_spec(&same).unwrap().prefix, Some(24));
        let split = Args::new(vec![
            ("ip".into(), "fd77".into()),
            ("cidr_netmask".into(), "10/64/eth0".into()),
        ]);
        let s = parse_spec(&split).unwrap();
        assert_eq!(s.ip, "fd77::10".parse::<IpAddr>().unwrap());
        assert_eq!((s.prefix, s.nic.as_deref()), (Some(64), Some("eth0")));
    }
}

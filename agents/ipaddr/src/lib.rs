//! The `IPaddr` agent (also serves `IPaddr2`): a floating IP address.
//!
//! Accepts heartbeat's haresources argument forms `IP`, `IP/CIDR`,
//! `IP/CIDR/IFACE`, `IP/CIDR/IFACE/BROADCAST` and `IP/CIDR/BROADCAST` (a
//! third field starting with a digit is a broadcast address, as in
//! heartbeat's wrapper), with CIDR a prefix length or a dotted netmask,
//! IPv4 or IPv6, read by the grammar the host shares (`wasmbeat-args`).
//! The agent only names the address: the host derives interface, prefix,
//! broadcast and label from the granted argument as heartbeat's findif
//! would (without IFACE, the interface with an address whose subnet
//! contains IP, longest prefix first; IPv4 label `IFACE:N` like IPaddr).
//! `start` adds the address and announces it; `stop` removes it; `monitor`
//! reports whether it is configured. All operations are idempotent.

use std::net::IpAddr;
use std::time::Duration;

use wasmbeat_sdk::args::address::{AddressSpec, PARAMS};
use wasmbeat_sdk::net;
use wasmbeat_sdk::{
    export_agent, log, AddressParams, Agent, Args, Error, Meta, Needs, Param, Status,
};

struct IpAddrAgent;

/// Default repetitions: heartbeat 3.0.6's IPaddr2 sends 5 request+reply pairs.
const DEFAULT_ARP_COUNT: u32 = 5;
/// Default pair interval (ms): IPaddr2's 200 ms, frames 100 ms apart.
const DEFAULT_ARP_INTERVAL_MS: u64 = 200;

/// The address as written, read with the grammar the host granted it by.
fn parse_spec(args: &Args) -> Result<AddressSpec, Error> {
    AddressSpec::from_params(|n| args.raw(n)).map_err(|e| Error::InvalidArgs(e.to_string()))
}

/// Where IP is configured now (on the named interface, if one was named).
fn configured(spec: &AddressSpec) -> Result<Vec<net::Address>, Error> {
    Ok(net::addresses()?
        .into_iter()
        .filter(|a| a.address == spec.ip)
        .filter(|a| spec.nic.as_ref().is_none_or(|n| &a.link_name == n))
        .collect())
}

impl Agent for IpAddrAgent {
    fn meta_data() -> Meta {
        let [ip, cidr_netmask, nic, broadcast] = PARAMS;
        Meta::new(
            "IPaddr",
            env!("CARGO_PKG_VERSION"),
            "Manages a floating IPv4/IPv6 address: adds it to an interface and announces it \
             with gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6). \
             Compatible with heartbeat's IPaddr/IPaddr2 argument forms; interface, netmask, \
             broadcast and label are chosen by the host as heartbeat's findif does.",
        )
        .param(
            Param::string(
                ip,
                "The address, optionally as IP/CIDR, IP/CIDR/IFACE, IP/CIDR/IFACE/BROADCAST or IP/CIDR/BROADCAST",
            )
            .required(),
        )
        .param(Param::string(
            cidr_netmask,
            "Prefix length or dotted netmask (default: that of the interface's subnet containing ip)",
        ))
        .param(Param::string(
            nic,
            "Interface, optionally nic:label (default: the one whose subnet contains ip)",
        ))
        .param(Param::string(
            broadcast,
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
        .needs(Needs::new().netlink_read().address(AddressParams::ipaddr()))
    }

    fn validate(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        args.get::<u32>("arp_count")?;
        args.get::<u64>("arp_interval")?;
        net::plan_address(spec.ip).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        let count = args.get_or("arp_count", DEFAULT_ARP_COUNT)?;
        let interval = Duration::from_millis(args.get_or("arp_interval", DEFAULT_ARP_INTERVAL_MS)?);
        let ip = spec.ip;
        // Add first and list the node's addresses only when that fails:
        // the host refuses an address that is already configured, and a
        // list of every address per start made a group of 256 VIPs
        // quadratic. The host logs the address it adds.
        let refused = match net::add_address(ip) {
            Ok(_) => return announce(ip, count, interval),
            Err(e) => e,
        };
        let Some(a) = net::addresses()?.into_iter().find(|a| a.address == ip) else {
            return Err(refused);
        };
        let plan = net::plan_address(ip)?;
        if a.link_name != plan.link_name {
            return Err(Error::Failed(format!(
                "{ip} is already configured on {}, not on {}",
                a.link_name, plan.link_name
            )));
        }
        // Already up: announce again anyway. A start on a running address
        // is how the host refreshes neighbours after a split brain, when
        // they may have learnt the peer's MAC.
        log::info(&format!(
            "{ip} is already configured on {}; announcing it again",
            a.link_name
        ));
        announce(ip, count, interval)
    }

    fn stop(args: &Args) -> Result<(), Error> {
        let spec = parse_spec(args)?;
        let removed = net::remove_address(spec.ip)?;
        if removed > 0 {
            log::info(&format!(
                "removed {} ({removed} cop{})",
                spec.ip,
                if removed == 1 { "y" } else { "ies" }
            ));
        }
        Ok(())
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        let spec = parse_spec(args)?;
        Ok(if configured(&spec)?.is_empty() {
            Status::NotRunning
        } else {
            Status::Running
        })
    }
}

export_agent!(IpAddrAgent);

/// Announce `ip`; a failed or refused announcement is only a warning,
/// since the address is up and works (neighbours just learn it later).
fn announce(ip: IpAddr, count: u32, interval: Duration) -> Result<(), Error> {
    match net::announce(ip, count, interval) {
        Ok(()) => Ok(()),
        Err(Error::Failed(m)) | Err(Error::Denied(m)) => {
            log::warn(&format!("{ip} is up but could not be announced: {m}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        Args::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_address_is_read_with_the_hosts_grammar() {
        let s = parse_spec(&args(&[("ip", "10.0.0.1/24/eth0:web")])).unwrap();
        assert_eq!(s.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.nic.as_deref(), Some("eth0"));
        let s = parse_spec(&args(&[("ip", "fd77"), ("cidr_netmask", "10/64/eth0")])).unwrap();
        assert_eq!(s.ip, "fd77::10".parse::<IpAddr>().unwrap());
        assert!(matches!(
            parse_spec(&args(&[("ip", "eth0")])),
            Err(Error::InvalidArgs(_))
        ));
        assert!(matches!(
            parse_spec(&args(&[("ip", "10.0.0.1/24"), ("cidr_netmask", "16")])),
            Err(Error::InvalidArgs(_))
        ));
    }
}

//! Network interfaces, addresses and address announcements.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::bindings::wasmbeat::agent::{announce as wit_announce, netlink};
use crate::Error;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Kernel interface index.
    pub index: u32,
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Administratively up.
    pub up: bool,
    /// Hardware address (empty if the link has none).
    pub mac: Vec<u8>,
    /// MTU in bytes.
    pub mtu: u32,
}

/// An address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Index of the interface carrying it.
    pub link_index: u32,
    /// Name of the interface carrying it.
    pub link_name: String,
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IPv4 broadcast address, if any.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label, if any.
    pub label: Option<String>,
}

impl Address {
    /// Whether `ip` lies in this address's subnet.
    pub fn subnet_contains(&self, ip: IpAddr) -> bool {
        same_subnet(self.address, ip, self.prefix_len)
    }
}

/// Whether `a` and `b` agree on their first `prefix` bits (false across families).
pub fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    /// Interface to add it on.
    pub link_name: String,
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IPv4 broadcast (None: the usual host-bits-set one for prefixes < 31).
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label (`eth0:0`).
    pub label: Option<String>,
}

/// All interfaces.
pub fn links() -> Result<Vec<Link>, Error> {
    Ok(netlink::list_links()?
        .into_iter()
        .map(|l| Link {
            index: l.index,
            name: l.name,
            up: l.up,
            mac: l.mac,
            mtu: l.mtu,
        })
        .collect())
}

/// All IPv4 and IPv6 addresses.
pub fn addresses() -> Result<Vec<Address>, Error> {
    netlink::list_addresses()?
        .into_iter()
        .map(|a| {
            let address = a.address.parse().map_err(|_| {
                Error::Failed(format!("host returned a malformed address {:?}", a.address))
            })?;
            Ok(Address {
                link_index: a.link_index,
                link_name: a.link_name,
                address,
                prefix_len: a.prefix_len,
                broadcast: a.broadcast.and_then(|b| b.parse().ok()),
                label: a.label,
            })
        })
        .collect()
}

/// Add an address (the host checks it against the resource's grant).
pub fn add_address(a: &NewAddress) -> Result<(), Error> {
    netlink::add_address(&netlink::NewAddress {
        link_name: a.link_name.clone(),
        address: a.address.to_string(),
        prefix_len: a.prefix_len,
        broadcast: a.broadcast.map(|b| b.to_string()),
        label: a.label.clone(),
    })
}

/// Remove an address from an interface.
pub fn remove_address(link_name: &str, address: IpAddr, prefix_len: u8) -> Result<(), Error> {
    netlink::remove_address(link_name, &address.to_string(), prefix_len)
}

/// Announce `address` on `link_name` (gratuitous ARP / unsolicited NA):
/// `count` repetitions `interval` apart; the first is sent before this
/// returns, the rest in the background by the host.
pub fn announce(
    link_name: &str,
    address: IpAddr,
    count: u32,
    interval: Duration,
) -> Result<(), Error> {
    let ms = u32::try_from(interval.as_millis()).unwrap_or(u32::MAX);
    wit_announce::announce(link_name, &address.to_string(), count, ms)
}

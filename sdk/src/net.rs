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

pub use wasmbeat_args::address::same_subnet;

/// How the host configured (or would configure) a granted address: the
/// interface, prefix, broadcast and label come from the grant and the
/// node's existing addresses, never from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The interface.
    pub link_name: String,
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IPv4 broadcast, if any.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label (`eth0:0`), if any.
    pub label: Option<String>,
}

fn assignment(a: netlink::Assignment) -> Result<Assignment, Error> {
    Ok(Assignment {
        address: a.address.parse().map_err(|_| {
            Error::Failed(format!("host returned a malformed address {:?}", a.address))
        })?,
        link_name: a.link_name,
        prefix_len: a.prefix_len,
        broadcast: a.broadcast.and_then(|b| b.parse().ok()),
        label: a.label,
    })
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

/// What [`add_address`] would configure for the granted `address`,
/// changing nothing: `not-configured` when no interface fits.
pub fn plan_address(address: IpAddr) -> Result<Assignment, Error> {
    assignment(netlink::plan_address(&address.to_string())?)
}

/// Configure the granted `address` as the host plans it.
pub fn add_address(address: IpAddr) -> Result<Assignment, Error> {
    assignment(netlink::add_address(&address.to_string())?)
}

/// Remove the granted `address` wherever its grant allows; how many
/// copies were removed (0: it was not configured).
pub fn remove_address(address: IpAddr) -> Result<u32, Error> {
    netlink::remove_address(&address.to_string())
}

/// Announce the granted `address`, configured on this node, on the
/// interface carrying it (gratuitous ARP / unsolicited NA): `count`
/// repetitions `interval` apart; the first is sent before this returns,
/// the rest in the background by the host. Each address has a budget of
/// repetitions; beyond it the host answers [`Error::Denied`].
pub fn announce(address: IpAddr, count: u32, interval: Duration) -> Result<(), Error> {
    let ms = u32::try_from(interval.as_millis()).unwrap_or(u32::MAX);
    wit_announce::announce(&address.to_string(), count, ms)
}

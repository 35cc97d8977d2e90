//! rtnetlink access: list links and addresses, add and remove addresses.
//! No policy here; `Caps` checks the grant before calling these.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use super::CapError;

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// IFF_UP.
    pub up: bool,
    /// Hardware address (empty if none).
    pub mac: Vec<u8>,
    /// MTU.
    pub mtu: u32,
}

/// An address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface index.
    pub link_index: u32,
    /// The address (IFA_LOCAL for IPv4, IFA_ADDRESS otherwise).
    pub ip: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IPv4 broadcast.
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label.
    pub label: Option<String>,
}

impl AddrInfo {
    /// Whether `ip` lies in this address's subnet.
    pub fn subnet_contains(&self, ip: IpAddr) -> bool {
        wasmbeat_args::address::same_subnet(self.ip, ip, self.prefix_len)
    }
}

fn nl_err(what: &str, e: rtnetlink::Error) -> CapError {
    if let rtnetlink::Error::NetlinkError(m) = &e {
        let io = m.to_io();
        if io.kind() == std::io::ErrorKind::PermissionDenied {
            // The kernel, not the grant, refused: OCF's "insufficient privilege".
            return CapError::Denied(format!(
                "{what}: {io} (managing addresses needs CAP_NET_ADMIN, i.e. root)"
            ));
        }
        return CapError::Failed(format!("{what}: {io}"));
    }
    CapError::Failed(format!("{what}: {e}"))
}

fn link_info(m: LinkMessage) -> LinkInfo {
    let mut l = LinkInfo {
        index: m.header.index,
        name: String::new(),
        up: m.header.flags.contains(LinkFlags::Up),
        mac: Vec::new(),
        mtu: 0,
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n,
            LinkAttribute::Address(mac) => l.mac = mac,
            LinkAttribute::Mtu(mtu) => l.mtu = mtu,
            _ => {}
        }
    }
    l
}

fn addr_info(m: AddressMessage) -> Option<AddrInfo> {
    let mut address = None;
    let mut local = None;
    let mut broadcast = None;
    let mut label = None;
    for a in m.attributes {
        match a {
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Broadcast(b) => broadcast = Some(b),
            AddressAttribute::Label(l) => label = Some(l),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    Some(AddrInfo {
        link_index: m.header.index,
        ip: local.or(address)?,
        prefix_len: m.header.prefix_len,
        broadcast,
        label,
    })
}

/// All links.
pub async fn list_links(h: &Handle) -> Result<Vec<LinkInfo>, CapError> {
    let msgs: Vec<LinkMessage> = h
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_err("listing links", e))?;
    Ok(msgs.into_iter().map(link_info).collect())
}

/// All addresses.
pub async fn list_addresses(h: &Handle) -> Result<Vec<AddrInfo>, CapError> {
    let msgs: Vec<AddressMessage> = h
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_err("listing addresses", e))?;
    Ok(msgs.into_iter().filter_map(addr_info).collect())
}

/// Add `ip/prefix` on link `index`, with an optional IPv4 broadcast and label.
pub async fn add_address(
    h: &Handle,
    index: u32,
    ip: IpAddr,
    prefix_len: u8,
    broadcast: Option<Ipv4Addr>,
    label: Option<String>,
) -> Result<(), CapError> {
    let mut req = h.address().add(index, ip, prefix_len);
    let msg = req.message_mut();
    if let Some(b) = broadcast {
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        msg.attributes.push(AddressAttribute::Broadcast(b));
    }
    if let Some(l) = label {
        msg.attributes.push(AddressAttribute::Label(l));
    }
    if ip.is_ipv6() {
        // A floating address is announced by us right away; duplicate
        // address detection would only hold it tentative for a second.
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute()
        .await
        .map_err(|e| nl_err(&format!("adding {ip}/{prefix_len}"), e))
}

/// Remove `ip/prefix` from link `index`; false when the kernel has no
/// such address there (someone else removed it: the caller's aim holds).
/// The request names the address itself, as `ip addr del` does, instead
/// of looking it up in a dump: a dump racing other removals can skip
/// addresses, and one per removal made stopping 256 VIPs quadratic.
pub async fn remove_address(
    h: &Handle,
    index: u32,
    ip: IpAddr,
    prefix_len: u8,
) -> Result<bool, CapError> {
    let mut m = AddressMessage::default();
    m.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = prefix_len;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(ip));
    m.attributes.push(AddressAttribute::Address(ip));
    match h.address().del(m).execute().await {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(e))
            if e.to_io().raw_os_error() == Some(libc::EADDRNOTAVAIL) =>
        {
            Ok(false)
        }
        Err(e) => Err(nl_err(&format!("removing {ip}/{prefix_len}"), e)),
    }
}

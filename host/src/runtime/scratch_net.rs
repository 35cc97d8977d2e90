//! The throw-away network namespace `wasmbeat agent test` runs agents in,
//! so testing an address agent never touches the node's real interfaces:
//! a fresh namespace with `lo` and one veth pair, `wbtest0` carrying
//! 192.0.2.1/24 and 2001:db8::1/64 (documentation ranges) and its peer
//! `wbtest1`. The namespace dies with the process.
//!
//! A token that names its interface (`IPaddr::10.78.2.10/24/eth0`, the
//! line a user copies from haresources) also gets that interface, as a
//! veth with an address in the resource address's subnet, so the test runs
//! the agent as the real node would instead of failing on a missing `eth0`.

use std::net::IpAddr;

use wasmbeat_args::address::{AddressSpec, MaskRule, PARAMS};

use futures::TryStreamExt;
use rtnetlink::{LinkUnspec, LinkVeth};

/// The interface agents under test can use.
pub const LINK: &str = "wbtest0";
/// Its veth peer, so announcements have somewhere to go.
pub const PEER: &str = "wbtest1";
/// The veth peer of an interface the token names.
const NAMED_PEER: &str = "wbtest-named";
/// Addresses on [`LINK`]: a resource address in 192.0.2.0/24 or
/// 2001:db8::/64 finds its interface.
pub const ADDRESSES: &[(&str, u8)] = &[("192.0.2.1", 24), ("2001:db8::1", 64)];

/// An extra interface the token under test names, with the address that
/// puts the resource address in its subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLink {
    /// The interface name from the token (`eth0`).
    pub name: String,
    /// Its own address, in the resource address's subnet.
    pub address: IpAddr,
    /// The subnet's prefix length.
    pub prefix: u8,
}

impl NamedLink {
    /// The interface a resource token names, if it names one other than
    /// [`LINK`]: its arguments read positionally as the address agents'
    /// `ip`, `cidr_netmask`, `nic`, `broadcast` (the same grammar the
    /// agents bind).
    pub fn for_token(args: &[String]) -> Option<NamedLink> {
        let get = |name: &str| {
            PARAMS
                .iter()
                .position(|p| *p == name)
                .and_then(|i| args.get(i))
                .map(String::as_str)
        };
        let spec = AddressSpec::from_params(get).ok()?;
        let name = spec
            .nic
            .clone()
            .filter(|n| n != LINK && n != PEER && n != "lo")?;
        // No mask written: the agent finds the interface by subnet, so any
        // common one does.
        let prefix = match (spec.prefix(MaskRule::Strict).ok()?, spec.ip) {
            (Some(p), _) => p,
            (None, IpAddr::V4(_)) => 24,
            (None, IpAddr::V6(_)) => 64,
        };
        Some(NamedLink {
            address: neighbour_in_subnet(spec.ip, prefix)?,
            name,
            prefix,
        })
    }
}

/// Another host address in `ip`'s subnet: the first one, or the second
/// when the first is `ip` itself. None for subnets with no room (/31, /32).
fn neighbour_in_subnet(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    // Both families as one integer of `bits` width.
    let (bits, value) = match ip {
        IpAddr::V4(v4) => (32u32, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (128, u128::from(v6)),
    };
    if u32::from(prefix) > bits - 2 {
        return None;
    }
    let host_bits = bits - u32::from(prefix);
    let net = value
        .checked_shr(host_bits)
        .and_then(|v| v.checked_shl(host_bits))
        .unwrap_or(0);
    let pick = if net + 1 == value { net + 2 } else { net + 1 };
    Some(match ip {
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(pick).ok()?.into()),
        IpAddr::V6(_) => IpAddr::V6(pick.into()),
    })
}

/// Why the scratch namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScratchNetError {
    /// unshare(CLONE_NEWNET) failed, usually for lack of CAP_SYS_ADMIN.
    #[error("cannot create a network namespace ({0}); run as root, or pass --in-place to test in the current one")]
    Unshare(nix::Error),
    /// A netlink request inside the new namespace failed.
    #[error("setting up the test namespace: {0}")]
    Netlink(String),
}

/// Move the calling thread into a new, empty network namespace. Call it
/// before any other thread starts: threads started later inherit it,
/// earlier ones do not.
pub fn enter() -> Result<(), ScratchNetError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(ScratchNetError::Unshare)
}

fn nl(what: &str) -> impl Fn(rtnetlink::Error) -> ScratchNetError + '_ {
    move |e| ScratchNetError::Netlink(format!("{what}: {e}"))
}

/// A veth pair `name`/`peer`, both ends up; the index of `name`.
async fn veth_up(h: &rtnetlink::Handle, name: &str, peer: &str) -> Result<u32, ScratchNetError> {
    h.link()
        .add(LinkVeth::new(name, peer).build())
        .execute()
        .await
        .map_err(nl("creating a veth pair"))?;
    for end in [name, peer] {
        h.link()
            .set(LinkUnspec::new_with_name(end).up().build())
            .execute()
            .await
            .map_err(nl("setting links up"))?;
    }
    Ok(h.link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
        .map_err(nl("finding the test link"))?
        .ok_or_else(|| ScratchNetError::Netlink(format!("{name} vanished")))?
        .header
        .index)
}

/// Inside the new namespace: `lo` up, the veth pair up, its addresses,
/// and the token's own interface when it names one.
pub async fn populate(named: Option<&NamedLink>) -> Result<(), ScratchNetError> {
    let (conn, h, _) = rtnetlink::new_connection()
        .map_err(|e| ScratchNetError::Netlink(format!("netlink socket: {e}")))?;
    let conn = tokio::spawn(conn);
    let result = async {
        h.link()
            .set(LinkUnspec::new_with_name("lo").up().build())
            .execute()
            .await
            .map_err(nl("setting lo up"))?;
        let index = veth_up(&h, LINK, PEER).await?;
        let mut addresses: Vec<(u32, IpAddr, u8)> = ADDRESSES
            .iter()
            .map(|(ip, prefix)| {
                let ip: IpAddr = ip.parse().expect("constant addresses parse");
                (index, ip, *prefix)
            })
            .collect();
        if let Some(n) = named {
            let index = veth_up(&h, &n.name, NAMED_PEER).await?;
            addresses.push((index, n.address, n.prefix));
        }
        for (index, ip, prefix) in addresses {
            let mut req = h.address().add(index, ip, prefix);
            if ip.is_ipv6() {
                // No duplicate address detection: nobody else is here.
                req.message_mut().attributes.push(
                    rtnetlink::packet_route::address::AddressAttribute::Flags(
                        rtnetlink::packet_route::address::AddressFlags::Nodad,
                    ),
                );
            }
            req.execute()
                .await
                .map_err(nl("adding the test addresses"))?;
        }
        Ok(())
    }
    .await;
    conn.abort();
    result
}

/// One line for the report header.
pub fn describe(named: Option<&NamedLink>) -> String {
    let addrs: Vec<String> = ADDRESSES.iter().map(|(a, p)| format!("{a}/{p}")).collect();
    let extra = named
        .map(|n| {
            format!(
                ", {} {}/{} (named by the token)",
                n.name, n.address, n.prefix
            )
        })
        .unwrap_or_default();
    format!(
        "throw-away network namespace: lo, {LINK} {} (peer {PEER}){extra}",
        addrs.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split("::").map(str::to_string).collect()
    }

    #[test]
    fn a_token_naming_eth0_gets_eth0_in_its_subnet() {
        let n = NamedLink::for_token(&args("10.78.2.10/24/eth0")).unwrap();
        assert_eq!(
            (n.name.as_str(), n.address.to_string(), n.prefix),
            ("eth0", "10.78.2.1".to_string(), 24)
        );
        // The first host is the resource address itself: take the next.
        let n = NamedLink::for_token(&args("10.78.2.1/255.255.255.0/bond0:web")).unwrap();
        assert_eq!(
            (n.name.as_str(), n.address.to_string()),
            ("bond0", "10.78.2.2".to_string())
        );
        let n = NamedLink::for_token(&args("fd00:1::10/64/eth1")).unwrap();
        assert_eq!(n.address.to_string(), "fd00:1::1");
        assert_eq!(
            neighbour_in_subnet("fd00::5".parse().unwrap(), 0),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn tokens_without_a_new_interface_add_nothing() {
        assert_eq!(NamedLink::for_token(&args("192.0.2.10")), None);
        assert_eq!(NamedLink::for_token(&args("192.0.2.10/24/wbtest0")), None);
        assert_eq!(
            NamedLink::for_token(&args("10.0.0.1/32/eth0")),
            None,
            "no room in a /32"
        );
        assert_eq!(NamedLink::for_token(&args("not-an-address")), None);
        assert_eq!(NamedLink::for_token(&[]), None);
    }
}

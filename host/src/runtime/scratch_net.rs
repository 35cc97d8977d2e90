//! The throw-away network namespace `wasmbeat agent test` runs agents in,
//! so testing an address agent never touches the node's real interfaces:
//! a fresh namespace with `lo` and one veth pair, `wbtest0` carrying
//! 192.0.2.1/24 and 2001:db8::1/64 (documentation ranges) and its peer
//! `wbtest1`. The namespace dies with the process.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::{LinkUnspec, LinkVeth};

/// The interface agents under test can use.
pub const LINK: &str = "wbtest0";
/// Its veth peer, so announcements have somewhere to go.
pub const PEER: &str = "wbtest1";
/// Addresses on [`LINK`]: a resource address in 192.0.2.0/24 or
/// 2001:db8::/64 finds its interface.
pub const ADDRESSES: &[(&str, u8)] = &[("192.0.2.1", 24), ("2001:db8::1", 64)];

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

/// Inside the new namespace: `lo` up, the veth pair up, its addresses.
pub async fn populate() -> Result<(), ScratchNetError> {
    let (conn, h, _) = rtnetlink::new_connection()
        .map_err(|e| ScratchNetError::Netlink(format!("netlink socket: {e}")))?;
    let conn = tokio::spawn(conn);
    let result = async {
        h.link()
            .add(LinkVeth::new(LINK, PEER).build())
            .execute()
            .await
            .map_err(nl("creating the veth pair"))?;
        for name in ["lo", LINK, PEER] {
            h.link()
                .set(LinkUnspec::new_with_name(name).up().build())
                .execute()
                .await
                .map_err(nl("setting links up"))?;
        }
        let link = h
            .link()
            .get()
            .match_name(LINK.to_string())
            .execute()
            .try_next()
            .await
            .map_err(nl("finding the test link"))?
            .ok_or_else(|| ScratchNetError::Netlink(format!("{LINK} vanished")))?;
        for (ip, prefix) in ADDRESSES {
            let ip: IpAddr = ip.parse().expect("constant addresses parse");
            let mut req = h.address().add(link.header.index, ip, *prefix);
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
pub fn describe() -> String {
    let addrs: Vec<String> = ADDRESSES.iter().map(|(a, p)| format!("{a}/{p}")).collect();
    format!(
        "throw-away network namespace: lo, {LINK} {} (peer {PEER})",
        addrs.join(" ")
    )
}

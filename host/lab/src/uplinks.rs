//! The two-network lab of the ping-node tests and the uplink-loss
//! benchmark: a heartbeat link between the two cluster nodes only (veth
//! `hb0`, 10.89.0.0/24) and a public LAN (the lab's bridge, 10.88.0.0/24)
//! with a router namespace that is the ping node and a client. One
//! definition, so the tests and `xtask bench` cut the same cables.

use crate::{Lab, LabError, Netns};

/// The VIP the cluster moves, on the public LAN.
pub const VIP: &str = "10.88.0.100";
/// The router namespace: the ping node.
pub const ROUTER: &str = "10.88.0.254";
/// The router's IPv6 address (after [`add_ipv6`]).
pub const ROUTER6: &str = "fd88::fe";
/// The heartbeat link's device name on both nodes.
pub const HB_DEV: &str = "hb0";
/// Index of the router namespace in [`Lab::nodes`].
pub const ROUTER_NODE: usize = 2;
/// Index of the client namespace in [`Lab::nodes`].
pub const CLIENT_NODE: usize = 3;

/// The lab: nodes 0 node1, 1 node2, 2 router (the ping node), 3 client,
/// all on the public bridge (`eth0`); node1 and node2 also joined by the
/// heartbeat link `hb0`. Node i's public port is switch port `p<i>`, so
/// [`Lab::set_link`] cuts an uplink and leaves the heartbeat link alone.
pub fn two_networks(tag: &str) -> Result<Lab, LabError> {
    let lab = Lab::new(
        tag,
        &[
            "10.88.0.1/24",
            "10.88.0.2/24",
            "10.88.0.254/24",
            "10.88.0.10/24",
        ],
    )?;
    // The heartbeat link: a cable between node1 and node2 only.
    let (n1, n2) = (&lab.nodes[0], &lab.nodes[1]);
    n1.ip(&[
        "link", "add", HB_DEV, "type", "veth", "peer", "name", HB_DEV, "netns", &n2.name,
    ])?;
    for (ns, addr) in [(n1, "10.89.0.1/24"), (n2, "10.89.0.2/24")] {
        // A broadcast address: heartbeat's `bcast hb0` needs one.
        ns.ip(&["addr", "add", addr, "brd", "+", "dev", HB_DEV])?;
        ns.ip(&["link", "set", HB_DEV, "up"])?;
    }
    Ok(lab)
}

/// IPv6 on the public LAN too (`fd88::<i+1>/64`, the router [`ROUTER6`]),
/// without duplicate address detection so the addresses work at once:
/// the lab for `ping6`. `nodes`: the lab's nodes in order.
pub fn add_ipv6<'a>(nodes: impl IntoIterator<Item = &'a Netns>) -> Result<(), LabError> {
    for (i, ns) in nodes.into_iter().enumerate() {
        let addr = if i == ROUTER_NODE {
            format!("{ROUTER6}/64")
        } else {
            format!("fd88::{}/64", i + 1)
        };
        ns.ip(&["-6", "addr", "add", &addr, "dev", "eth0", "nodad"])?;
    }
    Ok(())
}

//! The two-network lab of the ping node tests (`wasmbeat_lab::uplinks`,
//! shared with the uplink benchmark) with panicking helpers: a heartbeat
//! link between the two cluster nodes only and a public LAN with a router
//! namespace that is the ping node and a client. Shared by the
//! wasmbeat-only lab and the mixed lab with a real heartbeat 3.0.6, so both
//! cut the same cables and measure the same way.

use std::time::{Duration, Instant};

// For the lab tests that include this module (not every test binary does
// use the ping node's addresses).
#[allow(unused_imports)]
pub use wasmbeat_lab::uplinks::{ROUTER, ROUTER6, VIP};

use super::Lab;

/// nodes: 0 node1, 1 node2, 2 router (the ping node), 3 client.
pub struct TwoNetworks {
    pub lab: Lab,
}

impl TwoNetworks {
    pub fn new(tag: &str) -> TwoNetworks {
        let lab = wasmbeat_lab::uplinks::two_networks(tag).unwrap_or_else(|e| panic!("{e}"));
        TwoNetworks {
            lab: Lab::from(lab),
        }
    }

    /// IPv6 on the public LAN too (see `wasmbeat_lab::uplinks::add_ipv6`):
    /// the lab for `ping6`.
    pub fn with_ipv6(self) -> TwoNetworks {
        wasmbeat_lab::uplinks::add_ipv6(self.lab.nodes.iter().map(|n| &**n))
            .unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// Node `i`'s public port at the switch: cut (`false`) or restored.
    pub fn uplink(&self, i: usize, up: bool) {
        self.lab.set_link(i, up);
    }

    pub fn holds_vip(&self, i: usize) -> bool {
        self.lab.nodes[i]
            .addrs("eth0")
            .contains(&format!("{VIP}/24"))
    }

    /// Who serves the VIP to the client right now (the responder's body).
    pub fn served_by(&self) -> Option<String> {
        let addr = format!("{VIP}:80").parse().unwrap();
        super::in_netns(&self.lab.nodes[3], || super::http_get(addr))
    }

    /// Wait until node `i` alone holds the VIP (and, if `client`, the
    /// client reaches it there, answered by `node<i+1>`); how long it
    /// took. Panics with `why` and `logs()` when `limit` passes.
    pub fn vip_on(
        &self,
        i: usize,
        limit: Duration,
        client: bool,
        why: &str,
        logs: &dyn Fn() -> String,
    ) -> Duration {
        let t = Instant::now();
        let want = format!("node{}", i + 1);
        super::wait_for(limit, Duration::from_millis(20), || {
            (self.holds_vip(i)
                && !self.holds_vip(1 - i)
                && (!client || self.served_by().as_deref() == Some(want.as_str())))
            .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{why}: the VIP was not on {want} alone within {limit:?}\n{}",
                logs()
            )
        });
        t.elapsed()
    }

    /// Who holds the VIP, sampled every 20 ms for `d`: the number of
    /// changes of holder seen.
    pub fn holder_changes(&self, d: Duration) -> usize {
        let end = Instant::now() + d;
        let mut last = None;
        let mut changes = 0;
        while Instant::now() < end {
            let now = (self.holds_vip(0), self.holds_vip(1));
            if last.is_some_and(|l| l != now) && now.0 != now.1 {
                changes += 1;
            }
            if now.0 != now.1 {
                last = Some(now);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        changes
    }
}

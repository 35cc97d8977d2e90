//! The node's links and addresses as the host's own checks read them
//! (findif's plan, the duplicate check, which link carries an address to
//! announce), shared by every agent operation in flight in one network
//! namespace.
//!
//! Each check needs every address of the node, and a group of 256 VIPs
//! starts as 256 concurrent operations: dumped per operation, that is 256
//! dumps of up to 512 addresses, the quadratic cost that kept a 256-VIP
//! failover hundreds of milliseconds past deadtime. Here one dump serves
//! every operation that overlaps it: the view lives while at least one
//! operation holds it (a burst of starts or stops) and is dropped with the
//! last, so the next burst dumps afresh. Operations write what they add
//! and remove into it; an agent's own `addresses()` call still dumps and
//! refreshes it. What it can miss is a change made by someone else during
//! the burst (an admin's `ip addr` in those milliseconds): the kernel still
//! refuses a duplicate on the same link, and the next burst sees it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Weak};

use super::announce::PacketSocket;
use super::netlink::{self, AddrInfo, LinkInfo};
use super::CapError;

/// One namespace's view: links (agents cannot create or rename them) and
/// addresses, each dumped on first use. The async lock makes concurrent
/// first users wait for one dump instead of each making their own. The
/// burst's operations also share one netlink connection and one packet
/// socket instead of opening their own.
#[derive(Default)]
struct View {
    state: tokio::sync::Mutex<State>,
    /// Read-held by each of our own changes in flight, write-held by a
    /// dump: a dump racing changes can skip addresses, so it waits for
    /// them, while changes to different addresses overlap each other.
    changes: tokio::sync::RwLock<()>,
    netlink: Mutex<Option<rtnetlink::Handle>>,
    packet: Mutex<Option<Arc<PacketSocket>>>,
}

/// What has been dumped so far.
#[derive(Default)]
pub struct State {
    /// Links, once dumped.
    links: Option<Arc<Vec<LinkInfo>>>,
    /// Addresses, once dumped, with this burst's own changes applied.
    addrs: Option<Vec<AddrInfo>>,
}

impl State {
    /// The links, dumped through `h` on first use.
    pub async fn links(&mut self, h: &rtnetlink::Handle) -> Result<Arc<Vec<LinkInfo>>, CapError> {
        if let Some(l) = &self.links {
            return Ok(Arc::clone(l));
        }
        let l = Arc::new(netlink::list_links(h).await?);
        self.links = Some(Arc::clone(&l));
        Ok(l)
    }

    /// The addresses, dumped through `h` on first use; the caller keeps
    /// them current with the changes it makes while holding the lock.
    pub async fn addrs(&mut self, h: &rtnetlink::Handle) -> Result<&mut Vec<AddrInfo>, CapError> {
        if self.addrs.is_none() {
            return self.refresh_addrs(h).await;
        }
        Ok(self.addrs.as_mut().expect("dumped in this burst"))
    }

    /// The addresses as this burst last saw them, without a dump.
    pub fn cached_addrs(&mut self) -> Option<&mut Vec<AddrInfo>> {
        self.addrs.as_mut()
    }

    /// The addresses, dumped now.
    pub async fn refresh_addrs(
        &mut self,
        h: &rtnetlink::Handle,
    ) -> Result<&mut Vec<AddrInfo>, CapError> {
        Ok(self.addrs.insert(netlink::list_addresses(h).await?))
    }
}

/// The runtime's views, one per network namespace in use (the daemon has
/// one; tests run agents in several). Cheap to clone.
#[derive(Clone, Default)]
pub struct NodeNet {
    views: Arc<Mutex<HashMap<u64, Weak<View>>>>,
}

/// One operation's hold on its namespace's view.
#[derive(Clone)]
pub struct Lease {
    view: Arc<View>,
}

impl NodeNet {
    /// A hold on the calling thread's namespace's view, shared with every
    /// other operation holding one now.
    pub fn lease(&self) -> Lease {
        let ns = current_netns();
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = views.get(&ns).and_then(Weak::upgrade) {
            return Lease { view };
        }
        // The last holder of every other dead view is gone too.
        views.retain(|_, v| v.strong_count() > 0);
        let view = Arc::new(View::default());
        views.insert(ns, Arc::downgrade(&view));
        Lease { view }
    }
}

impl Lease {
    /// The view, locked. Held across a dump and across reading and
    /// updating the view; never across anything else that waits (a
    /// change's netlink request runs under [`Lease::change`] instead).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        self.view.state.lock().await
    }

    /// Held by an operation from its update of the view until its netlink
    /// change is done, so no dump runs meanwhile. Taken before
    /// [`Lease::lock`], never while holding it.
    pub async fn change(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.view.changes.read().await
    }

    /// Held across a dump that replaces the view: it waits for the changes
    /// in flight. Taken before [`Lease::lock`], never while holding it.
    pub async fn dump(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.view.changes.write().await
    }

    /// The burst's netlink connection, opened on first use (its task runs
    /// on the caller's runtime and ends with the last handle).
    pub fn netlink(&self) -> Result<rtnetlink::Handle, CapError> {
        let mut slot = self.view.netlink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*slot {
            return Ok(h.clone());
        }
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| CapError::Failed(format!("opening a netlink socket: {e}")))?;
        tokio::spawn(conn);
        *slot = Some(handle.clone());
        Ok(handle)
    }

    /// The burst's packet socket for announcements, opened on first use;
    /// announcements still repeating keep it open after the burst.
    pub fn packet_socket(&self) -> std::io::Result<Arc<PacketSocket>> {
        let mut slot = self.view.packet.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = &*slot {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(PacketSocket::open()?);
        *slot = Some(Arc::clone(&s));
        Ok(s)
    }
}

/// The identity of the calling thread's network namespace (0 when it
/// cannot be read: every caller then shares one view, as before namespaces
/// mattered).
fn current_netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> AddrInfo {
        AddrInfo {
            link_index: 2,
            ip: ip.parse().unwrap(),
            prefix_len: 24,
            broadcast: None,
            label: None,
        }
    }

    #[test]
    fn holders_share_one_view_and_the_last_one_out_drops_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = NodeNet::default();
            let a = net.lease();
            a.lock().await.addrs = Some(vec![addr("10.0.0.1")]);
            let b = net.lease();
            assert_eq!(
                b.lock().await.addrs.as_deref(),
                Some(&[addr("10.0.0.1")][..]),
                "a second operation in the same burst reads the first one's dump"
            );
            drop(a);
            assert!(b.lock().await.addrs.is_some(), "held by b");
            drop(b);
            let c = net.lease();
            assert!(c.lock().await.addrs.is_none(), "a new burst dumps afresh");
        });
    }

    #[test]
    fn changes_overlap_and_a_dump_waits_for_every_change_in_flight() {
        use std::time::Duration;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = NodeNet::default();
            let (a, b) = (net.lease(), net.lease());
            let short = Duration::from_millis(20);
            let first = a.change().await;
            let second = tokio::time::timeout(short, b.change())
                .await
                .expect("a second change is not held up by the first");
            assert!(
                tokio::time::timeout(short, a.dump()).await.is_err(),
                "a dump ran while changes were in flight"
            );
            drop(first);
            assert!(
                tokio::time::timeout(short, a.dump()).await.is_err(),
                "a dump ran while the second change was in flight"
            );
            drop(second);
            let dump = tokio::time::timeout(Duration::from_secs(5), b.dump())
                .await
                .expect("the dump runs once no change is in flight");
            // And while it runs, no change starts.
            assert!(tokio::time::timeout(short, a.change()).await.is_err());
            drop(dump);
        });
    }
}

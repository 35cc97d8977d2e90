//! `meatware`: heartbeat's manual fence device, built into the host. To
//! fence a node it asks the operator, in a CRIT log line, to power-cycle
//! it and confirm with `wasmbeat fence-ack NODE`, then waits for that
//! confirmation ([`super::Fencing::ack`]) or the deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// One node's outstanding request for the operator.
#[derive(Default)]
struct Pending {
    acked: AtomicBool,
    notify: Notify,
}

/// Outstanding meatware requests by node (shared by every meatware device
/// of a [`super::Fencing`]).
#[derive(Default)]
pub(crate) struct Acks {
    pending: Mutex<HashMap<String, Arc<Pending>>>,
}

/// Why a meatware wait ended without a confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotConfirmed {
    pub waited: Duration,
}

impl Acks {
    /// The operator confirmed that `node` was power-cycled: true when a
    /// fencing of it was waiting.
    pub(crate) fn ack(&self, node: &str) -> bool {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node.to_lowercase());
        match p {
            Some(p) => {
                p.acked.store(true, Ordering::SeqCst);
                p.notify.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Nodes waiting for the operator.
    pub(crate) fn waiting(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Ask the operator to `what` (`power-cycle`, `power off`) `node` and
    /// wait for [`Acks::ack`] at most `deadline`.
    pub(crate) async fn ask(
        &self,
        device: &str,
        node: &str,
        what: &str,
        deadline: Duration,
    ) -> Result<(), NotConfirmed> {
        let key = node.to_lowercase();
        let p = Arc::clone(
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        tracing::error!(target: "wasmbeat::fence", device, node,
            "CRIT: STONITH: OPERATOR INTERVENTION REQUIRED to {what} {node}: {what} {node} by hand, make sure it is down, then run `wasmbeat fence-ack {node}` (waiting up to {:?})", deadline);
        let t0 = tokio::time::Instant::now();
        let wait = async {
            loop {
                let n = p.notify.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                if p.acked.load(Ordering::SeqCst) {
                    return;
                }
                n.await;
            }
        };
        let r = tokio::time::timeout(deadline, wait).await;
        if r.is_err() {
            // Nobody confirmed: withdraw the request (unless a newer wait
            // for the same node took it over).
            let mut m = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if m.get(&key).is_some_and(|q| Arc::ptr_eq(q, &p)) && Arc::strong_count(&p) <= 2 {
                m.remove(&key);
            }
            tracing::error!(target: "wasmbeat::fence", device, node,
                "STONITH: no operator confirmation for {node} within {deadline:?}; {node} is NOT fenced");
            return Err(NotConfirmed {
                waited: t0.elapsed(),
            });
        }
        tracing::warn!(target: "wasmbeat::fence", device, node,
            "STONITH: the operator confirmed that {node} was {what}ed (after {:?})", t0.elapsed());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ack_ends_the_wait_and_none_times_out() {
        let acks = Arc::new(Acks::default());
        assert!(!acks.ack("node1"), "nothing waits yet");
        let a = Arc::clone(&acks);
        let w = tokio::spawn(async move {
            a.ask("meatware", "node1", "power-cycle", Duration::from_secs(30))
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(acks.waiting(), ["node1"]);
        assert!(acks.ack("NODE1"));
        assert_eq!(w.await.unwrap(), Ok(()));
        assert!(acks.waiting().is_empty());

        let r = acks
            .ask(
                "meatware",
                "node2",
                "power-cycle",
                Duration::from_millis(200),
            )
            .await;
        assert!(r.is_err());
        assert!(
            acks.waiting().is_empty(),
            "a timed-out request is withdrawn"
        );
        assert!(!acks.ack("node2"));
    }
}

//! One medium's I/O failures: counted for `wasmbeat status` and the
//! metrics, and logged at the 1st, 2nd, 4th, 8th... of each kind. A dead
//! medium fails every keepalive (20 times a second at 50 ms); logging
//! each would bury the log, and counting none would leave an operator's
//! monitoring blind to a medium that carries nothing while the others
//! keep the cluster up.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

/// Send and receive errors of one medium, shared by its reader, its
/// writer and whoever reports them.
#[derive(Debug)]
pub struct MediumErrors {
    /// The medium as ha.cf names it (`bcast eth0`), for logs and reports.
    label: String,
    send: AtomicU64,
    receive: AtomicU64,
}

impl MediumErrors {
    /// No errors yet on the medium `label`.
    pub fn new(label: String) -> MediumErrors {
        MediumErrors {
            label,
            send: AtomicU64::new(0),
            receive: AtomicU64::new(0),
        }
    }

    /// The medium's label (`bcast eth0`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Packets this medium failed to send so far.
    pub fn send_errors(&self) -> u64 {
        self.send.load(Ordering::Relaxed)
    }

    /// Reads from this medium that failed so far.
    pub fn receive_errors(&self) -> u64 {
        self.receive.load(Ordering::Relaxed)
    }

    /// Count a failed send of a `what` message.
    pub fn on_send_error(&self, error: &dyn Display, what: &str) {
        let n = self.send.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(link = %self.label, error = %error, errors = n, "write error on medium");
        } else {
            tracing::debug!(link = %self.label, error = %error, t = %what, "write error on medium");
        }
    }

    /// Count a failed read.
    pub fn on_receive_error(&self, error: &dyn Display) {
        let n = self.receive.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(link = %self.label, error = %error, errors = n, "read error on medium");
        } else {
            tracing::debug!(link = %self.label, error = %error, "read error on medium");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_counted_apart() {
        let e = MediumErrors::new("bcast eth0".into());
        for _ in 0..5 {
            e.on_send_error(&"Network is unreachable", "status");
        }
        e.on_receive_error(&"Connection refused");
        assert_eq!((e.send_errors(), e.receive_errors()), (5, 1));
        assert_eq!(e.label(), "bcast eth0");
    }
}

//! The client-visible measurement every failover row shares: probe a VIP
//! over HTTP from the client namespace until the expected node answers.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use wasmbeat_lab::{http, Netns};

use crate::cadence::Cadence;
use crate::interrupt::{self, interrupted};

/// Client probe cadence: a new HTTP request every 10 ms.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);
/// Per-probe connect/read timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// Probe `vip`:80 from `client` every 10 ms (each probe on its own thread,
/// so a hanging connect does not slow the cadence) until one answers
/// `want`; returns when that answer arrived, or None after `limit`.
pub fn first_answer(
    client: &Netns,
    vip: &str,
    want: &str,
    limit: Duration,
) -> Result<Option<Instant>> {
    let addr: SocketAddr = format!("{vip}:80").parse()?;
    let found = client.within(|| {
        let (tx, rx) = mpsc::channel::<Instant>();
        std::thread::scope(|s| {
            let start = Instant::now();
            let mut cadence = Cadence::new(PROBE_EVERY);
            loop {
                if let Ok(at) = rx.try_recv() {
                    return Some(at);
                }
                if start.elapsed() >= limit || interrupt::requested() {
                    return None;
                }
                let tx = tx.clone();
                // Threads inherit the namespace of the thread that
                // creates them.
                s.spawn(move || {
                    if http::get_body(addr, PROBE_TIMEOUT).as_deref() == Some(want) {
                        let _ = tx.send(Instant::now());
                    }
                });
                cadence.wait();
            }
        })
    })?;
    interrupted()?;
    Ok(found)
}

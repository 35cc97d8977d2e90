//! A fixed-rate loop: each wait ends one period after the previous one
//! was due, not one period after the caller got round to waiting, so a
//! probe or sample every 10 ms stays every 10 ms; a loop that fell behind
//! starts counting again from now instead of bursting to catch up.

use std::time::{Duration, Instant};

/// The next due time of a fixed-rate loop.
pub struct Cadence {
    every: Duration,
    next: Instant,
}

impl Cadence {
    /// A loop that runs every `every`, the first round now.
    pub fn new(every: Duration) -> Cadence {
        Cadence {
            every,
            next: Instant::now(),
        }
    }

    /// Sleep until the next round is due.
    pub fn wait(&mut self) {
        let due = self.advance();
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }

    /// Move to the next round and say when it is due, for a caller that
    /// waits on something else meanwhile.
    pub fn advance(&mut self) -> Instant {
        self.next += self.every;
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        self.next
    }
}

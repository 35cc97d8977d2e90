//! Probe rounds for a set of long-lived prober threads, one per address:
//! the measuring loop opens a round, and every thread whose address takes
//! part in it and that is not still busy with its last probe probes once.
//!
//! Threads that wait for a round instead of threads spawned per probe: at
//! 16 sampled VIPs every 10 ms, spawning was 1,600 threads a second on the
//! two cores the daemons under test run on, and the 240 spawned at once
//! when the sample had moved took part of the "every VIP" figure.

use std::sync::{Condvar, Mutex};

/// Which addresses the current round is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The sampled addresses only.
    Sample,
    /// Every address.
    All,
}

#[derive(Debug)]
struct State {
    round: u64,
    scope: Scope,
    stopped: bool,
}

/// The round counter the prober threads wait on.
#[derive(Debug)]
pub struct Rounds {
    state: Mutex<State>,
    cv: Condvar,
}

impl Rounds {
    /// No round open yet; the first [`Rounds::open`] starts with `scope`.
    pub fn new(scope: Scope) -> Rounds {
        Rounds {
            state: Mutex::new(State {
                round: 0,
                scope,
                stopped: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// Open the next round for `scope`.
    pub fn open(&self, scope: Scope) {
        let mut s = self.lock();
        s.round += 1;
        s.scope = scope;
        self.cv.notify_all();
    }

    /// End every waiting thread's wait with None.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.cv.notify_all();
    }

    /// Block until a round after `seen` is open that an address in the
    /// sample (`sampled`) or not takes part in; that round's number, or
    /// None once stopped.
    pub fn next(&self, seen: u64, sampled: bool) -> Option<u64> {
        let mut s = self.lock();
        loop {
            if s.stopped {
                return None;
            }
            if s.round > seen && (sampled || s.scope == Scope::All) {
                return Some(s.round);
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn unsampled_threads_wait_for_a_round_of_every_address() {
        let rounds = Rounds::new(Scope::Sample);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            for sampled in [true, false] {
                let (rounds, tx) = (&rounds, tx.clone());
                s.spawn(move || {
                    let mut seen = 0;
                    while let Some(r) = rounds.next(seen, sampled) {
                        seen = r;
                        tx.send((sampled, r)).unwrap();
                    }
                });
            }
            let got = |rx: &mpsc::Receiver<(bool, u64)>| rx.recv_timeout(Duration::from_secs(10));
            rounds.open(Scope::Sample);
            assert_eq!(got(&rx), Ok((true, 1)));
            rounds.open(Scope::All);
            let mut both = [got(&rx).unwrap(), got(&rx).unwrap()];
            both.sort();
            assert_eq!(both, [(false, 2), (true, 2)]);
            rounds.stop();
        });
        assert!(rx.try_recv().is_err(), "nothing after the stop");
    }
}

//! A token bucket of log lines, so one chatty or hostile source (an agent,
//! a spawned server's stderr) cannot flood the log: a burst passes, then
//! lines pass at a steady rate, and what is dropped is counted and reported
//! in one line when logging resumes.

use std::sync::Mutex;
use std::time::Instant;

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it; first report that `suppressed` lines were dropped before it
    /// (0: nothing to report).
    Log {
        /// Lines dropped since the last logged one.
        suppressed: u64,
    },
    /// Drop it (counted).
    Drop,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

/// Lines one source may log: `burst` at once, `per_second` after that.
#[derive(Debug)]
pub struct LineBudget {
    burst: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

impl LineBudget {
    /// Lines an agent may log per resource: a burst of 100, then 20/s.
    pub fn for_agent() -> LineBudget {
        LineBudget::new(100, 20)
    }

    /// Stderr lines a resource's spawned servers may log: a burst of 200
    /// (a database's start-up banner), then 20/s.
    pub fn for_server() -> LineBudget {
        LineBudget::new(200, 20)
    }

    /// A full bucket of `burst` lines refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> LineBudget {
        LineBudget {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            state: Mutex::new(Bucket {
                tokens: f64::from(burst.max(1)),
                last: Instant::now(),
                suppressed: 0,
            }),
        }
    }

    /// Whether a line arriving now may be logged.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    /// [`LineBudget::admit`] at a given instant (monotonic; earlier
    /// instants than the last one count as no time passed).
    pub fn admit_at(&self, now: Instant) -> Admit {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.last);
        b.last = b.last.max(now);
        b.tokens = (b.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Admit::Log {
                suppressed: std::mem::take(&mut b.suppressed),
            }
        } else {
            b.suppressed += 1;
            Admit::Drop
        }
    }

    /// Lines dropped and not yet reported; reading resets the count (for a
    /// summary when the source goes quiet, e.g. at the end of an operation).
    pub fn take_suppressed(&self) -> u64 {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut b.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_lines_are_counted_and_reported_once() {
        let b = LineBudget::new(3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.admit_at(t0), Admit::Log { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(b.admit_at(t0), Admit::Drop);
        }
        // 100 ms at 10/s refills one line, which carries the count.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.admit_at(t1), Admit::Log { suppressed: 5 });
        assert_eq!(b.admit_at(t1), Admit::Drop);
        assert_eq!(b.take_suppressed(), 1);
        assert_eq!(b.take_suppressed(), 0);
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let b = LineBudget::new(2, 1000);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(3600);
        let passed = (0..10)
            .filter(|_| matches!(b.admit_at(later), Admit::Log { .. }))
            .count();
        assert_eq!(passed, 2);
        // Time going backwards (an older instant) adds nothing.
        assert_eq!(b.admit_at(t0), Admit::Drop);
    }
}

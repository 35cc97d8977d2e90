//! The main loop's single deadline on a timerfd.
//!
//! tokio's timer wheel files a deadline more than a few tens of ms away in
//! a coarser level and wakes the thread at that level's slot boundary to
//! move it down: with a 50 ms keepalive about three heartbeats in four cost
//! an extra wake-up, a quarter of the idle daemon's CPU. A timerfd wakes
//! exactly once, at the requested time, with the kernel's hrtimer precision.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// `TimerFd` as something tokio's reactor can register.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A one-shot CLOCK_MONOTONIC timer, re-armed before each wait.
pub struct WakeTimer {
    fd: AsyncFd<Fd>,
    armed_for: Option<Instant>,
}

impl WakeTimer {
    /// A disarmed timer registered with the current tokio runtime.
    pub fn new() -> io::Result<WakeTimer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: `Fd` owns the timerfd for the AsyncFd's whole life and
        // always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), Interest::READABLE) }?;
        Ok(WakeTimer {
            fd,
            armed_for: None,
        })
    }

    /// Fire at `at` (at once if it has passed). Re-arming for the same
    /// instant is free, so the loop can call this on every iteration.
    pub fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed_for == Some(at) {
            return Ok(());
        }
        // A zero it_value disarms a timerfd: a due deadline fires in 1 µs.
        let after = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(1));
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)?;
        self.armed_for = Some(at);
        Ok(())
    }

    /// Wait until the armed deadline passes; the timer is disarmed after.
    /// Cancel-safe: dropping the future leaves the timer armed.
    pub async fn expired(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut count = [0u8; 8];
            let fd = guard.get_inner().as_raw_fd();
            // SAFETY: reading 8 bytes into a buffer of 8 from a timerfd we own.
            let n = unsafe { libc::read(fd, count.as_mut_ptr().cast(), count.len()) };
            if n == 8 {
                // One-shot: nothing more to read until the next arm, so
                // the next wait need not try a read that would fail.
                guard.clear_ready();
                self.armed_for = None;
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_once_at_the_deadline_and_rearms() {
        let mut t = WakeTimer::new().unwrap();
        let t0 = Instant::now();
        t.arm(t0 + Duration::from_millis(30)).unwrap();
        t.expired().await.unwrap();
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        // Not armed any more: a short wait times out.
        let again = tokio::time::timeout(Duration::from_millis(50), t.expired()).await;
        assert!(again.is_err(), "a one-shot timer fired twice");
        // A deadline in the past fires at once.
        t.arm(Instant::now() - Duration::from_millis(5)).unwrap();
        tokio::time::timeout(Duration::from_millis(50), t.expired())
            .await
            .expect("a past deadline fires at once")
            .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rearming_earlier_moves_the_deadline() {
        let mut t = WakeTimer::new().unwrap();
        let t0 = Instant::now();
        t.arm(t0 + Duration::from_secs(5)).unwrap();
        t.arm(t0 + Duration::from_millis(20)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), t.expired())
            .await
            .expect("the earlier deadline replaced the later one")
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}

//! What the daemon tells systemd (`sd_notify`): ready once media are open
//! and agents loaded, reloading and ready again around a reload, stopping,
//! a one-line cluster status, and `WATCHDOG=1` from the heartbeat loop
//! itself, so a stalled loop gets the daemon restarted.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. A failed
//! notification is logged once and never stops the daemon: systemd's own
//! timeouts are the backstop.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The daemon's side of the notify protocol.
#[derive(Debug)]
pub struct ServiceManager {
    /// Whether `NOTIFY_SOCKET` was set at start.
    enabled: bool,
    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as
    /// sd_watchdog_enabled(3) recommends.
    watchdog_every: Option<Duration>,
    /// When the last `WATCHDOG=1` went out.
    last_pet: Option<Instant>,
    /// The last `STATUS=` sent, so an unchanged one is not repeated.
    last_status: String,
    /// A send already failed and was reported.
    failed_once: bool,
}

impl ServiceManager {
    /// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> ServiceManager {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let watchdog_every = sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|d| d / 2);
        if let Some(every) = watchdog_every {
            tracing::info!(
                "systemd watchdog enabled: the heartbeat loop pets it every {:.1} s",
                every.as_secs_f64()
            );
        }
        ServiceManager {
            enabled,
            watchdog_every,
            last_pet: None,
            last_status: String::new(),
            failed_once: false,
        }
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !self.failed_once {
                self.failed_once = true;
                tracing::warn!("cannot notify systemd through NOTIFY_SOCKET: {e}");
            }
        }
    }

    /// Start-up finished: media open, agents loaded, control socket bound.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload began; [`ServiceManager::reloaded`] ends it.
    pub fn reloading(&mut self) {
        // MONOTONIC_USEC lets systemd >= 253 match the reload to its
        // request; older ones ignore it.
        let mut states = vec![NotifyState::Reloading];
        if let Ok(usec) = NotifyState::monotonic_usec_now() {
            states.push(usec);
        }
        states.push(NotifyState::Status("reloading the configuration"));
        self.send(&states);
    }

    /// A reload finished (applied or refused: either way the daemon runs).
    pub fn reloaded(&mut self, status: &str) {
        self.ready(status);
    }

    /// A graceful shutdown began.
    pub fn stopping(&mut self, why: &str) {
        let status = format!("stopping ({why}): releasing every group");
        self.send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
    }

    /// Report the cluster state when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// When the heartbeat loop must wake to pet the watchdog next.
    pub fn next_pet(&self, now: Instant) -> Option<Instant> {
        let every = self.watchdog_every?;
        Some(self.last_pet.map_or(now, |t| t + every))
    }

    /// Send `WATCHDOG=1` if it is due. Called only from the heartbeat
    /// loop: if that loop stalls, the pets stop and systemd acts.
    pub fn pet(&mut self, now: Instant) {
        if self.next_pet(now).is_some_and(|due| due <= now) {
            self.last_pet = Some(now);
            self.send(&[NotifyState::Watchdog]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pets_at_the_interval_and_never_without_a_watchdog() {
        let mut sm = ServiceManager {
            enabled: false,
            watchdog_every: Some(Duration::from_secs(5)),
            last_pet: None,
            last_status: String::new(),
            failed_once: false,
        };
        let t0 = Instant::now();
        assert_eq!(sm.next_pet(t0), Some(t0), "first pet is due at once");
        sm.pet(t0);
        assert_eq!(sm.next_pet(t0), Some(t0 + Duration::from_secs(5)));
        sm.pet(t0 + Duration::from_secs(1));
        assert_eq!(sm.last_pet, Some(t0), "not due yet: no pet");
        sm.pet(t0 + Duration::from_secs(6));
        assert_eq!(sm.last_pet, Some(t0 + Duration::from_secs(6)));

        sm.watchdog_every = None;
        assert_eq!(sm.next_pet(t0), None);
    }
}

//! ha.cf `watchdog /dev/watchdog`: the Linux watchdog device, petted with
//! every heartbeat this node sends, so a node whose daemon hangs is reset
//! by the kernel (a hardware watchdog, or `softdog`) instead of keeping its
//! groups while the peer takes them over.
//!
//! - **Opened** at start (write-only, non-blocking, close-on-exec) as the
//!   last step before the heartbeat loop turns: agents are loaded, media,
//!   control socket and timer are open, so no later start-up failure can
//!   leave an armed watchdog behind. A device that cannot be opened stops
//!   the start with its path and the fix: a daemon that was asked for a
//!   watchdog never runs unprotected. A missing one is already found
//!   before the agents load ([`precheck`], which does not arm it).
//! - **Timeout** ([`choose_watchdog_timeout`]): the longest whole number
//!   of seconds that still resets a hung node before the peer declares it
//!   dead, even when the last heartbeat before the hang was lost (deadtime
//!   − keepalive), but never so short that a loop the core still counts as
//!   running (late by less than a keepalive) is reset. heartbeat 3.0.6 sets deadtime
//!   rounded *up*, which resets a hung node only after the peer took its
//!   groups; wasmbeat resets it before.
//! - **Petted** by [`Watchdog::pet`] from the heartbeat loop right after it
//!   sent one of our own `status` messages (the failover core decides those
//!   every keepalive). No timer task of its own: if the core, the loop or
//!   the transmit path stops, the heartbeats and the pets stop together.
//!   heartbeat pets when its own status comes back to it; the send is the
//!   same event one hop earlier.
//! - **Closed** by [`Watchdog::disarm`] (the "magic close": `V`, then
//!   close) only after a graceful stop released every group. Any other
//!   exit (a crash, a shutdown that gave up on a stuck stop, an error of
//!   the loop) drops it armed: the node may still hold groups, and the
//!   reset is what frees them.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::hacf::choose_watchdog_timeout;

/// `WDIOC_SETTIMEOUT` (`<linux/watchdog.h>`): `_IOWR('W', 6, int)`.
const WDIOC_SETTIMEOUT: libc::Ioctl = libc::_IOWR::<libc::c_int>(b'W' as u32, 6);
/// `WDIOC_GETTIMEOUT`: `_IOR('W', 7, int)`.
const WDIOC_GETTIMEOUT: libc::Ioctl = libc::_IOR::<libc::c_int>(b'W' as u32, 7);

/// How long a failed pet keeps further failures quiet in the log.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why the watchdog device could not be used.
#[derive(Debug, thiserror::Error)]
#[error("watchdog {path} (ha.cf `watchdog`): {what}; {fix}")]
pub struct OpenError {
    /// The device path from ha.cf.
    pub path: String,
    /// What went wrong.
    pub what: String,
    /// How to fix it.
    pub fix: &'static str,
}

const FIX_LOAD: &str = "load a watchdog driver (`modprobe softdog` for the kernel's software watchdog, or the board's own driver) or remove the `watchdog` line from ha.cf; wasmbeat does not run unprotected when a watchdog was asked for";

fn open_error(path: &str, e: &std::io::Error) -> OpenError {
    let fix = match e.raw_os_error() {
        Some(libc::EBUSY) => "another process holds it open (a watchdog daemon, or systemd's RuntimeWatchdogSec= on /dev/watchdog0): stop that, or remove the `watchdog` line from ha.cf",
        Some(libc::EACCES) | Some(libc::EPERM) => "run wasmbeat as root",
        _ => FIX_LOAD,
    };
    OpenError {
        path: path.to_string(),
        what: format!("cannot open it: {e}"),
        fix,
    }
}

/// Whether `path` can be a watchdog device, without opening it (opening
/// arms it): run before the agents load, so a missing driver stops the
/// start at once rather than after a cold compile. A busy device is only
/// found by [`Watchdog::open`].
pub fn precheck(path: &str) -> Result<(), OpenError> {
    let kind = std::fs::metadata(path)
        .map_err(|e| open_error(path, &e))?
        .file_type();
    if kind.is_char_device() || kind.is_fifo() {
        Ok(())
    } else {
        Err(not_a_device(path))
    }
}

fn not_a_device(path: &str) -> OpenError {
    OpenError {
        path: path.to_string(),
        what: "not a character device".into(),
        fix: FIX_LOAD,
    }
}

/// What `wasmbeat status` shows of the watchdog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchdogStatus {
    /// The device (ha.cf `watchdog`).
    pub device: String,
    /// The device's timeout in seconds as it reported it; None when it
    /// does not take the timeout ioctls (its own timeout applies).
    pub timeout_s: Option<u32>,
    /// Seconds since the last successful pet.
    pub last_pet_age_s: f64,
    /// Successful pets since start.
    pub pets: u64,
    /// Pets whose write failed.
    pub failures: u64,
}

/// The open watchdog device.
#[derive(Debug)]
pub struct Watchdog {
    path: String,
    /// None once disarmed.
    file: Option<File>,
    /// The timeout the device reported (None: it does not say).
    timeout: Option<u32>,
    last_pet: Instant,
    pets: u64,
    failures: u64,
    /// The timings the timeout was last chosen for.
    tuned_for: Option<(Duration, Duration)>,
    /// Failures since the last successful pet.
    failed_run: u64,
    /// Failures not yet logged, and when one was last logged.
    unlogged: u64,
    last_failure_log: Option<Instant>,
}

/// One `int` ioctl on `fd`.
fn int_ioctl(
    fd: libc::c_int,
    request: libc::Ioctl,
    value: &mut libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: both watchdog ioctls read and/or write one int, which
    // `value` points to for the duration of the call.
    if unsafe { libc::ioctl(fd, request, value as *mut libc::c_int) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Watchdog {
    /// Open `path`, set its timeout for `deadtime`/`keepalive` and pet it
    /// once. Logs one line with the device and the timeout in effect.
    pub fn open(
        path: &str,
        deadtime: Duration,
        keepalive: Duration,
    ) -> Result<Watchdog, OpenError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            // std opens with O_CLOEXEC: agents' children never inherit it.
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| open_error(path, &e))?;
        let kind = file
            .metadata()
            .map_err(|e| open_error(path, &e))?
            .file_type();
        if !(kind.is_char_device() || kind.is_fifo()) {
            // Opening for writing changed nothing; writing would.
            return Err(not_a_device(path));
        }
        let mut w = Watchdog {
            path: path.to_string(),
            file: Some(file),
            timeout: None,
            last_pet: Instant::now(),
            pets: 0,
            failures: 0,
            tuned_for: None,
            failed_run: 0,
            unlogged: 0,
            last_failure_log: None,
        };
        w.tune(deadtime, keepalive);
        w.pet(Instant::now());
        Ok(w)
    }

    /// Ask the device for the timeout [`choose_watchdog_timeout`] picks,
    /// read back what it took and log it; again only when a reload changed
    /// the timings.
    pub fn tune(&mut self, deadtime: Duration, keepalive: Duration) {
        let Some(fd) = self.file.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        if self.tuned_for == Some((deadtime, keepalive)) {
            return;
        }
        self.tuned_for = Some((deadtime, keepalive));
        let choice = choose_watchdog_timeout(deadtime, keepalive);
        let mut asked = i32::try_from(choice.secs).unwrap_or(i32::MAX);
        let set = int_ioctl(fd, WDIOC_SETTIMEOUT, &mut asked);
        let mut got = 0;
        let get = int_ioctl(fd, WDIOC_GETTIMEOUT, &mut got);
        let rule = format!(
            "deadtime {deadtime:?} − keepalive {keepalive:?} in whole seconds, at least {} s",
            choice.shortest
        );
        match get {
            Ok(()) => {
                let effective = u32::try_from(got).unwrap_or(0);
                self.timeout = Some(effective);
                let how = match set {
                    Ok(()) if effective == choice.secs => "set".to_string(),
                    Ok(()) => format!("the driver rounded {} s to it", choice.secs),
                    Err(e) => format!(
                        "the driver refused {} s ({e}); its own timeout applies",
                        choice.secs
                    ),
                };
                tracing::info!(
                    "watchdog {}: timeout {effective} s ({how}; asked for {rule}); petted with each heartbeat every {keepalive:?}",
                    self.path
                );
                let effective = Duration::from_secs(effective.into());
                if effective > choice.latest {
                    tracing::warn!(
                        "watchdog {}: a hung node is reset up to {:.1} s after the peer may have taken its groups (timeout {} s > deadtime − keepalive = {:?}); a longer deadtime closes the gap",
                        self.path,
                        (effective - choice.latest).as_secs_f64(),
                        effective.as_secs(),
                        choice.latest
                    );
                }
                if effective < Duration::from_secs(choice.shortest.into()) {
                    tracing::warn!(
                        "watchdog {}: timeout {} s leaves a loop late by less than a keepalive no room: a loaded but healthy node may be reset",
                        self.path,
                        effective.as_secs()
                    );
                }
            }
            Err(e) => {
                self.timeout = None;
                tracing::info!(
                    "watchdog {}: the device does not take the timeout ioctls ({e}); the device's own timeout applies (wasmbeat would ask for {} s: {rule}); petted with each heartbeat every {keepalive:?}",
                    self.path,
                    choice.secs
                );
            }
        }
    }

    /// Pet the watchdog (one NUL byte, as heartbeat writes). Called by the
    /// heartbeat loop right after it sent one of our own heartbeats, and
    /// from nowhere else. False when the write failed (logged, rate-limited).
    pub fn pet(&mut self, now: Instant) -> bool {
        let Some(file) = self.file.as_mut() else {
            return false;
        };
        match file.write(b"\0") {
            Ok(1) => {
                self.last_pet = now;
                self.pets += 1;
                if self.failed_run > 0 {
                    tracing::warn!(
                        "watchdog {}: petted again after {} failed pet(s)",
                        self.path,
                        self.failed_run
                    );
                    self.failed_run = 0;
                    self.unlogged = 0;
                }
                true
            }
            other => {
                let e = match other {
                    Ok(n) => format!("wrote {n} bytes"),
                    Err(e) => e.to_string(),
                };
                self.failures += 1;
                self.failed_run += 1;
                let quiet = self
                    .last_failure_log
                    .is_some_and(|t| now.duration_since(t) < FAILURE_LOG_EVERY);
                if quiet {
                    self.unlogged += 1;
                } else {
                    self.last_failure_log = Some(now);
                    let since = std::mem::take(&mut self.unlogged);
                    let more = if since > 0 {
                        format!("; {since} more failure(s) since the last report")
                    } else {
                        String::new()
                    };
                    tracing::error!(
                        "watchdog {}: cannot pet it: {e}; last pet {:.1} s ago{more}; the node is reset when the timeout passes without one (further failures logged at most every {FAILURE_LOG_EVERY:?})",
                        self.path,
                        now.duration_since(self.last_pet).as_secs_f64(),
                    );
                }
                false
            }
        }
    }

    /// The magic close: write `V`, then close, so the driver stops the
    /// timer. Only after a graceful stop released every group.
    pub fn disarm(mut self) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        match file.write(b"V") {
            Ok(1) => tracing::info!(
                "watchdog {}: disarmed (magic close) after the graceful stop",
                self.path
            ),
            other => tracing::error!(
                "watchdog {}: the magic close failed ({}); the device stays armed and resets the node when its timeout passes",
                self.path,
                match other {
                    Ok(n) => format!("wrote {n} bytes"),
                    Err(e) => e.to_string(),
                }
            ),
        }
        drop(file);
    }

    /// Status for `wasmbeat status` and the metrics.
    pub fn status(&self, now: Instant) -> WatchdogStatus {
        WatchdogStatus {
            device: self.path.clone(),
            timeout_s: self.timeout,
            last_pet_age_s: now.duration_since(self.last_pet).as_secs_f64(),
            pets: self.pets,
            failures: self.failures,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if self.file.is_some() {
            // Closed without `V`: the driver keeps counting.
            tracing::error!(
                "watchdog {}: closed without the magic close (wasmbeat did not finish a graceful stop); the node is reset {}",
                self.path,
                self.timeout.map_or("when the device's own timeout passes".to_string(), |t| format!(
                    "within {t} s of the last pet"
                ))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_full_device_counts_failed_pets_recovers_and_closes_with_v() {
        // A pipe stands in for the device (no watchdog here): a small
        // buffer nobody reads fills up, and the next write fails.
        let mut fds = [0; 2];
        // SAFETY: pipe(2) into an array of two fds we own and close below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, w) = (fds[0], fds[1]);
        // SAFETY: fcntl on our own pipe.
        unsafe { libc::fcntl(w, libc::F_SETPIPE_SZ, 4096) };
        let mut dog = Watchdog::open(&format!("/proc/self/fd/{w}"), secs(5), secs(1)).unwrap();
        assert_eq!(dog.timeout, None, "a pipe takes no timeout ioctls");
        let t = Instant::now();
        let mut pets = 1;
        while dog.pet(t) {
            pets += 1;
            assert!(pets <= 1 << 20, "the pipe never filled");
        }
        assert_eq!(dog.status(t).pets, pets);
        assert_eq!((dog.failures, dog.failed_run, dog.unlogged), (1, 1, 0));
        assert!(!dog.pet(t + secs(1)));
        assert_eq!(
            (dog.failures, dog.unlogged),
            (2, 1),
            "the second failure within a minute is not logged"
        );
        let mut buf = vec![0u8; 1 << 16];
        // SAFETY: read(2) into a buffer of the given length.
        let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n > 0);
        assert!(dog.pet(t + secs(2)));
        assert_eq!((dog.failed_run, dog.status(t + secs(2)).failures), (0, 2));
        dog.disarm();
        // SAFETY: as above; the pipe now holds what came after the drain.
        let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n >= 2, "read {n}");
        assert_eq!(
            &buf[n as usize - 2..n as usize],
            b"\0V",
            "the magic close writes V last"
        );
        // SAFETY: closing the fds pipe(2) gave us.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }

    #[test]
    #[cfg(all(
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    fn the_ioctl_numbers_are_linux_watchdog_h() {
        // <linux/watchdog.h> on the generic ioctl encoding.
        assert_eq!(WDIOC_SETTIMEOUT, 0xC004_5706);
        assert_eq!(WDIOC_GETTIMEOUT, 0x8004_5707);
    }

    #[test]
    fn a_missing_device_names_the_path_and_the_fix() {
        let e = Watchdog::open("/nonexistent/watchdog", secs(5), secs(1)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/nonexistent/watchdog"), "{text}");
        assert!(text.contains("modprobe softdog"), "{text}");
    }

    #[test]
    fn a_regular_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("not-a-device");
        std::fs::write(&f, "keep").unwrap();
        let e = precheck(f.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("not a character device"), "{e}");
        assert!(precheck("/nonexistent/watchdog")
            .unwrap_err()
            .to_string()
            .contains("modprobe softdog"));
        assert!(precheck("/dev/null").is_ok(), "a character device passes");
        let e = Watchdog::open(f.to_str().unwrap(), secs(5), secs(1)).unwrap_err();
        assert!(e.to_string().contains("not a character device"), "{e}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep");
    }
}

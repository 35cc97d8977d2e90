//! Ctrl-C for the benchmarks: SIGINT/SIGTERM set a flag every loop checks,
//! so each lab is torn down on its normal path instead of being abandoned.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on.
pub fn install() {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether SIGINT/SIGTERM arrived.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once SIGINT/SIGTERM arrived, so every loop ends and labs are torn down.
pub fn interrupted() -> Result<()> {
    if requested() {
        bail!("interrupted; lab torn down");
    }
    Ok(())
}

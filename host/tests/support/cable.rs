//! A null-modem cable for serial-medium tests.

use std::path::PathBuf;

/// Two pty pairs joined master-to-master by relay threads: a null-modem cable.
pub struct Cable {
    /// The two far ends: a serial medium on each.
    pub slaves: [PathBuf; 2],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Cable {
    /// Open both pty pairs and start relaying.
    pub fn new() -> Cable {
        use nix::pty::openpty;
        use std::os::fd::{AsRawFd, OwnedFd};
        let a = openpty(None, None).unwrap();
        let b = openpty(None, None).unwrap();
        let name =
            |fd: &OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let slaves = [name(&a.slave), name(&b.slave)];
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ma = std::sync::Arc::new(std::fs::File::from(a.master));
        let mb = std::sync::Arc::new(std::fs::File::from(b.master));
        // Keep the slave ends open so the masters never see a hang-up.
        let keep = std::sync::Arc::new((a.slave, b.slave));
        let mut threads = Vec::new();
        for (from, to) in [(ma.clone(), mb.clone()), (mb, ma)] {
            let stop = stop.clone();
            let keep = keep.clone();
            threads.push(std::thread::spawn(move || {
                use std::io::{Read, Write};
                let _keep = keep;
                let mut buf = [0u8; 4096];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut pfd = libc::pollfd {
                        fd: from.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one valid fd.
                    if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                        continue;
                    }
                    match (&*from).read(&mut buf) {
                        Ok(n) if n > 0 => {
                            let _ = (&*to).write_all(&buf[..n]);
                        }
                        _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                }
            }));
        }
        Cable {
            slaves,
            stop,
            threads,
        }
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

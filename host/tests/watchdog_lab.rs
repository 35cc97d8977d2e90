//! ha.cf `watchdog`: a real `wasmbeat run` in a network namespace of its
//! own (a one-node lab; its peer node2 is never started, so node1 takes
//! its VIP after initdead), petting a watchdog device.
//!
//! This machine has no hardware watchdog and must not load `softdog` (it
//! would reset the host running the tests), so the "device" is a FIFO the
//! test creates, with a reader thread that timestamps every byte the daemon
//! writes. A FIFO does not take the watchdog ioctls, so the daemon logs
//! that the device's own timeout applies and pets it all the same; what a
//! real watchdog would do is judged from the gaps between the bytes.

mod support;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Lab, TempDir};

const VIP: &str = "10.77.0.100";
const KEEPALIVE: Duration = Duration::from_millis(500);

/// How long after a stop a pet written before it may still be read.
const IN_FLIGHT: Duration = Duration::from_millis(300);

/// The timing test measures gaps on a 2-core box: one daemon at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What the reader saw: each byte with when `read` returned it, and when
/// the writer closed (EOF).
#[derive(Default)]
struct Seen {
    bytes: Vec<(Instant, u8)>,
    eof: Option<Instant>,
}

/// The watchdog stand-in: a FIFO whose reader thread timestamps every byte.
struct FakeWatchdog {
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl FakeWatchdog {
    fn new(path: PathBuf) -> FakeWatchdog {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path we own.
        assert_eq!(
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
            0,
            "mkfifo {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (p, s) = (path.clone(), seen.clone());
        let reader = std::thread::spawn(move || {
            // Blocks until the daemon opens it for writing; a blocked
            // reader already counts as one, so the daemon's non-blocking
            // open succeeds.
            let Ok(mut f) = std::fs::File::open(&p) else {
                return;
            };
            let mut buf = [0u8; 64];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        s.lock().unwrap().eof = Some(Instant::now());
                        return;
                    }
                    Ok(n) => {
                        let now = Instant::now();
                        s.lock()
                            .unwrap()
                            .bytes
                            .extend(buf[..n].iter().map(|b| (now, *b)));
                    }
                }
            }
        });
        FakeWatchdog {
            path,
            seen,
            reader: Some(reader),
        }
    }

    /// Timestamps of the bytes received in `[from, to)`.
    fn between(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap()
            .bytes
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t >= from && *t < to)
            .collect()
    }
}

impl Drop for FakeWatchdog {
    fn drop(&mut self) {
        // A reader still blocked in open (no daemon ever opened it) is
        // released by a writer that opens and closes at once.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// A one-node lab with node1's config dir, its runtime dir and its log.
struct Node {
    lab: Lab,
    dir: TempDir,
    pid: Option<u32>,
}

impl Node {
    fn new(tag: &str, watchdog: &Path) -> Node {
        let lab = Lab::new(tag, &["10.77.0.1/24"]);
        let dir = TempDir::new(tag);
        support::write_node_config(
            &dir.0.join("node1"),
            &format!(
                "keepalive {}ms\ndeadtime 2\nwarntime 1\ninitdead 2\nudpport 694\nbcast eth0\nauto_failback on\nnode node1\nnode node2\nwatchdog {}\n",
                KEEPALIVE.as_millis(),
                watchdog.display()
            ),
            &format!("node1 IPaddr::{VIP}/24/eth0\n"),
        );
        Node {
            lab,
            dir,
            pid: None,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.0.join("node1.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn start(&mut self) -> u32 {
        let cmd = support::daemon_command(
            &self.dir.0.join("node1"),
            "node1",
            &self.dir.0.join("node1.run"),
            &self.log(),
        );
        let pid = self.lab.nodes[0].spawn(cmd);
        self.pid = Some(pid);
        pid
    }

    fn signal(&self, signal: i32) {
        let pid = self.pid.expect("daemon started");
        assert!(self.lab.nodes[0].signal(pid, signal), "pid {pid} not ours");
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let code = self.lab.nodes[0].wait_exit(self.pid?, limit);
        if code.is_some() {
            self.pid = None;
        }
        code
    }

    fn holds_vip(&self) -> bool {
        self.lab.nodes[0].has_addr("eth0", VIP)
    }

    fn wait_log(&self, needle: &str, limit: Duration) {
        if support::wait_for(limit, Duration::from_millis(50), || {
            self.log_text().contains(needle).then_some(())
        })
        .is_none()
        {
            panic!(
                "the daemon never logged {needle:?} within {limit:?}; log:\n{}",
                self.log_text()
            );
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // Never leave it stopped: the namespace's drop kills it.
            self.lab.nodes[0].signal(pid, libc::SIGCONT);
        }
        if std::thread::panicking() {
            eprintln!("----- node1 log -----\n{}", self.log_text());
        }
    }
}

fn gaps_ms(ts: &[Instant]) -> Vec<f64> {
    ts.windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect()
}

/// Stop only the main thread of `pid` (where wasmbeat's heartbeat loop
/// runs) for `hold`: ptrace stops are per thread, unlike SIGSTOP. Returns
/// when it was stopped and released. The tracer is a thread of its own;
/// if it dies, the kernel detaches the tracee.
fn stop_main_thread(pid: u32, hold: Duration) -> (Instant, Instant) {
    let pid = pid as libc::pid_t;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: ptrace/waitpid on a process this test spawned; every
            // path that seized it detaches (or the thread's exit does).
            unsafe {
                assert_eq!(
                    libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0),
                    0,
                    "PTRACE_SEIZE {pid}: {}",
                    std::io::Error::last_os_error()
                );
                assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
                let mut status = 0;
                assert_eq!(libc::waitpid(pid, &mut status, libc::__WALL), pid);
                let stopped = Instant::now();
                std::thread::sleep(hold);
                let continued = Instant::now();
                assert_eq!(
                    libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0),
                    0,
                    "PTRACE_DETACH {pid}: {}",
                    std::io::Error::last_os_error()
                );
                (stopped, continued)
            }
        })
        .join()
        .unwrap()
    })
}

#[test]
fn pets_with_each_heartbeat_stop_with_the_loop_and_close_with_v() {
    if !support::lab_available("pets_with_each_heartbeat_stop_with_the_loop_and_close_with_v") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let fifo_dir = TempDir::new("wdfifo");
    // Declared before the node: dropped after the daemon is gone.
    let dog = FakeWatchdog::new(fifo_dir.0.join("watchdog"));
    let mut node = Node::new("wd", &dog.path);
    node.start();

    node.wait_log("the device's own timeout applies", Duration::from_secs(60));
    let line = node
        .log_text()
        .lines()
        .find(|l| l.contains("the device's own timeout applies"))
        .unwrap()
        .to_string();
    assert!(line.contains(&dog.path.display().to_string()), "{line}");
    eprintln!("start-up line: {line}");
    // node2 never answers: node1 takes its VIP after initdead.
    assert!(
        support::wait_for(Duration::from_secs(30), Duration::from_millis(50), || node
            .holds_vip()
            .then_some(()))
        .is_some(),
        "node1 never took {VIP}"
    );

    // (a) Pets at least every keepalive (+ slack for a loaded 2-core box).
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let window = dog.between(from, Instant::now());
    let gaps = gaps_ms(&window);
    let max_gap = gaps.iter().cloned().fold(0.0, f64::max);
    let bound = KEEPALIVE + Duration::from_millis(750);
    eprintln!(
        "(a) {} pets in 5 s with keepalive {KEEPALIVE:?}: max gap {max_gap:.0} ms (bound {bound:?}); gaps {gaps:.0?}",
        window.len()
    );
    assert!(
        window.len() >= 5,
        "only {} pets in 5 s with keepalive {KEEPALIVE:?}",
        window.len()
    );
    assert!(
        max_gap <= bound.as_secs_f64() * 1000.0,
        "a gap of {max_gap:.0} ms between pets exceeds keepalive {KEEPALIVE:?} + slack ({bound:?}): {gaps:.0?}"
    );

    // `wasmbeat status` shows the device.
    let (code, status) = support::control_cli(
        Path::new(env!("CARGO_BIN_EXE_wasmbeat")),
        &node.dir.0.join("node1"),
        &node.dir.0.join("node1.run"),
        &["status"],
    );
    let line = status
        .lines()
        .find(|l| l.starts_with("watchdog "))
        .unwrap_or_default();
    eprintln!("    status: {line}");
    assert_eq!(code, 0, "{status}");
    assert!(
        line.contains(&dog.path.display().to_string()) && line.contains("last pet"),
        "status does not show the watchdog:\n{status}"
    );

    // (b) A stopped daemon stops petting: a real watchdog would fire.
    node.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    std::thread::sleep(KEEPALIVE * 3 + Duration::from_secs(1));
    let continued = Instant::now();
    node.signal(libc::SIGCONT);
    // A pet written just before the stop may be read a moment after it
    // (the reader thread may wait for a CPU on a loaded box).
    let during = dog.between(stopped + IN_FLIGHT, continued);
    assert!(
        during.is_empty(),
        "{} pet(s) arrived while the daemon was stopped ({:?} after SIGSTOP)",
        during.len(),
        during.first().map(|t| *t - stopped)
    );
    let resumed = support::wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        dog.between(continued, Instant::now()).first().copied()
    })
    .expect("no pet within 5 s of SIGCONT");
    let last_before = dog
        .between(stopped - Duration::from_secs(5), stopped + IN_FLIGHT)
        .last()
        .copied()
        .unwrap_or(stopped);
    let silence = resumed - last_before;
    eprintln!(
        "(b) SIGSTOP for {:.0} ms: no pet for {:.0} ms (≥ 3 × keepalive = {:?}); first pet {:.0} ms after SIGCONT",
        (continued - stopped).as_secs_f64() * 1000.0,
        silence.as_secs_f64() * 1000.0,
        KEEPALIVE * 3,
        (resumed - continued).as_secs_f64() * 1000.0
    );
    assert!(
        silence >= KEEPALIVE * 3,
        "silence of {silence:?} is shorter than 3 × keepalive"
    );
    // Steady again after the stall.
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let again = dog.between(from, Instant::now());
    eprintln!(
        "    after SIGCONT: {} pets in 2 s, gaps {:.0?}",
        again.len(),
        gaps_ms(&again)
    );
    assert!(
        again.len() >= 2,
        "pets did not resume: {} in 2 s",
        again.len()
    );

    // (b') Only the heartbeat loop's thread stopped (the main thread,
    // ptrace-interrupted; the agents' and helper threads run on): no pet
    // comes from anywhere else.
    let pid = node.pid.expect("daemon running");
    let (stopped, continued) = stop_main_thread(pid, KEEPALIVE * 3 + Duration::from_secs(1));
    let during = dog.between(stopped + IN_FLIGHT, continued);
    let resumed = support::wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        dog.between(continued, Instant::now()).first().copied()
    })
    .expect("no pet within 5 s of releasing the heartbeat thread");
    let last_before = dog
        .between(stopped - Duration::from_secs(5), stopped + IN_FLIGHT)
        .last()
        .copied()
        .unwrap_or(stopped);
    eprintln!(
        "(b') heartbeat thread alone stopped for {:.0} ms: {} pet(s) meanwhile, no pet for {:.0} ms; first pet {:.0} ms after release",
        (continued - stopped).as_secs_f64() * 1000.0,
        during.len(),
        (resumed - last_before).as_secs_f64() * 1000.0,
        (resumed - continued).as_secs_f64() * 1000.0
    );
    assert!(
        during.is_empty(),
        "{} pet(s) arrived while only the heartbeat loop's thread was stopped: something else pets",
        during.len()
    );
    assert!(resumed - last_before >= KEEPALIVE * 3);

    // (c) SIGTERM: groups released, then the magic close, exit 0.
    node.signal(libc::SIGTERM);
    let code = node.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "exit status after SIGTERM");
    assert!(!node.holds_vip(), "{VIP} still configured after the stop");
    let eof = support::wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        dog.seen.lock().unwrap().eof
    });
    assert!(eof.is_some(), "the daemon exited but the FIFO saw no close");
    let (last, total) = {
        let seen = dog.seen.lock().unwrap();
        (seen.bytes.last().map(|(_, b)| *b), seen.bytes.len())
    };
    eprintln!("(c) exit {code:?}; {total} bytes in all; last byte {last:?}");
    assert_eq!(last, Some(b'V'), "the last byte written is not the magic V");
    let text = node.log_text();
    let released = text
        .find("graceful shutdown complete")
        .expect("no 'graceful shutdown complete' line");
    let disarmed = text
        .find("disarmed (magic close)")
        .expect("no 'disarmed (magic close)' line");
    assert!(
        released < disarmed,
        "disarmed before the groups were released"
    );
}

#[test]
fn a_watchdog_that_cannot_be_opened_refuses_the_start() {
    if !support::lab_available("a_watchdog_that_cannot_be_opened_refuses_the_start") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let missing = Path::new("/nonexistent-wasmbeat-test/watchdog");
    let mut node = Node::new("wdno", missing);
    let started = Instant::now();
    node.start();
    let code = node.wait_exit(Duration::from_secs(60));
    let took = started.elapsed();
    let text = node.log_text();
    let line = text
        .lines()
        .find(|l| l.contains("watchdog"))
        .unwrap_or_default()
        .to_string();
    eprintln!("(d) exit {code:?} after {took:.1?}: {line}");
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit {code:?}: a daemon without its watchdog must not run; log:\n{text}"
    );
    assert!(
        line.contains(&missing.display().to_string()) && line.contains("modprobe softdog"),
        "the error names neither the path nor the fix: {line}"
    );
    assert!(!node.holds_vip(), "{VIP} configured by a refused daemon");
    assert!(
        !text.contains("loaded 1 resource group"),
        "the missing device was found only after the agents loaded:\n{text}"
    );
}

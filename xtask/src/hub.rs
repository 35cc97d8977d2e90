//! A faulty userspace hub for the stress test and the chaos run. This
//! kernel has no `sch_netem` (and no tc actions), so loss, duplication and
//! reordering are made here: the switch ports leave the bridge and a thread
//! in the switch namespace forwards frames between them through AF_PACKET
//! sockets, treating each directed port pair as its current [`Impairment`]
//! says (changeable while it runs). Everything is restored on stop and on
//! drop.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use wasmbeat_lab::Lab;

/// What happens to frames going from one port to another.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PathFaults {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is held back and sent after the next one
    /// (or after [`REORDER_HOLD`] if no other frame comes).
    pub reorder: f64,
}

/// Longest a held-back frame waits for a successor before it goes out.
pub const REORDER_HOLD: std::time::Duration = std::time::Duration::from_millis(30);

/// The faults on every directed port pair (`paths[from][to]`); port i is
/// lab node i.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    paths: Vec<Vec<PathFaults>>,
}

impl Impairment {
    /// A hub that forwards everything between `ports` ports.
    pub fn clean(ports: usize) -> Impairment {
        Impairment {
            paths: vec![vec![PathFaults::default(); ports]; ports],
        }
    }

    /// The same faults on every path.
    pub fn uniform(ports: usize, faults: PathFaults) -> Impairment {
        Impairment {
            paths: vec![vec![faults; ports]; ports],
        }
    }

    /// These faults from port `from` to port `to` only.
    pub fn one_way(mut self, from: usize, to: usize, faults: PathFaults) -> Impairment {
        self.paths[from][to] = faults;
        self
    }

    /// These faults in both directions between `a` and `b`.
    pub fn between(self, a: usize, b: usize, faults: PathFaults) -> Impairment {
        self.one_way(a, b, faults).one_way(b, a, faults)
    }

    fn path(&self, from: usize, to: usize) -> PathFaults {
        self.paths
            .get(from)
            .and_then(|row| row.get(to))
            .copied()
            .unwrap_or_default()
    }
}

/// Frame counts since the hub started.
#[derive(Debug, Default)]
pub struct HubCounters {
    /// Frame copies sent to a port.
    pub forwarded: AtomicU64,
    /// Frame copies dropped.
    pub dropped: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
    /// Copies held back behind a later frame.
    pub reordered: AtomicU64,
}

/// A running hub between the lab's switch ports.
pub struct Hub {
    switch: String,
    nodes: Vec<String>,
    ports: usize,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Impairment>>,
    counters: Arc<HubCounters>,
    thread: Option<JoinHandle<()>>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Checksum offload must be off on the senders: frames read from AF_PACKET
/// would otherwise carry partial checksums the receiver rejects.
fn tx_checksum(ns: &str, on: bool) -> Result<()> {
    let st = Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-K", "eth0", "tx"])
        .arg(if on { "on" } else { "off" })
        .output()
        .context("ethtool (apt-get install ethtool) is needed for the stress test")?;
    if !st.status.success() {
        bail!(
            "ethtool -K eth0 tx in {ns}: {}",
            String::from_utf8_lossy(&st.stderr).trim()
        );
    }
    Ok(())
}

fn open_port(name: &str) -> Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let cname = std::ffi::CString::new(name)?;
    // SAFETY: valid C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        bail!("no interface {name}");
    }
    // SAFETY: zeroed sockaddr_ll is a valid starting value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: bind with a correctly sized sockaddr_ll.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
    }
    Ok(fd)
}

impl Hub {
    /// Take the lab's switch ports off the bridge and forward between them
    /// in userspace with these faults; `seed` drives the coin flips.
    pub fn start(lab: &Lab, faults: Impairment, seed: u64) -> Result<Hub> {
        let switch = lab.switch.name.clone();
        let nodes: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
        let ports = nodes.len();
        let mut hub = Hub {
            switch: switch.clone(),
            nodes,
            ports,
            stop: Arc::new(AtomicBool::new(false)),
            faults: Arc::new(Mutex::new(faults)),
            counters: Arc::new(HubCounters::default()),
            thread: None,
        };
        for ns in &hub.nodes {
            tx_checksum(ns, false)?;
        }
        // Open the sockets before leaving the bridge so no frame is lost
        // to the switch-over itself beyond a few in flight.
        let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
        let (stop, faults, counters) = (hub.stop.clone(), hub.faults.clone(), hub.counters.clone());
        let ns_path = format!("/run/netns/{switch}");
        hub.thread = Some(std::thread::spawn(move || {
            let setup = (|| -> Result<Vec<OwnedFd>> {
                let f = std::fs::File::open(&ns_path)?;
                // SAFETY: setns on this thread only, with an fd we opened.
                if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
                (0..ports).map(|i| open_port(&format!("p{i}"))).collect()
            })();
            let fds = match setup {
                Ok(f) => {
                    let _ = tx.send(Ok(()));
                    f
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            Forwarder::new(fds, seed, faults, counters).run(&stop);
        }));
        rx.recv().context("hub thread died")??;
        for i in 0..ports {
            ip(&["-n", &switch, "link", "set", &format!("p{i}"), "nomaster"])?;
        }
        Ok(hub)
    }

    /// Change the faults from the next frame on.
    pub fn set(&self, faults: Impairment) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Counts so far.
    pub fn counters(&self) -> &HubCounters {
        &self.counters
    }

    /// Stop forwarding, put the ports back on the bridge; returns
    /// (frames forwarded, frames dropped).
    pub fn stop(mut self) -> (u64, u64) {
        self.restore();
        (
            self.counters.forwarded.load(Ordering::Relaxed),
            self.counters.dropped.load(Ordering::Relaxed),
        )
    }

    fn restore(&mut self) {
        for i in 0..self.ports {
            let _ = ip(&[
                "-n",
                &self.switch,
                "link",
                "set",
                &format!("p{i}"),
                "master",
                "br0",
            ]);
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for ns in &self.nodes {
            let _ = tx_checksum(ns, true);
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.restore();
        }
    }
}

/// The hub thread's state: the port sockets, the coin, and the frame
/// each port holds back for reordering.
struct Forwarder {
    fds: Vec<OwnedFd>,
    rng: u64,
    faults: Arc<Mutex<Impairment>>,
    counters: Arc<HubCounters>,
    held: Vec<Option<(Vec<u8>, Instant)>>,
}

impl Forwarder {
    fn new(
        fds: Vec<OwnedFd>,
        seed: u64,
        faults: Arc<Mutex<Impairment>>,
        counters: Arc<HubCounters>,
    ) -> Forwarder {
        let held = fds.iter().map(|_| None).collect();
        Forwarder {
            fds,
            rng: seed | 1,
            faults,
            counters,
            held,
        }
    }

    /// xorshift64*: no dependency for coin flips.
    fn coin(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn send(&self, to: usize, frame: &[u8]) {
        // SAFETY: send from our buffer on a bound packet socket.
        unsafe {
            libc::send(
                self.fds[to].as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// One frame to port `to`, through its path's faults.
    fn deliver(&mut self, to: usize, frame: &[u8], path: PathFaults) {
        if self.coin(path.loss) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let held = self.held[to].take();
        if held.is_none() && self.coin(path.reorder) {
            self.counters.reordered.fetch_add(1, Ordering::Relaxed);
            self.held[to] = Some((frame.to_vec(), Instant::now()));
            return;
        }
        self.send(to, frame);
        if self.coin(path.duplicate) {
            self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
            self.send(to, frame);
        }
        // The held-back frame goes out after this later one: reordered.
        if let Some((old, _)) = held {
            self.send(to, &old);
        }
    }

    /// Held-back frames whose successor did not come in time go out now.
    fn flush_stale(&mut self) {
        for to in 0..self.held.len() {
            if self.held[to]
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= REORDER_HOLD)
            {
                if let Some((old, _)) = self.held[to].take() {
                    self.send(to, &old);
                }
            }
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65536];
        let mut pfds: Vec<libc::pollfd> = self
            .fds
            .iter()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        while !stop.load(Ordering::Relaxed) {
            self.flush_stale();
            let wait = if self.held.iter().any(Option::is_some) {
                5
            } else {
                100
            };
            // SAFETY: poll over valid fds we own.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as u64, wait) };
            if n <= 0 {
                continue;
            }
            for i in 0..pfds.len() {
                if pfds[i].revents & libc::POLLIN == 0 {
                    continue;
                }
                // SAFETY: zeroed sockaddr_ll is valid; recvfrom into our buffer.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                // SAFETY: receive into our buffer with a correctly sized address.
                let got = unsafe {
                    libc::recvfrom(
                        pfds[i].fd,
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        libc::MSG_DONTWAIT,
                        &mut from as *mut _ as *mut libc::sockaddr,
                        &mut len,
                    )
                };
                if got <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
                    // Our own transmissions on this port come back as outgoing.
                    continue;
                }
                // Held while this frame is delivered (a few non-blocking
                // sends): cheaper than cloning the table per frame, and a
                // fault change waits at most one frame.
                let faults = Arc::clone(&self.faults);
                let table = faults.lock().unwrap_or_else(|p| p.into_inner());
                for j in 0..pfds.len() {
                    if j != i {
                        self.deliver(j, &buf[..got as usize], table.path(i, j));
                    }
                }
            }
        }
    }
}

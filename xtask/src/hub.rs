//! A lossy userspace hub for the stress test. This kernel has no
//! `sch_netem` (and no tc actions), so random loss is made here: the switch
//! ports leave the bridge and a thread in the switch namespace forwards
//! frames between them through AF_PACKET sockets, dropping each with a
//! fixed probability. Everything is restored on stop and on drop.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use wasmbeat_lab::Lab;

/// A running hub between the lab's switch ports.
pub struct LossyHub {
    switch: String,
    nodes: Vec<String>,
    ports: usize,
    stop: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
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

impl LossyHub {
    /// Take the lab's switch ports off the bridge and forward between them
    /// in userspace, dropping each frame with probability `loss`.
    pub fn start(lab: &Lab, loss: f64) -> Result<LossyHub> {
        let switch = lab.switch.name.clone();
        let nodes: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
        let ports = nodes.len();
        let mut hub = LossyHub {
            switch: switch.clone(),
            nodes,
            ports,
            stop: Arc::new(AtomicBool::new(false)),
            forwarded: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            thread: None,
        };
        for ns in &hub.nodes {
            tx_checksum(ns, false)?;
        }
        // Open the sockets before leaving the bridge so no frame is lost
        // to the switch-over itself beyond a few in flight.
        let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
        let (stop, fwd, drp) = (hub.stop.clone(), hub.forwarded.clone(), hub.dropped.clone());
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
            forward(&fds, loss, &stop, &fwd, &drp);
        }));
        rx.recv().context("hub thread died")??;
        for i in 0..ports {
            ip(&["-n", &switch, "link", "set", &format!("p{i}"), "nomaster"])?;
        }
        Ok(hub)
    }

    /// Stop forwarding, put the ports back on the bridge; returns
    /// (frames forwarded, frames dropped).
    pub fn stop(mut self) -> (u64, u64) {
        self.restore();
        (
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
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

impl Drop for LossyHub {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.restore();
        }
    }
}

fn forward(fds: &[OwnedFd], loss: f64, stop: &AtomicBool, fwd: &AtomicU64, drp: &AtomicU64) {
    // xorshift64*, seeded from the clock: no dependency for one coin flip.
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
        | 1;
    let threshold = (loss.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut buf = vec![0u8; 65536];
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: poll over valid fds we own.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as u64, 100) };
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
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            if state.wrapping_mul(0x2545_F491_4F6C_DD1D) < threshold {
                drp.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            fwd.fetch_add(1, Ordering::Relaxed);
            for (j, p) in pfds.iter().enumerate() {
                if j != i {
                    // SAFETY: send from our buffer on a bound packet socket.
                    unsafe {
                        libc::send(p.fd, buf.as_ptr() as *const libc::c_void, got as usize, 0)
                    };
                }
            }
        }
    }
}

//! The serial medium (spec §5.1): raw 8N1 with CRTSCTS, CLOCAL, ISTRIP and
//! IGNCR; classic text messages only, read by skipping to a `>>>` line and
//! collecting up to `<<<`; written in 512-byte fragments paced to the line
//! speed, with a 500 ms write timeout and a flush on error.

use super::{Inbound, MediumErrors, TransportError};
use crate::wire::codec::MAXMSG;
use nix::sys::termios::{self, BaudRate, ControlFlags, InputFlags, SetArg};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Fragment size heartbeat writes to a serial line.
pub const FRAGMENT: usize = 512;
/// Write timeout per fragment.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        _ => return None,
    })
}

/// The outgoing queue of a serial medium and its reader/writer tasks.
pub type SerialHandles = (mpsc::Sender<Arc<[u8]>>, Vec<tokio::task::JoinHandle<()>>);

/// Open a tty and configure it as heartbeat does (raw 8N1, CRTSCTS,
/// CLOCAL, ISTRIP, IGNCR) at `baud`.
pub fn open_tty(device: &Path, baud: u32) -> Result<OwnedFd, TransportError> {
    let err = |why: String| TransportError::Serial {
        device: device.display().to_string(),
        why,
    };
    let speed =
        baud_rate(baud).ok_or_else(|| err(format!("unsupported baud {baud} (9600..460800)")))?;
    let fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(device)
        .map_err(|e| err(format!("open: {e}")))?
        .into();
    let mut t = termios::tcgetattr(&fd).map_err(|e| err(format!("tcgetattr: {e} (not a tty?)")))?;
    termios::cfmakeraw(&mut t);
    t.control_flags |=
        ControlFlags::CS8 | ControlFlags::CREAD | ControlFlags::CLOCAL | ControlFlags::CRTSCTS;
    t.control_flags &= !(ControlFlags::PARENB | ControlFlags::CSTOPB);
    // 7-bit clean and CR-blind like heartbeat: the classic form is ASCII.
    t.input_flags |= InputFlags::ISTRIP | InputFlags::IGNCR;
    termios::cfsetspeed(&mut t, speed).map_err(|e| err(format!("cfsetspeed: {e}")))?;
    termios::tcsetattr(&fd, SetArg::TCSANOW, &t).map_err(|e| err(format!("tcsetattr: {e}")))?;
    Ok(fd)
}

/// Open a serial medium: a reader task feeding `tx` and a writer task
/// draining the returned queue.
pub fn open(
    device: &Path,
    baud: u32,
    link: usize,
    tx: mpsc::Sender<Inbound>,
    errors: Arc<MediumErrors>,
) -> Result<SerialHandles, TransportError> {
    let fd = open_tty(device, baud)?;
    // SAFETY: the fd is an OwnedFd we just opened; nothing else closes or
    // re-registers it while the AsyncFd owns it.
    let afd = Arc::new(
        unsafe { AsyncFd::register(fd) }.map_err(|e| TransportError::Serial {
            device: device.display().to_string(),
            why: format!("register with tokio: {e}"),
        })?,
    );
    let (qtx, qrx) = mpsc::channel::<Arc<[u8]>>(64);
    let r = tokio::spawn(read_loop(afd.clone(), link, tx, Arc::clone(&errors)));
    let w = tokio::spawn(write_loop(afd, baud, qrx, errors));
    Ok((qtx, vec![r, w]))
}

/// Splits a serial byte stream into classic messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Feed bytes; returns every complete `>>>\n ... <<<\n` message.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            // Skip line noise, NULs and partial messages up to a start line.
            match find(&self.buf, b">>>\n") {
                Some(s) if s == 0 || self.buf[s - 1] == b'\n' || self.buf[s - 1] == 0 => {
                    self.buf.drain(..s);
                }
                Some(s) => {
                    self.buf.drain(..s + 1);
                    continue;
                }
                None => {
                    // Keep a possible partial ">>>" tail only.
                    let keep = self.buf.len().min(3);
                    self.buf.drain(..self.buf.len() - keep);
                    return out;
                }
            }
            match find(&self.buf[3..], b"\n<<<\n") {
                Some(e) => {
                    let end = 3 + e + 5;
                    out.push(self.buf[..end].to_vec());
                    self.buf.drain(..end);
                }
                None => {
                    if self.buf.len() > MAXMSG {
                        // Oversized or unterminated: resynchronise on the next start.
                        self.buf.drain(..1);
                        continue;
                    }
                    return out;
                }
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

async fn read_loop(
    fd: Arc<AsyncFd<OwnedFd>>,
    link: usize,
    tx: mpsc::Sender<Inbound>,
    errors: Arc<MediumErrors>,
) {
    let mut framer = Framer::default();
    let mut buf = [0u8; 4096];
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                errors.on_receive_error(&e);
                tracing::error!(link = %errors.label(), error = %e, "serial poll error: no longer reading this medium");
                return;
            }
        };
        match guard.try_io(|inner| {
            nix::unistd::read(inner.get_ref().as_raw_fd(), &mut buf).map_err(std::io::Error::from)
        }) {
            Ok(Ok(0)) => {
                // Hang-up (peer side of a pty closed): retry calmly.
                guard.clear_ready();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Ok(n)) => {
                for frame in framer.push(&buf[..n]) {
                    if tx
                        .send(Inbound {
                            link,
                            data: frame,
                            from: None,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Ok(Err(e)) => {
                errors.on_receive_error(&e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_would_block) => {}
        }
    }
}

async fn write_all(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|inner| {
            nix::unistd::write(inner.get_ref().as_fd(), data).map_err(std::io::Error::from)
        }) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

async fn write_loop(
    fd: Arc<AsyncFd<OwnedFd>>,
    baud: u32,
    mut rx: mpsc::Receiver<Arc<[u8]>>,
    errors: Arc<MediumErrors>,
) {
    // Time the line needs for one fragment: 512 / (baud / 8) seconds.
    let pause = Duration::from_micros(FRAGMENT as u64 * 8 * 1_000_000 / baud.max(1) as u64);
    while let Some(msg) = rx.recv().await {
        for (i, chunk) in msg.chunks(FRAGMENT).enumerate() {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            let r = tokio::time::timeout(WRITE_TIMEOUT, write_all(&fd, chunk)).await;
            let failed = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("write timed out".to_string()),
            };
            if let Some(why) = failed {
                // The rest of the message is flushed: one error per message.
                errors.on_send_error(&why, "message");
                let _ = termios::tcflush(fd.get_ref(), termios::FlushArg::TCOFLUSH);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_resynchronises() {
        let mut f = Framer::default();
        assert!(f.push(b"noise\x00>>>\nt=a\n").is_empty());
        let got = f.push(b"<<<\n\x00junk>>>\nt=b\n<<<\n>>>\nt=c\n<<");
        assert_eq!(got, vec![b">>>\nt=a\n<<<\n".to_vec()]);
        // ">>>" inside junk without a preceding newline does not start a frame.
        let got = f.push(b"<\n");
        assert_eq!(got, vec![b">>>\nt=c\n<<<\n".to_vec()]);
        let mut f = Framer::default();
        let got = f.push(b">>>\nt=a\n<<<\n\x00>>>\nt=b\n<<<\n");
        assert_eq!(got.len(), 2);
    }
}

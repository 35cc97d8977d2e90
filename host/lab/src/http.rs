//! A tiny HTTP responder (answers every request with a fixed body, e.g. the
//! node's name) and a one-shot HTTP GET with a timeout: enough for the demo
//! and the benchmarks to see which node serves the VIP, with no dependency.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Threads answering at once: a client probing 256 VIPs at the same time
/// waits for one answer after another on a single thread, and the bench
/// would measure this responder's queue instead of the failover.
const WORKERS: usize = 4;

/// Serve `body` to every connection on `listen` until the process is killed.
/// Listen on the wildcard address to answer on a VIP added later.
pub fn serve(listen: SocketAddr, body: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let response = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    );
    let answer = |listener: TcpListener| {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 1024];
            // One read is enough for a GET from our own client; we never parse it.
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    };
    std::thread::scope(|s| -> std::io::Result<()> {
        for _ in 1..WORKERS {
            let l = listener.try_clone()?;
            s.spawn(move || answer(l));
        }
        answer(listener);
        Ok(())
    })
}

/// GET `/` from `addr`; the response body, or None on any failure within
/// `timeout` (connect and read each bounded).
pub fn get_body(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_answers_with_its_body() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        std::thread::spawn(move || serve(addr, "node7"));
        let body = crate::wait_for(Duration::from_secs(2), Duration::from_millis(10), || {
            get_body(addr, Duration::from_millis(200))
        });
        assert_eq!(body.as_deref(), Some("node7"));
    }
}

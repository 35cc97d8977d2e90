//! A simulated network power switch for the fencing labs: it speaks the
//! REST protocol of wasmbeat's built-in `http-switch` fence agent (and of
//! the heartbeat external plugin [`crate::heartbeat::HTTP_SWITCH_PLUGIN`]),
//! and on `off`/`reset` runs the caller's [`Outlet`] (in the labs: cut the
//! node's links, then kill its daemon by the recorded PID) *before* it
//! answers, as a real switch answers once the power is gone. Every request
//! is logged, so a test can count who asked to fence whom.
//!
//! Protocol (below the base path, e.g. `/pdu`):
//! `GET nodes` (names, one per line), `GET nodes/NAME` (`on`/`off`),
//! `POST nodes/NAME/on|off|reset`; 404 for an unknown node, 401 without
//! the token when one is set.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an outlet is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Power on.
    On,
    /// Power off.
    Off,
}

/// One node's outlet: the lab's idea of cutting or restoring its power.
pub type Outlet = Box<dyn Fn(Power) -> Result<(), String> + Send + Sync>;

/// One request the switch served.
#[derive(Clone, Debug)]
pub struct SwitchRequest {
    /// When it arrived.
    pub at: Instant,
    /// When the switch answered (after the outlet acted).
    pub answered: Instant,
    /// The client's address.
    pub from: SocketAddr,
    /// `GET` / `POST` / ...
    pub method: String,
    /// The path below the base (`nodes/node1/reset`).
    pub path: String,
    /// The status code sent.
    pub status: u16,
}

struct Port {
    on: bool,
    outlet: Outlet,
}

/// The switch: serves on its own thread until the process ends; the
/// listener decides the namespace (bind it inside one with `Netns::within`).
#[derive(Clone)]
pub struct PowerSwitch {
    log: Arc<Mutex<Vec<SwitchRequest>>>,
}

impl PowerSwitch {
    /// Serve `base` (e.g. `/pdu`) on `listener` with these outlets by node
    /// name; with `token`, requests must carry `Authorization: Bearer TOKEN`.
    pub fn serve(
        listener: TcpListener,
        base: &str,
        outlets: BTreeMap<String, Outlet>,
        token: Option<String>,
    ) -> PowerSwitch {
        let log = Arc::new(Mutex::new(Vec::new()));
        let switch = PowerSwitch { log: log.clone() };
        let base = format!("{}/", base.trim_end_matches('/'));
        let mut ports: BTreeMap<String, Port> = outlets
            .into_iter()
            .map(|(n, outlet)| (n, Port { on: true, outlet }))
            .collect();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve_one(stream, &base, &mut ports, token.as_deref(), &log);
            }
        });
        switch
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SwitchRequest> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The power requests (`POST .../on|off|reset`) so far.
    pub fn power_requests(&self) -> Vec<SwitchRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }
}

fn serve_one(
    mut stream: TcpStream,
    base: &str,
    ports: &mut BTreeMap<String, Port>,
    token: Option<&str>,
    log: &Mutex<Vec<SwitchRequest>>,
) -> std::io::Result<()> {
    let at = Instant::now();
    let from = stream.peer_addr()?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let (method, path, authorized) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let auth = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                let authorized =
                    token.is_none_or(|t| auth.as_deref() == Some(&format!("Bearer {t}")));
                break (
                    req.method.unwrap_or_default().to_string(),
                    req.path.unwrap_or_default().to_string(),
                    authorized,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => continue,
            _ => return respond(&mut stream, 400, "bad request"),
        }
    };
    let rel = path.strip_prefix(base).unwrap_or("").to_string();
    let (status, body) = if !authorized {
        (401, "token required".to_string())
    } else {
        route(&method, &rel, ports)
    };
    respond(&mut stream, status, &body)?;
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(SwitchRequest {
            at,
            answered: Instant::now(),
            from,
            method,
            path: rel,
            status,
        });
    Ok(())
}

fn route(method: &str, rel: &str, ports: &mut BTreeMap<String, Port>) -> (u16, String) {
    let parts: Vec<&str> = rel.split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["nodes"]) => (200, ports.keys().map(|n| format!("{n}\n")).collect()),
        ("GET", ["nodes", node]) => match ports.get(*node) {
            Some(p) => (200, if p.on { "on" } else { "off" }.to_string()),
            None => (404, format!("no outlet for {node}")),
        },
        ("POST", ["nodes", node, action]) => {
            let Some(p) = ports.get_mut(*node) else {
                return (404, format!("no outlet for {node}"));
            };
            // A reset leaves the lab's node off: nothing reboots it.
            let power = match *action {
                "on" => Power::On,
                "off" | "reset" => Power::Off,
                _ => return (400, format!("unknown action {action}")),
            };
            match (p.outlet)(power) {
                Ok(()) => {
                    p.on = power == Power::On;
                    (200, "done".to_string())
                }
                Err(e) => (500, e),
            }
        }
        _ => (404, format!("no route {method} {rel}")),
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn call(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_switch_runs_the_outlet_before_it_answers_and_logs_every_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let offs = Arc::new(AtomicUsize::new(0));
        let o = offs.clone();
        let outlet: Outlet = Box::new(move |p| {
            if p == Power::Off {
                o.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
        let sw = PowerSwitch::serve(
            listener,
            "/pdu",
            BTreeMap::from([("node1".to_string(), outlet)]),
            Some("s3cret".into()),
        );
        let h = "Authorization: Bearer s3cret\r\n";
        assert!(call(addr, &format!("GET /pdu/nodes HTTP/1.1\r\n{h}\r\n")).ends_with("node1\n"));
        assert!(
            call(addr, "POST /pdu/nodes/node1/reset HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 401")
        );
        assert_eq!(
            offs.load(Ordering::SeqCst),
            0,
            "no power change without the token"
        );
        let r = call(
            addr,
            &format!("POST /pdu/nodes/node1/reset HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert_eq!(offs.load(Ordering::SeqCst), 1);
        assert!(call(addr, &format!("GET /pdu/nodes/node1 HTTP/1.1\r\n{h}\r\n")).ends_with("off"));
        assert!(call(
            addr,
            &format!("POST /pdu/nodes/node9/off HTTP/1.1\r\n{h}\r\n")
        )
        .starts_with("HTTP/1.1 404"));
        let log = sw.requests();
        assert_eq!(log.len(), 5, "{log:?}");
        assert_eq!(sw.power_requests().len(), 3);
    }
}

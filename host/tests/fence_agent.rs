//! Fence devices end to end: the built-in http-switch agent against a
//! REST power switch served here on 127.0.0.1 (which records every
//! request), a hostile fence agent that reaches past its grant, an
//! unreachable and a silent switch, meatware waiting for the operator, and
//! `wasmbeat fence test`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use wasmbeat::config::hacf::HaCf;
use wasmbeat::fence::{FenceAction, FenceError, Fencing, PowerState};
use wasmbeat::grant::Policy;
use wasmbeat::runtime::{Runtime, RuntimeConfig};

fn agent_path(file: &str) -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join(file)
}

/// One request as the switch saw it: `METHOD /path` and its bearer token.
type Seen = (String, Option<String>);

/// The lab's power switch: node1 and node2 (on), node3 whose relay is
/// stuck (actions answer 500), `/pdu/hang` never answered.
#[derive(Clone, Default)]
struct Switch {
    seen: Arc<Mutex<Vec<Seen>>>,
    power: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Switch {
    fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn tokens(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }

    fn is_on(&self, node: &str) -> bool {
        self.power
            .lock()
            .unwrap()
            .iter()
            .any(|(n, on)| n == node && *on)
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let line = format!("{} {}", req.method(), req.uri());
        let token = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        self.seen.lock().unwrap().push((line, token));
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let _ = req.into_body().collect().await;
        let reply = |code: u16, body: &str| {
            Response::builder()
                .status(code)
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["pdu", "hang"]) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                reply(200, "late")
            }
            ("GET", ["pdu", "nodes"]) => reply(200, "node1\nnode2\nnode3\n"),
            ("GET", ["big", "nodes"]) => reply(200, &"node1\n".repeat(50_000)),
            ("GET", ["pdu", "nodes", n]) => {
                match self.power.lock().unwrap().iter().find(|(x, _)| x == n) {
                    Some((_, on)) => reply(200, if *on { "on" } else { "off" }),
                    None => reply(404, "no such node"),
                }
            }
            ("POST", ["pdu", "nodes", "node3", _]) => reply(500, "relay stuck"),
            ("POST", ["pdu", "nodes", n, action]) => {
                let mut p = self.power.lock().unwrap();
                match p.iter_mut().find(|(x, _)| x == n) {
                    Some((_, on)) => {
                        *on = matches!(*action, "on" | "reset");
                        reply(200, "ok")
                    }
                    None => reply(404, "no such node"),
                }
            }
            _ => reply(404, "no such thing"),
        }
    }
}

/// Serve `switch` on `listener` until the test ends.
fn serve(listener: TcpListener, switch: Switch) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let s = switch.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, Infallible>(s.answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

/// A listener that only counts connections (where a request must never go).
fn sentinel(listener: TcpListener) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&n);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    n
}

async fn start_switch() -> (Switch, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = Switch::default();
    *s.power.lock().unwrap() = vec![("node1".into(), true), ("node2".into(), true)];
    serve(l, s.clone());
    (s, addr)
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn ha(lines: &str) -> HaCf {
    let (c, d) = HaCf::parse(&format!(
        "node node1 node2\nbcast eth0\nauto_failback on\n{lines}"
    ));
    assert!(!d.iter().any(|d| d.is_error()), "{d:?}");
    c
}

fn fencing(lines: &str, policy: &str, dir: &Path) -> Fencing {
    let (policy, d) = Policy::parse(policy);
    assert!(d.is_empty(), "{d:?}");
    Fencing::from_config(&ha(lines), &policy, "node1", dir, &runtime()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_switch_lists_reads_and_powers_nodes_and_the_switch_saw_exactly_that() {
    let (switch, addr) = start_switch().await;
    let f = fencing(
        &format!("stonith_host * http-switch base=http://{addr}/pdu token=t0ken\n"),
        "",
        Path::new("/nonexistent"),
    );
    assert!(f.is_configured());
    let d = f.describe();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].starts_with("ha.cf:4 stonith_host * http-switch [built-in]"),
        "{d:?}"
    );
    assert!(
        d[0].contains("token=(hidden)") && !d[0].contains("t0ken"),
        "{d:?}"
    );
    f.validate(Duration::from_secs(5)).await.unwrap();
    assert!(switch.seen().is_empty(), "validate sends nothing");

    let dl = Duration::from_secs(10);
    let l = f.fence("", FenceAction::List, dl).await.unwrap();
    assert_eq!(l.nodes, ["node1", "node2", "node3"]);
    let s = f.fence("node1", FenceAction::Status, dl).await.unwrap();
    assert_eq!(s.power, Some(PowerState::On));
    assert!(s.device.contains("ha.cf:4"), "{s:?}");
    f.fence("node2", FenceAction::Off, dl).await.unwrap();
    assert!(!switch.is_on("node2"));
    let r = f.fence("node1", FenceAction::Reset, dl).await.unwrap();
    assert_eq!(r.action, FenceAction::Reset);
    assert!(switch.is_on("node1"));

    // A node the device does not list is not fenced with it.
    let e = f.fence("node9", FenceAction::Off, dl).await.unwrap_err();
    assert!(matches!(&e, FenceError::NoDevice { .. }), "{e}");
    assert!(e.to_string().contains("does not list node9"), "{e}");
    // A failing switch: the error carries its words and the device.
    let e = f.fence("node3", FenceAction::Off, dl).await.unwrap_err();
    assert!(matches!(&e, FenceError::Failed { .. }), "{e}");
    assert!(
        e.to_string().contains("HTTP 500: relay stuck") && e.to_string().contains("ha.cf:4"),
        "{e}"
    );

    assert_eq!(
        switch.seen(),
        [
            "GET /pdu/nodes",
            "GET /pdu/nodes",
            "GET /pdu/nodes/node1",
            "GET /pdu/nodes",
            "POST /pdu/nodes/node2/off",
            "GET /pdu/nodes",
            "POST /pdu/nodes/node1/reset",
            "GET /pdu/nodes",
            "GET /pdu/nodes",
            "POST /pdu/nodes/node3/off",
        ]
    );
    assert!(
        switch
            .tokens()
            .iter()
            .all(|t| t.as_deref() == Some("Bearer t0ken")),
        "{:?}",
        switch.tokens()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_fence_agent_reaches_nothing_outside_its_grant() {
    // The switch on port P, sentinels on P+1 and on 127.0.0.2:P: where the
    // thief aims and nothing may arrive.
    let (switch, addr, next_port, other_host) = loop {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let Ok(n) = TcpListener::bind(("127.0.0.1", addr.port() + 1)).await else {
            continue;
        };
        let Ok(o) = TcpListener::bind(("127.0.0.2", addr.port())).await else {
            continue;
        };
        let s = Switch::default();
        serve(l, s.clone());
        break (s, addr, sentinel(n), sentinel(o));
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("powered");
    let thief = agent_path("hostile_fence_thief.wasm");
    let f = fencing(
        &format!(
            "stonith_host * {} base=http://{addr}/pdu\n",
            thief.display()
        ),
        &format!(
            "[fence.hostile_fence_thief]\nhttp = [\"http://{addr}/pdu\"]\ncommands.power = [\"/usr/bin/touch\", \"{}\"]\n",
            marker.display()
        ),
        dir.path(),
    );
    // Positive control: inside the grant the request goes out.
    f.fence("ok", FenceAction::Off, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(switch.seen(), ["POST /pdu/nodes/ok/off"]);

    for (attack, says) in [
        ("port", "outside the HTTP grant"),
        ("host", "outside the HTTP grant"),
        ("path", "outside the HTTP grant"),
        ("sibling", "outside the HTTP grant"),
        ("dotdot", "\"..\" segment"),
        ("encoded", "\"..\" segment"),
        ("slash", "encodes '/'"),
        ("userinfo", "user name in the URL"),
        ("oversized", "at most 65536 are sent"),
        ("header", "the host sets it"),
    ] {
        let e = f
            .fence(attack, FenceAction::Off, Duration::from_secs(5))
            .await
            .unwrap_err();
        let t = e.to_string();
        assert!(t.contains("denied: ") && t.contains(says), "{attack}: {t}");
        if says.contains("grant") {
            assert!(
                t.contains("[fence.hostile_fence_thief] http = "),
                "{attack}: names the key: {t}"
            );
        }
    }
    // A request the switch never answers, asked with the longest timeout
    // there is, and a spinning agent: both end at the deadline.
    for attack in ["hang", "loop"] {
        let t0 = Instant::now();
        let e = f
            .fence(attack, FenceAction::Off, Duration::from_millis(1500))
            .await
            .unwrap_err();
        assert!(matches!(e, FenceError::Timeout { .. }), "{attack}: {e}");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{attack}: {:?}",
            t0.elapsed()
        );
    }
    assert_eq!(
        switch.seen(),
        ["POST /pdu/nodes/ok/off", "GET /pdu/hang"],
        "no stray request"
    );
    // Vendor commands: the granted one runs (its command line is the
    // grant's), an ungranted one is denied.
    assert!(!marker.exists());
    f.fence("command", FenceAction::Off, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(marker.exists(), "the granted command ran");
    let e = f
        .fence("shell", FenceAction::Off, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("denied: "), "{e}");
    assert!(
        e.to_string()
            .contains("add commands.shell = [\"/absolute/program\", \"arg\", ...] to [fence.hostile_fence_thief]"),
        "{e}"
    );
    // Hammering the switch inside the grant is cut off per operation.
    let e = f
        .fence("flood", FenceAction::Off, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("more than 64 HTTP requests in one operation"),
        "{e}"
    );
    assert_eq!(switch.seen().len(), 2 + 64);
    assert_eq!(
        next_port.load(Ordering::SeqCst),
        0,
        "nothing connected to the next port"
    );
    assert_eq!(
        other_host.load(Ordering::SeqCst),
        0,
        "nothing connected to 127.0.0.2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_switch_fails_clearly_within_the_deadline() {
    // Nothing listens: refused at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = fencing(
        &format!("stonith_host * http-switch base=http://{closed}/pdu\n"),
        "",
        Path::new("/nonexistent"),
    );
    let t0 = Instant::now();
    let e = f
        .fence("node2", FenceAction::Reset, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let t = e.to_string();
    assert!(
        t.contains("cannot connect") && t.contains(&closed.to_string()),
        "{t}"
    );

    // Accepts and never answers: the deadline ends it.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = l.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    let f = fencing(
        &format!("stonith_host * http-switch base=http://{silent}/pdu timeout=60\n"),
        "",
        Path::new("/nonexistent"),
    );
    let t0 = Instant::now();
    let e = f
        .fence("node2", FenceAction::Reset, Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::Timeout { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_on_an_ipv6_address_is_reached_by_its_address() {
    let Ok(l) = TcpListener::bind("[::1]:0").await else {
        eprintln!("SKIP: no IPv6 loopback here");
        return;
    };
    let addr = l.local_addr().unwrap();
    let switch = Switch::default();
    *switch.power.lock().unwrap() = vec![("node1".into(), true), ("node2".into(), true)];
    serve(l, switch.clone());
    // The grant spells the address one way, the URL the agent builds from
    // `base` another: they are one address.
    let port = addr.port();
    let f = fencing(
        &format!("stonith_host * http-switch base=http://[0:0::1]:{port}/pdu\n"),
        "",
        Path::new("/nonexistent"),
    );
    f.fence("node2", FenceAction::Off, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!switch.is_on("node2"));
    assert_eq!(
        switch.seen(),
        ["GET /pdu/nodes", "POST /pdu/nodes/node2/off"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_fails_the_call() {
    let (switch, addr) = start_switch().await;
    let f = fencing(
        &format!("stonith_host * http-switch base=http://{addr}/big\n"),
        "",
        Path::new("/nonexistent"),
    );
    let e = f
        .fence("node1", FenceAction::Off, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the response body is longer than 262144 bytes"),
        "{e}"
    );
    assert_eq!(switch.seen(), ["GET /big/nodes"]);
}

/// heartbeat's own devices keep working: a `stonith_host` line naming a
/// cluster-glue plugin runs it through cluster-glue's `stonith` tool (here
/// the real `null` plugin, which lists the hosts it was given and "resets"
/// them without doing anything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_glue_plugin_fences_the_nodes_it_lists_as_heartbeat_runs_it() {
    if wasmbeat::fence::cluster_glue::plugin_path("null").is_none() {
        assert!(
            std::env::var_os("WASMBEAT_REQUIRE_LAB").is_none(),
            "cluster-glue's null plugin is missing (Debian package cluster-glue)"
        );
        eprintln!("skipping: cluster-glue's null plugin is not installed");
        return;
    }
    let f = fencing(
        "stonith_host * null node2 node3\n",
        "",
        Path::new("/nonexistent"),
    );
    let d = f.describe();
    assert!(d[0].contains("cluster-glue plugin"), "{d:?}");
    let done = f
        .fence("node2", FenceAction::Reset, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(done.device.contains("stonith_host * null"), "{done:?}");
    let e = f
        .fence("node9", FenceAction::Reset, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::NoDevice { .. }), "{e}");
    assert!(e.to_string().contains("node2, node3"), "{e}");
    // A plugin that does not exist is still refused, with the fix.
    let (policy, _) = Policy::parse("");
    let e = Fencing::from_config(
        &ha("stonith_host * nosuchswitch 10.0.0.3 login pw\n"),
        &policy,
        "node1",
        Path::new("/nonexistent"),
        &runtime(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no fence agent named \"nosuchswitch\"") && e.contains("stonith -L"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meatware_waits_for_the_operator_and_gives_up_at_the_deadline() {
    let f = fencing(
        "stonith_host * meatware node2\nstonith_host node2 meatware node1\n",
        "",
        Path::new("/nonexistent"),
    );
    assert_eq!(f.describe().len(), 1, "node2's line is not this node's");
    assert!(!f.ack("node2"), "nothing is waiting yet");
    let g = f.clone();
    let w = tokio::spawn(async move {
        g.fence("node2", FenceAction::Reset, Duration::from_secs(30))
            .await
    });
    for _ in 0..100 {
        if !f.awaiting_ack().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.awaiting_ack(), ["node2"]);
    assert!(f.ack("node2"));
    let done = w.await.unwrap().unwrap();
    assert!(done.device.contains("meatware"), "{done:?}");

    let t0 = Instant::now();
    let e = f
        .fence("node2", FenceAction::Off, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("fence-ack node2"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(f.awaiting_ack().is_empty());
    let e = f
        .fence("node1", FenceAction::Off, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::NoDevice { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_test_checks_an_agent_and_acts_only_when_asked() {
    let (switch, addr) = start_switch().await;
    let cache = tempfile::tempdir().unwrap();
    let run = |extra: Vec<String>| {
        let cache = cache.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
                .args(["fence", "test", "http-switch"])
                .args(&extra)
                .arg("--config-dir")
                .arg("/nonexistent")
                .arg("--cache-dir")
                .arg(&cache)
                .output()
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8(out.stdout).unwrap(),
            )
        })
    };
    let base = format!("base=http://{addr}/pdu");
    let (code, out) = run(vec![base.clone()]).await.unwrap();
    assert_eq!(code, 0, "{out}");
    for want in [
        "PASS  meta-data",
        "PASS  validate",
        "PASS  list",
        "node1, node2, node3",
        "PASS  status",
        "node1: on",
        "SKIP  action",
        "PASSED: 6 steps",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(
        switch.seen(),
        ["GET /pdu/nodes", "GET /pdu/nodes/node1"],
        "no action unless asked"
    );

    let (code, out) = run(vec![
        base.clone(),
        "--node".into(),
        "node2".into(),
        "--action".into(),
        "off".into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("PASS  off") && out.contains("off node2: done"),
        "{out}"
    );
    assert!(!switch.is_on("node2"));

    // An action needs a named node; a parameter the agent lacks fails meta-data.
    let (code, out) = run(vec![base.clone(), "--action".into(), "reset".into()])
        .await
        .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("needs --node NODE"), "{out}");
    let (code, out) = run(vec![base.clone(), "colour=red".into()]).await.unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  meta-data") && out.contains("no parameter colour"),
        "{out}"
    );
    let (code, out) = run(vec!["http://10.9.0.254/pdu".into()]).await.unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  resolve")
            && out.contains("positional parameter(s) \"http://10.9.0.254/pdu\""),
        "{out}"
    );
    // list+status, list+status+off, list+status; nothing for the rest.
    assert_eq!(switch.seen().len(), 7, "{:?}", switch.seen());
}

#[test]
fn a_resource_agent_is_not_taken_for_a_fence_agent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("resource.d")).unwrap();
    std::fs::copy(
        agent_path("ipaddr.wasm"),
        dir.path().join("resource.d/ipaddr.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("agents.toml"),
        "[fence.ipaddr]\nhttp = [\"http://127.0.0.1:9/pdu\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["fence", "test", "ipaddr", "--no-cache", "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  load") && text.contains("world wasmbeat:agent/fence-agent"),
        "{text}"
    );
}

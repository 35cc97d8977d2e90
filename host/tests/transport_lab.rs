//! Two wasmbeat wire peers exchange authenticated heartbeats over each
//! medium (bcast, ucast, mcast in network namespaces; serial over a pty
//! pair), and bad packets are dropped and counted while the peers keep
//! running. Needs root (lab); skips otherwise.

mod support;

use serde_json::Value;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cable::Cable;
use support::{lab_available, wait_for, Lab};
use wasmbeat::config::{AuthMethod, Secret};
use wasmbeat::wire::auth::Keyring;
use wasmbeat::wire::identity::Identity;
use wasmbeat::wire::{codec, Endpoint, EndpointConfig, Message};

const SECRET: &str = "lab-secret";

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("wb-{tag}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

fn peer_cmd(node: &str, media: &[String], dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(support::lab_bin());
    c.args([
        "wire-peer",
        "--node",
        node,
        "--nodes",
        "alpha,beta",
        "--auth",
    ])
    .arg(format!("1:sha1:{SECRET}"))
    .args([
        "--keepalive-ms",
        "200",
        "--deadtime-ms",
        "1500",
        "--initdead-ms",
        "3000",
    ])
    .arg("--state-dir")
    .arg(dir.join(format!("{node}-state")))
    .arg("--view")
    .arg(dir.join(format!("{node}.json")))
    .args(extra)
    .env("RUST_LOG", "info");
    for m in media {
        c.arg("--medium").arg(m);
    }
    c
}

fn view(dir: &Path, node: &str) -> Option<Value> {
    let s = std::fs::read_to_string(dir.join(format!("{node}.json"))).ok()?;
    serde_json::from_str(&s).ok()
}

fn peer_status(dir: &Path, node: &str) -> Option<String> {
    view(dir, node)?["peers"][0]["status"]
        .as_str()
        .map(str::to_string)
}

fn drops(dir: &Path, node: &str, reason: &str) -> u64 {
    view(dir, node)
        .and_then(|v| v["drops"][reason].as_u64())
        .unwrap_or(0)
}

/// Both peers see each other `active` with the link up.
fn assert_mutually_active(dir: &Path, link: &str) {
    for (me, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let got = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
            let v = view(dir, me)?;
            let p = &v["peers"][0];
            (v["status"] == "active"
                && p["name"] == other
                && p["status"] == "active"
                && p["links"][link] == "up")
                .then_some(v)
        });
        assert!(
            got.is_some(),
            "{me} never saw {other} active on {link}: {:?}",
            view(dir, me)
        );
    }
}

fn udp_lab(tag: &str, media: impl Fn(usize) -> Vec<String>) -> (Lab, TempDir, Vec<u32>) {
    let lab = Lab::new(tag, &["10.77.5.1/24", "10.77.5.2/24", "10.77.5.3/24"]);
    let dir = TempDir::new(tag);
    let mut pids = Vec::new();
    for (i, node) in ["alpha", "beta"].iter().enumerate() {
        let cmd = peer_cmd(node, &media(i), &dir.0, &["--max-message", "8192"]);
        pids.push(lab.nodes[i].spawn(cmd));
    }
    (lab, dir, pids)
}

#[test]
fn bcast_heartbeats_bad_packets_and_peer_death() {
    if !lab_available("transport_lab::bcast") {
        return;
    }
    let (lab, dir, pids) = udp_lab("tb", |_| vec!["bcast eth0".into()]);
    assert_mutually_active(&dir.0, "eth0");

    // An attacker on the third node records a real packet from beta...
    let captured: Vec<u8> = lab.nodes[2].run_inside(|| {
        let s = UdpSocket::bind("0.0.0.0:694").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = vec![0u8; 65536];
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            // A signal (other tests' children exit meanwhile) interrupts
            // a read with SO_RCVTIMEO even under SA_RESTART (signal(7)),
            // and std does not retry it.
            let (n, from) = match s.recv_from(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.unwrap(),
            };
            if from.ip().to_string() == "10.77.5.2"
                && buf[..n].windows(9).any(|w| w == b"t=status,")
            {
                return buf[..n].to_vec();
            }
        }
        panic!("no status packet from beta (10.77.5.2) within 10 s");
    });
    std::thread::sleep(Duration::from_millis(500)); // beta moves on past that seq
    let mut tampered = captured.clone();
    let at = tampered.windows(5).position(|w| w == b"(0)t=").unwrap() + 5;
    tampered[at] ^= 0x20;
    let truncated = captured[..captured.len() - 20].to_vec();
    let oversized = vec![b'#'; 9000];
    // A well-formed message from "beta" signed with the wrong key.
    let mut cfg = EndpointConfig::new(
        "beta",
        &["alpha", "beta"],
        Keyring::single(1, AuthMethod::Sha1(Secret::new("guess"))),
    );
    cfg.flow_control = true;
    let mut forger = Endpoint::new(
        cfg,
        Identity {
            uuid: [1; 16],
            generation: u64::MAX / 2,
        },
    );
    forger.send(Message::new("status"), wasmbeat::Millis(0));
    let wrong_key = forger.poll_transmit().unwrap().netstring.to_vec();
    assert!(codec::decode(&wrong_key, &Default::default()).is_ok());
    let packets = vec![
        captured.clone(),
        tampered,
        truncated,
        oversized,
        wrong_key,
        b"hello, world".to_vec(),
    ];
    lab.nodes[2].run_inside(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for p in &packets {
            s.send_to(p, "10.77.5.1:694").unwrap();
        }
    });
    let d = &dir.0;
    let counted = wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
        let ok = drops(d, "alpha", "replay") >= 1
            && drops(d, "alpha", "auth_failed") >= 2
            && drops(d, "alpha", "truncated") >= 1
            && drops(d, "alpha", "oversized") >= 1
            && drops(d, "alpha", "malformed") >= 1;
        ok.then_some(())
    });
    assert!(
        counted.is_some(),
        "drops not counted: {:?}",
        view(d, "alpha").map(|v| v["drops"].clone())
    );
    // ... and alpha keeps running, still seeing beta active.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(peer_status(d, "alpha").as_deref(), Some("active"));
    eprintln!(
        "alpha drops after the attack: {}",
        view(d, "alpha").unwrap()["drops"]
    );

    // Stop beta once it advertises its steady deadtime (heartbeat adds 2 s
    // during the first 5 s): alpha declares it dead after that deadtime.
    let steady = wait_for(Duration::from_secs(8), Duration::from_millis(50), || {
        (view(d, "alpha")?["peers"][0]["deadtime_ms"] == 1500).then_some(())
    });
    assert!(steady.is_some(), "beta never advertised dt=1500");
    let t0 = Instant::now();
    assert!(lab.nodes[1].kill(pids[1]));
    let dead = wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        (peer_status(d, "alpha").as_deref() == Some("dead")).then_some(t0.elapsed())
    });
    let took = dead.expect("alpha never declared beta dead");
    eprintln!("beta declared dead {took:?} after kill (deadtime 1.5 s)");
    assert!(
        took >= Duration::from_millis(1000) && took <= Duration::from_millis(2500),
        "declared dead after {took:?}, deadtime 1.5 s"
    );
    // Link state is updated on the session's 50 ms tick, the peer's
    // liveness when the view is written: allow one tick between them.
    let link_dead = wait_for(
        Duration::from_millis(500),
        Duration::from_millis(50),
        || (view(d, "alpha")?["peers"][0]["links"]["eth0"] == "dead").then_some(()),
    );
    assert!(
        link_dead.is_some(),
        "eth0 still up after beta was declared dead: {:?}",
        view(d, "alpha")
    );
}

#[test]
fn bcast_on_an_address_without_brd_reaches_the_peer() {
    if !lab_available("transport_lab::bcast_without_brd") {
        return;
    }
    // `ip addr add A/N dev D` without `brd +`, as many hand-made setups
    // do: getifaddrs then reports the node's own address as broadcast.
    let lab = Lab::new("tn", &["10.77.5.1/24", "10.77.5.2/24"]);
    for (i, node) in lab.nodes.iter().enumerate() {
        node.ip(&["addr", "flush", "dev", "eth0"]);
        node.ip(&[
            "addr",
            "add",
            &format!("10.77.5.{}/24", i + 1),
            "dev",
            "eth0",
        ]);
        let shown = node.ip(&["-4", "addr", "show", "dev", "eth0"]);
        let shown = String::from_utf8_lossy(&shown.stdout).to_string();
        let inet = shown.lines().find(|l| l.contains("inet ")).unwrap_or("");
        assert!(!inet.contains("brd"), "{shown}");
    }
    let dir = TempDir::new("tn");
    let _pids: Vec<u32> = ["alpha", "beta"]
        .iter()
        .enumerate()
        .map(|(i, node)| lab.nodes[i].spawn(peer_cmd(node, &["bcast eth0".into()], &dir.0, &[])))
        .collect();
    assert_mutually_active(&dir.0, "eth0");
}

#[test]
fn ucast_heartbeats() {
    if !lab_available("transport_lab::ucast") {
        return;
    }
    let (_lab, dir, _pids) = udp_lab("tu", |i| vec![format!("ucast eth0 10.77.5.{}", 2 - i)]);
    assert_mutually_active(&dir.0, "eth0");
    assert_eq!(drops(&dir.0, "alpha", "auth_failed"), 0);
}

#[test]
fn mcast_heartbeats() {
    if !lab_available("transport_lab::mcast") {
        return;
    }
    let (_lab, dir, _pids) = udp_lab("tm", |_| vec!["mcast eth0 239.77.0.1 6940 1 0".into()]);
    assert_mutually_active(&dir.0, "eth0");
    assert_eq!(drops(&dir.0, "beta", "auth_failed"), 0);
}

/// Children killed by their recorded PID on drop (also on panic).
struct Procs(Vec<std::process::Child>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn serial_heartbeats_over_a_pty_pair() {
    // A pty needs no privileges, but keep the lab rule: root only.
    if !lab_available("transport_lab::serial") {
        return;
    }
    let cable = Cable::new();
    let dir = TempDir::new("ts");
    let mut procs = Procs(Vec::new());
    for (i, node) in ["alpha", "beta"].iter().enumerate() {
        let medium = format!("serial {} 115200", cable.slaves[i].display());
        procs
            .0
            .push(peer_cmd(node, &[medium], &dir.0, &[]).spawn().unwrap());
    }
    let link = cable.slaves[0].display().to_string();
    let v = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        let v = view(&dir.0, "alpha")?;
        (v["status"] == "active"
            && v["peers"][0]["status"] == "active"
            && v["peers"][0]["links"][&link] == "up")
            .then_some(v)
    });
    assert!(
        v.is_some(),
        "alpha never saw beta over serial: {:?}",
        view(&dir.0, "alpha")
    );
    let link_b = cable.slaves[1].display().to_string();
    let v = wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
        let v = view(&dir.0, "beta")?;
        (v["peers"][0]["status"] == "active" && v["peers"][0]["links"][&link_b] == "up")
            .then_some(v)
    });
    assert!(
        v.is_some(),
        "beta never saw alpha over serial: {:?}",
        view(&dir.0, "beta")
    );
    assert_eq!(drops(&dir.0, "alpha", "auth_failed"), 0);
    drop(procs);
}

/// Redundant media (bcast + serial): every message arrives twice and one
/// copy is suppressed as a duplicate; pulling the Ethernet plug takes only
/// that link down and the peer stays alive over serial (heartbeat's rule:
/// a node is alive while any link hears it).
#[test]
fn redundant_media_survive_a_pulled_plug() {
    if !lab_available("transport_lab::redundant") {
        return;
    }
    let cable = Cable::new();
    let lab = Lab::new("tr", &["10.77.5.1/24", "10.77.5.2/24"]);
    let dir = TempDir::new("tr");
    for (i, node) in ["alpha", "beta"].iter().enumerate() {
        let media = vec![
            "bcast eth0".to_string(),
            format!("serial {} 115200", cable.slaves[i].display()),
        ];
        lab.nodes[i].spawn(peer_cmd(node, &media, &dir.0, &[]));
    }
    let d = &dir.0;
    let serial = cable.slaves[0].display().to_string();
    let both = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        let v = view(d, "alpha")?;
        let p = &v["peers"][0];
        (p["status"] == "active" && p["links"]["eth0"] == "up" && p["links"][&serial] == "up")
            .then_some(())
    });
    assert!(
        both.is_some(),
        "both links never up: {:?}",
        view(d, "alpha")
    );
    assert!(
        drops(d, "alpha", "duplicate") > 0,
        "second copies must be suppressed"
    );

    lab.set_link(0, false);
    let one = wait_for(Duration::from_secs(8), Duration::from_millis(100), || {
        let v = view(d, "alpha")?;
        let p = &v["peers"][0];
        (p["links"]["eth0"] == "dead").then(|| v.clone())
    });
    let v = one.unwrap_or_else(|| panic!("eth0 never went dead: {:?}", view(d, "alpha")));
    assert_eq!(v["peers"][0]["links"][&serial], "up", "{v}");
    assert_eq!(
        v["peers"][0]["status"], "active",
        "peer must stay alive over serial: {v}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(peer_status(d, "alpha").as_deref(), Some("active"));

    lab.set_link(0, true);
    let back = wait_for(Duration::from_secs(8), Duration::from_millis(100), || {
        (view(d, "alpha")?["peers"][0]["links"]["eth0"] == "up").then_some(())
    });
    assert!(
        back.is_some(),
        "eth0 never came back: {:?}",
        view(d, "alpha")
    );
}

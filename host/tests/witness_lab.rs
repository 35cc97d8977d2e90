//! The tie-breaker end to end: two networks (`support::uplinks`), a
//! heartbeat link `hb0` between the two nodes only and a public LAN with a
//! router namespace (index 2) that runs `wasmbeat witness` and a client
//! (index 3). ha.cf `tiebreaker 10.88.0.254:7405` on both nodes.
//!
//! 1. node1 serves the VIP, `hb0` goes down in node1's namespace: both
//!    nodes declare the other dead and ask the witness; exactly one serves
//!    the VIP afterwards (node1: it asks first, serving), sampled every
//!    20 ms for 12 s that both never hold it; the client reaches it.
//! 2. node1 also loses its LAN port: node2 wins the lease and the client
//!    reaches the VIP on node2. node1 cannot reach the witness and keeps
//!    its (unreachable) copy; when its port returns it is refused and
//!    releases it.
//!
//! Timings (keepalive 200 ms, deadtime 2 s, lease 4 s): a dead peer is
//! seen ≤ deadtime + keepalive after the cut; the idle side asks 2 s
//! later; groups the peer ran start ≥ 3.2 s after the grant (ask delay +
//! keepalive + 1 s, the loser's time to stop). Bounds below add several
//! seconds of slack for a loaded 2-core machine.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::uplinks::{TwoNetworks, ROUTER, VIP};
use support::TempDir;

const WITNESS_PORT: u16 = 7405;

struct WitnessLab {
    net: TwoNetworks,
    dir: TempDir,
}

impl WitnessLab {
    fn new(tag: &str) -> WitnessLab {
        let net = TwoNetworks::new(tag);
        let dir = TempDir::new(tag);
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::write_node_config(
                &dir.0.join(name),
                &format!(
                    "keepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 4\nudpport 694\nbcast hb0\n\
                     auto_failback on\nnode node1\nnode node2\ntiebreaker {ROUTER}:{WITNESS_PORT}\n"
                ),
                &format!("node1 IPaddr::{VIP}/24/eth0\n"),
            );
            support::spawn_responder(&net.lab.nodes[i], "0.0.0.0:80", name);
        }
        // The witness, in the router namespace, with the cluster's authkeys.
        let mut w = std::process::Command::new("sh");
        w.args([
            "-c",
            &format!(
                "exec {} witness --listen 0.0.0.0:{WITNESS_PORT} --authkeys {} >>{} 2>&1",
                env!("CARGO_BIN_EXE_wasmbeat"),
                dir.0.join("node1/authkeys").display(),
                dir.0.join("witness.log").display()
            ),
        ]);
        net.lab.nodes[2].spawn(w);
        WitnessLab { net, dir }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("node{}.log", i + 1))
    }

    fn read(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
    }

    fn witness_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("witness.log")).unwrap_or_default()
    }

    fn start(&self, i: usize) {
        let name = format!("node{}", i + 1);
        let daemon = support::daemon_command(
            &self.dir.0.join(&name),
            &name,
            &self.dir.0.join(format!("{name}.run")),
            &self.log(i),
        );
        self.net.lab.nodes[i].spawn(daemon);
    }

    fn status(&self, i: usize) -> String {
        let name = format!("node{}", i + 1);
        support::control_cli(
            std::path::Path::new(env!("CARGO_BIN_EXE_wasmbeat")),
            &self.dir.0.join(&name),
            &self.dir.0.join(format!("{name}.run")),
            &["status"],
        )
        .1
    }

    fn logs(&self) -> String {
        format!(
            "----- node1 -----\n{}----- node2 -----\n{}----- witness -----\n{}",
            self.read(0),
            self.read(1),
            self.witness_log()
        )
    }

    fn hb_link(&self, up: bool) {
        self.net.lab.nodes[0].ip(&["link", "set", "hb0", if up { "up" } else { "down" }]);
    }

    /// Both nodes started, node1 serves the VIP, node2 settled.
    fn settled(&self) {
        self.start(0);
        self.start(1);
        self.net.vip_on(
            0,
            Duration::from_secs(30),
            true,
            "start: node1 takes its group",
            &|| self.logs(),
        );
        let heard = support::wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
            self.read(1)
                .contains("communication up: heard: node1")
                .then_some(())
        });
        assert!(heard.is_some(), "node2 not settled\n{}", self.logs());
        std::thread::sleep(Duration::from_secs(2));
    }

    /// Sample who holds the VIP every 20 ms for `d`: (samples, samples
    /// with both holding it, holder changes).
    fn sample(&self, d: Duration) -> (usize, usize, usize) {
        let end = Instant::now() + d;
        let (mut n, mut both, mut changes) = (0, 0, 0);
        let mut last = None;
        while Instant::now() < end {
            let now = (self.net.holds_vip(0), self.net.holds_vip(1));
            n += 1;
            if now.0 && now.1 {
                both += 1;
            }
            if last.is_some_and(|l| l != now) {
                changes += 1;
            }
            last = Some(now);
            std::thread::sleep(Duration::from_millis(20));
        }
        (n, both, changes)
    }

    /// How long until `text` appears in node `i`'s log (polled for `limit`).
    fn logged_within(&self, i: usize, text: &str, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        support::wait_for(limit, Duration::from_millis(20), || {
            self.read(i).contains(text).then(|| t.elapsed())
        })
    }
}

#[test]
fn heartbeat_link_cut_leaves_the_vip_on_exactly_one_node() {
    const TEST: &str = "heartbeat_link_cut_leaves_the_vip_on_exactly_one_node";
    if !support::lab_available(TEST) {
        return;
    }
    let c = WitnessLab::new("wit1");
    c.settled();

    let cut = Instant::now();
    c.hb_link(false);
    let window = Duration::from_secs(12);
    let (samples, both, changes) = c.sample(window);
    let dead1 = c.read(0).contains("node node2 declared dead");
    let dead2 = c.read(1).contains("node node1 declared dead");
    assert!(
        dead1 && dead2,
        "both nodes should have declared the other dead within {window:?} (node1: {dead1}, node2: {dead2})\n{}",
        c.logs()
    );
    println!(
        "heartbeat link cut: {samples} samples over {:.1} s, VIP on both nodes in {both}, holder changed {changes} time(s)",
        window.as_secs_f64()
    );
    assert_eq!(
        both,
        0,
        "the VIP was on both nodes in {both} of {samples} samples\n{}",
        c.logs()
    );
    let holders: Vec<usize> = (0..2).filter(|&i| c.net.holds_vip(i)).collect();
    assert_eq!(
        holders.len(),
        1,
        "holders after the cut: {holders:?}\n{}",
        c.logs()
    );
    let winner = holders[0];
    let served = c.net.served_by();
    println!(
        "after the cut node{} holds the VIP, the client is served by {served:?} ({:.1} s after the cut)",
        winner + 1,
        cut.elapsed().as_secs_f64()
    );
    assert_eq!(
        served.as_deref(),
        Some(format!("node{}", winner + 1).as_str()),
        "the client must reach the holder\n{}",
        c.logs()
    );
    // The serving side asks first: nothing moved.
    assert_eq!(
        winner,
        0,
        "node1 served and should have kept the VIP\n{}",
        c.logs()
    );
    assert_eq!(changes, 0, "the VIP moved\n{}", c.logs());
    assert!(
        c.read(0)
            .contains("tie-breaker lease against node2 granted"),
        "{}",
        c.logs()
    );
    assert!(
        c.read(1)
            .contains("tie-breaker refused the lease against node1"),
        "{}",
        c.logs()
    );
    let st1 = c.status(0);
    let st2 = c.status(1);
    println!("status node1:\n{st1}status node2:\n{st2}");
    assert!(st1.contains("tie-breaker: lease ours"), "{st1}");
    assert!(st2.contains("tie-breaker: refused"), "{st2}");

    // The link heals: the lease is given up, node1 keeps the VIP.
    c.hb_link(true);
    let given_up = c
        .logged_within(
            0,
            "tie-breaker lease against node2 given up",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("node1 kept the lease after the heal\n{}", c.logs()));
    let released = support::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        c.witness_log()
            .contains("node1 released the lease against node2")
            .then_some(())
    });
    assert!(
        released.is_some(),
        "the witness heard no release\n{}",
        c.logs()
    );
    let (_, both, changes) = c.sample(Duration::from_secs(4));
    println!(
        "heartbeat link back: lease given up {:.1} s later; then VIP on both in {both} samples, {changes} change(s)",
        given_up.as_secs_f64()
    );
    assert_eq!((both, changes), (0, 0), "{}", c.logs());
    assert!(c.net.holds_vip(0), "{}", c.logs());

    // The real service drops forged and replayed requests and counts them.
    let ring = wasmbeat::witness::keyring_from(&c.dir.0.join("node1/authkeys")).unwrap();
    let wrong = wasmbeat_core::wire::auth::Keyring::single(
        1,
        wasmbeat_core::wire::keys::AuthMethod::Sha1(wasmbeat_core::wire::keys::Secret::new(
            "guessed",
        )),
    );
    let req = wasmbeat_core::witness::Request {
        ask: wasmbeat_core::witness::Ask::Acquire,
        node: "intruder".into(),
        peer: "node1".into(),
        generation: 1,
        seq: 1,
        lease: Duration::from_secs(60),
    };
    let answers = c.net.lab.nodes[3].run_inside(|| {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let to = format!("{ROUTER}:{WITNESS_PORT}");
        let mut got = Vec::new();
        for bytes in [req.encode(&wrong), req.encode(&ring), req.encode(&ring)] {
            s.send_to(&bytes, &to).unwrap();
            let mut buf = [0u8; 2048];
            got.push(s.recv(&mut buf).is_ok());
        }
        got
    });
    let wl = c.witness_log();
    println!("forged, fresh, replayed request: answered {answers:?}");
    assert_eq!(answers, vec![false, true, false], "{wl}");
    assert!(wl.contains("dropped (authentication failed"), "{wl}");
    assert!(wl.contains("dropped (replay"), "{wl}");
}

#[test]
fn node1_losing_its_lan_port_and_the_heartbeat_link_lets_node2_win() {
    const TEST: &str = "node1_losing_its_lan_port_and_the_heartbeat_link_lets_node2_win";
    if !support::lab_available(TEST) {
        return;
    }
    let c = WitnessLab::new("wit2");
    c.settled();

    let cut = Instant::now();
    c.net.lab.set_link(0, false);
    c.hb_link(false);
    // deadtime 2 s + ask delay 2 s + grace 3.2 s + start, with slack
    let limit = Duration::from_secs(20);
    let won = support::wait_for(limit, Duration::from_millis(20), || {
        (c.net.holds_vip(1) && c.net.served_by().as_deref() == Some("node2")).then(|| cut.elapsed())
    })
    .unwrap_or_else(|| panic!("node2 did not serve the VIP within {limit:?}\n{}", c.logs()));
    println!(
        "node1 lost LAN port and heartbeat link: client served by node2 {:.1} s later (bound {:.0} s)",
        won.as_secs_f64(),
        limit.as_secs_f64()
    );
    assert!(
        won >= Duration::from_secs(4),
        "node2 took over before deadtime + delay: {won:?}"
    );
    assert!(
        c.read(1)
            .contains("tie-breaker lease against node1 granted"),
        "{}",
        c.logs()
    );
    let n1 = c.read(0);
    assert!(n1.contains("tie-breaker unreachable"), "{}", c.logs());
    println!(
        "node1 meanwhile (witness out of reach: keeps, takes nothing over): holds the VIP on its dead port: {}",
        c.net.holds_vip(0)
    );
    let st2 = c.status(1);
    println!("status node2:\n{st2}");
    assert!(st2.contains("tie-breaker: lease ours"), "{st2}");

    // node1's LAN port returns, the heartbeat link stays cut: it reaches
    // the witness, is refused and releases its copy.
    c.net.lab.set_link(0, true);
    let back = Instant::now();
    let limit = Duration::from_secs(10);
    let released = support::wait_for(limit, Duration::from_millis(20), || {
        (!c.net.holds_vip(0)).then(|| back.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "node1 kept the VIP {limit:?} after its LAN came back\n{}",
            c.logs()
        )
    });
    println!(
        "node1's LAN port back: refused by the witness, VIP released {:.1} s later",
        released.as_secs_f64()
    );
    assert!(
        c.read(0).contains("tie-breaker refused: releasing"),
        "{}",
        c.logs()
    );
    let (samples, both, _) = c.sample(Duration::from_secs(3));
    assert_eq!(
        both,
        0,
        "VIP on both in {both} of {samples} samples\n{}",
        c.logs()
    );
    assert!(c.net.holds_vip(1), "{}", c.logs());
    assert_eq!(c.net.served_by().as_deref(), Some("node2"), "{}", c.logs());
}

/// Not a lab test (no network): `check` prints the witness and warns that
/// the directive is wasmbeat-only; a name instead of an address is refused
/// with file:line.
#[test]
fn check_reports_the_tiebreaker_and_refuses_a_host_name() {
    let dir = TempDir::new("witcheck");
    let cfg = dir.0.join("node1");
    let ha = "keepalive 1\ndeadtime 5\nbcast eth0\nauto_failback on\nnode node1\nnode node2\n";
    let check = |line: &str| {
        support::write_node_config(
            &cfg,
            &format!("{ha}{line}\n"),
            "node1 IPaddr::10.0.0.1/24/eth0\n",
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
            .args(["check", "--no-grants", "--node", "node1", "--config-dir"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = check("tiebreaker 192.168.1.254:7405");
    assert!(ok, "{text}");
    assert!(text.contains("tiebreaker:    192.168.1.254:7405"), "{text}");
    assert!(
        text.contains("ha.cf:7:12: warning: tiebreaker 192.168.1.254:7405 is wasmbeat-only"),
        "{text}"
    );
    let (ok, text) = check("tiebreaker [fd00::9]:7405");
    assert!(
        ok && text.contains("tiebreaker:    [fd00::9]:7405"),
        "{text}"
    );
    let (ok, text) = check("tiebreaker witness.example:7405");
    assert!(!ok, "{text}");
    assert!(
        text.contains("ha.cf:7:12: tiebreaker \"witness.example:7405\" is not an address and port"),
        "{text}"
    );
}

//! Ping nodes and the built-in ipfail end to end: two networks, a
//! heartbeat link between the two nodes only (veth `hb0`, 10.89.0.0/24)
//! and a public LAN (bridge, 10.88.0.0/24) with a router namespace that is
//! the ping node and a client. Cutting node1's public port moves the VIP
//! to node2 while the heartbeat link stays up; restoring it brings the VIP
//! back (auto_failback on); cutting both uplinks moves nothing; a
//! flapping uplink moves the VIP at most once per deadping.
//!
//! Bounds (keepalive 200 ms, deadping 1 s): away within deadping + 2 s
//! (deadping after the last echo reply, ≤ one probe interval before the
//! cut, then ipfail's 2 × keepalive, the standby hand-shake, the stop on
//! node1 and the start on node2); home within 2 × deadping + 3 s (the
//! ping node must answer for deadping before node1 counts it, node2 then
//! waits deadping before giving the group back).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::uplinks::{TwoNetworks, ROUTER, ROUTER6, VIP};
use support::TempDir;

const DEADPING: Duration = Duration::from_secs(1);

struct Uplinks {
    net: TwoNetworks,
    dir: TempDir,
}

impl Uplinks {
    fn new(tag: &str) -> Uplinks {
        Uplinks::with(tag, DEADPING, "", false)
    }

    /// `extra` ha.cf lines (e.g. `track_link eth0`) on both nodes; `v6`:
    /// the router is the ping node over IPv6 only (`ping6`).
    fn with(tag: &str, deadping: Duration, extra: &str, v6: bool) -> Uplinks {
        let mut net = TwoNetworks::new(tag);
        let ping = if v6 {
            net = net.with_ipv6();
            format!("ping6 {ROUTER6}")
        } else {
            format!("ping {ROUTER}")
        };
        let dir = TempDir::new(tag);
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::write_node_config(
                &dir.0.join(name),
                &format!(
                    "keepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 4\ndeadping {}ms\nudpport 694\nbcast hb0\n\
                     {ping}\nrespawn hacluster /usr/libexec/heartbeat/ipfail\n\
                     auto_failback on\nnode node1\nnode node2\n{extra}",
                    deadping.as_millis()
                ),
                &format!("node1 IPaddr::{VIP}/24/eth0\n"),
            );
            support::spawn_responder(&net.lab.nodes[i], "0.0.0.0:80", name);
        }
        Uplinks { net, dir }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("node{}.log", i + 1))
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

    fn logs(&self) -> String {
        (0..2)
            .map(|i| {
                format!(
                    "----- node{} -----\n{}",
                    i + 1,
                    std::fs::read_to_string(self.log(i)).unwrap_or_default()
                )
            })
            .collect()
    }

    fn holds_vip(&self, i: usize) -> bool {
        self.net.holds_vip(i)
    }

    fn vip_on(&self, i: usize, limit: Duration, client: bool, why: &str) -> Duration {
        self.net.vip_on(i, limit, client, why, &|| self.logs())
    }

    fn uplink(&self, i: usize, up: bool) {
        self.net.uplink(i, up);
    }

    fn holder_changes(&self, d: Duration) -> usize {
        self.net.holder_changes(d)
    }
}

#[test]
fn uplink_loss_moves_the_vip_and_both_lost_moves_nothing_and_flapping_is_damped() {
    if !support::lab_available(
        "uplink_loss_moves_the_vip_and_both_lost_moves_nothing_and_flapping_is_damped",
    ) {
        return;
    }
    let c = Uplinks::new("ping");
    c.start(0);
    c.start(1);
    c.vip_on(
        0,
        Duration::from_secs(30),
        true,
        "start: node1 takes its group",
    );
    let heard = support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let l = std::fs::read_to_string(c.log(1)).ok()?;
        (l.contains("communication up: heard: node1") && l.contains("ping node 10.88.0.254 up"))
            .then_some(())
    });
    assert!(heard.is_some(), "node2 not settled\n{}", c.logs());
    std::thread::sleep(Duration::from_secs(2));

    // 1. node1's public port cut: the VIP moves to node2, heartbeat link up.
    c.uplink(0, false);
    let away = c.vip_on(
        1,
        DEADPING + Duration::from_secs(2),
        true,
        "node1 uplink cut",
    );
    println!(
        "uplink cut on node1: client served by node2 {:.0} ms later (deadping {} ms, bound deadping + 2000 ms)",
        away.as_secs_f64() * 1000.0,
        DEADPING.as_millis()
    );
    let n1 = std::fs::read_to_string(c.log(0)).unwrap_or_default();
    assert!(
        n1.contains("ping node 10.88.0.254 dead: no echo reply for"),
        "{}",
        c.logs()
    );
    assert!(
        !n1.contains("node2 declared dead") && !n1.contains("node2 is dead"),
        "the heartbeat link must stay up\n{}",
        c.logs()
    );

    // 2. Restored: the VIP comes home under auto_failback on.
    c.uplink(0, true);
    let home = c.vip_on(
        0,
        DEADPING * 2 + Duration::from_secs(3),
        true,
        "node1 uplink restored",
    );
    println!(
        "uplink restored on node1: client served by node1 {:.0} ms later (bound 2 x deadping + 3000 ms)",
        home.as_secs_f64() * 1000.0
    );

    // 3. Both uplinks cut: equal counts, nothing moves.
    std::thread::sleep(Duration::from_secs(2));
    c.uplink(0, false);
    c.uplink(1, false);
    let moves = c.holder_changes(DEADPING * 6);
    assert_eq!(moves, 0, "both uplinks cut moved the VIP\n{}", c.logs());
    assert!(c.holds_vip(0) && !c.holds_vip(1), "{}", c.logs());
    println!(
        "both uplinks cut: VIP stayed on node1 for {:.1} s",
        (DEADPING * 6).as_secs_f64()
    );
    c.uplink(0, true);
    c.uplink(1, true);
    std::thread::sleep(DEADPING * 4);
    c.vip_on(0, Duration::from_secs(5), true, "both uplinks back");

    // 4. node1's uplink flaps: down 1.5 s (> deadping), up 0.6 s (< deadping).
    let t = Instant::now();
    let mut changes = 0;
    for _ in 0..6 {
        c.uplink(0, false);
        changes += c.holder_changes(Duration::from_millis(1500));
        c.uplink(0, true);
        changes += c.holder_changes(Duration::from_millis(600));
    }
    let flapped = t.elapsed();
    println!(
        "uplink flapping for {:.1} s (down 1.5 s / up 0.6 s): VIP changed hands {changes} time(s); rule: at most once per deadping, a returned ping node counts after deadping",
        flapped.as_secs_f64()
    );
    assert!(
        changes <= 1,
        "VIP flapped {changes} times in {flapped:?}\n{}",
        c.logs()
    );
    assert!(
        c.holds_vip(1),
        "the VIP went to node2 once and stayed\n{}",
        c.logs()
    );
    let back = c.vip_on(
        0,
        DEADPING * 2 + Duration::from_secs(3),
        true,
        "uplink stable again",
    );
    println!(
        "uplink stable again: VIP home {:.0} ms later",
        back.as_secs_f64() * 1000.0
    );
}

/// track_link: node1's eth0 loses carrier (its veth peer end at the switch
/// is set down) and the VIP moves without waiting for deadping (5 s here,
/// so a ping-based move could not come before 5 s): bound 3 s (ipfail's
/// 2 x keepalive, the standby hand-shake, the stop and the start). The
/// carrier back counts after deadping, node2 then waits deadping before
/// giving the group back: home within 2 x deadping + 4 s.
#[test]
fn carrier_loss_on_a_tracked_link_moves_the_vip_before_deadping() {
    const TEST: &str = "carrier_loss_on_a_tracked_link_moves_the_vip_before_deadping";
    if !support::lab_available(TEST) {
        return;
    }
    let deadping = Duration::from_secs(5);
    let c = Uplinks::with("trk", deadping, "track_link eth0\n", false);
    c.start(0);
    c.start(1);
    c.vip_on(
        0,
        Duration::from_secs(30),
        true,
        "start: node1 takes its group",
    );
    let ready = support::wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
        let l = std::fs::read_to_string(c.log(1)).ok()?;
        (l.contains("communication up: heard: node1") && l.contains("ping node 10.88.0.254 up"))
            .then_some(())
    });
    assert!(ready.is_some(), "node2 not settled\n{}", c.logs());
    std::thread::sleep(Duration::from_secs(2));

    c.uplink(0, false);
    let away = c.vip_on(1, Duration::from_secs(3), true, "node1 eth0 lost carrier");
    println!(
        "carrier lost on node1 eth0 (track_link): client served by node2 {:.0} ms later (deadping {} ms, bound 3000 ms)",
        away.as_secs_f64() * 1000.0,
        deadping.as_millis()
    );
    let n1 = std::fs::read_to_string(c.log(0)).unwrap_or_default();
    assert!(
        n1.contains("tracked link eth0 lost carrier"),
        "{}",
        c.logs()
    );

    c.uplink(0, true);
    let home = c.vip_on(
        0,
        deadping * 2 + Duration::from_secs(4),
        true,
        "node1 eth0 carrier back",
    );
    println!(
        "carrier back on node1 eth0: client served by node1 {:.0} ms later (bound 2 x deadping + 4000 ms; hysteresis: counts after deadping with carrier)",
        home.as_secs_f64() * 1000.0
    );

    // A flapping carrier (down 0.5 s / up 0.5 s, shorter than deadping):
    // the VIP leaves once and stays away while it flaps.
    std::thread::sleep(Duration::from_secs(2));
    let mut changes = 0;
    for _ in 0..6 {
        c.uplink(0, false);
        changes += c.holder_changes(Duration::from_millis(500));
        c.uplink(0, true);
        changes += c.holder_changes(Duration::from_millis(500));
    }
    println!(
        "carrier flapping for 6 s (down 0.5 s / up 0.5 s): VIP changed hands {changes} time(s); rule: a returned carrier counts after deadping"
    );
    assert!(changes <= 1, "VIP flapped {changes} times\n{}", c.logs());
    assert!(
        c.holds_vip(1),
        "the VIP left once and stayed away\n{}",
        c.logs()
    );
    let back = c.vip_on(
        0,
        deadping * 2 + Duration::from_secs(4),
        true,
        "carrier stable again",
    );
    println!(
        "carrier stable again: VIP home {:.0} ms later",
        back.as_secs_f64() * 1000.0
    );
}

/// ping6: the router is the ping node over IPv6 only (the VIP stays IPv4).
/// node1's uplink cut moves the VIP to node2 within deadping + 2 s, the
/// uplink restored brings it home within 2 x deadping + 3 s.
#[test]
fn ipv6_ping_node_moves_the_vip_when_node1_loses_its_uplink() {
    const TEST: &str = "ipv6_ping_node_moves_the_vip_when_node1_loses_its_uplink";
    if !support::lab_available(TEST) {
        return;
    }
    let c = Uplinks::with("p6", DEADPING, "", true);
    c.start(0);
    c.start(1);
    c.vip_on(
        0,
        Duration::from_secs(30),
        true,
        "start: node1 takes its group",
    );
    let up = format!("ping node {ROUTER6} up");
    let ready = support::wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
        let l1 = std::fs::read_to_string(c.log(0)).ok()?;
        let l2 = std::fs::read_to_string(c.log(1)).ok()?;
        (l2.contains("communication up: heard: node1") && l1.contains(&up) && l2.contains(&up))
            .then_some(())
    });
    assert!(
        ready.is_some(),
        "ICMPv6 ping node not up on both\n{}",
        c.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    c.uplink(0, false);
    let away = c.vip_on(
        1,
        DEADPING + Duration::from_secs(2),
        true,
        "node1 uplink cut (ping6)",
    );
    println!(
        "ping6: uplink cut on node1: client served by node2 {:.0} ms later (deadping {} ms, bound deadping + 2000 ms)",
        away.as_secs_f64() * 1000.0,
        DEADPING.as_millis()
    );
    c.uplink(0, true);
    let home = c.vip_on(
        0,
        DEADPING * 2 + Duration::from_secs(3),
        true,
        "node1 uplink restored (ping6)",
    );
    println!(
        "ping6: uplink restored on node1: client served by node1 {:.0} ms later (bound 2 x deadping + 3000 ms)",
        home.as_secs_f64() * 1000.0
    );
}

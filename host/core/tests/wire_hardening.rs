//! The wire defences beyond heartbeat 3.0.6, each attack next to the
//! legitimate case it must not break: only the active authkeys slot
//! verifies (outside the key-rotation window), `NS_*` freshness by `ts`,
//! the per-peer answer budget, the seq space and restored peer state.

use std::time::Duration;
use wasmbeat_core::wire::auth::Keyring;
use wasmbeat_core::wire::fields::*;
use wasmbeat_core::wire::keys::{AuthKey, AuthMethod, Secret};
use wasmbeat_core::wire::session::{ANSWER_BURST, ANSWER_RATE, TS_TOLERANCE_SECS};
use wasmbeat_core::wire::{
    DropReason, Endpoint, EndpointConfig, Event, Identity, Message, PeerState,
};
use wasmbeat_core::Millis;

const T0: Millis = Millis(1_000);
/// A wall clock far from zero, like a real `time(NULL)`.
const WALL: u64 = 1_795_554_620;

fn key(index: u8, secret: &str) -> AuthKey {
    AuthKey {
        index,
        method: AuthMethod::Sha1(Secret::new(secret)),
        line: index as usize,
    }
}

/// authkeys `auth <active>` with `1 sha1 old` and `2 sha1 new`.
fn rotating(active: u8) -> Keyring {
    Keyring::new(active, vec![key(1, "old"), key(2, "new")]).unwrap()
}

fn endpoint_with(name: &str, generation: u64, ring: Keyring) -> Endpoint {
    let cfg = EndpointConfig::new(name, &["alpha", "beta"], ring);
    let mut uuid = [0u8; 16];
    uuid[0] = name.as_bytes()[0];
    let mut e = Endpoint::new(cfg, Identity { uuid, generation });
    e.set_environment(Millis(0), WALL, None);
    e
}

fn endpoint(name: &str, generation: u64) -> Endpoint {
    endpoint_with(
        name,
        generation,
        Keyring::new(1, vec![key(1, "s")]).unwrap(),
    )
}

fn drain(e: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| e.poll_transmit())
        .map(|p| p.netstring.to_vec())
        .collect()
}

fn status(e: &mut Endpoint, now: Millis) -> Vec<u8> {
    e.send(Endpoint::status_message("active", 5000), now);
    let mut p = drain(e);
    assert_eq!(p.len(), 1);
    p.remove(0)
}

fn rexmit(first: u64, last: u64) -> Message {
    let mut m = Message::new(T_REXMIT);
    m.push_str(F_DEST, "alpha")
        .push_str(F_FIRSTSEQ, &first.to_string())
        .push_str(F_LASTSEQ, &last.to_string());
    m
}

fn accepted(r: &Result<Vec<Event>, DropReason>) -> bool {
    r.as_ref()
        .is_ok_and(|ev| ev.iter().any(|e| matches!(e, Event::Message { .. })))
}

// ------------------------------------------------------------ key slots

/// heartbeat accepts every listed slot; wasmbeat only the `auth N` one once
/// the key-rotation window is over (or when none was opened).
#[test]
fn a_listed_but_inactive_key_is_refused_and_counted() {
    let mut beta = endpoint_with("beta", 200, rotating(2));
    // The attacker knows the retired key 1, still listed in authkeys.
    let mut forger = endpoint_with("alpha", 100, rotating(1));
    let p = status(&mut forger, T0);
    assert_eq!(beta.receive(&p, 0, T0), Err(DropReason::InactiveKey));
    assert_eq!(beta.counters().get(DropReason::InactiveKey), 1);
    // The real alpha signs with the active key 2: accepted.
    let mut alpha = endpoint_with("alpha", 100, rotating(2));
    let p = status(&mut alpha, T0);
    assert!(accepted(&beta.receive(&p, 0, T0)));
}

#[test]
fn the_rotation_window_accepts_other_listed_keys_until_it_closes() {
    let window = Duration::from_secs(600);
    let mut beta = endpoint_with("beta", 200, rotating(2));
    beta.open_key_rotation_window(T0);
    let w = beta.key_rotation(T0).expect("window open").clone();
    assert_eq!((w.slots, w.until), (vec![1], T0.plus(window)));
    let mut alpha = endpoint_with("alpha", 100, rotating(1));
    let inside = T0.plus(window - Duration::from_secs(1));
    assert!(accepted(&beta.receive(
        &status(&mut alpha, inside),
        0,
        inside
    )));
    let after = T0.plus(window);
    assert!(beta.key_rotation(after).is_none());
    assert_eq!(
        beta.receive(&status(&mut alpha, after), 0, after),
        Err(DropReason::InactiveKey)
    );
    // A key that is not listed at all is still an authentication failure.
    let mut stranger = endpoint_with(
        "alpha",
        100,
        Keyring::new(3, vec![key(3, "other")]).unwrap(),
    );
    assert_eq!(
        beta.receive(&status(&mut stranger, inside), 0, inside),
        Err(DropReason::AuthFailed)
    );
}

/// The documented two-node procedure: add key 2 everywhere (reload opens
/// the window), then switch `auth 2` node by node inside it. No message of
/// either node is dropped at any step; afterwards key 1 is refused.
#[test]
fn two_node_key_rotation_loses_nothing() {
    let only_old = || Keyring::new(1, vec![key(1, "old")]).unwrap();
    let mut a = endpoint_with("alpha", 100, only_old());
    let mut b = endpoint_with("beta", 200, only_old());
    let mut t = T0;
    let exchange = |a: &mut Endpoint, b: &mut Endpoint, t: Millis| {
        assert!(
            accepted(&b.receive(&status(a, t), 0, t)),
            "beta dropped alpha"
        );
        assert!(
            accepted(&a.receive(&status(b, t), 0, t)),
            "alpha dropped beta"
        );
        drain(a);
        drain(b);
    };
    exchange(&mut a, &mut b, t);
    // Step 1: both add "2 sha1 new", keep auth 1, reload.
    a.set_keyring(rotating(1), t);
    exchange(&mut a, &mut b, t);
    t = t.plus(Duration::from_secs(60));
    b.set_keyring(rotating(1), t);
    exchange(&mut a, &mut b, t);
    // Step 2: alpha switches to auth 2; beta accepts key 2 in its window.
    t = t.plus(Duration::from_secs(60));
    a.set_keyring(rotating(2), t);
    exchange(&mut a, &mut b, t);
    // Step 2 on beta: alpha still accepts key 1 until beta switched.
    t = t.plus(Duration::from_secs(60));
    b.set_keyring(rotating(2), t);
    exchange(&mut a, &mut b, t);
    // Long after: both sign with 2; a key-1 forgery is refused.
    t = t.plus(Duration::from_secs(3600));
    exchange(&mut a, &mut b, t);
    let mut forger = endpoint_with("alpha", 100, rotating(1));
    assert_eq!(
        b.receive(&status(&mut forger, t), 0, t),
        Err(DropReason::InactiveKey)
    );
}

// ------------------------------------------------------------ answer budget

/// alpha has 20 messages in its history; beta (or whoever replays beta's
/// packets) floods it with retransmission requests.
fn flooded_pair() -> (Endpoint, Endpoint) {
    let mut a = endpoint("alpha", 100);
    let mut b = endpoint("beta", 200);
    for _ in 0..20 {
        a.send(Message::new("custom"), T0);
    }
    drain(&mut a);
    // beta's status anchors its clock for alpha's NS_* freshness check.
    a.receive(&status(&mut b, T0), 0, T0).unwrap();
    drain(&mut a);
    (a, b)
}

#[test]
fn a_flood_of_ns_rexmit_yields_at_most_the_budget() {
    let (mut a, mut b) = flooded_pair();
    // 1000 distinct requests: most for seqs alpha never sent (each would
    // be a NAK), some for its history (each a resend), at one instant.
    let t = T0.plus(Duration::from_secs(1));
    for i in 0..1000u64 {
        b.send(rexmit(1 + i % 2000, 1 + i % 2000), t);
    }
    let mut limited = 0;
    for p in drain(&mut b) {
        if a.receive(&p, 0, t) == Err(DropReason::RateLimited) {
            limited += 1;
        }
    }
    let sent = drain(&mut a).len() as u64;
    assert!(sent <= ANSWER_BURST, "{sent} answers to a flood");
    assert!(
        sent >= ANSWER_BURST - 1,
        "the budget is spent, not wasted: {sent}"
    );
    assert!(limited >= 1000 - ANSWER_BURST, "{limited} requests refused");
    assert_eq!(a.counters().get(DropReason::RateLimited), limited);
    // One second later the budget has refilled by ANSWER_RATE, not more.
    let t2 = t.plus(Duration::from_secs(1));
    for i in 0..1000u64 {
        b.send(rexmit(5000 + i, 5000 + i), t2);
    }
    for p in drain(&mut b) {
        let _ = a.receive(&p, 0, t2);
    }
    assert!(drain(&mut a).len() as u64 <= ANSWER_RATE);
    // A genuine request after the flood has passed is answered again.
    let t3 = t2.plus(Duration::from_secs(2));
    a.receive(&status(&mut b, t3), 0, t3).unwrap();
    drain(&mut a);
    b.send(rexmit(5, 5), t3);
    for p in drain(&mut b) {
        a.receive(&p, 0, t3).unwrap();
    }
    let resent = drain(&mut a);
    assert_eq!(resent.len(), 1, "the request of a healthy peer is answered");
}

/// The same captured request replayed: one resend per 240 ms at most.
#[test]
fn a_replayed_ns_rexmit_resends_once_per_interval() {
    let (mut a, mut b) = flooded_pair();
    let t = T0.plus(Duration::from_secs(1));
    b.send(rexmit(7, 7), t);
    let req = drain(&mut b).remove(0);
    for _ in 0..1000 {
        let _ = a.receive(&req, 0, t);
    }
    assert_eq!(drain(&mut a).len(), 1);
    assert_eq!(a.stats().resent, 1);
}

#[test]
fn a_flood_of_reqnodes_yields_at_most_the_budget() {
    let (mut a, mut b) = flooded_pair();
    let t = T0.plus(Duration::from_secs(1));
    for _ in 0..500 {
        let mut m = Message::new(T_REQNODES);
        m.push_str(F_DEST, "alpha");
        b.send(m, t);
    }
    for p in drain(&mut b) {
        let _ = a.receive(&p, 0, t);
    }
    let repnodes = drain(&mut a)
        .iter()
        .filter(|p| std::str::from_utf8(p).is_ok_and(|s| s.contains("t=repnodes")))
        .count() as u64;
    assert!(
        (1..=ANSWER_BURST).contains(&repnodes),
        "{repnodes} repnodes"
    );
    assert!(a.counters().get(DropReason::RateLimited) >= 500 - ANSWER_BURST);
}

// ------------------------------------------------------------ ts freshness

fn ack(to: &str) -> Message {
    let mut m = Message::new(T_ACKMSG);
    m.push_str(F_DEST, to).push_str(F_ACKSEQ, "1");
    m
}

#[test]
fn a_replayed_old_ns_message_is_stale_a_fresh_one_is_not() {
    let mut a = endpoint("alpha", 100);
    let mut b = endpoint("beta", 200);
    a.receive(&status(&mut b, T0), 0, T0).unwrap();
    b.send(ack("alpha"), T0);
    let captured = drain(&mut b).remove(0);
    a.receive(&captured, 0, T0).unwrap();
    // A minute later beta's status shows its clock has moved on.
    let later = T0.plus(Duration::from_secs(60));
    a.receive(&status(&mut b, later), 0, later).unwrap();
    assert_eq!(a.receive(&captured, 0, later), Err(DropReason::Stale));
    assert_eq!(a.counters().get(DropReason::Stale), 1);
    b.send(ack("alpha"), later);
    let fresh = drain(&mut b).remove(0);
    assert!(a.receive(&fresh, 0, later).is_ok());
    // Within the tolerance (sent just before the status it arrives after).
    let near = later.plus(Duration::from_secs(TS_TOLERANCE_SECS));
    a.receive(&status(&mut b, near), 0, near).unwrap();
    assert!(a.receive(&fresh, 0, near).is_ok());
}

/// Clocks are never compared across nodes, and a peer whose clock steps
/// back (NTP, an admin) is not cut off: its statuses carry liveness and
/// are never judged by `ts`; its NS_* are judged against its new clock
/// from its next sequenced message on.
#[test]
fn a_peer_clock_step_or_skew_never_drops_its_statuses() {
    let mut a = endpoint("alpha", 100);
    // beta's clock is a day behind alpha's: irrelevant.
    let mut b = endpoint("beta", 200);
    b.set_environment(Millis(0), WALL - 86_400, None);
    assert!(accepted(&a.receive(&status(&mut b, T0), 0, T0)));
    b.send(ack("alpha"), T0);
    assert!(a.receive(&drain(&mut b).remove(0), 0, T0).is_ok());
    // Then it steps back another hour.
    let t = T0.plus(Duration::from_secs(1));
    b.set_environment(t, WALL - 86_400 - 3_600, None);
    for i in 0..5 {
        let ti = t.plus(Duration::from_secs(i));
        assert!(accepted(&a.receive(&status(&mut b, ti), 0, ti)));
        b.send(ack("alpha"), ti);
        assert!(a.receive(&drain(&mut b).remove(0), 0, ti).is_ok());
    }
    // And forward by a year.
    b.set_environment(t, WALL + 365 * 86_400, None);
    assert!(accepted(&a.receive(&status(&mut b, t), 0, t)));
    assert_eq!(a.counters().get(DropReason::Stale), 0);
}

// ------------------------------------------------------------ seq space

/// A request for the very top of the seq space is a NAK, not a panic or
/// a wrapped range.
#[test]
fn rexmit_at_the_top_of_the_seq_space_is_a_nak() {
    let (mut a, mut b) = flooded_pair();
    b.send(rexmit(u64::MAX, u64::MAX), T0);
    b.send(rexmit(u64::MAX - 10, u64::MAX), T0);
    for p in drain(&mut b) {
        a.receive(&p, 0, T0).unwrap();
    }
    assert_eq!(a.stats().naks_sent, 12);
}

// ------------------------------------------------------------ restored state

/// alpha (generation 5) asks for a takeover; an attacker records it. alpha
/// restarts (generation 6), then beta restarts. The recorded hb_takeover
/// replayed to the restarted beta is refused only if beta restored what it
/// had seen of alpha.
#[test]
fn an_old_hb_takeover_replayed_after_our_restart_is_refused() {
    let mut alpha = endpoint("alpha", 5);
    let mut beta = endpoint("beta", 200);
    let mut takeover = Message::new("hb_takeover");
    takeover.push_str("rsc_hold", "all");
    beta.receive(&status(&mut alpha, T0), 0, T0).unwrap();
    alpha.send(takeover.clone(), T0);
    let recorded = drain(&mut alpha).remove(0);
    assert!(accepted(&beta.receive(&recorded, 0, T0)));
    // alpha restarts as generation 6 and keeps talking.
    let mut alpha = endpoint("alpha", 6);
    let t = T0.plus(Duration::from_secs(10));
    beta.receive(&status(&mut alpha, t), 0, t).unwrap();
    alpha.send(takeover.clone(), t);
    let recorded_same_gen = drain(&mut alpha).remove(0);
    assert!(accepted(&beta.receive(&recorded_same_gen, 0, t)));
    let saved = beta.peer_state();
    assert_eq!(
        saved,
        [PeerState {
            node: "alpha".into(),
            generation: 6,
            seq: 2
        }]
    );
    // beta restarts with the saved state: both replays are refused.
    let mut beta2 = endpoint("beta", 201);
    beta2.restore_peers(&saved);
    assert_eq!(beta2.receive(&recorded, 0, t), Err(DropReason::Replay));
    assert_eq!(
        beta2.receive(&recorded_same_gen, 0, t),
        Err(DropReason::Replay)
    );
    assert_eq!(beta2.counters().get(DropReason::Replay), 2);
    // alpha's next genuine messages continue without a gap.
    let t2 = t.plus(Duration::from_secs(1));
    assert!(accepted(&beta2.receive(&status(&mut alpha, t2), 0, t2)));
    alpha.send(takeover, t2);
    assert!(accepted(&beta2.receive(
        &drain(&mut alpha).remove(0),
        0,
        t2
    )));
    assert!(
        beta2.next_timeout(t2, &|_| true).is_none(),
        "no gap requested"
    );
    // Without the saved state (today's heartbeat after a lost
    // /var/lib/heartbeat) the old takeover gets in: the attack this stops.
    let mut beta3 = endpoint("beta", 202);
    assert!(accepted(&beta3.receive(&recorded, 0, t)));
}

// ------------------------------------------------------------ through the Node

/// A reload that changes authkeys reaches the session through the Node: the
/// new key signs at once and the previous one verifies in the new window.
#[test]
fn a_reload_with_new_authkeys_switches_the_signing_key_and_opens_a_window() {
    use std::collections::BTreeMap;
    use wasmbeat_core::cluster::{AutoFailback, ClusterParams, LinkId};
    use wasmbeat_core::node::ReloadPlan;
    use wasmbeat_core::{Input, Node, NodeConfig, Output};

    let params = ClusterParams {
        local: "beta".into(),
        nodes: vec!["alpha".into(), "beta".into()],
        keepalive: Duration::from_secs(1),
        deadtime: Duration::from_secs(5),
        warntime: Duration::from_secs(3),
        initdead: Duration::from_secs(10),
        auto_failback: AutoFailback::On,
        groups: vec![],
        generation: 200,
        ping: Default::default(),
        fencing: Default::default(),
        tiebreaker: false,
    };
    let ecfg = EndpointConfig::new("beta", &["alpha", "beta"], rotating(1));
    let mut node = Node::new(
        NodeConfig {
            cluster: params.clone(),
            endpoint: ecfg,
            identity: Identity {
                uuid: [2; 16],
                generation: 200,
            },
            links: vec![LinkId("eth0".into())],
            monitors: BTreeMap::new(),
        },
        T0,
    );
    assert_eq!(node.key_rotation(T0).map(|w| w.slots), Some(vec![2]));
    // Long after the start window, alpha (already on key 2) is refused.
    let t = T0.plus(Duration::from_secs(3600));
    let mut alpha = endpoint_with("alpha", 100, rotating(2));
    let drops = |n: &Node| n.drop_counters().get(DropReason::InactiveKey);
    node.handle(
        t,
        Input::Packet {
            link: 0,
            bytes: status(&mut alpha, t),
        },
    );
    assert_eq!(drops(&node), 1);
    node.handle(
        t,
        Input::Reload(ReloadPlan {
            cluster: params,
            monitors: BTreeMap::new(),
            changed: vec![],
            keyring: Some(rotating(2)),
            reason: "test".into(),
        }),
    );
    let out = node.handle(
        t,
        Input::AgentsLoaded {
            reload: 1,
            result: Ok(()),
        },
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Reloaded(Ok(m)) if m.contains("signing with key 2"))),
        "{out:?}"
    );
    // Key 2 verifies now; key 1 (a node not yet switched) in the new window.
    node.handle(
        t,
        Input::Packet {
            link: 0,
            bytes: status(&mut alpha, t),
        },
    );
    let mut laggard = endpoint_with("alpha", 100, rotating(1));
    for _ in 0..3 {
        laggard.send(Message::new("custom"), t);
    }
    let p = drain(&mut laggard).pop().unwrap();
    node.handle(t, Input::Packet { link: 0, bytes: p });
    assert_eq!(drops(&node), 1, "nothing more dropped after the reload");
    // What the node sends is signed with key 2.
    let t2 = t.plus(Duration::from_secs(2));
    let out = node.handle(
        t2,
        Input::Tick {
            wall_secs: WALL + 3602,
            loadavg: None,
        },
    );
    let sent: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(p) => Some(p.netstring.clone()),
            _ => None,
        })
        .collect();
    assert!(!sent.is_empty());
    for p in sent {
        let text = String::from_utf8_lossy(&p).to_string();
        assert!(text.contains("%%%\n42:2 "), "{text}");
    }
}

//! The session layer between two in-memory endpoints: stamping, signing,
//! ACKs, retransmission, reqnodes/repnodes and every drop reason.

use std::time::Duration;
use wasmbeat_core::wire::auth::Keyring;
use wasmbeat_core::wire::fields::*;
use wasmbeat_core::wire::keys::{AuthMethod, Secret};
use wasmbeat_core::wire::session::REXMIT_GIVE_UP;
use wasmbeat_core::wire::{codec, DropReason, Endpoint, EndpointConfig, Event, Identity, Message};
use wasmbeat_core::Millis;

/// Liveness is the core's verdict; these tests state it.
fn all_alive(_: &str) -> bool {
    true
}
fn none_alive(_: &str) -> bool {
    false
}

fn ring(secret: &str) -> Keyring {
    Keyring::single(1, AuthMethod::Sha1(Secret::new(secret)))
}

fn endpoint(name: &str, generation: u64, secret: &str) -> Endpoint {
    started(
        EndpointConfig::new(name, &["alpha", "beta"], ring(secret)),
        generation,
    )
}

/// The endpoint of `cfg`'s node in its start `generation`; its UUID's
/// first byte is the node name's.
fn started(cfg: EndpointConfig, generation: u64) -> Endpoint {
    let mut uuid = [0u8; 16];
    uuid[0] = cfg.node.as_bytes()[0];
    Endpoint::new(cfg, Identity { uuid, generation })
}

fn drain(e: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| e.poll_transmit())
        .map(|p| p.netstring.to_vec())
        .collect()
}

/// Deliver everything `from` has queued to `to`; returns events.
fn pump(from: &mut Endpoint, to: &mut Endpoint, now: Millis) -> Vec<Event> {
    let mut ev = Vec::new();
    for p in drain(from) {
        if let Ok(e) = to.receive(&p, 0, now) {
            ev.extend(e);
        }
    }
    ev
}

/// beta has heard alpha's status (seq 1); alpha's seq 2 is lost on the way.
fn seq_2_lost(a: &mut Endpoint, b: &mut Endpoint, t0: Millis) {
    a.send(Endpoint::status_message("up", 5000), t0);
    pump(a, b, t0);
    a.send(Message::new("custom"), t0);
    drain(a);
}

#[test]
fn status_is_stamped_signed_and_delivered() {
    let now = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    a.send(Endpoint::status_message("up", 5000), now);
    let p = a.poll_transmit().unwrap();
    let f = codec::decode(&p.netstring, &Default::default()).unwrap();
    let names: Vec<&str> = f.message.fields.iter().map(|f| f.name.as_ref()).collect();
    // Heartbeat's order: type fields, protocol, then the standard fields.
    assert_eq!(
        names,
        ["t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"]
    );
    assert_eq!(f.message.get_str("hg"), Some("64"));
    assert_eq!(f.message.get_str("ttl"), Some("3"));
    let ev = b.receive(&p.netstring, 0, now).unwrap();
    assert!(matches!(&ev[..], [Event::Message { header, .. }] if header.msg_type == "status"));
    // The classic copy (serial) is accepted too, as a duplicate of the same
    // seq: counted as a drop, reported so the core credits medium 1.
    assert_eq!(
        b.receive(&p.classic, 1, now),
        Ok(vec![Event::Duplicate {
            node: "alpha".into(),
            link: 1
        }])
    );
    let view = &b.peers()[0];
    assert_eq!((view.generation, view.last_seq), (100, 1));
}

/// `msgfmt netstring`: the UDP form has no inner `auth` (the trailer signs
/// it), the serial form still does, and both are accepted by a peer.
#[test]
fn without_the_classic_auth_field_only_the_serial_form_carries_auth() {
    let now = Millis(1_000);
    let mut cfg = EndpointConfig::new("alpha", &["alpha", "beta"], ring("s"));
    cfg.classic_auth_field = false;
    let mut a = started(cfg, 100);
    let mut b = endpoint("beta", 200, "s");
    a.send(Endpoint::status_message("up", 5000), now);
    let p = a.poll_transmit().unwrap();
    let udp = codec::decode(&p.netstring, &Default::default()).unwrap();
    let serial = codec::decode(&p.classic, &Default::default()).unwrap();
    assert!(!udp.message.has(F_AUTH), "{:?}", udp.message);
    assert_eq!(
        serial.message.fields.last().map(|f| f.name.as_ref()),
        Some(F_AUTH)
    );
    // Otherwise the same fields in the same order.
    let mut stripped = serial.message.clone();
    stripped.remove(F_AUTH);
    assert_eq!(stripped, udp.message);
    assert!(b.receive(&p.netstring, 0, now).is_ok());
    assert!(matches!(
        b.receive(&p.classic, 1, now),
        Ok(ev) if matches!(&ev[..], [Event::Duplicate { .. }])
    ));
}

/// `ts` follows the wall clock the host told it, advanced by the monotonic
/// clock; `ld` is the load line the host read. The engine reads neither.
#[test]
fn wall_clock_and_load_come_from_the_host() {
    let mut a = endpoint("alpha", 100, "s");
    a.set_environment(
        Millis(1_000),
        1_700_000_000,
        Some("0.42 0.1 0.0 1/99 7".into()),
    );
    a.send(Endpoint::status_message("up", 5000), Millis(4_500));
    let f = codec::decode(&drain(&mut a)[0], &Default::default()).unwrap();
    assert_eq!(
        f.message.get_str("ts"),
        Some(format!("{:x}", 1_700_000_003).as_str())
    );
    assert_eq!(f.message.get_str("ld"), Some("0.42 0.1 0.0 1/99 7"));
}

#[test]
fn drops_are_counted_and_never_delivered() {
    let now = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    let mut evil = endpoint("alpha", 100, "wrong");
    a.send(Endpoint::status_message("up", 5000), now);
    let good = drain(&mut a).remove(0);
    let mut tampered = good.clone();
    let i = tampered.windows(6).position(|w| w == b"st=up,").unwrap();
    tampered[i + 3..i + 5].copy_from_slice(b"xx");
    assert_eq!(b.receive(&tampered, 0, now), Err(DropReason::AuthFailed));
    assert_eq!(
        b.receive(&good[..good.len() - 30], 0, now),
        Err(DropReason::Truncated)
    );
    assert_eq!(
        b.receive(&vec![b'#'; 300_000], 0, now),
        Err(DropReason::Oversized)
    );
    assert_eq!(
        b.receive(b"GET / HTTP/1.0\r\n", 0, now),
        Err(DropReason::Malformed)
    );
    let unsigned =
        codec::encode_netstring_body(&codec::decode(&good, &Default::default()).unwrap().message);
    assert_eq!(b.receive(&unsigned, 0, now), Err(DropReason::AuthMissing));
    evil.send(Endpoint::status_message("active", 5000), now);
    assert_eq!(
        b.receive(&drain(&mut evil)[0], 0, now),
        Err(DropReason::AuthFailed)
    );
    assert!(b.receive(&good, 0, now).is_ok());
    assert!(matches!(
        &b.receive(&good, 0, now).unwrap()[..],
        [Event::Duplicate { .. }]
    ));
    a.send(Endpoint::status_message("up", 5000), now);
    let second = drain(&mut a).remove(0);
    b.receive(&second, 0, now).unwrap();
    assert_eq!(b.receive(&good, 0, now), Err(DropReason::Replay));
    // A replay of an old generation's traffic.
    let mut old = endpoint("alpha", 99, "s");
    old.send(Endpoint::status_message("up", 5000), now);
    assert_eq!(
        b.receive(&drain(&mut old)[0], 0, now),
        Err(DropReason::Replay)
    );
    let mut stranger = Endpoint::new(
        EndpointConfig::new("gamma", &["gamma", "beta"], ring("s")),
        Identity {
            uuid: [9; 16],
            generation: 1,
        },
    );
    stranger.send(Endpoint::status_message("up", 5000), now);
    assert_eq!(
        b.receive(&drain(&mut stranger)[0], 0, now),
        Err(DropReason::UnknownNode)
    );
    let c = b.counters();
    for (r, n) in [
        (DropReason::AuthFailed, 2),
        (DropReason::Truncated, 1),
        (DropReason::Oversized, 1),
        (DropReason::Malformed, 1),
        (DropReason::AuthMissing, 1),
        (DropReason::Duplicate, 1),
        (DropReason::Replay, 2),
        (DropReason::UnknownNode, 1),
    ] {
        assert_eq!(c.get(r), n, "{r:?}");
    }
    assert_eq!(c.accepted(), 2);
}

#[test]
fn acks_gaps_retransmission_and_restart() {
    let t0 = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    // 20 in-order messages: beta ACKs exactly twice (one residue mod 10).
    for i in 0..20 {
        a.send(
            Endpoint::status_message(if i == 0 { "up" } else { "active" }, 5000),
            t0,
        );
    }
    pump(&mut a, &mut b, t0);
    let acks: Vec<_> = drain(&mut b);
    assert_eq!(acks.len(), 2, "one ACK per 10 messages");
    assert_eq!(b.stats().acks_sent, 2);
    for p in &acks {
        a.receive(p, 0, t0).unwrap();
    }
    let acked = a.peers()[0].acked;
    assert!((11..=20).contains(&acked), "acked {acked}");
    // Lose seq 21 and 22: beta, alpha's only receiver, asks for them at
    // once, and holds 23 back until they are in.
    let custom = |n: &str| {
        let mut m = Message::new("custom");
        m.push_str("n", n);
        m
    };
    a.send(custom("21"), t0);
    a.send(custom("22"), t0);
    let lost = drain(&mut a);
    a.send(custom("23"), t0);
    let early = pump(&mut a, &mut b, t0);
    assert!(
        !early.iter().any(|e| matches!(e, Event::Message { .. })),
        "23 must wait for 21 and 22: {early:?}"
    );
    assert_eq!(b.stats().held_back, 1);
    drain(&mut b);
    // The gap schedules a wake-up for its request: now, as no other
    // receiver could ask first.
    let due = b
        .next_timeout(t0, &all_alive)
        .expect("a retransmission is pending");
    assert_eq!(due, t0);
    let t1 = t0.plus(Duration::from_millis(1));
    // A peer the core declared dead is not asked (its packets will re-open it).
    b.handle_timeout(t1, &none_alive);
    assert!(drain(&mut b).is_empty(), "no NS_rexmit to a dead peer");
    b.handle_timeout(t1, &all_alive);
    let reqs = drain(&mut b);
    assert_eq!(reqs.len(), 2, "one NS_rexmit per missing seq");
    let mut resent = Vec::new();
    for r in &reqs {
        let f = codec::decode(r, &Default::default()).unwrap();
        assert_eq!(f.message.msg_type(), Some(T_REXMIT));
        a.receive(r, 0, t1).unwrap();
        resent.extend(drain(&mut a));
    }
    // The stored bytes are resent unchanged, 1 ms after the original send:
    // only a resend holds off the next one.
    assert_eq!(resent, lost);
    // Delivered in seq order once the gap is filled: 21, 22, then the held 23.
    let mut delivered = Vec::new();
    for p in &resent {
        for e in b.receive(p, 0, t1).unwrap() {
            if let Event::Message { message, .. } = e {
                delivered.push(message.get_str("n").unwrap_or_default().to_string());
            }
        }
    }
    assert_eq!(delivered, ["21", "22", "23"]);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (
            sb.rexmit_requested,
            sa.rexmit_received,
            sa.resent,
            sb.gaps_filled
        ),
        (2, 2, 2, 2)
    );
    // Asking for something never sent gets a NAK.
    let mut req = Message::new(T_REXMIT);
    req.push_str(F_DEST, "alpha")
        .push_str(F_FIRSTSEQ, "9999")
        .push_str(F_LASTSEQ, "9999");
    b.send(req, t1);
    pump(&mut b, &mut a, t1);
    let nak = drain(&mut a);
    let f = codec::decode(&nak[0], &Default::default()).unwrap();
    assert_eq!(f.message.msg_type(), Some(T_NAKREXMIT));
    assert_eq!(f.message.get_str(F_FIRSTSEQ), Some("270f"));
    // Restart: a higher generation's status resets tracking.
    let mut a2 = endpoint("alpha", 101, "s");
    a2.send(Endpoint::status_message("up", 5000), t1);
    let ev = pump(&mut a2, &mut b, t1);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::PeerRestarted {
            old: 100,
            new: 101,
            ..
        }
    )));
}

#[test]
fn reqnodes_and_repnodes() {
    let now = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    assert!(!a.request_nodes(now, &none_alive), "no live peer yet");
    let mut a = endpoint("alpha", 100, "s");
    b.send(Endpoint::status_message("up", 5000), now);
    pump(&mut b, &mut a, now);
    drain(&mut a);
    assert!(a.request_nodes(now, &all_alive));
    assert!(!a.nodes_exchanged());
    // Lost request: repeated after a second.
    drain(&mut a);
    a.handle_timeout(now.plus(Duration::from_millis(1100)), &all_alive);
    pump(&mut a, &mut b, now);
    let rep = drain(&mut b);
    let f = codec::decode(rep.last().unwrap(), &Default::default()).unwrap();
    assert_eq!(f.message.fields[0].name, "dest");
    assert_eq!(f.message.get_str(F_NODELIST), Some("alpha beta "));
    assert_eq!(f.message.get_str(F_DELNODELIST), Some(" "));
    let mut ev = Vec::new();
    for p in &rep {
        if let Ok(e) = a.receive(p, 0, now) {
            ev.extend(e);
        }
    }
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::NodeList { nodes, .. } if nodes == &["alpha", "beta"])));
    assert!(a.nodes_exchanged());
    assert_eq!(b.stats().reqnodes_answered, 1);
    assert_eq!(a.stats().repnodes_received, 1);
}

#[test]
fn peer_without_protocol_disables_flow_control() {
    let now = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    let mut st = Endpoint::status_message("up", 5000);
    st.push_str("x", "y");
    b.send(st, now);
    // Strip protocol as an old heartbeat would not send it, then re-sign.
    let p = drain(&mut b).remove(0);
    let mut m = codec::decode(&p, &Default::default()).unwrap().message;
    m.remove("protocol").remove("auth");
    ring("s").add_classic_auth(&mut m);
    let mut bytes = codec::encode_netstring_body(&m);
    let tok = ring("s").sign(&bytes);
    codec::append_trailer(&mut bytes, &tok);
    let ev = a.receive(&bytes, 0, now).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::FlowControlDisabled { .. })));
    assert!(!a.flow_control());
    a.send(Endpoint::status_message("up", 5000), now);
    let f = codec::decode(&drain(&mut a)[0], &Default::default()).unwrap();
    assert!(!f.message.has("protocol"));
}

/// An idle endpoint needs no wake-ups: peer and link deadlines are the
/// core's; the session only times retransmissions and `reqnodes`.
#[test]
fn next_timeout_is_nothing_when_idle() {
    let t0 = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    assert_eq!(b.next_timeout(t0, &all_alive), None);
    a.send(Endpoint::status_message("up", 5000), t0);
    pump(&mut a, &mut b, t0);
    drain(&mut b);
    assert_eq!(
        b.next_timeout(t0, &all_alive),
        None,
        "a heard status starts no session timer"
    );
    assert!(b
        .handle_timeout(t0.plus(Duration::from_secs(60)), &all_alive)
        .is_empty());
}

/// A gap the sender cannot fill (NAK) releases what waited behind it.
#[test]
fn a_given_up_gap_releases_held_messages() {
    let t0 = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    seq_2_lost(&mut a, &mut b, t0);
    a.send(Message::new("custom"), t0);
    assert!(pump(&mut a, &mut b, t0).is_empty(), "held behind seq 2");
    let t1 = t0.plus(REXMIT_GIVE_UP + Duration::from_millis(5));
    let ev = b.handle_timeout(t1, &all_alive);
    assert!(
        matches!(&ev[..], [Event::Lost { seq: 2, .. }, Event::Message { .. }]),
        "{ev:?}"
    );
}

/// An endpoint in a cluster of `nodes`, its randomness seeded by `generation`.
fn endpoint_of(name: &str, nodes: &[&str], generation: u64) -> Endpoint {
    let mut cfg = EndpointConfig::new(name, nodes, ring("s"));
    cfg.seed = generation;
    started(cfg, generation)
}

/// With more receivers, each waits heartbeat's random 50 ms..max_rexmit_delay
/// so one resend (broadcast) can serve them all.
#[test]
fn with_two_peers_a_gap_is_requested_after_a_random_wait_of_50_to_250_ms() {
    let t0 = Millis(1_000);
    let nodes = ["alpha", "beta", "gamma"];
    let mut waits = Vec::new();
    for seed in 0..20 {
        let mut a = endpoint_of("alpha", &nodes, 100);
        let mut b = endpoint_of("beta", &nodes, 200 + seed);
        seq_2_lost(&mut a, &mut b, t0);
        a.send(Message::new("custom"), t0);
        pump(&mut a, &mut b, t0);
        drain(&mut b);
        let due = b
            .next_timeout(t0, &all_alive)
            .expect("a request is pending");
        let wait = due.since(t0).as_millis() as u64;
        assert!((50..=250).contains(&wait), "waited {wait} ms");
        b.handle_timeout(due, &all_alive);
        assert_eq!(b.stats().rexmit_requested, 1, "one request when due");
        waits.push(wait);
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 5, "the wait is random: {waits:?}");
}

/// heartbeat resends a message at most once per 240 ms, but the original
/// send does not count: a request that comes right after it (a gap found
/// at a heal) is answered, a second one within 240 ms of that is not.
#[test]
fn the_first_request_is_answered_at_once_and_a_repeat_only_after_240_ms() {
    let t0 = Millis(1_000);
    let mut a = endpoint("alpha", 100, "s");
    let mut b = endpoint("beta", 200, "s");
    seq_2_lost(&mut a, &mut b, t0);
    let ask = |b: &mut Endpoint, now: Millis| {
        let mut m = Message::new(T_REXMIT);
        m.push_str(F_DEST, "alpha")
            .push_str(F_FIRSTSEQ, "2")
            .push_str(F_LASTSEQ, "2");
        b.send(m, now);
    };
    let t1 = t0.plus(Duration::from_millis(10));
    ask(&mut b, t1);
    pump(&mut b, &mut a, t1);
    assert_eq!(drain(&mut a).len(), 1, "resent 10 ms after the original");
    let t2 = t1.plus(Duration::from_millis(100));
    ask(&mut b, t2);
    pump(&mut b, &mut a, t2);
    assert!(
        drain(&mut a).is_empty(),
        "not again 100 ms after the resend"
    );
    let t3 = t1.plus(Duration::from_millis(240));
    ask(&mut b, t3);
    pump(&mut b, &mut a, t3);
    assert_eq!(drain(&mut a).len(), 1, "again 240 ms after the resend");
    assert_eq!(a.stats().resent, 2);
}

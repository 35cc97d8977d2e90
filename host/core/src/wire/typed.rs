//! Mapping between the failover core's typed messages
//! ([`crate::cluster::Message`]) and heartbeat's field lists, with the
//! field names and spellings heartbeat 3.0.6 uses (spec §5.6).

use std::time::Duration;

use super::fields::{
    F_DEST, F_DT, F_INFO, F_IPADDR, F_ISSTABLE, F_NODE, F_OK, F_RESULT, F_RSC_HOLD, F_RTYPE,
    F_STATUS, F_WEOWN, T_ASK_RESOURCES, T_HB_TAKEOVER, T_IP_REQUEST, T_IP_REQUEST_RESP, T_RESOURCE,
    T_SHUTDONE, T_STARTING, T_STATUS, T_STONITH,
};
use super::message::Message;
use crate::cluster::{Message as Typed, NodeStatus, RscHold, StandbyStep, StonithResult, Which};

// wasmbeat's own fields, which a heartbeat peer ignores.
const F_WB_RUNNING: &str = "wb_running";
const F_WB_DESTHG: &str = "wb_desthg";

// ipfail (contrib/ipfail/ipfail.c, hb_api.c). heartbeat hands a message
// with `to_id` only to the local API client of that name, so ours carry
// `to_id=ipfail` to reach a heartbeat peer's ipfail, and `from_id=ipfail`
// as its own ipfail's would after passing through heartbeat's API.
const T_NUM_PING_NODES: &str = "num_ping_nodes";
const T_YOU_ARE_DEAD: &str = "you_are_dead";
const T_ABORT_GIVEUP: &str = "abort_giveup";
const T_APICLISTAT: &str = "hbapi-clstat";
const F_NUMPING: &str = "num_ping";
const F_FROMID: &str = "from_id";
const F_TOID: &str = "to_id";
const IPFAIL: &str = "ipfail";
const JOIN: &str = "join";

/// The heartbeat message for a typed core message (type-specific fields
/// only; the session stamps and signs it).
pub fn to_wire(msg: &Typed) -> Message {
    match msg {
        Typed::Status { status, deadtime } => {
            let mut m = Message::new(T_STATUS);
            m.push_str(F_STATUS, status.as_str())
                .push_fmt(F_DT, format_args!("{:x}", deadtime.as_millis()));
            m
        }
        Typed::Starting => Message::new(T_STARTING),
        Typed::Resource {
            hold,
            full,
            stable,
            info,
            running,
        } => {
            let mut m = Message::new(T_RESOURCE);
            m.push_str(F_RSC_HOLD, hold.as_str());
            if *full {
                m.push_str(F_RTYPE, "full");
            }
            if let Some(s) = stable {
                m.push_str(F_ISSTABLE, if *s { "1" } else { "0" });
            }
            if let Some(i) = info {
                m.push_str(F_INFO, i);
            }
            if let Some(keys) = running {
                // Keys contain no spaces (haresources tokens cannot).
                m.push_str(F_WB_RUNNING, &keys.join(" "));
            }
            m
        }
        Typed::AskResources { hold, step } => {
            let mut m = Message::new(T_ASK_RESOURCES);
            m.push_str(F_RSC_HOLD, hold.as_str()).push_str(
                F_INFO,
                match step {
                    StandbyStep::Me => "me",
                    StandbyStep::Other => "other",
                    StandbyStep::Done => "done",
                },
            );
            m
        }
        Typed::HbTakeover { which } => {
            let mut m = Message::new(T_HB_TAKEOVER);
            m.push_str(F_RSC_HOLD, which.as_str());
            m
        }
        Typed::Shutdone => {
            let mut m = Message::new(T_SHUTDONE);
            m.push_str(F_STATUS, "dead");
            m
        }
        Typed::Stonith { node, result } => {
            let mut m = Message::new(T_STONITH);
            m.push_str(F_NODE, node).push_str(F_RESULT, result.as_str());
            m
        }
        Typed::IpRequest { key } => {
            let mut m = Message::new(T_IP_REQUEST);
            m.push_str(F_IPADDR, key);
            m
        }
        Typed::IpRequestResp {
            dest,
            key,
            weown,
            dest_generation,
        } => {
            let mut m = Message::new(T_IP_REQUEST_RESP);
            m.push_str(F_DEST, dest)
                .push_str(F_IPADDR, key)
                .push_str(F_WEOWN, if *weown { "yes" } else { "no" })
                .push_str(F_OK, "OK");
            if let Some(g) = dest_generation {
                m.push_fmt(F_WB_DESTHG, format_args!("{g:x}"));
            }
            m
        }
        Typed::NumPingNodes { dest, count } => {
            let mut m = Message::new(T_NUM_PING_NODES);
            m.push_fmt(F_NUMPING, format_args!("{count}"));
            ipfail_route(&mut m, Some(dest));
            m
        }
        Typed::YouAreDead { dest } => {
            let mut m = Message::new(T_YOU_ARE_DEAD);
            ipfail_route(&mut m, Some(dest));
            m
        }
        Typed::AbortGiveup { dest } => {
            let mut m = Message::new(T_ABORT_GIVEUP);
            ipfail_route(&mut m, Some(dest));
            m
        }
        Typed::IpfailJoin => {
            // As heartbeat's api_send_client_status when ipfail signs on.
            let mut m = Message::new(T_APICLISTAT);
            m.push_str(F_STATUS, JOIN);
            ipfail_route(&mut m, None);
            m.push_str(F_INFO, "signon");
            m
        }
    }
}

fn ipfail_route(m: &mut Message, dest: Option<&str>) {
    if let Some(d) = dest {
        m.push_str(F_DEST, d);
    }
    m.push_str(F_FROMID, IPFAIL).push_str(F_TOID, IPFAIL);
}

fn dest_of(m: &Message) -> String {
    m.get_str(F_DEST).unwrap_or("").to_ascii_lowercase()
}

fn hold(m: &Message) -> Option<RscHold> {
    Some(match m.get_str(F_RSC_HOLD)? {
        "none" => RscHold::None,
        "local" => RscHold::Local,
        "foreign" => RscHold::Foreign,
        "all" => RscHold::All,
        _ => return None,
    })
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The typed core message for a received heartbeat message, or None for
/// types the core does not act on (client-API traffic, ipfail, unknown
/// types, malformed values): heartbeat tolerates those, and so do we.
pub fn from_wire(m: &Message) -> Option<Typed> {
    Some(match m.msg_type()? {
        T_STATUS => Typed::Status {
            status: match m.get_str(F_STATUS)? {
                "init" => NodeStatus::Init,
                "up" => NodeStatus::Up,
                "active" => NodeStatus::Active,
                "dead" => NodeStatus::Dead,
                _ => return None,
            },
            deadtime: Duration::from_millis(u64::from_str_radix(m.get_str(F_DT)?, 16).ok()?),
        },
        T_STARTING => Typed::Starting,
        T_RESOURCE => Typed::Resource {
            hold: hold(m)?,
            full: m.get_str(F_RTYPE) == Some("full"),
            stable: match m.get_str(F_ISSTABLE) {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            },
            info: m.get_str(F_INFO).map(str::to_string),
            running: m.get_str(F_WB_RUNNING).map(words),
        },
        T_ASK_RESOURCES => Typed::AskResources {
            hold: hold(m)?,
            step: match m.get_str(F_INFO)? {
                "me" => StandbyStep::Me,
                "other" => StandbyStep::Other,
                "done" => StandbyStep::Done,
                _ => return None,
            },
        },
        T_HB_TAKEOVER => Typed::HbTakeover {
            which: match m.get_str(F_RSC_HOLD)? {
                "all" => Which::All,
                "local" => Which::Local,
                "foreign" => Which::Foreign,
                "failback" => Which::Failback,
                _ => return None,
            },
        },
        T_SHUTDONE => Typed::Shutdone,
        T_STONITH => Typed::Stonith {
            node: m.get_str(F_NODE)?.to_ascii_lowercase(),
            result: match m.get_str(F_RESULT)? {
                "OK" => StonithResult::Ok,
                "badhost" => StonithResult::BadHost,
                "bad" => StonithResult::Bad,
                "n_stnth" => StonithResult::NotConfigured,
                "unneeded" => StonithResult::Unneeded,
                _ => return None,
            },
        },
        T_IP_REQUEST => Typed::IpRequest {
            key: m.get_str(F_IPADDR)?.to_string(),
        },
        T_IP_REQUEST_RESP => Typed::IpRequestResp {
            dest: m.get_str(F_DEST)?.to_ascii_lowercase(),
            key: m.get_str(F_IPADDR)?.to_string(),
            weown: m.get_str(F_WEOWN) == Some("yes"),
            dest_generation: m.get_hex(F_WB_DESTHG),
        },
        T_NUM_PING_NODES => Typed::NumPingNodes {
            dest: dest_of(m),
            // ipfail reads it with atoi and sends it with "%d".
            count: m.get_str(F_NUMPING)?.trim().parse().ok()?,
        },
        T_YOU_ARE_DEAD => Typed::YouAreDead { dest: dest_of(m) },
        T_ABORT_GIVEUP => Typed::AbortGiveup { dest: dest_of(m) },
        // Other clients' sign-ons and sign-offs do not concern us.
        T_APICLISTAT
            if m.get_str(F_STATUS) == Some(JOIN) && m.get_str(F_FROMID) == Some(IPFAIL) =>
        {
            Typed::IpfailJoin
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_hold() -> impl Strategy<Value = RscHold> {
        prop_oneof![
            Just(RscHold::None),
            Just(RscHold::Local),
            Just(RscHold::Foreign),
            Just(RscHold::All)
        ]
    }

    fn arb_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,8}"
    }

    fn arb_typed() -> impl Strategy<Value = Typed> {
        prop_oneof![
            (
                prop_oneof![
                    Just(NodeStatus::Init),
                    Just(NodeStatus::Up),
                    Just(NodeStatus::Active)
                ],
                0u64..100_000
            )
                .prop_map(|(status, ms)| Typed::Status {
                    status,
                    deadtime: Duration::from_millis(ms)
                }),
            Just(Typed::Starting),
            (
                arb_hold(),
                any::<bool>(),
                proptest::option::of(any::<bool>()),
                proptest::option::of(prop_oneof![
                    Just("shutdown".to_string()),
                    Just("standby".to_string())
                ]),
                proptest::option::of(proptest::collection::vec(
                    "IPaddr::10\\.0\\.0\\.[0-9]{1,2}",
                    0..3
                ))
            )
                .prop_map(|(hold, full, stable, info, running)| Typed::Resource {
                    hold,
                    full,
                    stable,
                    info,
                    running
                }),
            (
                arb_hold(),
                prop_oneof![
                    Just(StandbyStep::Me),
                    Just(StandbyStep::Other),
                    Just(StandbyStep::Done)
                ]
            )
                .prop_map(|(hold, step)| Typed::AskResources { hold, step }),
            Just(Typed::Shutdone),
            (
                arb_name(),
                "[A-Za-z]+::[0-9.]{1,15}",
                any::<bool>(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(dest, key, weown, dest_generation)| {
                    Typed::IpRequestResp {
                        dest,
                        key,
                        weown,
                        dest_generation,
                    }
                }),
            "[A-Za-z]+::[0-9.]{1,15}".prop_map(|key| Typed::IpRequest { key }),
            (arb_name(), 0usize..100).prop_map(|(dest, count)| Typed::NumPingNodes { dest, count }),
            arb_name().prop_map(|dest| Typed::YouAreDead { dest }),
            arb_name().prop_map(|dest| Typed::AbortGiveup { dest }),
            Just(Typed::IpfailJoin),
        ]
    }

    proptest! {
        #[test]
        fn typed_messages_round_trip_through_heartbeat_fields(msg in arb_typed()) {
            // An empty wb_running list has no words to carry; it reads back as Some(empty).
            let back = from_wire(&to_wire(&msg));
            prop_assert_eq!(back, Some(msg));
        }
    }

    #[test]
    fn status_uses_heartbeats_hex_deadtime() {
        let m = to_wire(&Typed::Status {
            status: NodeStatus::Active,
            deadtime: Duration::from_millis(6000),
        });
        assert_eq!(m.get_str("dt"), Some("1770"));
        assert_eq!(m.get_str("st"), Some("active"));
    }

    #[test]
    fn ipfail_messages_carry_ipfails_field_names_and_routing() {
        let m = to_wire(&Typed::NumPingNodes {
            dest: "node1".into(),
            count: 2,
        });
        assert_eq!(m.msg_type(), Some("num_ping_nodes"));
        assert_eq!(m.get_str("num_ping"), Some("2"));
        assert_eq!(m.get_str("dest"), Some("node1"));
        assert_eq!(m.get_str("to_id"), Some("ipfail"));
        // As the real ipfail's arrive (dest added by the client library).
        let mut real = Message::new("you_are_dead");
        real.push_str("dest", "Node2")
            .push_str("from_id", "ipfail")
            .push_str("to_id", "ipfail");
        assert_eq!(
            from_wire(&real),
            Some(Typed::YouAreDead {
                dest: "node2".into()
            })
        );
        let mut ccm = Message::new("hbapi-clstat");
        ccm.push_str("st", "join").push_str("from_id", "ccm");
        assert_eq!(from_wire(&ccm), None, "only ipfail's join matters");
    }

    #[test]
    fn unknown_and_malformed_types_are_ignored() {
        assert_eq!(from_wire(&Message::new("hbapi-clstat")), None);
        let mut bad = Message::new("resource");
        bad.push_str("rsc_hold", "some");
        assert_eq!(from_wire(&bad), None);
    }
}

//! Property tests: any valid configuration printed as text parses back to
//! the same structure, with no errors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;
use wasmbeat::config::hacf::{
    AutoJoin, GenMethod, MsgFmt, OtherDirective, PingGroup, Respawn, Stonith, StonithHost, UuidFrom,
};
use wasmbeat::config::{
    AuthKey, AuthKeys, AuthMethod, AutoFailback, HaCf, Haresources, Medium, Secret,
};

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn iface() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}"
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_.-]{1,8}){1,3}"
}

fn medium(udpports: Vec<u16>, baud: u32) -> impl Strategy<Value = Medium> {
    let port = proptest::sample::select(udpports);
    prop_oneof![
        (iface(), port.clone()).prop_map(|(iface, port)| Medium::Bcast { iface, port }),
        (iface(), any::<[u8; 4]>(), port.clone()).prop_map(|(iface, p, port)| Medium::Ucast {
            iface,
            peer: IpAddr::V4(Ipv4Addr::from(p)),
            port
        }),
        // ucast6 takes unicast peers only (heartbeat refuses multicast,
        // unspecified and loopback): ULA or link-local ones here.
        (iface(), any::<bool>(), any::<u64>(), port).prop_map(|(iface, ll, p, port)| {
            Medium::Ucast {
                iface,
                peer: IpAddr::V6(Ipv6Addr::from(
                    (if ll { 0xfe80u128 } else { 0xfd77u128 } << 112) | u128::from(p),
                )),
                port,
            }
        }),
        (
            iface(),
            224u8..240,
            any::<[u8; 3]>(),
            1u16..,
            0u8..=4,
            any::<bool>()
        )
            .prop_map(|(iface, a, b, port, ttl, loop_)| Medium::Mcast {
                iface,
                group: IpAddr::V4(Ipv4Addr::new(a, b[0], b[1], b[2])),
                port,
                ttl,
                loop_
            }),
        (iface(), any::<u64>(), 1u16.., 0u8..=4).prop_map(|(iface, g, port, ttl)| Medium::Mcast {
            iface,
            // heartbeat refuses the all-zero group id.
            group: IpAddr::V6(Ipv6Addr::from((0xff12u128 << 112) | u128::from(g | 1))),
            port,
            ttl,
            loop_: false
        }),
        path().prop_map(move |device| Medium::Serial { device, baud }),
    ]
}

fn ms(range: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

prop_compose! {
    fn timings()(keepalive in ms(1..3000))(
        keepalive in Just(keepalive),
        deadtime in ms(keepalive.as_millis() as u64 * 2 + 1..120_000),
        warn_extra in 1u64..200_000,
        init_extra in 0u64..100_000,
        ping_extra in 1u64..100_000,
    ) -> (Duration, Duration, Duration, Duration, Duration) {
        let initdead = deadtime + Duration::from_millis(init_extra);
        let deadping = keepalive * 2 + Duration::from_millis(ping_extra);
        (keepalive, deadtime, Duration::from_millis(warn_extra), initdead, deadping)
    }
}

prop_compose! {
    fn hacf()(
        (keepalive, deadtime, warntime, initdead, deadping) in timings(),
        nodes in proptest::collection::btree_set(name(), 1..5),
        udpports in proptest::collection::vec(1u16.., 1..3),
        baud in proptest::sample::select(wasmbeat::config::hacf::BAUD_RATES),
        auto_failback in proptest::sample::select(vec![AutoFailback::On, AutoFailback::Off, AutoFailback::Legacy]),
        max_rexmit_delay in ms(1..100_000),
    )(
        media in proptest::collection::vec(medium(udpports.clone(), baud), 1..5),
        udpport in proptest::sample::select(udpports),
        keepalive in Just(keepalive), deadtime in Just(deadtime), warntime in Just(warntime),
        initdead in Just(initdead), deadping in Just(deadping),
        nodes in Just(nodes), baud in Just(baud), auto_failback in Just(auto_failback),
        extras in extras(),
        max_rexmit_delay in Just(max_rexmit_delay),
    ) -> HaCf {
        let (ping, ping_groups, respawn, logs, misc, stonith) = extras;
        let (use_logd, logfile, debugfile, logfacility) = logs;
        let (debug, realtime, compression, hopfudge, uuidfrom, msgfmt, hbgenmethod, watchdog) = misc;
        let (stonith, stonith_hosts, other) = stonith;
        HaCf {
            nodes: nodes.into_iter().collect(),
            keepalive, deadtime, warntime, initdead, deadping,
            udpport, baud, media, auto_failback,
            // wasmbeat's own track_link prints back too (when generated
            // with ping nodes, as it is meant to be used).
            track_link: if ping.is_empty() { vec![] } else { vec!["eth0".into()] },
            // and the tie-breaker, IPv4 or IPv6 (`[addr]:port`).
            tiebreaker: match ping.len() {
                0 => None,
                1 => Some("10.0.0.9:7405".parse().unwrap()),
                _ => Some("[fd00::9]:7405".parse().unwrap()),
            },
            ping, ping_groups, ping6: vec![], respawn,
            apiauth: vec!["ipfail uid=hacluster".into()],
            use_logd, logfile, debugfile, logfacility,
            debug, realtime, compression, hopfudge, max_rexmit_delay,
            autojoin: AutoJoin::None, uuidfrom, msgfmt, hbgenmethod,
            stonith, stonith_hosts, watchdog, other,
            written: Default::default(),
        }
    }
}

type Extras = (
    Vec<String>,
    Vec<PingGroup>,
    Vec<Respawn>,
    (Option<bool>, Option<String>, Option<String>, Option<String>),
    (
        u8,
        bool,
        Option<String>,
        u8,
        UuidFrom,
        MsgFmt,
        GenMethod,
        Option<String>,
    ),
    (Vec<Stonith>, Vec<StonithHost>, Vec<OtherDirective>),
);

fn extras() -> impl Strategy<Value = Extras> {
    let ip = any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_string());
    (
        proptest::collection::vec(ip.clone(), 0..3),
        proptest::collection::vec(
            (name(), proptest::collection::vec(ip, 1..3))
                .prop_map(|(name, hosts)| PingGroup { name, hosts }),
            0..2,
        ),
        proptest::collection::vec(
            (
                name(),
                path(),
                any::<bool>(),
                proptest::option::of("[a-z-]{1,6}"),
            )
                .prop_map(|(user, p, failfast, arg)| Respawn {
                    user,
                    command: match arg {
                        Some(a) => format!("{p} {a}"),
                        None => p,
                    },
                    failfast,
                }),
            0..3,
        ),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(path()),
            proptest::option::of(path()),
            proptest::option::of(proptest::sample::select(vec![
                "local0".to_string(),
                "daemon".into(),
                "none".into(),
            ])),
        ),
        (
            any::<u8>(),
            any::<bool>(),
            proptest::option::of(proptest::sample::select(vec![
                "zlib".to_string(),
                "bz2".into(),
            ])),
            any::<u8>(),
            proptest::sample::select(vec![UuidFrom::File, UuidFrom::Nodename]),
            proptest::sample::select(vec![MsgFmt::Classic, MsgFmt::Netstring]),
            proptest::sample::select(vec![GenMethod::File, GenMethod::Time]),
            proptest::option::of(path()),
        ),
        (
            proptest::collection::vec(
                (name(), path()).prop_map(|(kind, config_file)| Stonith {
                    kind,
                    config_file,
                    line: Default::default(),
                }),
                0..2,
            ),
            proptest::collection::vec(
                (
                    prop_oneof![Just("*".to_string()), name()],
                    name(),
                    proptest::collection::vec("[a-z0-9/]{1,6}", 0..3),
                )
                    .prop_map(|(host, kind, params)| StonithHost {
                        host,
                        kind,
                        params,
                        line: Default::default(),
                    }),
                0..2,
            ),
            proptest::collection::vec(
                prop_oneof![
                    (1u64..100).prop_map(|v| OtherDirective {
                        name: "conn_logd_time".into(),
                        value: v.to_string()
                    }),
                    (1u64..1000).prop_map(|v| OtherDirective {
                        name: "memreserve".into(),
                        value: v.to_string()
                    }),
                    any::<bool>().prop_map(|b| OtherDirective {
                        name: "log_badpack".into(),
                        value: if b { "on" } else { "off" }.into()
                    }),
                ],
                0..3,
            ),
        ),
    )
}

fn token() -> impl Strategy<Value = String> {
    let ip = any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_string());
    prop_oneof![
        ip.clone(),
        (ip.clone(), 1u8..=32).prop_map(|(ip, p)| format!("IPaddr::{ip}/{p}")),
        (ip, 1u8..=32, iface()).prop_map(|(ip, p, i)| format!("IPaddr2::{ip}/{p}/{i}")),
        "[A-Za-z][A-Za-z0-9_]{0,8}",
        (
            "[A-Za-z][A-Za-z0-9_]{0,8}",
            proptest::collection::vec("[A-Za-z0-9/_.=-]{1,8}", 1..4)
        )
            .prop_map(|(n, a)| format!("{n}::{}", a.join("::"))),
        "[a-z]{1,8}\\.wasm(::[a-z0-9]{1,4}){0,2}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn ha_cf_print_then_parse_round_trips(cfg in hacf()) {
        let text = cfg.to_string();
        let (mut back, diags) = HaCf::parse(&text);
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
        prop_assert!(errors.is_empty(), "{:?}\n{}", errors, text);
        // The spelling of the printed values is not part of the settings.
        back.written.clear();
        prop_assert_eq!(back, cfg, "{}", text);
    }

    #[test]
    fn haresources_print_then_parse_round_trips(
        groups in proptest::collection::vec((name(), proptest::collection::vec(token(), 1..6)), 1..6)
    ) {
        // Keys must be unique; drop later duplicates.
        let mut seen = std::collections::HashSet::new();
        let text: String = groups
            .iter()
            .filter(|(_, t)| seen.insert(t[0].clone()))
            // Continuation lines, mixed blanks and a comment, as people write them.
            .map(|(n, t)| format!("# group of {n}\n{n}\t{}\n\n", t.join(" \\\n \t ")))
            .collect();
        let (h, diags) = Haresources::parse(&text);
        prop_assert!(diags.is_empty(), "{:?}\n{}", diags, text);
        prop_assert_eq!(h.groups.len(), seen.len());
        let (back, diags) = Haresources::parse(&h.to_string());
        prop_assert!(diags.is_empty(), "{:?}", diags);
        prop_assert_eq!(back, h);
    }

    #[test]
    fn authkeys_print_then_parse_round_trips(
        keys in proptest::collection::btree_map(0u8..16, (0u8..4, "[A-Za-z0-9!@%^&*._-]{1,24}"), 1..5),
        pick in any::<proptest::sample::Index>(),
    ) {
        let keys: Vec<AuthKey> = keys
            .into_iter()
            .enumerate()
            .map(|(i, (index, (m, s)))| AuthKey {
                index,
                method: match m {
                    0 => AuthMethod::Crc,
                    1 => AuthMethod::Md5(Secret::new(s)),
                    2 => AuthMethod::Sha1(Secret::new(s)),
                    _ => AuthMethod::HmacSha256(Secret::new(s)),
                },
                line: i + 2,
            })
            .collect();
        let active = &keys[pick.index(keys.len())];
        let a = AuthKeys { active_index: active.index, method: active.method.clone(), keys: keys.clone() };
        let (back, _) = AuthKeys::parse(&a.to_string()).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        prop_assert_eq!(back, a);
    }
}

//! Differential test against the real heartbeat 3.0.6 (Debian package): for
//! each configuration, heartbeat's own start-up verdict ("Configuration
//! validated" vs "Configuration error") must match whether `wasmbeat`'s
//! loader reports errors. heartbeat runs in namespaces this test creates
//! (network, mount, UTS, PID), with /etc/ha.d, /run and /var/lib/heartbeat
//! bound to a temp dir, and is killed with its PID namespace.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use support::{wait_for, Netns};

use wasmbeat::config::hacf::{Directive, DIRECTIVES, WASMBEAT_DIRECTIVES};
use wasmbeat_lab::heartbeat::HEARTBEAT;

const HA_CF: &str = "deadtime 5\nwarntime 10\ninitdead 15\nbcast eth0\nauto_failback on\nnode node1\nnode node2\nuse_logd yes\n";
const HARESOURCES: &str = "node1 IPaddr::100.200.230.1/100.200.230.6 named httpd mysqld\n";
const AUTHKEYS: &str = "auth 1\n1 sha1 wasmbeat-test-key\n";

/// How wasmbeat's verdict relates to heartbeat's.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Both start, or both refuse.
    Same,
    /// heartbeat starts, wasmbeat refuses on purpose (the reason is why).
    Stricter(&'static str),
    /// heartbeat refuses because this machine lacks a device; wasmbeat's
    /// loader accepts the files and `check` warns (files may be checked
    /// elsewhere than where they run).
    HostState,
    /// A wasmbeat-only directive (`track_link`, `tiebreaker`): heartbeat
    /// refuses it ("Illegal directive"), wasmbeat accepts it and warns
    /// that the file is wasmbeat-only.
    WasmbeatOnly,
}

struct Case {
    what: &'static str,
    ha_cf: &'static str,
    haresources: &'static str,
    authkeys: &'static str,
    authkeys_mode: u32,
    expect: Expect,
}

const fn case(
    what: &'static str,
    ha_cf: &'static str,
    haresources: &'static str,
    authkeys: &'static str,
) -> Case {
    Case {
        what,
        ha_cf,
        haresources,
        authkeys,
        authkeys_mode: 0o600,
        expect: Expect::Same,
    }
}

const CASES: &[Case] = &[
    case("the classic recipe", HA_CF, HARESOURCES, AUTHKEYS),
    case("two VIPs", HA_CF, "node1 IPaddr::100.200.230.1/100.200.230.6 IPaddr::100.200.230.2/100.200.230.6 named httpd mysqld\n", AUTHKEYS),
    case("ms times, commas", "keepalive 200ms\ndeadtime 1500ms\ninitdead 12\nbcast eth0\nauto_failback off\nnode NODE1,node2\n", HARESOURCES, AUTHKEYS),
    case("udpport after media", "bcast eth0\nudpport 700\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("no auto_failback", "bcast eth0\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("nice_failback", "bcast eth0\nnice_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("key rotation", HA_CF, HARESOURCES, "auth 2\n1 sha1 old\n2 sha1 HI!\n3 md5 Hello!\n"),
    Case {
        expect: Expect::Stricter("crc authenticates nothing: on bcast anyone on the segment could forge a takeover (allowed with --allow-crc-on-network)"),
        ..case("crc over bcast", HA_CF, HARESOURCES, "auth 1\n1 crc\n")
    },
    Case {
        expect: Expect::Stricter("a listed crc key would verify during key-rotation windows, so on bcast it is refused like an active one"),
        ..case("listed crc over bcast", HA_CF, HARESOURCES, "auth 2\n1 crc\n2 sha1 HI!\n3 md5 Hello!\n")
    },
    case("unknown directive", "bcast eth0\nauto_failback on\nnode node1 node2\ndeadtme 5\n", HARESOURCES, AUTHKEYS),
    case("bad duration", "bcast eth0\ndeadtime five\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("seconds suffix", "bcast eth0\ndeadtime 30s\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("this node missing", "bcast eth0\nauto_failback on\nnode node2 node3\n", "node2 10.0.0.1\n", AUTHKEYS),
    case("no media", "auto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("deadtime <= 2 keepalive", "keepalive 2\ndeadtime 4\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("initdead < deadtime", "deadtime 30\ninitdead 20\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast ttl 5", "mcast eth0 239.0.0.1 694 5 0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("autojoin any", "bcast eth0\nautojoin any\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("haresources unknown node", HA_CF, "node3 10.0.0.1\n", AUTHKEYS),
    case("auth index with no key", HA_CF, HARESOURCES, "auth 2\n1 sha1 secret\n"),
    case("auth after its key", HA_CF, HARESOURCES, "1 sha1 secret\nauth 1\n"),
    case("crc with a key", HA_CF, HARESOURCES, "auth 1\n1 crc secret\n"),
    case("unknown auth method", HA_CF, HARESOURCES, "auth 1\n1 sha256 secret\n"),
    case("baud twice", "baud 19200\nbaud 19200\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("keepalive twice", "keepalive 1\nkeepalive 2\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("crm off", "bcast eth0\ncrm off\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("node twice", "bcast eth0\nauto_failback on\nnode node1 node2 node1\n", HARESOURCES, AUTHKEYS),
    case("node without resources", HA_CF, "node1\n", AUTHKEYS),
    Case {
        expect: Expect::Stricter("ResourceManager finds groups by grepping the key, so both lines would be acquired and released together"),
        ..case("duplicate group key", HA_CF, "node1 10.0.0.1 a\nnode2 10.0.0.1 b\n", AUTHKEYS)
    },
    Case {
        expect: Expect::Stricter("heartbeat only checks node names at start; the token fails when the group is first acquired"),
        ..case("empty resource argument", HA_CF, "node1 IPaddr:: httpd\n", AUTHKEYS)
    },
    case("warntime 0", "warntime 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("keepalive 0", "keepalive 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("compression foo", "compression foo\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("hopfudge 300", "hopfudge 300\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("debug 300", "debug 300\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("baud 1234", "baud 1234\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("logfacility bogus", "logfacility bogus\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("use_logd maybe", "use_logd maybe\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("realtime maybe", "realtime maybe\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast bad host", "ucast eth0 no.such.host.invalid\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    Case {
        expect: Expect::HostState,
        ..case("bcast on a missing interface", "bcast nosuch0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS)
    },
    case("udpport 0", "udpport 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("keepalive 2 values", "keepalive 1 2\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("node missing value", "node\nnode node1 node2\nbcast eth0\nauto_failback on\n", HARESOURCES, AUTHKEYS),
    case("auto_failback maybe", "bcast eth0\nauto_failback maybe\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("msgfmt bogus", "msgfmt bogus\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("uuidfrom bogus", "uuidfrom bogus\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("hbgenmethod bogus", "hbgenmethod bogus\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("crm bogus", "crm bogus\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("stonith 1 arg", "stonith baytech\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("respawn 1 arg", "respawn hacluster\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("auth twice", HA_CF, HARESOURCES, "auth 1\nauth 1\n1 sha1 x\n"),
    case("key twice", HA_CF, HARESOURCES, "auth 1\n1 sha1 x\n1 sha1 y\n"),
    case("secret with blank", HA_CF, HARESOURCES, "auth 1\n1 sha1 x y\n"),
    case("indented comment", HA_CF, HARESOURCES, "auth 1\n  # hi\n1 sha1 x\n"),
    case("auth 16", HA_CF, HARESOURCES, "auth 16\n16 sha1 x\n"),
    case("ucast extra", "ucast eth0 10.0.0.2 10.0.0.3\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast bad group", "mcast eth0 10.0.0.1 694 1 0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    Case { authkeys_mode: 0o644, ..case("authkeys mode 0644", HA_CF, HARESOURCES, AUTHKEYS) },
    // Debian's heartbeat refuses these two although config.c lists them.
    case("normalpoll", "normalpoll on\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("hbaping", "hbaping fc0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ping6", "ping6 fd77::1\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ping", "ping 10.0.0.254\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("deadping", "deadping 30\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("max_rexmit_delay", "max_rexmit_delay 250\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("uuidfrom nodename", "uuidfrom nodename\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("compression zlib", "compression zlib\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("log_badpack", "log_badpack on\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("syslogmsgfmt", "syslogmsgfmt off\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("cluster name", "cluster linux-ha\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 only", "ucast6 eth0 fe80::2\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 only", "mcast6 eth0 ff12::1:2:3:4 694 1 0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 and bcast", "ucast6 eth0 fd77::2\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    // IPv6 media as heartbeat's ucast6/mcast6 plugins parse them.
    case("ucast6 scoped by its interface", "ucast6 eth0 fe80::2%eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 scoped by another interface", "ucast6 eth0 fe80::2%eth1\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 host name", "ucast6 eth0 localhost\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 multicast peer", "ucast6 eth0 ff02::1\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 loopback peer", "ucast6 eth0 ::1\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("ucast6 IPv4 peer", "ucast6 eth0 10.0.0.2\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 link-local group", "mcast6 eth0 ff02::1:2:3:4 694 1 0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 site-local group", "mcast6 eth0 ff05::1:2 694 1 0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 global group", "mcast6 eth0 ff0e::1:2 694 1 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 interface-local group", "mcast6 eth0 ff01::1:2 694 1 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 zero group id", "mcast6 eth0 ff02:: 694 1 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("mcast6 hops 5", "mcast6 eth0 ff12::1:2:3:4 694 5 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    Case {
        expect: Expect::HostState,
        ..case("ucast6 on a missing interface", "ucast6 nosuch0 fd77::2\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS)
    },
    // Refused by every heartbeat 3.0.6 (its check is inverted), so not in
    // the directive table.
    case("crm_daemon_dir", "crm_daemon_dir /usr/lib/pacemaker\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("max_rexmit_delay 0", "max_rexmit_delay 0\nbcast eth0\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
];

/// The line each directive of heartbeat's table is tried with: its
/// example, except where the example shows another spelling or would
/// write outside the test's directories.
fn directive_line(d: &Directive) -> &'static str {
    match d.name {
        "udp" => "udp eth0",
        "nice_failback" => "nice_failback on",
        "logfile" => "logfile /dev/null",
        "debugfile" => "debugfile /dev/null",
        _ => d.example,
    }
}

/// Where heartbeat's verdict on a directive's example line depends on this
/// machine rather than on the file: wasmbeat's loader accepts it and
/// `check` warns (the stonith example names a configuration file this
/// machine lacks; heartbeat reads it while reading ha.cf).
fn directive_expect(name: &str) -> Expect {
    if name == "stonith" {
        Expect::HostState
    } else {
        Expect::Same
    }
}

/// One case per wasmbeat-only directive: heartbeat refuses the example
/// line, wasmbeat accepts it with a `WasmbeatOnly` warning.
fn wasmbeat_only_cases() -> Vec<Case> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    WASMBEAT_DIRECTIVES
        .iter()
        .map(|d| Case {
            expect: Expect::WasmbeatOnly,
            ..case(
                leak(format!("wasmbeat-only {}", d.name)),
                leak(format!(
                    "{}\nbcast eth0\nauto_failback on\nnode node1 node2\n",
                    d.example
                )),
                HARESOURCES,
                AUTHKEYS,
            )
        })
        .collect()
}

/// One case per directive of heartbeat 3.0.6's table (the spec's §1.2 list,
/// with ping6 in, normalpoll and hbaping out, as Debian builds it): both
/// must accept the example line.
fn directive_cases() -> Vec<Case> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    DIRECTIVES
        .iter()
        .map(|d| Case {
            expect: directive_expect(d.name),
            ..case(
                leak(format!("directive {}", d.name)),
                leak(format!(
                    "{}\nbcast eth0\nauto_failback on\nnode node1 node2\n",
                    directive_line(d)
                )),
                HARESOURCES,
                AUTHKEYS,
            )
        })
        .collect()
}

fn write_dir(root: &Path, c: &Case) {
    let etc = root.join("etc");
    for d in ["etc", "run", "lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(etc.join("ha.cf"), c.ha_cf).unwrap();
    std::fs::write(etc.join("haresources"), c.haresources).unwrap();
    std::fs::write(etc.join("authkeys"), c.authkeys).unwrap();
    std::fs::set_permissions(
        etc.join("authkeys"),
        std::fs::Permissions::from_mode(c.authkeys_mode),
    )
    .unwrap();
}

/// heartbeat's verdict: Some(true) = it starts, Some(false) = it refuses.
fn heartbeat_accepts(root: &Path) -> Option<bool> {
    let ns = Netns::new("hbcfg");
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ]);
    ns.ip(&["addr", "add", "10.77.31.1/24", "brd", "+", "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["link", "set", "eth1", "up"]);
    ns.spawn(wasmbeat_lab::heartbeat::node_command(
        root,
        "node1",
        Some(&root.join("out")),
    ));
    let out = root.join("out");
    // Dropping `ns` SIGKILLs unshare, whose --kill-child takes heartbeat's
    // whole PID namespace with it. heartbeat prints "Configuration
    // validated" after ha.cf and authkeys, and only then reads haresources,
    // so a validated start counts once no error followed for a while.
    let mut validated_at = None;
    wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
        let log = std::fs::read_to_string(&out).unwrap_or_default();
        if log.contains("Configuration error") || log.contains("not started") {
            return Some(false);
        }
        if log.contains("Configuration validated") {
            let at = *validated_at.get_or_insert_with(std::time::Instant::now);
            if at.elapsed() > Duration::from_secs(2) {
                return Some(true);
            }
        }
        None
    })
}

#[test]
fn wasmbeat_accepts_and_refuses_what_heartbeat_does() {
    if !support::lab_available("wasmbeat_accepts_and_refuses_what_heartbeat_does") {
        return;
    }
    if !Path::new(HEARTBEAT).exists() {
        eprintln!("SKIP: {HEARTBEAT} not installed (Debian package heartbeat)");
        return;
    }
    // heartbeat idles after start-up, so cases run side by side, each in
    // its own namespaces.
    let all: Vec<&Case> = CASES
        .iter()
        .chain(directive_cases().leak().iter())
        .chain(wasmbeat_only_cases().leak().iter())
        .collect();
    let verdicts: Vec<(String, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(all.len().div_ceil(8))
            .map(|chunk| s.spawn(move || chunk.iter().map(|c| judge(c)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for (line, _) in &verdicts {
        println!("{line}");
    }
    let disagreements: Vec<String> = verdicts.into_iter().filter_map(|(_, d)| d).collect();
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Run one case through both; returns the report line and a disagreement, if any.
fn judge(c: &Case) -> (String, Option<String>) {
    let t = tempfile::tempdir().unwrap();
    write_dir(t.path(), c);
    let ours = wasmbeat::config::Config::load(&t.path().join("etc"), Some("node1"));
    // Agents are resolved separately from what heartbeat checks at
    // start-up (it only finds scripts at failover), so judge the rest.
    let ours_ok = match &ours {
        Ok(_) => true,
        Err(d) => d
            .iter()
            .filter(|d| d.is_error())
            .all(|d| d.code == wasmbeat::config::Code::UnresolvedAgent),
    };
    let theirs = heartbeat_accepts(t.path());
    let log = std::fs::read_to_string(t.path().join("out")).unwrap_or_default();
    let errs: Vec<String> = match &ours {
        Ok(_) => vec![],
        Err(d) => d
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect(),
    };
    let line = format!(
        "{:<30} heartbeat: {:<8} wasmbeat: {}",
        c.what,
        match theirs {
            Some(true) => "starts",
            Some(false) => "refuses",
            None => "unclear",
        },
        if ours_ok {
            "accepts".to_string()
        } else {
            format!("refuses: {}", errs.join(" | "))
        }
    );
    let agree = match c.expect {
        Expect::Same => theirs == Some(ours_ok),
        Expect::Stricter(_) => theirs == Some(true) && !ours_ok,
        Expect::HostState => {
            let report = wasmbeat::config::check::check(&t.path().join("etc"), Some("node1"));
            theirs == Some(false)
                && ours_ok
                && report
                    .loaded
                    .diagnostics
                    .iter()
                    .any(|d| d.code == wasmbeat::config::Code::MissingDevice)
        }
        Expect::WasmbeatOnly => {
            let report = wasmbeat::config::check::check(&t.path().join("etc"), Some("node1"));
            theirs == Some(false)
                && ours_ok
                && report
                    .loaded
                    .diagnostics
                    .iter()
                    .any(|d| d.code == wasmbeat::config::Code::WasmbeatOnly)
        }
    };
    if !agree {
        let hb_errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        return (line, Some(format!(
                "{}: heartbeat {theirs:?}, wasmbeat ok={ours_ok}\n  heartbeat said: {hb_errors:?}\n  wasmbeat said: {errs:?}",
                c.what
            )));
    }
    (line, None)
}

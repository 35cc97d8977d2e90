//! Differential test against the real heartbeat 3.0.6 (Debian package): for
//! each configuration, heartbeat's own start-up verdict ("Configuration
//! validated" vs "Configuration error") must match whether `wasmbeat`'s
//! loader reports errors. heartbeat runs in namespaces this test creates
//! (network, mount, UTS, PID), with /etc/ha.d, /run and /var/lib/heartbeat
//! bound to a temp dir, and is killed with its PID namespace.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{wait_for, Netns};

const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";

const HA_CF: &str = "deadtime 5\nwarntime 10\ninitdead 15\nbcast eth0\nauto_failback on\nnode node1\nnode node2\nuse_logd yes\n";
const HARESOURCES: &str = "node1 IPaddr::100.200.230.1/100.200.230.6 named httpd mysqld\n";
const AUTHKEYS: &str = "auth 1\n1 sha1 wasmbeat-test-key\n";

struct Case {
    what: &'static str,
    ha_cf: &'static str,
    haresources: &'static str,
    authkeys: &'static str,
    authkeys_mode: u32,
}

const fn case(what: &'static str, ha_cf: &'static str, haresources: &'static str, authkeys: &'static str) -> Case {
    Case { what, ha_cf, haresources, authkeys, authkeys_mode: 0o600 }
}

const CASES: &[Case] = &[
    case("the classic recipe", HA_CF, HARESOURCES, AUTHKEYS),
    case("two VIPs", HA_CF, "node1 IPaddr::100.200.230.1/100.200.230.6 IPaddr::100.200.230.2/100.200.230.6 named httpd mysqld\n", AUTHKEYS),
    case("ms times, commas", "keepalive 200ms\ndeadtime 1500ms\ninitdead 12\nbcast eth0\nauto_failback off\nnode NODE1,node2\n", HARESOURCES, AUTHKEYS),
    case("udpport after media", "bcast eth0\nudpport 700\nauto_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("no auto_failback", "bcast eth0\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("nice_failback", "bcast eth0\nnice_failback on\nnode node1 node2\n", HARESOURCES, AUTHKEYS),
    case("key rotation", HA_CF, HARESOURCES, "auth 2\n1 crc\n2 sha1 HI!\n3 md5 Hello!\n"),
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
    Case { authkeys_mode: 0o644, ..case("authkeys mode 0644", HA_CF, HARESOURCES, AUTHKEYS) },
];

fn write_dir(root: &Path, c: &Case) {
    let etc = root.join("etc");
    for d in ["etc", "run", "lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(etc.join("ha.cf"), c.ha_cf).unwrap();
    std::fs::write(etc.join("haresources"), c.haresources).unwrap();
    std::fs::write(etc.join("authkeys"), c.authkeys).unwrap();
    std::fs::set_permissions(etc.join("authkeys"), std::fs::Permissions::from_mode(c.authkeys_mode)).unwrap();
}

/// heartbeat's verdict: Some(true) = it starts, Some(false) = it refuses.
fn heartbeat_accepts(root: &Path) -> Option<bool> {
    let ns = Netns::new("hbcfg");
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    ns.ip(&["addr", "add", "10.77.31.1/24", "brd", "+", "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["link", "set", "eth1", "up"]);
    let r = root.display();
    let script = format!(
        "mount --bind {r}/run /run && mkdir -p /run/heartbeat/ccm /run/heartbeat/crm && \
         mount --bind {r}/lib /var/lib/heartbeat && mount --bind {r}/etc /etc/ha.d && \
         hostname node1 && exec {HEARTBEAT} -f >{r}/out 2>&1"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-u", "-p", "--fork", "--kill-child", "--mount-proc", "sh", "-c", &script]);
    ns.spawn(cmd);
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
    let mut disagreements = Vec::new();
    for c in CASES {
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
            Err(d) => d.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect(),
        };
        println!(
            "{:<28} heartbeat: {:<8} wasmbeat: {}",
            c.what,
            match theirs {
                Some(true) => "starts",
                Some(false) => "refuses",
                None => "unclear",
            },
            if ours_ok { "accepts".to_string() } else { format!("refuses: {}", errs.join(" | ")) }
        );
        if theirs != Some(ours_ok) {
            let hb_errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
            disagreements.push(format!("{}: heartbeat {theirs:?}, wasmbeat ok={ours_ok}\n  heartbeat said: {hb_errors:?}\n  wasmbeat said: {errs:?}", c.what));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

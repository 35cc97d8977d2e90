//! Malformed inputs: each yields the expected diagnostic, at the right line,
//! and every problem of a run is reported together.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wasmbeat::config::{Code, Config, Diagnostic, Severity};

const HA_CF: &str = "deadtime 5\nwarntime 10\ninitdead 15\nbcast eth0\nauto_failback on\nnode node1\nnode node2\nuse_logd yes\n";
const HARESOURCES: &str = "node1 IPaddr::100.200.230.1/100.200.230.6 named httpd mysqld\n";
const AUTHKEYS: &str = "auth 1\n1 sha1 wasmbeat-test-key\n";

/// A config dir with the recipe, one file replaced.
fn dir_with(file: &str, content: &str, mode: u32) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("ha.cf", HA_CF),
        ("haresources", HARESOURCES),
        ("authkeys", AUTHKEYS),
    ] {
        let text = if name == file { content } else { text };
        std::fs::write(t.path().join(name), text).unwrap();
    }
    let mode = if file == "authkeys" { mode } else { 0o600 };
    std::fs::set_permissions(
        t.path().join("authkeys"),
        std::fs::Permissions::from_mode(mode),
    )
    .unwrap();
    t
}

fn load(dir: &Path) -> (bool, Vec<Diagnostic>) {
    match Config::load(dir, Some("node1")) {
        Ok((_, w)) => (true, w),
        Err(d) => (false, d),
    }
}

struct Case {
    what: &'static str,
    file: &'static str,
    content: &'static str,
    mode: u32,
    code: Code,
    severity: Severity,
    line: Option<usize>,
    contains: &'static str,
}

const fn case(
    what: &'static str,
    file: &'static str,
    content: &'static str,
    code: Code,
    severity: Severity,
    line: Option<usize>,
    contains: &'static str,
) -> Case {
    Case {
        what,
        file,
        content,
        mode: 0o600,
        code,
        severity,
        line,
        contains,
    }
}

use Severity::{Error, Warning};

const CASES: &[Case] = &[
    case("unknown directive", "ha.cf", "node node1 node2\nbcast eth0\nauto_failback on\ndeadtme 5\n",
        Code::UnknownDirective, Error, Some(4), "ha.cf:4:1: unknown directive \"deadtme\" (heartbeat: \"Illegal directive\"); did you mean \"deadtime\"?"),
    case("bad duration", "ha.cf", "node node1 node2\nbcast eth0\ndeadtime five\nauto_failback on\n",
        Code::BadDuration, Error, Some(3),
        "ha.cf:3:10: deadtime \"five\" is not a duration; write e.g. \"deadtime 5\" or \"deadtime 500ms\""),
    case("seconds suffix", "ha.cf", "node node1 node2\nbcast eth0\nkeepalive 2s\nauto_failback on\n",
        Code::BadDuration, Error, Some(3), "heartbeat has no \"s\" suffix"),
    case("node missing", "ha.cf", "bcast eth0\nauto_failback on\n",
        Code::NoNodes, Error, None, "no \"node\" directive"),
    case("this node missing", "ha.cf", "node node2 node3\nbcast eth0\nauto_failback on\n",
        Code::LocalNodeMissing, Error, None, "this node \"node1\" is not among the nodes"),
    case("no media", "ha.cf", "node node1 node2\nauto_failback on\n",
        Code::NoMedia, Error, None, "no heartbeat medium"),
    case("media before udpport", "ha.cf", "node node1 node2\nbcast eth0\nudpport 700\nauto_failback on\n",
        Code::OrderAfterMedia, Warning, Some(3), "move \"udpport\" above the bcast/ucast lines"),
    case("deadtime vs keepalive", "ha.cf", "node node1 node2\nbcast eth0\nkeepalive 2\ndeadtime 4\nauto_failback on\n",
        Code::Timing, Error, Some(4), "deadtime 4 must be more than twice keepalive 2"),
    case("initdead vs deadtime", "ha.cf", "node node1 node2\nbcast eth0\ndeadtime 30\ninitdead 20\nauto_failback on\n",
        Code::Timing, Error, Some(4), "initdead 20 must be at least deadtime 30"),
    case("crm on", "ha.cf", "node node1 node2\nbcast eth0\ncrm respawn\nauto_failback on\n",
        Code::CrmEnabled, Error, Some(3), "wasmbeat runs haresources (v1) mode only"),
    case("bad auto_failback", "ha.cf", "node node1 node2\nbcast eth0\nauto_failback maybe\n",
        Code::BadValue, Error, Some(3), "auto_failback \"maybe\" is not on, off or legacy"),
    case("mcast missing fields", "ha.cf", "node node1 node2\nmcast eth0 239.0.0.1 694\nauto_failback on\n",
        Code::BadMedium, Error, Some(2), "mcast needs 5 values"),
    case("missing auto_failback", "ha.cf", "node node1 node2\nbcast eth0\n",
        Code::LegacyFailback, Warning, None, "legacy"),
    Case { mode: 0o644, ..case("authkeys mode 0644", "authkeys", AUTHKEYS,
        Code::AuthPermissions, Error, None, "run: chmod 600") },
    case("auth index with no key", "authkeys", "auth 2\n1 sha1 secret\n",
        Code::AuthNoActive, Error, Some(1), "auth 2 selects key 2, but no key 2 follows it"),
    case("auth missing", "authkeys", "1 sha1 secret\n",
        Code::AuthNoActive, Error, None, "no \"auth N\" line"),
    case("unknown auth method", "authkeys", "auth 1\n1 sha256 secret\n",
        Code::AuthMethod, Error, Some(2), "unknown authentication method \"sha256\""),
    case("crc over bcast", "authkeys", "# lab\nauth 1\n1 crc\n",
        Code::CrcOnNetwork, Error, Some(3),
        "authkeys:3: auth 1 selects crc, which authenticates nothing: anyone who can reach the bcast medium in ha.cf can forge any message (takeover, standby); write \"1 sha1 <secret>\""),
    case("listed crc over bcast", "authkeys", "auth 2\n1 crc\n2 sha1 secret\n",
        Code::CrcOnNetwork, Error, Some(2), "key 1 is crc (it would verify during key rotations)"),
    case("haresources unknown node", "haresources", "node1 10.0.0.1\nnode3 10.0.0.2 httpd\n",
        Code::UnknownNode, Error, Some(2), "prefers node \"node3\", which is not a node in ha.cf"),
    case("empty resource argument", "haresources", "node1 IPaddr:: httpd\n",
        Code::BadToken, Error, Some(1), "haresources:1:7: resource token \"IPaddr::\" has an empty argument"),
    case("no agent name", "haresources", "node1 ::10.0.0.1 httpd\n",
        Code::BadToken, Error, Some(1), "has no agent name"),
    case("dangling continuation", "haresources", "node1 10.0.0.1 \\\n",
        Code::DanglingContinuation, Error, Some(1), "nothing follows"),
    case("blank after backslash", "haresources", "node1 10.0.0.1 \\ \nhttpd\n",
        Code::BadToken, Error, Some(1), "must be the very last character"),
    case("group without resources", "haresources", "node1\n",
        Code::EmptyGroup, Warning, Some(1), "no resources, so it is ignored"),
    case("node without value", "ha.cf", "node\nnode node1 node2\nbcast eth0\nauto_failback on\n",
        Code::MissingValue, Warning, Some(1), "node has no value, so the line does nothing"),
    case("bad logfacility", "ha.cf", "node node1 node2\nbcast eth0\nlogfacility bogus\nauto_failback on\n",
        Code::BadValue, Error, Some(3), "logfacility \"bogus\" is not a syslog facility"),
    case("unresolved agent", "haresources", "node1 10.0.0.1\nnode2 10.0.0.2 \\\n  nosuchagent::x\n",
        Code::UnresolvedAgent, Error, Some(3), "resource.d/nosuchagent.wasm"),
    case("missing wasm file", "haresources", "node1 10.0.0.1 mine.wasm::a\n",
        Code::UnresolvedAgent, Error, Some(1), "resource.d/mine.wasm does not exist"),
    case("IPaddr2 bogus netmask", "haresources", "node1 IPaddr2::100.200.230.1/100.200.230.6\n",
        Code::BadIpaddrArg, Error, Some(1), "IPaddr2 refuses to start it"),
    case("IPaddr bad address", "haresources", "node1 IPaddr::10.0.0.300/24\n",
        Code::BadIpaddrArg, Error, Some(1), "\"10.0.0.300\" is not an IP address"),
    case("duplicate group key", "haresources", "node1 10.0.0.1 httpd\nnode2 10.0.0.1 named\n",
        Code::DuplicateKey, Error, Some(2), "already starts the group on line 1"),
];

#[test]
fn each_malformed_input_gives_its_diagnostic() {
    let mut failures = Vec::new();
    for c in CASES {
        let dir = dir_with(c.file, c.content, c.mode);
        let (ok, diags) = load(dir.path());
        let hit = diags.iter().find(|d| {
            d.code == c.code && d.file == c.file && d.line == c.line && d.severity == c.severity
        });
        match hit {
            Some(d) if d.to_string().contains(c.contains) => {
                if ok == (c.severity == Error) {
                    failures.push(format!(
                        "{}: load ok={ok} but severity {:?}",
                        c.what, c.severity
                    ));
                }
            }
            Some(d) => failures.push(format!(
                "{}: message {:?} lacks {:?}",
                c.what,
                d.to_string(),
                c.contains
            )),
            None => failures.push(format!(
                "{}: no {:?} at {}:{:?} in {diags:#?}",
                c.what, c.code, c.file, c.line
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_are_reported_in_one_run() {
    let t = dir_with(
        "ha.cf",
        "node node1 node2\nbcast eth0\ndeadtime five\nkeepalive x\nfoo bar\nauto_failback on\n",
        0o600,
    );
    std::fs::write(
        t.path().join("haresources"),
        "node1 10.0.0.1\nnode9 IPaddr:: httpd\n",
    )
    .unwrap();
    std::fs::write(t.path().join("authkeys"), "auth 3\n1 sha1 x\n").unwrap();
    std::fs::set_permissions(
        t.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let (ok, d) = load(t.path());
    assert!(!ok);
    let got: Vec<(Code, &str, Option<usize>)> = d
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code, d.file.as_str(), d.line))
        .collect();
    for want in [
        (Code::BadDuration, "ha.cf", Some(3)),
        (Code::BadDuration, "ha.cf", Some(4)),
        (Code::UnknownDirective, "ha.cf", Some(5)),
        (Code::BadToken, "haresources", Some(2)),
        (Code::AuthPermissions, "authkeys", None),
        (Code::AuthNoActive, "authkeys", Some(1)),
    ] {
        assert!(got.contains(&want), "missing {want:?} in {got:?}");
    }
}

#[test]
fn node_names_are_lowercased_everywhere() {
    let t = dir_with(
        "ha.cf",
        "node NODE1 Node2\nbcast eth0\nauto_failback on\n",
        0o600,
    );
    std::fs::write(t.path().join("haresources"), "NoDe1 10.0.0.1\n").unwrap();
    let (cfg, _) = Config::load(t.path(), Some("Node1")).unwrap();
    assert_eq!(cfg.local_node, "node1");
    assert_eq!(cfg.resources.groups[0].preferred_node, "node1");
}

#[test]
fn nodeinfo_overrides_uname_like_heartbeat() {
    let t = dir_with("ha.cf", HA_CF, 0o600);
    std::fs::write(t.path().join("nodeinfo"), "Node2\n").unwrap();
    let (cfg, _) = Config::load(t.path(), None).unwrap();
    assert_eq!(cfg.local_node, "node2");
}

#[test]
fn wasm_agents_resolve_from_resource_d_or_absolute_paths() {
    let t = dir_with(
        "haresources",
        "node1 10.0.0.1 mine::a::b other.wasm\nnode2 ABS::x\n",
        0o600,
    );
    std::fs::create_dir(t.path().join("resource.d")).unwrap();
    std::fs::write(t.path().join("resource.d/mine.wasm"), b"\0asm").unwrap();
    std::fs::write(t.path().join("resource.d/other.wasm"), b"\0asm").unwrap();
    let abs = t.path().join("elsewhere.wasm");
    std::fs::write(&abs, b"\0asm").unwrap();
    let hr = format!(
        "node1 10.0.0.1 mine::a::b other.wasm\nnode2 {}::x\n",
        abs.display()
    );
    std::fs::write(t.path().join("haresources"), hr).unwrap();
    let (cfg, _) = Config::load(t.path(), Some("node1")).unwrap();
    let report = wasmbeat::config::check::check(t.path(), Some("node1"));
    assert!(report.ok());
    let r = &report.groups[0][1];
    assert_eq!(
        r.params,
        vec![
            ("arg1".to_string(), "a".to_string()),
            ("arg2".to_string(), "b".to_string())
        ]
    );
    assert!(matches!(
        r.resolution,
        Some(wasmbeat::config::Resolution::Wasm { .. })
    ));
    assert_eq!(cfg.resources.groups.len(), 2);
}

/// crc is refused on UDP media (above) but is what a serial-only cluster
/// may use, and the administrator may allow it on a dedicated network.
#[test]
fn crc_is_accepted_on_serial_links_or_when_allowed() {
    use wasmbeat::config::LoadOptions;
    let crc = "auth 1\n1 crc\n";
    let serial = dir_with(
        "ha.cf",
        "node node1 node2\nserial /dev/ttyS0\nauto_failback on\n",
        0o600,
    );
    std::fs::write(serial.path().join("authkeys"), crc).unwrap();
    let (ok, diags) = load(serial.path());
    assert!(ok, "{diags:#?}");
    assert!(
        diags.iter().all(|d| d.code != Code::CrcOnNetwork),
        "{diags:#?}"
    );
    let bcast = dir_with("authkeys", crc, 0o600);
    assert!(!load(bcast.path()).0, "refused by default");
    let allowed = LoadOptions {
        allow_crc_on_network: true,
    };
    let (_, warnings) = Config::load_with(bcast.path(), Some("node1"), allowed)
        .unwrap_or_else(|d| panic!("allowed: {d:#?}"));
    let w = warnings
        .iter()
        .find(|d| d.code == Code::CrcOnNetwork)
        .expect("still warned");
    assert_eq!((w.severity, w.line), (Severity::Warning, Some(2)));
    assert!(
        w.to_string().contains("allowed by --allow-crc-on-network"),
        "{w}"
    );
}

//! Golden tests: heartbeat's own sample lines and the classic recipe parse to
//! the expected structures. Expected JSON lives next to the inputs in
//! `tests/data`; regenerate with `WASMBEAT_BLESS=1 cargo test --test config_golden`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmbeat::config::{
    check, AgentRef, AuthKeys, AuthMethod, AutoFailback, Config, HaCf, Haresources, Medium,
    Severity,
};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn golden(name: &str, actual: &serde_json::Value) {
    let path = data(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("WASMBEAT_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with WASMBEAT_BLESS=1 to create)",
            path.display()
        )
    });
    assert_eq!(text, expected, "golden file {} differs", path.display());
}

/// Copy a directory of test data into a temp dir with heartbeat's required
/// authkeys mode (git does not keep 0600).
pub fn staged(dir: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(data(dir)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
    }
    let ak = t.path().join("authkeys");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
    t
}

#[test]
fn every_sample_ha_cf_line_parses_alone_and_together() {
    let text = std::fs::read_to_string(data("heartbeat-samples/ha.cf")).unwrap();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let (_, diags) = HaCf::parse(line);
        // Alone, a line lacks nodes and media (whole-file errors without a
        // line); the line itself must raise no error.
        let line_errors: Vec<_> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error && d.line.is_some())
            .collect();
        assert!(
            line_errors.is_empty(),
            "sample line {} {line:?}: {line_errors:?}",
            i + 1
        );
    }
    let (ha, diags) = HaCf::parse(&text);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ha.nodes, vec!["ken3", "kathy"]);
    assert_eq!(ha.keepalive, Duration::from_secs(2));
    assert_eq!(ha.deadtime, Duration::from_secs(30));
    assert_eq!(ha.initdead, Duration::from_secs(120));
    // bcast eth0 / eth1 eth2 / le0 / le1 le2 = 6, 4 serial, 1 mcast, 1 ucast.
    assert_eq!(ha.media.len(), 12);
    assert!(ha.media.contains(&Medium::Serial {
        device: "/dev/cua/a".into(),
        baud: 19200
    }));
    // Everything wasmbeat does not implement is reported, never ignored
    // (`respawn userid /path/name/to/run`; the ipfail line is honoured,
    // as are the ping nodes, the watchdog and STONITH, whose device types
    // `check` resolves, refusing cluster-glue plugins such as baytech).
    for name in ["respawn", "apiauth"] {
        assert!(
            diags
                .iter()
                .any(|d| d.text == name && d.severity == Severity::Warning),
            "no warning for {name}"
        );
    }
    for name in [
        "ping",
        "ping6",
        "ping_group",
        "deadping",
        "watchdog",
        "stonith",
        "stonith_host",
    ] {
        assert!(
            !diags.iter().any(|d| d.text == name),
            "{name} is honoured: {diags:?}"
        );
    }
    assert!(ha.ipfail());
    assert_eq!(ha.ping_nodes().len(), 3);
    golden(
        "heartbeat-samples/ha.cf.golden.json",
        &serde_json::to_value(&ha).unwrap(),
    );
}

#[test]
fn every_sample_haresources_line_parses() {
    let text = std::fs::read_to_string(data("heartbeat-samples/haresources")).unwrap();
    let mut all = Vec::new();
    // The sample's lines are alternatives (several start with the same key),
    // so each is its own file.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (h, diags) = Haresources::parse(line);
        assert!(diags.is_empty(), "{line:?}: {diags:?}");
        assert_eq!(h.groups.len(), 1);
        all.push(serde_json::to_value(&h.groups[0]).unwrap());
    }
    assert_eq!(all.len(), 5);
    golden(
        "heartbeat-samples/haresources.golden.json",
        &serde_json::Value::Array(all),
    );
}

#[test]
fn sample_authkeys_parses() {
    let text = std::fs::read_to_string(data("heartbeat-samples/authkeys")).unwrap();
    let (a, diags) = AuthKeys::parse(&text).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(a.active_index, 1);
    assert_eq!(a.method, AuthMethod::Crc);
    assert_eq!(a.keys.len(), 3);
}

#[test]
fn recipe_parses_to_the_expected_structures_and_passes() {
    let dir = staged("recipe");
    let (cfg, warnings) = Config::load(dir.path(), Some("node2")).unwrap_or_else(|d| {
        panic!("recipe must pass: {d:#?}");
    });
    assert_eq!(cfg.local_node, "node2");
    assert_eq!(cfg.ha.nodes, vec!["node1", "node2"]);
    assert_eq!(cfg.ha.deadtime, Duration::from_secs(5));
    assert_eq!(cfg.ha.warntime, Duration::from_secs(10));
    assert_eq!(cfg.ha.initdead, Duration::from_secs(15));
    assert_eq!(cfg.ha.keepalive, Duration::from_secs(1));
    assert_eq!(cfg.ha.auto_failback, AutoFailback::On);
    assert_eq!(cfg.ha.use_logd, Some(true));
    assert_eq!(
        cfg.ha.media,
        vec![Medium::Bcast {
            iface: "eth0".into(),
            port: 694
        }]
    );
    let g = &cfg.resources.groups;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].preferred_node, "node1");
    assert_eq!(g[0].key, "IPaddr::100.200.230.1/100.200.230.6");
    let names: Vec<String> = g[0]
        .resources
        .iter()
        .map(|r| r.agent.display_name())
        .collect();
    assert_eq!(names, ["IPaddr", "named", "httpd", "mysqld"]);
    assert_eq!(g[0].resources[0].args, ["100.200.230.1/100.200.230.6"]);
    assert_eq!(cfg.auth.active_index, 1);
    assert!(matches!(cfg.auth.method, AuthMethod::Sha1(_)));

    // Warnings, never errors: warntime >= deadtime and the netmask pitfall.
    let codes: Vec<_> = warnings
        .iter()
        .map(|d| (d.code, d.file.as_str(), d.line))
        .collect();
    use wasmbeat::config::Code;
    assert!(
        codes.contains(&(Code::Timing, "ha.cf", Some(2))),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(Code::SuspiciousIpaddrArg, "haresources", Some(1))),
        "{codes:?}"
    );
    let ip = warnings
        .iter()
        .find(|d| d.code == Code::SuspiciousIpaddrArg)
        .unwrap();
    assert!(ip.message.contains("as a netmask"), "{ip}");
    assert!(ip.message.contains("not a valid netmask"), "{ip}");
    assert!(
        ip.hint
            .as_deref()
            .unwrap()
            .contains("IPaddr::100.200.230.1/24"),
        "{ip}"
    );

    let report = check::check(dir.path(), Some("node1"));
    assert!(report.ok());
    let mut json = report.to_json();
    json["config_dir"] = serde_json::Value::Null;
    // Whether eth0 exists depends on the machine running the test.
    json["diagnostics"]
        .as_array_mut()
        .unwrap()
        .retain(|d| d["code"] != "missing-device");
    golden("recipe/check.golden.json", &json);
}

#[test]
fn recipe_two_vip_variant_passes() {
    let dir = staged("recipe");
    std::fs::copy(
        dir.path().join("haresources.two-vips"),
        dir.path().join("haresources"),
    )
    .unwrap();
    let (cfg, warnings) = Config::load(dir.path(), Some("node1")).unwrap();
    let r = &cfg.resources.groups[0].resources;
    assert_eq!(r.len(), 5);
    assert_eq!(r[1].agent, AgentRef::Name("IPaddr".into()));
    assert_eq!(r[1].args, ["100.200.230.2/100.200.230.6"]);
    let ip_warnings = warnings
        .iter()
        .filter(|d| d.code == wasmbeat::config::Code::SuspiciousIpaddrArg)
        .count();
    assert_eq!(ip_warnings, 2);
}

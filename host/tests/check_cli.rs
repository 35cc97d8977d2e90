//! The built `wasmbeat check` binary on the recipe and on a broken directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn recipe_dir() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/recipe");
    let t = tempfile::tempdir().unwrap();
    for f in ["ha.cf", "haresources", "authkeys"] {
        std::fs::copy(src.join(f), t.path().join(f)).unwrap();
    }
    std::fs::set_permissions(
        t.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    t
}

fn run(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .arg("check")
        .arg("--config-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn recipe_passes_with_a_summary_and_warnings() {
    let d = recipe_dir();
    let (code, out, err) = run(d.path(), &["--node", "node1"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for want in [
        "nodes:         node1, node2",
        "this node:     node1",
        "keepalive 1s, warntime 10s, deadtime 5s, initdead 15s",
        "bcast eth0 (UDP port 694)",
        "auth:          key 1 (sha1)",
        "1. IPaddr [built-in] ip=100.200.230.1 cidr_netmask=31",
        "2. named [built-in]",
        "ha.cf:2:10: warning: warntime 10 is not less than deadtime 5",
        "haresources:1:7: warning: IPaddr argument \"100.200.230.1/100.200.230.6\": heartbeat reads the second field 100.200.230.6 as a netmask",
        "OK: this configuration would run",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn json_output_is_machine_readable() {
    let d = recipe_dir();
    let mut ha = std::fs::read_to_string(d.path().join("ha.cf")).unwrap();
    ha.push_str(
        "stonith_host * http-switch base=http://10.9.0.254:8080/pdu token=stonith-password\n",
    );
    std::fs::write(d.path().join("ha.cf"), ha).unwrap();
    let (code, out, _) = run(d.path(), &["--node", "node2", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["local_node"], "node2");
    assert_eq!(v["ha_cf"]["deadtime_ms"], 5000);
    assert_eq!(
        v["groups"][0]["resources"][0]["params"]["ip"],
        "100.200.230.1"
    );
    assert_eq!(v["auth"]["method"], "sha1");
    assert!(
        !out.contains("wasmbeat-test-key"),
        "the secret must not be printed"
    );
    assert!(
        !out.contains("stonith-password"),
        "the fence token must not be printed"
    );
    assert!(
        v["fencing"][0]
            .as_str()
            .unwrap()
            .contains("http-switch [built-in] base=http://10.9.0.254:8080/pdu token=(hidden)"),
        "{}",
        v["fencing"]
    );
}

#[test]
fn fence_devices_are_listed_and_unusable_ones_refused_at_their_line() {
    let d = recipe_dir();
    let base = std::fs::read_to_string(d.path().join("ha.cf")).unwrap();
    let lines = base.lines().count();
    std::fs::write(
        d.path().join("ha.cf"),
        format!("{base}stonith_host * http-switch base=http://10.9.0.254:8080/pdu\nstonith_host node1 meatware node2\nstonith_host node2 meatware node1\n"),
    )
    .unwrap();
    let (code, out, err) = run(d.path(), &["--node", "node1", "--no-grants"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(&format!(
            "fencing:       ha.cf:{} stonith_host * http-switch [built-in] base=http://10.9.0.254:8080/pdu; may reach: http://10.9.0.254:8080/pdu",
            lines + 1
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("ha.cf:{} stonith_host node1 meatware", lines + 2)),
        "{out}"
    );
    assert!(
        !out.contains("meatware node1"),
        "node2's device is not this node's: {out}"
    );

    // An unknown device type, a .wasm agent without an HTTP grant, an https
    // switch, and (with the agents loaded) a parameter the agent lacks.
    std::fs::create_dir(d.path().join("resource.d")).unwrap();
    std::fs::copy(
        Path::new(env!("WASMBEAT_AGENTS_DIR")).join("fence_http.wasm"),
        d.path().join("resource.d/acme.wasm"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("ha.cf"),
        format!("{base}stonith_host * nosuchswitch 10.0.0.3 admin pw\nstonith_host * acme base=http://10.9.0.254/pdu\nstonith_host * http-switch base=https://10.9.0.254/pdu\nstonith_host * http-switch base=http://10.9.0.254/pdu colour=red\n"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap().to_string();
    let (code, out, _) = run(d.path(), &["--node", "node1", "--cache-dir", &cache]);
    assert_ne!(code, 0, "{out}");
    for want in [
        format!("ha.cf:{}: stonith_host * nosuchswitch: no fence agent named \"nosuchswitch\"", lines + 1),
        "or a cluster-glue plugin (install cluster-glue; `stonith -L` lists them)".to_string(),
        format!("ha.cf:{}: stonith_host * acme: the fence agent acme has no HTTP grant", lines + 2),
        "add to agents.toml: [fence.acme] http = [".to_string(),
        format!("ha.cf:{}: stonith_host * http-switch: https://10.9.0.254/pdu: https:// is not implemented yet", lines + 3),
        format!("ha.cf:{}: stonith_host * http-switch: invalid arguments: http-switch has no parameter colour", lines + 4),
        "FAILED: 4 error(s)".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    // Granted in agents.toml, the component is accepted.
    std::fs::write(
        d.path().join("agents.toml"),
        "[fence.acme]\nhttp = [\"http://10.9.0.254/pdu\"]\n",
    )
    .unwrap();
    // heartbeat's own cluster-glue plugins run as heartbeat runs them.
    let glue = wasmbeat::fence::cluster_glue::plugin_path("baytech").is_some();
    std::fs::write(
        d.path().join("ha.cf"),
        format!(
            "{base}stonith_host * acme base=http://10.9.0.254/pdu\n{}",
            if glue {
                "stonith_host * baytech 10.0.0.3 admin pw\n"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    let (code, out, err) = run(d.path(), &["--node", "node1", "--cache-dir", &cache]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("stonith_host * acme ["), "{out}");
    assert!(out.contains("may reach: http://10.9.0.254/pdu"), "{out}");
    if glue {
        assert!(
            out.contains("stonith_host * baytech (cluster-glue plugin run by /usr/sbin/stonith")
                && !out.contains("admin pw"),
            "{out}"
        );
    }
}

#[test]
fn broken_dir_fails_with_every_error() {
    let d = recipe_dir();
    std::fs::write(
        d.path().join("ha.cf"),
        "node node1 node2\nbcast eth0\ndeadtime five\nauto_failback on\n",
    )
    .unwrap();
    std::fs::write(d.path().join("haresources"), "node3 10.0.0.1 nosuch\n").unwrap();
    std::fs::set_permissions(
        d.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, out, _) = run(d.path(), &["--node", "node1"]);
    assert_ne!(code, 0, "{out}");
    for want in [
        "ha.cf:3:10: deadtime \"five\" is not a duration; write e.g. \"deadtime 5\" or \"deadtime 500ms\"",
        "haresources:1:1: group \"10.0.0.1\" prefers node \"node3\"",
        "no agent named \"nosuch\"",
        "chmod 600",
        "FAILED: 4 error(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn missing_dir_fails_cleanly() {
    let (code, out, err) = run(
        Path::new("/nonexistent/wasmbeat-test"),
        &["--node", "node1"],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("cannot read /nonexistent/wasmbeat-test/ha.cf"),
        "{out}{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A `ucast6`-only ha.cf is a working configuration, listed as written.
#[test]
fn ipv6_media_are_listed_as_written() {
    let d = recipe_dir();
    let ha = std::fs::read_to_string(d.path().join("ha.cf")).unwrap();
    let only_v6 = ha.replace("bcast eth0", "ucast6 eth0 fe80::2");
    assert_ne!(ha, only_v6, "the recipe has a bcast line to replace");
    std::fs::write(d.path().join("ha.cf"), &only_v6).unwrap();
    let (code, out, _) = run(d.path(), &["--node", "node1", "--no-grants"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ucast6 eth0 to fe80::2 (UDP port 694)"),
        "{out}"
    );
    assert!(!out.contains("not acted on"), "{out}");
}

/// `check` judges crc over UDP as the daemon will: refused with the fix
/// named, accepted with `--allow-crc-on-network` or its environment variable.
#[test]
fn crc_on_network_is_refused_unless_allowed() {
    let d = recipe_dir();
    let authkeys = d.path().join("authkeys");
    std::fs::write(&authkeys, "auth 1\n1 crc\n").unwrap();
    let (code, out, err) = run(d.path(), &["--node", "node1", "--no-grants"]);
    assert_ne!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("authkeys:2: auth 1 selects crc") && all.contains("--allow-crc-on-network"),
        "{all}"
    );
    let (code, out, err) = run(
        d.path(),
        &["--node", "node1", "--no-grants", "--allow-crc-on-network"],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(format!("{out}{err}").contains("allowed by --allow-crc-on-network"));
    let status = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["check", "--node", "node1", "--no-grants", "--config-dir"])
        .arg(d.path())
        .env("WASMBEAT_ALLOW_CRC_ON_NETWORK", "true")
        .output()
        .unwrap()
        .status;
    assert!(status.success(), "the environment variable allows it too");
}

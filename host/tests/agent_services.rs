//! Service agents without a lab: their parameters match the host's grant
//! derivation, the LSB agent runs a granted script with LSB semantics, and
//! an ungranted script is refused with the grant to add (also by `check`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use wasmbeat::caps::grant::{HTTPD_PARAMS, MYSQLD_PARAMS, NAMED_PARAMS};
use wasmbeat::config::policy::Policy;
use wasmbeat::config::token::{AgentRef, ResourceToken};
use wasmbeat::runtime::bind::{bind_resource, BindError};
use wasmbeat::runtime::{AgentError, Runtime, RuntimeConfig, Status};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn grant_derivation_binds_the_agents_own_parameters() {
    let rt = runtime();
    block_on(async {
        for (name, params) in [
            ("named", NAMED_PARAMS),
            ("httpd", HTTPD_PARAMS),
            ("mysqld", MYSQLD_PARAMS),
        ] {
            let agent = rt
                .load(&AgentRef::Name(name.into()), Path::new("/nonexistent"))
                .unwrap();
            assert!(agent.is_builtin());
            let meta = agent.meta_data().await.unwrap();
            let names: Vec<&str> = meta.params.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, params, "{name}: meta-data and grant.rs disagree");
        }
    });
}

/// A heartbeat-style script keeping its state in a file next to it.
const SCRIPT: &str = r#"#!/bin/sh
# args: [TAG] OP
state="$(dirname "$0")/$(basename "$0").state"
if [ $# -ge 2 ]; then tag="$1"; shift; else tag=none; fi
echo "$tag $1" >> "$state.log"
case "$1" in
  start) echo "$tag" > "$state"; exit 0 ;;
  stop) rm -f "$state"; exit 0 ;;
  status) if [ -f "$state" ]; then echo "running"; exit 0; else echo "not running"; exit 3; fi ;;
  *) exit 2 ;;
esac
"#;

fn config_dir(policy: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rd = d.path().join("resource.d");
    std::fs::create_dir(&rd).unwrap();
    for name in ["wbsvc", "other"] {
        let p = rd.join(name);
        std::fs::write(&p, SCRIPT).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(d.path().join("agents.toml"), policy).unwrap();
    d
}

/// `wasmbeat check` on `dir` (which holds agents.toml and resource.d/) with
/// a minimal ha.cf and authkeys and the given haresources: exit code and
/// everything it printed.
fn check(dir: &Path, haresources: &str) -> (Option<i32>, String) {
    std::fs::write(
        dir.join("ha.cf"),
        "deadtime 5\nbcast eth0\nauto_failback on\nnode node1\nnode node2\n",
    )
    .unwrap();
    std::fs::write(dir.join("haresources"), haresources).unwrap();
    let ak = dir.join("authkeys");
    std::fs::write(&ak, "auth 1\n1 sha1 secret\n").unwrap();
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["check", "--node", "node1", "--config-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn lsb_agent_runs_a_granted_script_with_lsb_semantics() {
    let dir = config_dir("[lsb.wbsvc]\n");
    let (policy, diags) = Policy::load(dir.path());
    assert!(diags.is_empty(), "{diags:?}");
    let rt = runtime();
    let state = dir.path().join("resource.d/wbsvc.state");
    block_on(async {
        let token = ResourceToken::parse("wbsvc::web1").unwrap();
        let r = bind_resource(&rt, &token, dir.path(), &policy)
            .await
            .unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        r.start().await.unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "web1");
        assert_eq!(r.monitor().await.unwrap(), Status::Running);
        r.start().await.expect("start on a running script succeeds");
        r.stop().await.unwrap();
        assert!(!state.exists());
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        r.stop().await.expect("stop on a stopped script succeeds");
    });
    // heartbeat's calling convention: args first, operation last; the
    // second start was skipped because status said running.
    let log = std::fs::read_to_string(dir.path().join("resource.d/wbsvc.state.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(
        calls,
        [
            "web1 status",
            "web1 status",
            "web1 start",
            "web1 status",
            "web1 status",
            "web1 status",
            "web1 stop",
            "web1 status",
            "web1 stop"
        ]
    );
}

#[test]
fn lsb_agent_passes_the_conformance_sequence() {
    let dir = config_dir("[lsb.wbsvc]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["agent", "--no-cache", "--in-place", "--config-dir"])
        .arg(dir.path())
        .args(["test", "wbsvc::web1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASSED: 11 steps"), "{stdout}");
    assert!(!dir.path().join("resource.d/wbsvc.state").exists());
}

#[test]
fn lsb_script_failures_map_to_lsb_exit_codes() {
    let dir = config_dir("[lsb.broken]\n");
    let p = dir.path().join("resource.d/broken");
    std::fs::write(
        &p,
        "#!/bin/sh\ncase \"$1\" in status) exit 3;; start) echo 'no such daemon' >&2; exit 5;; *) exit 1;; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (policy, _) = Policy::load(dir.path());
    let rt = runtime();
    block_on(async {
        let token = ResourceToken::parse("broken").unwrap();
        let r = bind_resource(&rt, &token, dir.path(), &policy)
            .await
            .unwrap();
        let e = r.start().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::NotInstalled(m) if m.contains("no such daemon")),
            "{e}"
        );
        assert_eq!(e.ocf_exit_code(), 5);
        // stop fails (1) but status says not running: stopped.
        r.stop().await.unwrap();
    });
}

#[test]
fn ungranted_script_is_refused_with_the_grant_to_add() {
    let dir = config_dir("[lsb.wbsvc]\n");
    let (policy, _) = Policy::load(dir.path());
    let rt = runtime();
    block_on(async {
        let token = ResourceToken::parse("other::x").unwrap();
        let e = bind_resource(&rt, &token, dir.path(), &policy)
            .await
            .err()
            .expect("an ungranted script must not bind");
        assert!(matches!(e, BindError::UngrantedScript { .. }), "{e}");
        assert!(e.to_string().contains("add [lsb.other]"), "{e}");
        assert_eq!(e.ocf_exit_code(), 4);
    });
    // The script never ran.
    assert!(!dir.path().join("resource.d/other.state.log").exists());

    // `wasmbeat check` says the same, at the haresources line.
    let (code, text) = check(dir.path(), "node1 wbsvc other::x\n");
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("haresources:1"), "{text}");
    assert!(text.contains("[lsb.other]"), "{text}");
    assert!(text.contains("LSB script"), "{text}");
    assert!(
        !text.contains("no agent named \"wbsvc\""),
        "the granted one resolves: {text}"
    );
}

#[test]
fn policy_errors_are_reported_by_check_with_file_and_line() {
    let dir = config_dir("[resource.\"httpd\"]\nprograms = [\"apache2\"]\n");
    let (_, text) = check(dir.path(), "node1 httpd\n");
    assert!(
        text.contains("agents.toml:2: programs: \"apache2\" is not an absolute path"),
        "{text}"
    );
}

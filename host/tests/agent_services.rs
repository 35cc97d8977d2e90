//! Service agents without a lab: their declared needs become their default
//! grant bound to the resource's parameters, the LSB agent runs a granted
//! script with LSB semantics, and an ungranted script is refused with the
//! grant to add (also by `check`).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::Policy;
use wasmbeat::runtime::bind::{bind_resource, grant_for, resolve_agent, BindError};
use wasmbeat::runtime::{AgentError, Runtime, RuntimeConfig, Status};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The grant the daemon would give `token` with no agents.toml.
fn default_grant(rt: &Runtime, token: &str) -> Result<wasmbeat::grant::Grant, BindError> {
    let t = ResourceToken::parse(token).unwrap();
    let policy = Policy::default();
    support::block_on(async {
        let resolved = resolve_agent(rt, &t.agent, Path::new("/nonexistent"), &policy)?;
        assert!(resolved.agent.is_builtin());
        grant_for(&resolved, &t, &policy).await
    })
}

#[test]
fn builtin_agents_get_exactly_their_declared_commands_and_files() {
    let rt = runtime();
    let g = default_grant(&rt, "httpd").unwrap();
    let server = g
        .command("server")
        .expect("httpd declares its server command");
    assert_eq!(server.argv[0], "/usr/sbin/apache2");
    assert!(
        server
            .argv
            .contains(&"Define APACHE_RUN_USER www-data".to_string()),
        "{:?}",
        server.argv
    );
    assert!(
        server
            .argv
            .contains(&"PidFile /run/apache2/apache2.pid".to_string()),
        "{:?}",
        server.argv
    );
    assert_eq!(g.commands.len(), 1);
    assert_eq!(g.pidfiles, [Path::new("/run/apache2/apache2.pid")]);
    assert_eq!(g.paths, [Path::new("/etc/apache2/apache2.conf")]);
    assert_eq!(g.probes, ["127.0.0.1:80".parse().unwrap()]);
    assert!(!g.netlink_read && g.addresses.is_empty());

    let g = default_grant(&rt, "httpd::10.77.0.10:8080::nginx::/srv/web/nginx.conf").unwrap();
    assert_eq!(
        g.command("server").unwrap().argv,
        [
            "/usr/sbin/nginx",
            "-c",
            "/srv/web/nginx.conf",
            "-g",
            "daemon off;"
        ]
    );
    assert_eq!(g.pidfiles, [Path::new("/run/nginx.pid")]);
    assert_eq!(g.probes, ["10.77.0.10:8080".parse().unwrap()]);

    let g = default_grant(&rt, "mysqld::datadir=/srv/db").unwrap();
    let names: Vec<&str> = g.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["server", "install-db"]);
    assert!(g
        .command("server")
        .unwrap()
        .argv
        .contains(&"--datadir=/srv/db".to_string()));
    assert!(g
        .command("server")
        .unwrap()
        .argv
        .contains(&"--bind-address=127.0.0.1".to_string()));
    assert!(g
        .command("server")
        .unwrap()
        .argv
        .contains(&"--port=3306".to_string()));
    assert!(g.paths.contains(&Path::new("/srv/db").to_path_buf()));

    let g = default_grant(&rt, "named::binary=/opt/bind/sbin/named").unwrap();
    assert_eq!(
        g.command("server").unwrap().argv,
        [
            "/opt/bind/sbin/named",
            "-f",
            "-u",
            "bind",
            "-c",
            "/etc/bind/named.conf"
        ]
    );
    let caps: Vec<String> = g
        .command("server")
        .unwrap()
        .capabilities
        .iter()
        .map(|c| c.name())
        .collect();
    assert!(
        caps.iter().any(|c| c == "net-bind-service") && !caps.iter().any(|c| c == "sys-admin"),
        "{caps:?}"
    );

    let g = default_grant(&rt, "IPaddr::10.77.0.10/24/eth0").unwrap();
    assert!(g.netlink_read && g.commands.is_empty());
    assert_eq!(g.addresses.len(), 1);
    assert_eq!(g.addresses[0].spec.nic.as_deref(), Some("eth0"));
}

/// The attacks of the sandbox issue on the built-in httpd grant: the
/// parameters fill the command line, so they must not be able to bend it.
#[test]
fn service_parameters_cannot_bend_their_command_lines() {
    let rt = runtime();
    for token in [
        "httpd::user=-X",
        "httpd::config=/etc/apache2/x.conf|Include",
        "httpd::binary=/bin/sh",
        "httpd::binary=/usr/bin/python3",
        "named::user=bind\"",
        "named::config=relative.conf",
        "mysqld::listen=localhost:3306",
        "httpd::pid_file=/run/../etc/shadow",
    ] {
        let e = default_grant(&rt, token)
            .err()
            .unwrap_or_else(|| panic!("{token}: bound"));
        assert!(
            matches!(e, BindError::Agent(_) | BindError::Grant(_)),
            "{token}: {e}"
        );
    }
    // Positive control: the same parameters with sane values bind.
    default_grant(&rt, "httpd::user=web::binary=/usr/sbin/apache2").unwrap();
    // A dotted netmask that is not contiguous: IPaddr (heartbeat's findif)
    // makes a /31 of it; IPaddr2 refuses it, as heartbeat's IPaddr2 does.
    let g = default_grant(&rt, "IPaddr::100.200.230.1/100.200.230.6").unwrap();
    assert_eq!(
        g.addresses[0].spec.prefix(g.addresses[0].rule),
        Ok(Some(31))
    );
    let e = default_grant(&rt, "IPaddr2::100.200.230.1/100.200.230.6").unwrap_err();
    assert!(e.to_string().contains("not a valid netmask"), "{e}");
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
    support::block_on(async {
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
    support::block_on(async {
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
    support::block_on(async {
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
    let dir = config_dir(
        "[resource.\"httpd\"]\ncommands.server = [\"apache2\"]\nprograms = [\"/usr/sbin/apache2\"]\n",
    );
    let (code, text) = check(dir.path(), "node1 httpd\n");
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("agents.toml:2: command server: \"apache2\" is not an absolute program path"),
        "{text}"
    );
    assert!(
        text.contains("agents.toml:3: programs is no longer a grant"),
        "{text}"
    );
}

//! Hostile agents inside a running two-node cluster: the daemons run the
//! attacks of the sandbox issue as resource groups of their own (log
//! forging and flooding, a spawn loop, a FIFO pid file, an announce loop,
//! a memory grab, a busy loop), while `wasmbeat agent` runs the attacks
//! that crash their own operation (a 30 MiB log line, a memory bomb, an
//! endless loop) beside the daemon on node1, and a client polls the VIP.
//! The attacks must stay inside their resources: neither daemon declares
//! the other dead, the VIP never leaves node1 and the client never misses
//! it. (The in-daemon attacks report and succeed, `outcome=log`: a group
//! whose start fails is handed to the peer by design, which would move
//! the VIP for a reason that is not a false failover.)
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Lab, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_wasmbeat");
const VIP: &str = "10.77.0.100";
const NODES: [&str; 2] = ["node1", "node2"];

fn agent(file: &str) -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join(file)
}

/// One haresources line per attack, all preferring node1, after the VIP.
fn haresources(dir: &Path) -> String {
    let attacker = agent("hostile_attacker.wasm").display().to_string();
    let fifo = dir.join("server.pid").display().to_string();
    let mut lines = vec![format!("node1 IPaddr::{VIP}/24/eth0")];
    for attack in [
        "attack=log-forge".to_string(),
        // A 100 KiB and a 1000 KiB line, each followed by as many lines:
        // cut to 4 KiB and rate-limited (more than 1 MiB in one call traps,
        // which `wasmbeat agent` shows below).
        "attack=log-flood::count=100".to_string(),
        "attack=log-flood::count=1000".to_string(),
        "attack=spawn-loop::command=sleep::count=300".to_string(),
        format!("attack=pidfile::path={fifo}"),
        "attack=announce::ip=10.77.0.100::count=200".to_string(),
        "attack=hog::count=1024".to_string(),
        "attack=spin::count=3000".to_string(),
    ] {
        lines.push(format!("node1 {attacker}::{attack}::outcome=log"));
    }
    lines.join("\n") + "\n"
}

struct Node {
    log: PathBuf,
    pid: u32,
}

#[test]
fn hostile_agents_in_a_running_cluster_cause_no_false_failover() {
    if !support::lab_available("hostile_agents_in_a_running_cluster_cause_no_false_failover") {
        return;
    }
    let lab = Lab::new("sbx", &["10.77.0.1/24", "10.77.0.2/24", "10.77.0.10/24"]);
    let dir = TempDir::new("sbx");
    let fifo = dir.0.join("server.pid");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let mut nodes = Vec::new();
    for (i, name) in NODES.iter().enumerate() {
        let cfg = dir.0.join(name);
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("ha.cf"),
            "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1\nudpport 694\n\
             bcast eth0\nauto_failback on\nnode node1\nnode node2\n",
        )
        .unwrap();
        std::fs::write(cfg.join("haresources"), haresources(&dir.0)).unwrap();
        std::fs::write(cfg.join("authkeys"), "auth 1\n1 sha1 lab-test-key\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cfg.join("authkeys"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::write(
            cfg.join("agents.toml"),
            format!(
                "[agent.hostile_attacker]\nnetlink_read = true\naddresses = [\"10.77.0.101\"]\n\
                 commands.sleep = [\"/usr/bin/sleep\", \"60\"]\npidfiles = [\"{}\"]\n",
                fifo.display()
            ),
        )
        .unwrap();
        let mut responder = Command::new(support::lab_bin());
        responder.args(["http-responder", "--listen", "0.0.0.0:80", "--body", name]);
        lab.nodes[i].spawn(responder);
        let log = dir.0.join(format!("{name}.log"));
        let daemon = support::daemon_command(&cfg, name, &dir.0.join(format!("{name}.run")), &log);
        let pid = lab.nodes[i].spawn(daemon);
        nodes.push(Node { log, pid });
    }
    let log_text = |i: usize| std::fs::read_to_string(&nodes[i].log).unwrap_or_default();
    let dump = || {
        for (i, n) in NODES.iter().enumerate() {
            let t = log_text(i);
            let tail: Vec<&str> = t.lines().rev().take(60).collect();
            eprintln!("----- {n} log (last 60 lines) -----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    };
    let addr: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let client = &lab.nodes[2];
    // Both daemons up and the VIP on node1 before the window opens.
    let up = support::wait_for(Duration::from_secs(60), Duration::from_millis(50), || {
        (log_text(0).contains("communication up")
            && log_text(1).contains("communication up")
            && support::in_netns(client, || support::http_get(addr)).as_deref() == Some("node1"))
        .then_some(())
    });
    if up.is_none() {
        dump();
        panic!("the cluster did not come up with node1 serving {VIP}");
    }
    let offsets: Vec<usize> = (0..2).map(|i| log_text(i).len()).collect();

    // Beside the daemon, attacks that crash their own operation, run by
    // `wasmbeat agent` in node1's namespace while the window is open.
    let attacker = agent("hostile_attacker.wasm").display().to_string();
    let cli = std::thread::spawn({
        let node1 = lab.nodes[0].name.clone();
        let cfg = dir.0.join("node1");
        let tokens = [
            format!("{attacker}::attack=log-flood::count=30720"),
            agent("hostile_hog.wasm").display().to_string(),
            agent("hostile_looper.wasm").display().to_string(),
        ];
        move || {
            tokens
                .iter()
                .map(|t| {
                    let out = Command::new("ip")
                        .args(["netns", "exec", &node1, BIN, "agent", "--config-dir"])
                        .arg(&cfg)
                        .arg("--cache-dir")
                        .arg(support::shared_agent_cache())
                        .args([t.as_str(), "start"])
                        .output()
                        .unwrap();
                    (
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr).into_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    });
    // The window: the hostile groups run in both daemons while the client
    // polls the VIP.
    let window = Duration::from_secs(25);
    let (ok, missed) = support::in_netns(client, || {
        let start = Instant::now();
        let (mut ok, mut missed) = (0u32, Vec::new());
        while start.elapsed() < window {
            match support::http_get(addr).as_deref() {
                Some("node1") => ok += 1,
                other => missed.push((start.elapsed(), other.map(str::to_string))),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (ok, missed)
    });
    let logs: Vec<String> = (0..2)
        .map(|i| log_text(i)[offsets[i]..].to_string())
        .collect();
    let alive: Vec<bool> = nodes
        .iter()
        .map(|n| Path::new(&format!("/proc/{}", n.pid)).exists())
        .collect();
    let cli = cli.join().unwrap();
    // Positive control: every in-daemon attack ran on node1 (when it
    // acquired its groups, before the window) and reported its result,
    // except the two floods, whose result line the rate limit drops: they
    // show as suppressed lines instead.
    let whole = log_text(0);
    let results = whole.matches("RESULT").count();
    let suppressed = whole.matches("agent log line(s) suppressed").count();
    let failures = [
        (!missed.is_empty()).then(|| format!("the client missed the VIP: {missed:?}")),
        (ok < 100).then(|| format!("only {ok} answers in {window:?}")),
        logs.iter()
            .position(|l| l.contains("declared dead"))
            .map(|i| format!("{} declared its peer dead", NODES[i])),
        alive
            .iter()
            .position(|a| !a)
            .map(|i| format!("{}'s daemon is gone", NODES[i])),
        (results < 6).then(|| format!("only {results} of 6 attacks reported a result on node1")),
        (suppressed < 2).then(|| format!("{suppressed} of 2 floods show suppressed lines")),
        cli.iter()
            .find(|(code, _)| *code == Some(0) || code.is_none())
            .map(|(code, err)| format!("a crashing attack did not fail cleanly ({code:?}): {err}")),
        whole
            .lines()
            .find(|l| l.starts_with("2099-"))
            .map(|l| format!("a forged line reached the log: {l}")),
    ];
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    if !failures.is_empty() {
        dump();
        panic!("{}", failures.join("\n"));
    }
    for line in whole.lines().filter(|l| l.contains("RESULT")) {
        eprintln!("{}", line.split("RESULT").nth(1).unwrap_or_default());
    }
    for (code, err) in &cli {
        eprintln!("wasmbeat agent exit {code:?}: {}", err.trim());
    }
    eprintln!(
        "{ok} answers from node1 in {window:?}, none missed; logs grew by {} and {} bytes",
        logs[0].len(),
        logs[1].len()
    );
}

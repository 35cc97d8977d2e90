//! Interop with a real Debian heartbeat 3.0.6 node: heartbeat runs in its
//! own network, mount, UTS and PID namespaces (private /etc/ha.d, /run,
//! /var/lib/heartbeat), wasmbeat's wire peer in another network namespace,
//! joined by a bridge. Run alone with `cargo test --test heartbeat_interop`.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cable::Cable;
use support::{wait_for, Lab, Netns};
use wasmbeat::wire::identity::{load_or_create, GenMethod};

const KEY: &str = "wasmbeat-test-key";
const HB_NODE: &str = "node1";
const WB_NODE: &str = "node2";

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Prepare heartbeat's private /etc/ha.d, /run and /var/lib/heartbeat.
const HB_BCAST: &str = "udpport 694\nbcast eth0\n";

/// `media` are ha.cf medium lines (with udpport/baud before them).
fn heartbeat_tree(root: &Path, authkeys_line: &str, media: &str) {
    wasmbeat_lab::heartbeat::prepare_root(root).unwrap();
    write(
        &root.join("etc/ha.cf"),
        &format!(
            "logfile {log}\nlogfacility none\nkeepalive 1\ndeadtime 5\nwarntime 3\ninitdead 10\n\
             {media}auto_failback on\nrealtime off\nnode {HB_NODE}\nnode {WB_NODE}\ncrm off\n",
            log = root.join("ha-log").display()
        ),
        0o644,
    );
    write(
        &root.join("etc/authkeys"),
        &format!("auth 1\n{authkeys_line}\n"),
        0o600,
    );
    write(
        &root.join("etc/haresources"),
        "# no resources: this test is about the wire\n",
        0o644,
    );
}

/// Spawn heartbeat in `ns` inside fresh mount/UTS/PID namespaces; the
/// recorded PID is `unshare`, which takes the whole PID namespace down
/// with it when killed.
fn spawn_heartbeat(ns: &Netns, root: &Path) -> u32 {
    ns.spawn(wasmbeat_lab::heartbeat::node_command(root, HB_NODE, None))
}

/// `cl_status ARGS` inside heartbeat's mount, UTS and PID namespaces
/// (heartbeat rejects API clients whose PID it cannot see). `unshare_pid`
/// is the recorded PID; heartbeat is its only child.
fn cl_status(unshare_pid: u32, args: &[&str]) -> Option<String> {
    hb_cl_status(unshare_pid, args).map(|(out, _)| out.trim().to_string())
}

fn wire_peer(root: &Path, extra: &[&str]) -> Command {
    wire_peer_auth(root, &format!("1:sha1:{KEY}"), extra)
}

fn wire_peer_auth(root: &Path, auth: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(support::lab_bin());
    c.args([
        "wire-peer",
        "--node",
        WB_NODE,
        "--nodes",
        &format!("{HB_NODE},{WB_NODE}"),
    ])
    .arg("--auth")
    .arg(auth)
    .args(["--keepalive-ms", "1000", "--deadtime-ms", "5000"])
    .args(["--initdead-ms", "10000"])
    .arg("--state-dir")
    .arg(root.join("wb-state"))
    .arg("--view")
    .arg(root.join("wb-view.json"))
    .args(extra)
    .env("RUST_LOG", "info");
    if !extra.contains(&"--medium") {
        c.args(["--medium", "bcast eth0"]);
    }
    c
}

fn wb_view(root: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(root.join("wb-view.json")).ok()?).ok()
}

/// Wait until every named session counter of wasmbeat's view is >= 1.
fn wait_session(root: &Path, counters: &[&str], limit: Duration) -> Option<Value> {
    wait_for(limit, Duration::from_millis(250), || {
        let v = wb_view(root)?;
        counters
            .iter()
            .all(|c| v["session"][c].as_u64().unwrap_or(0) >= 1)
            .then(|| v["session"].clone())
    })
}

fn wb_view_of_hb(root: &Path) -> Option<String> {
    let s = std::fs::read_to_string(root.join("wb-view.json")).ok()?;
    let v: Value = serde_json::from_str(&s).ok()?;
    v["peers"][0]["status"].as_str().map(str::to_string)
}

fn hb_log(root: &Path) -> String {
    std::fs::read_to_string(root.join("ha-log")).unwrap_or_default()
}

/// Lines of heartbeat's log that complain about authentication or protocol.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "authentication",
                "authtoken",
                "replay",
                "bad node",
                "irretrievably",
                "hist queue",
                "flow control disabled",
                "nak",
                "bad packet",
                "message format",
            ]
            .iter()
            .any(|p| l.contains(p))
        })
        .collect()
}

fn heartbeat_available(test: &str) -> bool {
    support::heartbeat::available(test)
}

/// Quick handshake with a given authkeys method / wire form: both sides
/// see each other active and heartbeat logs no complaint.
fn handshake(tag: &str, authkeys_line: &str, auth_arg: &str, media: &str, extra: &[&str]) {
    let root =
        TempDir(std::env::temp_dir().join(format!("wb-interop-{tag}-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    heartbeat_tree(&root.0, authkeys_line, media);
    let r = &root.0;
    let lab = Lab::new(tag, &["10.77.6.1/24", "10.77.6.2/24"]);
    let _wb = lab.nodes[1].spawn(wire_peer_auth(r, auth_arg, extra));
    let hb = spawn_heartbeat(&lab.nodes[0], r);
    let ok = wait_for(Duration::from_secs(40), Duration::from_millis(250), || {
        (cl_status(hb, &["nodestatus", WB_NODE]).as_deref() == Some("active")
            && cl_status(hb, &["nodestatus", HB_NODE]).as_deref() == Some("active"))
        .then_some(())
    });
    require(ok, &format!("{tag}: heartbeat did not accept wasmbeat"), r);
    let ok = wait_for(Duration::from_secs(10), Duration::from_millis(250), || {
        (wb_view_of_hb(r).as_deref() == Some("active")).then_some(())
    });
    require(ok, &format!("{tag}: wasmbeat did not accept heartbeat"), r);
    let v = wb_view(r).unwrap();
    assert_eq!(v["drops"]["auth_failed"], 0, "{tag}: {v}");
    assert_hardening_quiet(tag, &v);
    let log = hb_log(r);
    let bad = complaints(&log);
    assert!(
        bad.is_empty(),
        "{tag}: heartbeat complained:\n{}",
        bad.join("\n")
    );
}

/// None of wasmbeat's extra wire defences dropped a packet of heartbeat's.
fn assert_hardening_quiet(tag: &str, v: &Value) {
    for reason in ["stale", "inactive_key", "rate_limited"] {
        assert_eq!(v["drops"][reason], 0, "{tag}: {reason} drops: {v}");
    }
}

#[test]
fn heartbeat_interop_md5() {
    if heartbeat_available("heartbeat_interop_md5") {
        handshake(
            "hm",
            &format!("1 md5 {KEY}"),
            &format!("1:md5:{KEY}"),
            HB_BCAST,
            &[],
        );
    }
}

/// crc authenticates nothing, so wasmbeat runs it only on serial links
/// (heartbeat's own advice; `--allow-crc-on-network` aside): the digest
/// interop is checked there, across a pty null-modem cable.
#[test]
fn heartbeat_interop_crc() {
    if !heartbeat_available("heartbeat_interop_crc") {
        return;
    }
    let cable = Cable::new();
    let hb_media = format!("baud 115200\nserial {}\n", cable.slaves[0].display());
    let wb_medium = format!("serial {} 115200", cable.slaves[1].display());
    handshake("hc", "1 crc", "1:crc", &hb_media, &["--medium", &wb_medium]);
    drop(cable);
}

/// The classic text form (what serial links carry and pre-1.0.10 nodes
/// send on UDP), and netstring without the inner auth field.
#[test]
fn heartbeat_interop_classic_and_netstring_only() {
    if heartbeat_available("heartbeat_interop_forms") {
        handshake(
            "hk",
            &format!("1 sha1 {KEY}"),
            &format!("1:sha1:{KEY}"),
            HB_BCAST,
            &["--udp-classic"],
        );
        handshake(
            "hn",
            &format!("1 sha1 {KEY}"),
            &format!("1:sha1:{KEY}"),
            HB_BCAST,
            &["--netstring-only"],
        );
    }
}

/// Serial: heartbeat and wasmbeat on the two ends of a pty null-modem
/// cable (classic text form, paced fragments).
#[test]
fn heartbeat_interop_serial() {
    if !heartbeat_available("heartbeat_interop_serial") {
        return;
    }
    let cable = Cable::new();
    let hb_media = format!("baud 115200\nserial {}\n", cable.slaves[0].display());
    let wb_medium = format!("serial {} 115200", cable.slaves[1].display());
    handshake(
        "hs",
        &format!("1 sha1 {KEY}"),
        &format!("1:sha1:{KEY}"),
        &hb_media,
        &["--medium", &wb_medium],
    );
    drop(cable);
}

fn require(cond: Option<impl Sized>, what: &str, root: &Path) {
    if cond.is_none() {
        let log = hb_log(root);
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("api_"))
            .rev()
            .take(60)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{what}\n--- heartbeat log (tail) ---\n{}", tail.join("\n"));
    }
}

#[test]
fn heartbeat_3_0_6_and_wasmbeat_see_each_other() {
    if !heartbeat_available("heartbeat_interop") {
        return;
    }
    let root = TempDir(std::env::temp_dir().join(format!("wb-interop-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    heartbeat_tree(&root.0, &format!("1 sha1 {KEY}"), HB_BCAST);
    let r = &root.0;
    // heartbeat's state files written by our identity code: heartbeat must
    // adopt our UUID and continue our generation.
    let ours = load_or_create(&r.join("lib"), GenMethod::File).unwrap();
    // Declared after `root` so it drops first: processes die before files go.
    let lab = Lab::new("hi", &["10.77.6.1/24", "10.77.6.2/24"]);
    // wasmbeat first, so that heartbeat, when it starts and hears a live
    // peer, must ask it for the node list (reqnodes) before comm-up.
    let mut wb = lab.nodes[1].spawn(wire_peer(r, &[]));
    let up = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        wb_view(r)
    });
    assert!(up.is_some(), "wasmbeat wire peer did not start");
    let t0 = Instant::now();
    let hb = spawn_heartbeat(&lab.nodes[0], r);

    // heartbeat accepts wasmbeat as an active node ...
    let ok = wait_for(Duration::from_secs(40), Duration::from_millis(250), || {
        (cl_status(hb, &["nodestatus", WB_NODE]).as_deref() == Some("active")).then_some(())
    });
    require(ok, "heartbeat never reported the wasmbeat node active", r);
    eprintln!("heartbeat sees {WB_NODE} active after {:?}", t0.elapsed());
    // ... and reaches comm-up itself, which needs our repnodes answer.
    let ok = wait_for(Duration::from_secs(20), Duration::from_millis(250), || {
        (cl_status(hb, &["nodestatus", HB_NODE]).as_deref() == Some("active")).then_some(())
    });
    require(
        ok,
        "heartbeat never went active (reqnodes/repnodes exchange failed?)",
        r,
    );
    assert_eq!(
        cl_status(hb, &["hblinkstatus", WB_NODE, "eth0"]).as_deref(),
        Some("up")
    );
    // wasmbeat sees heartbeat active.
    let ok = wait_for(Duration::from_secs(10), Duration::from_millis(250), || {
        (wb_view_of_hb(r).as_deref() == Some("active")).then_some(())
    });
    require(ok, "wasmbeat never saw heartbeat active", r);
    // Reliable delivery: heartbeat asked us for the node list (we answered),
    // and ACKs flow both ways (each side ACKs one in ten sequenced messages).
    let s = wait_session(
        r,
        &["reqnodes_answered", "acks_sent", "acks_received"],
        Duration::from_secs(30),
    );
    let what = format!(
        "no reqnodes answered or no ACKs exchanged with heartbeat: {:?}",
        wb_view(r)
    );
    require(s.as_ref(), &what, r);
    eprintln!("session after the first run: {}", s.unwrap());

    // Stop wasmbeat: heartbeat declares it dead after our advertised dt (5 s).
    let t_kill = Instant::now();
    assert!(lab.nodes[1].kill(wb));
    let dead = wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        (cl_status(hb, &["nodestatus", WB_NODE]).as_deref() == Some("dead"))
            .then_some(t_kill.elapsed())
    });
    require(
        dead,
        "heartbeat never declared the stopped wasmbeat node dead",
        r,
    );
    eprintln!(
        "heartbeat declared {WB_NODE} dead {:?} after kill",
        dead.unwrap()
    );
    assert!(
        dead.unwrap() >= Duration::from_secs(3),
        "declared dead too early: {dead:?}"
    );

    // Restart wasmbeat (new generation from the persisted file): accepted
    // again. This run loses every 6th packet from heartbeat and withholds
    // every 4th of its own sequenced messages, so both sides must
    // retransmit on request.
    wb = lab.nodes[1].spawn(wire_peer(
        r,
        &["--drop-inbound-every", "6", "--skip-send-every", "4"],
    ));
    let ok = wait_for(Duration::from_secs(30), Duration::from_millis(250), || {
        (cl_status(hb, &["nodestatus", WB_NODE]).as_deref() == Some("active")).then_some(())
    });
    require(
        ok,
        "heartbeat did not accept the restarted wasmbeat node",
        r,
    );
    let ok = wait_for(Duration::from_secs(10), Duration::from_millis(250), || {
        (wb_view_of_hb(r).as_deref() == Some("active")).then_some(())
    });
    require(ok, "restarted wasmbeat never saw heartbeat active", r);
    let s = wait_session(
        r,
        &[
            "rexmit_requested",
            "gaps_filled",
            "rexmit_received",
            "resent",
        ],
        Duration::from_secs(40),
    );
    let what = format!(
        "retransmission with heartbeat did not happen both ways: {:?}",
        wb_view(r).map(|v| v["session"].clone())
    );
    require(s.as_ref(), &what, r);
    eprintln!("session with induced loss: {}", s.unwrap());
    // heartbeat's genuine traffic, retransmissions included, never trips
    // the defences heartbeat itself lacks (NS_* freshness by its ts, the
    // answer budget, the active-key rule).
    let v = wb_view(r).unwrap();
    assert_hardening_quiet("restarted peer with loss", &v);
    assert_eq!(
        cl_status(hb, &["nodestatus", WB_NODE]).as_deref(),
        Some("active")
    );

    // Stop heartbeat: wasmbeat declares it dead after heartbeat's dt.
    let t_kill = Instant::now();
    assert!(lab.nodes[0].kill(hb));
    let dead = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        (wb_view_of_hb(r).as_deref() == Some("dead")).then_some(t_kill.elapsed())
    });
    require(
        dead,
        "wasmbeat never declared the stopped heartbeat node dead",
        r,
    );
    eprintln!(
        "wasmbeat declared {HB_NODE} dead {:?} after kill",
        dead.unwrap()
    );
    assert!(
        dead.unwrap() >= Duration::from_secs(3),
        "declared dead too early: {dead:?}"
    );
    lab.nodes[1].kill(wb);

    // heartbeat's log: no authentication / protocol complaints about us.
    let log = hb_log(r);
    assert!(
        log.contains(WB_NODE),
        "heartbeat log is empty or unrelated:\n{log}"
    );
    let bad = complaints(&log);
    assert!(bad.is_empty(), "heartbeat complained:\n{}", bad.join("\n"));
    if std::env::var_os("WASMBEAT_SHOW_HB_LOG").is_some() {
        eprintln!("--- heartbeat log ---\n{log}");
    }
    assert!(
        log.contains(&format!("Heartbeat generation: {}", ours.generation + 1)),
        "heartbeat did not continue the generation we wrote ({})",
        ours.generation
    );
    assert!(
        !log.contains("No uuid found"),
        "heartbeat did not adopt the hb_uuid we wrote"
    );
    // ... and we read back what heartbeat wrote: the same UUID, and a
    // generation past heartbeat's (ours + 1); wasmbeat's is also at least
    // the clock, so it may jump ahead of + 1.
    let back = load_or_create(&r.join("lib"), GenMethod::File).unwrap();
    assert_eq!(back.uuid, ours.uuid);
    assert!(
        back.generation > ours.generation + 1,
        "generation {} after heartbeat's {}",
        back.generation,
        ours.generation + 1
    );
    let restarted = log
        .lines()
        .any(|l| l.contains("restart on node") && l.contains(WB_NODE));
    eprintln!(
        "heartbeat log: {} lines, restart of {WB_NODE} noticed: {restarted}",
        log.lines().count()
    );
}

/// `cl_status ARGS` of the real heartbeat, as [`cl_status`] runs it: stdout
/// (untrimmed) and exit code.
fn hb_cl_status(unshare_pid: u32, args: &[&str]) -> Option<(String, i32)> {
    support::heartbeat::cl_status(unshare_pid, args)
}

/// A wasmbeat daemon node of a mixed cluster: its config dir, runtime dir
/// and a `cl_status` symlink to the binary (argv[0] dispatch).
struct WbNode {
    config: PathBuf,
    runtime: PathBuf,
    cl_status: PathBuf,
    log: PathBuf,
}

impl WbNode {
    fn cl_status(&self, args: &[&str]) -> (String, i32) {
        let out = Command::new(&self.cl_status)
            .args(args)
            .env("WASMBEAT_CONFIG_DIR", &self.config)
            .env("WASMBEAT_RUNTIME_DIR", &self.runtime)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One row of the comparison: heartbeat's answer, wasmbeat's, and the
/// answer wasmbeat must give (heartbeat's, or heartbeat's under a
/// documented rule).
struct Row {
    question: String,
    heartbeat: (String, i32),
    wasmbeat: (String, i32),
    expected: (String, i32),
    rule: &'static str,
}

/// `text` with heartbeat's version (`3.0.6 (node: <changeset>)`) replaced
/// by `version`.
fn with_version(text: &str, version: &str) -> String {
    let Some(start) = text.find("3.0.6 (node: ") else {
        return text.to_string();
    };
    let end = start
        + text[start..]
            .find(')')
            .map_or(text.len() - start, |e| e + 1);
    format!("{}{version}{}", &text[..start], &text[end..])
}

fn show(answer: &(String, i32)) -> String {
    format!("{:?} [{}]", answer.0, answer.1)
}

/// The comparison as a markdown table (for the record and the closing note).
fn print_table<'a>(heartbeat: &str, wasmbeat: &str, rows: impl Iterator<Item = &'a Row>) {
    println!("\n| question | {heartbeat} | {wasmbeat} | rule | ok |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!(
            "| cl_status {} | {} | {} | {} | {} |",
            row.question,
            show(&row.heartbeat),
            show(&row.wasmbeat),
            row.rule,
            if row.wasmbeat == row.expected {
                "yes"
            } else {
                "NO"
            }
        );
    }
}

/// heartbeat's `cl_status` and wasmbeat's, asked the same questions on the
/// two nodes of one mixed cluster (heartbeat 3.0.6 node1, wasmbeat node2,
/// each holding its own group), must print the same lines with the same
/// exit codes. The rules where an answer differs by design:
/// - position: both nodes sit in symmetric positions (each holds its own
///   `local` group, each sees the other active over the one link eth0),
///   so the same question has the same answer on both; were they not
///   symmetric (one holding `all`), the comparison would be against what
///   heartbeat prints in wasmbeat's position, which this setup avoids.
/// - version: `hbparameter -p hbversion` and the `version:` line of
///   `hbstatus -v` name wasmbeat's version instead of `3.0.6`.
#[test]
fn cl_status_answers_like_heartbeat_in_a_mixed_cluster() {
    const TEST: &str = "cl_status_answers_like_heartbeat_in_a_mixed_cluster";
    if !heartbeat_available(TEST) {
        return;
    }
    let root = TempDir(std::env::temp_dir().join(format!("wb-interop-cls-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    let r = &root.0;
    let haresources = "node1 IPaddr::10.77.7.100/24/eth0\nnode2 IPaddr::10.77.7.101/24/eth0\n";
    heartbeat_tree(r, &format!("1 sha1 {KEY}"), HB_BCAST);
    write(&r.join("etc/haresources"), haresources, 0o644);
    // wasmbeat's files: the same ha.cf but for the log file, same
    // haresources and authkeys.
    let wb = WbNode {
        config: r.join("wb-etc"),
        runtime: r.join("wb-run"),
        cl_status: r.join("bin/cl_status"),
        log: r.join("wb.log"),
    };
    std::fs::create_dir_all(&wb.config).unwrap();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wasmbeat"), &wb.cl_status).unwrap();
    let hacf = std::fs::read_to_string(r.join("etc/ha.cf")).unwrap();
    let hacf = hacf.replace(
        &r.join("ha-log").display().to_string(),
        &r.join("wb-ha-log").display().to_string(),
    );
    write(&wb.config.join("ha.cf"), &hacf, 0o644);
    write(&wb.config.join("haresources"), haresources, 0o644);
    write(
        &wb.config.join("authkeys"),
        &format!("auth 1\n1 sha1 {KEY}\n"),
        0o600,
    );

    // Declared after `root`: the processes die before the files go.
    let lab = Lab::new("cls", &["10.77.7.1/24", "10.77.7.2/24"]);
    let t0 = Instant::now();
    let hb = spawn_heartbeat(&lab.nodes[0], r);
    let mut daemon = Command::new("sh");
    daemon
        .args([
            "-c",
            &format!(
                "exec {} run --config-dir {} --node {WB_NODE} --runtime-dir {} --cache-dir {} 2>>{}",
                env!("CARGO_BIN_EXE_wasmbeat"),
                wb.config.display(),
                wb.runtime.display(),
                support::shared_agent_cache().display(),
                wb.log.display()
            ),
        ])
        .env("RUST_LOG", "info");
    let _wbd = lab.nodes[1].spawn(daemon);

    // Stable: both see both active and hold their own group.
    let stable = |a: &(String, i32)| a.0 == "local\n" && a.1 == 0;
    let settled = wait_for(Duration::from_secs(90), Duration::from_millis(500), || {
        let hb_ok = hb_cl_status(hb, &["rscstatus"]).is_some_and(|a| stable(&a))
            && cl_status(hb, &["nodestatus", WB_NODE]).as_deref() == Some("active")
            && cl_status(hb, &["hblinkstatus", WB_NODE, "eth0"]).as_deref() == Some("up");
        let wb_ok = stable(&wb.cl_status(&["rscstatus"]))
            && wb.cl_status(&["nodestatus", HB_NODE]).0 == "active\n"
            && wb.cl_status(&["hblinkstatus", HB_NODE, "eth0"]).0 == "up\n";
        (hb_ok && wb_ok).then(|| t0.elapsed())
    });
    if settled.is_none() {
        eprintln!("--- wasmbeat log ---\n{}", wb.log_text());
        eprintln!(
            "heartbeat rscstatus {:?}, wasmbeat rscstatus {:?}",
            hb_cl_status(hb, &["rscstatus"]),
            wb.cl_status(&["rscstatus"])
        );
    }
    require(
        settled,
        "the mixed cluster did not settle (both active, each holding its own group) within 90 s",
        r,
    );
    eprintln!("mixed cluster settled {:?} after start", settled.unwrap());

    let questions: &[&[&str]] = &[
        &["hbstatus"],
        &["hbstatus", "-v"],
        &["hbstatus", "-m", "-v"],
        &["listnodes"],
        &["listnodes", "-n"],
        &["listnodes", "-p"],
        &["listnodes", "-v"],
        &["listnodes", "-m"],
        &["nodestatus", HB_NODE],
        &["nodestatus", WB_NODE],
        &["nodestatus", "-m", WB_NODE],
        &["nodestatus", "nosuchnode"],
        &["nodestatus"],
        &["nodetype", HB_NODE],
        &["nodetype", WB_NODE],
        &["nodetype", "-m", WB_NODE],
        &["nodeweight", WB_NODE],
        &["nodesite", WB_NODE],
        &["listhblinks", HB_NODE],
        &["listhblinks", WB_NODE],
        &["listhblinks", "-v", HB_NODE],
        &["listhblinks", "-v", WB_NODE],
        &["listhblinks", "-m", WB_NODE],
        &["hblinkstatus", HB_NODE, "eth0"],
        &["hblinkstatus", WB_NODE, "eth0"],
        &["hblinkstatus", "-m", WB_NODE, "eth0"],
        &["hblinkstatus", WB_NODE, "eth9"],
        &["rscstatus"],
        &["rscstatus", "-m"],
        &["hbparameter", "-p", "deadtime"],
        &["hbparameter", "-p", "keepalive"],
        &["hbparameter", "-p", "warntime"],
        &["hbparameter", "-p", "initdead"],
        &["hbparameter", "-p", "deadping"],
        &["hbparameter", "-p", "auto_failback"],
        &["hbparameter", "-p", "udpport"],
        &["hbparameter", "-p", "baud"],
        &["hbparameter", "-p", "hopfudge"],
        &["hbparameter", "-p", "logfacility"],
        &["hbparameter", "-p", "msgfmt"],
        &["hbparameter", "-p", "debug"],
        &["hbparameter", "-p", "realtime"],
        &["hbparameter", "-p", "pacemaker"],
        &["hbparameter", "-p", "node"],
        &["hbparameter", "-p", "nice_failback"],
        &["hbparameter", "-p", "watchdog"],
        &["hbparameter", "-p", "nosuch"],
        &["hbparameter", "-m", "-p", "deadtime"],
        &["hbparameter", "-p", "hbversion"],
        &["hbparameter"],
        &["nosuchcommand"],
    ];
    let wb_version = wasmbeat::daemon::status::hbversion();
    let mut rows = Vec::new();
    for q in questions {
        let h = hb_cl_status(hb, q).expect("heartbeat's cl_status ran");
        let w = wb.cl_status(q);
        let versioned = q.contains(&"hbversion") || (q[0] == "hbstatus" && q.contains(&"-v"));
        let (expected, rule) = if versioned {
            (
                (with_version(&h.0, &wb_version), h.1),
                "version: wasmbeat's own",
            )
        } else {
            (h.clone(), "same")
        };
        rows.push(Row {
            question: q.join(" "),
            heartbeat: h,
            wasmbeat: w,
            expected,
            rule,
        });
    }
    print_table("heartbeat 3.0.6 (node1)", "wasmbeat (node2)", rows.iter());

    // The asymmetric positions, through heartbeat's own commands run on the
    // wasmbeat node: hb_standby gives everything to heartbeat (heartbeat
    // holds all, wasmbeat none), hb_takeover takes it all back (wasmbeat
    // all, heartbeat none). Each answer of wasmbeat is compared with
    // heartbeat's answer in the same position one step earlier or later.
    let tool = |name: &str, args: &[&str]| {
        let link = r.join("bin").join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wasmbeat"), &link).unwrap();
        }
        let out = Command::new(&link)
            .args(args)
            .env("WASMBEAT_CONFIG_DIR", &wb.config)
            .env("WASMBEAT_RUNTIME_DIR", &wb.runtime)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    };
    let held = |want_hb: &str, want_wb: &str, what: &str| {
        let t = Instant::now();
        let got = wait_for(Duration::from_secs(40), Duration::from_millis(250), || {
            let h = hb_cl_status(hb, &["rscstatus"])?;
            let w = wb.cl_status(&["rscstatus"]);
            (h.0 == format!("{want_hb}\n") && w.0 == format!("{want_wb}\n")).then(|| {
                (
                    h,
                    hb_cl_status(hb, &["rscstatus", "-m"]).unwrap(),
                    w,
                    wb.cl_status(&["rscstatus", "-m"]),
                )
            })
        });
        if got.is_none() {
            eprintln!("--- wasmbeat log ---\n{}", wb.log_text());
        }
        require(
            got.as_ref(),
            &format!(
                "after {what}: expected heartbeat to hold {want_hb} and wasmbeat {want_wb} within 40 s; now heartbeat {:?}, wasmbeat {:?}",
                hb_cl_status(hb, &["rscstatus"]),
                wb.cl_status(&["rscstatus"])
            ),
            r,
        );
        eprintln!(
            "{what}: heartbeat holds {want_hb}, wasmbeat {want_wb} after {:?}",
            t.elapsed()
        );
        got.unwrap()
    };
    // heartbeat's scripts print nothing on stdout and exit 0.
    assert_eq!(tool("hb_standby", &[]), (String::new(), 0), "hb_standby");
    let (h_all, h_all_m, w_none, w_none_m) = held("all", "none", "hb_standby on wasmbeat");
    assert_eq!(
        tool("hb_takeover", &["all"]),
        (String::new(), 0),
        "hb_takeover all"
    );
    let (h_none, h_none_m, w_all, w_all_m) = held("none", "all", "hb_takeover all on wasmbeat");
    for (question, heartbeat, wasmbeat) in [
        ("rscstatus (holding all)", h_all, w_all),
        ("rscstatus -m (holding all)", h_all_m, w_all_m),
        ("rscstatus (holding none)", h_none, w_none),
        ("rscstatus -m (holding none)", h_none_m, w_none_m),
    ] {
        rows.push(Row {
            question: question.to_string(),
            expected: heartbeat.clone(),
            heartbeat,
            wasmbeat,
            rule: "symmetric position",
        });
    }
    // Asked of wasmbeat's own tools with wrong arguments: the scripts' lines.
    let usage = |name: &str, args: &[&str], first: &str| {
        let program = r.join("bin").join(name).display().to_string();
        let got = tool(name, args);
        let want = (format!("{program}: {first}\nusage:\n"), 1);
        assert_eq!(got, want, "{name} {args:?}");
    };
    usage("hb_standby", &["sideways"], "wrong resources(sideways).");
    usage("hb_takeover", &["all", "local"], "too many arguments");

    print_table(
        "heartbeat 3.0.6",
        "wasmbeat",
        rows.iter().filter(|row| row.rule == "symmetric position"),
    );
    let bad: Vec<String> = rows
        .iter()
        .filter(|row| row.wasmbeat != row.expected)
        .map(|row| {
            format!(
                "cl_status {}: expected {}, wasmbeat printed {}",
                row.question,
                show(&row.expected),
                show(&row.wasmbeat)
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} answers differ from heartbeat's:\n{}",
        bad.len(),
        rows.len(),
        bad.join("\n")
    );
}

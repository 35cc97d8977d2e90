//! End to end: two `wasmbeat run` daemons and a client in network
//! namespaces on one bridge, the classic recipe adapted to the lab (a VIP,
//! and an HTTP responder on each node answering with the node's name). The
//! client checks who answers at the VIP; both namespaces are checked for
//! who has the VIP configured.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Lab, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_wasmbeat");
const VIP: &str = "10.77.0.100";
const VIP2: &str = "10.77.0.101";

/// Lab timings written to ha.cf.
#[derive(Clone, Copy)]
struct Timings {
    keepalive: &'static str,
    deadtime: &'static str,
    warntime: &'static str,
    initdead: &'static str,
    /// deadtime as a Duration, for bounds.
    dead: Duration,
}

const FAST: Timings = Timings {
    keepalive: "100ms",
    deadtime: "500ms",
    warntime: "300ms",
    initdead: "1",
    dead: Duration::from_millis(500),
};

/// The classic recipe's timings (deadtime 5, warntime 10), initdead scaled
/// down from 15 to the minimum heartbeat accepts (= deadtime).
const CLASSIC: Timings = Timings {
    keepalive: "1",
    deadtime: "5",
    warntime: "10",
    initdead: "5",
    dead: Duration::from_secs(5),
};

struct Cluster {
    lab: Lab,
    dir: TempDir,
    daemons: [Option<u32>; 2],
    vips: Vec<&'static str>,
    /// Per-node compiled-agent cache (None: the cache shared by all tests).
    caches: [Option<PathBuf>; 2],
    /// More `wasmbeat run` arguments for both nodes.
    extra_args: String,
}

impl Cluster {
    fn new(
        tag: &str,
        t: Timings,
        auto_failback: &str,
        haresources: &str,
        vips: &[&'static str],
    ) -> Cluster {
        let lab = Lab::new(tag, &["10.77.0.1/24", "10.77.0.2/24", "10.77.0.10/24"]);
        let dir = TempDir::new(tag);
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::write_node_config(
                &dir.0.join(name),
                &format!(
                    "keepalive {}\ndeadtime {}\nwarntime {}\ninitdead {}\nudpport 694\nbcast eth0\nauto_failback {auto_failback}\nnode node1\nnode node2\nlogfile {}\n",
                    t.keepalive,
                    t.deadtime,
                    t.warntime,
                    t.initdead,
                    dir.0.join(format!("{name}.ha-log")).display()
                ),
                haresources,
            );
            support::spawn_responder(&lab.nodes[i], "0.0.0.0:80", name);
        }
        Cluster {
            lab,
            dir,
            daemons: [None, None],
            vips: vips.to_vec(),
            caches: [None, None],
            extra_args: String::new(),
        }
    }

    fn name(i: usize) -> String {
        format!("node{}", i + 1)
    }

    fn config_dir(&self, i: usize) -> PathBuf {
        self.dir.0.join(Self::name(i))
    }

    fn runtime_dir(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("{}.run", Self::name(i)))
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("{}.log", Self::name(i)))
    }

    fn start(&mut self, i: usize) {
        let name = Self::name(i);
        let mut daemon = Command::new("sh");
        daemon.args([
            "-c",
            &format!(
                "exec {BIN} run --config-dir {} --node {name} --runtime-dir {} --cache-dir {} {} 2>>{}",
                self.config_dir(i).display(),
                self.runtime_dir(i).display(),
                self.caches[i]
                    .clone()
                    .unwrap_or_else(support::shared_agent_cache)
                    .display(),
                self.extra_args,
                self.log(i).display()
            ),
        ]);
        daemon.env("RUST_LOG", "info");
        self.daemons[i] = Some(self.lab.nodes[i].spawn(daemon));
    }

    fn kill(&self, i: usize, signal: i32) {
        let pid = self.daemons[i].expect("daemon running");
        assert!(self.lab.nodes[i].signal(pid, signal));
    }

    /// Wait (bounded) for the daemon we signalled to exit; its exit code.
    fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let pid = self.daemons[i]?;
        let code = self.lab.nodes[i].wait_exit(pid, limit);
        if code.is_some() {
            self.daemons[i] = None;
        }
        code
    }

    /// Which nodes have `vip` configured.
    fn holders_of(&self, vip: &str) -> Vec<usize> {
        (0..2)
            .filter(|i| {
                self.lab.nodes[*i]
                    .addrs("eth0")
                    .split_whitespace()
                    .any(|w| w.split('/').next() == Some(vip))
            })
            .collect()
    }

    /// Wait until exactly node `i` holds every VIP and the client reaches it.
    fn expect_serving(&self, i: usize, limit: Duration, why: &str) -> Duration {
        let start = Instant::now();
        let name = Self::name(i);
        let ok = support::wait_for(limit, Duration::from_millis(10), || {
            let exclusive = self.vips.iter().all(|v| self.holders_of(v) == vec![i]);
            (exclusive
                && self
                    .vips
                    .iter()
                    .all(|v| self.client_get(v).as_deref() == Some(name.as_str())))
            .then_some(())
        });
        if ok.is_none() {
            self.dump_logs();
            panic!(
                "{why}: expected {name} alone to serve {:?} within {limit:?}; holders: {:?}",
                self.vips,
                self.vips
                    .iter()
                    .map(|v| self.holders_of(v))
                    .collect::<Vec<_>>()
            );
        }
        start.elapsed()
    }

    /// Wait until the client reaches node `i` at the VIP (whoever else may
    /// also hold it: during a partition both nodes do, by design).
    fn expect_client_reaches(&self, i: usize, limit: Duration, why: &str) -> Duration {
        let start = Instant::now();
        let name = Self::name(i);
        if support::wait_for(limit, Duration::from_millis(10), || {
            (self.client_get(VIP).as_deref() == Some(name.as_str())).then_some(())
        })
        .is_none()
        {
            self.dump_logs();
            panic!("{why}: client did not reach {name} at {VIP} within {limit:?}");
        }
        start.elapsed()
    }

    /// GET / at `vip` from the client namespace.
    fn client_get(&self, vip: &str) -> Option<String> {
        let addr: SocketAddr = format!("{vip}:80").parse().unwrap();
        support::in_netns(&self.lab.nodes[2], || support::http_get(addr))
    }

    /// The MAC the client's neighbour table has for the VIP.
    fn client_neighbour_mac(&self) -> String {
        let out = self.lab.nodes[2].ip(&["neigh", "show", VIP]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    fn cli(&self, i: usize, args: &[&str]) -> (i32, String) {
        support::control_cli(
            std::path::Path::new(BIN),
            &self.config_dir(i),
            &self.runtime_dir(i),
            args,
        )
    }

    fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
    }

    fn dump_logs(&self) {
        for i in 0..2 {
            eprintln!("----- {} log -----\n{}", Self::name(i), self.log_text(i));
        }
    }

    /// Wait until node `i` sees a settled cluster (both stable, not in
    /// transition): heartbeat refuses a standby hand-shake "in flux", and
    /// so does wasmbeat.
    fn wait_settled(&self, i: usize, limit: Duration) {
        let settled = support::wait_for(limit, Duration::from_millis(50), || {
            let (code, out) = self.cli(i, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            let c = &v["cluster"];
            (code == 0
                && c["rscstatus"] != "transition"
                && c["standby"].is_null()
                && c["nodes"]
                    .as_array()?
                    .iter()
                    .all(|n| n["status"] == "active" && n["stable"] == true))
            .then_some(())
        });
        if settled.is_none() {
            self.dump_logs();
            panic!("cluster did not settle within {limit:?}");
        }
    }

    /// Start node1 alone (it takes everything after initdead), then node2.
    fn boot(&mut self, t: Timings) {
        self.start(0);
        self.expect_serving(
            0,
            t.dead * 4 + Duration::from_secs(20),
            "node1 alone after initdead",
        );
        self.start(1);
        // node2 joins a stable node1: nothing moves.
        wait_until_log(
            self,
            1,
            "communication up",
            t.dead * 4 + Duration::from_secs(10),
        );
    }
}

fn wait_until_log(c: &Cluster, i: usize, needle: &str, limit: Duration) {
    if support::wait_for(limit, Duration::from_millis(50), || {
        c.log_text(i).contains(needle).then_some(())
    })
    .is_none()
    {
        c.dump_logs();
        panic!("node{} never logged {needle:?} within {limit:?}", i + 1);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

fn mac_of(c: &Cluster, i: usize) -> String {
    c.lab.nodes[i].mac("eth0")
}

fn single_group() -> String {
    format!("node1 IPaddr::{VIP}/24/eth0\n")
}

/// Failover, failback, standby, takeover, kill -9, graceful stop, with
/// `auto_failback on` at the fast timings.
#[test]
fn fast_timings_failover_failback_commands_and_crashes() {
    if !support::lab_available("fast_timings_failover_failback_commands_and_crashes") {
        return;
    }
    let t = FAST;
    let mut c = Cluster::new("e2efast", t, "on", &single_group(), &[VIP]);
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(2), "after node2 joined");
    assert_eq!(c.client_neighbour_mac(), mac_of(&c, 0));
    let bound = t.dead * 3 + Duration::from_secs(3);

    // Pull node1's plug: node2 takes over; the client follows node2's MAC.
    c.lab.set_link(0, false);
    let gap = c.expect_client_reaches(1, bound, "node1 link down");
    eprintln!("link-down failover: client on node2 after {gap:?}");
    assert_eq!(
        c.client_neighbour_mac(),
        mac_of(&c, 1),
        "gratuitous ARP moved the client"
    );
    assert!(c.log_text(1).contains("node node1 declared dead"));

    // Plug back: the split brain settles on node1 (preferred) without a restart.
    c.lab.set_link(0, true);
    c.expect_serving(0, bound, "node1 link back (auto_failback on)");
    assert_eq!(c.client_neighbour_mac(), mac_of(&c, 0));
    assert!(c.log_text(1).contains("split brain"));

    // Standby on node1 hands the group to node2; takeover brings it back.
    c.wait_settled(0, bound);
    let (code, out) = c.cli(0, &["standby", "all"]);
    assert_eq!(code, 0, "{out}");
    c.expect_serving(1, bound, "standby all on node1");
    c.wait_settled(0, bound);
    let (code, out) = c.cli(0, &["takeover", "all"]);
    assert_eq!(code, 0, "{out}");
    c.expect_serving(0, bound, "takeover all on node1");

    // Status shows both nodes active and the owner.
    let (code, status) = c.cli(1, &["status", "--json"]);
    assert_eq!(code, 0, "{status}");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let nodes = v["cluster"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["status"] == "active"), "{status}");
    assert_eq!(v["cluster"]["groups"][0]["owner"], "node1", "{status}");

    // kill -9 node1's daemon: node2 takes over after deadtime. The dead
    // daemon cannot remove its VIP, so the client must follow node2's ARP.
    c.kill(0, libc::SIGKILL);
    assert!(c.wait_exit(0, Duration::from_secs(5)).is_some());
    let gap = c.expect_client_reaches(1, bound, "node1 killed with SIGKILL");
    eprintln!("kill -9 failover: client on node2 after {gap:?}");
    assert_eq!(c.client_neighbour_mac(), mac_of(&c, 1));

    // node1 comes back (VIP still configured from before the crash):
    // auto_failback returns the group and node2 lets go.
    c.start(0);
    c.expect_serving(
        0,
        bound + Duration::from_secs(5),
        "node1 restarted (auto_failback on)",
    );

    // Graceful stop of node1: node2 takes over on shutdone, before deadtime.
    let stopped = Instant::now();
    c.kill(0, libc::SIGTERM);
    c.expect_serving(1, bound, "node1 stopped gracefully");
    let handoff = stopped.elapsed();
    assert_eq!(
        c.wait_exit(0, Duration::from_secs(10)),
        Some(0),
        "graceful stop exits 0"
    );
    eprintln!("graceful handoff: {handoff:?}");
    assert!(c.log_text(0).contains("left the cluster"));

    // The control CLI says clearly that node1's daemon is gone.
    let (code, out) = c.cli(0, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not running"), "{out}");
}

/// With the classic recipe's deadtime, a graceful stop hands over well
/// before deadtime (on shutdone), and pulling the plug takes about deadtime.
#[test]
fn classic_timings_graceful_handoff_beats_deadtime() {
    if !support::lab_available("classic_timings_graceful_handoff_beats_deadtime") {
        return;
    }
    let t = CLASSIC;
    let mut c = Cluster::new("e2eclassic", t, "on", &single_group(), &[VIP]);
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(3), "after node2 joined");

    c.lab.set_link(0, false);
    let gap = c.expect_client_reaches(1, t.dead * 2 + Duration::from_secs(5), "link down");
    eprintln!("classic link-down failover: {gap:?}");
    assert!(
        gap >= t.dead - Duration::from_millis(1500),
        "took over before deadtime: {gap:?}"
    );
    c.lab.set_link(0, true);
    c.expect_serving(0, t.dead * 2 + Duration::from_secs(5), "link back");

    let stopped = Instant::now();
    c.kill(0, libc::SIGTERM);
    c.expect_serving(1, t.dead, "graceful stop must hand over before deadtime");
    let handoff = stopped.elapsed();
    eprintln!(
        "classic graceful handoff: {handoff:?} (deadtime {:?})",
        t.dead
    );
    assert!(
        handoff < t.dead / 2,
        "handoff {handoff:?} not well before deadtime"
    );
    assert_eq!(c.wait_exit(0, Duration::from_secs(10)), Some(0));
}

/// `auto_failback off`: after node1 crashes and returns, the group stays on
/// node2; two VIPs in one group move together.
#[test]
fn auto_failback_off_keeps_two_vips_on_the_survivor() {
    if !support::lab_available("auto_failback_off_keeps_two_vips_on_the_survivor") {
        return;
    }
    let t = FAST;
    let haresources = format!("node1 IPaddr::{VIP}/24/eth0 IPaddr::{VIP2}/24/eth0\n");
    let mut c = Cluster::new("e2eoff", t, "off", &haresources, &[VIP, VIP2]);
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(2), "two VIPs on node1");
    let bound = t.dead * 3 + Duration::from_secs(3);

    // Power loss on node1: daemon killed and its addresses gone (reboot).
    c.kill(0, libc::SIGKILL);
    c.wait_exit(0, Duration::from_secs(5));
    for v in [VIP, VIP2] {
        c.lab.nodes[0].ip(&["addr", "del", &format!("{v}/24"), "dev", "eth0"]);
    }
    c.expect_serving(1, bound, "node1 crashed");
    c.start(0);
    wait_until_log(&c, 0, "communication up", bound);
    // Give auto_failback every chance to (wrongly) move the group back.
    std::thread::sleep(t.dead * 4);
    c.expect_serving(
        1,
        Duration::from_secs(1),
        "auto_failback off: group stays on node2",
    );
}

/// A reload that changes nothing keeps the VIP up: the client never misses
/// an answer while SIGHUP and `wasmbeat reload` are processed.
#[test]
fn reload_without_changes_keeps_the_vip_up() {
    if !support::lab_available("reload_without_changes_keeps_the_vip_up") {
        return;
    }
    let t = FAST;
    let mut c = Cluster::new("e2ereload", t, "on", &single_group(), &[VIP]);
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(2), "before reload");

    let addr: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let client = &c.lab.nodes[2];
    let poller = std::thread::scope(|s| {
        let h = s.spawn(|| {
            support::in_netns(client, || {
                let start = Instant::now();
                let (mut ok, mut missed) = (0u32, 0u32);
                while start.elapsed() < Duration::from_secs(3) {
                    match support::http_get(addr).as_deref() {
                        Some("node1") => ok += 1,
                        _ => missed += 1,
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (ok, missed)
            })
        });
        std::thread::sleep(Duration::from_millis(500));
        c.kill(0, libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(500));
        let (code, out) = c.cli(0, &["reload"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("configuration reloaded"), "{out}");
        h.join().unwrap()
    });
    let (ok, missed) = poller;
    assert!(ok > 50, "too few answers: {ok}");
    assert_eq!(
        missed, 0,
        "the client missed {missed} answers during reload"
    );
    assert!(
        !c.log_text(0).contains("stopping group"),
        "reload stopped the group"
    );

    // A broken reload keeps the running configuration and says why.
    std::fs::write(
        c.config_dir(0).join("ha.cf"),
        "deadtime five\nnode node1\nnode node2\nbcast eth0\n",
    )
    .unwrap();
    let (code, out) = c.cli(0, &["reload"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("running configuration kept"), "{out}");
    assert!(out.contains("ha.cf"), "{out}");
    c.expect_serving(0, Duration::from_secs(1), "after a failed reload");
}

/// A second daemon on the same config dir is refused.
#[test]
fn second_instance_on_the_same_config_is_refused() {
    if !support::lab_available("second_instance_on_the_same_config_is_refused") {
        return;
    }
    let mut c = Cluster::new("e2epid", FAST, "on", &single_group(), &[VIP]);
    c.start(0);
    wait_until_log(&c, 0, "starting as node1", Duration::from_secs(30));
    let out = c.lab.nodes[0]
        .command(BIN)
        .args(["run", "--node", "node1", "--config-dir"])
        .arg(c.config_dir(0))
        .arg("--runtime-dir")
        .arg(c.runtime_dir(0))
        .arg("--cache-dir")
        .arg(support::shared_agent_cache())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("already runs for this configuration"), "{err}");
}

/// Resource monitoring (agents.toml `monitor`/`restarts`): a VIP removed
/// behind the daemon's back is restored locally; once the restart budget is
/// spent the group moves to the peer.
#[test]
fn monitored_resource_is_restarted_then_handed_over() {
    if !support::lab_available("monitored_resource_is_restarted_then_handed_over") {
        return;
    }
    let t = FAST;
    let mut c = Cluster::new("e2emon", t, "on", &single_group(), &[VIP]);
    for i in 0..2 {
        std::fs::write(
            c.config_dir(i).join("agents.toml"),
            "[agent.IPaddr]\nmonitor = \"200ms\"\nrestarts = 2\n",
        )
        .unwrap();
    }
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(2), "before the failures");
    let vanish = |c: &Cluster| {
        c.lab.nodes[0].ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    };
    for n in 1..=2 {
        vanish(&c);
        let back = c.expect_serving(0, Duration::from_secs(3), "restored locally");
        eprintln!("failure {n}: VIP restored on node1 after {back:?}");
    }
    assert_eq!(
        c.log_text(0)
            .matches("restarted locally after a failed monitor")
            .count(),
        2,
        "{}",
        c.log_text(0)
    );
    vanish(&c);
    let moved = c.expect_serving(
        1,
        Duration::from_secs(5),
        "budget spent: group goes to node2",
    );
    eprintln!("third failure: group on node2 after {moved:?}");
    assert!(c
        .log_text(0)
        .contains("keeps failing after 2 local restart(s)"));
}

/// Reload loads and compiles agents off the heartbeat thread: at deadtime
/// 300 ms, node1 reloads a configuration with a new group whose agent (the
/// Python example, 18 MB of component) is not in its cache. Compiling it
/// takes far longer than the deadtime; node2 must never declare node1 dead
/// and the client must never lose the VIP.
#[test]
fn reload_compiling_a_cold_agent_keeps_heartbeats() {
    if !support::lab_available("reload_compiling_a_cold_agent_keeps_heartbeats") {
        return;
    }
    let Some(py) = support::example_agent("python-tcpservice.wasm") else {
        return;
    };
    let t = Timings {
        keepalive: "100ms",
        deadtime: "300ms",
        warntime: "200ms",
        initdead: "1",
        dead: Duration::from_millis(300),
    };
    let mut c = Cluster::new("e2ecold", t, "on", &single_group(), &[VIP]);
    // node1's cache starts empty: the reload must compile the agent.
    let cold = c.dir.0.join("node1.cold-cache");
    c.caches[0] = Some(cold.clone());
    c.boot(t);
    c.expect_serving(0, Duration::from_secs(2), "before reload");

    let srv = c.dir.0.join("ts");
    std::fs::create_dir_all(&srv).unwrap();
    let srv = srv.display().to_string();
    std::fs::write(
        c.config_dir(0).join("haresources"),
        format!(
            "{}node2 {}::{VIP2}:18080::{srv}/ts.pid\n",
            single_group(),
            py.display()
        ),
    )
    .unwrap();
    std::fs::write(
        c.config_dir(0).join("agents.toml"),
        format!(
            "[agent.python-tcpservice]\naccept_declared = true\n\
             commands.server = [\"/usr/bin/python3\", \"{srv}/lab_server.py\", \"{VIP2}\", \"18080\", \"{srv}/ts.pid\"]\n"
        ),
    )
    .unwrap();

    let addr: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let client = &c.lab.nodes[2];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (took, out, code, (ok, missed)) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            support::in_netns(client, || {
                let (mut ok, mut missed) = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match support::http_get(addr).as_deref() {
                        Some("node1") => ok += 1,
                        _ => missed += 1,
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (ok, missed)
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let (code, out) = c.cli(0, &["reload"]);
        let took = t0.elapsed();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (took, out, code, h.join().unwrap())
    });
    eprintln!(
        "reload with a cold Python agent took {took:?}; client: {ok} answers, {missed} missed"
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration reloaded"), "{out}");
    assert!(
        took > t.dead * 3,
        "the reload took only {took:?}: the agent was not compiled cold, so this proves nothing"
    );
    assert!(
        std::fs::read_dir(&cold).map(|d| d.count()).unwrap_or(0) > 0,
        "nothing was compiled into the cold cache"
    );
    let log2 = c.log_text(1);
    assert!(
        !log2.contains("node node1 declared dead"),
        "node2 declared node1 dead during its reload:\n{log2}"
    );
    assert!(ok > 20, "too few answers: {ok}");
    assert_eq!(
        missed, 0,
        "the client missed {missed} answers during the reload"
    );
    c.expect_serving(0, Duration::from_secs(1), "after the reload");
}

/// `curl` inside the client namespace; None when it fails.
fn client_curl(c: &Cluster, args: &[&str]) -> Option<String> {
    let mut all = vec!["-s", "--fail", "--max-time", "3"];
    all.extend_from_slice(args);
    let out = c.lab.nodes[2].exec("curl", &all);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An instant query through Prometheus' HTTP API: each series' labels
/// and value.
fn prometheus_query(c: &Cluster, query: &str) -> Option<Vec<(serde_json::Value, f64)>> {
    let text = client_curl(
        c,
        &[
            "-G",
            "http://127.0.0.1:9090/api/v1/query",
            "--data-urlencode",
            &format!("query={query}"),
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    (v["status"] == "success").then_some(())?;
    Some(
        v["data"]["result"]
            .as_array()?
            .iter()
            .filter_map(|s| Some((s["metric"].clone(), s["value"][1].as_str()?.parse().ok()?)))
            .collect(),
    )
}

/// Wait until `query` returns series, all from `instance`; their values.
fn wait_prometheus(c: &Cluster, query: &str, instance: &str, limit: Duration) -> Vec<f64> {
    let mut last = None;
    let got = support::wait_for(limit, Duration::from_millis(250), || {
        let r = prometheus_query(c, query);
        last = r.clone();
        let r = r?;
        (!r.is_empty() && r.iter().all(|(m, _)| m["instance"] == instance))
            .then(|| r.iter().map(|(_, v)| *v).collect())
    });
    got.unwrap_or_else(|| {
        c.dump_logs();
        panic!("Prometheus never answered {query} with only {instance} within {limit:?}; last answer: {last:?}")
    })
}

#[test]
fn prometheus_scrapes_both_nodes_and_sees_the_group_move() {
    if !support::lab_available("prometheus_scrapes_both_nodes_and_sees_the_group_move") {
        return;
    }
    let mut c = Cluster::new("prom", FAST, "on", &single_group(), &[VIP]);
    c.extra_args = "--metrics-listen 0.0.0.0:9694".into();
    c.boot(FAST);

    // A real Prometheus (Debian's) in the client namespace, scraping both.
    let prom = c.dir.0.join("prometheus");
    std::fs::create_dir_all(prom.join("data")).unwrap();
    std::fs::write(
        prom.join("prometheus.yml"),
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: wasmbeat\n    static_configs:\n      - targets: ['10.77.0.1:9694', '10.77.0.2:9694']\n",
    )
    .unwrap();
    let mut server = Command::new("sh");
    server.args([
        "-c",
        &format!(
            "exec prometheus --config.file={dir}/prometheus.yml --storage.tsdb.path={dir}/data --web.listen-address=127.0.0.1:9090 2>>{dir}/prometheus.log",
            dir = prom.display()
        ),
    ]);
    c.lab.nodes[2].spawn(server);

    // node1 runs the group, as Prometheus sees it.
    wait_prometheus(
        &c,
        "wasmbeat_group_running_here == 1",
        "10.77.0.1:9694",
        Duration::from_secs(60),
    );

    // Every metric family is exported; print the names for the record.
    let text = client_curl(&c, &["http://10.77.0.2:9694/metrics"]).expect("scrape node2");
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort();
    println!("metric families: {}", names.join(" "));
    // (Operation histograms appear with the first operation: node2 ran none yet.)
    for want in [
        "wasmbeat_transitions",
        "wasmbeat_monitor_restarts",
        "wasmbeat_split_brains",
        "wasmbeat_packets_accepted",
        "wasmbeat_packets_dropped",
        "wasmbeat_node_info",
        "wasmbeat_node_state",
        "wasmbeat_link_up",
        "wasmbeat_link_last_heard_age_seconds",
        "wasmbeat_group_owner",
        "wasmbeat_group_running_here",
        "wasmbeat_group_state",
    ] {
        assert!(
            names.contains(&want),
            "{want} missing from /metrics:\n{text}"
        );
    }
    assert_eq!(
        client_curl(&c, &["http://10.77.0.2:9694/other"]),
        None,
        "only /metrics is served"
    );

    // Crash node1: node2 takes over, and Prometheus shows the group move.
    let killed = Instant::now();
    c.kill(0, libc::SIGKILL);
    c.wait_exit(0, Duration::from_secs(10));
    c.expect_client_reaches(
        1,
        FAST.dead * 4 + Duration::from_secs(10),
        "after kill -9 of node1",
    );
    wait_prometheus(
        &c,
        "wasmbeat_group_running_here == 1",
        "10.77.0.2:9694",
        Duration::from_secs(30),
    );
    let failovers = wait_prometheus(
        &c,
        "wasmbeat_transitions_total{cause=\"failover\"} > 0",
        "10.77.0.2:9694",
        Duration::from_secs(10),
    );
    let dead = wait_prometheus(
        &c,
        "wasmbeat_node_state{node=\"node1\",state=\"dead\"} == 1",
        "10.77.0.2:9694",
        Duration::from_secs(10),
    );
    let starts = wait_prometheus(
        &c,
        "wasmbeat_group_operation_seconds_count{op=\"start\",result=\"ok\"} > 0",
        "10.77.0.2:9694",
        Duration::from_secs(10),
    );
    let text = client_curl(&c, &["http://10.77.0.2:9694/metrics"]).expect("scrape node2");
    for want in [
        "# TYPE wasmbeat_group_operation_seconds histogram",
        "# TYPE wasmbeat_agent_operation_seconds histogram",
        "wasmbeat_agent_operation_seconds_count{agent=\"IPaddr\",op=\"start\"} 1",
    ] {
        assert!(
            text.contains(want),
            "{want} missing after the takeover:\n{text}"
        );
    }
    println!(
        "Prometheus saw the move {:.1} s after kill -9: failovers {failovers:?}, node1 dead {dead:?}, starts on node2 {starts:?}",
        killed.elapsed().as_secs_f64()
    );

    // A medium that cannot send shows in status and the metrics, not only
    // in the log: node2's interface down for a second fails every
    // heartbeat it sends there (no route to the broadcast address).
    let sends = |c: &Cluster| -> u64 {
        let (code, out) = c.cli(1, &["status", "--json"]);
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["media"][0]["link"], "bcast eth0", "{out}");
        v["media"][0]["send_errors"].as_u64().expect("send_errors")
    };
    let before = sends(&c);
    c.lab.nodes[1].ip(&["link", "set", "eth0", "down"]);
    std::thread::sleep(Duration::from_secs(1));
    c.lab.nodes[1].ip(&["link", "set", "eth0", "up"]);
    let after = sends(&c);
    // keepalive 50 ms: about 20 failed sends; a loaded machine sends fewer.
    assert!(
        after >= before + 3,
        "send errors with eth0 down for 1 s: {before} before, {after} after"
    );
    let (_, human) = c.cli(1, &["status"]);
    let shown: u64 = human
        .lines()
        .find_map(|l| l.strip_prefix("media: bcast eth0 "))
        .and_then(|rest| rest.strip_suffix(" send / 0 receive errors"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no media line in status:\n{human}"));
    assert!(shown >= after, "status shows {shown}, JSON said {after}");
    let text = support::wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        client_curl(&c, &["http://10.77.0.2:9694/metrics"])
    })
    .expect("scrape node2 once eth0 is back");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("wasmbeat_medium_errors_total{")
                && l.contains("link=\"bcast eth0\"")
                && l.contains("direction=\"send\"")
        })
        .unwrap_or_else(|| panic!("no send-error series for bcast eth0:\n{text}"));
    let exported: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(exported >= after, "{line} (status said {after})");
    println!(
        "eth0 down 1 s on node2: {} send errors counted, exported as `{line}`",
        after - before
    );
}

#[test]
fn notify_hooks_run_in_order_confined_and_bounded() {
    if !support::lab_available("notify_hooks_run_in_order_confined_and_bounded") {
        return;
    }
    let mut c = Cluster::new("hooks", FAST, "on", &single_group(), &[VIP]);
    // The hook runs as nobody: its log must be writable by anyone.
    let log = c.dir.0.join("hook.log");
    std::fs::write(&log, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let policy = format!(
        r#"[notify.record]
argv = ["/bin/sh", "-c", "echo \"$1|$2|$3|uid=$(id -u)|$(grep CapEff /proc/self/status | tr -d '\t')\" >> {log}", "hook"]
events = ["peer_dead", "failover", "group_started", "group_stopped"]

[notify.stuck]
argv = ["/bin/sh", "-c", "sleep 30", "stuck"]
events = ["group_started"]
timeout = 1
"#,
        log = log.display()
    );
    for i in 0..2 {
        std::fs::write(c.config_dir(i).join("agents.toml"), &policy).unwrap();
    }
    c.boot(FAST);
    c.kill(0, libc::SIGKILL);
    c.wait_exit(0, Duration::from_secs(5));
    c.expect_client_reaches(1, FAST.dead * 4 + Duration::from_secs(10), "node1 killed");

    // node2's hooks: peer dead, failover, group started, in that order.
    let want = [
        "peer_dead|node2|node node1 declared dead",
        "failover|node2|",
        "group_started|node2|group ",
    ];
    let lines = support::wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let node2: Vec<String> = text
            .lines()
            .filter(|l| l.contains("|node2|"))
            .map(str::to_string)
            .collect();
        want.iter()
            .all(|w| node2.iter().any(|l| l.starts_with(w)))
            .then_some(node2)
    })
    .unwrap_or_else(|| {
        c.dump_logs();
        panic!(
            "hook log lacks {want:?}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    println!("node2's hook ran for:\n{}", lines.join("\n"));
    let pos = |w: &str| lines.iter().position(|l| l.starts_with(w)).unwrap();
    assert!(
        pos(want[0]) < pos(want[1]) && pos(want[1]) < pos(want[2]),
        "hooks ran out of order:\n{}",
        lines.join("\n")
    );
    // Confined: nobody, no capabilities (not a root shell).
    for l in &lines {
        assert!(l.contains("|uid=65534|"), "hook not run as nobody: {l}");
        assert!(
            l.ends_with("CapEff:0000000000000000"),
            "hook kept capabilities: {l}"
        );
    }
    // The stuck hook was killed at its timeout, and heartbeats went on.
    wait_until_log(&c, 1, "ran past its timeout of 1s", Duration::from_secs(15));
    let text = c.log_text(1);
    assert!(
        !text.contains("late heartbeat"),
        "a hook delayed the loop:\n{text}"
    );
    assert!(c.holders_of(VIP).contains(&1));
}

/// A service that ignores its stop (the agent's stop fails while its
/// server runs): a graceful shutdown kills what the resource started,
/// stops it again, and only then tells the peer (shutdone), well inside
/// the shutdown bound, instead of retrying until the bound and exiting
/// with the group half-running.
#[test]
fn shutdown_escalates_a_stop_that_fails_before_telling_the_peer() {
    if !support::lab_available("shutdown_escalates_a_stop_that_fails_before_telling_the_peer") {
        return;
    }
    let agent = PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join("broken_stubborn.wasm");
    // One marker per node (its agents.toml), so each node's server is told
    // apart; unique to this test process.
    let marker = |i: usize| format!("wbstubborn-{}-node{}", std::process::id(), i + 1);
    let haresources = format!(
        "node1 IPaddr::{VIP}/24/eth0 {}::server=server::check=check\n",
        agent.display()
    );
    // Declared before the cluster: dropped after it, so on a failed
    // assertion no server outlives the test (the lab SIGKILLs the daemons,
    // which then cannot stop them).
    let _reaper = Reaper(format!("wbstubborn-{}-", std::process::id()));
    let mut c = Cluster::new("stubborn", FAST, "on", &haresources, &[VIP]);
    for i in 0..2 {
        let m = marker(i);
        std::fs::write(
            c.config_dir(i).join("agents.toml"),
            format!(
                "[agent.broken_stubborn]\n\
                 commands.server = [\"/bin/bash\", \"-c\", \"exec -a {m} sleep 1000\"]\n\
                 commands.check = [\"/usr/bin/pgrep\", \"-f\", \"{m}\"]\n"
            ),
        )
        .unwrap();
    }
    let server_running = |i: usize| !servers(&marker(i)).is_empty();
    c.boot(FAST);
    assert!(server_running(0), "the stubborn server runs on node1");

    let stop = Instant::now();
    c.kill(0, libc::SIGTERM);
    let code = c.wait_exit(0, Duration::from_secs(60));
    let took = stop.elapsed();
    let log = c.log_text(0);
    println!(
        "node1 shut down in {:.1} s (exit {code:?})",
        took.as_secs_f64()
    );
    assert_eq!(code, Some(0), "graceful exit:\n{log}");
    assert!(
        took < Duration::from_secs(30),
        "shutdown took {took:?}: the failed stop was retried instead of escalated\n{log}"
    );
    assert!(
        log.contains("stopped after killing 1 process(es) its stop left running"),
        "no escalation in the log:\n{log}"
    );
    assert!(log.contains("shutdone sent"), "{log}");
    assert!(!server_running(0), "node1's server survived its shutdown");
    c.expect_serving(
        1,
        FAST.dead * 4 + Duration::from_secs(10),
        "after node1's shutdown",
    );

    // node2 runs the group now, server included; its shutdown escalates too.
    // The VIP serves before the group's next resource, the server, has
    // started: wait for it too.
    let started = support::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        server_running(1).then_some(())
    });
    assert!(
        started.is_some(),
        "node2 started the server\n{}",
        c.log_text(1)
    );
    c.kill(1, libc::SIGTERM);
    assert_eq!(c.wait_exit(1, Duration::from_secs(60)), Some(0));
    assert!(!server_running(1), "node2's server survived its shutdown");
}

/// PIDs of the processes whose command line carries `marker`.
fn servers(marker: &str) -> Vec<i32> {
    let out = Command::new("pgrep").args(["-f", marker]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills, by PID, what is left of the test's servers (unique marker).
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in servers(&self.0) {
            // SAFETY: kill(2) on a PID pgrep just reported for our marker.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Status of `peer` in node `i`'s `status --json`, and its drop counters.
fn peer_view(c: &Cluster, i: usize, peer: &str) -> Option<(String, serde_json::Value)> {
    let (code, out) = c.cli(i, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let status = v["cluster"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == peer)?["status"]
        .as_str()?
        .to_string();
    (code == 0).then(|| (status, v["packets"]["dropped"].clone()))
}

/// An attacker who recorded a peer's packet replays it to a node that has
/// just restarted, while the peer is down: the node remembers the peer's
/// (generation, seq) across the restart (`wb_peer_seq` in its state
/// directory), refuses the copy and counts it, and the dead peer does not
/// come back to life (which would hold off a takeover, or with a recorded
/// `hb_takeover`, move groups).
#[test]
fn a_packet_replayed_after_a_restart_is_refused() {
    if !support::lab_available("a_packet_replayed_after_a_restart_is_refused") {
        return;
    }
    let mut c = Cluster::new("e2ereplay", FAST, "on", &single_group(), &[VIP]);
    c.boot(FAST);
    // Recorded from the client's namespace: node2's broadcasts reach it.
    let recorded: Vec<u8> = c.lab.nodes[2].run_inside(|| {
        let s = std::net::UdpSocket::bind("0.0.0.0:694").expect("bind 694");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                if from.ip().to_string() == "10.77.0.2"
                    && buf[..n].windows(9).any(|w| w == b"t=status,")
                {
                    return buf[..n].to_vec();
                }
            }
        }
        panic!("no status packet from node2 within 10 s");
    });
    // node2 dies; node1 notices, then restarts gracefully (its state
    // written on the way out) and comes back alone.
    c.kill(1, libc::SIGKILL);
    assert!(c.wait_exit(1, Duration::from_secs(5)).is_some());
    let dead = support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        peer_view(&c, 0, "node2").filter(|(s, _)| s == "dead")
    });
    assert!(dead.is_some(), "node1 never declared node2 dead");
    c.kill(0, libc::SIGTERM);
    assert_eq!(c.wait_exit(0, Duration::from_secs(60)), Some(0));
    c.start(0);
    let up = support::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        peer_view(&c, 0, "node2")
    });
    let (before, _) = up.expect("restarted node1 never answered status");
    assert_ne!(before, "active", "node2 active before any replay");

    c.lab.nodes[2].run_inside(|| {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..3 {
            s.send_to(&recorded, "10.77.0.1:694").unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let counted = support::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        let (_, drops) = peer_view(&c, 0, "node2")?;
        (drops["replay"].as_u64().unwrap_or(0) >= 3).then_some(drops)
    });
    let after = peer_view(&c, 0, "node2");
    assert!(
        counted.is_some(),
        "the replayed packets were not counted as replays after the restart: node2 {after:?}\n{}",
        c.log_text(0)
    );
    // Given a moment, the recorded status still brought nobody back.
    std::thread::sleep(Duration::from_millis(300));
    let (now, drops) = peer_view(&c, 0, "node2").expect("status");
    assert!(
        now != "active" && now != "up",
        "a replayed status revived node2 ({now}); drops {drops}"
    );
    eprintln!("replayed after restart: node2 {now}, drops {drops}");

    // Control: the same restart without the saved state (as before
    // wb_peer_seq existed) takes the recorded packet for node2 alive.
    c.kill(0, libc::SIGTERM);
    assert_eq!(c.wait_exit(0, Duration::from_secs(60)), Some(0));
    // The runtime dir holds one sub-directory per config dir.
    let saved = std::fs::read_dir(c.runtime_dir(0))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join("state").join("wb_peer_seq")))
        .find(|p| p.exists())
        .expect("node1 saved no wb_peer_seq in its state directory");
    std::fs::remove_file(&saved).unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
    c.start(0);
    let up = support::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        peer_view(&c, 0, "node2")
    });
    assert!(up.is_some(), "restarted node1 never answered status");
    let revived = support::wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
        c.lab.nodes[2].run_inside(|| {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.send_to(&recorded, "10.77.0.1:694").unwrap();
        });
        peer_view(&c, 0, "node2").filter(|(s, _)| s == "active" || s == "up")
    });
    assert!(
        revived.is_some(),
        "control failed: without the saved state the replay should have been accepted: {:?}",
        peer_view(&c, 0, "node2")
    );
}

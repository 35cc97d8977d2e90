//! STONITH end to end on the two-network lab of `ping_nodes_lab.rs`
//! (heartbeat link `hb0` between the nodes only, public LAN with a router
//! namespace and a client). The router namespace also runs a simulated
//! power switch (`wasmbeat_lab::power_switch`, 10.88.0.254:8080/pdu) that,
//! on `off`/`reset` of a node, cuts both of its links and kills its daemon
//! by the PID this test recorded, *then* answers; it logs every request.
//!
//! - wasmbeat + wasmbeat, heartbeat link cut while node1 serves the VIP:
//!   exactly one node (node2, which must take over) fences the other, and
//!   the VIP is never reachable on both nodes at once;
//! - the same with the switch unreachable: no takeover, a clear log line,
//!   `status` shows the pending fence, `wasmbeat fence-ack` releases it;
//! - a mixed cluster (node1 = real heartbeat 3.0.6 with a cluster-glue
//!   external plugin calling the same switch, node2 = wasmbeat) in both
//!   directions: the node that hangs (SIGSTOP) holding the VIP is fenced
//!   by the other, which then serves the VIP.
//!
//! Bounds (keepalive 200/500 ms, deadtime 2/4 s): the survivor serves the
//! VIP within deadtime + the fence delay when it applies + 8 s (fencing
//! over HTTP, heartbeat's stonith child forking curl, IPaddr's start on a
//! loaded 2-core machine). Run alone: `cargo test --test fencing_lab`.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::uplinks::{TwoNetworks, VIP};
use support::TempDir;
use wasmbeat_lab::power_switch::{Outlet, Power, PowerSwitch};

const SWITCH: &str = "10.88.0.254:8080";
const BASE: &str = "http://10.88.0.254:8080/pdu";

/// When a node's outlet went off, by node index.
type OffTimes = Arc<Mutex<[Option<Instant>; 2]>>;

/// What the switch's outlet for node `i` does on `off`: cut its public
/// port at the bridge and its heartbeat cable, then SIGKILL `pid` (the
/// daemon, or heartbeat's `unshare`, whose PID namespace dies with it).
fn outlet(net: &TwoNetworks, i: usize, pid: Arc<Mutex<Option<u32>>>, offs: OffTimes) -> Outlet {
    let switch_ns = net.lab.switch.name.clone();
    let node_ns = net.lab.nodes[i].name.clone();
    Box::new(move |power| {
        if power == Power::On {
            return Err("this lab does not power nodes back on".into());
        }
        let ip = |ns: &str, args: &[&str]| {
            std::process::Command::new("ip")
                .args(["-n", ns])
                .args(args)
                .status()
                .map_err(|e| e.to_string())
        };
        ip(&switch_ns, &["link", "set", &format!("p{i}"), "down"])?;
        ip(&node_ns, &["link", "set", "hb0", "down"])?;
        if let Some(pid) = *pid.lock().unwrap() {
            // SAFETY: kill(2) on the PID this test recorded when it spawned it.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        offs.lock().unwrap()[i] = Some(Instant::now());
        Ok(())
    })
}

struct Fenced {
    net: TwoNetworks,
    dir: TempDir,
    pids: [Arc<Mutex<Option<u32>>>; 2],
    offs: OffTimes,
    switch: Option<PowerSwitch>,
    /// heartbeat's root when node1 runs the real heartbeat.
    hb_root: Option<PathBuf>,
}

impl Fenced {
    /// Two nodes; `owner` is the node the VIP's group prefers; `switch`:
    /// whether the power switch serves at all; `heartbeat`: node1 runs
    /// the real heartbeat 3.0.6 instead of wasmbeat.
    fn new(tag: &str, owner: usize, switch: bool, heartbeat: bool) -> Fenced {
        let net = TwoNetworks::new(tag);
        let dir = TempDir::new(tag);
        let pids = [Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None))];
        let offs: OffTimes = Arc::new(Mutex::new([None, None]));
        let switch = switch.then(|| {
            let listener = support::in_netns(&net.lab.nodes[2], || TcpListener::bind(SWITCH))
                .unwrap_or_else(|e| panic!("switch bind {SWITCH}: {e}"));
            let outlets = BTreeMap::from([
                (
                    "node1".to_string(),
                    outlet(&net, 0, pids[0].clone(), offs.clone()),
                ),
                (
                    "node2".to_string(),
                    outlet(&net, 1, pids[1].clone(), offs.clone()),
                ),
            ]);
            PowerSwitch::serve(listener, "/pdu", outlets, None)
        });
        let timing = if heartbeat {
            "keepalive 500ms\ndeadtime 4\nwarntime 2\ninitdead 8\n"
        } else {
            "keepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 4\n"
        };
        let common =
            format!("{timing}udpport 694\nbcast hb0\nauto_failback on\nnode node1\nnode node2\n");
        let haresources = format!("node{} IPaddr::{VIP}/24/eth0\n", owner + 1);
        let wb_stonith = format!("stonith_host * http-switch base={BASE}\n");
        let mut hb_root = None;
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::spawn_responder(&net.lab.nodes[i], "0.0.0.0:80", name);
        }
        if heartbeat {
            let root = dir.0.join("hb");
            wasmbeat_lab::heartbeat::prepare_root(&root).unwrap();
            wasmbeat_lab::heartbeat::install_http_switch_plugin(&root).unwrap();
            support::write_node_config(
                &root.join("etc"),
                &format!(
                    "logfile {}\nlogfacility none\ndebug 1\nrealtime off\ncrm off\n{common}\
                     stonith_host * external/wasmbeat-http-switch {BASE}\n",
                    root.join("ha-log").display()
                ),
                &haresources,
            );
            hb_root = Some(root);
        } else {
            support::write_node_config(
                &dir.0.join("node1"),
                &format!("{common}{wb_stonith}"),
                &haresources,
            );
        }
        support::write_node_config(
            &dir.0.join("node2"),
            &format!("{common}{wb_stonith}"),
            &haresources,
        );
        let f = Fenced {
            net,
            dir,
            pids,
            offs,
            switch,
            hb_root,
        };
        for i in 0..2 {
            f.start(i);
        }
        f
    }

    fn start(&self, i: usize) {
        let pid = match (&self.hb_root, i) {
            (Some(root), 0) => self.net.lab.nodes[0].spawn(wasmbeat_lab::heartbeat::node_command(
                root,
                "node1",
                Some(&root.join("hb.out")),
            )),
            _ => {
                let name = format!("node{}", i + 1);
                self.net.lab.nodes[i].spawn(support::daemon_command(
                    &self.dir.0.join(&name),
                    &name,
                    &self.run_dir(i),
                    &self.log(i),
                ))
            }
        };
        *self.pids[i].lock().unwrap() = Some(pid);
    }

    fn run_dir(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("node{}.run", i + 1))
    }

    fn log(&self, i: usize) -> PathBuf {
        match (&self.hb_root, i) {
            (Some(root), 0) => root.join("ha-log"),
            _ => self.dir.0.join(format!("node{}.log", i + 1)),
        }
    }

    fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let switch = self
            .switch
            .as_ref()
            .map(|s| format!("{:#?}", s.requests()))
            .unwrap_or_else(|| "(no switch)".into());
        (0..2)
            .map(|i| {
                let text: Vec<String> = self
                    .log_text(i)
                    .lines()
                    .filter(|l| !l.contains("api_") && !l.contains("debug:"))
                    .map(str::to_string)
                    .collect();
                format!("----- node{} -----\n{}\n", i + 1, text.join("\n"))
            })
            .chain(std::iter::once(format!("----- switch -----\n{switch}\n")))
            .collect()
    }

    /// Wait until node `i` holds the VIP and the client gets node i's
    /// answer there (a fenced node may keep the address in its dead,
    /// unplugged namespace); how long it took.
    fn vip_on(&self, i: usize, limit: Duration, why: &str) -> Duration {
        let t = Instant::now();
        let want = format!("node{}", i + 1);
        support::wait_for(limit, Duration::from_millis(20), || {
            (self.net.holds_vip(i) && self.net.served_by().as_deref() == Some(want.as_str()))
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{why}: node{} did not serve the VIP within {limit:?}\n{}",
                i + 1,
                self.logs()
            )
        });
        t.elapsed()
    }

    /// Node `i`'s heartbeat cable down: a partition (both sides lose it).
    fn cut_heartbeat_link(&self, i: usize) {
        self.net.lab.nodes[i].ip(&["link", "set", "hb0", "down"]);
    }

    /// Whether node `i` answers for the VIP on the LAN: holds the address
    /// and its public port is up (a fenced node keeps the address in its
    /// dead namespace, but no frame leaves it).
    /// Sample both nodes every 10 ms for `d`: the first instant both
    /// answered for the VIP, if any. Addresses are read first and the
    /// outlets last: the switch cuts a node before it answers, so a node
    /// seen unplugged after both addresses were read was unplugged before
    /// the survivor could start its copy.
    /// Also returns when node2 was first seen holding the VIP.
    fn both_reachable_within(&self, d: Duration) -> (Option<Duration>, Option<Duration>) {
        let start = Instant::now();
        let mut node2_from = None;
        while start.elapsed() < d {
            let held = [self.net.holds_vip(0), self.net.holds_vip(1)];
            let offs = *self.offs.lock().unwrap();
            if held[1] && node2_from.is_none() {
                node2_from = Some(start.elapsed());
            }
            if (0..2).all(|i| held[i] && offs[i].is_none()) {
                return (Some(start.elapsed()), node2_from);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (None, node2_from)
    }

    fn power_requests(&self) -> Vec<wasmbeat_lab::power_switch::SwitchRequest> {
        self.switch
            .as_ref()
            .map(|s| s.power_requests())
            .unwrap_or_default()
    }

    /// `wasmbeat ARGS` against node `i`'s daemon: exit code and output.
    fn cli(&self, i: usize, args: &[&str]) -> (i32, String) {
        support::control_cli(
            std::path::Path::new(env!("CARGO_BIN_EXE_wasmbeat")),
            &self.dir.0.join(format!("node{}", i + 1)),
            &self.run_dir(i),
            args,
        )
    }

    fn wait_log(&self, i: usize, text: &str, limit: Duration) {
        support::wait_for(limit, Duration::from_millis(50), || {
            self.log_text(i).contains(text).then_some(())
        })
        .unwrap_or_else(|| panic!("node{} never logged {text:?}\n{}", i + 1, self.logs()));
    }

    /// Stop every process of node `i` (SIGSTOP): the daemon, or heartbeat's
    /// whole process tree below its recorded `unshare` PID. A hung node.
    fn hang(&self, i: usize) {
        let root = self.pids[i].lock().unwrap().expect("started");
        let mut todo = vec![root];
        let mut stopped = 0;
        while let Some(pid) = todo.pop() {
            if let Ok(kids) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
                todo.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<u32>().ok()),
                );
            }
            // SAFETY: kill(2) on the recorded PID or a child the kernel lists under it.
            unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
            stopped += 1;
        }
        println!("node{} hung: {stopped} process(es) stopped", i + 1);
    }
}

fn assert_one_reset(f: &Fenced, by: usize, of: &str) {
    let reqs = f.power_requests();
    assert_eq!(
        reqs.len(),
        1,
        "exactly one power request (no death match)\n{}",
        f.logs()
    );
    let r = &reqs[0];
    assert_eq!(
        (r.from.ip().to_string(), r.path.as_str(), r.status),
        (
            format!("10.88.0.{}", by + 1),
            &*format!("nodes/{of}/reset"),
            200
        ),
        "{r:?}"
    );
}

#[test]
fn a_partition_fences_exactly_one_node_and_the_vip_is_never_on_both() {
    if !support::lab_available("a_partition_fences_exactly_one_node_and_the_vip_is_never_on_both") {
        return;
    }
    let f = Fenced::new("fence", 0, true, false);
    f.vip_on(0, Duration::from_secs(30), "start: node1 takes its group");
    f.wait_log(1, "communication up: heard: node1", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));

    f.cut_heartbeat_link(0);
    let (both, node2_from) = f.both_reachable_within(Duration::from_secs(8));
    assert!(
        both.is_none(),
        "the VIP answered on both nodes {both:?} after the cut\n{}",
        f.logs()
    );
    f.vip_on(
        1,
        Duration::from_secs(12),
        "node2 takes over after fencing node1",
    );
    println!(
        "heartbeat link cut: node2 holds the VIP {:.0} ms later (deadtime 2 s); sampled 8 s, never on both",
        node2_from.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    );
    assert_one_reset(&f, 1, "node1");
    let log2 = f.log_text(1);
    let fenced = log2.find("node1 fenced").expect("node2 logs the fence");
    let started = log2[fenced..].find("group IPaddr::10.88.0.100");
    assert!(
        started.is_some(),
        "node2 starts the group only after 'node1 fenced'\n{}",
        f.logs()
    );
    assert!(
        f.log_text(0).contains("unneeded") || !f.log_text(0).contains("fencing node2"),
        "node1 does not fence an idle node2\n{}",
        f.logs()
    );
    assert!(
        f.offs.lock().unwrap()[0].is_some(),
        "node1's outlet went off"
    );
}

#[test]
fn an_unreachable_switch_means_no_takeover_until_the_operator_confirms() {
    if !support::lab_available(
        "an_unreachable_switch_means_no_takeover_until_the_operator_confirms",
    ) {
        return;
    }
    let f = Fenced::new("fenceno", 0, false, false);
    f.vip_on(0, Duration::from_secs(30), "start: node1 takes its group");
    f.wait_log(1, "communication up: heard: node1", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    // node1 dies for real: power gone, nobody asked the (absent) switch.
    f.net.uplink(0, false);
    f.cut_heartbeat_link(0);
    let pid = f.pids[0].lock().unwrap().unwrap();
    assert!(f.net.lab.nodes[0].kill(pid));
    f.wait_log(
        1,
        "STONITH of node1 failed (attempt 1)",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !f.net.holds_vip(1),
        "node2 took the VIP over without fencing node1\n{}",
        f.logs()
    );
    let (code, status) = f.cli(1, &["status"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("waiting for node1 to be fenced") && status.contains("fencing"),
        "status shows the pending fence:\n{status}"
    );
    let line = f
        .log_text(1)
        .lines()
        .find(|l| l.contains("STONITH of node1 failed"))
        .unwrap()
        .to_string();
    println!("node2 says: {line}");
    assert!(
        line.contains("not taking over") && line.contains("fence-ack node1"),
        "{line}"
    );
    let (code, out) = f.cli(1, &["fence-ack", "node2"]);
    assert_ne!(code, 0, "node2 is not a peer of itself: {out}");
    let (code, out) = f.cli(1, &["fence-ack", "node1"]);
    assert_eq!(code, 0, "{out}");
    let t = f.vip_on(
        1,
        Duration::from_secs(10),
        "node2 takes over once the operator confirms",
    );
    println!(
        "fence-ack: node2 holds the VIP {:.0} ms later",
        t.as_secs_f64() * 1000.0
    );
}

/// A mixed cluster: `owner` holds the VIP and hangs; the other node fences
/// it through the switch and serves the VIP.
fn mixed_hang(tag: &str, owner: usize) {
    let f = Fenced::new(tag, owner, true, true);
    f.vip_on(
        owner,
        Duration::from_secs(60),
        "start: the preferred node takes its group",
    );
    f.wait_log(1, "communication up: heard: node1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let survivor = 1 - owner;
    let t0 = Instant::now();
    f.hang(owner);
    // heartbeat (deadtime 4 s) and wasmbeat (deadtime 4 s, and 10 s of
    // fence delay facing a heartbeat peer that holds something).
    f.vip_on(
        survivor,
        Duration::from_secs(30),
        "the survivor fences the hung node and takes the VIP",
    );
    println!(
        "node{} hung holding the VIP: node{} serves it {:.1} s later",
        owner + 1,
        survivor + 1,
        t0.elapsed().as_secs_f64()
    );
    assert_one_reset(&f, survivor, &format!("node{}", owner + 1));
}

#[test]
fn wasmbeat_fences_a_hung_heartbeat_node_through_the_switch() {
    if !support::lab_available("wasmbeat_fences_a_hung_heartbeat_node_through_the_switch") {
        return;
    }
    mixed_hang("fencehb", 0);
}

#[test]
fn heartbeat_fences_a_hung_wasmbeat_node_through_the_switch() {
    if !support::lab_available("heartbeat_fences_a_hung_wasmbeat_node_through_the_switch") {
        return;
    }
    mixed_hang("fencewb", 1);
}

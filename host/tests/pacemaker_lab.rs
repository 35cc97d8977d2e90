//! A real three-node Pacemaker 2.1 + Corosync 3 cluster in network
//! namespaces (`wasmbeat_lab::pacemaker`) running the wasmbeat agents
//! through the OCF bridge, configured from `wasmbeat migrate pacemaker
//! --format crm` of a heartbeat `haresources` line
//! (`node1 IPaddr::VIP/24/eth0 httpd::VIP:80::apache::CONF::PID`), with a
//! client namespace probing the VIP over HTTP every 15 ms. Scenarios: the
//! active node crashes (every process of its namespace SIGKILLed by PID,
//! the VIP removed), its link is pulled, it is put in standby. Each
//! prints the client-visible gap. Then the same with Pacemaker's own
//! `ocf:heartbeat:IPaddr2` (nic=eth0) in place of `ocf:wasmbeat:IPaddr`
//! (the web server stays `ocf:wasmbeat:httpd`), side by side.
//!
//! The provider scripts of `wasmbeat ocf install` are bound over
//! `/usr/lib/ocf/resource.d/wasmbeat` inside each node's private mount
//! namespace (the host's /usr/lib/ocf is never written), and each node's
//! web root is its own directory bound over one common path, so the page
//! names the node that serves it.
//!
//!     cargo test -p wasmbeat --test pacemaker_lab -- --nocapture
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::TempDir;
use wasmbeat_lab::pacemaker::{Bind, Cluster};
use wasmbeat_lab::{services, Lab};

const NAMES: [&str; 3] = ["node1", "node2", "node3"];
const OCF_RD: &str = "/usr/lib/ocf/resource.d";

/// Whether the lab can run and Pacemaker, Corosync, crmsh and Apache are
/// installed (skip, or fail under WASMBEAT_REQUIRE_LAB=1).
fn ready(test: &str) -> bool {
    if !support::lab_available(test) {
        return false;
    }
    let missing: Vec<&str> = [
        "/usr/sbin/corosync",
        "/usr/sbin/pacemakerd",
        "/usr/sbin/crm",
        "/usr/sbin/apache2",
        "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: {missing:?} not installed (apt-get install pacemaker corosync crmsh apache2 resource-agents; scripts/setup.sh)"
    );
    if std::env::var("WASMBEAT_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("SKIP {msg}");
    false
}

/// Which IP agent the cluster runs.
#[derive(Clone, Copy, PartialEq)]
enum IpAgent {
    /// `ocf:wasmbeat:IPaddr`, as `wasmbeat migrate` writes it.
    Wasmbeat,
    /// Pacemaker's `ocf:heartbeat:IPaddr2` with nic=eth0 in its place.
    IPaddr2,
}

/// One lab: the temp dir, the cluster (nodes 0..3) and the client
/// namespace's name (lab node 3).
struct Setup {
    cluster: Cluster,
    client: String,
    vip: String,
    /// The generated configuration, for the report.
    crm: String,
    _tmp: TempDir,
}

/// The node configuration heartbeat had: ha.cf, haresources, agents.toml.
fn heartbeat_config(conf: &Path, vip: &str, web: &Path) {
    std::fs::create_dir_all(conf).unwrap();
    std::fs::write(
        conf.join("ha.cf"),
        "deadtime 5\nbcast eth0\nauto_failback off\nnode node1\nnode node2\nnode node3\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("haresources"),
        format!(
            "node1 IPaddr::{vip}/24/eth0 httpd::{vip}:80::apache::{w}/httpd.conf::{w}/apache.pid\n",
            w = web.display()
        ),
    )
    .unwrap();
    std::fs::write(conf.join("agents.toml"), "").unwrap();
}

/// `wasmbeat migrate pacemaker --format crm` of `conf`.
fn migrate(conf: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["migrate", "pacemaker", "--format", "crm", "--config-dir"])
        .arg(conf)
        .arg("--cache-dir")
        .arg(support::shared_agent_cache())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The migrate output with `ocf:wasmbeat:IPaddr` replaced by Pacemaker's
/// IPaddr2 (same id, same group, same location and stickiness).
fn with_ipaddr2(crm: &str, vip: &str) -> String {
    let from = format!("ocf:wasmbeat:IPaddr \\\n\tparams ip=\"{vip}/24/eth0\"");
    assert!(crm.contains(&from), "no IPaddr primitive in:\n{crm}");
    crm.replace(
        &from,
        &format!(
            "ocf:heartbeat:IPaddr2 \\\n\tparams ip=\"{vip}\" cidr_netmask=\"24\" nic=\"eth0\""
        ),
    )
}

fn setup(tag: &str, subnet: &str, agent: IpAgent) -> Setup {
    let tmp = TempDir::new(&format!("pcmk{tag}"));
    let vip = format!("{subnet}.100");
    let addrs: Vec<String> = (1..=3).map(|i| format!("{subnet}.{i}")).collect();
    let cidrs: Vec<String> = addrs
        .iter()
        .map(|a| format!("{a}/24"))
        .chain([format!("{subnet}.50/24")])
        .collect();
    let cidr_refs: Vec<&str> = cidrs.iter().map(String::as_str).collect();
    let lab = Lab::new(&format!("pm{tag}"), &cidr_refs).unwrap_or_else(|e| panic!("{e}"));
    let client = lab.nodes[3].name.clone();

    // The common web path every node's own web directory is bound over.
    let web = tmp.0.join("web");
    std::fs::create_dir_all(&web).unwrap();
    let conf = tmp.0.join("ha.d");
    heartbeat_config(&conf, &vip, &web);
    for name in NAMES {
        let own = tmp.0.join(format!("web-{name}"));
        std::fs::create_dir_all(own.join("www")).unwrap();
        std::fs::create_dir_all(own.join("logs")).unwrap();
        std::fs::write(own.join("www/index.html"), name).unwrap();
        std::fs::write(
            own.join("httpd.conf"),
            services::apache_conf(&web.display().to_string(), &format!("{vip}:80")),
        )
        .unwrap();
        services::chown("www-data", &own).unwrap();
    }

    // The provider: `wasmbeat ocf install` into a staging root whose
    // resource.d also has mount points for the packaged providers.
    let root = tmp.0.join("ocfroot");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["ocf", "install", "--root"])
        .arg(&root)
        .arg("--config-dir")
        .arg(&conf)
        .arg("--cache-dir")
        .arg(support::shared_agent_cache())
        .arg("--server-log-dir")
        .arg(web.join("logs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ocf install: {out:?}");
    let staged = root.join("usr/lib/ocf/resource.d");
    let mut binds = Vec::new();
    for provider in ["heartbeat", "pacemaker"] {
        std::fs::create_dir_all(staged.join(provider)).unwrap();
        binds.push(Bind {
            source: format!("{OCF_RD}/{provider}"),
            target: staged.join(provider),
            recursive: false,
        });
    }
    binds.push(Bind {
        source: staged.display().to_string(),
        target: PathBuf::from(OCF_RD),
        recursive: true,
    });
    binds.push(Bind {
        source: format!("{}/web-{{node}}", tmp.0.display()),
        target: web.clone(),
        recursive: false,
    });

    let mut crm = migrate(&conf);
    if agent == IpAgent::IPaddr2 {
        crm = with_ipaddr2(&crm, &vip);
    }
    let addr_refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut cluster = Cluster::new(
        lab,
        &format!("wb{tag}"),
        &NAMES,
        &addr_refs,
        &tmp.0.join("nodes"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.binds = binds;
    Setup {
        cluster,
        client,
        vip,
        crm,
        _tmp: tmp,
    }
}

/// HTTP probes of the VIP from the client namespace: (when, which node answered).
type Probes = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

/// A thread in namespace `ns` that GETs `vip`:80 every 15 ms (each
/// attempt bounded: 250 ms) until `stop`.
fn prober(
    ns: String,
    vip: SocketAddr,
    stop: Arc<AtomicBool>,
    probes: Probes,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread only, with a namespace fd we opened.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        while !stop.load(Ordering::SeqCst) {
            let body = wasmbeat_lab::http::get_body(vip, Duration::from_millis(250));
            probes.lock().unwrap().push((Instant::now(), body));
            std::thread::sleep(Duration::from_millis(15));
        }
    })
}

/// One GET of the VIP from the client namespace.
fn who_serves(s: &Setup) -> Option<String> {
    let addr: SocketAddr = format!("{}:80", s.vip).parse().unwrap();
    let ns = s.client.clone();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread only, with a namespace fd we opened.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        wasmbeat_lab::http::get_body(addr, Duration::from_millis(500))
    })
    .join()
    .unwrap()
}

/// What the client and the nodes see of the VIP, for failure messages.
fn diagnose(s: &Setup) -> String {
    let text = |o: std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let mut d = String::new();
    let curl = Command::new("ip")
        .args(["netns", "exec", &s.client, "curl", "-sS", "-m", "2", "-v"])
        .arg(format!("http://{}/", s.vip))
        .output()
        .map(text)
        .unwrap_or_default();
    d.push_str(&format!("client curl: {curl}\n"));
    for (i, n) in s.cluster.nodes.iter().enumerate() {
        let addrs = s.cluster.ns(i).addrs("eth0").unwrap_or_default();
        let ss = n.exec("ss", &["-ltnp"]).map(text).unwrap_or_default();
        d.push_str(&format!("{}: {addrs}{ss}\n", n.name));
    }
    d
}

fn node_index(name: &str) -> usize {
    NAMES.iter().position(|n| *n == name).unwrap()
}

/// Wait (bounded) until the VIP answers from the same node 10 times in a
/// row (resources settled); that node's index.
fn settled(s: &Setup, limit: Duration) -> usize {
    let mut last = None;
    let mut streak = 0;
    let got = support::wait_for(limit, Duration::from_millis(100), || {
        let now = who_serves(s);
        if now.is_some() && now == last {
            streak += 1;
        } else {
            streak = 0;
        }
        last = now;
        (streak >= 10).then(|| last.clone().unwrap())
    });
    let Some(name) = got else {
        let logs: String = (0..3).map(|i| s.cluster.logs(i, 30)).collect();
        panic!(
            "the VIP {} did not answer steadily within {limit:?} (last: {last:?}); {}; crm_mon:\n{}\n{logs}",
            s.vip,
            diagnose(s),
            s.cluster.any_running().map(|n| n.crm_mon()).unwrap_or_default()
        );
    };
    node_index(&name)
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Crash,
    LinkDown,
    Standby,
}

/// Run `scenario` on the active node while the client probes; the
/// client-visible gap (last answer of the old node to first answer of the
/// new one) and the new node. Then restore the old node and wait until
/// the cluster and the VIP are settled.
fn run_scenario(s: &mut Setup, scenario: Scenario) -> (Duration, usize, usize) {
    let active = settled(s, Duration::from_secs(60));
    let old = NAMES[active];
    let stop = Arc::new(AtomicBool::new(false));
    let probes: Probes = Arc::default();
    let vip: SocketAddr = format!("{}:80", s.vip).parse().unwrap();
    let handle = prober(s.client.clone(), vip, stop.clone(), probes.clone());
    std::thread::sleep(Duration::from_millis(300));
    let t_act = Instant::now();
    match scenario {
        Scenario::Crash => s.cluster.crash(active, &[&format!("{}/24", s.vip)]),
        Scenario::LinkDown => s.cluster.lab.set_link(active, false).unwrap(),
        Scenario::Standby => {
            let out = s.cluster.nodes[active]
                .crm(&["node", "standby", old])
                .unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "crm node standby {old}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let moved = support::wait_for(Duration::from_secs(60), Duration::from_millis(20), || {
        probes
            .lock()
            .unwrap()
            .iter()
            .find(|(t, b)| *t > t_act && b.as_deref().is_some_and(|b| b != old))
            .map(|(t, b)| (*t, b.clone().unwrap()))
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    handle.join().unwrap();
    let Some((t_new, new)) = moved else {
        let logs: String = (0..3).map(|i| s.cluster.logs(i, 40)).collect();
        panic!(
            "{scenario:?} of {old}: no other node answered on the VIP within 60 s; crm_mon:\n{}\n{logs}",
            s.cluster
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != active)
                .map(|(_, n)| n.crm_mon())
                .collect::<String>()
        );
    };
    let probes = probes.lock().unwrap();
    let t_last_old = probes
        .iter()
        .rev()
        .find(|(t, b)| *t < t_new && b.as_deref() == Some(old))
        .map(|(t, _)| *t)
        .expect("the old node answered before the scenario");
    let failed = probes
        .iter()
        .filter(|(t, b)| *t > t_last_old && *t < t_new && b.is_none())
        .count();
    let gap = t_new - t_last_old;
    eprintln!(
        "{scenario:?} of {old}: {new} answers after a gap of {} ms ({failed} failed probes; {} ms after the action)",
        gap.as_millis(),
        (t_new - t_act).as_millis()
    );
    drop(probes);

    // Restore the old node.
    match scenario {
        Scenario::Crash => s.cluster.start(active).unwrap_or_else(|e| panic!("{e}")),
        Scenario::LinkDown => s.cluster.lab.set_link(active, true).unwrap(),
        Scenario::Standby => {
            s.cluster.nodes[active]
                .crm(&["node", "online", old])
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let back = s.cluster.wait_online(Duration::from_secs(60));
    assert!(
        back.is_some(),
        "{old} did not rejoin within 60 s after {scenario:?}:\n{}\n{}",
        s.cluster.nodes[0].crm_mon(),
        s.cluster.logs(active, 40)
    );
    eprintln!("{old} rejoined in {:?}", back.unwrap());
    (gap, active, node_index(&new))
}

/// Bring the cluster up, load the configuration, run the scenarios; the
/// gaps in ms.
fn run_set(tag: &str, subnet: &str, agent: IpAgent, scenarios: &[Scenario]) -> Vec<u128> {
    let label = match agent {
        IpAgent::Wasmbeat => "ocf:wasmbeat:IPaddr",
        IpAgent::IPaddr2 => "ocf:heartbeat:IPaddr2",
    };
    let t0 = Instant::now();
    let mut s = setup(tag, subnet, agent);
    s.cluster.start_all().unwrap_or_else(|e| panic!("{e}"));
    let online = s.cluster.wait_online(Duration::from_secs(60));
    assert!(
        online.is_some(),
        "the cluster did not come online within 60 s:\n{}{}",
        s.cluster.nodes[0].crm_mon(),
        (0..3).map(|i| s.cluster.logs(i, 30)).collect::<String>()
    );
    eprintln!("[{label}] all 3 nodes online after {:?}", t0.elapsed());
    let file = s._tmp.0.join("cluster.crm");
    std::fs::write(&file, &s.crm).unwrap();
    eprintln!("[{label}] loading:\n{}", s.crm);
    let out = s.cluster.nodes[0]
        .load_update(&file)
        .unwrap_or_else(|e| panic!("crm configure load update: {e}"));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let active = settled(&s, Duration::from_secs(90));
    eprintln!(
        "[{label}] {} serves the VIP {} after {:?}:\n{}",
        NAMES[active],
        s.vip,
        t0.elapsed(),
        s.cluster.nodes[0].crm_mon()
    );
    assert_eq!(active, 0, "the location preference puts the group on node1");

    let mut gaps = Vec::new();
    for &sc in scenarios {
        let (gap, from, to) = run_scenario(&mut s, sc);
        assert_ne!(from, to);
        let bound = match sc {
            Scenario::Crash | Scenario::LinkDown => Duration::from_secs(30),
            Scenario::Standby => Duration::from_secs(20),
        };
        assert!(
            gap < bound,
            "[{label}] {sc:?}: client-visible gap {} ms, over the {bound:?} bound",
            gap.as_millis()
        );
        gaps.push(gap.as_millis());
    }
    // Operation history with exec times (where the agents' share of a gap is).
    if let Ok(o) = s.cluster.nodes[0].exec("crm_mon", &["-1", "-o", "-t"]) {
        eprintln!(
            "[{label}] operations:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let t_stop = Instant::now();
    let clean = s.cluster.stop_all(Duration::from_secs(40));
    eprintln!(
        "[{label}] stopped in {:?} (clean: {clean}); set took {:?}",
        t_stop.elapsed(),
        t0.elapsed()
    );
    gaps
}

const ALL: [Scenario; 3] = [Scenario::Crash, Scenario::LinkDown, Scenario::Standby];

#[test]
fn wasmbeat_agents_and_ipaddr2_fail_over_in_a_three_node_pacemaker_cluster() {
    if !ready("wasmbeat_agents_and_ipaddr2_fail_over_in_a_three_node_pacemaker_cluster") {
        return;
    }
    let t0 = Instant::now();
    let scenarios: Vec<Scenario> = match std::env::var("WASMBEAT_PCMK_SCENARIOS") {
        Ok(list) => list
            .split(',')
            .map(|n| match n.trim() {
                "crash" => Scenario::Crash,
                "link" => Scenario::LinkDown,
                "standby" => Scenario::Standby,
                other => panic!(
                    "WASMBEAT_PCMK_SCENARIOS: unknown scenario {other:?} (crash, link, standby)"
                ),
            })
            .collect(),
        Err(_) => ALL.to_vec(),
    };
    let wb = run_set("w", "10.77.110", IpAgent::Wasmbeat, &scenarios);
    let ip2 = run_set("i", "10.77.111", IpAgent::IPaddr2, &scenarios);
    eprintln!("client-visible gap (ms)   ocf:wasmbeat:IPaddr   ocf:heartbeat:IPaddr2");
    for (i, sc) in scenarios.iter().enumerate() {
        eprintln!("{:<25} {:>19}   {:>21}", format!("{sc:?}"), wb[i], ip2[i]);
    }
    eprintln!("whole comparison took {:?}", t0.elapsed());
}

//! The IPaddr agent against real interfaces in network namespaces: address
//! management, gratuitous ARP / unsolicited NA seen by a neighbour,
//! interface selection and argument forms, idempotence, and the CLI.
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{block_on_in, Lab, Netns};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::Policy;
use wasmbeat::runtime::bind::{bind_resource, BindError};
use wasmbeat::runtime::{AgentError, Resource, Runtime, RuntimeConfig, Status};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Bind a haresources token to the IPaddr agent with its built-in grant
/// (its declared needs bound to the token's arguments), as the daemon does.
async fn resource(rt: &Runtime, token: &str) -> Result<Resource, AgentError> {
    let t = ResourceToken::parse(token).unwrap();
    bind_resource(
        rt,
        &t,
        std::path::Path::new("/nonexistent"),
        &Policy::default(),
    )
    .await
    .map_err(|e| match e {
        BindError::Agent(a) => a,
        other => AgentError::InvalidArgs(other.to_string()),
    })
}

fn neigh(ns: &Netns, ip: &str) -> String {
    String::from_utf8_lossy(&ns.ip(&["neigh", "show", ip]).stdout).into_owned()
}

fn sysctl(ns: &Netns, kv: &str) {
    let out = ns.exec("sysctl", &["-qw", kv]);
    assert!(
        out.status.success(),
        "sysctl {kv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn start_announces_monitor_stop_and_idempotence() {
    if !support::lab_available("start_announces_monitor_stop_and_idempotence") {
        return;
    }
    let lab = Lab::new("ipa", &["10.77.61.1/24", "10.77.61.2/24"]);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    // Let B learn a neighbour from a gratuitous ARP alone (Linux otherwise
    // only updates existing entries). B never sends anything to the VIP.
    sysctl(b, "net.ipv4.conf.eth0.arp_accept=1");
    assert!(!neigh(b, "10.77.61.10").contains("lladdr"));
    let rt = runtime();
    block_on_in(a, || async {
        let r = resource(&rt, "IPaddr::10.77.61.10/24/eth0").await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        let t0 = Instant::now();
        r.start().await.unwrap();
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "start waited for the announcements: {took:?}"
        );
        assert!(
            rt.pending_background() > 0,
            "remaining announcements run in the background"
        );
        assert_eq!(r.monitor().await.unwrap(), Status::Running);
        r.start()
            .await
            .expect("start on a started resource succeeds");
        rt.wait_background().await;
    });
    let addrs = a.addrs("eth0");
    assert!(addrs.contains("10.77.61.10/24"), "{addrs}");
    let labels =
        String::from_utf8_lossy(&a.ip(&["-4", "addr", "show", "dev", "eth0"]).stdout).into_owned();
    assert!(
        labels.contains("eth0:0"),
        "IPaddr-style label expected: {labels}"
    );
    let mac = a.mac("eth0");
    let seen = support::wait_for(Duration::from_secs(3), Duration::from_millis(50), || {
        let n = neigh(b, "10.77.61.10");
        n.contains(&mac).then_some(n)
    });
    assert!(
        seen.is_some(),
        "B has no neighbour entry for the VIP with A's MAC {mac}: {:?}",
        neigh(b, "10.77.61.10")
    );

    block_on_in(a, || async {
        let r = resource(&rt, "IPaddr::10.77.61.10/24/eth0").await.unwrap();
        r.stop().await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        r.stop().await.expect("stop on a stopped resource succeeds");
    });
    assert!(!a.addrs("eth0").contains("10.77.61.10"));
}

#[test]
fn interface_selection_and_argument_forms() {
    if !support::lab_available("interface_selection_and_argument_forms") {
        return;
    }
    let lab = Lab::new("ipf", &["10.77.62.1/24", "10.77.62.2/24"]);
    let a = &lab.nodes[0];
    // A second interface on another subnet: auto-selection must pick by subnet.
    a.ip(&[
        "link", "add", "dummy1", "type", "veth", "peer", "name", "dummy1p",
    ]);
    a.ip(&["addr", "add", "10.77.63.1/25", "brd", "+", "dev", "dummy1"]);
    a.ip(&["link", "set", "dummy1", "up"]);
    a.ip(&["link", "set", "dummy1p", "up"]);
    let rt = runtime();
    block_on_in(a, || async {
        // Bare IP: interface and prefix from the subnet that contains it.
        let r = resource(&rt, "10.77.63.20").await.unwrap();
        r.start().await.unwrap();
        // Dotted netmask form, interface auto-selected.
        let r2 = resource(&rt, "IPaddr::10.77.62.21/255.255.255.0")
            .await
            .unwrap();
        r2.start().await.unwrap();
        // Broadcast form (third field is a broadcast address, no interface).
        let r3 = resource(&rt, "IPaddr::10.77.62.22/24/10.77.62.127")
            .await
            .unwrap();
        r3.start().await.unwrap();
        // Explicit interface and broadcast.
        let r4 = resource(&rt, "IPaddr2::10.77.62.23/26/eth0/10.77.62.63")
            .await
            .unwrap();
        r4.start().await.unwrap();
        // No local subnet: a clear not-configured error, nothing added.
        let bad = resource(&rt, "IPaddr::10.77.99.1").await.unwrap();
        match bad.start().await {
            Err(AgentError::NotConfigured(m)) => assert!(
                m.contains("no local interface has a subnet containing 10.77.99.1"),
                "{m}"
            ),
            other => panic!("expected not-configured, got {other:?}"),
        }
        // A named interface that does not exist.
        let bad = resource(&rt, "IPaddr::10.77.62.30/24/eth9").await.unwrap();
        assert!(matches!(
            bad.start().await,
            Err(AgentError::NotConfigured(_))
        ));
        rt.wait_background().await;
    });
    let show = |dev: &str| {
        String::from_utf8_lossy(&a.ip(&["-4", "addr", "show", "dev", dev]).stdout).into_owned()
    };
    let d1 = show("dummy1");
    assert!(d1.contains("10.77.63.20/25 brd 10.77.63.127"), "{d1}");
    let e0 = show("eth0");
    assert!(e0.contains("10.77.62.21/24 brd 10.77.62.255"), "{e0}");
    assert!(e0.contains("10.77.62.22/24 brd 10.77.62.127"), "{e0}");
    assert!(e0.contains("10.77.62.23/26 brd 10.77.62.63"), "{e0}");
    assert!(!e0.contains("10.77.99.1") && !e0.contains("10.77.62.30"));
    // Labels count up like IPaddr's aliases.
    assert!(
        e0.contains("eth0:0") && e0.contains("eth0:1") && e0.contains("eth0:2"),
        "{e0}"
    );
}

#[test]
fn ipv6_address_with_unsolicited_neighbour_advertisement() {
    if !support::lab_available("ipv6_address_with_unsolicited_neighbour_advertisement") {
        return;
    }
    let lab = Lab::new("ip6", &["10.77.64.1/24", "10.77.64.2/24"]);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    for n in [a, b] {
        sysctl(n, "net.ipv6.conf.eth0.accept_dad=0");
    }
    a.ip(&["addr", "add", "fd77::1/64", "dev", "eth0", "nodad"]);
    b.ip(&["addr", "add", "fd77::2/64", "dev", "eth0", "nodad"]);
    // Let B create an entry from an unsolicited NA alone (RFC 9131; Linux
    // applies it on routers, the usual upstream of a VIP).
    sysctl(b, "net.ipv6.conf.eth0.forwarding=1");
    sysctl(b, "net.ipv6.conf.eth0.accept_untracked_na=1");
    let rt = runtime();
    // haresources splits `IPaddr::fd77::10/64` at `::`; host and agent
    // put the address back together.
    block_on_in(a, || async {
        let r = resource(&rt, "IPaddr::fd77::10/64").await.unwrap();
        r.start().await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::Running);
        // Auto-selection of interface and prefix works for IPv6 too.
        let r2 = resource(&rt, "IPaddr2::fd77::11").await.unwrap();
        r2.start().await.unwrap();
        // A foreign IPv6 subnet is a clear error.
        let bad = resource(&rt, "IPaddr::fd78::1").await.unwrap();
        assert!(matches!(
            bad.start().await,
            Err(AgentError::NotConfigured(_))
        ));
        rt.wait_background().await;
    });
    let a6 =
        String::from_utf8_lossy(&a.ip(&["-6", "addr", "show", "dev", "eth0"]).stdout).into_owned();
    assert!(
        a6.contains("fd77::10/64") && a6.contains("fd77::11/64"),
        "{a6}"
    );
    let mac = a.mac("eth0");
    let seen = support::wait_for(Duration::from_secs(3), Duration::from_millis(50), || {
        let n = neigh(b, "fd77::10");
        n.contains(&mac).then_some(n)
    });
    assert!(
        seen.is_some(),
        "B did not learn fd77::10 at {mac}: {:?}",
        neigh(b, "fd77::10")
    );
    block_on_in(a, || async {
        let r = resource(&rt, "IPaddr::fd77::10/64").await.unwrap();
        r.stop().await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
    });
}

#[test]
fn cli_runs_operations_with_ocf_exit_codes_and_finishes_announcing() {
    if !support::lab_available("cli_runs_operations_with_ocf_exit_codes_and_finishes_announcing") {
        return;
    }
    let lab = Lab::new("ipc", &["10.77.65.1/24", "10.77.65.2/24"]);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    let cache = support::TempDir::new("cli-cache");
    let bin = env!("CARGO_BIN_EXE_wasmbeat");
    let cache_arg = cache.0.to_string_lossy().into_owned();
    let run = |token: &str, op: &str| {
        let out = a.exec(bin, &["agent", token, op, "--cache-dir", &cache_arg]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tok = "IPaddr::10.77.65.10/24/eth0";
    assert_eq!(run(tok, "status").0, Some(7));
    assert_eq!(run(tok, "status").1.trim(), "stopped");

    // Capture B's view of the announcements: 3 pairs = 6 ARP frames.
    let mut dump = b
        .command("timeout")
        .args([
            "10",
            "tcpdump",
            "-i",
            "eth0",
            "-nn",
            "-l",
            "-c",
            "6",
            "arp",
            "and",
            "host",
            "10.77.65.10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let t0 = Instant::now();
    let (code, _, err) = run(&format!("{tok}::arp_count=3::arp_interval=300"), "start");
    let cli_took = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    let exited = support::wait_for(
        Duration::from_millis(1500),
        Duration::from_millis(20),
        || dump.try_wait().unwrap(),
    );
    let out = dump.wait_with_output().unwrap();
    let frames = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        frames.lines().count(),
        6,
        "all announcements sent before the CLI returned: {frames}"
    );
    assert!(exited.is_some_and(|s| s.success()));
    assert!(
        cli_took >= Duration::from_millis(600),
        "CLI returned before its announcements: {cli_took:?}"
    );

    let (code, out, _) = run(tok, "status");
    assert_eq!((code, out.trim()), (Some(0), "running"));
    assert_eq!(run(tok, "monitor").0, Some(0));
    assert_eq!(run(tok, "start").0, Some(0), "start is idempotent");
    assert_eq!(run(tok, "stop").0, Some(0));
    assert_eq!(run(tok, "stop").0, Some(0), "stop is idempotent");
    assert_eq!(run(tok, "monitor").0, Some(7));
    // Error classes map to OCF codes.
    assert_eq!(run("IPaddr::10.77.65.10/33", "start").0, Some(2));
    assert_eq!(run("IPaddr::10.77.99.9", "start").0, Some(6));
    assert_eq!(run("nosuchagent::x", "start").0, Some(5));
    assert_eq!(run("", "start").0, Some(2));
    // Every run after the first mapped the one compiled component from the cache.
    let cached: Vec<_> = std::fs::read_dir(&cache.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // Not root: the kernel refuses, which is OCF's insufficient privilege.
    let out = a.exec(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin,
            "agent",
            tok,
            "start",
            "--no-cache",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!a.addrs("eth0").contains("10.77.65.10"));
    let (code, xml, _) = run("IPaddr", "meta-data");
    assert_eq!(code, Some(0));
    assert!(
        xml.contains("<parameter name=\"ip\" required=\"1\">") && xml.contains("arp_count"),
        "{xml}"
    );
}

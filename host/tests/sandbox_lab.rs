//! The hostile-agent suite, grant side: `agents/testing/attacker` tries the
//! attacks of the sandbox issue through the real runtime in a network
//! namespace, and each attack sits next to its positive control (the same
//! call inside the grant works), so a test cannot pass because nothing ran.
//! The confinement side (what a granted command may do once started,
//! limits, hung host calls) has its own tests.
mod support;

use std::path::{Path, PathBuf};

use support::{block_on_in, Lab, Netns};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::Policy;
use wasmbeat::runtime::bind::{bind_resource, BindError};
use wasmbeat::runtime::{AgentError, Runtime, RuntimeConfig};

fn attacker() -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join("hostile_attacker.wasm")
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(support::shared_agent_cache()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// A config dir with `agents.toml` granting the attacker `policy`.
fn conf(policy: &str) -> support::TempDir {
    let d = support::TempDir::new("sandbox");
    std::fs::write(
        d.0.join("agents.toml"),
        format!("[agent.hostile_attacker]\n{policy}"),
    )
    .unwrap();
    d
}

/// Run one attack: the text after `RESULT ` in the failure the attacker
/// reports (it always fails on purpose, to carry its result out).
async fn attack(rt: &Runtime, dir: &Path, args: &str) -> Result<String, String> {
    let token = format!("{}::{args}", attacker().display());
    let t = ResourceToken::parse(&token).unwrap();
    let (policy, diags) = Policy::load(dir);
    assert!(diags.is_empty(), "{diags:?}");
    let r = bind_resource(rt, &t, dir, &policy)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    match r.start().await {
        Err(AgentError::Failed(m)) => m.strip_prefix("RESULT ").map(str::to_string).ok_or(m),
        other => Err(format!("{other:?}")),
    }
}

fn routes(ns: &Netns, family: &str) -> String {
    String::from_utf8_lossy(&ns.ip(&[family, "route", "show", "table", "all"]).stdout).into_owned()
}

fn rx_packets(ns: &Netns) -> u64 {
    let out = ns.exec("cat", &["/sys/class/net/eth0/statistics/rx_packets"]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Attacks 1-3: an agent can ask only for a granted command by name; the
/// command line is the grant's. The admin's own command runs (positive
/// control); any other name is denied with the key to add, and a shell with
/// a hole an agent or a parameter could fill is refused at bind time.
#[test]
fn commands_run_as_granted_and_nothing_else() {
    if !support::lab_available("commands_run_as_granted_and_nothing_else") {
        return;
    }
    let ns = Netns::new("sbc");
    let rt = runtime();
    let d = conf(
        "commands.server = [\"/bin/echo\", \"granted\", \"{path|/etc/default.conf}\"]\n\
         commands.fixed-shell = [\"/bin/sh\", \"-c\", \"echo fixed by the admin\"]\n",
    );
    block_on_in(&ns, || async {
        let out = attack(&rt, &d.0, "attack=run::command=server::path=/etc/x.conf")
            .await
            .unwrap();
        assert!(
            out.contains("exit code 0") && out.contains("stdout=\"granted /etc/x.conf\\n\""),
            "{out}"
        );
        let out = attack(&rt, &d.0, "attack=run::command=fixed-shell")
            .await
            .unwrap();
        assert!(out.contains("fixed by the admin"), "{out}");
        for name in ["shell", "apache2", "sh"] {
            let out = attack(&rt, &d.0, &format!("attack=run::command={name}"))
                .await
                .unwrap();
            assert!(
                out.contains("Denied") && out.contains(&format!("commands.{name} = [")),
                "{name}: {out}"
            );
            let out = attack(&rt, &d.0, &format!("attack=spawn::command={name}"))
                .await
                .unwrap();
            assert!(out.contains("Denied"), "{name}: {out}");
        }
        // A parameter value cannot become an option or a second argument.
        let e = attack(&rt, &d.0, "attack=run::command=server::path=/etc/x.conf|id")
            .await
            .unwrap_err();
        assert!(e.contains("not a valid path"), "{e}");
    });
    // A shell whose argument an agent's parameter fills is never granted.
    let shell = conf("commands.go = [\"/bin/sh\", \"-c\", \"{path}\"]\n");
    let (_, diags) = Policy::load(&shell.0);
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("runs other programs")),
        "{diags:?}"
    );
    let via_param = conf("commands.go = [\"{path}\", \"-c\", \"id\"]\n");
    block_on_in(&ns, || async {
        let e = attack(
            &rt,
            &via_param.0,
            "attack=run::command=go::path=/usr/bin/python3.11",
        )
        .await
        .unwrap_err();
        assert!(e.contains("runs other programs"), "{e}");
    });
}

/// Attacks 4, 5: prefix length, broadcast and label come from the grant
/// and the node's addresses, whatever the agent wants; an address outside
/// the grant is denied and nothing changes.
#[test]
fn addresses_are_configured_as_the_grant_says() {
    if !support::lab_available("addresses_are_configured_as_the_grant_says") {
        return;
    }
    let lab = Lab::new("sba", &["10.77.81.1/24", "10.77.81.2/24"]);
    let a = &lab.nodes[0];
    a.ip(&["-6", "addr", "add", "fd77:81::1/64", "dev", "eth0", "nodad"]);
    let routes_before = (routes(a, "-4"), routes(a, "-6"));
    let rt = runtime();
    // haresources splits arguments at `::`, so the attacker gets IPv6
    // addresses written out in full.
    let d = conf("netlink_read = true\naddresses = [\"10.77.81.10\", \"fd77:81::10\", \"10.77.81.11/28/eth0:web/-\"]\n");
    block_on_in(a, || async {
        let out = attack(&rt, &d.0, "attack=add::ip=10.77.81.10")
            .await
            .unwrap();
        assert!(
            out.contains(
                "added 10.77.81.10/24 on eth0 brd Some(10.77.81.255) label Some(\"eth0:0\")"
            ),
            "{out}"
        );
        let out = attack(&rt, &d.0, "attack=add::ip=fd77:81:0:0:0:0:0:10")
            .await
            .unwrap();
        assert!(out.contains("added fd77:81::10/64 on eth0"), "{out}");
        let out = attack(&rt, &d.0, "attack=add::ip=10.77.81.11")
            .await
            .unwrap();
        assert!(
            out.contains("added 10.77.81.11/28 on eth0 brd None label Some(\"eth0:web\")"),
            "{out}"
        );
        // Outside the grant: denied, naming the key.
        for ip in ["10.77.81.99", "8.8.8.8", "fd77:81:0:0:0:0:0:99"] {
            for kind in ["add", "remove", "plan"] {
                let out = attack(&rt, &d.0, &format!("attack={kind}::ip={ip}"))
                    .await
                    .unwrap();
                assert!(
                    out.contains("Denied") && out.contains("addresses = ["),
                    "{kind} {ip}: {out}"
                );
            }
        }
        // Removal takes exactly the granted copies.
        let out = attack(&rt, &d.0, "attack=remove::ip=10.77.81.11")
            .await
            .unwrap();
        assert_eq!(out, "removed 1");
    });
    let addrs =
        String::from_utf8_lossy(&a.ip(&["-4", "addr", "show", "dev", "eth0"]).stdout).into_owned();
    assert!(addrs.contains("10.77.81.10/24 brd 10.77.81.255"), "{addrs}");
    assert!(
        !addrs.contains("10.77.81.99") && !addrs.contains("8.8.8.8"),
        "{addrs}"
    );
    assert!(!addrs.contains("10.77.81.11"), "{addrs}");
    // The only new routes are the host routes of the added addresses: no
    // wide on-link route (the /5 of the issue), no IPv6 default route.
    let (r4, r6) = (routes(a, "-4"), routes(a, "-6"));
    for line in r4.lines().filter(|l| !routes_before.0.contains(*l)) {
        assert!(
            line.contains("10.77.81.10"),
            "new IPv4 route {line:?}:\n{r4}"
        );
    }
    for line in r6.lines().filter(|l| !routes_before.1.contains(*l)) {
        assert!(
            line.contains("fd77:81::10"),
            "new IPv6 route {line:?}:\n{r6}"
        );
    }
    assert!(!r6.contains("default"), "{r6}");
}

/// Attack 11: announcing in a loop is held to the address's budget, and
/// only an address this node carries is announced at all.
#[test]
fn announcements_are_budgeted_and_only_for_addresses_here() {
    if !support::lab_available("announcements_are_budgeted_and_only_for_addresses_here") {
        return;
    }
    let lab = Lab::new("sbn", &["10.77.82.1/24", "10.77.82.2/24"]);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    a.ip(&["addr", "add", "10.77.82.10/24", "dev", "eth0"]);
    // Only the announcements on the wire: no IPv6 housekeeping frames.
    for n in [a, b] {
        n.exec("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        n.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rt = runtime();
    let d = conf("netlink_read = true\naddresses = [\"10.77.82.10\", \"10.77.82.20\"]\n");
    let before = rx_packets(b);
    let sent = block_on_in(a, || async {
        let t = std::time::Instant::now();
        let out = attack(&rt, &d.0, "attack=announce::ip=10.77.82.10::count=300")
            .await
            .unwrap();
        let took = t.elapsed();
        // Positive control: the first burst went out; then the budget's
        // refill (5 a second) while the loop ran, and no more.
        let sent: u32 = out
            .strip_prefix("announced ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        let most = 30 + (5.0 * took.as_secs_f64()).ceil() as u32 + 1;
        assert!(
            (30..=most).contains(&sent),
            "{out} in {took:?} (at most {most} allowed)"
        );
        assert!(out.contains("Denied") && out.contains("budget"), "{out}");
        // Granted, but not configured on this node.
        let out = attack(&rt, &d.0, "attack=announce::ip=10.77.82.20")
            .await
            .unwrap();
        assert!(
            out.contains("NotConfigured") && out.contains("not configured on this node"),
            "{out}"
        );
        // Not granted.
        let out = attack(&rt, &d.0, "attack=announce::ip=10.77.82.2")
            .await
            .unwrap();
        assert!(out.contains("Denied"), "{out}");
        rt.wait_background().await;
        sent
    });
    let frames = rx_packets(b) - before;
    // A repetition is an ARP request and a reply: two frames per granted
    // call, 600 without the budget.
    let sent = u64::from(sent);
    assert!(
        (2 * sent - 2..=2 * sent + 10).contains(&frames),
        "the peer received {frames} frames during the announce loop of {sent} granted calls"
    );
}

/// A malformed grant is refused when the resource is bound (the daemon
/// refuses the group), naming the agents.toml line.
#[test]
fn bad_grants_fail_at_bind_time_with_their_line() {
    let rt = runtime();
    let d = conf("probe = [\"{path}\"]\n");
    let t = ResourceToken::parse(&format!(
        "{}::attack=run::path=/etc/x.conf",
        attacker().display()
    ))
    .unwrap();
    let (policy, _) = Policy::load(&d.0);
    let e = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bind_resource(&rt, &t, &d.0, &policy))
        .err()
        .unwrap();
    assert!(matches!(e, BindError::Grant(_)), "{e}");
    assert!(
        e.to_string()
            .contains("agents.toml:1 [agent.hostile_attacker]")
            && e.to_string().contains("is not ip:port"),
        "{e}"
    );
}

//! IPv6 heartbeat media end to end: two wasmbeat daemons in an IPv6-only
//! lab (no IPv4 address anywhere) talking over `ucast6` to each other's
//! link-local address (scoped by the line's interface) or over `mcast6`,
//! moving an IPv6 VIP on failure and back under auto_failback on.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{Lab, TempDir};

/// Written abbreviated in haresources too: heartbeat splits arguments on
/// `::`, and the address pieces are joined back.
const VIP: &str = "fd77::100";

struct V6Cluster {
    lab: Lab,
    dir: TempDir,
    daemons: [Option<u32>; 2],
}

impl V6Cluster {
    /// `media(i)` gives node i's medium line.
    fn new(tag: &str, media: impl Fn(&Lab, usize) -> String) -> V6Cluster {
        let lab = Lab::new(tag, &["fd77::1/64", "fd77::2/64", "fd77::10/64"]);
        let dir = TempDir::new(tag);
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::write_node_config(
                &dir.0.join(name),
                &format!(
                    "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1\nudpport 694\n{}\nauto_failback on\nnode node1\nnode node2\n",
                    media(&lab, i)
                ),
                &format!("node1 IPaddr::{VIP}/64/eth0\n"),
            );
            support::spawn_responder(&lab.nodes[i], "[::]:80", name);
        }
        V6Cluster {
            lab,
            dir,
            daemons: [None, None],
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("node{}.log", i + 1))
    }

    fn start(&mut self, i: usize) {
        let name = format!("node{}", i + 1);
        let daemon = support::daemon_command(
            &self.dir.0.join(&name),
            &name,
            &self.dir.0.join(format!("{name}.run")),
            &self.log(i),
        );
        self.daemons[i] = Some(self.lab.nodes[i].spawn(daemon));
    }

    fn logs(&self) -> String {
        (0..2)
            .map(|i| {
                format!(
                    "----- node{} -----\n{}",
                    i + 1,
                    std::fs::read_to_string(self.log(i)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Wait until the client reaches node `i` at the VIP; how long it took.
    fn client_reaches(&self, i: usize, limit: Duration, why: &str) -> Duration {
        let t = Instant::now();
        let want = format!("node{}", i + 1);
        let addr: SocketAddr = format!("[{VIP}]:80").parse().unwrap();
        support::wait_for(limit, Duration::from_millis(20), || {
            (support::in_netns(&self.lab.nodes[2], || support::http_get(addr)).as_deref()
                == Some(want.as_str()))
            .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{why}: the client did not reach {want} at [{VIP}] within {limit:?}\n{}",
                self.logs()
            )
        });
        t.elapsed()
    }

    fn holds_vip(&self, i: usize) -> bool {
        let out = self.lab.nodes[i].ip(&["-6", "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/64"))
    }

    /// Boot, kill -9 node1 (node2 takes over), restart it (the VIP comes
    /// home): the whole cycle over IPv6 only.
    fn fail_over_and_back(&mut self) {
        self.start(0);
        self.client_reaches(0, Duration::from_secs(20), "node1 alone after initdead");
        self.start(1);
        let heard = support::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
            std::fs::read_to_string(self.log(1))
                .ok()?
                .contains("communication up: heard: node1")
                .then_some(())
        });
        assert!(
            heard.is_some(),
            "node2 never heard node1 over IPv6\n{}",
            self.logs()
        );
        assert!(
            !self.holds_vip(1),
            "node2 took the VIP while node1 was alive\n{}",
            self.logs()
        );

        let pid = self.daemons[0].take().unwrap();
        assert!(self.lab.nodes[0].kill(pid));
        let gap = self.client_reaches(1, Duration::from_secs(10), "node1 killed");
        println!(
            "IPv6 failover: client on node2 {:.0} ms after kill -9",
            gap.as_secs_f64() * 1000.0
        );
        // The crashed node still has the address configured; its restarted
        // daemon releases it (split brain resolution) or keeps it as owner.
        self.start(0);
        let back = self.client_reaches(0, Duration::from_secs(20), "node1 back, auto_failback on");
        println!(
            "IPv6 failback: client on node1 {:.0} ms after its restart",
            back.as_secs_f64() * 1000.0
        );
        let single = support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            (!self.holds_vip(1)).then_some(())
        });
        assert!(
            single.is_some(),
            "node2 kept the VIP after failback\n{}",
            self.logs()
        );
    }
}

/// The peer's link-local address on eth0 (scope link).
fn link_local(lab: &Lab, i: usize) -> String {
    let out = lab.nodes[i].ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on node{}: {text}", i + 1))
        .to_string()
}

#[test]
fn ucast6_to_link_local_peers_fails_over_and_back() {
    if !support::lab_available("ucast6_to_link_local_peers_fails_over_and_back") {
        return;
    }
    let mut c = V6Cluster::new("v6u", |lab, i| {
        format!("ucast6 eth0 {}", link_local(lab, 1 - i))
    });
    c.fail_over_and_back();
}

#[test]
fn mcast6_fails_over_and_back() {
    if !support::lab_available("mcast6_fails_over_and_back") {
        return;
    }
    let mut c = V6Cluster::new("v6m", |_, _| {
        "mcast6 eth0 ff12::1:2:3:4 694 1 0".to_string()
    });
    c.fail_over_and_back();
}

/// Never deaf by configuration: a node whose media cannot open refuses to
/// start, naming every failing medium and why (heartbeat refuses as soon
/// as one medium fails; wasmbeat tries them all first). Node eth0 has only
/// an IPv6 address here, so `bcast eth0` (IPv4) cannot open either.
#[test]
fn a_node_whose_media_cannot_open_refuses_to_start_naming_each() {
    if !support::lab_available("a_node_whose_media_cannot_open_refuses_to_start_naming_each") {
        return;
    }
    let lab = Lab::new("v6deaf", &["fd77::1/64", "fd77::2/64"]);
    let dir = TempDir::new("v6deaf");
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "none",
            "bcast eth0\nucast6 nosuch0 fe80::2\n",
            &[
                "none of the 2 heartbeat media in ha.cf can be opened",
                "bcast eth0: interface eth0: no IPv4 address",
                "ucast6 nosuch0 fe80::2: interface nosuch0: no such interface",
            ],
        ),
        (
            "some",
            "ucast6 eth0 fd77::2\nmcast6 nosuch0 ff12::1:2:3:4 694 1 0\n",
            &[
                "1 of the 2 heartbeat media in ha.cf cannot be opened",
                "mcast6 nosuch0 ff12::1:2:3:4: interface nosuch0: no such interface",
            ],
        ),
    ];
    for (case, media, want) in cases {
        let cfg = dir.0.join(case);
        support::write_node_config(
            &cfg,
            &format!("keepalive 100ms\ndeadtime 500ms\ninitdead 1\n{media}auto_failback on\nnode node1\nnode node2\n"),
            &format!("node1 IPaddr::{VIP}/64/eth0\n"),
        );
        let log = dir.0.join(format!("{case}.log"));
        let daemon =
            support::daemon_command(&cfg, "node1", &dir.0.join(format!("{case}.run")), &log);
        let t = Instant::now();
        let pid = lab.nodes[0].spawn(daemon);
        // Agents compile (cached) before the media open: allow for a
        // loaded machine, but a daemon that runs deaf never exits.
        let code = lab.nodes[0].wait_exit(pid, Duration::from_secs(60));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if code.is_none() {
            lab.nodes[0].kill(pid);
            panic!("{case}: the daemon started with media that cannot open\n{text}");
        }
        println!(
            "{case}: refused with exit code {code:?} after {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        assert_ne!(code, Some(0), "{case}: {text}");
        for w in want {
            assert!(text.contains(w), "{case}: missing {w:?} in\n{text}");
        }
    }
}

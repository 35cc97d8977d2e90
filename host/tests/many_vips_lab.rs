//! Many VIPs in one group (issue 21): one haresources line of 64
//! `IPaddr::` addresses on two `wasmbeat run` daemons, and a client that
//! must reach every one of them after a failover and a failback; and the
//! group runner driven in-process over the real IPaddr agent, to compare
//! the address run's start with the old one-after-the-other walk and to
//! show that an address failing in the middle of the run still gives the
//! whole group up with nothing left behind.
//!
//! Timing: figures are printed; the only bounds are loose ones (a loaded
//! 2-core machine runs other test suites next to this one).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{block_on_in, Lab, Netns, TempDir};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::Policy;
use wasmbeat::resources::{start_group, stop_group, AgentResource, Resource, StopRetry};
use wasmbeat::runtime::bind::bind_resource;
use wasmbeat::runtime::{Runtime, RuntimeConfig};

/// Addresses in the group: 10.77.0.100 .. 10.77.0.163, inside the lab's /24.
const N: u8 = 64;
const DEADTIME: Duration = Duration::from_millis(500);

fn vips() -> Vec<String> {
    (0..N).map(|k| format!("10.77.0.{}", 100 + k)).collect()
}

fn haresources_line(vips: &[String]) -> String {
    let tokens: Vec<String> = vips
        .iter()
        .map(|v| format!("IPaddr::{v}/24/eth0"))
        .collect();
    format!("node1 {}\n", tokens.join(" "))
}

/// The `/24` addresses of `vips` configured on `ns`'s eth0.
fn present(ns: &Netns, vips: &[String]) -> Vec<String> {
    let text = ns.addrs("eth0");
    vips.iter()
        .filter(|v| {
            text.split_whitespace()
                .any(|w| w.split('/').next() == Some(v.as_str()))
        })
        .cloned()
        .collect()
}

/// Who answers `GET /` at each of `vips` from `client`, asked all at once
/// (a VIP whose old owner is gone never answers: one at a time, 64 of
/// them would take a minute per round).
fn answers(client: &Netns, vips: &[String]) -> Vec<Option<String>> {
    let vips = vips.to_vec();
    block_on_in(client, move || async move {
        let gets = vips.iter().map(|v| {
            let addr: SocketAddr = format!("{v}:80").parse().unwrap();
            async move {
                tokio::time::timeout(Duration::from_millis(500), get(addr))
                    .await
                    .ok()
                    .flatten()
            }
        });
        futures::future::join_all(gets).await
    })
}

async fn get(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Two daemons and a client; node i runs an HTTP responder answering
/// `node{i+1}` on every address.
struct Cluster {
    lab: Lab,
    dir: TempDir,
    daemons: [Option<u32>; 2],
    vips: Vec<String>,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        let lab = Lab::new(tag, &["10.77.0.1/24", "10.77.0.2/24", "10.77.0.10/24"]);
        let dir = TempDir::new(tag);
        let vips = vips();
        for (i, name) in ["node1", "node2"].iter().enumerate() {
            support::write_node_config(
                &dir.0.join(name),
                &format!(
                    "keepalive 100ms\ndeadtime {}ms\nwarntime 300ms\ninitdead 1\nudpport 694\nbcast eth0\nauto_failback on\nnode node1\nnode node2\n",
                    DEADTIME.as_millis()
                ),
                &haresources_line(&vips),
            );
            support::spawn_responder(&lab.nodes[i], "0.0.0.0:80", name);
        }
        Cluster {
            lab,
            dir,
            daemons: [None, None],
            vips,
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.0.join(format!("node{}.log", i + 1))
    }

    fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
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

    /// Wait until node `i` holds every VIP, the other none, and the client
    /// reaches node `i` at every one; how long after `since` the client
    /// reached the last one.
    fn expect_serving(&self, i: usize, since: Instant, limit: Duration, why: &str) -> Duration {
        let name = format!("node{}", i + 1);
        let mut reached = vec![false; self.vips.len()];
        let done = support::wait_for(limit, Duration::from_millis(20), || {
            // Probe only what is not reached yet, then everything once more.
            let todo: Vec<String> = (0..self.vips.len())
                .filter(|k| !reached[*k])
                .map(|k| self.vips[k].clone())
                .collect();
            let got = answers(&self.lab.nodes[2], &todo);
            let mut it = got.into_iter();
            for r in reached.iter_mut().filter(|r| !**r) {
                *r = it.next().flatten().as_deref() == Some(name.as_str());
            }
            reached.iter().all(|r| *r).then_some(())
        });
        let took = since.elapsed();
        let missing: Vec<&String> = self
            .vips
            .iter()
            .zip(&reached)
            .filter(|(_, r)| !**r)
            .map(|(v, _)| v)
            .collect();
        if done.is_none() {
            self.dump_logs();
            panic!(
                "{why}: the client did not reach {name} at {} of {} VIPs within {limit:?}: {missing:?}",
                missing.len(),
                self.vips.len()
            );
        }
        let here = present(&self.lab.nodes[i], &self.vips);
        let there = present(&self.lab.nodes[1 - i], &self.vips);
        assert_eq!(here.len(), self.vips.len(), "{why}: {name} holds {here:?}");
        // The client reaches the node; the other may still be stopping.
        let settled = support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            present(&self.lab.nodes[1 - i], &self.vips)
                .is_empty()
                .then_some(())
        });
        assert!(
            settled.is_some(),
            "{why}: the other node still holds {there:?}"
        );
        // Every VIP once more, all at the end.
        let last = answers(&self.lab.nodes[2], &self.vips);
        let wrong: Vec<(&String, &Option<String>)> = self
            .vips
            .iter()
            .zip(&last)
            .filter(|(_, a)| a.as_deref() != Some(name.as_str()))
            .collect();
        assert!(wrong.is_empty(), "{why}: final round: {wrong:?}");
        took
    }

    /// The `total N ms` of the last group summary node `i` logged after
    /// `skip` such summaries.
    fn group_total(&self, i: usize, nth: usize) -> Option<f64> {
        self.log_text(i)
            .lines()
            .filter_map(|l| {
                let (_, rest) = l.rsplit_once("; total ")?;
                rest.split_whitespace().next()?.parse::<f64>().ok()
            })
            .nth(nth)
    }

    fn dump_logs(&self) {
        for i in 0..2 {
            let text = self.log_text(i);
            // The summaries of 64 steps are long: the tail says enough.
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!(
                "----- node{} log (last 60 lines) -----\n{}",
                i + 1,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// 64 VIPs on one haresources line: node1 takes them all, node2 takes
/// them all when node1 loses power (daemon killed, addresses gone), and
/// node1 takes them back on its return (`auto_failback on`). Prints each
/// group operation's time and the client-visible times.
#[test]
fn sixty_four_vips_fail_over_and_back_as_one_group() {
    if !support::lab_available("sixty_four_vips_fail_over_and_back_as_one_group") {
        return;
    }
    let mut c = Cluster::new("vips64");
    let node1_up = Instant::now();
    c.start(0);
    let boot = c.expect_serving(
        0,
        Instant::now(),
        Duration::from_secs(40),
        "node1 alone after initdead",
    );
    eprintln!(
        "node1 alone serves all {N} VIPs after {boot:?}; group start took {:?} ms",
        c.group_total(0, 0)
    );
    c.start(1);
    let joined = support::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        c.log_text(1).contains("communication up").then_some(())
    });
    assert!(joined.is_some(), "node2 never saw node1");

    // A node advertises deadtime + 2 s for its first 5 s (heartbeat's
    // `dt`): a kill before that measures the grace, not the failover.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(node1_up.elapsed()));
    // Power loss on node1: the daemon dies and its addresses with it.
    let pid = c.daemons[0].take().expect("node1 runs");
    let killed = Instant::now();
    assert!(c.lab.nodes[0].kill(pid));
    let batch = c.dir.0.join("del.batch");
    let lines: Vec<String> = c
        .vips
        .iter()
        .map(|v| format!("addr del {v}/24 dev eth0"))
        .collect();
    std::fs::write(&batch, lines.join("\n") + "\n").unwrap();
    let out = c.lab.nodes[0].exec("ip", &["-batch", batch.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gap = c.expect_serving(1, killed, Duration::from_secs(30), "node1 lost power");
    let node2_start = c.group_total(1, 0);
    eprintln!(
        "failover of {N} VIPs: the client reached node2 at every one {gap:?} after the kill \
         (deadtime {DEADTIME:?}); node2's group start took {node2_start:?} ms"
    );
    // Loose: deadtime, the start and the client's polling, with slack for
    // a loaded machine.
    assert!(
        gap < DEADTIME * 4 + Duration::from_secs(10),
        "failover of {N} VIPs took {gap:?}"
    );

    let restarted = Instant::now();
    c.start(0);
    let failback = c.expect_serving(
        0,
        restarted,
        Duration::from_secs(60),
        "node1 back (auto_failback on)",
    );
    eprintln!(
        "failback of {N} VIPs (node1 restarted, stop on node2 then start on node1): \
         {failback:?} from the restart; node2's stop took {:?} ms, node1's start {:?} ms",
        c.group_total(1, 1),
        c.group_total(0, 1)
    );
    if std::env::var_os("MANY_VIPS_LOG").is_some() {
        for i in 0..2 {
            let text = c.log_text(i);
            for l in text.lines().filter(|l| !l.contains(" agent=")) {
                eprintln!("node{}: {}", i + 1, &l[..l.len().min(200)]);
            }
        }
    }
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(support::shared_agent_cache()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

async fn group(rt: &Runtime, tokens: &[String]) -> Vec<std::sync::Arc<dyn Resource>> {
    let mut out: Vec<std::sync::Arc<dyn Resource>> = Vec::new();
    for t in tokens {
        let token = ResourceToken::parse(t).unwrap();
        let r = bind_resource(
            rt,
            &token,
            std::path::Path::new("/nonexistent"),
            &Policy::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: {e}"));
        out.push(std::sync::Arc::new(AgentResource(r)));
    }
    out
}

/// Run `f` on a two-worker runtime inside `ns`, as the daemon runs agent
/// operations (its threads start inside the namespace, so they are in it).
fn on_agent_threads<F: std::future::Future>(ns: &Netns, f: impl FnOnce() -> F + Send) -> F::Output
where
    F::Output: Send,
{
    support::in_netns(ns, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f())
    })
}

const ONCE: StopRetry = StopRetry {
    attempts: 1,
    pause: Duration::ZERO,
};

/// The group runner over the real IPaddr agent in one namespace: the same
/// 64 starts one after the other as the old runner did them (monitor, then
/// start) and as one run, printed
/// side by side; then a group whose 31st address names a link that does
/// not exist: the start fails naming it, and no address is left behind.
#[test]
fn an_address_run_starts_together_and_a_bad_one_leaves_nothing_behind() {
    if !support::lab_available("an_address_run_starts_together_and_a_bad_one_leaves_nothing_behind")
    {
        return;
    }
    let lab = Lab::new("vipsrun", &["10.77.0.1/24"]);
    let ns = &lab.nodes[0];
    let vips = vips();
    let rt = runtime();
    let tokens: Vec<String> = vips
        .iter()
        .map(|v| format!("IPaddr::{v}/24/eth0"))
        .collect();

    let (one_by_one, together, stopped) = on_agent_threads(ns, || async {
        let g = group(&rt, &tokens).await;
        assert!(
            g.iter().all(|r| r.address().is_some()),
            "IPaddr is an address resource"
        );
        // Warm: compile and instantiate once, so neither figure pays it.
        g[0].start().await.unwrap();
        g[0].stop().await.unwrap();

        // The old walk: each resource asked whether it runs, then started.
        let t = Instant::now();
        for r in &g {
            let _ = r.monitor().await;
            r.start()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", r.name()));
        }
        let one_by_one = t.elapsed();
        for r in g.iter().rev() {
            r.stop().await.unwrap();
        }

        let up = start_group(&g, ONCE).await;
        assert!(up.ok, "{:?}", up.failure);
        let down = stop_group(&g, ONCE).await;
        assert!(down.ok, "{:?}", down.failure);
        // Concurrent stops once looked each address up in a dump of its
        // link, and a dump racing the other removals skipped addresses:
        // "X is not configured on that interface" on a stop. A few more
        // rounds, each stop allowed one attempt.
        for round in 0..5 {
            let again = start_group(&g, ONCE).await;
            assert!(again.ok, "round {round}: {:?}", again.failure);
            let down = stop_group(&g, ONCE).await;
            assert!(down.ok, "round {round}: {:?}", down.failure);
        }
        (one_by_one, up.elapsed, down.elapsed)
    });
    eprintln!(
        "{N} IPaddr starts: one after the other {one_by_one:?}, as one run {together:?}; \
         the run's stop {stopped:?}"
    );
    assert!(
        present(ns, &vips).is_empty(),
        "left after stop: {:?}",
        present(ns, &vips)
    );
    // Loose: the run must not be slower than the walk it replaces.
    assert!(
        together < one_by_one + Duration::from_millis(500),
        "the run ({together:?}) is slower than one by one ({one_by_one:?})"
    );

    // The 31st address names a link that does not exist.
    let mut bad = tokens.clone();
    bad[30] = format!("IPaddr::{}/24/eth9", vips[30]);
    let report = on_agent_threads(ns, || async {
        let g = group(&rt, &bad).await;
        start_group(&g, ONCE).await
    });
    eprintln!(
        "group with a bad 31st address: failed after {:?}: {:?}",
        report.elapsed, report.failure
    );
    assert!(!report.ok);
    let failure = report.failure.clone().unwrap_or_default();
    assert!(
        failure.starts_with(&format!("IPaddr::{}/24/eth9", vips[30])),
        "the failure names the bad address: {failure}"
    );
    let left = present(ns, &vips);
    assert!(
        left.is_empty(),
        "left behind after the failed start: {left:?}"
    );
    on_agent_threads(ns, || rt.wait_background());
}

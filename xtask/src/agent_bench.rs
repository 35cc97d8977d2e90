//! `cargo run --release -p xtask -- bench agent [N]` measures IPaddr
//! start/monitor/stop: wasmbeat in-process, wasmbeat's CLI, and heartbeat
//! 3.0.6's own IPaddr and IPaddr2 scripts, in the same network namespaces
//! in the same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::runtime::{Runtime, RuntimeConfig, Status};

use crate::machine::{machine, today};

const VIP: &str = "10.77.70.10";
const TOKEN_ARG: &str = "10.77.70.10/24/eth0";

/// A namespace pair joined by a veth (`eth0` in both), deleted on drop.
struct Pair {
    a: String,
    b: String,
}

fn sh(args: &[&str]) -> Result<()> {
    let st = Command::new(args[0])
        .args(&args[1..])
        .stderr(Stdio::inherit())
        .status()?;
    if !st.success() {
        bail!("{args:?} failed: {st}");
    }
    Ok(())
}

impl Pair {
    fn new() -> Result<Pair> {
        let pid = std::process::id();
        let p = Pair {
            a: format!("wbbench-{pid}-a"),
            b: format!("wbbench-{pid}-b"),
        };
        sh(&["ip", "netns", "add", &p.a])?;
        sh(&["ip", "netns", "add", &p.b])?;
        sh(&[
            "ip", "-n", &p.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
            "netns", &p.b,
        ])?;
        for (ns, addr) in [(&p.a, "10.77.70.1/24"), (&p.b, "10.77.70.2/24")] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            sh(&[
                "ip", "-n", ns, "addr", "add", addr, "brd", "+", "dev", "eth0",
            ])?;
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(p)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// Run `f` on a thread that joined namespace `ns`.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: plain syscall on a valid fd; affects only this thread.
            if unsafe { setns(file.as_raw_fd(), 0x4000_0000) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?
    })
}

#[derive(Default)]
struct Samples {
    start: Vec<Duration>,
    monitor: Vec<Duration>,
    stop: Vec<Duration>,
}

fn stats(v: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    if ms.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

/// The agent benchmark's output: printed as it goes and kept for the
/// results file.
#[derive(Default)]
struct Out(Vec<String>);

impl Out {
    fn line(&mut self, l: String) {
        println!("{l}");
        self.0.push(l);
    }

    fn row(&mut self, name: &str, s: &Samples) {
        let (sm, sp) = stats(&s.start);
        let (mm, mp) = stats(&s.monitor);
        let (tm, tp) = stats(&s.stop);
        self.line(format!(
            "{name:<38} {sm:>8.3} {sp:>8.3}   {mm:>8.3} {mp:>8.3}   {tm:>8.3} {tp:>8.3}"
        ));
    }
}

fn vip_present(ns: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "-o", "addr", "show", "dev", "eth0"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/")))
        .unwrap_or(false)
}

/// An `IPaddr::ARG` resource as haresources would name it, with the
/// grant the default policy derives.
async fn bind_ipaddr(runtime: &Runtime, arg: &str) -> Result<wasmbeat::runtime::Resource> {
    let t = ResourceToken::parse(&format!("IPaddr::{arg}"))?;
    Ok(wasmbeat::runtime::bind::bind_resource(
        runtime,
        &t,
        Path::new("/etc/ha.d"),
        &wasmbeat::grant::Policy::default(),
    )
    .await?)
}

/// A runtime with the daemon's defaults and its compiled-component cache
/// in `cache`.
fn cached_runtime(cache: &Path) -> Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })?)
}

fn in_process(ns: &str, n: usize, cache: &Path) -> Result<Samples> {
    in_netns(ns, || -> Result<Samples> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let runtime = cached_runtime(cache)?;
            let res = bind_ipaddr(&runtime, TOKEN_ARG).await?;
            let mut s = Samples::default();
            for i in 0..n + 2 {
                let t0 = Instant::now();
                res.start().await?;
                let d_start = t0.elapsed();
                let t0 = Instant::now();
                let st = res.monitor().await?;
                let d_mon = t0.elapsed();
                if st != Status::Running {
                    bail!("monitor after start: {st:?}");
                }
                let t0 = Instant::now();
                res.stop().await?;
                let d_stop = t0.elapsed();
                if i >= 2 {
                    // The first rounds warm up caches; not counted.
                    s.start.push(d_start);
                    s.monitor.push(d_mon);
                    s.stop.push(d_stop);
                }
            }
            runtime.wait_background().await;
            Ok(s)
        })
    })?
}

/// Addresses in the group row: as many as the bench's many-VIP row.
const GROUP_SIZE: usize = 256;

/// The group row's timings, and this process's RSS before and after its
/// rounds (what the instances' kept slots add).
struct GroupSamples {
    starts: Vec<Duration>,
    stops: Vec<Duration>,
    rss_kib: (u64, u64),
}

/// This process's resident set in KiB (0 if unreadable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One group of [`GROUP_SIZE`] IPaddr resources started and stopped as
/// the daemon does (its group runner, on two agent threads): the time of
/// each whole start and stop, without the daemon's detection in front.
fn group_in_process(ns: &str, n: usize, cache: &Path) -> Result<GroupSamples> {
    use std::sync::Arc;
    use wasmbeat::resources::{group, AgentResource, Resource};
    in_netns(ns, || -> Result<GroupSamples> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async {
            let runtime = cached_runtime(cache)?;
            let mut resources: Vec<Arc<dyn Resource>> = Vec::new();
            for k in 0..GROUP_SIZE {
                let arg = format!("10.77.{}.{}/16/eth0", 72 + k / 250, k % 250 + 1);
                let res = bind_ipaddr(&runtime, &arg).await?;
                resources.push(Arc::new(AgentResource(res)));
            }
            let rss_before = rss_kib();
            let (mut starts, mut stops) = (Vec::new(), Vec::new());
            for i in 0..n + 2 {
                let t0 = Instant::now();
                let up = group::start_group(&resources, group::StopRetry::default()).await;
                let d_start = t0.elapsed();
                if !up.ok {
                    bail!("group start failed: {:?}", up.failure);
                }
                let t0 = Instant::now();
                let down = group::stop_group(&resources, group::StopRetry::default()).await;
                let d_stop = t0.elapsed();
                if !down.ok {
                    bail!("group stop failed: {:?}", down.failure);
                }
                if i >= 2 {
                    starts.push(d_start);
                    stops.push(d_stop);
                }
            }
            let rss_after = rss_kib();
            runtime.wait_background().await;
            Ok(GroupSamples {
                starts,
                stops,
                rss_kib: (rss_before, rss_after),
            })
        })
    })?
}

/// Time `argv` run in namespace `ns` via `ip netns exec`, until the
/// process exits. Output goes to /dev/null: the scripts leave a background
/// send_arp holding inherited pipes, and waiting for those to close would
/// time the announcements instead of the operation.
fn timed(ns: &str, argv: &[&str]) -> Result<(Duration, i32)> {
    let t0 = Instant::now();
    let st = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    Ok((t0.elapsed(), st.code().unwrap_or(-1)))
}

/// Time a script-style agent: `prog ARGS... start|status|stop`.
fn external(ns: &str, n: usize, prefix: &[&str], suffix: &[&str]) -> Result<Samples> {
    let mut s = Samples::default();
    for i in 0..n + 1 {
        let run = |op: &str| -> Result<Duration> {
            let mut argv: Vec<&str> = prefix.to_vec();
            argv.push(op);
            argv.extend_from_slice(suffix);
            let (d, code) = timed(ns, &argv)?;
            if code != 0 {
                bail!("{argv:?} exited {code}");
            }
            Ok(d)
        };
        let d_start = run("start")?;
        if !vip_present(ns) {
            bail!("{prefix:?} start did not add {VIP}");
        }
        let d_mon = run("status")?;
        let d_stop = run("stop")?;
        if vip_present(ns) {
            bail!("{prefix:?} stop did not remove {VIP}");
        }
        if i >= 1 {
            s.start.push(d_start);
            s.monitor.push(d_mon);
            s.stop.push(d_stop);
        }
    }
    Ok(s)
}

/// Run the agent benchmark with `n` rounds per row.
pub fn run(n: usize) -> Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc_geteuid() } != 0 {
        bail!("the agent benchmark creates network namespaces: run it as root");
    }
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe.with_file_name("wasmbeat");
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p wasmbeat)",
            bin.display()
        );
    }
    let pair = Pair::new()?;
    let cache = std::env::temp_dir().join(format!("wasmbeat-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    let mut out = Out::default();
    out.line(format!(
        "IPaddr {TOKEN_ARG}: {n} start/monitor/stop rounds per row, median and p95 in ms"
    ));
    out.line(format!(
        "{:<38} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "", "start", "p95", "monitor", "p95", "stop", "p95"
    ));

    let s = in_process(&pair.a, n, &cache)?;
    out.row("wasmbeat in-process (incl. 1st ARP)", &s);

    let g = group_in_process(&pair.a, n, &cache)?;
    let ((sm, sp), (tm, tp)) = (stats(&g.starts), stats(&g.stops));
    out.line(format!(
        "{:<38} {sm:>8.3} {sp:>8.3}   {:>8} {:>8}   {tm:>8.3} {tp:>8.3}",
        format!("wasmbeat group of {GROUP_SIZE} (incl. 1st ARPs)"),
        "-",
        "-"
    ));
    out.line(format!(
        "(the group row's process RSS: {} KiB before its rounds, {} KiB after)",
        g.rss_kib.0, g.rss_kib.1
    ));

    let bin_s = bin.to_string_lossy().into_owned();
    let cache_s = cache.to_string_lossy().into_owned();
    // The CLI waits for all announcements before exiting (heartbeat leaves
    // a background send_arp behind instead), so time it with one pair.
    let tok = format!("IPaddr::{TOKEN_ARG}::arp_count=1");
    let s = external(
        &pair.a,
        n,
        &[&bin_s, "agent", &tok],
        &["--cache-dir", &cache_s],
    )?;
    out.row("wasmbeat agent CLI (warm cache, 1 ARP)", &s);

    let mut base = Vec::new();
    for _ in 0..n {
        base.push(timed(&pair.a, &["/bin/true"])?.0);
    }
    let (bm, bp) = stats(&base);
    for (name, script) in [
        (
            "heartbeat 3.0.6 resource.d/IPaddr",
            "/etc/ha.d/resource.d/IPaddr",
        ),
        (
            "heartbeat 3.0.6 resource.d/IPaddr2",
            "/etc/ha.d/resource.d/IPaddr2",
        ),
    ] {
        if !Path::new(script).exists() {
            out.line(format!(
                "{name:<38} (not installed: apt-get install heartbeat resource-agents)"
            ));
            continue;
        }
        match external(&pair.a, n, &[script, TOKEN_ARG], &[]) {
            Ok(s) => out.row(name, &s),
            Err(e) => out.line(format!("{name:<38} failed: {e:#}")),
        }
    }
    out.line(format!("(every CLI/script row includes `ip netns exec` overhead: /bin/true takes {bm:.3} ms median, {bp:.3} ms p95)"));
    let file = PathBuf::from("bench/results").join(format!("{}-agent.md", today()));
    std::fs::create_dir_all("bench/results")?;
    std::fs::write(
        &file,
        format!(
            "## Agent operations, {}\n\n`xtask bench agent {n}` on {}.\n\n```\n{}\n```\n",
            today(),
            machine(),
            out.0.join("\n")
        ),
    )?;
    println!("wrote {}", file.display());
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

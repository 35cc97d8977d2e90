//! `wasmbeat-lab demo` (`scripts/demo.sh`): the classic two-node recipe,
//! live, in network namespaces. Two nodes and a client on one bridge; each
//! node runs a wasmbeat daemon and a tiny HTTP responder answering with its
//! name; the client polls the VIP while node1's plug is pulled and put back.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{http, Lab, LabError};

/// Set by SIGINT/SIGTERM so every wait loop ends and the lab is torn down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Demo settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `wasmbeat` binary whose daemons run on the nodes.
    pub wasmbeat: PathBuf,
    /// The binary that serves HTTP on each node (`wasmbeat-lab http-responder`).
    pub responder: PathBuf,
    /// Heartbeat interval written to ha.cf.
    pub keepalive: Duration,
    /// Dead time written to ha.cf.
    pub deadtime: Duration,
    /// `auto_failback on` (true) or `off`.
    pub auto_failback: bool,
    /// Leave the lab running at the end (until Ctrl-C).
    pub keep: bool,
}

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Building or driving the lab failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// Writing the lab's configuration failed.
    #[error("writing demo configuration: {0}")]
    Io(#[from] std::io::Error),
    /// Something expected did not happen in time.
    #[error("{0}")]
    Timeout(String),
    /// Ctrl-C.
    #[error("interrupted; lab torn down")]
    Interrupted,
    /// Not root.
    #[error("the demo builds network namespaces and needs root; run it as root (scripts/demo.sh)")]
    NotRoot,
}

const NODE_ADDRS: [&str; 3] = ["10.77.0.1/24", "10.77.0.2/24", "10.77.0.10/24"];
const VIP: &str = "10.77.0.100";

/// One timeline entry: when (since the demo started) and what.
struct Timeline {
    start: Instant,
    events: Vec<(Duration, String)>,
}

impl Timeline {
    fn note(&mut self, what: impl Into<String>) {
        let at = self.start.elapsed();
        let what = what.into();
        println!("[{:>7.3} s] {what}", at.as_secs_f64());
        self.events.push((at, what));
    }
}

fn write_config(dir: &Path, opts: &DemoOptions) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let warn = opts.deadtime / 2;
    let initdead = (opts.deadtime * 2).max(Duration::from_secs(2));
    std::fs::write(
        dir.join("ha.cf"),
        format!(
            "# written by `wasmbeat-lab demo`: the classic recipe with lab timings\n\
             keepalive {}\ndeadtime {}\nwarntime {}\ninitdead {}\nudpport 694\n\
             bcast eth0\nauto_failback {}\nnode node1\nnode node2\n",
            ms(opts.keepalive),
            ms(opts.deadtime),
            ms(warn),
            ms(initdead),
            if opts.auto_failback { "on" } else { "off" }
        ),
    )?;
    std::fs::write(
        dir.join("haresources"),
        format!("# the service is the HTTP responder each node already runs\nnode1 IPaddr::{VIP}/24/eth0\n"),
    )?;
    let authkeys = dir.join("authkeys");
    std::fs::write(
        &authkeys,
        format!("auth 1\n1 sha1 demo-{}\n", std::process::id()),
    )?;
    std::fs::set_permissions(&authkeys, std::fs::Permissions::from_mode(0o600))?;
    // Resource monitoring is off by default (heartbeat never noticed a dead
    // resource); the demo turns it on for the VIP.
    std::fs::write(
        dir.join("agents.toml"),
        "[agent.IPaddr]\nmonitor = \"200ms\"\nrestarts = 3\n",
    )?;
    Ok(())
}

/// Poll the VIP from the client namespace every 10 ms until it answers with
/// `want` (or `deadline` passes); returns when the answer came.
fn poll_until(lab: &Lab, want: &str, deadline: Duration) -> Result<Option<Instant>, DemoError> {
    let addr: SocketAddr = format!("{VIP}:80").parse().expect("static address");
    let client = &lab.nodes[2];
    let found = client.within(|| {
        let start = Instant::now();
        while start.elapsed() < deadline && !INTERRUPTED.load(Ordering::SeqCst) {
            if http::get_body(addr, Duration::from_millis(50)).as_deref() == Some(want) {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(DemoError::Interrupted);
    }
    Ok(found)
}

fn holders(lab: &Lab) -> String {
    let mut who = Vec::new();
    for (i, name) in ["node1", "node2"].iter().enumerate() {
        if lab.nodes[i].has_addr("eth0", VIP) {
            who.push(*name);
        }
    }
    if who.is_empty() {
        "nobody".into()
    } else {
        who.join(" and ")
    }
}

/// Run the demo: build the lab, start both daemons, fail over and back,
/// print the timeline, tear everything down.
pub fn run(opts: &DemoOptions) -> Result<(), DemoError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(DemoError::NotRoot);
    }
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let exe = opts.wasmbeat.as_path();
    let work = std::env::temp_dir().join(format!("wasmbeat-demo-{}", std::process::id()));
    let _cleanup = RemoveDir(work.clone());
    let mut t = Timeline {
        start: Instant::now(),
        events: Vec::new(),
    };

    let lab = Lab::new("demo", &NODE_ADDRS)?;
    t.note(format!(
        "lab up: node1 {} node2 {} client {} on bridge br0; VIP {VIP}",
        NODE_ADDRS[0], NODE_ADDRS[1], NODE_ADDRS[2]
    ));

    let mut logs = Vec::new();
    let mut daemons = Vec::new();
    for (i, name) in ["node1", "node2"].iter().enumerate() {
        let dir = work.join(name);
        write_config(&dir, opts)?;
        let mut responder = Command::new(&opts.responder);
        responder.args(["http-responder", "--listen", "0.0.0.0:80", "--body", name]);
        lab.nodes[i].spawn(&responder)?;
        let log = work.join(format!("{name}.log"));
        daemons.push(start_daemon(&lab, i, exe, &work, &log)?);
        logs.push(log);
        t.note(format!(
            "{name}: wasmbeat daemon and HTTP responder started"
        ));
    }
    t.note("both nodes started together: as heartbeat, each waits 10 s (RQSTDELAY) before taking its own groups");

    let startup_limit = opts.deadtime * 4 + Duration::from_secs(30);
    if poll_until(&lab, "node1", startup_limit)?.is_none() {
        print_logs(&logs);
        return Err(DemoError::Timeout(format!(
            "node1 did not serve the VIP within {startup_limit:?} of start"
        )));
    }
    t.note(format!(
        "client reaches node1 through the VIP (held by {})",
        holders(&lab)
    ));

    // 1. Pull the plug: node2 must take over after deadtime.
    lab.set_link(0, false)?;
    let pulled = Instant::now();
    t.note("pulled node1's plug (its port on the bridge is down)");
    let limit = opts.deadtime * 3 + Duration::from_secs(10);
    let at = expect(
        &lab,
        &logs,
        "node2",
        limit,
        "node2 did not take over the VIP",
    )?;
    t.note(format!(
        "client reaches node2 through the VIP: service gap {} ms after the plug was pulled (deadtime {} ms)",
        at.duration_since(pulled).as_millis(),
        opts.deadtime.as_millis()
    ));

    // 2. Plug back in: both held the VIP (split brain); one must let go.
    lab.set_link(0, true)?;
    let restored = Instant::now();
    t.note("node1's plug is back: both nodes ran the VIP while apart (split brain)");
    let at = expect(
        &lab,
        &logs,
        "node1",
        limit,
        "the split brain did not settle on node1",
    )?;
    wait_single_holder(&lab, limit)?;
    t.note(format!(
        "split brain settled without a restart: node1 (preferred) keeps the VIP, node2 released it; client on node1 {} ms after the plug came back; VIP now on {}",
        at.duration_since(restored).as_millis(),
        holders(&lab)
    ));

    // 3. Someone removes the VIP behind wasmbeat's back: monitoring restores it.
    lab.nodes[0].ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"])?;
    let removed = Instant::now();
    t.note("an operator deleted the VIP on node1 by hand (resource monitoring is on in the demo)");
    let at = expect(
        &lab,
        &logs,
        "node1",
        limit,
        "monitoring did not restore the VIP",
    )?;
    t.note(format!(
        "node1's monitor noticed and restarted IPaddr locally: client on node1 again {} ms later",
        at.duration_since(removed).as_millis()
    ));

    // 4. Power failure and reboot of node1: auto_failback decides.
    lab.nodes[0].kill(daemons[0], libc::SIGKILL);
    lab.set_link(0, false)?;
    // A reboot loses every address the dead daemon had configured.
    let _ = lab.nodes[0].ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    let crashed = Instant::now();
    t.note("node1 lost power (daemon killed with SIGKILL, link down, VIP gone)");
    let at = expect(
        &lab,
        &logs,
        "node2",
        limit,
        "node2 did not take over after node1's crash",
    )?;
    t.note(format!(
        "client reaches node2: service gap {} ms after node1 died",
        at.duration_since(crashed).as_millis()
    ));
    lab.set_link(0, true)?;
    daemons[0] = start_daemon(&lab, 0, exe, &work, &logs[0])?;
    let rebooted = Instant::now();
    t.note("node1 rebooted: link up, wasmbeat started again");
    if opts.auto_failback {
        let at = expect(
            &lab,
            &logs,
            "node1",
            limit,
            "VIP did not fail back to node1",
        )?;
        t.note(format!(
            "auto_failback on: VIP back on node1 {} ms after its daemon started",
            at.duration_since(rebooted).as_millis()
        ));
    } else {
        std::thread::sleep(opts.deadtime * 4 + Duration::from_secs(3));
        t.note(format!(
            "auto_failback off: VIP stays on {} (node1 idles until node2 fails or is told to stand by)",
            holders(&lab)
        ));
    }

    println!("\nWhat each daemon logged:");
    print_logs(&logs);
    if opts.keep {
        println!(
            "\n--keep: lab left running (namespaces: {}). Ctrl-C tears it down.",
            lab.nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    t.note("tearing the lab down");
    Ok(())
}

fn start_daemon(
    lab: &Lab,
    i: usize,
    exe: &Path,
    work: &Path,
    log: &Path,
) -> Result<u32, DemoError> {
    let name = format!("node{}", i + 1);
    let mut daemon = Command::new("sh");
    // `exec` keeps the recorded PID the daemon's own.
    daemon.args([
        "-c",
        &format!(
            "exec {} run --config-dir {} --node {name} --runtime-dir {} 2>>{}",
            exe.display(),
            work.join(&name).display(),
            work.join(format!("{name}.run")).display(),
            log.display()
        ),
    ]);
    Ok(lab.nodes[i].spawn(&daemon)?)
}

/// Poll until `who` answers at the VIP, or fail with `what` and the logs.
fn expect(
    lab: &Lab,
    logs: &[PathBuf],
    who: &str,
    limit: Duration,
    what: &str,
) -> Result<Instant, DemoError> {
    match poll_until(lab, who, limit)? {
        Some(at) => Ok(at),
        None => {
            print_logs(logs);
            Err(DemoError::Timeout(format!("{what} within {limit:?}")))
        }
    }
}

/// Wait until exactly one node has the VIP configured.
fn wait_single_holder(lab: &Lab, limit: Duration) -> Result<(), DemoError> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(DemoError::Interrupted);
        }
        let n = (0..2)
            .filter(|i| lab.nodes[*i].has_addr("eth0", VIP))
            .count();
        if n == 1 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(DemoError::Timeout(format!(
        "the VIP is still on {} after {limit:?}",
        holders(lab)
    )))
}

fn print_logs(logs: &[PathBuf]) {
    for log in logs {
        let name = log.file_stem().unwrap_or_default().to_string_lossy();
        if let Ok(text) = std::fs::read_to_string(log) {
            // State changes are logged by the daemon module; agent and
            // medium details stay in the files.
            for line in text.lines().filter(|l| {
                l.contains("wasmbeat::daemon:") || l.contains(" WARN ") || l.contains("ERROR")
            }) {
                let line = line.split_once("Z ").map(|(ts, rest)| {
                    let time = ts.rsplit('T').next().unwrap_or(ts);
                    format!("{time} {}", rest.replace("wasmbeat::daemon: ", ""))
                });
                println!("  {name} | {}", line.as_deref().unwrap_or(""));
            }
        }
    }
}

/// Removes the demo's work directory on every exit path.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! `xtask chaos`: heartbeat's CTS idea on the netns lab. Two nodes (both
//! wasmbeat, or node2 a real heartbeat 3.0.6 with `--heartbeat`), a client
//! probing the VIP every 10 ms and an observer sampling both nodes from
//! outside, while a seeded schedule throws one fault at a time at the
//! cluster ([`schedule`]). What was seen is judged afterwards against
//! stated bounds ([`verdict`]); every violation prints its seed and the
//! command that replays the schedule.
//!
//! Faults run one at a time, each followed by a settle wait and a quiet
//! period, so each outage can be blamed on one fault.

mod log_time;
mod observe;
mod report;
mod schedule;
mod verdict;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wasmbeat_lab::Lab;

use crate::hub::{Hub, Impairment, PathFaults};
use crate::interrupt::{self, interrupted};
use crate::systems::{
    config_dir, daemon_command, ha_cf, initdead, kill_tree, signal_tree, state_dir, Kind,
};
use observe::{Daemon, Footprint};
use schedule::{next_fault, Fault, Limits, Operator, Rng};
use verdict::{Bounds, Window};

const NODE_ADDRS: [&str; 3] = ["10.77.90.1/24", "10.77.90.2/24", "10.77.90.10/24"];
const VIP: &str = "10.77.90.100";
/// Room in a node's state directory (a tmpfs, so "full" is real).
const STATE_DIR_SIZE: &str = "256k";
/// Debian's libfaketime: wasmbeat nodes run under it so the run can step
/// their wall clock (monotonic time is left alone).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
/// A clean stop must finish within the unit's TimeoutStopSec.
const STOP_LIMIT: Duration = Duration::from_secs(150);

const USAGE: &str = "usage: chaos [--minutes M] [--seed N] [--faults N] [--without KIND]... [--only KIND]... [--heartbeat] [--keepalive MS] [--deadtime MS] [--wasmbeat PATH] [--out DIR] [--name STEM]";

/// The run's settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop drawing faults after this long.
    pub duration: Duration,
    /// Stop after this many faults (replaying up to a violation).
    pub max_faults: Option<usize>,
    /// Seeds the schedule and the hub's coin.
    pub seed: u64,
    /// node2 is a real heartbeat 3.0.6.
    pub heartbeat: bool,
    /// Cluster keepalive.
    pub keepalive: Duration,
    /// Cluster deadtime.
    pub deadtime: Duration,
    /// Where the report goes.
    pub out_dir: PathBuf,
    /// Report file stem.
    pub name: Option<String>,
    /// The daemon under test (default: `wasmbeat` next to this program).
    pub wasmbeat: Option<PathBuf>,
    /// Fault kinds (as the report names them) left out of the schedule.
    pub without: Vec<String>,
    /// If any, the only fault kinds drawn (hunting one race).
    pub only: Vec<String>,
}

impl Options {
    fn replay(&self) -> String {
        format!(
            "cargo run --release -p xtask -- chaos --seed {} --minutes {}{}{}{}",
            self.seed,
            self.duration.as_secs_f64() / 60.0,
            self.without
                .iter()
                .map(|k| format!(" --without '{k}'"))
                .chain(self.only.iter().map(|k| format!(" --only '{k}'")))
                .collect::<String>(),
            if self.heartbeat { " --heartbeat" } else { "" },
            if self.keepalive != Duration::from_millis(100)
                || self.deadtime != Duration::from_millis(1000)
            {
                format!(
                    " --keepalive {} --deadtime {}",
                    self.keepalive.as_millis(),
                    self.deadtime.as_millis()
                )
            } else {
                String::new()
            }
        )
    }

    /// The bounds the run is judged by, from the timings.
    fn bounds(&self) -> Bounds {
        Bounds {
            after_heal: self.deadtime + Duration::from_secs(2),
            settle: self.deadtime * 2 + initdead(self.deadtime) + Duration::from_secs(3),
            // A node in its first 5 s advertises deadtime + 2 s (as
            // heartbeat does), and a fault often hits a node that just
            // restarted: its peer may wait that long, then start the group
            // and announce it before the client's next probe answers. The
            // 60-minute run at deadtime + 2 s passed with 2994 ms, too close
            // to the bound to keep it: kill -9 and link loss of a node 1–3 s
            // after its restart measured 2.9–3.0 s.
            gap: self.deadtime + Duration::from_secs(3),
            samples: 2,
        }
    }
}

/// Entry point for `chaos ...`; fails if any invariant broke.
pub fn main(args: &[&str]) -> Result<()> {
    let mut o = Options {
        duration: Duration::from_secs(180),
        max_faults: None,
        seed: 1,
        heartbeat: false,
        keepalive: Duration::from_millis(100),
        deadtime: Duration::from_millis(1000),
        out_dir: PathBuf::from("bench/results"),
        name: None,
        wasmbeat: None,
        without: Vec::new(),
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| -> Result<String> {
            it.next()
                .map(|s| s.to_string())
                .with_context(|| format!("{a} needs {what}; {USAGE}"))
        };
        match *a {
            "--minutes" => {
                let m: f64 = val("minutes")?.parse().context("--minutes")?;
                o.duration = Duration::from_secs_f64(m * 60.0);
            }
            "--seed" => o.seed = val("a number")?.parse().context("--seed")?,
            "--faults" => o.max_faults = Some(val("a count")?.parse().context("--faults")?),
            "--heartbeat" => o.heartbeat = true,
            "--keepalive" => {
                o.keepalive = Duration::from_millis(val("ms")?.parse().context("--keepalive")?)
            }
            "--deadtime" => {
                o.deadtime = Duration::from_millis(val("ms")?.parse().context("--deadtime")?)
            }
            "--out" => o.out_dir = PathBuf::from(val("a directory")?),
            "--name" => o.name = Some(val("a file stem")?),
            "--wasmbeat" => o.wasmbeat = Some(PathBuf::from(val("a path")?)),
            "--without" | "--only" => {
                let k = val("a fault kind")?;
                if !Fault::KIND_NAMES.contains(&k.as_str()) {
                    bail!(
                        "{a} {k:?}: not a fault kind; one of {:?}",
                        Fault::KIND_NAMES
                    );
                }
                if *a == "--only" {
                    o.only.push(k);
                } else {
                    o.without.push(k);
                }
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the chaos run builds network namespaces and mounts: run it as root");
    }
    if o.heartbeat && !Path::new(crate::systems::HEARTBEAT).exists() {
        bail!("--heartbeat needs Debian's heartbeat package (scripts/setup.sh installs it)");
    }
    interrupt::install();
    let exe = std::env::current_exe()?;
    let (bin, responder) = (
        o.wasmbeat
            .clone()
            .unwrap_or_else(|| exe.with_file_name("wasmbeat")),
        exe.with_file_name("wasmbeat-lab"),
    );
    for b in [&bin, &responder] {
        if !b.exists() {
            bail!(
                "{} not found: cargo build -p wasmbeat -p wasmbeat-lab (same profile as xtask)",
                b.display()
            );
        }
    }
    println!(
        "chaos: {}, seed {}, {:.1} min, keepalive {} ms, deadtime {} ms, node2 {}; replay: {}",
        bin.display(),
        o.seed,
        o.duration.as_secs_f64() / 60.0,
        o.keepalive.as_millis(),
        o.deadtime.as_millis(),
        if o.heartbeat {
            "heartbeat 3.0.6"
        } else {
            "wasmbeat"
        },
        o.replay()
    );
    let outcome = Chaos::new(&o, &bin, &responder)?.run()?;
    let path = report::write(&o, &outcome)?;
    println!("report: {}", path.display());
    if !outcome.violations.is_empty() {
        for v in &outcome.violations {
            println!(
                "VIOLATION at {:.1} s{}: {} (seed {}; replay: {})",
                v.at.as_secs_f64(),
                v.fault
                    .map(|i| format!(" after fault #{i} ({})", outcome.windows[i].what))
                    .unwrap_or_default(),
                v.what,
                o.seed,
                o.replay()
            );
        }
        bail!(
            "{} invariant violation(s) in {} faults",
            outcome.violations.len(),
            outcome.windows.len()
        );
    }
    println!(
        "chaos: {} faults, 0 violations, longest client gap {} ms",
        outcome.windows.len(),
        outcome
            .gaps
            .iter()
            .map(|g| g.len().as_millis())
            .max()
            .unwrap_or(0)
    );
    Ok(())
}

/// Everything the run recorded, and the verdict.
pub struct Outcome {
    /// The faults as they happened.
    pub windows: Vec<Window>,
    /// Every client outage.
    pub gaps: Vec<verdict::Gap>,
    /// Probes sent.
    pub probes: usize,
    /// Observer samples taken.
    pub samples: usize,
    /// Daemon footprints at quiet points.
    pub footprints: Vec<Footprint>,
    /// Broken invariants.
    pub violations: Vec<verdict::Violation>,
    /// Hub counters: forwarded, dropped, duplicated, reordered.
    pub hub: [u64; 4],
    /// Wall time of the run.
    pub elapsed: Duration,
    /// What the run did, line by line.
    pub events: Vec<String>,
}

/// The lab, the hub, the two daemons. Field order is drop order: the
/// daemons are killed (in `Drop`), then the hub restores the bridge, then
/// the lab's namespaces go.
struct Chaos<'a> {
    o: &'a Options,
    bin: PathBuf,
    work: PathBuf,
    kinds: [Kind; 2],
    daemons: Mutex<[Daemon; 2]>,
    mounts: Vec<PathBuf>,
    events: Mutex<Vec<String>>,
    t0: Instant,
    hub: Option<Hub>,
    lab: Lab,
}

impl Drop for Chaos<'_> {
    fn drop(&mut self) {
        for i in 0..2 {
            self.kill(i);
        }
        for m in &self.mounts {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        if std::env::var_os("WBB_KEEP").is_some() {
            println!("kept {}", self.work.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

fn name(i: usize) -> String {
    format!("node{}", i + 1)
}

impl<'a> Chaos<'a> {
    fn new(o: &'a Options, bin: &Path, responder: &Path) -> Result<Chaos<'a>> {
        // Short: the daemon's control socket path must fit in sun_path.
        let work = std::env::temp_dir().join(format!("wbc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let lab = Lab::new("ch", &NODE_ADDRS)?;
        let kinds = [
            Kind::Wasmbeat,
            if o.heartbeat {
                Kind::Heartbeat
            } else {
                Kind::Wasmbeat
            },
        ];
        let mut c = Chaos {
            o,
            bin: bin.to_path_buf(),
            work,
            kinds,
            daemons: Mutex::new([Daemon::default(); 2]),
            mounts: Vec::new(),
            events: Mutex::new(Vec::new()),
            t0: Instant::now(),
            hub: None,
            lab,
        };
        for (i, kind) in kinds.iter().enumerate() {
            let mut r = Command::new(responder);
            r.args([
                "http-responder",
                "--listen",
                "0.0.0.0:80",
                "--body",
                &name(i),
            ]);
            c.lab.nodes[i].spawn(&r)?;
            c.write_config(i)?;
            if *kind == Kind::Wasmbeat {
                let state = state_dir(&c.work, &name(i));
                std::fs::create_dir_all(&state)?;
                let st = Command::new("mount")
                    .args(["-t", "tmpfs", "-o"])
                    .arg(format!("size={STATE_DIR_SIZE},mode=0700"))
                    .arg("tmpfs")
                    .arg(&state)
                    .status()?;
                if !st.success() {
                    bail!("mount tmpfs on {}", state.display());
                }
                c.mounts.push(state);
            }
        }
        c.hub = Some(Hub::start(
            &c.lab,
            Impairment::clean(NODE_ADDRS.len()),
            o.seed ^ 0x5EED,
        )?);
        Ok(c)
    }

    fn dir(&self, i: usize) -> PathBuf {
        self.work.join(name(i))
    }

    /// Whether wasmbeat nodes run under libfaketime (installed).
    fn clock_steppable(&self) -> bool {
        Path::new(FAKETIME).exists()
    }

    /// Node i's wall-clock offset, as libfaketime reads it.
    fn clock_file(&self, i: usize) -> PathBuf {
        self.work.join(format!("{}.clock", name(i)))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.work.join(format!("{}.log", name(i)))
    }

    fn write_config(&self, i: usize) -> Result<()> {
        let dir = self.dir(i);
        std::fs::create_dir_all(&dir)?;
        let etc = config_dir(self.kinds[i], &dir)?;
        std::fs::write(
            etc.join("ha.cf"),
            ha_cf(
                self.kinds[i],
                self.o.keepalive,
                self.o.deadtime,
                &self.log_path(i),
            ),
        )?;
        // After the VIP, a service whose `status` hangs while the run's
        // wedge file for this node exists (heartbeat runs it too, and
        // never monitors it).
        std::fs::write(
            etc.join("haresources"),
            format!("node1 IPaddr::{VIP}/24/eth0 wedge::timeout=2\n"),
        )?;
        let running = self.work.join(format!("{}.wedge-running", name(i)));
        let script = etc.join("resource.d").join("wedge");
        std::fs::create_dir_all(etc.join("resource.d"))?;
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# chaos: a service whose status hangs while {wedged} exists\n\
                 case \"$1\" in\n\
                 start) : > {running} ;;\n\
                 stop) rm -f {running} ;;\n\
                 status)\n  [ -e {wedged} ] && exec sleep 600\n  \
                 if [ -e {running} ]; then echo running; exit 0; fi\n  echo stopped; exit 3 ;;\n\
                 esac\n",
                wedged = self.wedge_file(i).display(),
                running = running.display(),
            ),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        if self.kinds[i] == Kind::Wasmbeat {
            // Monitored every second; one local restart, then the group
            // goes to the peer.
            std::fs::write(
                dir.join("agents.toml"),
                "[lsb.wedge]\n\n[resource.\"wedge::timeout=2\"]\nmonitor = \"1\"\nrestarts = 1\n",
            )?;
        }
        Ok(())
    }

    /// While this file exists, node i's service status hangs.
    fn wedge_file(&self, i: usize) -> PathBuf {
        self.work.join(format!("{}.wedged", name(i)))
    }

    fn event(&self, s: String) {
        let line = format!("{:>8.3} s  {s}", self.t0.elapsed().as_secs_f64());
        println!("  {line}");
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    fn daemon(&self, i: usize) -> Daemon {
        self.daemons.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    fn set_daemon(&self, i: usize, d: Daemon) {
        self.daemons.lock().unwrap_or_else(|p| p.into_inner())[i] = d;
    }

    fn start(&self, i: usize) -> Result<()> {
        let cmd = match self.kinds[i] {
            // heartbeat's own stdout and stderr (start-up chatter) go to a
            // file of their own, not into the run's output.
            Kind::Heartbeat => wasmbeat_lab::heartbeat::node_command(
                &self.dir(i),
                &name(i),
                Some(&self.work.join(format!("{}.out", name(i)))),
            ),
            kind => {
                let mut c = daemon_command(
                    kind,
                    &self.bin,
                    &self.work,
                    &self.dir(i),
                    &name(i),
                    &self.log_path(i),
                );
                if self.clock_steppable() {
                    let offset = self.clock_file(i);
                    if !offset.exists() {
                        std::fs::write(&offset, "+0\n")?;
                    }
                    c.env("LD_PRELOAD", FAKETIME)
                        .env("FAKETIME_TIMESTAMP_FILE", offset)
                        .env("FAKETIME_CACHE_DURATION", "1")
                        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                }
                c
            }
        };
        let pid = self.lab.nodes[i].spawn(&cmd)?;
        self.set_daemon(
            i,
            Daemon {
                pid: Some(pid),
                down_on_purpose: false,
            },
        );
        Ok(())
    }

    /// SIGKILL node i's daemon tree at once.
    fn kill(&self, i: usize) {
        let d = self.daemon(i);
        self.set_daemon(
            i,
            Daemon {
                pid: None,
                down_on_purpose: true,
            },
        );
        if let Some(pid) = d.pid {
            kill_tree(&self.lab.nodes[i], pid);
        }
    }

    /// SIGTERM node i's daemon and wait for a clean exit; its exit code.
    fn stop(&self, i: usize) -> Result<i32> {
        let Some(pid) = self.daemon(i).pid else {
            return Ok(0);
        };
        self.set_daemon(
            i,
            Daemon {
                pid: Some(pid),
                down_on_purpose: true,
            },
        );
        match self.kinds[i] {
            Kind::Wasmbeat => {
                self.lab.nodes[i].signal(pid, libc::SIGTERM);
            }
            // The recorded PID is `unshare`; heartbeat's master is the
            // oldest heartbeat process under it.
            _ => {
                if let Some(master) = heartbeat_master(pid) {
                    // SAFETY: signalling a process of a tree we started.
                    unsafe { libc::kill(master as i32, libc::SIGTERM) };
                }
            }
        }
        let code = self.lab.nodes[i].wait_exit(pid, STOP_LIMIT);
        self.set_daemon(
            i,
            Daemon {
                pid: None,
                down_on_purpose: true,
            },
        );
        match code {
            Some(c) => Ok(c),
            None => {
                kill_tree(&self.lab.nodes[i], pid);
                bail!("{} did not stop within {STOP_LIMIT:?} of SIGTERM", name(i))
            }
        }
    }

    fn holds(&self, i: usize) -> bool {
        self.lab.nodes[i].has_addr("eth0", VIP)
    }

    fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("hub runs for the whole run")
    }

    /// These faults between the nodes (one way from `one_way_from`, or
    /// both ways) for `lasting`, then a clean hub again whatever happens.
    fn impaired_for(
        &self,
        faults: PathFaults,
        one_way_from: Option<usize>,
        lasting: Duration,
    ) -> Result<()> {
        let clean = Impairment::clean(NODE_ADDRS.len());
        self.hub().set(match one_way_from {
            Some(from) => clean.clone().one_way(from, 1 - from, faults),
            None => clean.clone().between(0, 1, faults),
        });
        let r = self.pause(lasting);
        self.hub().set(clean);
        r
    }

    fn operator(&self, i: usize, op: Operator) {
        let verb = match op {
            Operator::Standby => "standby",
            Operator::Takeover => "takeover",
        };
        let out = Command::new(&self.bin)
            .arg(verb)
            .arg("--config-dir")
            .arg(self.dir(i))
            .arg("--runtime-dir")
            .arg(self.work.join(format!("{}.run", name(i))))
            .output();
        let said = match out {
            Ok(o) => format!(
                "exit {}: {}",
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .lines()
                    .chain(String::from_utf8_lossy(&o.stderr).trim().lines())
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            Err(e) => format!("could not run: {e}"),
        };
        self.event(format!("  {verb} on {}: {said}", name(i)));
    }

    /// Sleep `d` in short steps so Ctrl-C ends the run promptly.
    fn pause(&self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            interrupted()?;
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }

    /// Restart node i's daemon gracefully (as `systemctl restart` would);
    /// one that then exits is started again by [`Chaos::revive`] once the
    /// settle wait runs out.
    fn restart_during(&self, i: usize) -> Result<()> {
        let code = self.stop(i)?;
        self.event(format!(
            "  {} stopped (exit {code}), starting again",
            name(i)
        ));
        self.start(i)
    }

    fn apply(&self, f: &Fault, rng: &mut Rng) -> Result<()> {
        match *f {
            Fault::Kill { node, down } => {
                self.kill(node);
                // A reboot: the VIP does not survive it.
                let _ =
                    self.lab.nodes[node].ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
                self.pause(down)?;
                self.start(node)?;
            }
            Fault::Freeze { node, hung } => {
                let pid = self.daemon(node).pid.context("no daemon to freeze")?;
                signal_tree(pid, libc::SIGSTOP);
                let r = self.pause(hung);
                signal_tree(pid, libc::SIGCONT);
                r?;
            }
            Fault::LinkFlap { node, down } => {
                self.lab.set_link(node, false)?;
                let r = self.pause(down);
                self.lab.set_link(node, true)?;
                r?;
            }
            Fault::OneWay { from, lasting } => self.impaired_for(
                PathFaults {
                    loss: 1.0,
                    ..PathFaults::default()
                },
                Some(from),
                lasting,
            )?,
            Fault::HeavyLoss { lasting } => self.impaired_for(
                PathFaults {
                    loss: 0.3,
                    ..PathFaults::default()
                },
                None,
                lasting,
            )?,
            Fault::DupReorder { lasting } => self.impaired_for(
                PathFaults {
                    duplicate: 0.2,
                    reorder: 0.2,
                    ..PathFaults::default()
                },
                None,
                lasting,
            )?,
            Fault::ReloadStorm { node, count } => {
                let pid = self.daemon(node).pid.context("no daemon to reload")?;
                for _ in 0..count {
                    self.lab.nodes[node].signal(pid, libc::SIGHUP);
                    self.pause(rng.millis(0, 150))?;
                }
            }
            Fault::Command { node, op } => self.operator(node, op),
            Fault::PartitionThenCommand {
                node,
                down,
                after,
                command_on,
                op,
            } => {
                self.lab.set_link(node, false)?;
                let r = self.pause(down);
                self.lab.set_link(node, true)?;
                r?;
                self.pause(after)?;
                self.operator(command_on, op);
            }
            Fault::StateDirFull { node, lasting } => {
                let fill = state_dir(&self.work, &name(node)).join("chaos-fill");
                fill_up(&fill);
                let r = self.state_dir_window(node, lasting, rng);
                let _ = std::fs::remove_file(&fill);
                r?;
            }
            Fault::MonitorHang { node, lasting } => {
                std::fs::write(self.wedge_file(node), "")?;
                let r = self.pause(lasting);
                std::fs::remove_file(self.wedge_file(node))?;
                r?;
            }
            Fault::ClockStep {
                node,
                offset_secs,
                lasting,
            } => {
                std::fs::write(self.clock_file(node), format!("{offset_secs:+}\n"))?;
                let r = self.pause(lasting);
                std::fs::write(self.clock_file(node), "+0\n")?;
                r?;
            }
            Fault::StateDirReadOnly { node, lasting } => {
                let dir = state_dir(&self.work, &name(node));
                remount(&dir, "ro")?;
                let r = self.state_dir_window(node, lasting, rng);
                remount(&dir, "rw")?;
                r?;
            }
        }
        Ok(())
    }

    /// While node's state directory is unusable: half the time, restart
    /// its daemon in the middle (a restart is when the state is written).
    fn state_dir_window(&self, node: usize, lasting: Duration, rng: &mut Rng) -> Result<()> {
        if rng.range(0, 1) == 1 {
            self.pause(lasting / 2)?;
            self.restart_during(node)?;
            self.pause(lasting / 2)
        } else {
            self.pause(lasting)
        }
    }

    /// Wait (bounded) until exactly one node holds the VIP with both
    /// daemons running; false if that did not happen within `limit`.
    fn settle(&self, limit: Duration) -> Result<bool> {
        let start = Instant::now();
        while start.elapsed() < limit {
            interrupted()?;
            let alive = [0, 1].map(|i| self.daemon(i).pid.is_some_and(observe::running));
            if alive[0] && alive[1] && self.holds(0) != self.holds(1) {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(false)
    }

    fn footprints(&self, at: Duration, out: &mut Vec<Footprint>) {
        for i in 0..2 {
            if self.kinds[i] != Kind::Wasmbeat {
                continue;
            }
            if let Some(f) = self
                .daemon(i)
                .pid
                .and_then(|p| observe::footprint(i, p, at))
            {
                out.push(f);
            }
        }
    }

    fn run(mut self) -> Result<Outcome> {
        let o = self.o;
        let bounds = o.bounds();
        self.start(0)?;
        if !wait(Duration::from_secs(60), || self.holds(0)) {
            bail!("node1 never took the VIP:\n{}", self.log_tails());
        }
        self.start(1)?;
        // Past initdead, and past the start-up grace heartbeat (and wasmbeat
        // after it) gives a new node's deadtime, before the first fault.
        self.pause(initdead(o.deadtime) + Duration::from_millis(5500))?;
        if !self.settle(Duration::from_secs(60))? {
            bail!(
                "the cluster did not settle before the first fault:\n{}",
                self.log_tails()
            );
        }
        let limits = Limits {
            deadtime: o.deadtime,
            controllable: [true, !o.heartbeat],
            state_dir: [true, !o.heartbeat],
            clock: [
                self.clock_steppable(),
                self.clock_steppable() && !o.heartbeat,
            ],
        };
        let mut faults = Rng::new(o.seed);
        let mut timing = Rng::new(o.seed.rotate_left(17) ^ 0x0DD5);
        let stop = AtomicBool::new(false);
        // The run's clock starts now for the threads and the event log.
        let t0 = Instant::now();
        let t0_wall = std::time::SystemTime::now();
        self.t0 = t0;
        let this = self;
        let (samples, probes, windows, footprints, result) = std::thread::scope(|s| {
            let observer = s.spawn(|| observe::observe(&this.lab, VIP, &this.daemons, &stop, t0));
            let client = s.spawn(|| observe::probe(&this.lab.nodes[2], VIP, &stop, t0));
            let mut windows = Vec::new();
            let mut footprints = Vec::new();
            let result = (|| -> Result<()> {
                // A quiet start: the verdict's steady state needs a baseline.
                this.pause(Duration::from_secs(2))?;
                this.footprints(t0.elapsed(), &mut footprints);
                while t0.elapsed() < o.duration && o.max_faults.is_none_or(|m| windows.len() < m) {
                    let f = next_fault(&mut faults, &limits);
                    if o.without.iter().any(|k| k == f.kind())
                        || !(o.only.is_empty() || o.only.iter().any(|k| k == f.kind()))
                    {
                        continue;
                    }
                    let index = windows.len();
                    let start = t0.elapsed();
                    this.event(format!("fault #{index}: {f}"));
                    this.apply(&f, &mut timing)?;
                    let end = t0.elapsed();
                    windows.push(Window {
                        index,
                        kind: f.kind(),
                        what: f.to_string(),
                        partitions: f.partitions(),
                        start,
                        end,
                    });
                    if !this.settle(bounds.settle)? {
                        this.event(format!(
                            "not settled {} ms after the fault ended; starting any daemon that exited",
                            bounds.settle.as_millis()
                        ));
                        this.revive()?;
                        this.settle(bounds.settle)?;
                    }
                    this.pause(timing.millis(1000, 3000))?;
                    this.footprints(t0.elapsed(), &mut footprints);
                }
                Ok(())
            })();
            stop.store(true, Ordering::SeqCst);
            let samples = observer.join().unwrap_or_default();
            let probes = client.join().unwrap_or_default();
            (samples, probes, windows, footprints, result)
        });
        result?;
        let mut extra = Vec::new();
        this.shutdown(t0.elapsed(), &mut extra);
        extra.extend(verdict::flatness(&footprints));
        let gaps = verdict::gaps(&probes);
        let mut violations = verdict::judge(&samples, &windows, &gaps, &bounds);
        violations.extend(extra);
        let counters = this.hub().counters();
        let hub = [
            counters.forwarded.load(Ordering::Relaxed),
            counters.dropped.load(Ordering::Relaxed),
            counters.duplicated.load(Ordering::Relaxed),
            counters.reordered.load(Ordering::Relaxed),
        ];
        // A violation in CI can only be diagnosed from what is printed:
        // both daemons' log lines from 10 s before to 5 s after it.
        for v in &violations {
            this.print_logs_around(t0_wall, v.at);
        }
        let events = std::mem::take(&mut *this.events.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(Outcome {
            windows,
            gaps,
            probes: probes.len(),
            samples: samples.len(),
            footprints,
            violations,
            hub,
            elapsed: t0.elapsed(),
            events,
        })
    }

    /// Start any daemon that exited without being asked to.
    fn revive(&self) -> Result<()> {
        for i in 0..2 {
            let d = self.daemon(i);
            if !d.pid.is_some_and(observe::running) {
                if let Some(pid) = d.pid {
                    let code = self.lab.nodes[i].wait_exit(pid, Duration::from_secs(1));
                    self.event(format!("{}'s daemon had exited ({code:?})", name(i)));
                }
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// The end of the run: both daemons stopped cleanly, nothing left
    /// behind, no panic in any log.
    fn shutdown(&self, at: Duration, v: &mut Vec<verdict::Violation>) {
        let mut violation = |what: String| {
            v.push(verdict::Violation {
                at,
                fault: None,
                what,
            })
        };
        // The standby first, so the active's stop does not hand over.
        let order = if self.holds(0) { [1, 0] } else { [0, 1] };
        for i in order {
            match self.stop(i) {
                Ok(0) => {}
                Ok(code) => violation(format!("{} exited {code} on SIGTERM", name(i))),
                Err(e) => violation(format!("{e:#}")),
            }
        }
        for i in 0..2 {
            if self.holds(i) {
                violation(format!(
                    "{} still holds the VIP after a clean stop",
                    name(i)
                ));
            }
            let responder = |cmd: &str| cmd.contains("http-responder");
            let left: Vec<String> = observe::processes_in(&self.lab.nodes[i])
                .into_iter()
                .filter(|(_, cmd)| !responder(cmd))
                .map(|(pid, cmd)| format!("{pid} {cmd}"))
                .collect();
            if !left.is_empty() {
                violation(format!(
                    "processes left in {}'s namespace after a clean stop: {left:?}",
                    name(i)
                ));
            }
            let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
                violation(format!("{} panicked: {line}", name(i)));
            }
        }
    }

    /// Both nodes' log lines (RFC 3339 UTC stamps, as wasmbeat writes
    /// them) from 10 s before to 5 s after `at` into the run.
    fn print_logs_around(&self, t0_wall: std::time::SystemTime, at: Duration) {
        let stamp = |d: Duration| {
            let t = (t0_wall + d)
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            Command::new("date")
                .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%S"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let (from, to) = (
            stamp(at.saturating_sub(Duration::from_secs(10))),
            stamp(at + Duration::from_secs(6)),
        );
        for i in 0..2 {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            println!("--- {} log {from} .. {to} ---", name(i));
            let year = from.get(..4).unwrap_or_default();
            for l in text
                .lines()
                .filter(|l| log_time::stamp(l, year).is_some_and(|s| s >= from && s < to))
            {
                println!("{l}");
            }
        }
    }

    fn log_tails(&self) -> String {
        let mut s = String::new();
        for i in 0..2 {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!("--- {} (last 20 lines) ---\n", name(i)));
            for l in &lines[lines.len().saturating_sub(20)..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

/// Poll `f` every 50 ms for up to `limit`.
fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    wasmbeat_lab::wait_for(limit, Duration::from_millis(50), || f().then_some(())).is_some()
}

/// The oldest heartbeat process in the tree under `root`.
fn heartbeat_master(root: u32) -> Option<u32> {
    let exe = std::fs::canonicalize(crate::systems::HEARTBEAT).ok()?;
    let mut pids: Vec<u32> = crate::systems::tree_pids(root)
        .into_iter()
        .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == exe))
        .collect();
    pids.sort_unstable();
    pids.first().copied()
}

/// Write zeros to `path` until the file system is full.
fn fill_up(path: &Path) {
    use std::io::Write;
    let Ok(mut f) = std::fs::File::create(path) else {
        return;
    };
    let block = vec![0u8; 16 * 1024];
    // Bounded: the tmpfs is STATE_DIR_SIZE; stop at 64 MiB regardless.
    for _ in 0..4096 {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

fn remount(dir: &Path, mode: &str) -> Result<()> {
    let st = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(dir)
        .status()?;
    if !st.success() {
        bail!("mount -o remount,{mode} {}", dir.display());
    }
    Ok(())
}

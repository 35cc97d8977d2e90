//! Confinement of what agents start, tried as an attacker would through the
//! host's own APIs (`ProcessTable`, `Caps`), as root: each attack next to a
//! positive control that does the same thing inside what was granted, so a
//! test cannot pass because nothing ran. Network changes happen only inside
//! namespaces the test creates.
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{block_on_in, Netns};
use wasmbeat::caps::{Caller, CapError, Caps, ProcessTable, ServerOutput, Shared};
use wasmbeat::confine::{support as confinement, Launch, ProcessLimits};
use wasmbeat::grant::{CommandGrant, Grant};

/// The tests here count the process's threads and descriptors and wait
/// for cgroups to empty: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn launch(argv: &[&str]) -> Launch {
    Launch::new(argv.iter().copied())
}

fn with_caps(argv: &[&str], caps: &[&str]) -> Launch {
    Launch {
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        ..launch(argv)
    }
}

fn table(tag: &str) -> ProcessTable {
    ProcessTable::new(&format!("confine-{tag}"), ProcessLimits::default())
}

/// `/proc/PID/status` as a map (`NoNewPrivs` -> `1`).
fn status(pid: u32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes.
    status(pid)
        .get("State")
        .is_some_and(|s| !s.starts_with('Z'))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    support::wait_for(limit, Duration::from_millis(10), || f().then_some(())).is_some()
}

/// Kills the PIDs left by a failed test (recorded, never by name).
struct Reap(Vec<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: plain syscall on PIDs this test spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn capabilities_are_exactly_the_granted_ones() {
    if !support::lab_available("capabilities_are_exactly_the_granted_ones") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("cap");
    let procs = table("caps");
    let add = [
        "/usr/sbin/ip",
        "link",
        "add",
        "wbcap0",
        "type",
        "veth",
        "peer",
        "name",
        "wbcap1",
    ];
    let (denied, granted) = block_on_in(&ns, || async {
        let t = Duration::from_secs(10);
        // Root, but without CAP_NET_ADMIN: the kernel refuses.
        let denied = procs.run(&launch(&add), t).await.unwrap();
        // The same command with CAP_NET_ADMIN granted works.
        let granted = procs
            .run(&with_caps(&add, &["CAP_NET_ADMIN"]), t)
            .await
            .unwrap();
        (denied, granted)
    });
    let err = String::from_utf8_lossy(&denied.stderr);
    eprintln!("without CAP_NET_ADMIN: exit {:?}, {err}", denied.exit_code);
    assert_ne!(denied.exit_code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(
        granted.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let links = String::from_utf8_lossy(&ns.ip(&["-br", "link"]).stdout).into_owned();
    assert!(links.contains("wbcap0"), "{links}");
}

#[test]
fn spawned_processes_get_no_new_privs_a_reduced_bounding_set_and_nothing_else() {
    if !support::lab_available("spawned_processes_get_no_new_privs") {
        return;
    }
    let _serial = serial();
    let procs = table("status");
    let pid = procs
        .spawn(&with_caps(
            &["/usr/bin/sleep", "30"],
            &["CAP_NET_BIND_SERVICE"],
        ))
        .unwrap();
    let _reap = Reap(vec![pid]);
    // spawn returns once exec has begun; the dynamic loader then still
    // opens (and closes) ld.so.cache and libc on descriptor 3. Inspect the
    // process once sleep is in its sleep, so a descriptor seen is one the
    // daemon leaked, not one the loader holds for a moment.
    let settled = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
            == Some(libc::SYS_clock_nanosleep)
    });
    assert!(
        settled,
        "sleep never reached clock_nanosleep: /proc/{pid}/syscall = {:?}",
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
    );
    let st = status(pid);
    let me = status(std::process::id());
    eprintln!(
        "spawned: NoNewPrivs {} CapBnd {} CapEff {} CapInh {} CapAmb {}; test process CapBnd {}",
        st["NoNewPrivs"], st["CapBnd"], st["CapEff"], st["CapInh"], st["CapAmb"], me["CapBnd"]
    );
    assert_eq!(st["NoNewPrivs"], "1");
    // CAP_NET_BIND_SERVICE is bit 10.
    assert_eq!(st["CapBnd"], "0000000000000400");
    assert_eq!(st["CapEff"], "0000000000000400");
    assert_eq!(st["CapPrm"], "0000000000000400");
    assert_eq!(st["CapInh"], "0000000000000000");
    assert_eq!(st["CapAmb"], "0000000000000000");
    // Control: the process that spawned it has far more.
    assert_ne!(me["CapBnd"], st["CapBnd"]);
    assert_eq!(me["NoNewPrivs"], "0");
    // Environment: PATH only. Descriptors: stdio only. Directory: /.
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<&[u8]> = env.split(|b| *b == 0).filter(|v| !v.is_empty()).collect();
    assert_eq!(env.len(), 1, "{env:?}");
    assert!(env[0].starts_with(b"PATH="));
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(fds.len(), 3, "{fds:?}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    // Its own process group.
    assert_eq!(wasmbeat::caps::process::proc_info(pid).unwrap().pgid, pid);
    assert_eq!(procs.signal(pid, libc::SIGKILL), Ok(()));
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
}

#[test]
fn user_nobody_really_runs_as_nobody() {
    if !support::lab_available("user_nobody_really_runs_as_nobody") {
        return;
    }
    let _serial = serial();
    let procs = table("user");
    let as_root = procs.spawn(&launch(&["/usr/bin/sleep", "30"])).unwrap();
    let nobody = procs
        .spawn(&Launch {
            user: Some("nobody".into()),
            ..launch(&["/usr/bin/sleep", "30"])
        })
        .unwrap();
    let _reap = Reap(vec![as_root, nobody]);
    let (r, n) = (status(as_root), status(nobody));
    eprintln!(
        "root: Uid {} Gid {}; nobody: Uid {} Gid {} Groups {:?} CapEff {}",
        r["Uid"], r["Gid"], n["Uid"], n["Gid"], n["Groups"], n["CapEff"]
    );
    assert!(r["Uid"].split_whitespace().all(|u| u == "0"));
    assert!(
        n["Uid"].split_whitespace().all(|u| u == "65534"),
        "{}",
        n["Uid"]
    );
    assert!(
        n["Gid"].split_whitespace().all(|g| g == "65534"),
        "{}",
        n["Gid"]
    );
    assert_eq!(n["Groups"], "65534");
    assert_eq!(n["CapEff"], "0000000000000000");
    assert_eq!(n["CapPrm"], "0000000000000000");
    assert_eq!(n["NoNewPrivs"], "1");
    assert_eq!(procs.kill_all(), 2);
}

#[test]
fn a_user_keeps_exactly_its_granted_capability_across_exec() {
    if !support::lab_available("a_user_keeps_exactly_its_granted_capability") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("amb");
    let procs = table("ambient");
    let bind = [
        "/usr/bin/python3",
        "-c",
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 81)); print('bound')",
    ];
    let nobody = |caps: &[&str]| Launch {
        user: Some("nobody".into()),
        ..with_caps(&bind, caps)
    };
    let (denied, granted) = block_on_in(&ns, || async {
        let t = Duration::from_secs(20);
        (
            procs.run(&nobody(&[]), t).await.unwrap(),
            procs
                .run(&nobody(&["CAP_NET_BIND_SERVICE"]), t)
                .await
                .unwrap(),
        )
    });
    let err = String::from_utf8_lossy(&denied.stderr);
    assert_ne!(denied.exit_code, Some(0));
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(
        granted.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&granted.stdout).trim(), "bound");
}

/// A shell that leaves three sleeps behind: one in its process group, one
/// in a new session (out of the group's reach), and waits.
const FAMILY: &str = "sleep 300 & setsid sleep 300 & sleep 300 & echo $! > \"$0\"; wait";

#[test]
fn stop_kills_grandchildren_even_those_that_left_the_process_group() {
    if !support::lab_available("stop_kills_grandchildren") {
        return;
    }
    let _serial = serial();
    let Some(_) = confinement().cgroup_v2.as_ref() else {
        eprintln!(
            "could not check: no cgroup per resource here ({:?}); stop falls back to process groups",
            confinement().missing()
        );
        return;
    };
    let dir = support::TempDir::new("family");
    let marker = dir.0.join("last.pid");
    let procs = table("family");
    let leader = procs
        .spawn(&launch(&[
            "/bin/sh",
            "-c",
            FAMILY,
            marker.to_str().unwrap(),
        ]))
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || marker.exists()));
    let cg = procs.cgroup().expect("the resource has a cgroup");
    assert!(wait_until(Duration::from_secs(5), || cg.pids().len() >= 4));
    let family = cg.pids();
    let _reap = Reap(family.clone());
    eprintln!("resource cgroup {:?} holds {family:?}", cg.v2_dir());
    assert!(family.contains(&leader));
    // Positive control: all alive, and a process of the family that left
    // the process group is still the resource's.
    let sids: Vec<String> = family
        .iter()
        .map(|p| status(*p).get("NSsid").cloned().unwrap_or_default())
        .collect();
    eprintln!("sessions: {sids:?}");
    assert!(family.iter().all(|p| alive(*p)));
    assert!(family.iter().all(|p| procs.in_cgroup(*p)));
    let t0 = Instant::now();
    let killed = procs.kill_all();
    eprintln!("kill_all killed {killed} in {:?}", t0.elapsed());
    assert_eq!(killed, family.len());
    assert!(
        wait_until(Duration::from_secs(5), || family.iter().all(|p| !alive(*p))),
        "survivors: {:?}",
        family.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    assert!(cg.pids().is_empty());
}

#[test]
fn sigkill_to_a_spawned_server_takes_its_whole_tree() {
    if !support::lab_available("sigkill_to_a_spawned_server_takes_its_whole_tree") {
        return;
    }
    let _serial = serial();
    let dir = support::TempDir::new("tree");
    let marker = dir.0.join("last.pid");
    let procs = table("tree");
    let other = procs.spawn(&launch(&["/usr/bin/sleep", "300"])).unwrap();
    let leader = procs
        .spawn(&launch(&[
            "/bin/sh",
            "-c",
            FAMILY,
            marker.to_str().unwrap(),
        ]))
        .unwrap();
    let _reap = Reap(vec![other, leader]);
    assert!(wait_until(Duration::from_secs(5), || marker.exists()));
    let setsid_sleeps: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            status(*p)
                .get("PPid")
                .is_some_and(|pp| pp == &leader.to_string())
        })
        .collect();
    eprintln!("children of the leader {leader}: {setsid_sleeps:?}");
    assert!(setsid_sleeps.len() >= 3, "{setsid_sleeps:?}");
    procs.signal(leader, libc::SIGKILL).unwrap();
    let cgroups = confinement().cgroup_v2.is_some();
    let gone = wait_until(Duration::from_secs(5), || {
        setsid_sleeps.iter().all(|p| !alive(*p))
    });
    if cgroups {
        assert!(gone, "children survived: {setsid_sleeps:?}");
    } else {
        eprintln!("no cgroups here: only the process group was killed (gone: {gone})");
    }
    // Control: the resource's other process was not touched.
    assert!(alive(other));
    assert!(procs.is_alive(other));
    procs.kill_all();
}

#[test]
fn a_run_timeout_kills_the_whole_tree() {
    if !support::lab_available("a_run_timeout_kills_the_whole_tree") {
        return;
    }
    let _serial = serial();
    let dir = support::TempDir::new("runtree");
    let marker = dir.0.join("last.pid");
    let procs = table("run");
    let (ok, timed_out, took) = support::block_on(async {
        // Control: a quick command inside its timeout returns its output.
        let ok = procs
            .run(
                &launch(&["/bin/sh", "-c", "echo hello"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let t0 = Instant::now();
        let r = procs
            .run(
                &launch(&["/bin/sh", "-c", FAMILY, marker.to_str().unwrap()]),
                Duration::from_millis(700),
            )
            .await;
        (ok, r, t0.elapsed())
    });
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "hello");
    assert_eq!(ok.exit_code, Some(0));
    eprintln!("timed-out run returned after {took:?}");
    assert_eq!(timed_out, Err(CapError::Timeout));
    assert!(took < Duration::from_secs(5), "{took:?}");
    let last: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _reap = Reap(vec![last]);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(last)),
        "the background sleep {last} of the timed-out run survived"
    );
    if let Some(cg) = procs.cgroup() {
        assert!(
            wait_until(Duration::from_secs(5), || cg.pids().is_empty()),
            "{:?}",
            cg.pids()
        );
    }
}

#[test]
fn pids_max_stops_a_fork_loop() {
    if !support::lab_available("pids_max_stops_a_fork_loop") {
        return;
    }
    let _serial = serial();
    let Some(place) = confinement().pids_max else {
        let why: Vec<&String> = confinement()
            .missing()
            .iter()
            .filter(|m| m.starts_with("pids.max"))
            .collect();
        eprintln!("could not check pids.max on this machine: {why:?}");
        assert!(!why.is_empty(), "pids.max missing without a reason");
        return;
    };
    eprintln!("pids.max applied through cgroup {place}");
    let fork_loop = "i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); done; wait";
    let run = |pids_max: u64| {
        let procs = ProcessTable::new(
            &format!("forkloop-{pids_max}"),
            ProcessLimits {
                pids_max: Some(pids_max),
                ..ProcessLimits::default()
            },
        );
        let leader = procs.spawn(&launch(&["/bin/sh", "-c", fork_loop])).unwrap();
        let cg = procs.cgroup().expect("a cgroup");
        assert_eq!(cg.applied().pids_max, Some((pids_max, place)));
        // Let the loop run until it is done forking or stuck at the limit.
        let mut last = 0;
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(300));
            let n = cg.pids().len();
            if n == last && n > 0 {
                break;
            }
            last = n;
        }
        let n = cg.pids().len();
        let tail = procs.exit_of(leader);
        procs.kill_all();
        (n, tail)
    };
    let (limited, _) = run(20);
    let (free, _) = run(500);
    eprintln!("processes with pids.max 20: {limited}; with 500: {free}");
    assert!(limited <= 20, "{limited}");
    assert!(
        free >= 100,
        "control: the loop forks 100 sleeps, saw {free}"
    );
    match confinement().memory_max {
        Some(w) => eprintln!("memory limit applied through cgroup {w}"),
        None => eprintln!(
            "could not check the memory limit on this machine: {:?}",
            confinement()
                .missing()
                .iter()
                .filter(|m| m.starts_with("memory"))
                .collect::<Vec<_>>()
        ),
    }
}

#[test]
fn spawns_are_capped_and_the_host_does_not_grow_with_them() {
    if !support::lab_available("spawns_are_capped") {
        return;
    }
    let _serial = serial();
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let procs = ProcessTable::new(
        "spawncap",
        ProcessLimits {
            max_spawned: 4,
            ..ProcessLimits::default()
        },
    );
    let (t0, f0) = (threads(), fds());
    // Attack: 300 spawns of a server that stays up. Four succeed.
    let mut ok = Vec::new();
    let mut denied = 0;
    for _ in 0..300 {
        match procs.spawn(&launch(&["/usr/bin/sleep", "300"])) {
            Ok(pid) => ok.push(pid),
            Err(CapError::Denied(m)) => {
                assert!(m.contains("max_spawned = 4"), "{m}");
                denied += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let _reap = Reap(ok.clone());
    let (t1, f1) = (threads(), fds());
    eprintln!(
        "300 spawns: {} started, {denied} denied; threads {t0} -> {t1}, fds {f0} -> {f1}",
        ok.len()
    );
    assert_eq!(ok.len(), 4);
    assert!(t1 <= t0 + 4 + 2, "threads {t0} -> {t1}");
    assert!(f1 <= f0 + 8 + 2, "fds {f0} -> {f1}");
    // Control: once one ends, a spawn works again.
    procs.signal(ok[0], libc::SIGKILL).unwrap();
    assert!(wait_until(Duration::from_secs(5), || procs.live_count() < 4));
    let again = procs.spawn(&launch(&["/usr/bin/sleep", "300"])).unwrap();
    let _reap2 = Reap(vec![again]);
    procs.kill_all();
    // Short-lived spawns are reaped and pruned: 300 of them leave nothing.
    let quick = ProcessTable::new("spawnquick", ProcessLimits::default());
    for _ in 0..300 {
        loop {
            match quick.spawn(&launch(&["/usr/bin/true"])) {
                Ok(_) => break,
                Err(CapError::Denied(_)) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(wait_until(Duration::from_secs(10), || quick.live_count() == 0));
    let (t2, f2) = (threads(), fds());
    eprintln!("300 quick spawns later: threads {t2}, fds {f2}");
    assert!(t2 <= t0 + 2, "threads {t0} -> {t2}");
    assert!(f2 <= f0 + 2, "fds {f0} -> {f2}");
}

fn caps_for(resource: &str, grant: Grant, procs: ProcessTable) -> Caps {
    Caps::new(
        Caller {
            agent: "hostile".into(),
            resource: resource.into(),
        },
        Arc::new(grant),
        procs,
        Shared::default(),
    )
}

#[test]
fn hostile_pid_files_fail_fast_and_a_normal_one_works() {
    if !support::lab_available("hostile_pid_files_fail_fast") {
        return;
    }
    let _serial = serial();
    let dir = support::TempDir::new("pidfiles");
    let d = &dir.0;
    let fifo = d.join("fifo.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let huge = d.join("huge.pid");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(30 << 20)
        .unwrap();
    let target = d.join("elsewhere.pid");
    let link = d.join("link.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let good = d.join("good.pid");
    let zero = std::path::PathBuf::from("/dev/zero");
    let procs = table("pidfiles");
    let grant = Grant {
        pidfiles: vec![
            fifo.clone(),
            huge.clone(),
            link.clone(),
            good.clone(),
            "/dev/zero".into(),
        ],
        commands: vec![CommandGrant::direct("sleep", &["/usr/bin/sleep", "60"])],
        ..Grant::none()
    };
    let mut c = caps_for("pidfiles", grant, procs.clone());
    support::block_on(async {
        let pid = c.spawn("sleep").unwrap();
        let _reap = Reap(vec![pid]);
        std::fs::write(&good, format!("{pid}\n")).unwrap();
        std::fs::write(&target, format!("{pid}\n")).unwrap();
        for (path, expect) in [
            (&fifo, "FIFO"),
            (&huge, "31457280 bytes"),
            (&link, "symbolic link"),
            (&zero, "character device"),
        ] {
            let t0 = Instant::now();
            let e = c.pidfile_pid(path.to_str().unwrap()).await.unwrap_err();
            let took = t0.elapsed();
            eprintln!("{}: {e} ({took:?})", path.display());
            assert!(e.to_string().contains(expect), "{e}");
            assert!(took < Duration::from_secs(1), "{took:?}");
        }
        // Control: the normal pid file names the resource's server.
        assert_eq!(
            c.pidfile_pid(good.to_str().unwrap()).await.unwrap(),
            Some(pid)
        );
        procs.kill_all();
    });
}

#[test]
fn a_recycled_pid_is_not_taken_for_the_resource_s_process() {
    if !support::lab_available("a_recycled_pid_is_not_taken") {
        return;
    }
    let _serial = serial();
    if !table("probe").tracks_by_cgroup() {
        eprintln!(
            "could not check: no cgroups here, pid files are trusted by executable ({:?})",
            confinement().missing()
        );
        return;
    }
    let dir = support::TempDir::new("reuse");
    let pidfile = dir.0.join("server.pid");
    let procs = table("reuse");
    let grant = Grant {
        pidfiles: vec![pidfile.clone()],
        commands: vec![CommandGrant::direct("sleep", &["/usr/bin/sleep", "60"])],
        ..Grant::none()
    };
    let mut c = caps_for("reuse", grant.clone(), procs.clone());
    // Another process running the very same granted program, not started
    // by the resource: what a stale pid file names once its PID is reused.
    let mut stranger = std::process::Command::new("/usr/bin/sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let _reap = Reap(vec![stranger.id()]);
    support::block_on(async {
        let ours = c.spawn("sleep").unwrap();
        let _reap = Reap(vec![ours]);
        std::fs::write(&pidfile, format!("{}\n", stranger.id())).unwrap();
        assert_eq!(
            c.pidfile_pid(pidfile.to_str().unwrap()).await.unwrap(),
            None
        );
        assert!(
            matches!(
                c.signal(stranger.id(), libc::SIGTERM),
                Err(CapError::Denied(_))
            ),
            "a stranger must not be signallable"
        );
        // Control: the resource's own process is found and signallable.
        std::fs::write(&pidfile, format!("{ours}\n")).unwrap();
        assert_eq!(
            c.pidfile_pid(pidfile.to_str().unwrap()).await.unwrap(),
            Some(ours)
        );
        c.signal(ours, 0).unwrap();
        // A later wasmbeat process (the CLI after `agent start`, a
        // restarted daemon) with its own table still recognises it.
        let mut later = caps_for("reuse", grant.clone(), table("reuse-later-process"));
        let mut same_name = caps_for("reuse", grant, table("reuse"));
        assert_eq!(
            later.pidfile_pid(pidfile.to_str().unwrap()).await.unwrap(),
            None,
            "another resource's table does not claim it"
        );
        assert_eq!(
            same_name
                .pidfile_pid(pidfile.to_str().unwrap())
                .await
                .unwrap(),
            Some(ours),
            "the same resource in another table does"
        );
        procs.kill_all();
    });
    let _ = stranger.kill();
    let _ = stranger.wait();
}

#[test]
fn a_dropped_table_removes_its_cgroups_once_empty() {
    if !support::lab_available("a_dropped_table_removes_its_cgroups") {
        return;
    }
    let _serial = serial();
    let procs = table("cleanup");
    let pid = procs.spawn(&launch(&["/usr/bin/sleep", "300"])).unwrap();
    let _reap = Reap(vec![pid]);
    let Some(dir) = procs
        .cgroup()
        .and_then(|c| c.v2_dir().map(Path::to_path_buf))
    else {
        eprintln!("could not check: no cgroup v2 here");
        procs.kill_all();
        return;
    };
    assert!(dir.is_dir());
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("wasmbeat-{}-", std::process::id())),
        "{name}"
    );
    assert_eq!(procs.kill_all(), 1);
    drop(procs);
    assert!(
        wait_until(Duration::from_secs(5), || !dir.exists()),
        "{} left behind",
        dir.display()
    );
}

/// How `pid` of `procs` ended, waiting up to 20 s; panics with `what`
/// when it has not.
fn exit_within_20s(procs: &ProcessTable, pid: u32, what: &str) -> wasmbeat::caps::RunOutput {
    let t0 = Instant::now();
    loop {
        if let Some(out) = procs.exit_of(pid) {
            return out;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Under `ServerOutput::File` a server's stdout and stderr are appended to
/// its resource's log file instead of a pipe to this process (which, as
/// the OCF bridge or `wasmbeat agent start`, exits while the server runs
/// on: `ocf_tester_lab` runs that); its exit still carries the tail, read
/// back from that file. The control: under `Log` nothing is written there.
#[test]
fn server_output_to_a_file_is_appended_and_keeps_the_exit_tail() {
    if !support::lab_available("server_output_to_a_file_is_appended_and_keeps_the_exit_tail") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let resource = "tcpservice::10.77.0.1:80/x";
    let file = wasmbeat::caps::server_log_path(&logs, resource);
    assert_eq!(file.file_name().unwrap(), "tcpservice__10.77.0.1_80_x.log");
    let script = "echo started on stdout; echo first on stderr >&2; \
                  sleep 0.3; echo why it exits >&2; exit 3";
    let procs = ProcessTable::with_output(
        resource,
        ProcessLimits::default(),
        ServerOutput::File(logs.clone()),
    );
    let pid = procs.spawn(&launch(&["/bin/sh", "-c", script])).unwrap();
    let out = exit_within_20s(&procs, pid, "the script did not exit in 20 s");
    assert_eq!(out.exit_code, Some(3), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "started on stdout\nfirst on stderr\nwhy it exits\n",
        "the server's output in {}",
        file.display()
    );
    let tail = String::from_utf8_lossy(&out.stderr);
    assert!(tail.ends_with("why it exits\n"), "tail: {tail:?}");
    // A second run appends, and its tail holds only its own output.
    let pid = procs
        .spawn(&launch(&["/bin/sh", "-c", "echo again >&2; exit 1"]))
        .unwrap();
    let out = exit_within_20s(&procs, pid, "the second run did not exit in 20 s");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "again\n");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .ends_with("why it exits\nagain\n"));

    // Control: the daemon's mode pipes stderr into the log, not the file.
    let piped = ProcessTable::new("piped::x", ProcessLimits::default());
    let pid = piped
        .spawn(&launch(&["/bin/sh", "-c", "echo to the log >&2; exit 2"]))
        .unwrap();
    let out = exit_within_20s(&piped, pid, "the piped run did not exit in 20 s");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to the log\n");
    assert!(!wasmbeat::caps::server_log_path(&logs, "piped::x").exists());
}

//! The Debian package and the systemd contract, tested on the package
//! itself: unpack it (`dpkg-deb -x`), check what it holds, verify its unit
//! with `systemd-analyze verify` and the package with lintian, then run the
//! unpacked binary under a `NOTIFY_SOCKET` this test listens on through
//! start, reload and stop, with the watchdog petted at its interval and
//! silent while the daemon is stopped (PID 1 here is not systemd).
//!
//! The package: `WASMBEAT_PACKAGE_DEB` (scripts/test.sh builds the release
//! one and sets it), else this test runs `scripts/package.sh` with the dev
//! profile.

mod support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use support::{lab_available, Lab, TempDir};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The .deb under test, built once per test binary.
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(p) = std::env::var_os("WASMBEAT_PACKAGE_DEB") {
            return PathBuf::from(p);
        }
        let out = Command::new(repo_root().join("scripts/package.sh"))
            .env(
                "WASMBEAT_PACKAGE_PROFILE",
                std::env::var("WASMBEAT_PACKAGE_PROFILE").unwrap_or_else(|_| "dev".into()),
            )
            .output()
            .expect("run scripts/package.sh");
        assert!(
            out.status.success(),
            "scripts/package.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        repo_root().join(stdout.lines().last().expect("package path").trim())
    })
}

/// The package unpacked into a fresh directory.
fn unpack(tag: &str) -> TempDir {
    let root = TempDir::new(tag);
    support::run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(package())
            .arg(&root.0),
    );
    root
}

/// A man page rendered by `man -l`; panics unless it renders to some text.
fn render_man(page: &Path) -> String {
    let out = Command::new("man").arg("-l").arg(page).output().unwrap();
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "man page {} renders",
        page.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(deb: &Path, name: &str) -> String {
    let out = support::run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn package_holds_binary_unit_tools_docs_and_verifies() {
    let deb = package();
    let root = unpack("pkg-contents");
    let r = &root.0;

    let bin = r.join("usr/sbin/wasmbeat");
    let mode = std::fs::metadata(&bin)
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
        .mode();
    assert_eq!(mode & 0o777, 0o755, "binary mode {mode:o}");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("wasmbeat "),
        "unpacked binary runs"
    );

    // The daemon carries no compiler; the helper that compiles agents for
    // it ships where the daemon looks. The probe is Cranelift's source path
    // in its panic locations, checked against the helper that has it.
    let helper = r.join("usr/libexec/wasmbeat/wasmbeat-compile");
    let holds = |file: &Path, needle: &[u8]| {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        bytes.windows(needle.len()).any(|w| w == needle)
    };
    assert!(
        holds(&helper, b"cranelift-codegen"),
        "the shipped helper {} has the compiler",
        helper.display()
    );
    assert!(
        !holds(&bin, b"cranelift-codegen"),
        "the shipped daemon links Cranelift: build it with --no-default-features"
    );

    // heartbeat's tools: links to the one binary, where heartbeat puts them.
    for tool in [
        "usr/bin/cl_status",
        "usr/share/heartbeat/hb_standby",
        "usr/share/heartbeat/hb_takeover",
    ] {
        let target = std::fs::canonicalize(r.join(tool))
            .unwrap_or_else(|e| panic!("{tool} does not resolve: {e}"));
        assert_eq!(
            target,
            std::fs::canonicalize(&bin).unwrap(),
            "{tool} -> wasmbeat"
        );
    }

    // Called by heartbeat's name, the binary is heartbeat's tool: with no
    // daemon behind the socket, hbstatus says stopped and exits 1.
    let empty = TempDir::new("pkg-no-daemon");
    let hb = Command::new(r.join("usr/bin/cl_status"))
        .arg("hbstatus")
        .env("WASMBEAT_RUNTIME_DIR", &empty.0)
        .output()
        .unwrap();
    assert_eq!(
        (
            hb.status.code(),
            String::from_utf8_lossy(&hb.stdout).into_owned()
        ),
        (
            Some(1),
            "Heartbeat is stopped on this machine.\n".to_string()
        ),
        "cl_status through the packaged link"
    );
    assert!(render_man(&r.join("usr/share/man/man1/cl_status.1.gz")).contains("rscstatus"));

    // One man page per visible subcommand, all from the CLI model.
    let subcommands = [
        "run", "status", "standby", "takeover", "reload", "agent", "check",
    ];
    let mut pages = vec!["wasmbeat.8.gz".to_string()];
    pages.extend(subcommands.iter().map(|s| format!("wasmbeat-{s}.8.gz")));
    for page in &pages {
        let text = render_man(&r.join("usr/share/man/man8").join(page));
        if page == "wasmbeat-run.8.gz" {
            assert!(text.contains("--config-dir"), "{page}:\n{text}");
        }
    }

    for (path, needle) in [
        ("usr/share/bash-completion/completions/wasmbeat", "complete"),
        (
            "usr/share/zsh/vendor-completions/_wasmbeat",
            "#compdef wasmbeat",
        ),
        (
            "usr/share/fish/vendor_completions.d/wasmbeat.fish",
            "complete -c wasmbeat",
        ),
    ] {
        let text = std::fs::read_to_string(r.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.contains(needle), "{path} is a completion script");
        for sub in subcommands {
            assert!(text.contains(sub), "{path} completes `{sub}`");
        }
    }
    for path in [
        "usr/share/doc/wasmbeat/copyright",
        "usr/share/doc/wasmbeat/changelog.Debian.gz",
        "usr/share/doc/wasmbeat/examples/ha.d/ha.cf",
        "usr/share/doc/wasmbeat/examples/ha.d/haresources",
        "usr/share/doc/wasmbeat/examples/ha.d/authkeys",
    ] {
        assert!(r.join(path).is_file(), "{path} shipped");
    }
    assert!(r.join("var/cache/wasmbeat").is_dir(), "agent cache dir");
    // Never an admin's cluster files.
    assert!(
        !r.join("etc/ha.d/ha.cf").exists(),
        "package must not ship ha.cf"
    );

    // The examples are a configuration `check` accepts as written.
    let examples = r.join("usr/share/doc/wasmbeat/examples/ha.d");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        examples.join("authkeys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let check = Command::new(&bin)
        .args(["check", "--no-grants", "--node", "node1", "--config-dir"])
        .arg(&examples)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "examples pass check:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    assert_eq!(field(deb, "Package"), "wasmbeat");
    assert_eq!(field(deb, "Conflicts"), "heartbeat");
    assert_eq!(field(deb, "Replaces"), "heartbeat");
    assert!(field(deb, "Depends").contains("libc6 (>= 2."));

    verify_unit(r);
    lintian(deb);
}

/// `systemd-analyze verify` in a root holding the package plus the host's
/// own units (for the targets it names), man pages found in the package.
/// A unit broken on purpose must fail the same check.
fn verify_unit(root: &Path) {
    let units = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    support::run(
        Command::new("cp")
            .arg("-rn")
            .arg("/usr/lib/systemd/system/.")
            .arg(&units),
    );
    let verify = |unit: &str| {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(unit)
            .env("MANPATH", root.join("usr/share/man"))
            .output()
            .expect("systemd-analyze")
    };
    let ok = verify("/lib/systemd/system/wasmbeat.service");
    assert!(
        ok.status.success() && ok.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/wasmbeat.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "TimeoutStopSec=150s",
        "ExecReload=/usr/sbin/wasmbeat reload",
    ] {
        assert!(unit.contains(line), "unit has {line}");
    }
    std::fs::write(
        root.join("lib/systemd/system/wasmbeat-broken.service"),
        unit.replace("/usr/sbin/wasmbeat run", "/usr/sbin/wasmbeat-missing run"),
    )
    .unwrap();
    let broken = verify("/lib/systemd/system/wasmbeat-broken.service");
    assert!(
        !broken.status.success(),
        "verify must catch a missing ExecStart binary"
    );
}

/// lintian: no error or warning left (the one deliberate tag is overridden
/// in the package, with its reason).
fn lintian(deb: &Path) {
    let Ok(out) = Command::new("lintian")
        .args(["--tag-display-limit", "0", "--allow-root"])
        .arg(deb)
        .output()
    else {
        assert!(
            std::env::var_os("WASMBEAT_REQUIRE_LAB").is_none(),
            "lintian not installed (scripts/setup.sh installs it)"
        );
        eprintln!("SKIP lintian: not installed");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(tags.is_empty(), "lintian:\n{}", tags.join("\n"));
}

/// Datagrams received on the test's NOTIFY_SOCKET, with arrival times.
struct Notifications {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Notifications {
    fn listen(path: &Path) -> Notifications {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    s.lock().unwrap().push((Instant::now(), text));
                }
            }
        });
        Notifications { seen, stop }
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// Messages with a line exactly `line`, at or after `since`.
    fn with_line(&self, line: &str, since: Instant) -> Vec<(Instant, String)> {
        self.all()
            .into_iter()
            .filter(|(t, m)| *t >= since && m.lines().any(|l| l == line))
            .collect()
    }

    /// Wait (bounded) for a message with `line` at or after `since`.
    fn wait_line(&self, line: &str, since: Instant, limit: Duration) -> Instant {
        support::wait_for(limit, Duration::from_millis(20), || {
            self.with_line(line, since).first().map(|(t, _)| *t)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {line} within {limit:?}; received: {:#?}",
                self.all()
                    .iter()
                    .map(|(_, m)| m.replace('\n', " "))
                    .collect::<Vec<_>>()
            )
        })
    }

    /// The latest STATUS= text.
    fn status(&self) -> String {
        self.all()
            .iter()
            .rev()
            .find_map(|(_, m)| m.lines().find_map(|l| l.strip_prefix("STATUS=")))
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The unit's `WatchdogSec=`, which systemd hands the daemon as
/// `WATCHDOG_USEC`.
fn unit_watchdog(root: &Path) -> Duration {
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/wasmbeat.service")).unwrap();
    let value = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .expect("unit sets WatchdogSec");
    let secs: u64 = value
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("WatchdogSec={value}: write whole seconds"));
    Duration::from_secs(secs)
}

#[test]
fn unpacked_daemon_notifies_systemd_and_pets_the_watchdog_from_its_loop() {
    if !lab_available("unpacked_daemon_notifies_systemd_and_pets_the_watchdog_from_its_loop") {
        return;
    }
    let root = unpack("pkg-notify");
    let bin = root.0.join("usr/sbin/wasmbeat");
    let watchdog = unit_watchdog(&root.0);
    let lab = Lab::new("notify", &["10.79.0.1/24", "10.79.0.2/24"]);
    let dir = TempDir::new("notify-cfg");
    let cfg = dir.0.join("ha.d");
    std::fs::create_dir_all(&cfg).unwrap();
    let ha_cf = |warntime: &str| {
        format!(
            "keepalive 200ms\ndeadtime 1\nwarntime {warntime}\ninitdead 2\nudpport 694\nbcast eth0\nauto_failback on\nnode node1\nnode node2\n"
        )
    };
    std::fs::write(cfg.join("ha.cf"), ha_cf("600ms")).unwrap();
    std::fs::write(
        cfg.join("haresources"),
        "node1 IPaddr::10.79.0.100/24/eth0\n",
    )
    .unwrap();
    std::fs::write(cfg.join("authkeys"), "auth 1\n1 sha1 notify-test-key\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(cfg.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let runtime_dir = dir.0.join("run");
    let log = dir.0.join("journal.log");
    std::fs::write(&log, "").unwrap();
    let log_meta = std::fs::metadata(&log).unwrap();

    let notify = Notifications::listen(&dir.0.join("notify.sock"));
    let mut daemon = Command::new("sh");
    daemon.args([
        "-c",
        &format!(
            "exec {} run --config-dir {} --node node1 --runtime-dir {} --cache-dir {} 2>>{}",
            bin.display(),
            cfg.display(),
            runtime_dir.display(),
            support::shared_agent_cache().display(),
            log.display()
        ),
    ]);
    daemon
        .env("NOTIFY_SOCKET", dir.0.join("notify.sock"))
        .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
        // stderr is "the journal": the file's device and inode.
        .env(
            "JOURNAL_STREAM",
            format!("{}:{}", log_meta.dev(), log_meta.ino()),
        )
        .env("RUST_LOG", "info");
    let spawned = Instant::now();
    let pid = lab.nodes[0].spawn(daemon);
    let cli = |args: &[&str]| support::control_cli(&bin, &cfg, &runtime_dir, args);
    let dump = || std::fs::read_to_string(&log).unwrap_or_default();

    // READY=1 only once the daemon can answer: the control socket works
    // the moment systemd would let `systemctl start` return.
    let ready = notify.wait_line("READY=1", spawned, Duration::from_secs(60));
    let (code, out) = cli(&["status"]);
    assert_eq!(code, 0, "status right after READY=1: {out}\n{}", dump());
    eprintln!(
        "READY=1 {:.0} ms after spawn",
        ready.duration_since(spawned).as_secs_f64() * 1000.0
    );

    // After initdead node1 takes its group: STATUS= says so.
    let took = support::wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        notify
            .status()
            .contains("1 of 1 group(s) running here")
            .then_some(())
    });
    assert!(
        took.is_some(),
        "STATUS= never showed the group running; last: {:?}\n{}",
        notify.status(),
        dump()
    );
    assert!(
        notify.status().starts_with("node1 holds local"),
        "{}",
        notify.status()
    );

    // The watchdog at the unit's interval: petted every WatchdogSec/2, so
    // over WatchdogSec + 1 s at least two pets and every gap inside it.
    let window_start = Instant::now();
    std::thread::sleep(watchdog + Duration::from_secs(1));
    let pets: Vec<Instant> = notify
        .with_line("WATCHDOG=1", window_start)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let gaps: Vec<f64> = pets
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .collect();
    eprintln!("WATCHDOG=1 gaps (ms), WatchdogSec {watchdog:?}: {gaps:.0?}");
    assert!(
        pets.len() >= 2,
        "expected a pet every {:?} for {:?}, got {}",
        watchdog / 2,
        watchdog + Duration::from_secs(1),
        pets.len()
    );
    assert!(
        gaps.iter().all(|g| *g < watchdog.as_secs_f64() * 1000.0),
        "a gap reached WatchdogSec: {gaps:.0?}"
    );

    // A stalled loop stops petting (for longer than a pet interval, so one
    // was due); it resumes when the loop does.
    assert!(lab.nodes[0].signal(pid, libc::SIGSTOP));
    let stopped = Instant::now();
    std::thread::sleep(watchdog / 2 + Duration::from_secs(1));
    // Taken before SIGCONT: the first pet can arrive before the signal
    // call returns here.
    let resumed = Instant::now();
    assert!(lab.nodes[0].signal(pid, libc::SIGCONT));
    let during: Vec<_> = notify
        .with_line("WATCHDOG=1", stopped + Duration::from_millis(50))
        .into_iter()
        .filter(|(t, _)| *t < resumed)
        .collect();
    assert!(
        during.is_empty(),
        "{} WATCHDOG=1 arrived while the daemon was stopped",
        during.len()
    );
    // Overdue, so at once; the bound is generous for a loaded machine.
    let again = notify.wait_line("WATCHDOG=1", resumed, Duration::from_secs(3));
    eprintln!(
        "first WATCHDOG=1 {:.0} ms after SIGCONT",
        again.duration_since(resumed).as_secs_f64() * 1000.0
    );

    // A refused reload: the client fails with the reason, the daemon runs on
    // (and logs the refusal as an error, priority 3 in the journal).
    std::fs::write(cfg.join("ha.cf"), ha_cf("600ms") + "deadtime soon\n").unwrap();
    let (code, out) = cli(&["reload"]);
    assert_ne!(code, 0, "a broken ha.cf must fail the reload: {out}");
    // A good reload: RELOADING=1, then READY=1 after it.
    std::fs::write(cfg.join("ha.cf"), ha_cf("700ms")).unwrap();
    let asked = Instant::now();
    let (code, out) = cli(&["reload"]);
    assert_eq!(code, 0, "reload: {out}\n{}", dump());
    let reloading = notify.wait_line("RELOADING=1", asked, Duration::from_secs(10));
    let ready_again = notify.wait_line("READY=1", reloading, Duration::from_secs(10));
    assert!(ready_again >= reloading);
    let monotonic = notify
        .with_line("RELOADING=1", asked)
        .iter()
        .any(|(_, m)| m.contains("MONOTONIC_USEC="));
    assert!(monotonic, "RELOADING=1 carries MONOTONIC_USEC");

    // Stop: STOPPING=1 first, then a clean exit with the VIP released.
    let stop = Instant::now();
    assert!(lab.nodes[0].signal(pid, libc::SIGTERM));
    notify.wait_line("STOPPING=1", stop, Duration::from_secs(10));
    let code = lab.nodes[0].wait_exit(pid, Duration::from_secs(60));
    assert_eq!(code, Some(0), "graceful exit\n{}", dump());
    assert!(
        !lab.nodes[0].addrs("eth0").contains("10.79.0.100"),
        "VIP released at stop"
    );

    // Journal priorities: every line carries one; the refusal is an error.
    let text = dump();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty());
    let unprefixed: Vec<&&str> = lines
        .iter()
        .filter(|l| !(l.len() > 3 && l.starts_with('<') && l.as_bytes()[2] == b'>'))
        .collect();
    assert!(
        unprefixed.is_empty(),
        "lines without a syslog priority: {unprefixed:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("starting as node1")),
        "start-up line at info:\n{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<3>") && l.contains("deadtime")),
        "refused reload at error priority:\n{text}"
    );
}

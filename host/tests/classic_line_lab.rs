//! End to end with the full classic haresources line: a VIP, named, Apache
//! and MariaDB in one group on two `wasmbeat run` daemons, and a client
//! namespace that asks DNS, HTTP and MySQL at the VIP who answers. Also the
//! example agents in Python and C, and in TypeScript and Go, referenced by
//! `.wasm` path, failing over with a VIP in the same way.
//!
//! Both nodes run on one machine but haresources must be the same text on
//! both, so every server path names a common directory (`srv`) over which
//! each daemon bind-mounts its own node's directory in a private mount
//! namespace (`unshare -m`); the servers the agents start inherit that view.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Lab, TempDir};
use wasmbeat_lab::services;

const BIN: &str = env!("CARGO_BIN_EXE_wasmbeat");
const VIP: &str = "10.77.0.100";
const NODES: [&str; 2] = ["node1", "node2"];
/// Server pid files, relative to a node's server directory.
const PID_FILES: [&str; 3] = ["named/named.pid", "web/apache.pid", "sql/mysqld.pid"];

/// The answers a client gets from node `i` (DNS A record, HTTP body, MySQL server_id).
fn answers(i: usize) -> [String; 3] {
    [
        format!("10.77.9.{}", i + 1),
        NODES[i].to_string(),
        format!("{}", i + 1),
    ]
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

fn chown(user: &str, path: &Path) {
    services::chown(user, path).unwrap();
}

/// Kill (SIGKILL, whole process group: the agents start each server in its
/// own group) every server our pid files still name. Runs on every path,
/// before the temp dir goes, so a panic never leaves servers behind.
struct Reaper(Vec<PathBuf>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for f in &self.0 {
            let Some(pid) = pid_in(f) else { continue };
            if !alive(pid) {
                continue;
            }
            // SAFETY: plain syscalls on the PID (and its group, when it
            // leads one) that our own server wrote into our own pid file.
            unsafe {
                if libc::getpgid(pid as i32) == pid as i32 {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                } else {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }
}

struct Classic {
    lab: Lab,
    base: PathBuf,
    daemons: [Option<u32>; 2],
}

impl Classic {
    fn cfg(&self, i: usize) -> PathBuf {
        self.base.join(format!("cfg{}", i + 1))
    }
    fn srv(&self, i: usize) -> PathBuf {
        self.base.join(format!("srv{}", i + 1))
    }
    fn log(&self, i: usize) -> PathBuf {
        self.base.join(format!("{}.log", NODES[i]))
    }
    /// Whether node i logs, within 30 s, a group summary line (the one
    /// with the total) naming `order` in that order.
    fn summary_logged(&self, i: usize, order: &[&String]) -> bool {
        support::wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
            self.log_text(i)
                .lines()
                .any(|l| l.contains("total") && in_order(l, order))
                .then_some(())
        })
        .is_some()
    }

    fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
    }
    fn dump_logs(&self) {
        for (i, node) in NODES.iter().enumerate() {
            eprintln!("----- {node} log -----\n{}", self.log_text(i));
        }
    }

    fn start(&mut self, i: usize) {
        // Bind this node's server dir over the common path, then become
        // the daemon (exec keeps the PID the lab recorded).
        let script = format!(
            "mount --bind {srv} {common} && exec {BIN} run --config-dir {cfg} --node {node} \
             --runtime-dir {run} --cache-dir {cache} 2>>{log}",
            srv = self.srv(i).display(),
            common = self.base.join("srv").display(),
            cfg = self.cfg(i).display(),
            node = NODES[i],
            run = self.base.join(format!("run{}", i + 1)).display(),
            cache = support::shared_agent_cache().display(),
            log = self.log(i).display(),
        );
        let mut daemon = Command::new("unshare");
        daemon.args(["-m", "--propagation", "private", "sh", "-c", &script]);
        daemon.env("RUST_LOG", "info");
        self.daemons[i] = Some(self.lab.nodes[i].spawn(daemon));
    }

    /// Two nodes and a client on a bridge, with the same configuration
    /// written for both nodes under `base`; no daemon started yet.
    fn new(tag: &str, base: &Path, haresources: &str, agents_toml: &str) -> Classic {
        let lab = Lab::new(tag, &["10.77.0.1/24", "10.77.0.2/24", "10.77.0.10/24"]);
        let c = Classic {
            lab,
            base: base.to_path_buf(),
            daemons: [None, None],
        };
        c.write_configs(haresources, agents_toml);
        c
    }

    /// The same ha.cf (fast lab timings), haresources, authkeys and
    /// agents.toml for both nodes.
    fn write_configs(&self, haresources: &str, agents_toml: &str) {
        for (i, node) in NODES.iter().enumerate() {
            let cfg = self.cfg(i);
            std::fs::create_dir_all(&cfg).unwrap();
            std::fs::write(
                cfg.join("ha.cf"),
                format!(
                    "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1\nudpport 694\n\
                     bcast eth0\nauto_failback on\nnode node1\nnode node2\nlogfile {}\n",
                    self.base.join(format!("{node}.ha-log")).display()
                ),
            )
            .unwrap();
            std::fs::write(cfg.join("haresources"), haresources).unwrap();
            std::fs::write(cfg.join("authkeys"), "auth 1\n1 sha1 lab-test-key\n").unwrap();
            std::fs::set_permissions(cfg.join("authkeys"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
            std::fs::write(cfg.join("agents.toml"), agents_toml).unwrap();
        }
    }

    fn holders(&self) -> Vec<usize> {
        (0..2)
            .filter(|i| {
                self.lab.nodes[*i]
                    .addrs("eth0")
                    .split_whitespace()
                    .any(|w| w.split('/').next() == Some(VIP))
            })
            .collect()
    }

    /// What the client gets at the VIP: DNS, HTTP, MySQL.
    fn client_answers(&self) -> [String; 3] {
        let c = &self.lab.nodes[2];
        let out = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
        [
            out(c.exec(
                "dig",
                &[
                    "+short",
                    "+time=1",
                    "+tries=1",
                    &format!("@{VIP}"),
                    "www.wasmbeat.test",
                ],
            )),
            out(c.exec(
                "curl",
                &["-s", "--max-time", "2", &format!("http://{VIP}/")],
            )),
            out(c.exec(
                "mariadb",
                &[
                    "-h",
                    VIP,
                    "-u",
                    "wb",
                    "-ppw",
                    "--connect-timeout=2",
                    "-N",
                    "-e",
                    "SELECT @@server_id",
                ],
            )),
        ]
    }

    /// Wait until the client gets node `i`'s answers to all three
    /// services (and, if `exclusive`, only node `i` holds the VIP).
    fn expect_serving(&self, i: usize, exclusive: bool, limit: Duration, why: &str) -> Duration {
        let start = Instant::now();
        let want = answers(i);
        let mut last = Default::default();
        let ok = support::wait_for(limit, Duration::from_millis(200), || {
            last = self.client_answers();
            (last == want && (!exclusive || self.holders() == vec![i])).then_some(())
        });
        if ok.is_none() {
            self.dump_logs();
            panic!(
                "{why}: {} did not serve DNS/HTTP/MySQL within {limit:?}; last answers {last:?}, \
                 VIP holders {:?}",
                NODES[i],
                self.holders()
            );
        }
        start.elapsed()
    }

    fn wait_log(&self, i: usize, needle: &str, count: usize, limit: Duration) {
        if support::wait_for(limit, Duration::from_millis(50), || {
            (self.log_text(i).matches(needle).count() >= count).then_some(())
        })
        .is_none()
        {
            self.dump_logs();
            panic!(
                "{} never logged {needle:?} ({count}x) within {limit:?}",
                NODES[i]
            );
        }
    }

    /// PIDs of node `i`'s servers that are running now.
    fn server_pids(&self, i: usize) -> Vec<u32> {
        PID_FILES
            .iter()
            .filter_map(|f| pid_in(&self.srv(i).join(f)))
            .filter(|p| alive(*p))
            .collect()
    }

    fn stop_daemon(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let pid = self.daemons[i]?;
        self.lab.nodes[i].signal(pid, libc::SIGTERM);
        let code = self.lab.nodes[i].wait_exit(pid, limit);
        if code.is_some() {
            self.daemons[i] = None;
        }
        code
    }
}

impl Drop for Classic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// The resource names of the group in haresources order, as the daemon
/// logs them.
fn group_names(common: &str) -> [String; 4] {
    [
        format!("IPaddr::{VIP}/24/eth0"),
        format!("named::{VIP}:53::{common}/named/named.conf::{common}/named/named.pid::probe_name=www.wasmbeat.test"),
        format!("httpd::{VIP}:80::apache::{common}/web/httpd.conf::{common}/web/apache.pid"),
        format!(
            "mysqld::{VIP}:3306::{common}/sql/data::{common}/sql/my.cnf::{common}/sql/mysqld.pid::{common}/sql/mysqld.sock::start_timeout=60"
        ),
    ]
}

/// Whether `line` names every resource, in exactly the order `names`.
fn in_order(line: &str, names: &[&String]) -> bool {
    let mut at = 0;
    for n in names {
        // A name followed by a space or ")" so that a prefix never matches.
        let found = [" ", ")", ","]
            .iter()
            .filter_map(|end| line[at..].find(&format!("{n}{end}")))
            .min();
        match found {
            Some(p) => at += p + n.len(),
            None => return false,
        }
    }
    true
}

/// Write one node's server configs under `srv` (a directory of its own),
/// naming only the common path `common` that the daemon will see.
fn write_servers(srv: &Path, common: &str, i: usize) {
    let named = srv.join("named");
    std::fs::create_dir_all(&named).unwrap();
    std::fs::write(
        named.join("named.conf"),
        services::named_conf(&format!("{common}/named"), VIP),
    )
    .unwrap();
    std::fs::write(
        named.join("db.test"),
        services::named_zone(VIP, &answers(i)[0]),
    )
    .unwrap();
    chown("bind", &named);

    let web = srv.join("web");
    std::fs::create_dir_all(web.join("www")).unwrap();
    std::fs::write(web.join("www/index.html"), NODES[i]).unwrap();
    std::fs::write(
        web.join("httpd.conf"),
        services::apache_conf(&format!("{common}/web"), &format!("{VIP}:80")),
    )
    .unwrap();
    chown("www-data", &web);

    let sql = srv.join("sql");
    std::fs::create_dir_all(sql.join("data")).unwrap();
    let small = services::MARIADB_SMALL;
    // The client's account is (re)created at every server start, so the
    // datadir can be initialised ahead of time without a running server.
    std::fs::write(
        sql.join("init.sql"),
        "CREATE USER IF NOT EXISTS 'wb'@'10.77.0.%' IDENTIFIED BY 'pw';\n",
    )
    .unwrap();
    std::fs::write(
        sql.join("my.cnf"),
        format!(
            "[mysqld]\n{small}tmpdir={common}/sql\nserver_id={}\ninit-file={common}/sql/init.sql\n",
            i + 1
        ),
    )
    .unwrap();
    // Its own tmpdir: the two initialisers run at once and their temporary
    // table names collide in a shared /tmp.
    std::fs::write(
        sql.join("pre.cnf"),
        format!("[mysqld]\n{small}tmpdir={}\n", sql.display()),
    )
    .unwrap();
    chown("mysql", &sql);
}

/// Initialise a node's MariaDB datadir (as the agent would on its first
/// start) so that starts and failovers in the test take seconds.
fn init_datadir(srv: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.args(["90", "mariadb-install-db"])
        .arg(format!(
            "--defaults-file={}",
            srv.join("sql/pre.cnf").display()
        ))
        .arg(format!("--datadir={}", srv.join("sql/data").display()))
        .args([
            "--user=mysql",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ]);
    c
}

/// The classic line on two daemons: link failover and failback of all
/// four resources in order, then a web server crash restarted locally once
/// and, on the next crash, the whole group moved to the peer.
#[test]
fn classic_line_fails_over_and_back_and_recovers_a_crashed_web_server() {
    if !support::lab_available("classic_line_fails_over_and_back_and_recovers_a_crashed_web_server")
    {
        return;
    }
    let t0 = Instant::now();
    let dir = TempDir::new("classic");
    let base = dir.0.clone();
    let common = base.join("srv").display().to_string();
    std::fs::create_dir_all(&common).unwrap();
    let mut reaper = Reaper(Vec::new());
    for i in 0..2 {
        let srv = base.join(format!("srv{}", i + 1));
        write_servers(&srv, &common, i);
        reaper.0.extend(PID_FILES.iter().map(|f| srv.join(f)));
    }
    // Both datadirs at once: each takes a few seconds of mostly I/O.
    let inits: Vec<_> = (0..2)
        .map(|i| {
            init_datadir(&base.join(format!("srv{}", i + 1)))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let inits: Vec<_> = inits
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (i, out) in inits.iter().enumerate() {
        assert!(
            out.status.success(),
            "mariadb-install-db for node{}: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("datadirs initialised after {:?}", t0.elapsed());

    let names = group_names(&common);
    let haresources = format!("node1 {}\n", names.join(" "));
    let mut c = Classic::new(
        "classic",
        &base,
        &haresources,
        "[agent.httpd]\nmonitor = \"500ms\"\nrestarts = 1\n",
    );
    let start_order: Vec<&String> = names.iter().collect();
    let stop_order: Vec<&String> = names.iter().rev().collect();
    let describe = |order: &[&String]| {
        order
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    };

    // node1 alone takes the group after initdead; node2 joins quietly.
    c.start(0);
    let took = c.expect_serving(0, true, Duration::from_secs(60), "node1 alone");
    eprintln!("node1 alone serves DNS/HTTP/MySQL after {took:?}");
    assert!(
        c.log_text(0).contains(&format!(
            "starting group {} ({})",
            names[0],
            describe(&start_order)
        )),
        "start order announced"
    );
    c.start(1);
    c.wait_log(1, "communication up", 1, Duration::from_secs(20));
    c.expect_serving(0, true, Duration::from_secs(5), "after node2 joined");
    assert!(
        c.server_pids(1).is_empty(),
        "node2 runs servers while passive"
    );

    // Pull node1's plug: node2 starts the whole line, in order.
    c.lab.set_link(0, false);
    let took = c.expect_serving(1, false, Duration::from_secs(45), "node1 link down");
    eprintln!("link down: client gets all three answers from node2 after {took:?}");
    let log2 = c.log_text(1);
    assert!(log2.contains("node node1 declared dead"), "{log2}");
    assert!(
        log2.contains(&format!(
            "starting group {} ({})",
            names[0],
            describe(&start_order)
        )),
        "node2 start order"
    );
    // The clients' answers can come before the last start returns (the
    // agent still probes): wait for the group's summary line.
    assert!(
        c.summary_logged(1, &start_order),
        "node2's step summary lists the four starts in order"
    );
    assert_eq!(c.server_pids(1).len(), 3, "node2 runs all three servers");

    // Plug back: split brain settles with node1 (preferred) keeping its
    // copy; node2 stops its copy in reverse order.
    c.lab.set_link(0, true);
    let took = c.expect_serving(0, true, Duration::from_secs(45), "node1 link back");
    eprintln!("link back: node1 alone serves again after {took:?}");
    let stopped = support::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        c.server_pids(1).is_empty().then_some(())
    });
    assert!(
        stopped.is_some(),
        "node2's servers still run: {:?}",
        c.server_pids(1)
    );
    let log2 = c.log_text(1);
    assert!(log2.contains("split brain"), "{log2}");
    assert!(
        log2.contains(&format!(
            "stopping group {} ({})",
            names[0],
            describe(&stop_order)
        )),
        "node2 stop order"
    );
    assert!(
        c.summary_logged(1, &stop_order),
        "node2's step summary lists the four stops in reverse order"
    );
    assert_eq!(c.server_pids(0).len(), 3, "node1 kept all three servers");

    // kill -9 of the web server (Apache and its workers) on node1: the
    // monitor restarts it in place, once.
    let apache_pid_file = c.srv(0).join("web/apache.pid");
    let kill_web = || -> u32 {
        let pid = pid_in(&apache_pid_file).expect("apache pid file");
        // SAFETY: plain syscalls on the server our pid file names; the
        // agents start every server as the leader of its own group.
        unsafe {
            assert_eq!(
                libc::getpgid(pid as i32),
                pid as i32,
                "apache leads its group"
            );
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        assert!(
            support::wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
                (!alive(pid)).then_some(())
            })
            .is_some(),
            "apache {pid} survived SIGKILL"
        );
        pid
    };
    let killed = kill_web();
    let crash = Instant::now();
    c.wait_log(
        0,
        "restarted locally after a failed monitor",
        1,
        Duration::from_secs(20),
    );
    c.expect_serving(
        0,
        true,
        Duration::from_secs(10),
        "web server restarted locally",
    );
    eprintln!(
        "first kill -9: apache back on node1 after {:?}",
        crash.elapsed()
    );
    let again = pid_in(&apache_pid_file).unwrap();
    assert_ne!(again, killed, "a new apache serves");

    // Second crash: the budget (1 restart) is spent, the line moves to node2.
    kill_web();
    let crash = Instant::now();
    c.expect_serving(1, true, Duration::from_secs(60), "restart budget spent");
    eprintln!("second kill -9: group on node2 after {:?}", crash.elapsed());
    assert!(c
        .log_text(0)
        .contains("keeps failing after 1 local restart(s)"));
    assert_eq!(
        c.log_text(0)
            .matches("restarted locally after a failed monitor")
            .count(),
        1
    );
    assert!(
        support::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
            c.server_pids(0).is_empty().then_some(())
        })
        .is_some(),
        "node1 still runs servers after handing over: {:?}",
        c.server_pids(0)
    );

    // Graceful stops release everything: no server outlives its daemon.
    assert_eq!(c.stop_daemon(0, Duration::from_secs(30)), Some(0));
    assert_eq!(c.stop_daemon(1, Duration::from_secs(60)), Some(0));
    assert!(c.server_pids(0).is_empty() && c.server_pids(1).is_empty());
    eprintln!("classic line test took {:?}", t0.elapsed());
}

/// Two example agents' servers behind the VIP, as a lab test checks them:
/// each writes a pid file under the node's server directory; the client
/// gets the node's name over HTTP from one and a TCP connection from the
/// other.
struct ExamplePair {
    /// What the two are, for messages ("redis and haproxy").
    what: &'static str,
    /// The servers' pid files, relative to a node's server directory.
    pid_files: [&'static str; 2],
    /// Port of the server that answers HTTP GET / with the node's name.
    http_port: u16,
    /// Port of the server the client only connects to.
    tcp_port: u16,
}

impl ExamplePair {
    /// How many of the two servers node `i` runs (pid files naming live
    /// processes).
    fn running(&self, c: &Classic, i: usize) -> usize {
        self.pid_files
            .iter()
            .filter_map(|f| pid_in(&c.srv(i).join(f)))
            .filter(|p| alive(*p))
            .count()
    }

    /// Whether the client reaches node `i`'s two servers at the VIP.
    fn client_sees(&self, c: &Classic, i: usize) -> bool {
        let out = c.lab.nodes[2].exec(
            "curl",
            &[
                "-s",
                "--max-time",
                "1",
                &format!("http://{VIP}:{}/", self.http_port),
            ],
        );
        let tcp: std::net::SocketAddr = format!("{VIP}:{}", self.tcp_port).parse().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == NODES[i]
            && c.lab.nodes[2].run_inside(move || {
                std::net::TcpStream::connect_timeout(&tcp, Duration::from_millis(500)).is_ok()
            })
    }

    /// Wait until node `i` runs both servers and the client reaches them.
    fn expect(&self, c: &Classic, i: usize, limit: Duration, why: &str) -> Duration {
        let start = Instant::now();
        if support::wait_for(limit, Duration::from_millis(100), || {
            (self.client_sees(c, i) && self.running(c, i) == 2).then_some(())
        })
        .is_none()
        {
            c.dump_logs();
            panic!(
                "{why}: {} did not serve {} within {limit:?}",
                NODES[i], self.what
            );
        }
        start.elapsed()
    }

    /// node1 serves both (`first_load` allows for compiling the agents);
    /// node2 joins passive; node1's link down → node2 serves both; link
    /// back → node1 serves again and node2 stops its copies; graceful
    /// stops leave no server behind.
    fn fail_over_and_back(&self, c: &mut Classic, first_load: Duration) {
        c.start(0);
        let took = self.expect(c, 0, first_load, "node1 alone");
        eprintln!("node1 serves {} after {took:?}", self.what);
        assert_eq!(c.holders(), vec![0]);
        c.start(1);
        c.wait_log(1, "communication up", 1, Duration::from_secs(60));
        assert_eq!(self.running(c, 1), 0, "node2 runs servers while passive");

        c.lab.set_link(0, false);
        let took = self.expect(c, 1, Duration::from_secs(30), "node1 link down");
        eprintln!("link down: node2 serves {} after {took:?}", self.what);
        assert!(c.log_text(1).contains("node node1 declared dead"));

        c.lab.set_link(0, true);
        let took = self.expect(c, 0, Duration::from_secs(30), "node1 link back");
        eprintln!("link back: node1 serves again after {took:?}");
        assert!(
            support::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
                (self.running(c, 1) == 0).then_some(())
            })
            .is_some(),
            "node2 did not stop its copies of {}",
            self.what
        );
        assert_eq!(self.running(c, 0), 2, "node1 kept its servers");

        assert_eq!(c.stop_daemon(1, Duration::from_secs(30)), Some(0));
        assert_eq!(c.stop_daemon(0, Duration::from_secs(30)), Some(0));
        assert_eq!(
            self.running(c, 0) + self.running(c, 1),
            0,
            "a server outlived its daemon"
        );
    }
}

/// The Python and C examples: tcpservice (TCP) and nginx-c (HTTP).
const PYTHON_AND_C: ExamplePair = ExamplePair {
    what: "both example agents",
    pid_files: ["ts/ts.pid", "web/nginx.pid"],
    http_port: 18081,
    tcp_port: 18080,
};

/// The TypeScript and Go examples: ts-redis (TCP) and go-haproxy (HTTP).
const TS_AND_GO: ExamplePair = ExamplePair {
    what: "redis and haproxy",
    pid_files: ["redis/redis.pid", "haproxy/haproxy.pid"],
    http_port: 18082,
    tcp_port: 16379,
};

/// The example agents written in Python (tcpservice: a TCP server with a
/// pid file) and C (nginx-c), referenced from haresources by `.wasm` path
/// after a VIP: node1 runs both; link down → node2 starts both; link back →
/// node2 stops its copies; graceful stops leave no server behind.
#[test]
fn python_and_c_agents_fail_over_by_wasm_path() {
    if !support::lab_available("python_and_c_agents_fail_over_by_wasm_path") {
        return;
    }
    let (Some(py), Some(cn)) = (
        support::example_agent("python-tcpservice.wasm"),
        support::example_agent("c-nginx.wasm"),
    ) else {
        return;
    };
    let t0 = Instant::now();
    let dir = TempDir::new("examples");
    let base = dir.0.clone();
    // nginx workers (nobody) must reach the document root.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let common = base.join("srv").display().to_string();
    std::fs::create_dir_all(&common).unwrap();
    let server_py = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agents/examples/python-tcpservice/lab_server.py");
    let mut reaper = Reaper(Vec::new());
    for (i, node) in NODES.iter().enumerate() {
        let srv = base.join(format!("srv{}", i + 1));
        std::fs::create_dir_all(srv.join("ts")).unwrap();
        std::fs::copy(&server_py, srv.join("ts/lab_server.py")).unwrap();
        let web = srv.join("web");
        std::fs::create_dir_all(web.join("www")).unwrap();
        std::fs::write(web.join("www/index.html"), node).unwrap();
        let w = format!("{common}/web");
        std::fs::write(
            web.join("nginx.conf"),
            format!(
                "worker_processes 1;\nevents {{ worker_connections 64; }}\n\
                 http {{ access_log off; client_body_temp_path {w}/body; proxy_temp_path {w}/proxy; \
                 fastcgi_temp_path {w}/fastcgi; uwsgi_temp_path {w}/uwsgi; scgi_temp_path {w}/scgi;\n\
                 server {{ listen {VIP}:18081; root {w}/www; }} }}\n"
            ),
        )
        .unwrap();
        for d in [&srv, &srv.join("ts"), &web, &web.join("www")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        reaper
            .0
            .extend(PYTHON_AND_C.pid_files.iter().map(|f| srv.join(f)));
    }
    let py_token = format!("{}::{VIP}:18080::{common}/ts/ts.pid", py.display());
    let c_token = format!(
        "{}::{common}/web/nginx.conf::{common}/web/nginx.pid::{VIP}:18081",
        cn.display()
    );
    let mut c = Classic::new(
        "examples",
        &base,
        &format!("node1 IPaddr::{VIP}/24/eth0 {py_token} {c_token}\n"),
        // The Python agent's server command is the administrator's (an
        // interpreter with its whole command line written out); the C agent
        // declares its two nginx command lines, which the admin accepts.
        &format!(
            "[agent.python-tcpservice]\naccept_declared = true\n\
             commands.server = [\"/usr/bin/python3\", \"{common}/ts/lab_server.py\", \"{VIP}\", \"18080\", \"{common}/ts/ts.pid\"]\n\
             [agent.c-nginx]\naccept_declared = true\n"
        ),
    );
    // The first load may compile the Python agent (seconds).
    PYTHON_AND_C.fail_over_and_back(&mut c, Duration::from_secs(90));
    eprintln!("example agents failover test took {:?}", t0.elapsed());
}

/// The example agents written in TypeScript (ts-redis: Debian's
/// redis-server) and Go (go-haproxy: Debian's haproxy), referenced from
/// haresources by `.wasm` path after a VIP: node1 runs both; link down →
/// node2 starts both; link back → node2 stops its copies; graceful stops
/// leave no server behind.
#[test]
fn ts_and_go_agents_fail_over_by_wasm_path() {
    if !support::lab_available("ts_and_go_agents_fail_over_by_wasm_path") {
        return;
    }
    let (Some(ts), Some(go)) = (
        support::example_agent("ts-redis.wasm"),
        support::example_agent("go-haproxy.wasm"),
    ) else {
        return;
    };
    let t0 = Instant::now();
    let dir = TempDir::new("ts-go");
    let base = dir.0.clone();
    let common = base.join("srv").display().to_string();
    std::fs::create_dir_all(&common).unwrap();
    let mut reaper = Reaper(Vec::new());
    for (i, node) in NODES.iter().enumerate() {
        let srv = base.join(format!("srv{}", i + 1));
        std::fs::create_dir_all(srv.join("redis")).unwrap();
        std::fs::create_dir_all(srv.join("haproxy")).unwrap();
        // Persistence off, log on stdout; the agent supplies bind, port,
        // pid file and foreground mode on the command line.
        std::fs::write(
            srv.join("redis/redis.conf"),
            format!("dir {common}/redis\nsave \"\"\nappendonly no\nlogfile \"\"\n"),
        )
        .unwrap();
        std::fs::write(
            srv.join("haproxy/haproxy.cfg"),
            format!(
                "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
                 frontend fe\n    bind {VIP}:18082\n    monitor-uri /health\n    \
                 http-request return status 200 content-type text/plain string \"{node}\"\n"
            ),
        )
        .unwrap();
        reaper
            .0
            .extend(TS_AND_GO.pid_files.iter().map(|f| srv.join(f)));
    }
    let ts_token = format!(
        "{}::{VIP}:16379::{common}/redis/redis.conf::{common}/redis/redis.pid",
        ts.display()
    );
    let go_token = format!(
        "{}::{VIP}:18082::{common}/haproxy/haproxy.cfg::{common}/haproxy/haproxy.pid::/health",
        go.display()
    );
    let mut c = Classic::new(
        "ts-go",
        &base,
        &format!("node1 IPaddr::{VIP}/24/eth0 {ts_token} {go_token}\n"),
        // Both declare their command lines; the admin accepts them.
        "[agent.ts-redis]\naccept_declared = true\n[agent.go-haproxy]\naccept_declared = true\n",
    );
    // The first load compiles the TypeScript agent (12 MB: seconds).
    TS_AND_GO.fail_over_and_back(&mut c, Duration::from_secs(120));
    eprintln!(
        "TypeScript and Go agents failover test took {:?}",
        t0.elapsed()
    );
}

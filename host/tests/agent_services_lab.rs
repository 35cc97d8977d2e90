//! The named, httpd (Apache and nginx) and mysqld agents against the real
//! Debian servers in network namespaces: start answers a client in another
//! namespace, monitor, stop (process gone, port closed), idempotence, a
//! missing binary (not installed, exit 5) and a program outside the grant
//! (denied). Every server gets its own config, pid file, socket and data
//! under a temp dir, so nodes on one machine never collide.
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{block_on_in, Lab, Netns, TempDir};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::Policy;
use wasmbeat::runtime::bind::bind_resource;
use wasmbeat::runtime::{AgentError, Deadlines, Resource, Runtime, RuntimeConfig, Status};
use wasmbeat_lab::services;

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: None,
        // mariadb's first start initialises its datadir; CI machines are slow.
        deadlines: Deadlines {
            start: Duration::from_secs(120),
            stop: Duration::from_secs(60),
            ..Deadlines::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// A config dir with an optional agents.toml (no ha.cf needed to bind).
fn conf_dir(policy: &str) -> TempDir {
    let d = TempDir::new("svcconf");
    std::fs::write(d.0.join("agents.toml"), policy).unwrap();
    d
}

async fn bind(rt: &Runtime, token: &str, conf: &Path) -> Result<Resource, String> {
    let t = ResourceToken::parse(token).map_err(|e| e.to_string())?;
    let (policy, diags) = Policy::load(conf);
    assert!(diags.is_empty(), "{diags:?}");
    bind_resource(rt, &t, conf, &policy)
        .await
        .map_err(|e| e.to_string())
}

/// A directory the server's user can write (pid files, sockets, data).
fn owned_dir(tag: &str, user: &str) -> TempDir {
    let d = TempDir::new(tag);
    let out = Command::new("chown").arg(user).arg(&d.0).output().unwrap();
    assert!(out.status.success(), "chown {user}: {out:?}");
    d
}

/// Whether every thread of `pid` is in state T (stopped).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    })
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

/// Whether a TCP connect to `addr` from inside `ns` succeeds.
fn tcp_open(ns: &Netns, addr: &str) -> bool {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    ns.run_inside(move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    })
}

/// Kill whatever a pid file still names (test cleanup after failures).
struct Reaper(Vec<std::path::PathBuf>);

impl Drop for Reaper {
    fn drop(&mut self) {
        // SIGTERM first: servers take their worker processes down with them.
        let pids: Vec<u32> = self
            .0
            .iter()
            .filter_map(|f| pid_in(f))
            .filter(|p| alive(*p))
            .collect();
        for &pid in &pids {
            // SAFETY: plain syscall on the PID our server wrote.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        for &pid in &pids {
            if support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
                (!alive(pid)).then_some(())
            })
            .is_none()
            {
                // SAFETY: as above.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// Common checks after a successful start: running, idempotent start.
async fn assert_running(r: &Resource) {
    assert_eq!(r.monitor().await.unwrap(), Status::Running);
    let t0 = Instant::now();
    r.start()
        .await
        .expect("start on a started resource succeeds");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "second start restarted it"
    );
}

/// Common checks after stop: process gone, port closed, not running, idempotent stop.
async fn assert_stopped(r: &Resource, pid: u32) {
    assert!(!alive(pid), "pid {pid} still alive after stop");
    assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
    r.stop().await.expect("stop on a stopped resource succeeds");
}

fn cli(ns: &Netns, conf: &Path, token: &str, op: &str) -> (i32, String) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["agent", "--no-cache", "--config-dir"])
        .arg(conf)
        .args([token, op])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `wasmbeat agent test --in-place TOKEN` inside `ns` (where the server's
/// address is): the conformance sequence passes.
fn assert_conformant(ns: &Netns, conf: &Path, token: &str) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_wasmbeat"))
        .args(["agent", "--no-cache", "--in-place", "--config-dir"])
        .arg(conf)
        .args(["test", token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASSED: 11 steps"), "{stdout}");
}

#[test]
fn named_serves_dns_to_a_client_namespace() {
    if !support::lab_available("named_serves_dns_to_a_client_namespace") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new("bind", &["10.77.71.1/24", "10.77.71.2/24"]);
    let (node, client) = (&lab.nodes[0], &lab.nodes[1]);
    let d = owned_dir("named", "bind");
    let dir = d.0.display().to_string();
    std::fs::write(
        d.0.join("named.conf"),
        services::named_conf(&dir, "10.77.71.1"),
    )
    .unwrap();
    std::fs::write(
        d.0.join("db.test"),
        services::named_zone("10.77.71.1", "10.77.72.80"),
    )
    .unwrap();
    let pidf = d.0.join("named.pid");
    let _reaper = Reaper(vec![pidf.clone()]);
    let token = format!(
        "named::10.77.71.1:53::{dir}/named.conf::{dir}/named.pid::probe_name=www.wasmbeat.test"
    );
    let conf = conf_dir("");
    let rt = runtime();
    let dig = || {
        let out = client.exec(
            "dig",
            &[
                "+short",
                "+time=1",
                "+tries=1",
                "@10.77.71.1",
                "www.wasmbeat.test",
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let r = block_on_in(node, || async {
        let r = bind(&rt, &token, &conf.0).await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        let s0 = Instant::now();
        r.start().await.unwrap();
        eprintln!("named start took {:?}", s0.elapsed());
        r
    });
    assert_eq!(dig(), "10.77.72.80");
    let crashed = pid_in(&pidf).expect("named wrote its pid file");
    // A crash leaves a stale pid file: monitor sees it, start recovers.
    // SAFETY: plain syscall on the PID our named wrote.
    unsafe { libc::kill(crashed as i32, libc::SIGKILL) };
    support::wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
        (!alive(crashed)).then_some(())
    })
    .expect("named killed");
    assert_eq!(pid_in(&pidf), Some(crashed), "the pid file is stale now");
    block_on_in(node, || async {
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        r.start().await.unwrap();
    });
    assert_eq!(dig(), "10.77.72.80");
    let pid = pid_in(&pidf).expect("named wrote its pid file");
    assert_ne!(pid, crashed);
    // Alive but not answering (frozen): failed, not running or not-running.
    // SAFETY: plain syscalls on the PID our named wrote.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    // SIGSTOP reaches each of named's threads on its own: one still running
    // could answer the probe, so wait until all of them are stopped.
    support::wait_for(Duration::from_secs(5), Duration::from_millis(5), || {
        all_threads_stopped(pid).then_some(())
    })
    .expect("named stopped");
    let frozen = block_on_in(node, || async { r.monitor().await });
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert_eq!(frozen.unwrap(), Status::Failed);
    block_on_in(node, || async {
        assert_running(&r).await;
        let s0 = Instant::now();
        r.stop().await.unwrap();
        eprintln!("named stop took {:?}", s0.elapsed());
        assert_stopped(&r, pid).await;
    });
    let after = dig();
    assert!(
        !after.contains("10.77.72.80"),
        "named still answers after stop: {after}"
    );
    assert!(!tcp_open(client, "10.77.71.1:53"));
    assert_conformant(node, &conf.0, &token);

    // Wrong binary: not installed, exit 5, naming the path.
    let bad = format!("{token}::binary=/nonexistent/sbin/named");
    let (code, err) = cli(node, &conf.0, &bad, "start");
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("/nonexistent/sbin/named") && err.contains("bind9"),
        "{err}"
    );

    // A policy that replaces the grant without the command: denied, naming it.
    let policy = format!(
        "[resource.\"{token}\"]\nreplace = true\nprobe = [\"10.77.71.1:53\"]\npidfiles = [\"{dir}/named.pid\"]\npaths = [\"{dir}/named.conf\"]\n"
    );
    let strict = conf_dir(&policy);
    block_on_in(node, || async {
        let r = bind(&rt, &token, &strict.0).await.unwrap();
        let e = r.start().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::Denied(m) if m.contains("command \"server\"") && m.contains("commands.server = [")),
            "{e}"
        );
        assert_eq!(e.ocf_exit_code(), 4);
    });
    let (code, err) = cli(node, &strict.0, &token, "start");
    assert_eq!(code, 4, "{err}");
    assert!(!alive(pid_in(&pidf).unwrap_or(pid)));
    eprintln!("named test took {:?}", t0.elapsed());
}

fn apache_conf(dir: &str, listen: &str, page: &str) -> String {
    std::fs::create_dir_all(format!("{dir}/www")).unwrap();
    std::fs::write(format!("{dir}/www/index.html"), page).unwrap();
    services::apache_conf(dir, listen)
}

fn curl(ns: &Netns, url: &str) -> String {
    let out = ns.exec("curl", &["-s", "--max-time", "2", url]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn apache_on_two_nodes_serves_each_nodes_page() {
    if !support::lab_available("apache_on_two_nodes_serves_each_nodes_page") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new("web", &["10.77.73.1/24", "10.77.73.2/24", "10.77.73.3/24"]);
    let client = &lab.nodes[2];
    let conf = conf_dir("");
    let rt = runtime();
    // Two nodes on one machine, same port, own paths: no collision.
    let dirs: Vec<TempDir> = (0..2)
        .map(|i| owned_dir(&format!("apache{i}"), "www-data"))
        .collect();
    let _reaper = Reaper(dirs.iter().map(|d| d.0.join("apache.pid")).collect());
    let mut resources = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let dir = d.0.display().to_string();
        let ip = format!("10.77.73.{}", i + 1);
        std::fs::write(
            d.0.join("httpd.conf"),
            apache_conf(&dir, &format!("{ip}:80"), &format!("page of node{i}")),
        )
        .unwrap();
        let token = format!("httpd::{ip}:80::apache::{dir}/httpd.conf::{dir}/apache.pid");
        let r = block_on_in(&lab.nodes[i], || async {
            let r = bind(&rt, &token, &conf.0).await.unwrap();
            assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
            let s0 = Instant::now();
            r.start().await.unwrap();
            eprintln!("apache start on node{i} took {:?}", s0.elapsed());
            assert_running(&r).await;
            r
        });
        resources.push(r);
    }
    assert_eq!(curl(client, "http://10.77.73.1/"), "page of node0");
    assert_eq!(curl(client, "http://10.77.73.2/"), "page of node1");
    for (i, r) in resources.iter().enumerate() {
        let pid = pid_in(&dirs[i].0.join("apache.pid")).expect("apache wrote its pid file");
        block_on_in(&lab.nodes[i], || async {
            let s0 = Instant::now();
            r.stop().await.unwrap();
            eprintln!("apache stop on node{i} took {:?}", s0.elapsed());
            assert_stopped(r, pid).await;
        });
        assert!(!tcp_open(client, &format!("10.77.73.{}:80", i + 1)));
    }
    // The other node's server was untouched until its own stop.
    assert_eq!(curl(client, "http://10.77.73.2/"), "");
    let dir0 = dirs[0].0.display().to_string();
    assert_conformant(
        &lab.nodes[0],
        &conf.0,
        &format!("httpd::10.77.73.1:80::apache::{dir0}/httpd.conf::{dir0}/apache.pid"),
    );

    let bad = "httpd::10.77.73.1:80::binary=/nonexistent/apache2";
    let (code, err) = cli(&lab.nodes[0], &conf.0, bad, "start");
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("/nonexistent/apache2") && err.contains("apache2"),
        "{err}"
    );
    eprintln!("apache test took {:?}", t0.elapsed());
}

#[test]
fn nginx_is_selected_by_parameter() {
    if !support::lab_available("nginx_is_selected_by_parameter") {
        return;
    }
    let lab = Lab::new("ngx", &["10.77.74.1/24", "10.77.74.2/24"]);
    let (node, client) = (&lab.nodes[0], &lab.nodes[1]);
    let d = owned_dir("nginx", "www-data");
    let dir = d.0.display().to_string();
    std::fs::create_dir_all(d.0.join("www")).unwrap();
    std::fs::write(d.0.join("www/index.html"), "nginx here").unwrap();
    std::fs::write(
        d.0.join("nginx.conf"),
        format!(
            "pid {dir}/nginx.pid;\nerror_log {dir}/error.log;\nworker_processes 1;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; \
             fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;\n\
             server {{ listen 10.77.74.1:8080; root {dir}/www; }} }}\n"
        ),
    )
    .unwrap();
    let pidf = d.0.join("nginx.pid");
    let _reaper = Reaper(vec![pidf.clone()]);
    let token = format!("httpd::10.77.74.1:8080::nginx::{dir}/nginx.conf::{dir}/nginx.pid");
    let conf = conf_dir("");
    let rt = runtime();
    let r = block_on_in(node, || async {
        let r = bind(&rt, &token, &conf.0).await.unwrap();
        r.start().await.unwrap();
        assert_running(&r).await;
        r
    });
    assert_eq!(curl(client, "http://10.77.74.1:8080/"), "nginx here");
    let pid = pid_in(&pidf).unwrap();
    // The apache binary is not in an nginx resource's grant.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, Path::new("/usr/sbin/nginx"));
    block_on_in(node, || async {
        r.stop().await.unwrap();
        assert_stopped(&r, pid).await;
    });
    assert!(!tcp_open(client, "10.77.74.1:8080"));
    assert_conformant(node, &conf.0, &token);
}

#[test]
fn mysqld_initialises_its_datadir_and_serves_a_client_namespace() {
    if !support::lab_available("mysqld_initialises_its_datadir_and_serves_a_client_namespace") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new("sql", &["10.77.75.1/24", "10.77.75.2/24"]);
    let (node, client) = (&lab.nodes[0], &lab.nodes[1]);
    let d = owned_dir("mysqld", "mysql");
    let dir = d.0.display().to_string();
    std::fs::create_dir(d.0.join("data")).unwrap();
    assert!(Command::new("chown")
        .args(["mysql", &format!("{dir}/data")])
        .status()
        .unwrap()
        .success());
    // Small buffers: a test server, started twice in a few seconds.
    std::fs::write(
        d.0.join("my.cnf"),
        format!("[mysqld]\n{}", services::MARIADB_SMALL),
    )
    .unwrap();
    let pidf = d.0.join("mysqld.pid");
    let _reaper = Reaper(vec![pidf.clone()]);
    let token = format!(
        "mysqld::10.77.75.1:3306::{dir}/data::{dir}/my.cnf::{dir}/mysqld.pid::{dir}/mysqld.sock::start_timeout=90"
    );
    let conf = conf_dir("");
    let rt = runtime();
    let r = block_on_in(node, || async {
        let r = bind(&rt, &token, &conf.0).await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::NotRunning);
        let s0 = Instant::now();
        r.start().await.unwrap();
        eprintln!(
            "mysqld first start (with mariadb-install-db) took {:?}",
            s0.elapsed()
        );
        assert_running(&r).await;
        r
    });
    assert!(d.0.join("data/mysql").is_dir(), "datadir was initialised");
    // A user for the client namespace, created through this server's own socket.
    let out = Command::new("mariadb")
        .args([
            &format!("--socket={dir}/mysqld.sock"),
            "-e",
            "CREATE USER wb@'10.77.75.%' IDENTIFIED BY 'pw'",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = client.exec(
        "mariadb",
        &[
            "-h",
            "10.77.75.1",
            "-P",
            "3306",
            "-u",
            "wb",
            "-ppw",
            "-N",
            "-e",
            "SELECT 6*7",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = pid_in(&pidf).expect("mariadbd wrote its pid file");
    block_on_in(node, || async {
        let s0 = Instant::now();
        r.stop().await.unwrap();
        eprintln!("mysqld stop took {:?}", s0.elapsed());
        assert_stopped(&r, pid).await;
        // Second start: datadir already initialised, the user survived.
        let s0 = Instant::now();
        r.start().await.unwrap();
        eprintln!("mysqld second start took {:?}", s0.elapsed());
    });
    let out = client.exec(
        "mariadb",
        &[
            "-h",
            "10.77.75.1",
            "-u",
            "wb",
            "-ppw",
            "-N",
            "-e",
            "SELECT 1",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let pid = pid_in(&pidf).unwrap();
    block_on_in(node, || async {
        r.stop().await.unwrap();
        assert_stopped(&r, pid).await;
    });
    assert!(!tcp_open(client, "10.77.75.1:3306"));
    assert_conformant(node, &conf.0, &token);

    let bad = format!("{token}::binary=/nonexistent/mariadbd");
    let (code, err) = cli(node, &conf.0, &bad, "start");
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("/nonexistent/mariadbd") && err.contains("mariadb-server"),
        "{err}"
    );

    // The initialiser is a separate command: without it an empty datadir is denied.
    std::fs::create_dir(d.0.join("data2")).unwrap();
    let token2 = format!(
        "mysqld::10.77.75.1:3306::{dir}/data2::{dir}/my.cnf::{dir}/mysqld.pid::{dir}/mysqld.sock"
    );
    let policy = format!(
        "[resource.\"{token2}\"]\nreplace = true\nprobe = [\"10.77.75.1:3306\"]\n\
         pidfiles = [\"{dir}/mysqld.pid\"]\npaths = [\"{dir}/my.cnf\", \"{dir}/data2\"]\n"
    );
    let strict = conf_dir(&policy);
    block_on_in(node, || async {
        let r = bind(&rt, &token2, &strict.0).await.unwrap();
        let e = r.start().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::Denied(m) if m.contains("command \"install-db\"")),
            "{e}"
        );
    });
    eprintln!("mysqld test took {:?}", t0.elapsed());
}

//! Footprint with the classic four-resource group running: one node whose
//! haresources line is `node1 IPaddr::VIP named httpd mysqld`, serving a
//! client namespace with real BIND, Apache and MariaDB. Counted are the
//! daemon's own processes (those running its binary): the services and
//! resource scripts are the same work under either system.
//!
//! wasmbeat runs its built-in agents. heartbeat 3.0.6 runs IPaddr and three
//! resource scripts in its resource.d that start and stop the same servers
//! with the same configs, as a heartbeat admin would write them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use wasmbeat_lab::{services, wait_for, Lab};

use crate::interrupt::interrupted;
use crate::systems::{
    config_dir, cpu_percent, daemon_command, daemon_footprint, ha_cf, kill_tree, Kind, Snapshot,
};

const VIP: &str = "10.77.81.100";
const ADDRS: [&str; 2] = ["10.77.81.1/24", "10.77.81.10/24"];

/// The service directories of one run and their files.
struct Layout {
    work: PathBuf,
}

impl Layout {
    fn srv(&self, what: &str) -> String {
        self.work.join(what).display().to_string()
    }

    fn pid_files(&self) -> [PathBuf; 3] {
        [
            self.work.join("named/named.pid"),
            self.work.join("web/apache.pid"),
            self.work.join("sql/mysqld.pid"),
        ]
    }

    /// named, Apache and MariaDB configs, and an initialised datadir (so
    /// neither system's first start includes mariadb-install-db).
    fn write_services(&self) -> Result<()> {
        let (named, web, sql) = (self.srv("named"), self.srv("web"), self.srv("sql"));
        std::fs::create_dir_all(&named)?;
        std::fs::write(
            format!("{named}/named.conf"),
            services::named_conf(&named, VIP),
        )?;
        std::fs::write(format!("{named}/db.test"), services::named_zone(VIP, VIP))?;
        services::chown("bind", Path::new(&named))?;
        std::fs::create_dir_all(format!("{web}/www"))?;
        std::fs::write(format!("{web}/www/index.html"), "node1")?;
        std::fs::write(
            format!("{web}/httpd.conf"),
            services::apache_conf(&web, &format!("{VIP}:80")),
        )?;
        services::chown("www-data", Path::new(&web))?;
        std::fs::create_dir_all(format!("{sql}/data"))?;
        std::fs::write(
            format!("{sql}/my.cnf"),
            format!("[mysqld]\n{}tmpdir={sql}\n", services::MARIADB_SMALL),
        )?;
        services::chown("mysql", Path::new(&sql))?;
        wasmbeat_lab::run(
            std::process::Command::new("timeout")
                .args(["120", "mariadb-install-db"])
                .arg(format!("--defaults-file={sql}/my.cnf"))
                .arg(format!("--datadir={sql}/data"))
                .args([
                    "--user=mysql",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ]),
        )
        .context("initialising the MariaDB datadir")?;
        Ok(())
    }

    /// The haresources line: built-in agents for wasmbeat, resource.d
    /// scripts (written here) for heartbeat.
    fn haresources(&self, kind: Kind, etc: &Path) -> Result<String> {
        let (named, web, sql) = (self.srv("named"), self.srv("web"), self.srv("sql"));
        if kind == Kind::Wasmbeat {
            return Ok(format!(
                "node1 IPaddr::{VIP}/24/eth0 \
                 named::{VIP}:53::{named}/named.conf::{named}/named.pid::probe_name=www.{zone} \
                 httpd::{VIP}:80::apache::{web}/httpd.conf::{web}/apache.pid \
                 mysqld::{VIP}:3306::{sql}/data::{sql}/my.cnf::{sql}/mysqld.pid::{sql}/mysqld.sock::start_timeout=90\n",
                zone = services::ZONE
            ));
        }
        let scripts = [
            (
                "wbnamed",
                format!("{named}/named.pid"),
                format!("/usr/sbin/named -u bind -c {named}/named.conf"),
            ),
            (
                "wbhttpd",
                format!("{web}/apache.pid"),
                format!(
                    "APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data /usr/sbin/apache2 \
                     -f {web}/httpd.conf -c 'PidFile {web}/apache.pid' -k start"
                ),
            ),
            (
                "wbmysqld",
                format!("{sql}/mysqld.pid"),
                format!(
                    "/usr/sbin/mariadbd --defaults-file={sql}/my.cnf --datadir={sql}/data \
                     --pid-file={sql}/mysqld.pid --socket={sql}/mysqld.sock --bind-address={VIP} \
                     --port=3306 --user=mysql >/dev/null 2>&1 &\n    \
                     i=0; while [ $i -lt 600 ] && ! [ -S {sql}/mysqld.sock ]; do sleep 0.1; i=$((i+1)); done"
                ),
            ),
        ];
        for (name, pid, start) in &scripts {
            // heartbeat decides "running" by the words status prints.
            let script = format!(
                "#!/bin/sh\n\
                 running() {{ [ -s {pid} ] && kill -0 \"$(cat {pid})\" 2>/dev/null; }}\n\
                 case \"$1\" in\n\
                 start)\n    running && exit 0\n    {start}\n    ;;\n\
                 stop)\n    running && kill \"$(cat {pid})\"\n    \
                 i=0; while [ $i -lt 600 ] && running; do sleep 0.1; i=$((i+1)); done\n    \
                 running && exit 1\n    rm -f {pid}\n    ;;\n\
                 status)\n    if running; then echo running; else echo stopped; fi\n    ;;\n\
                 esac\nexit 0\n"
            );
            let path = etc.join("resource.d").join(name);
            std::fs::write(&path, script)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(format!(
            "node1 IPaddr::{VIP}/24/eth0 wbnamed wbhttpd wbmysqld\n"
        ))
    }
}

/// Whether all four resources serve the client namespace: the VIP answers
/// DNS over TCP, HTTP and MySQL connects.
fn all_serving(lab: &Lab) -> bool {
    let client = &lab.nodes[1];
    client
        .within(|| {
            let web = format!("{VIP}:80").parse().expect("static address");
            if wasmbeat_lab::http::get_body(web, Duration::from_millis(300)).as_deref()
                != Some("node1")
            {
                return false;
            }
            [53u16, 3306].iter().all(|port| {
                let addr = format!("{VIP}:{port}").parse().expect("static address");
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
            })
        })
        .unwrap_or(false)
}

/// Measure one system; the result is a JSON row for the report.
pub fn run(kind: Kind, bin: &Path, idle: Duration) -> Result<Value> {
    let label = match kind {
        Kind::Wasmbeat => "wasmbeat",
        Kind::Heartbeat => "heartbeat 3.0.6",
        Kind::Keepalived => bail!("keepalived runs no resource group"),
    };
    let work = std::env::temp_dir().join(format!("wbf-{}-{kind:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let layout = Layout { work: work.clone() };
    // Kills the daemon tree and any server left, then removes the files,
    // on every path out of here.
    let mut guard = Teardown {
        lab: Some(Lab::new("bq", &ADDRS)?),
        root: None,
        pid_files: layout.pid_files().to_vec(),
        work: work.clone(),
    };
    layout.write_services()?;
    let dir = work.join("node1");
    std::fs::create_dir_all(&dir)?;
    let log = work.join("node1.log");
    let etc = config_dir(kind, &dir)?;
    let (keepalive, deadtime) = (Duration::from_secs(1), Duration::from_secs(5));
    std::fs::write(etc.join("ha.cf"), ha_cf(kind, keepalive, deadtime, &log))?;
    std::fs::write(etc.join("haresources"), layout.haresources(kind, &etc)?)?;

    let lab = guard.lab.as_ref().expect("set above");
    let t0 = Instant::now();
    let root = lab.nodes[0].spawn(&daemon_command(kind, bin, &work, &dir, "node1", &log))?;
    guard.root = Some(root);
    let serving = wait_for(Duration::from_secs(180), Duration::from_millis(50), || {
        all_serving(lab).then(Instant::now)
    });
    let Some(at) = serving else {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        bail!(
            "{label}: the four resources never all served within 180 s; log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    };
    let start_ms = at.duration_since(t0).as_secs_f64() * 1e3;
    // Let start-up work (agent compiles, first monitors) settle first.
    std::thread::sleep(Duration::from_secs(5));
    let before = daemon_footprint(kind, bin, root);
    let w0 = Instant::now();
    while w0.elapsed() < idle {
        interrupted()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let after: Snapshot = daemon_footprint(kind, bin, root);
    let wall = w0.elapsed().as_secs_f64();
    if !all_serving(lab) {
        bail!("{label}: a resource stopped serving during the idle window");
    }
    let (cpu, method) = cpu_percent(&before, &after, wall);
    println!(
        "  {label} with four resources: all serving {start_ms:.0} ms after start; idle {wall:.0} s: \
         {} procs {} KiB {cpu:.3}% CPU ({method:?})",
        after.processes, after.rss_kib
    );
    Ok(json!({
        "label": format!("{label} classic, IPaddr + named + httpd + mysqld"),
        "system": format!("{kind:?}"),
        "start_to_all_serving_ms": start_ms,
        "processes": after.processes,
        "rss_kib": after.rss_kib,
        "cpu_percent": cpu,
        "cpu_method": method.label(),
        "idle_s": wall,
    }))
}

/// Cleanup for [`run`]: the daemon's tree by its recorded PID, servers by
/// their pid files (only if they still run one of the service binaries),
/// then the lab and the files.
struct Teardown {
    lab: Option<Lab>,
    root: Option<u32>,
    pid_files: Vec<PathBuf>,
    work: PathBuf,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let (Some(lab), Some(root)) = (&self.lab, self.root) {
            kill_tree(&lab.nodes[0], root);
        }
        for f in &self.pid_files {
            let Some(pid) = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let ours = ["named", "apache2", "mariadbd"]
                .iter()
                .any(|b| exe.file_name().is_some_and(|n| n == *b));
            if ours {
                // SAFETY: signalling a server this run started (its pid file
                // is in our scratch directory and it runs that binary).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        self.lab = None;
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

//! Debian's `ocf-tester` (resource-agents) against wasmbeat agents served
//! as `ocf:wasmbeat:NAME` through the provider scripts `wasmbeat ocf
//! install` writes into a temp root: IPaddr, httpd (Apache), named,
//! mysqld and the Python and C examples, each in a network namespace the
//! test creates, with private addresses and the server's files under a
//! temp dir. ocf-tester runs the OCF sequence (meta-data validated against
//! ra-api-1.dtd, also as `nobody`; validate-all; probe; start; monitor;
//! start again; stop; stop again; unsupported actions exit 3).
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::{Netns, TempDir};
use wasmbeat_lab::services;

const OCF_TESTER: &str = "/usr/sbin/ocf-tester";

/// A provider directory in a temp root and the configuration directory
/// its scripts use.
struct Provider {
    root: TempDir,
    /// Kept until the provider is dropped: the scripts read it.
    conf: TempDir,
}

impl Provider {
    /// `wasmbeat ocf install --root ROOT --config-dir CONF`, after
    /// `agents_toml` and the `.wasm` files in `agents` are put in CONF.
    fn new(agents_toml: &str, agents: &[(&str, &Path)]) -> Provider {
        let root = TempDir::new("ocfroot");
        let conf = TempDir::new("ocfconf");
        std::fs::write(conf.0.join("agents.toml"), agents_toml).unwrap();
        std::fs::create_dir(conf.0.join("resource.d")).unwrap();
        for (name, wasm) in agents {
            std::fs::copy(wasm, conf.0.join("resource.d").join(format!("{name}.wasm"))).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_wasmbeat"))
            .args(["ocf", "install", "--root"])
            .arg(&root.0)
            .arg("--config-dir")
            .arg(&conf.0)
            .arg("--cache-dir")
            .arg(support::shared_agent_cache())
            .arg("--server-log-dir")
            .arg(conf.0.join("server-logs"))
            .output()
            .unwrap();
        assert!(out.status.success(), "ocf install: {out:?}");
        Provider { root, conf }
    }

    /// The servers' log files (`--server-log-dir`) and their sizes.
    fn server_logs(&self) -> Vec<(String, u64)> {
        let Ok(dir) = std::fs::read_dir(self.conf.0.join("server-logs")) else {
            return Vec::new();
        };
        let mut logs: Vec<(String, u64)> = dir
            .flatten()
            .map(|e| {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                (e.file_name().to_string_lossy().into_owned(), size)
            })
            .collect();
        logs.sort();
        logs
    }

    fn agent(&self, name: &str) -> PathBuf {
        self.root
            .0
            .join(wasmbeat::ocf::install::PROVIDER_DIR)
            .join(name)
    }

    /// Run ocf-tester on `agent` inside `ns` with `params`; its output.
    /// Panics (with the output) unless it passes.
    fn ocf_tester(&self, ns: &Netns, agent: &str, params: &[String]) -> String {
        let mut cmd = ns.command(OCF_TESTER);
        cmd.env("OCF_ROOT", self.root.0.join("usr/lib/ocf"))
            .args(["-n", &format!("test-{agent}")]);
        for p in params {
            cmd.args(["-o", p]);
        }
        cmd.arg(self.agent(agent));
        let t0 = Instant::now();
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("ocf-tester {agent} ({:?}):\n{text}", t0.elapsed());
        assert!(
            out.status.success() && text.contains("passed all tests"),
            "ocf-tester failed for {agent}:\n{text}"
        );
        text
    }
}

/// Whether the lab can run and ocf-tester is installed.
fn ready(test: &str) -> bool {
    if !support::lab_available(test) {
        return false;
    }
    if !Path::new(OCF_TESTER).is_file() {
        let msg = format!("{test}: {OCF_TESTER} not installed (Debian package resource-agents)");
        if std::env::var_os("WASMBEAT_REQUIRE_LAB").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIP {msg}");
        return false;
    }
    true
}

/// A namespace with `eth0` (one end of a veth pair) holding `cidr`.
fn node(tag: &str, cidr: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    ns.ip(&["link", "set", "eth0p", "up"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", cidr, "brd", "+", "dev", "eth0"]);
    ns
}

/// A directory the server's user can write.
fn owned_dir(tag: &str, user: &str) -> TempDir {
    let d = TempDir::new(tag);
    services::chown(user, &d.0).unwrap();
    d
}

fn pid_alive(pidfile: &Path) -> bool {
    std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        // SAFETY: signal 0 only checks that the process exists.
        .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
}

#[test]
fn ocf_tester_passes_ipaddr_and_unknown_parameters_are_configuration_errors() {
    if !ready("ocf_tester_passes_ipaddr_and_unknown_parameters_are_configuration_errors") {
        return;
    }
    let ns = node("ocfip", "10.77.92.1/24");
    let p = Provider::new("", &[]);
    p.ocf_tester(&ns, "IPaddr", &["ip=10.77.92.10".into(), "nic=eth0".into()]);
    assert!(!ns.addrs("eth0").contains("10.77.92.10"), "VIP left behind");
    // Without nic: the host finds the interface as heartbeat's findif.
    p.ocf_tester(&ns, "IPaddr2", &["ip=10.77.92.11".into()]);

    // A typo in the CIB: OCF_ERR_CONFIGURED, naming the declared ones.
    let out = ns
        .command(p.agent("IPaddr").to_str().unwrap())
        .arg("start")
        .env("OCF_RESKEY_ip", "10.77.92.12")
        .env("OCF_RESKEY_netmask", "24")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("\"netmask\"") && err.contains("cidr_netmask"),
        "{err}"
    );
    assert!(!ns.addrs("eth0").contains("10.77.92.12"));
    // Optional actions are "not offered" (3), as Pacemaker expects.
    let out = ns
        .command(p.agent("IPaddr").to_str().unwrap())
        .arg("promote")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn ocf_tester_passes_httpd_named_and_mysqld() {
    if !ready("ocf_tester_passes_httpd_named_and_mysqld") {
        return;
    }
    let t0 = Instant::now();
    let ns = node("ocfsvc", "10.77.93.1/24");
    let p = Provider::new("", &[]);

    let web = owned_dir("ocfweb", "www-data");
    let dir = web.0.display().to_string();
    std::fs::create_dir_all(web.0.join("www")).unwrap();
    std::fs::write(web.0.join("www/index.html"), "ocf web").unwrap();
    std::fs::write(
        web.0.join("httpd.conf"),
        services::apache_conf(&dir, "10.77.93.1:80"),
    )
    .unwrap();
    p.ocf_tester(
        &ns,
        "httpd",
        &[
            "listen=10.77.93.1:80".into(),
            "server=apache".into(),
            format!("config={dir}/httpd.conf"),
            format!("pid_file={dir}/apache.pid"),
        ],
    );
    assert!(!pid_alive(&web.0.join("apache.pid")), "apache left running");

    let dns = owned_dir("ocfdns", "bind");
    let dir = dns.0.display().to_string();
    std::fs::write(
        dns.0.join("named.conf"),
        services::named_conf(&dir, "10.77.93.1"),
    )
    .unwrap();
    std::fs::write(
        dns.0.join("db.test"),
        services::named_zone("10.77.93.1", "10.77.93.80"),
    )
    .unwrap();
    p.ocf_tester(
        &ns,
        "named",
        &[
            "listen=10.77.93.1:53".into(),
            format!("config={dir}/named.conf"),
            format!("pid_file={dir}/named.pid"),
            "probe_name=www.wasmbeat.test".into(),
        ],
    );
    assert!(!pid_alive(&dns.0.join("named.pid")), "named left running");

    let sql = owned_dir("ocfsql", "mysql");
    let dir = sql.0.display().to_string();
    std::fs::create_dir(sql.0.join("data")).unwrap();
    services::chown("mysql", &sql.0.join("data")).unwrap();
    std::fs::write(
        sql.0.join("my.cnf"),
        format!("[mysqld]\n{}", services::MARIADB_SMALL),
    )
    .unwrap();
    p.ocf_tester(
        &ns,
        "mysqld",
        &[
            "listen=10.77.93.1:3306".into(),
            format!("datadir={dir}/data"),
            format!("config={dir}/my.cnf"),
            format!("pid_file={dir}/mysqld.pid"),
            format!("socket={dir}/mysqld.sock"),
            // The first start initialises the datadir: give it the time
            // the daemon's lab gives it (ocf-tester's 20 s default would
            // cut it off on a loaded 2-core machine).
            "start_timeout=90".into(),
            "CRM_meta_timeout=120000".into(),
        ],
    );
    assert!(!pid_alive(&sql.0.join("mysqld.pid")), "mysqld left running");
    // The servers outlived the `wasmbeat ocf … start` that spawned them:
    // what they wrote afterwards went to their log files, not to a pipe
    // whose reader had exited.
    let logs = p.server_logs();
    eprintln!("server logs: {logs:?}");
    assert!(
        logs.iter().any(|(_, size)| *size > 0),
        "no server wrote its log file: {logs:?}"
    );
    eprintln!("three services took {:?}", t0.elapsed());
}

#[test]
fn ocf_tester_passes_the_python_and_c_examples() {
    if !ready("ocf_tester_passes_the_python_and_c_examples") {
        return;
    }
    let (Some(py), Some(cn)) = (
        support::example_agent("python-tcpservice.wasm"),
        support::example_agent("c-nginx.wasm"),
    ) else {
        return;
    };
    let ns = node("ocfex", "10.77.94.1/24");
    let srv = TempDir::new("ocfexsrv");
    // nginx workers (nobody) must read the document root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&srv.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = srv.0.display().to_string();
    let server = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agents/examples/python-tcpservice/lab_server.py")
        .canonicalize()
        .unwrap();
    // The same grants the daemon would use: one agents.toml.
    let policy = format!(
        "[agent.tcpservice]\naccept_declared = true\n\
         commands.server = [\"/usr/bin/python3\", \"{}\", \"10.77.94.1\", \"18080\", \"{dir}/ts.pid\"]\n\
         [agent.nginx-c]\naccept_declared = true\n",
        server.display()
    );
    let p = Provider::new(&policy, &[("tcpservice", &py), ("nginx-c", &cn)]);
    let py_meta = p.meta_data_params("tcpservice");
    let params: Vec<String> = [("10.77.94.1:18080", 0), (&format!("{dir}/ts.pid"), 1)]
        .iter()
        .map(|(v, i)| format!("{}={v}", py_meta[*i]))
        .collect();
    p.ocf_tester(&ns, "tcpservice", &params);
    assert!(!pid_alive(&srv.0.join("ts.pid")), "tcpservice left running");

    std::fs::create_dir(srv.0.join("www")).unwrap();
    std::fs::write(srv.0.join("www/index.html"), "nginx-c here").unwrap();
    std::fs::write(
        srv.0.join("nginx.conf"),
        format!(
            "worker_processes 1;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; \
             fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;\n\
             server {{ listen 10.77.94.1:18081; root {dir}/www; }} }}\n"
        ),
    )
    .unwrap();
    let c_meta = p.meta_data_params("nginx-c");
    let values = [
        format!("{dir}/nginx.conf"),
        format!("{dir}/nginx.pid"),
        "10.77.94.1:18081".to_string(),
    ];
    let params: Vec<String> = values
        .iter()
        .zip(&c_meta)
        .map(|(v, n)| format!("{n}={v}"))
        .collect();
    p.ocf_tester(&ns, "nginx-c", &params);
    assert!(!pid_alive(&srv.0.join("nginx.pid")), "nginx left running");
}

impl Provider {
    /// The parameter names an agent's OCF meta-data declares, in order
    /// (the examples' positional order in haresources).
    fn meta_data_params(&self, agent: &str) -> Vec<String> {
        let out = Command::new(self.agent(agent))
            .arg("meta-data")
            .output()
            .unwrap();
        assert!(out.status.success(), "{agent} meta-data: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<parameter name=\""))
            .filter_map(|l| l.split('"').next())
            .map(str::to_string)
            .collect()
    }
}

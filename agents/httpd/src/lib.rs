//! The `httpd` agent: Apache httpd as Debian's `apache2` package installs
//! it, or nginx (`server=nginx`, Debian `nginx-light`/`nginx`).
//!
//! Apache runs as `apache2 -DFOREGROUND -f CONFIG` with Debian's
//! environment variables (`APACHE_RUN_USER`, `APACHE_PID_FILE`, ...)
//! supplied as `Define`s, since agents' programs get no environment, and
//! `PidFile` forced to `pid_file`; its clean stop is SIGTERM. nginx runs as
//! `nginx -c CONFIG -g "daemon off;"` (its configuration's `pid` must be
//! `pid_file`); its clean stop is SIGQUIT (graceful). Healthy means an
//! HTTP response, any status, to `GET status_path` at `listen`.

use std::time::Duration;

use wasmbeat_sdk::process::sig;
use wasmbeat_sdk::service::{self, Server};
use wasmbeat_sdk::{export_agent, probe, Agent, Args, Error, Meta, Param, Status};

struct Httpd;

struct Conf {
    server: Server,
    config: String,
    status_path: String,
}

fn conf(args: &Args) -> Result<Conf, Error> {
    let kind: String = args.get_or("server", "apache".to_string())?;
    let nginx = match kind.as_str() {
        "apache" | "apache2" | "httpd" => false,
        "nginx" => true,
        other => {
            return Err(Error::InvalidArgs(format!(
                "parameter server={other:?}: use apache or nginx"
            )))
        }
    };
    let (d_conf, d_pid, d_bin, package) = if nginx {
        (
            "/etc/nginx/nginx.conf",
            "/run/nginx.pid",
            "/usr/sbin/nginx",
            "nginx-light",
        )
    } else {
        (
            "/etc/apache2/apache2.conf",
            "/run/apache2/apache2.pid",
            "/usr/sbin/apache2",
            "apache2",
        )
    };
    let config = service::abs_path(args, "config", d_conf)?;
    let pid_file = service::abs_path(args, "pid_file", d_pid)?;
    let user: String = args.get_or("user", "www-data".to_string())?;
    if user.is_empty()
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::InvalidArgs(format!(
            "parameter user={user:?} is not a user name"
        )));
    }
    let status_path: String = args.get_or("status_path", "/".to_string())?;
    if !status_path.starts_with('/') {
        return Err(Error::InvalidArgs(format!(
            "parameter status_path={status_path:?} must start with '/'"
        )));
    }
    let run_dir = pid_file
        .rsplit_once('/')
        .map(|(d, _)| if d.is_empty() { "/" } else { d })
        .unwrap_or("/")
        .to_string();
    let server_args: Vec<String> = if nginx {
        vec![
            "-c".into(),
            config.clone(),
            "-g".into(),
            "daemon off;".into(),
        ]
    } else {
        let define = |k: &str, v: &str| ["-C".to_string(), format!("Define {k} {v}")];
        let mut a = Vec::new();
        a.extend(define("APACHE_RUN_USER", &user));
        a.extend(define("APACHE_RUN_GROUP", &user));
        a.extend(define("APACHE_PID_FILE", &pid_file));
        a.extend(define("APACHE_RUN_DIR", &run_dir));
        a.extend(define("APACHE_LOCK_DIR", "/var/lock/apache2"));
        a.extend(define("APACHE_LOG_DIR", "/var/log/apache2"));
        a.extend([
            "-f".to_string(),
            config.clone(),
            "-c".to_string(),
            format!("PidFile {pid_file}"),
            "-DFOREGROUND".to_string(),
        ]);
        a
    };
    let server = Server {
        name: if nginx { "nginx" } else { "apache2" }.into(),
        binary: service::abs_path(args, "binary", d_bin)?,
        args: server_args,
        pid_file,
        listen: service::socket_addr(args, "listen", "127.0.0.1:80")?,
        stop_signal: if nginx { sig::QUIT } else { sig::TERM },
        start_timeout: service::seconds(args, "start_timeout", 15)?,
        stop_timeout: service::seconds(args, "stop_timeout", 15)?,
        package: package.into(),
    };
    Ok(Conf {
        server,
        config,
        status_path,
    })
}

fn http_probe(c: &Conf) -> service::ProbeResult {
    let host = c.server.listen.ip().to_string();
    match probe::http_get(
        c.server.listen,
        &host,
        &c.status_path,
        Duration::from_secs(2),
    ) {
        // 5xx: the server is up but cannot serve; not healthy.
        Ok(code) if code >= 500 => Err(format!("GET {} answered {code}", c.status_path)),
        Ok(code) => Ok(format!("GET {} answered {code}", c.status_path)),
        Err(e) => Err(format!("GET {}: {e:?}", c.status_path)),
    }
}

impl Agent for Httpd {
    fn meta_data() -> Meta {
        Meta::new(
            "httpd",
            env!("CARGO_PKG_VERSION"),
            "Web server: Apache httpd (Debian apache2, default) or nginx (server=nginx), run in \
             the foreground; healthy when GET status_path at listen gets an HTTP response below 500.",
        )
        .param(Param::string("listen", "ip:port the server listens on (probed; must match the configuration)").default("127.0.0.1:80"))
        .param(Param::string("server", "apache or nginx").default("apache"))
        .param(Param::string("config", "configuration file").default("/etc/apache2/apache2.conf (nginx: /etc/nginx/nginx.conf)"))
        .param(Param::string("pid_file", "pid file (apache: forced with PidFile; nginx: must match its pid directive)").default("/run/apache2/apache2.pid (nginx: /run/nginx.pid)"))
        .param(Param::string("binary", "server binary").default("/usr/sbin/apache2 (nginx: /usr/sbin/nginx)"))
        .param(Param::string("user", "apache: APACHE_RUN_USER/GROUP").default("www-data"))
        .param(Param::string("status_path", "path requested to check health").default("/"))
        .param(Param::integer("start_timeout", "seconds until the server must answer").default("15"))
        .param(Param::integer("stop_timeout", "seconds of clean shutdown before SIGKILL").default("15"))
    }

    fn validate(args: &Args) -> Result<(), Error> {
        conf(args).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let c = conf(args)?;
        if c.server.running_pid()?.is_none() {
            service::require_file("web server configuration", &c.config)?;
        }
        c.server.start(&|| http_probe(&c))
    }

    fn stop(args: &Args) -> Result<(), Error> {
        conf(args)?.server.stop()
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        let c = conf(args)?;
        c.server.monitor(&|| http_probe(&c))
    }
}

export_agent!(Httpd);

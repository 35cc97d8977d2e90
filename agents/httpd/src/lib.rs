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
use wasmbeat_sdk::{export_agent, probe, Agent, Args, Command, Error, Meta, Needs, Param, Status};

struct Httpd;

struct Conf {
    server: Server,
    config: String,
    status_path: String,
}

/// The `server` values that mean Apache.
const APACHE: [&str; 3] = ["apache", "apache2", "httpd"];

/// Per-server defaults: configuration, pid file, binary, Debian package.
struct Flavour {
    config: &'static str,
    pid_file: &'static str,
    binary: &'static str,
    package: &'static str,
}

const APACHE_DEFAULTS: Flavour = Flavour {
    config: "/etc/apache2/apache2.conf",
    pid_file: "/run/apache2/apache2.pid",
    binary: "/usr/sbin/apache2",
    package: "apache2",
};

const NGINX_DEFAULTS: Flavour = Flavour {
    config: "/etc/nginx/nginx.conf",
    pid_file: "/run/nginx.pid",
    binary: "/usr/sbin/nginx",
    package: "nginx-light",
};

/// What the host grants by default: the server's command line (Debian's
/// environment variables as `Define`s, since commands get no environment,
/// and `PidFile` forced to `pid_file`), its pid file, its configuration
/// and its listen address. Apache keeps the capabilities to bind port 80,
/// drop to `user` and manage its workers; nginx the same.
fn needs(values: &[&str], f: &Flavour, argv: &[String]) -> Needs {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Needs::new()
        .when("server", values)
        .command(
            Command::new("server", "the web server in the foreground", &argv).capabilities(&[
                "net-bind-service",
                "setuid",
                "setgid",
                "kill",
                "chown",
                "dac-override",
            ]),
        )
        .pidfile(&format!("{{pid_file|{}}}", f.pid_file))
        .path(&format!("{{config|{}}}", f.config))
        .probe("{listen}")
}

fn apache_argv() -> Vec<String> {
    let f = APACHE_DEFAULTS;
    let pid = format!("{{pid_file|{}}}", f.pid_file);
    let define = |k: &str, v: &str| ["-C".to_string(), format!("Define {k} {v}")];
    let mut a = vec![format!("{{binary|{}}}", f.binary)];
    a.extend(define("APACHE_RUN_USER", "{user}"));
    a.extend(define("APACHE_RUN_GROUP", "{user}"));
    a.extend(define("APACHE_PID_FILE", &pid));
    a.extend(define(
        "APACHE_RUN_DIR",
        &format!("{{pid_file:dir|{}}}", f.pid_file),
    ));
    a.extend(define("APACHE_LOCK_DIR", "/var/lock/apache2"));
    a.extend(define("APACHE_LOG_DIR", "/var/log/apache2"));
    a.extend([
        "-f".to_string(),
        format!("{{config|{}}}", f.config),
        "-c".to_string(),
        format!("PidFile {pid}"),
        "-DFOREGROUND".to_string(),
    ]);
    a
}

fn nginx_argv() -> Vec<String> {
    let f = NGINX_DEFAULTS;
    vec![
        format!("{{binary|{}}}", f.binary),
        "-c".into(),
        format!("{{config|{}}}", f.config),
        "-g".into(),
        "daemon off;".into(),
    ]
}

fn conf(args: &Args) -> Result<Conf, Error> {
    let kind: String = args.get_or("server", "apache".to_string())?;
    let nginx = match kind.as_str() {
        k if APACHE.contains(&k) => false,
        "nginx" => true,
        other => {
            return Err(Error::InvalidArgs(format!(
                "parameter server={other:?}: use apache or nginx"
            )))
        }
    };
    let f = if nginx {
        NGINX_DEFAULTS
    } else {
        APACHE_DEFAULTS
    };
    let status_path: String = args.get_or("status_path", "/".to_string())?;
    if !status_path.starts_with('/') {
        return Err(Error::InvalidArgs(format!(
            "parameter status_path={status_path:?} must start with '/'"
        )));
    }
    let server = Server {
        name: if nginx { "nginx" } else { "apache2" }.into(),
        command: "server".into(),
        pid_file: service::abs_path(args, "pid_file", f.pid_file)?,
        listen: service::socket_addr(args, "listen", "127.0.0.1:80")?,
        stop_signal: if nginx { sig::QUIT } else { sig::TERM },
        start_timeout: service::seconds(args, "start_timeout", 15)?,
        stop_timeout: service::seconds(args, "stop_timeout", 15)?,
        package: f.package.into(),
    };
    Ok(Conf {
        server,
        config: service::abs_path(args, "config", f.config)?,
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
        .param(Param::endpoint("listen", "ip:port the server listens on (probed; must match the configuration)").default("127.0.0.1:80"))
        .param(Param::name("server", "apache or nginx").default("apache"))
        .param(Param::path("config", "configuration file (default /etc/apache2/apache2.conf; nginx: /etc/nginx/nginx.conf)"))
        .param(Param::path("pid_file", "pid file (apache: forced with PidFile; nginx: must match its pid directive; default /run/apache2/apache2.pid, nginx: /run/nginx.pid)"))
        .param(Param::path("binary", "server binary (default /usr/sbin/apache2; nginx: /usr/sbin/nginx)"))
        .param(Param::name("user", "apache: APACHE_RUN_USER/GROUP").default("www-data"))
        .param(Param::string("status_path", "path requested to check health").default("/"))
        .param(Param::integer("start_timeout", "seconds until the server must answer").default("15"))
        .param(Param::integer("stop_timeout", "seconds of clean shutdown before SIGKILL").default("15"))
        .needs(needs(&APACHE, &APACHE_DEFAULTS, &apache_argv()))
        .needs(needs(&["nginx"], &NGINX_DEFAULTS, &nginx_argv()))
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

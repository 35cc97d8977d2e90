//! The `mysqld` agent: the MariaDB server as Debian's `mariadb-server`
//! package installs it (MySQL's `mysqld` works with `binary=`).
//!
//! `start` initialises an empty `datadir` with `mariadb-install-db` (root
//! authenticates through the unix socket, no test database), then runs
//! `mariadbd --defaults-file=CONFIG` with this resource's datadir, pid
//! file, socket, address and port on the command line (so two resources on
//! one machine never share them), and returns once the server sends its
//! protocol greeting at `listen` and the pid file names it. `stop` sends
//! SIGTERM (the server's normal shutdown: it flushes and closes InnoDB) and
//! escalates to SIGKILL after `stop_timeout`. `monitor` reads the greeting;
//! a server that refuses this host (error 1130) is up.

use std::time::{Duration, Instant};

use wasmbeat_sdk::files::{self, PathKind};
use wasmbeat_sdk::probe::{self, MysqlGreeting};
use wasmbeat_sdk::process::{self, sig};
use wasmbeat_sdk::service::{self, Server};
use wasmbeat_sdk::{export_agent, log, Agent, Args, Command, Error, Meta, Needs, Param, Status};

struct Mysqld;

struct Conf {
    server: Server,
    config: String,
    datadir: String,
    user: String,
}

const DATADIR: &str = "/var/lib/mysql";
const CONFIG: &str = "/etc/mysql/my.cnf";
const PID_FILE: &str = "/run/mysqld/mysqld.pid";

fn conf(args: &Args) -> Result<Conf, Error> {
    let server = Server {
        name: "mariadbd".into(),
        command: "server".into(),
        pid_file: service::abs_path(args, "pid_file", PID_FILE)?,
        listen: service::socket_addr(args, "listen", "127.0.0.1:3306")?,
        stop_signal: sig::TERM,
        start_timeout: service::seconds(args, "start_timeout", 18)?,
        stop_timeout: service::seconds(args, "stop_timeout", 15)?,
        package: "mariadb-server".into(),
    };
    Ok(Conf {
        server,
        config: service::abs_path(args, "config", CONFIG)?,
        datadir: service::abs_path(args, "datadir", DATADIR)?,
        user: args.get_or("user", "mysql".to_string())?,
    })
}

/// The server and the datadir initialiser, with the resource's paths.
/// mariadbd binds its port and switches to USER itself; the initialiser
/// (a shell script run by path, its arguments fixed) creates the system
/// tables as USER.
fn needs() -> Needs {
    let caps = [
        "net-bind-service",
        "setuid",
        "setgid",
        "chown",
        "dac-override",
        "fowner",
        "kill",
        "sys-resource",
    ];
    Needs::new()
        .command(
            Command::new(
                "server",
                "mariadbd in the foreground with this resource's paths",
                &[
                    "{binary}",
                    "--defaults-file={config}",
                    "--datadir={datadir}",
                    "--pid-file={pid_file}",
                    "--socket={socket}",
                    "--bind-address={listen:host}",
                    "--port={listen:port}",
                    "--user={user}",
                ],
            )
            .capabilities(&caps),
        )
        .command(
            Command::new(
                "install-db",
                "initialise an empty datadir",
                &[
                    "{install_db}",
                    "--defaults-file={config}",
                    "--datadir={datadir}",
                    "--user={user}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ],
            )
            .capabilities(&caps),
        )
        .pidfile("{pid_file}")
        .path("{config}")
        .path("{datadir}")
        .probe("{listen}")
}

fn greeting_probe(s: &Server) -> service::ProbeResult {
    match probe::mysql_handshake(s.listen, Duration::from_secs(2)) {
        Ok(MysqlGreeting::Handshake(v)) => Ok(format!("server version {v}")),
        Ok(MysqlGreeting::Refused((code, msg))) => {
            Ok(format!("up, refuses this host ({code}: {msg})"))
        }
        Err(e) => Err(format!("MySQL greeting: {e:?}")),
    }
}

/// Create the system tables in an empty datadir (part of the first start).
fn initialise(c: &Conf, budget: Duration) -> Result<(), Error> {
    log::info(&format!("{} is empty: initialising it", c.datadir));
    let out = process::run("install-db", budget).map_err(|e| match e {
        Error::NotInstalled(m) => Error::NotInstalled(format!(
            "the datadir initialiser is not installed ({m}); install mariadb-server or set install_db="
        )),
        Error::Timeout => Error::Failed(format!(
            "initialising {} took longer than {budget:?}; raise start_timeout",
            c.datadir
        )),
        other => other,
    })?;
    if out.exit_code != Some(0) {
        return Err(Error::Failed(format!(
            "initialising {} failed ({}): {}",
            c.datadir,
            out.how(),
            out.last_line()
        )));
    }
    Ok(())
}

impl Agent for Mysqld {
    fn meta_data() -> Meta {
        Meta::new(
            "mysqld",
            env!("CARGO_PKG_VERSION"),
            "MariaDB/MySQL server (Debian mariadb-server) with its own datadir, pid file, socket and \
             address; an empty datadir is initialised on start; healthy when the server greets at listen.",
        )
        .param(Param::endpoint("listen", "ip:port (--bind-address, --port; probed)").default("127.0.0.1:3306"))
        .param(Param::path("datadir", "data directory (initialised when empty)").default(DATADIR))
        .param(Param::path("config", "option file (--defaults-file)").default(CONFIG))
        .param(Param::path("pid_file", "pid file (--pid-file)").default(PID_FILE))
        .param(Param::path("socket", "unix socket (--socket)").default("/run/mysqld/mysqld.sock"))
        .param(Param::name("user", "user the server runs as (--user)").default("mysql"))
        .param(Param::path("binary", "server binary").default("/usr/sbin/mariadbd"))
        .param(Param::path("install_db", "datadir initialiser").default("/usr/bin/mariadb-install-db"))
        .param(Param::integer("start_timeout", "seconds for start, datadir initialisation included").default("18"))
        .param(Param::integer("stop_timeout", "seconds of clean shutdown before SIGKILL").default("15"))
        .needs(needs())
    }

    fn validate(args: &Args) -> Result<(), Error> {
        conf(args).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let t0 = Instant::now();
        let mut c = conf(args)?;
        if c.server.running_pid()?.is_none() {
            service::require_file("MariaDB option file", &c.config)?;
            match files::inspect(&c.datadir)? {
                PathKind::Missing => {
                    return Err(Error::NotConfigured(format!(
                        "datadir {} does not exist; create it (owned by {}) or set datadir=",
                        c.datadir, c.user
                    )))
                }
                PathKind::EmptyDirectory => initialise(&c, c.server.start_timeout)?,
                PathKind::Directory => {}
                _ => {
                    return Err(Error::NotConfigured(format!(
                        "datadir {} is not a directory",
                        c.datadir
                    )))
                }
            }
            // Initialisation spends the same start budget.
            c.server.start_timeout = c
                .server
                .start_timeout
                .saturating_sub(t0.elapsed())
                .max(Duration::from_secs(1));
        }
        let s = &c.server;
        s.start(&|| greeting_probe(s))
    }

    fn stop(args: &Args) -> Result<(), Error> {
        conf(args)?.server.stop()
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        let c = conf(args)?;
        c.server.monitor(&|| greeting_probe(&c.server))
    }
}

export_agent!(Mysqld);

//! The `named` agent: BIND 9 as Debian's `bind9` package installs it.
//!
//! `start` runs `named -f -u USER -c CONFIG` (foreground, so wasmbeat sees
//! it exit) and returns once a DNS query to `listen` is answered and the
//! pid file names the process; `stop` sends SIGTERM (named's clean
//! shutdown, what `rndc stop` does) and escalates to SIGKILL; `monitor`
//! asks `probe_name` (default `localhost`, served by Debian's default
//! zones). The configuration must write its pid to `pid_file` (named's
//! `pid-file` option; Debian's default is /run/named/named.pid) and listen
//! on `listen`.

use std::time::Duration;

use wasmbeat_sdk::probe::{self, qtype};
use wasmbeat_sdk::process::sig;
use wasmbeat_sdk::service::{self, Server};
use wasmbeat_sdk::{export_agent, Agent, Args, Command, Error, Meta, Needs, Param, Status};

struct Named;

const CONFIG: &str = "/etc/bind/named.conf";
const PID_FILE: &str = "/run/named/named.pid";

fn server(args: &Args) -> Result<(Server, String), Error> {
    let probe_name: String = args.get_or("probe_name", "localhost".to_string())?;
    let s = Server {
        name: "named".into(),
        command: "server".into(),
        pid_file: service::abs_path(args, "pid_file", PID_FILE)?,
        listen: service::socket_addr(args, "listen", "127.0.0.1:53")?,
        stop_signal: sig::TERM,
        start_timeout: service::seconds(args, "start_timeout", 15)?,
        stop_timeout: service::seconds(args, "stop_timeout", 15)?,
        package: "bind9".into(),
    };
    Ok((s, probe_name))
}

fn dns_probe(s: &Server, name: &str) -> service::ProbeResult {
    match probe::dns_query(s.listen, name, qtype::A, Duration::from_secs(1)) {
        // SERVFAIL means named is up but cannot serve: not healthy.
        Ok(a) if a.rcode == 2 => Err(format!("{name} answered SERVFAIL")),
        Ok(a) => Ok(format!(
            "{name} answered rcode {} with {} record(s){}",
            a.rcode,
            a.answers,
            if a.authoritative {
                ", authoritative"
            } else {
                ""
            }
        )),
        Err(e) => Err(format!("DNS query for {name}: {e:?}")),
    }
}

impl Agent for Named {
    fn meta_data() -> Meta {
        Meta::new(
            "named",
            env!("CARGO_PKG_VERSION"),
            "BIND 9 name server (Debian bind9). Started in the foreground as USER with CONFIG; \
             healthy when a DNS query to listen is answered.",
        )
        .param(
            Param::endpoint(
                "listen",
                "ip:port named answers on (probed; must match listen-on)",
            )
            .default("127.0.0.1:53"),
        )
        .param(Param::path("config", "named.conf").default(CONFIG))
        .param(
            Param::path(
                "pid_file",
                "pid file the configuration writes (options { pid-file })",
            )
            .default(PID_FILE),
        )
        .param(Param::name("user", "user named drops privileges to (-u)").default("bind"))
        .param(Param::path("binary", "the named binary").default("/usr/sbin/named"))
        .param(
            Param::name("probe_name", "name queried (type A) to check health").default("localhost"),
        )
        .param(Param::integer("start_timeout", "seconds until named must answer").default("15"))
        .param(
            Param::integer("stop_timeout", "seconds of clean shutdown before SIGKILL")
                .default("15"),
        )
        .needs(
            Needs::new()
                // named drops to USER itself, keeping what it needs of
                // these (port 53, raising its file limits).
                .command(
                    Command::new(
                        "server",
                        "named in the foreground as USER with CONFIG",
                        &["{binary}", "-f", "-u", "{user}", "-c", "{config}"],
                    )
                    .capabilities(&[
                        "net-bind-service",
                        "setuid",
                        "setgid",
                        "sys-resource",
                        "chown",
                        "dac-override",
                        "kill",
                    ]),
                )
                .pidfile("{pid_file}")
                .path("{config}")
                .probe("{listen}"),
        )
    }

    fn validate(args: &Args) -> Result<(), Error> {
        server(args).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let (s, name) = server(args)?;
        if s.running_pid()?.is_none() {
            service::require_file(
                "named configuration",
                &service::abs_path(args, "config", CONFIG)?,
            )?;
        }
        s.start(&|| dns_probe(&s, &name))
    }

    fn stop(args: &Args) -> Result<(), Error> {
        server(args)?.0.stop()
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        let (s, name) = server(args)?;
        s.monitor(&|| dns_probe(&s, &name))
    }
}

export_agent!(Named);

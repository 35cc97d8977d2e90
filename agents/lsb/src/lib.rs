//! The generic `lsb` agent: runs a heartbeat resource script or an LSB
//! init script as heartbeat does (`SCRIPT [ARGS...] start|stop|status`),
//! with LSB exit-code semantics. The host hands it only scripts that
//! agents.toml grants (`[lsb.NAME]`); its three commands run exactly that
//! script with the resource's arguments and `start`, `stop` or `status`.
//!
//! - `status`: 0 running, 3 not running, 1/2 (dead, pid/lock file left)
//!   failed; a script exiting 0 while printing "not running" (heartbeat's
//!   text convention) is not running.
//! - `start`: skipped if status says running; 0 success, 2 invalid
//!   arguments, 5 not installed, 6 not configured, other failure.
//! - `stop`: 0 success; a failing stop whose status then says not running
//!   counts as stopped (as heartbeat tolerates non-LSB scripts).

use std::time::Duration;

use wasmbeat_sdk::process::{self, Output};
use wasmbeat_sdk::service;
use wasmbeat_sdk::{export_agent, log, Agent, Args, Command, Error, Meta, Needs, Param, Status};

struct Lsb;

const ARGS: [&str; 5] = ["arg1", "arg2", "arg3", "arg4", "arg5"];

struct Conf {
    script: String,
    timeout: Duration,
}

fn conf(args: &Args) -> Result<Conf, Error> {
    Ok(Conf {
        script: service::abs_path(args, "script", "")?,
        timeout: service::seconds(args, "timeout", 15)?,
    })
}

/// `SCRIPT [ARG1..ARG5] OP`: the arguments heartbeat passes, then the operation.
fn script_command(op: &str) -> Command {
    let mut argv = vec!["{script}".to_string()];
    argv.extend(ARGS.iter().map(|a| format!("{{{a}?}}")));
    argv.push(op.to_string());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    // An init script does what init does; agents.toml's [lsb.NAME]
    // capabilities narrow it.
    Command::new(op, &format!("the script's {op}"), &argv).capabilities(&["all"])
}

fn call(c: &Conf, op: &str, timeout: Duration) -> Result<Output, Error> {
    process::run(op, timeout).map_err(|e| match e {
        Error::Timeout => Error::Failed(format!(
            "{} {op} did not finish within {timeout:?}",
            c.script
        )),
        other => other,
    })
}

fn detail(out: &Output) -> String {
    let l = out.last_line();
    if l.is_empty() {
        out.how()
    } else {
        format!("{}: {l}", out.how())
    }
}

fn status(c: &Conf) -> Result<Status, Error> {
    let out = call(c, "status", c.timeout.min(Duration::from_secs(8)))?;
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    match out.exit_code {
        Some(0) if text.contains("not running") => {
            log::warn(&format!(
                "{} status exits 0 but prints \"not running\": treated as not running (not LSB-compliant)",
                c.script
            ));
            Ok(Status::NotRunning)
        }
        Some(0) => Ok(Status::Running),
        Some(3) => Ok(Status::NotRunning),
        Some(1) | Some(2) => {
            log::warn(&format!(
                "{} status: dead but pid/lock file exists ({})",
                c.script,
                detail(&out)
            ));
            Ok(Status::Failed)
        }
        _ => Err(Error::Failed(format!(
            "{} status failed ({})",
            c.script,
            detail(&out)
        ))),
    }
}

impl Agent for Lsb {
    fn meta_data() -> Meta {
        let mut m = Meta::new(
            "lsb",
            env!("CARGO_PKG_VERSION"),
            "Runs a heartbeat resource script or LSB init script granted in agents.toml: \
             SCRIPT [ARGS...] start|stop|status, with LSB exit codes.",
        )
        .param(Param::path("script", "the script (set by the host from agents.toml)").required());
        for n in ARGS {
            m = m.param(Param::string(
                n,
                "argument passed before the operation, as heartbeat does",
            ));
        }
        m.param(Param::integer("timeout", "seconds each script call may take").default("15"))
            .needs(
                Needs::new()
                    .command(script_command("start"))
                    .command(script_command("stop"))
                    .command(script_command("status")),
            )
    }

    fn validate(args: &Args) -> Result<(), Error> {
        conf(args).map(|_| ())
    }

    fn start(args: &Args) -> Result<(), Error> {
        let c = conf(args)?;
        if status(&c)? == Status::Running {
            log::info(&format!("{} already running", c.script));
            return Ok(());
        }
        let out = call(&c, "start", c.timeout)?;
        match out.exit_code {
            Some(0) => {}
            Some(2) => {
                return Err(Error::InvalidArgs(format!(
                    "{} start: {}",
                    c.script,
                    detail(&out)
                )))
            }
            Some(5) => {
                return Err(Error::NotInstalled(format!(
                    "{} start: {}",
                    c.script,
                    detail(&out)
                )))
            }
            Some(6) => {
                return Err(Error::NotConfigured(format!(
                    "{} start: {}",
                    c.script,
                    detail(&out)
                )))
            }
            _ => {
                return Err(Error::Failed(format!(
                    "{} start failed ({})",
                    c.script,
                    detail(&out)
                )))
            }
        }
        if status(&c)? == Status::NotRunning {
            return Err(Error::Failed(format!(
                "{} start exited 0 but status says it is not running",
                c.script
            )));
        }
        Ok(())
    }

    fn stop(args: &Args) -> Result<(), Error> {
        let c = conf(args)?;
        let out = call(&c, "stop", c.timeout)?;
        if out.exit_code == Some(0) {
            return Ok(());
        }
        if status(&c)? == Status::NotRunning {
            log::warn(&format!(
                "{} stop failed ({}) but status says not running: treated as stopped",
                c.script,
                detail(&out)
            ));
            return Ok(());
        }
        Err(Error::Failed(format!(
            "{} stop failed ({})",
            c.script,
            detail(&out)
        )))
    }

    fn monitor(args: &Args) -> Result<Status, Error> {
        status(&conf(args)?)
    }
}

export_agent!(Lsb);

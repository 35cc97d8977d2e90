//! Hostile test agent: `start` carries out the attack named by `attack`,
//! calling only what the WIT lets any agent call, and reports what the
//! host allowed as `failed("RESULT ...")` so a test can read it. Each
//! attack has a positive control in the tests (the same call inside the
//! grant works), so the suite cannot pass because nothing ran.
//!
//! Attacks (parameter `attack`):
//! - `run`/`spawn`: the granted-or-not command `command`;
//! - `spawn-loop`: spawn `command` `count` times, counting successes;
//! - `add`/`remove`/`plan`: the address `ip` (granted or not);
//! - `announce`: announce `ip` `count` times, one repetition per call;
//! - `pidfile`: look up the pid file `path`;
//! - `inspect`: inspect `path`;
//! - `log-forge`: a log line that tries to start a line of its own;
//! - `log-flood`: one log line of `count` KiB, then `count` lines;
//! - `hog`: try to reserve `count` MiB of memory (fails softly at the limit);
//! - `spin`: compute for `count` milliseconds without yielding.
//!
//! With `outcome=log` the result is logged as `RESULT ...` and `start`
//! succeeds, so the attack can run as a resource group of a live cluster
//! without its group failing over.
use std::net::IpAddr;
use std::time::Duration;

use wasmbeat_sdk::{
    export_agent, files, log, net, process, Agent, Args, Error, Meta, Param, Status,
};

struct Attacker;

fn text(e: &Error) -> String {
    format!("{e:?}")
}

fn attack(args: &Args) -> Result<(), Error> {
    let outcome: String = args.get_or("outcome", "fail".to_string())?;
    let result = |what: String| -> Result<(), Error> {
        if outcome == "log" {
            log::warn(&format!("RESULT {what}"));
            Ok(())
        } else {
            Err(Error::Failed(format!("RESULT {what}")))
        }
    };
    let kind: String = args.require("attack")?;
    let count: u32 = args.get_or("count", 1)?;
    let command: String = args.get_or("command", "server".to_string())?;
    let ip = || -> Result<IpAddr, Error> { args.require("ip") };
    let path = || -> Result<String, Error> { args.require("path") };
    match kind.as_str() {
        "run" => match process::run(&command, Duration::from_millis(u64::from(count) * 1000)) {
            Ok(out) => result(format!(
                "ran {command}: {} stdout={:?} stderr={:?}",
                out.how(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => result(format!("run {command}: {}", text(&e))),
        },
        "spawn" => match process::spawn(&command) {
            Ok(pid) => result(format!("spawned {command} as {pid}")),
            Err(e) => result(format!("spawn {command}: {}", text(&e))),
        },
        "spawn-loop" => {
            let mut ok = 0;
            let mut last = String::new();
            for _ in 0..count {
                match process::spawn(&command) {
                    Ok(_) => ok += 1,
                    Err(e) => last = text(&e),
                }
            }
            result(format!("spawned {ok} of {count}; last error {last}"))
        }
        "add" => match net::add_address(ip()?) {
            Ok(a) => result(format!(
                "added {}/{} on {} brd {:?} label {:?}",
                a.address, a.prefix_len, a.link_name, a.broadcast, a.label
            )),
            Err(e) => result(format!("add: {}", text(&e))),
        },
        "remove" => match net::remove_address(ip()?) {
            Ok(n) => result(format!("removed {n}")),
            Err(e) => result(format!("remove: {}", text(&e))),
        },
        "plan" => match net::plan_address(ip()?) {
            Ok(a) => result(format!(
                "plan {}/{} on {}",
                a.address, a.prefix_len, a.link_name
            )),
            Err(e) => result(format!("plan: {}", text(&e))),
        },
        "announce" => {
            let mut ok = 0;
            let mut last = String::new();
            for _ in 0..count {
                match net::announce(ip()?, 1, Duration::from_millis(10)) {
                    Ok(()) => ok += 1,
                    Err(e) => last = text(&e),
                }
            }
            result(format!("announced {ok} of {count}; last error {last}"))
        }
        "pidfile" => match process::pidfile_pid(&path()?) {
            Ok(p) => result(format!("pidfile {p:?}")),
            Err(e) => result(format!("pidfile: {}", text(&e))),
        },
        "inspect" => match files::inspect(&path()?) {
            Ok(k) => result(format!("inspect {k:?}")),
            Err(e) => result(format!("inspect: {}", text(&e))),
        },
        "log-forge" => {
            log::info("harmless\n2099-01-01T00:00:00.000000Z ERROR wasmbeat::cluster: FORGED takeover\r\x1b[31mred");
            result("logged".into())
        }
        "log-flood" => {
            let line = "A".repeat(count as usize * 1024);
            log::info(&line);
            for i in 0..count {
                log::info(&format!("flood line {i}"));
            }
            result(format!("logged {count} KiB and {count} lines"))
        }
        "hog" => {
            let mut v: Vec<u8> = Vec::new();
            match v.try_reserve_exact(count as usize * (1 << 20)) {
                Ok(()) => result(format!("reserved {count} MiB")),
                Err(e) => result(format!("reserving {count} MiB: {e}")),
            }
        }
        "spin" => {
            let t0 = std::time::Instant::now();
            let mut x = 0u64;
            while t0.elapsed() < Duration::from_millis(u64::from(count)) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            result(format!("spun {count} ms ({x})"))
        }
        other => Err(Error::InvalidArgs(format!("unknown attack {other:?}"))),
    }
}

impl Agent for Attacker {
    fn meta_data() -> Meta {
        Meta::new(
            "attacker",
            "0.1.0",
            "test: carries out one attack on the host",
        )
        .param(Param::name("attack", "which attack").required())
        .param(Param::name("command", "command name").default("server"))
        .param(Param::string("ip", "an address"))
        .param(Param::path("path", "a path"))
        .param(Param::integer("count", "repetitions").default("1"))
        .param(Param::name("outcome", "fail (report as the error) or log").default("fail"))
    }
    fn start(args: &Args) -> Result<(), Error> {
        attack(args)
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Attacker);

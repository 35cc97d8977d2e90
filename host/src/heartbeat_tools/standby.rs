//! `hb_standby` and `hb_takeover` (heartbeat's `/usr/share/heartbeat`
//! scripts): one optional argument `all|local|foreign|failback` (default
//! `all`), sent to the daemon as a standby or takeover request.
//!
//! heartbeat's scripts print nothing on success (they write a message into
//! the daemon's FIFO and exit 0); `hb_standby` logs "Going standby [X]."
//! through `ha_log`, which prints it on stderr when run from a terminal.
//! Bad arguments print the scripts' lines: `$0: too many arguments` or
//! `$0: wrong resources(X).` and `usage:` on stdout, the usage line on
//! stderr, exit 1. Unlike the scripts (which block or write into a plain
//! file when heartbeat is down), a daemon that cannot be reached is an
//! error: message on stderr, exit 1.

use std::fmt::Write as _;

use super::{Output, QueryError, Tool};
use crate::control::{Request, Response, Which};

/// What the arguments ask for: a request, or the scripts' complaint.
pub fn parse(program: &str, args: &[String]) -> Result<Which, Output> {
    let usage = |mut out: Output| {
        out.stdout.push_str("usage:\n");
        let _ = writeln!(out.stderr, "{program} [all|foreign|local|failback]");
        out.code = 1;
        out
    };
    let mut out = Output::default();
    if args.len() >= 2 {
        let _ = writeln!(out.stdout, "{program}: too many arguments");
        return Err(usage(out));
    }
    let word = args.first().map(String::as_str).unwrap_or("all");
    if word == "--help" {
        return Err(usage(out));
    }
    match word.parse::<Which>() {
        Ok(which) => Ok(which),
        Err(_) => {
            let _ = writeln!(out.stdout, "{program}: wrong resources({word}).");
            Err(usage(out))
        }
    }
}

/// The request for `which`.
pub fn request(tool: Tool, which: Which) -> Request {
    match tool {
        Tool::HbTakeover => Request::Takeover(which),
        _ => Request::Standby(which),
    }
}

/// The line `hb_standby` logs: `failback` is spelled `foreign` by then.
pub fn standby_log_line(which: Which) -> String {
    let name = match which {
        Which::Failback => "foreign",
        w => w.as_str(),
    };
    format!("Going standby [{name}].")
}

/// The output for the daemon's answer.
pub fn outcome(
    tool: Tool,
    which: Which,
    answer: Result<Response, QueryError>,
    tty: bool,
) -> Output {
    let mut out = Output::default();
    if tool == Tool::HbStandby && tty {
        let _ = writeln!(out.stderr, "{}", standby_log_line(which));
    }
    match answer {
        Ok(Response::Ok { .. }) => {}
        Ok(Response::Error { message }) => {
            let _ = writeln!(out.stderr, "{}: {message}", tool.name());
            out.code = 1;
        }
        Ok(Response::Status { .. }) => {
            let _ = writeln!(
                out.stderr,
                "{}: unexpected answer from wasmbeat",
                tool.name()
            );
            out.code = 1;
        }
        Err(e) => {
            let _ = writeln!(out.stderr, "{}: {e}", tool.name());
            out.code = 1;
        }
    }
    out
}

/// Run the tool: parse, ask, report.
pub fn run(
    tool: Tool,
    args: &[String],
    ask: impl FnOnce(&Request) -> Result<Response, QueryError>,
) -> Output {
    use std::io::IsTerminal;
    // heartbeat's scripts print `$0` as they were invoked; as a
    // sub-command of wasmbeat, the tool's name.
    let program = std::env::args().next().filter(|a| a.contains(tool.name()));
    let program = program.as_deref().unwrap_or(tool.name());
    match parse(program, args) {
        Err(out) => out,
        Ok(which) => outcome(
            tool,
            which,
            ask(&request(tool, which)),
            std::io::stdin().is_terminal(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_follow_heartbeats_scripts() {
        assert_eq!(parse("hb_standby", &[]).unwrap(), Which::All);
        assert_eq!(
            parse("hb_standby", &args(&["failback"])).unwrap(),
            Which::Failback
        );
        assert_eq!(
            request(Tool::HbTakeover, Which::Local),
            Request::Takeover(Which::Local)
        );
        assert_eq!(
            request(Tool::HbStandby, Which::Foreign),
            Request::Standby(Which::Foreign)
        );
        let out = parse("/x/hb_standby", &args(&["sideways"])).unwrap_err();
        assert_eq!(
            out.stdout,
            "/x/hb_standby: wrong resources(sideways).\nusage:\n"
        );
        assert_eq!(out.stderr, "/x/hb_standby [all|foreign|local|failback]\n");
        assert_eq!(out.code, 1);
        let out = parse("hb_takeover", &args(&["all", "all"])).unwrap_err();
        assert_eq!(out.stdout, "hb_takeover: too many arguments\nusage:\n");
        assert_eq!(out.code, 1);
        let out = parse("hb_takeover", &args(&["--help"])).unwrap_err();
        assert_eq!((out.stdout.as_str(), out.code), ("usage:\n", 1));
    }

    #[test]
    fn answers_map_to_silence_or_an_error() {
        let ok = || {
            Ok(Response::Ok {
                message: "standby all requested".into(),
            })
        };
        assert_eq!(
            outcome(Tool::HbStandby, Which::All, ok(), false),
            Output::default()
        );
        let out = outcome(Tool::HbStandby, Which::Failback, ok(), true);
        assert_eq!(
            (out.stderr.as_str(), out.code),
            ("Going standby [foreign].\n", 0)
        );
        let out = outcome(
            Tool::HbTakeover,
            Which::All,
            Ok(Response::Error {
                message: "no".into(),
            }),
            false,
        );
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str(), out.code),
            ("", "hb_takeover: no\n", 1)
        );
        let out = outcome(
            Tool::HbTakeover,
            Which::All,
            Err(QueryError::Other("down".into())),
            false,
        );
        assert_eq!(out.code, 1);
    }

    #[test]
    fn program_names_select_the_tool() {
        assert_eq!(
            Tool::from_program_name("/usr/bin/cl_status"),
            Some(Tool::ClStatus)
        );
        assert_eq!(
            Tool::from_program_name("hb_takeover"),
            Some(Tool::HbTakeover)
        );
        assert_eq!(
            Tool::from_program_name("/usr/share/heartbeat/hb_standby"),
            Some(Tool::HbStandby)
        );
        assert_eq!(Tool::from_program_name("/usr/sbin/wasmbeat"), None);
    }
}

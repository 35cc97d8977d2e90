//! Test agent of the narrow world `log-only-agent` (imports `log` only).
//! Its results depend on the parameter `mode`, so a test sees every export
//! cross the boundary: `up` makes monitor say running, `broken` makes stop
//! fail with a `failed` error carrying the mode.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "log-only-agent",
});

use exports::wasmbeat::agent::agent::Guest;
use wasmbeat::agent::log::{log, Level};
use wasmbeat::agent::types::{Error, Meta, Param, ParamType, Status};

struct Narrow;

/// The value of `mode` (default `down`).
fn mode(args: &[(String, String)]) -> &str {
    args.iter()
        .find(|(k, _)| k == "mode")
        .map_or("down", |(_, v)| v.as_str())
}

impl Guest for Narrow {
    fn meta_data() -> Meta {
        Meta {
            name: "narrow".into(),
            version: "0.1.0".into(),
            description: "test: an agent of the log-only-agent world".into(),
            params: vec![Param {
                name: "mode".into(),
                description: "down (never running), up (running), broken (stop fails)".into(),
                type_: ParamType::Name,
                default: Some("down".into()),
                required: false,
            }],
            needs: vec![],
        }
    }
    fn validate(args: Vec<(String, String)>) -> Result<(), Error> {
        match mode(&args) {
            "down" | "up" | "broken" => Ok(()),
            other => Err(Error::InvalidArgs(format!("unknown mode {other}"))),
        }
    }
    fn start(args: Vec<(String, String)>) -> Result<(), Error> {
        log(
            Level::Info,
            &format!("narrow: start in mode {}", mode(&args)),
        );
        Ok(())
    }
    fn stop(args: Vec<(String, String)>) -> Result<(), Error> {
        match mode(&args) {
            "broken" => Err(Error::Failed("narrow: stop refused in mode broken".into())),
            _ => Ok(()),
        }
    }
    fn monitor(args: Vec<(String, String)>) -> Result<Status, Error> {
        Ok(match mode(&args) {
            "up" => Status::Running,
            _ => Status::NotRunning,
        })
    }
}

export!(Narrow);

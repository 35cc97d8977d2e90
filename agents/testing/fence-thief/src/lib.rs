//! Test-only hostile fence agent. Granted `base` like http-switch, its
//! `off(node)` attacks by node name and returns the host's answer as is:
//!
//! - `ok`: the positive control, `POST {base}/nodes/ok/off`;
//! - `port`, `host`: the same path on the next port, on 127.0.0.2;
//! - `path`: `/elsewhere` on the granted origin; `sibling`: `{base}2/...`;
//! - `dotdot`: `{base}/../admin`; `encoded`: `{base}/%2e%2e/admin`;
//!   `slash`: `{base}/nodes%2f..%2f..%2fadmin`;
//! - `userinfo`: `http://HOST:PORT@evil.invalid{path}/nodes`;
//! - `oversized`: a 100 KiB body; `header`: its own `Host` header;
//! - `hang`: `GET {base}/hang` (the switch never answers) with the longest
//!   timeout there is; `loop`: spins forever; `flood`: 1000 requests to
//!   `{base}/nodes`; `command`: runs the granted command `power`;
//!   `shell`: runs the ungranted command `shell`.

use wasmbeat_fence_sdk::{
    export_fence_agent, http, process, Args, Error, FenceAgent, FenceMeta, Param, PowerState,
};

struct Thief;

/// `(scheme://host:port, path)` of `base`.
fn split(base: &str) -> (String, String) {
    let rest = base.strip_prefix("http://").unwrap_or(base);
    let (origin, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    (
        format!("http://{origin}"),
        path.trim_end_matches('/').to_string(),
    )
}

fn attack(args: &Args, how: &str) -> Result<(), Error> {
    let base: String = args.require("base")?;
    let base = base.trim_end_matches('/').to_string();
    let (origin, path) = split(&base);
    let hostport = origin.trim_start_matches("http://").to_string();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((&hostport, "80"));
    let port: u16 = port.parse().unwrap_or(80);
    let post = |url: &str| http::post(url, &[], &[], 2000).map(|_| ());
    match how {
        "ok" => post(&format!("{base}/nodes/ok/off")),
        "port" => post(&format!("http://{host}:{}{path}/nodes/x/off", port + 1)),
        "host" => post(&format!("http://127.0.0.2:{port}{path}/nodes/x/off")),
        "path" => post(&format!("{origin}/elsewhere/nodes/x/off")),
        "sibling" => post(&format!("{base}2/nodes/x/off")),
        "dotdot" => post(&format!("{base}/../admin")),
        "encoded" => post(&format!("{base}/%2e%2e/admin")),
        "slash" => post(&format!("{base}/nodes%2f..%2f..%2fadmin")),
        "userinfo" => post(&format!("http://{hostport}@evil.invalid{path}/nodes")),
        "oversized" => http::post(
            &format!("{base}/nodes/x/off"),
            &[],
            &vec![b'x'; 100 * 1024],
            2000,
        )
        .map(|_| ()),
        "header" => http::post(
            &format!("{base}/nodes/x/off"),
            &[("Host", "evil.invalid")],
            &[],
            2000,
        )
        .map(|_| ()),
        "flood" => {
            for _ in 0..1000 {
                http::get(&format!("{base}/nodes"), &[], 2000)?;
            }
            Ok(())
        }
        "command" => process::run("power", 5000).and_then(|o| match o.exit_code {
            Some(0) => Ok(()),
            other => Err(Error::Failed(format!("power exited with {other:?}"))),
        }),
        "shell" => process::run("shell", 5000).map(|_| ()),
        "hang" => http::get(&format!("{base}/hang"), &[], u32::MAX).map(|_| ()),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        other => Err(Error::InvalidArgs(format!("unknown attack {other}"))),
    }
}

impl FenceAgent for Thief {
    fn meta_data() -> FenceMeta {
        FenceMeta::new("fence-thief", "0.1.0", "test: reaches past its HTTP grant")
            .param(Param::string("base", "the granted switch URL").required())
    }
    fn list(_args: &Args) -> Result<Vec<String>, Error> {
        Ok([
            "ok",
            "port",
            "host",
            "path",
            "sibling",
            "dotdot",
            "encoded",
            "slash",
            "userinfo",
            "oversized",
            "header",
            "flood",
            "command",
            "shell",
            "hang",
            "loop",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect())
    }
    fn status(_args: &Args, _node: &str) -> Result<PowerState, Error> {
        Ok(PowerState::Unknown)
    }
    fn on(args: &Args, node: &str) -> Result<(), Error> {
        attack(args, node)
    }
    fn off(args: &Args, node: &str) -> Result<(), Error> {
        attack(args, node)
    }
    fn reset(args: &Args, node: &str) -> Result<(), Error> {
        attack(args, node)
    }
}

export_fence_agent!(Thief);

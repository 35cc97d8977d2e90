//! `http-switch`: wasmbeat's built-in fence agent for a generic REST power
//! switch. The protocol (docs/fencing.md), relative to the `base` URL:
//!
//! - `GET  {base}/nodes` → 200, node names one per line (list)
//! - `GET  {base}/nodes/{node}` → 200, `on` or `off` (status)
//! - `POST {base}/nodes/{node}/on|off|reset` → 2xx once the action has
//!   taken effect; 404 for an unknown node; anything else is a failure
//!   carrying the body text.
//!
//! With a `token`, every request carries `Authorization: Bearer <token>`.
//! The host grants exactly `base` (its origin and path prefix) to the
//! device: this agent can reach nothing else.

use wasmbeat_fence_sdk::{
    export_fence_agent, http, log, Args, Error, FenceAgent, FenceMeta, Param, PowerState,
};

struct HttpSwitch;

/// Milliseconds a request may take unless `timeout` says otherwise (the
/// host also ends it at the operation's deadline).
const DEFAULT_TIMEOUT_MS: u32 = 20_000;

struct Device {
    base: String,
    token: Option<String>,
    timeout_ms: u32,
}

impl Device {
    fn from(args: &Args) -> Result<Device, Error> {
        let base: String = args.require("base")?;
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(Error::InvalidArgs(format!(
                "base={base:?} must be an http:// URL (e.g. base=http://10.9.0.254:8080/pdu)"
            )));
        }
        if base.contains(['?', '#']) {
            return Err(Error::InvalidArgs(format!(
                "base={base:?} must not carry a query or fragment"
            )));
        }
        let token: Option<String> = args.get("token")?;
        if let Some(t) = &token {
            if t.is_empty() || t.chars().any(|c| c.is_control() || c == ' ') {
                return Err(Error::InvalidArgs(
                    "token must be non-empty, without spaces or control characters".into(),
                ));
            }
        }
        let secs: u32 = args.get("timeout")?.unwrap_or(DEFAULT_TIMEOUT_MS / 1000);
        if secs == 0 {
            return Err(Error::InvalidArgs(
                "timeout must be at least 1 second".into(),
            ));
        }
        Ok(Device {
            base: base.trim_end_matches('/').to_string(),
            token,
            timeout_ms: secs.saturating_mul(1000),
        })
    }

    fn headers(&self) -> Vec<(&str, String)> {
        match &self.token {
            Some(t) => vec![("authorization", format!("Bearer {t}"))],
            None => Vec::new(),
        }
    }

    fn call(&self, method: &str, path: &str) -> Result<http::Response, Error> {
        let url = format!("{}{path}", self.base);
        let owned = self.headers();
        let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http::request(method, &url, &headers, &[], self.timeout_ms)
    }
}

/// A node name is one path segment of safe characters: nothing a node
/// name holds can move the request elsewhere on the switch.
fn node_segment(node: &str) -> Result<&str, Error> {
    let ok = !node.is_empty()
        && node.len() <= 253
        && !node.starts_with('.')
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(node)
    } else {
        Err(Error::InvalidArgs(format!(
            "node name {node:?} is not a plain host name (letters, digits, '-', '_', '.')"
        )))
    }
}

/// The body of a failed answer, short and on one line.
fn reason(r: &http::Response) -> String {
    let t = r.text();
    let t: String = t.chars().take(300).collect();
    if t.is_empty() {
        format!("HTTP {}", r.status)
    } else {
        format!("HTTP {}: {}", r.status, t.replace(['\r', '\n'], " "))
    }
}

fn action(args: &Args, node: &str, what: &str) -> Result<(), Error> {
    let d = Device::from(args)?;
    let node = node_segment(node)?;
    let r = d.call("POST", &format!("/nodes/{node}/{what}"))?;
    match r.status {
        200..=299 => {
            log::info(&format!("{what} {node}: done ({})", r.status));
            Ok(())
        }
        404 => Err(Error::NotConfigured(format!(
            "the switch does not know node {node} ({})",
            reason(&r)
        ))),
        _ => Err(Error::Failed(format!("{what} {node}: {}", reason(&r)))),
    }
}

impl FenceAgent for HttpSwitch {
    fn meta_data() -> FenceMeta {
        FenceMeta::new(
            "http-switch",
            "0.1.0",
            "A generic REST power switch: GET {base}/nodes lists the nodes, GET {base}/nodes/NODE \
             says on or off, POST {base}/nodes/NODE/on|off|reset acts and answers once done.",
        )
        .param(
            Param::string(
                "base",
                "The switch's URL, e.g. http://10.9.0.254:8080/pdu (also the device's HTTP grant)",
            )
            .required(),
        )
        .param(Param::string(
            "token",
            "Bearer token sent as Authorization: Bearer TOKEN",
        ))
        .param(Param::integer("timeout", "Seconds one request may take (default 20)").default("20"))
    }

    fn validate(args: &Args) -> Result<(), Error> {
        Device::from(args).map(|_| ())
    }

    fn list(args: &Args) -> Result<Vec<String>, Error> {
        let d = Device::from(args)?;
        let r = d.call("GET", "/nodes")?;
        if r.status != 200 {
            return Err(Error::Failed(format!("listing nodes: {}", reason(&r))));
        }
        Ok(String::from_utf8_lossy(&r.body)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn status(args: &Args, node: &str) -> Result<PowerState, Error> {
        let d = Device::from(args)?;
        let node = node_segment(node)?;
        let r = d.call("GET", &format!("/nodes/{node}"))?;
        match r.status {
            200 => Ok(match r.text().to_ascii_lowercase().as_str() {
                "on" => PowerState::On,
                "off" => PowerState::Off,
                _ => PowerState::Unknown,
            }),
            404 => Err(Error::NotConfigured(format!(
                "the switch does not know node {node} ({})",
                reason(&r)
            ))),
            _ => Err(Error::Failed(format!("status of {node}: {}", reason(&r)))),
        }
    }

    fn on(args: &Args, node: &str) -> Result<(), Error> {
        action(args, node, "on")
    }

    fn off(args: &Args, node: &str) -> Result<(), Error> {
        action(args, node, "off")
    }

    fn reset(args: &Args, node: &str) -> Result<(), Error> {
        action(args, node, "reset")
    }
}

export_fence_agent!(HttpSwitch);

//! Agents embedded in the binary (built from `agents/` by build.rs).

macro_rules! agent_bytes {
    ($file:literal) => {
        include_bytes!(concat!(env!("WASMBEAT_AGENTS_DIR"), "/", $file))
    };
}

/// The IPaddr agent component.
pub static IPADDR: &[u8] = agent_bytes!("ipaddr.wasm");
/// The named (BIND 9) agent component.
pub static NAMED: &[u8] = agent_bytes!("named.wasm");
/// The httpd (Apache httpd or nginx) agent component.
pub static HTTPD: &[u8] = agent_bytes!("httpd.wasm");
/// The mysqld (MariaDB/MySQL) agent component.
pub static MYSQLD: &[u8] = agent_bytes!("mysqld.wasm");
/// The generic LSB/heartbeat script agent. Not reachable by name: it runs
/// only scripts that agents.toml grants (see `runtime::bind`).
pub static LSB: &[u8] = agent_bytes!("lsb.wasm");

/// The embedded component for a built-in agent name, if any.
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    match name {
        "IPaddr" | "IPaddr2" => Some(IPADDR),
        "named" => Some(NAMED),
        "httpd" => Some(HTTPD),
        "mysqld" => Some(MYSQLD),
        _ => None,
    }
}

/// Names of all built-in agents.
pub const NAMES: &[&str] = &["IPaddr", "IPaddr2", "named", "httpd", "mysqld"];

/// The `http-switch` fence agent component (world `fence-agent`; a fence
/// device, not a resource agent: see `crate::fence`).
pub static FENCE_HTTP: &[u8] = agent_bytes!("fence_http.wasm");

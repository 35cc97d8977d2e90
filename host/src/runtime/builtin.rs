//! Agents embedded in the binary (built from `agents/` by build.rs).

/// The IPaddr agent component.
pub static IPADDR: &[u8] = include_bytes!(concat!(env!("WASMBEAT_AGENTS_DIR"), "/ipaddr.wasm"));

/// The embedded component for a built-in agent name, if any.
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    match name {
        "IPaddr" | "IPaddr2" => Some(IPADDR),
        _ => None,
    }
}

/// Names of all built-in agents.
pub const NAMES: &[&str] = &["IPaddr", "IPaddr2"];

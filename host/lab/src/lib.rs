//! Test and benchmark support for wasmbeat, kept out of the product: the
//! `wasmbeat` binary and library ship none of it.
//!
//! - [`Netns`] and [`Lab`]: network namespaces joined by a bridge that
//!   itself lives in a namespace, torn down on drop (also on panic), with
//!   processes ended by the PID recorded when they were spawned;
//! - [`heartbeat`]: a real heartbeat 3.0.6 node inside such a lab;
//! - [`services`]: configs of the real services (BIND, Apache, MariaDB);
//! - [`http`]: a tiny HTTP responder and client, to see which node serves a VIP;
//! - [`power_switch`]: a simulated network power switch for the fencing labs;
//! - [`uplinks`]: the two-network lab (heartbeat link + public LAN with a
//!   router as ping node) of the ping-node tests and the uplink benchmark;
//! - [`wire_peer`]: a bare wire peer (heartbeats and protocol answers only)
//!   for interop and transport tests;
//! - [`pacemaker`]: a real Pacemaker + Corosync cluster, one node per namespace;
//! - [`demo`]: the two-node failover demo (`scripts/demo.sh`).
//!
//! The `wasmbeat-lab` binary (`demo`, `wire-peer`, `http-responder`) is
//! what tests, `xtask` and the demo spawn inside namespaces; it finds the
//! `wasmbeat` binary next to itself ([`sibling_binary`]).

pub mod demo;
pub mod heartbeat;
pub mod http;
mod netns;
pub mod pacemaker;
pub mod power_switch;
pub mod services;
pub mod uplinks;
pub mod wire_peer;

pub use netns::{run, wait_for, Lab, LabError, Netns};

use std::path::PathBuf;

/// The binary `name` in the directory of the running executable (cargo
/// puts every binary of a build in one directory), or None when it is not
/// there.
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.is_file().then_some(path)
}

//! wasmbeat: an active/passive IP failover daemon speaking Linux-HA
//! heartbeat 3.0.6's configuration files and wire protocol, whose resource
//! agents are sandboxed WebAssembly components.
//!
//! Module map (arrows point one way; the picture is `docs/architecture.md`):
//! `daemon` -> `node` (the pure engine, `wasmbeat-core`), `resources`,
//! `transport`, `control`; `resources` -> `runtime` -> `caps`, `grant`;
//! everything may use `config`. `ocf` (agents for Pacemaker) and
//! `migrate` (heartbeat files to a Pacemaker configuration) use `runtime`
//! the way `wasmbeat agent` does; nothing imports them.

pub mod caps;
pub mod config;
pub mod confine;
pub mod control;
pub mod daemon;
pub mod fence;
pub mod grant;
pub mod heartbeat_tools;
pub mod logging;
pub mod migrate;
pub mod ocf;
pub mod pidfile;
pub mod resources;
pub mod runtime;
pub mod scaffold;
pub mod transport;
pub mod trust;
pub mod wire;
pub mod witness;

/// The pure failover engine (membership, resources, standby), from `wasmbeat-core`.
pub use wasmbeat_core::cluster;
/// The pure engine's driver interface.
pub use wasmbeat_core::{monitor, node, Millis};

//! wasmbeat's pure failover engine: heartbeat 3.0.6's haresources protocol
//! and wire session as state machines that never read a clock, touch a
//! socket or draw ambient randomness.
//!
//! [`node::Node`] is the one entry point a driver needs: it feeds packets,
//! ticks, operator commands and resource results in with the time, and
//! carries out the [`node::Output`]s. The daemon (`wasmbeat run`) and the
//! simulator (`tests/simulation.rs` here) are both such drivers. See
//! `docs/architecture.md` for the picture.

pub mod cluster;
pub mod ipfail;
pub mod link;
pub mod monitor;
pub mod node;
pub mod ping;
pub mod time;
pub mod wire;
pub mod witness;

pub use node::{Input, Node, NodeConfig, Output};
pub use time::Millis;

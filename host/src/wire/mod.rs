//! The wire protocol: the pure codec, authentication and session from
//! `wasmbeat-core`, plus the node identity persisted on disk.

pub use wasmbeat_core::wire::*;

pub mod environment;
pub mod identity;
pub mod peer_state;

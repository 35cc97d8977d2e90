//! Resource groups: ordered start/stop of one haresources line through the
//! agent runtime, with heartbeat's ResourceManager semantics (start
//! left-to-right skipping what already runs, give the whole group up on the
//! first failed start, stop right-to-left retrying a failing stop).

pub mod group;
/// Monitoring policy (probe interval, restart budget) lives with the pure engine.
pub use wasmbeat_core::monitor;

pub use group::{
    start_group, stop_group, GroupOp, GroupReport, Resource, ResourceFuture, StepReport, StopRetry,
};

//! Resource groups: ordered start/stop of one haresources line through the
//! agent runtime, with heartbeat's ResourceManager semantics (start
//! left-to-right skipping what already runs, give the whole group up on the
//! first failed start, stop right-to-left retrying a failing stop), except
//! that a run of consecutive addresses starts and stops together.

pub mod agent;
pub mod group;
/// Monitoring policy (probe interval, restart budget) lives with the pure engine.
pub use wasmbeat_core::monitor;

pub use agent::AgentResource;
pub use group::{
    restart_all, start_group, stop_group, GroupOp, GroupReport, Resource, ResourceFuture,
    StepReport, StopRetry, ADDRESS_CONCURRENCY,
};

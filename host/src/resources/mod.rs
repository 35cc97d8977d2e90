//! Resource groups: ordered start/stop of one haresources line through the
//! agent runtime, with heartbeat's ResourceManager semantics (start
//! left-to-right skipping what already runs, give the whole group up on the
//! first failed start, stop right-to-left retrying a failing stop).

pub mod group;
pub mod monitor;

pub use group::{
    start_group, stop_group, GroupOp, GroupReport, Resource, ResourceFuture, StepReport, StopRetry,
};

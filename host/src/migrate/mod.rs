//! `wasmbeat migrate pacemaker`: ha.cf + haresources (+ agents.toml) as a
//! Pacemaker configuration for the same resources, run by the same Wasm
//! agents through the OCF bridge (`ocf:wasmbeat:NAME`, see [`crate::ocf`]).
//!
//! [`plan`] reads the files and decides (one group per haresources line,
//! primitives with bound parameters and monitor operations, a location
//! preference, stickiness from `auto_failback`, quorum and fencing
//! properties, a note for everything that does not map); [`render`] writes
//! that plan as `crm configure` input or as `pcs` commands, so both forms
//! say the same thing.

mod plan;
mod render;

pub use plan::{plan, GroupPlan, Note, Plan, Primitive};
pub use render::render;

/// What to migrate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Pacemaker on Corosync.
    Pacemaker,
}

/// The form of the generated configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// crmsh: `crm configure load update FILE`.
    Crm,
    /// pcs: a shell script of `pcs` commands.
    Pcs,
}

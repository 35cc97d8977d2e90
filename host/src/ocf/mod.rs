//! The OCF bridge: every wasmbeat agent, built-in or
//! `<config-dir>/resource.d/NAME.wasm`, is also an OCF resource agent
//! `ocf:wasmbeat:NAME`, so a cluster that moves to Pacemaker keeps its
//! sandboxed agents. Pacemaker runs `/usr/lib/ocf/resource.d/wasmbeat/NAME
//! ACTION` (a script [`install`] writes) which execs `wasmbeat ocf NAME
//! ACTION`; that process binds `OCF_RESKEY_*` to the agent's declared
//! parameters ([`params`]), computes the grant from agents.toml exactly as
//! the daemon does (`runtime::bind`), runs one operation in the unchanged
//! sandbox, and exits with the OCF code:
//!
//! | outcome | OCF code |
//! |---|---|
//! | ok, `running` | 0 `OCF_SUCCESS` |
//! | `failed(..)`, `timeout`, a trap, monitor `failed` | 1 `OCF_ERR_GENERIC` |
//! | `invalid-args(..)` from the agent | 2 `OCF_ERR_ARGS` |
//! | an action the bridge does not offer (notify, promote, reload, ...) | 3 `OCF_ERR_UNIMPLEMENTED` |
//! | `denied(..)`, a grant that does not allow the call | 4 `OCF_ERR_PERM` |
//! | `not-installed(..)`, agent not found | 5 `OCF_ERR_INSTALLED` |
//! | `not-configured(..)`; parameters that do not bind (unknown, missing, mistyped); unusable agents.toml | 6 `OCF_ERR_CONFIGURED` |
//! | monitor `not-running` | 7 `OCF_NOT_RUNNING` |
//!
//! Parameters that do not bind are 6, not 2: under Pacemaker they are the
//! CIB's, the same on every node, so retrying elsewhere cannot help.

pub mod install;
pub mod metadata;
pub mod params;
mod run;

pub use run::{ocf_command, Action, OcfOptions};

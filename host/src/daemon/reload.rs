//! What a reload changes: re-read the files, refuse what needs a restart,
//! and name the groups whose agents must be loaded anew. The Node decides
//! when the result takes effect (once those agents are in).

use super::{agents, cluster_params, RunOptions};
use crate::config::{self, Config};
use crate::node::ReloadPlan;

/// The plan for reloading `running`'s configuration directory, with the
/// new configuration, or why the running configuration stays.
pub(super) fn plan(
    running: &Config,
    opts: &RunOptions,
    why: &str,
) -> Result<(ReloadPlan, Config), String> {
    let cfg = match Config::load_with(&opts.config_dir, opts.node.as_deref(), opts.load) {
        Ok((cfg, _warnings)) => cfg,
        Err(diags) => {
            let text = diags
                .iter()
                .filter(|d| d.severity == config::Severity::Error)
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(format!(
                "{why}: reload failed, running configuration kept: {text}"
            ));
        }
    };
    let mut needs_restart = Vec::new();
    if cfg.ha.media != running.ha.media || cfg.ha.udpport != running.ha.udpport {
        needs_restart.push("media");
    }
    if cfg.ha.nodes != running.ha.nodes || cfg.local_node != running.local_node {
        needs_restart.push("node list");
    }
    // The device is opened once, before the loop turns; deadtime and
    // keepalive reload (the timeout follows them), the path does not.
    if cfg.ha.watchdog != running.ha.watchdog {
        needs_restart.push("watchdog");
    }
    if !needs_restart.is_empty() {
        return Err(format!(
            "{why}: changes to {} need a restart; reload refused, running configuration kept",
            needs_restart.join(", ")
        ));
    }
    // Groups whose resources changed get fresh agent instances; others keep
    // theirs, so an unchanged held group is not touched (no flap).
    let changed: Vec<String> = cfg
        .resources
        .groups
        .iter()
        .filter(|g| {
            running
                .resources
                .groups
                .iter()
                .find(|old| old.key == g.key)
                .is_none_or(|old| old.resources != g.resources)
        })
        .map(|g| g.key.clone())
        .collect();
    // New keys take effect without a restart (a restart would hand the
    // groups to the peer and back): that is how a key rotation proceeds.
    let keyring = if cfg.auth.keys != running.auth.keys
        || cfg.auth.active_index != running.auth.active_index
    {
        Some(cfg.auth.keyring().map_err(|e| {
            format!("{why}: reload failed, running configuration kept: authkeys: {e}")
        })?)
    } else {
        None
    };
    let plan = ReloadPlan {
        // The generation is the running instance's; the core keeps its own.
        cluster: cluster_params(&cfg, 0),
        monitors: agents::monitor_specs(&cfg),
        changed,
        keyring,
        reason: why.to_string(),
    };
    Ok((plan, cfg))
}

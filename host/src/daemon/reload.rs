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
    // Fence devices are loaded and validated at start only.
    if cfg.ha.stonith != running.ha.stonith || cfg.ha.stonith_hosts != running.ha.stonith_hosts {
        needs_restart.push("stonith/stonith_host");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &std::path::Path, watchdog: &str, deadtime: u32) {
        std::fs::write(
            dir.join("ha.cf"),
            format!(
                "keepalive 1\ndeadtime {deadtime}\ninitdead {deadtime}\nbcast lo\nauto_failback on\nnode a\nnode b\n{watchdog}"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("haresources"), "").unwrap();
        let keys = dir.join("authkeys");
        std::fs::write(&keys, "auth 1\n1 sha1 test\n").unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn opts(dir: &std::path::Path) -> RunOptions {
        RunOptions {
            config_dir: dir.to_path_buf(),
            node: Some("a".into()),
            runtime_dir: None,
            state_dir: None,
            cache_dir: None,
            metrics_listen: None,
            load: config::LoadOptions::default(),
            key_rotation_window: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_changed_watchdog_path_needs_a_restart_but_its_timings_reload() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "watchdog /dev/watchdog\n", 10);
        let o = opts(dir.path());
        let (running, _) = Config::load_with(dir.path(), Some("a"), o.load).unwrap();
        // deadtime changes: the timeout follows on reload.
        write(dir.path(), "watchdog /dev/watchdog\n", 20);
        assert!(plan(&running, &o, "test").is_ok());
        for other in ["watchdog /dev/watchdog1\n", ""] {
            write(dir.path(), other, 10);
            let e = plan(&running, &o, "test").unwrap_err();
            assert!(e.contains("changes to watchdog need a restart"), "{e}");
        }
    }
}

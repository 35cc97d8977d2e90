//! Resource groups of the running daemon: each haresources line bound to
//! agent instances from the runtime, with the grants they run under.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::cluster::Op;
use crate::config::{Config, ResourceGroup};
use crate::monitor::Monitored;
use crate::node::MonitorPlan;
use crate::resources::{AgentResource, Resource};
use crate::runtime::{self, Runtime};

/// One group's resources in start order, plus the lock that keeps its
/// operations from overlapping.
pub struct GroupResources {
    /// Agent instances, left to right as in haresources.
    pub resources: Vec<Arc<dyn Resource>>,
    /// Held while a start or stop of this group runs.
    pub lock: Mutex<()>,
}

impl GroupResources {
    /// The resources in the order `op` visits them, for the log line.
    pub fn describe(&self, op: Op) -> String {
        let mut names: Vec<&str> = self.resources.iter().map(|r| r.name()).collect();
        if op == Op::Stop {
            names.reverse();
        }
        names.join(" -> ")
    }
}

async fn load_group(
    runtime: &Runtime,
    cfg: &Config,
    group: &ResourceGroup,
) -> Result<GroupResources, String> {
    let mut resources: Vec<Arc<dyn Resource>> = Vec::new();
    for token in &group.resources {
        // Built-in default grant plus agents.toml; heartbeat/LSB scripts
        // only when agents.toml grants them.
        let instance = runtime::bind::bind_resource(runtime, token, &cfg.dir, &cfg.policy)
            .await
            .map_err(|e| format!("haresources line {}: {}: {e}", group.line, token.text))?;
        resources.push(Arc::new(AgentResource(instance)));
    }
    Ok(GroupResources {
        resources,
        lock: Mutex::new(()),
    })
}

/// Bind every group of `cfg` to agent instances.
pub async fn load_groups(
    runtime: &Runtime,
    cfg: &Config,
) -> Result<BTreeMap<String, Arc<GroupResources>>, String> {
    let mut out = BTreeMap::new();
    for g in &cfg.resources.groups {
        out.insert(g.key.clone(), Arc::new(load_group(runtime, cfg, g).await?));
    }
    Ok(out)
}

/// Bind only the groups named in `keys` (a reload's new or changed groups).
pub async fn load_some(
    runtime: Runtime,
    cfg: Config,
    keys: Vec<String>,
) -> Result<Vec<(String, Arc<GroupResources>)>, String> {
    let mut out = Vec::new();
    for g in cfg
        .resources
        .groups
        .iter()
        .filter(|g| keys.contains(&g.key))
    {
        out.push((
            g.key.clone(),
            Arc::new(load_group(&runtime, &cfg, g).await?),
        ));
    }
    Ok(out)
}

/// Monitor settings per group, per resource (None: not monitored), from
/// agents.toml's `monitor`/`restarts` keys ([`Policy::monitor_spec`]);
/// empty when nothing is monitored, heartbeat's behaviour.
///
/// [`Policy::monitor_spec`]: crate::grant::Policy::monitor_spec
pub fn monitor_specs(cfg: &Config) -> MonitorPlan {
    let mut out = BTreeMap::new();
    for g in &cfg.resources.groups {
        let specs: Vec<Monitored> = g
            .resources
            .iter()
            .map(|t| Monitored {
                resource: t.text.clone(),
                spec: cfg.policy.monitor_spec(&t.agent.display_name(), &t.text),
            })
            .collect();
        if specs.iter().any(|m| m.spec.is_some()) {
            out.insert(g.key.clone(), specs);
        }
    }
    out
}

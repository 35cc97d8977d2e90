//! Fencing (STONITH) devices: how wasmbeat resets a dead peer before it
//! takes the peer's resources over, as heartbeat's `stonith_host` lines.
//!
//! A device is a fence agent (a WebAssembly component of the world
//! `wasmbeat:agent/fence-agent`, run on the agent runtime with only `log`
//! and an `http` capability confined to the device's granted endpoints),
//! or the built-in `meatware` (the operator power-cycles the node and
//! confirms with `wasmbeat fence-ack NODE`). See docs/fencing.md.
//!
//! ```text
//! let fencing = Fencing::from_config(&ha, &policy, "node1", config_dir, &runtime)?;
//! fencing.validate().await?;                       // meta-data + arguments, once
//! let done = fencing.fence("node2", FenceAction::Reset, Duration::from_secs(60)).await?;
//! ```

pub mod cli;
pub mod cluster_glue;
pub mod device;
pub mod grant;
pub mod http;
mod meatware;
pub mod world;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::caps::{Caller, Caps, ProcessTable};
use crate::config::diag::Diagnostic;
use crate::config::hacf::HaCf;
use crate::grant::policy::Policy;
use crate::grant::Grant;
use crate::runtime::{AgentError, Runtime};
use device::{DevicePlan, PlanKind, Source};
use grant::HttpGrant;
use http::HttpCap;
use world::{Answer, LoadedFence, Op, WitPowerState};

/// What to do to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum FenceAction {
    /// Power it on.
    On,
    /// Power it off (return once it is off).
    Off,
    /// Power-cycle it.
    Reset,
    /// Ask its power state.
    Status,
    /// List the nodes the devices can fence (the node is ignored).
    List,
}

impl fmt::Display for FenceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FenceAction::On => "on",
            FenceAction::Off => "off",
            FenceAction::Reset => "reset",
            FenceAction::Status => "status",
            FenceAction::List => "list",
        })
    }
}

/// A node's power as a device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    /// Powered.
    On,
    /// Not powered.
    Off,
    /// The device cannot tell.
    Unknown,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        })
    }
}

impl From<WitPowerState> for PowerState {
    fn from(p: WitPowerState) -> PowerState {
        match p {
            WitPowerState::On => PowerState::On,
            WitPowerState::Off => PowerState::Off,
            WitPowerState::Unknown => PowerState::Unknown,
        }
    }
}

/// What a successful [`Fencing::fence`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceOutcome {
    /// The device that acted (its description, `ha.cf:12 stonith_host * http-switch`).
    pub device: String,
    /// The node.
    pub node: String,
    /// The action.
    pub action: FenceAction,
    /// For `status`: the power state.
    pub power: Option<PowerState>,
    /// For `list`: every node any device can fence.
    pub nodes: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl fmt::Display for FenceOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            FenceAction::List => write!(f, "nodes: {}", self.nodes.join(", ")),
            FenceAction::Status => write!(
                f,
                "{} is {} (device {}, {:.0} ms)",
                self.node,
                self.power.unwrap_or(PowerState::Unknown),
                self.device,
                self.elapsed.as_secs_f64() * 1000.0
            ),
            a => write!(
                f,
                "{a} {} done by device {} in {:.0} ms",
                self.node,
                self.device,
                self.elapsed.as_secs_f64() * 1000.0
            ),
        }
    }
}

/// Why fencing a node failed: every device tried and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// No configured device lists the node.
    #[error("no fence device can fence {node}{}", tried_text(tried))]
    NoDevice {
        /// The node.
        node: String,
        /// Each device asked and its answer.
        tried: Vec<(String, String)>,
    },
    /// Devices that list the node failed to act.
    #[error("{action} {node} failed{}", tried_text(tried))]
    Failed {
        /// The node.
        node: String,
        /// The action.
        action: FenceAction,
        /// Each device tried and why it failed.
        tried: Vec<(String, String)>,
    },
    /// The deadline passed before a device succeeded.
    #[error(
        "{action} {node} did not finish within {deadline:?}{}",
        tried_text(tried)
    )]
    Timeout {
        /// The node.
        node: String,
        /// The action.
        action: FenceAction,
        /// The deadline.
        deadline: Duration,
        /// Devices tried before (and the one cut off).
        tried: Vec<(String, String)>,
    },
}

fn tried_text(tried: &[(String, String)]) -> String {
    if tried.is_empty() {
        return " (no fence device is configured for this node)".to_string();
    }
    let parts: Vec<String> = tried.iter().map(|(d, why)| format!("{d}: {why}")).collect();
    format!(": {}", parts.join("; "))
}

/// Why the fence configuration cannot be used: one diagnostic per problem,
/// each with file, line and fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct FenceConfigError {
    /// The problems.
    pub diagnostics: Vec<Diagnostic>,
}

/// A configured device, loaded.
struct Device {
    plan: DevicePlan,
    imp: Imp,
}

/// Arguments bound to an agent's meta-data, and the command grant filled
/// from them.
type Bound = (Vec<(String, String)>, Arc<Grant>);

// A handful per configuration, never moved in bulk.
#[allow(clippy::large_enum_variant)]
enum Imp {
    Meatware(Vec<String>),
    ClusterGlue(cluster_glue::GlueDevice),
    Agent {
        agent: LoadedFence,
        params: Vec<(String, String)>,
        grants: Arc<Vec<HttpGrant>>,
        section: String,
        /// `[fence.NAME]` commands and limits.
        commands: crate::grant::policy::Section,
        /// What its commands started (confined as a resource's).
        procs: ProcessTable,
        /// Arguments bound to the meta-data, and the command grant filled
        /// from them (computed once).
        bound: tokio::sync::OnceCell<Bound>,
    },
}

struct Inner {
    devices: Vec<Device>,
    acks: meatware::Acks,
}

/// The fence devices usable from this node, in ha.cf order (cheap to
/// clone; `Send + Sync`).
#[derive(Clone)]
pub struct Fencing {
    inner: Arc<Inner>,
}

impl fmt::Debug for Fencing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fencing")
            .field("devices", &self.describe())
            .finish()
    }
}

impl Fencing {
    /// From parsed ha.cf (+ agents.toml policy) for local node `local`:
    /// `stonith_host` lines whose host is `*` or `local` (others ignored,
    /// as heartbeat does), and `stonith` lines. Fence agents are compiled
    /// (or mapped from the cache) on `runtime`; errors name file:line and
    /// the fix.
    pub fn from_config(
        ha: &HaCf,
        policy: &Policy,
        local: &str,
        config_dir: &Path,
        runtime: &Runtime,
    ) -> Result<Fencing, FenceConfigError> {
        let (plans, diagnostics) = device::plan(ha, policy, Some(local), config_dir);
        if diagnostics.iter().any(|d| d.is_error()) {
            return Err(FenceConfigError { diagnostics });
        }
        Fencing::from_plans(plans, runtime)
    }

    /// Load resolved devices.
    pub fn from_plans(
        plans: Vec<DevicePlan>,
        runtime: &Runtime,
    ) -> Result<Fencing, FenceConfigError> {
        let mut devices = Vec::new();
        let mut diagnostics = Vec::new();
        for plan in plans {
            let imp = match &plan.kind {
                PlanKind::Meatware { hosts } => Imp::Meatware(hosts.clone()),
                PlanKind::ClusterGlue(g) => Imp::ClusterGlue(g.clone()),
                PlanKind::Agent {
                    source,
                    params,
                    grants,
                    section,
                    commands,
                } => {
                    let loaded = match source {
                        Source::Builtin(name) => LoadedFence::load(
                            runtime,
                            name,
                            crate::runtime::builtin::FENCE_HTTP,
                            true,
                        ),
                        Source::File(path) => runtime
                            .read_agent_file(&plan.name, path)
                            .and_then(|b| LoadedFence::load(runtime, &plan.name, &b, false)),
                    };
                    match loaded {
                        Ok(agent) => Imp::Agent {
                            agent,
                            params: params.clone(),
                            grants: Arc::new(grants.clone()),
                            section: section.clone(),
                            commands: commands.clone(),
                            procs: ProcessTable::new(
                                &format!("{} {}", plan.at, plan.directive),
                                commands.limits.effective(),
                            ),
                            bound: tokio::sync::OnceCell::new(),
                        },
                        Err(e) => {
                            diagnostics.push(
                                Diagnostic::error(
                                    crate::config::diag::Code::Fence,
                                    &plan.file,
                                    (plan.line > 0).then_some(plan.line),
                                    format!("{}: {e}", plan.directive),
                                )
                                .hint("a fence agent is a component of the world wasmbeat:agent/fence-agent (docs/fencing.md)"),
                            );
                            continue;
                        }
                    }
                }
            };
            devices.push(Device { plan, imp });
        }
        if !diagnostics.is_empty() {
            return Err(FenceConfigError { diagnostics });
        }
        Ok(Fencing {
            inner: Arc::new(Inner {
                devices,
                acks: meatware::Acks::default(),
            }),
        })
    }

    /// No device (a configuration without `stonith_host` lines for this node).
    pub fn none() -> Fencing {
        Fencing {
            inner: Arc::new(Inner {
                devices: Vec::new(),
                acks: meatware::Acks::default(),
            }),
        }
    }

    /// Whether any device is configured for this node.
    pub fn is_configured(&self) -> bool {
        !self.inner.devices.is_empty()
    }

    /// One line per device for `check` and `status`.
    pub fn describe(&self) -> Vec<String> {
        self.inner
            .devices
            .iter()
            .map(|d| d.plan.describe())
            .collect()
    }

    /// Ask every agent for its meta-data and check each device's
    /// parameters against it, then run its `validate` (which changes
    /// nothing). One error per device that fails, naming its line.
    pub async fn validate(&self, deadline: Duration) -> Result<(), FenceConfigError> {
        let mut diagnostics = Vec::new();
        for d in &self.inner.devices {
            if let Err(e) = d.validate(deadline).await {
                diagnostics.push(
                    Diagnostic::error(
                        crate::config::diag::Code::Fence,
                        &d.plan.file,
                        (d.plan.line > 0).then_some(d.plan.line),
                        format!("{}: {e}", d.plan.directive),
                    )
                    .hint("see the agent's parameters with `wasmbeat fence test AGENT`"),
                );
            }
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(FenceConfigError { diagnostics })
        }
    }

    /// Fence `node` with the first device that lists it (heartbeat tries
    /// devices in order; a device that fails hands over to the next);
    /// bounded by `deadline`. The outcome or error says which device and why.
    pub async fn fence(
        &self,
        node: &str,
        action: FenceAction,
        deadline: Duration,
    ) -> Result<FenceOutcome, FenceError> {
        let t0 = Instant::now();
        let end = t0 + deadline;
        let mut tried: Vec<(String, String)> = Vec::new();
        let mut listed_any = false;
        let mut nodes: Vec<String> = Vec::new();
        for d in &self.inner.devices {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FenceError::Timeout {
                    node: node.to_string(),
                    action,
                    deadline,
                    tried,
                });
            }
            let name = d.label();
            let listed = match d.list(left, end).await {
                Ok(l) => l,
                Err(e) => {
                    tried.push((name, format!("list failed: {e}")));
                    if Instant::now() >= end {
                        return Err(FenceError::Timeout {
                            node: node.to_string(),
                            action,
                            deadline,
                            tried,
                        });
                    }
                    continue;
                }
            };
            if action == FenceAction::List {
                for n in listed {
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
                continue;
            }
            if !listed.iter().any(|n| n.eq_ignore_ascii_case(node)) {
                tried.push((
                    name,
                    format!("does not list {node} (lists: {})", listed.join(", ")),
                ));
                continue;
            }
            listed_any = true;
            let left = end.saturating_duration_since(Instant::now());
            if matches!(action, FenceAction::Status) {
                tracing::debug!(target: "wasmbeat::fence", device = %name, node, "STONITH: status of {node} from {name}");
            } else {
                tracing::warn!(target: "wasmbeat::fence", device = %name, node, %action, "STONITH: {action} {node} with {name}");
            }
            match d.act(node, action, left, end, &self.inner.acks).await {
                Ok(power) => {
                    let out = FenceOutcome {
                        device: name,
                        node: node.to_string(),
                        action,
                        power,
                        nodes: Vec::new(),
                        elapsed: t0.elapsed(),
                    };
                    if matches!(action, FenceAction::Status) {
                        tracing::debug!(target: "wasmbeat::fence", node, "STONITH: {out}");
                    } else {
                        tracing::warn!(target: "wasmbeat::fence", node, %action, "STONITH: {out}");
                    }
                    return Ok(out);
                }
                Err(e) => {
                    tracing::error!(target: "wasmbeat::fence", device = %name, node, %action, "STONITH: {action} {node} failed: {e}");
                    let timed_out = matches!(e, AgentError::Timeout(_)) && Instant::now() >= end;
                    tried.push((name, e.to_string()));
                    if timed_out {
                        return Err(FenceError::Timeout {
                            node: node.to_string(),
                            action,
                            deadline,
                            tried,
                        });
                    }
                }
            }
        }
        if action == FenceAction::List {
            if nodes.is_empty() && !tried.is_empty() {
                return Err(FenceError::Failed {
                    node: node.to_string(),
                    action,
                    tried,
                });
            }
            return Ok(FenceOutcome {
                device: self
                    .inner
                    .devices
                    .iter()
                    .map(Device::label)
                    .collect::<Vec<_>>()
                    .join(", "),
                node: node.to_string(),
                action,
                power: None,
                nodes,
                elapsed: t0.elapsed(),
            });
        }
        if listed_any {
            Err(FenceError::Failed {
                node: node.to_string(),
                action,
                tried,
            })
        } else {
            Err(FenceError::NoDevice {
                node: node.to_string(),
                tried,
            })
        }
    }

    /// Operator confirmation for meatware (`wasmbeat fence-ack NODE`):
    /// true when a meatware fencing of `node` was waiting for it.
    pub fn ack(&self, node: &str) -> bool {
        self.inner.acks.ack(node)
    }

    /// Nodes a meatware device is waiting for the operator to confirm.
    pub fn awaiting_ack(&self) -> Vec<String> {
        self.inner.acks.waiting()
    }
}

impl Device {
    fn label(&self) -> String {
        format!("{} {}", self.plan.at, self.plan.directive)
    }

    fn cap(&self, end: Instant) -> Option<HttpCap> {
        match &self.imp {
            Imp::Agent {
                grants, section, ..
            } => Some(HttpCap {
                device: self.label(),
                section: section.clone(),
                grants: Arc::clone(grants),
                deadline: end,
                sent: 0,
            }),
            Imp::Meatware(_) | Imp::ClusterGlue(_) => None,
        }
    }

    /// The bound arguments and the command grant (meta-data asked once),
    /// with the capabilities of one operation ending at `end`.
    async fn prepare(
        &self,
        deadline: Duration,
        end: Instant,
    ) -> Result<(Vec<(String, String)>, HttpCap, Caps), AgentError> {
        let Imp::Agent {
            agent,
            params,
            bound,
            commands,
            section,
            procs,
            ..
        } = &self.imp
        else {
            unreachable!("only agent devices are prepared");
        };
        let (args, grant) = bound
            .get_or_try_init(|| async {
                let meta = tokio::time::timeout(deadline, agent.meta_data())
                    .await
                    .map_err(|_| AgentError::Timeout("meta-data".into()))??;
                let args = bind(&meta, params)?;
                let decl = crate::runtime::agent_decl(&world::as_meta(&meta));
                let grant =
                    crate::grant::resolve::fence(&self.label(), section, commands, &decl, &args)
                        .map_err(|e| AgentError::NotConfigured(e.to_string()))?;
                Ok::<_, AgentError>((args, Arc::new(grant)))
            })
            .await?
            .clone();
        let caps = Caps::new(
            Caller {
                agent: agent.name().to_string(),
                resource: self.label(),
            },
            grant,
            procs.clone(),
            agent.runtime().shared(),
        )
        .granted_in(section.clone());
        Ok((args, self.cap(end).expect("agent device"), caps))
    }

    async fn validate(&self, deadline: Duration) -> Result<(), AgentError> {
        if let Imp::Agent { .. } = &self.imp {
            let end = Instant::now() + deadline;
            self.run(Op::Validate, deadline, end).await?;
        }
        Ok(())
    }

    /// Run `op` on an agent device, ending by `end`.
    async fn run(&self, op: Op, left: Duration, end: Instant) -> Result<Answer, AgentError> {
        let Imp::Agent { agent, procs, .. } = &self.imp else {
            unreachable!("only agent devices run operations");
        };
        let (args, cap, caps) = self.prepare(left, end).await?;
        let left = end.saturating_duration_since(Instant::now());
        let r = agent.run(op, args, cap, caps, left).await;
        // Nothing a fence operation started outlives it.
        let procs = procs.clone();
        let killed = tokio::task::spawn_blocking(move || procs.kill_all())
            .await
            .unwrap_or(0);
        if killed > 0 {
            tracing::warn!(target: "wasmbeat::fence", device = %self.label(),
                "killed {killed} process(es) the fence agent started that were still running after its operation");
        }
        r
    }

    async fn list(&self, left: Duration, end: Instant) -> Result<Vec<String>, AgentError> {
        match &self.imp {
            Imp::Meatware(hosts) => Ok(hosts.clone()),
            Imp::ClusterGlue(g) => g.list(left).await.map_err(AgentError::Failed),
            Imp::Agent { .. } => match self.run(Op::List, left, end).await? {
                Answer::Nodes(n) => Ok(n),
                _ => unreachable!("list returns nodes"),
            },
        }
    }

    async fn act(
        &self,
        node: &str,
        action: FenceAction,
        left: Duration,
        end: Instant,
        acks: &meatware::Acks,
    ) -> Result<Option<PowerState>, AgentError> {
        match &self.imp {
            Imp::Meatware(_) => {
                let what = match action {
                    FenceAction::Status => return Ok(Some(PowerState::Unknown)),
                    FenceAction::List => return Ok(None),
                    FenceAction::On => "power on",
                    FenceAction::Off => "power off",
                    FenceAction::Reset => "power-cycle",
                };
                acks.ask(&self.label(), node, what, left).await.map_err(|n| {
                    AgentError::Timeout(format!(
                        "meatware: no operator confirmation (`wasmbeat fence-ack {node}`) within {:?}",
                        n.waited
                    ))
                })?;
                Ok(None)
            }
            Imp::ClusterGlue(g) => g.act(node, action, left).await.map_err(AgentError::Failed),
            Imp::Agent { .. } => {
                let n = node.to_string();
                let op = match action {
                    FenceAction::On => Op::On(n),
                    FenceAction::Off => Op::Off(n),
                    FenceAction::Reset => Op::Reset(n),
                    FenceAction::Status => Op::Status(n),
                    FenceAction::List => Op::List,
                };
                match self.run(op, left, end).await? {
                    Answer::Power(p) => Ok(Some(p.into())),
                    _ => Ok(None),
                }
            }
        }
    }
}

/// Bind `key=value` parameters to the agent's declared ones, type-checked
/// as resource arguments are.
pub(crate) fn bind(
    meta: &world::FenceMeta,
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, AgentError> {
    for (k, _) in params {
        if !meta.params.iter().any(|p| &p.name == k) {
            let known: Vec<&str> = meta.params.iter().map(|p| p.name.as_str()).collect();
            return Err(AgentError::InvalidArgs(format!(
                "{} has no parameter {k} (its parameters: {})",
                meta.name,
                known.join(", ")
            )));
        }
    }
    let args: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    crate::runtime::bind_args(&world::as_meta(meta), &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_is_cheap_to_share_across_tasks() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Fencing>();
        fn send_fut<F: std::future::Future + Send>(_: F) {}
        let f = Fencing::none();
        send_fut(f.fence("n", FenceAction::Off, Duration::from_secs(1)));
        send_fut(f.validate(Duration::from_secs(1)));
        assert!(!f.is_configured());
        assert!(!f.ack("n"));
    }
}

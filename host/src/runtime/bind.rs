//! From a haresources token to a runnable [`Resource`]: which agent runs it
//! (built-in, `resource.d/NAME.wasm`, or a heartbeat/LSB script granted in
//! agents.toml) and under which grant (built-in default, then the policy
//! file's `[agent.NAME]` and `[resource."TOKEN"]` sections).

use std::path::{Path, PathBuf};

use super::{
    agent_decl, bind_args, builtin, AgentError, LoadError, LoadedAgent, Resource, Runtime,
};
use crate::config::agents::mask_rule;
use crate::config::check::GrantText;
use crate::config::token::{AgentRef, ResourceToken};
use crate::grant::policy::{self, Policy};
use crate::grant::{self, Grant, GrantError, Subject};

/// Why a resource could not be bound to an agent.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The agent could not be found or loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The grant could not be computed (a bad parameter value for a
    /// template, a bad agents.toml item).
    #[error("{0}")]
    Grant(#[from] GrantError),
    /// The agent rejected the arguments or failed to describe itself.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// heartbeat would run this script, but agents.toml does not grant it.
    #[error("no agent named {name:?}; heartbeat would run the script {}, which wasmbeat runs as an LSB script only when agents.toml grants it: add [lsb.{name}] to {}", script.display(), policy_file.display())]
    UngrantedScript {
        /// The name in haresources.
        name: String,
        /// The script heartbeat would run.
        script: PathBuf,
        /// The policy file to edit.
        policy_file: PathBuf,
    },
    /// agents.toml grants the script, but it is not there.
    #[error("agents.toml grants [lsb.{name}] but no executable script exists at {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or "))]
    ScriptMissing {
        /// The name in haresources.
        name: String,
        /// Where it was looked for.
        tried: Vec<PathBuf>,
    },
}

impl BindError {
    /// The OCF exit code for `wasmbeat agent` (5 not installed, 4 not
    /// granted, 2 bad arguments).
    pub fn ocf_exit_code(&self) -> i32 {
        match self {
            BindError::Load(LoadError::NotFound { .. }) | BindError::ScriptMissing { .. } => 5,
            BindError::Load(_) => 1,
            BindError::Grant(_) => 2,
            BindError::Agent(e) => e.ocf_exit_code(),
            BindError::UngrantedScript { .. } => 4,
        }
    }
}

/// The agent a token names, and for LSB scripts the script it runs.
pub struct Resolved {
    /// The loaded agent.
    pub agent: LoadedAgent,
    /// The granted script, when the agent is the LSB agent.
    pub script: Option<PathBuf>,
}

/// Find and load the agent for `agent` the way the daemon does.
pub fn resolve_agent(
    rt: &Runtime,
    agent: &AgentRef,
    config_dir: &Path,
    policy: &Policy,
) -> Result<Resolved, BindError> {
    match rt.load(agent, config_dir) {
        Ok(a) => Ok(Resolved {
            agent: a,
            script: None,
        }),
        Err(LoadError::NotFound {
            name,
            path,
            builtins,
        }) => {
            let AgentRef::Name(n) = agent else {
                return Err(LoadError::NotFound {
                    name,
                    path,
                    builtins,
                }
                .into());
            };
            match policy.lsb_script(n, config_dir) {
                Some(Ok(script)) => Ok(Resolved {
                    agent: rt.load_lsb()?,
                    script: Some(script),
                }),
                Some(Err(tried)) => Err(BindError::ScriptMissing {
                    name: n.clone(),
                    tried,
                }),
                None => match policy::script_candidates(n, config_dir)
                    .into_iter()
                    .find(|p| p.is_file())
                {
                    Some(script) => Err(BindError::UngrantedScript {
                        name: n.clone(),
                        script,
                        policy_file: config_dir.join(policy::FILE),
                    }),
                    None => Err(LoadError::NotFound {
                        name,
                        path,
                        builtins,
                    }
                    .into()),
                },
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The grant a resource runs under: its agent's declared needs if the
/// agent is built in, then agents.toml, bound to the resource's arguments.
pub async fn grant_for(
    resolved: &Resolved,
    token: &ResourceToken,
    policy: &Policy,
) -> Result<Grant, BindError> {
    let meta = resolved.agent.meta_data().await?;
    let bound = bind_args(&meta, &agent_args(resolved, token))?;
    let decl = agent_decl(&meta);
    let agent_key = match &resolved.script {
        Some(_) => token.agent.display_name(),
        None => resolved.agent.name().to_string(),
    };
    let lsb = match (&resolved.script, &token.agent) {
        (Some(_), AgentRef::Name(n)) => policy.lsb.get_key_value(n.as_str()),
        _ => None,
    };
    let subject = Subject {
        agent: &decl,
        builtin: resolved.agent.is_builtin(),
        agent_key: &agent_key,
        resource: &token.text,
        bound: &bound,
        mask_rule: mask_rule(&token.agent.display_name()),
        lsb: lsb.map(|(k, v)| (k.as_str(), v)),
    };
    Ok(grant::resolve(subject, policy)?)
}

/// Bind a haresources token: resolve its agent, compute its grant, bind
/// its arguments.
pub async fn bind_resource(
    rt: &Runtime,
    token: &ResourceToken,
    config_dir: &Path,
    policy: &Policy,
) -> Result<Resource, BindError> {
    let resolved = resolve_agent(rt, &token.agent, config_dir, policy)?;
    bind_resolved(&resolved, token, policy).await
}

/// Bind a token to an agent already resolved (and loaded) for it.
pub async fn bind_resolved(
    resolved: &Resolved,
    token: &ResourceToken,
    policy: &Policy,
) -> Result<Resource, BindError> {
    let grant = grant_for(resolved, token, policy).await?;
    tracing::debug!(resource = %token.text, agent = %resolved.agent.name(), grant = %grant.describe(), "bound");
    let args = agent_args(resolved, token);
    let limits = grant.limits.effective();
    Ok(resolved
        .agent
        .instance_with_limits(&token.text, &args, grant, limits)
        .await?)
}

/// Every resource's effective grant, as `wasmbeat check` shows it: the
/// agent is resolved and loaded (its meta-data declares its needs) and the
/// grant computed exactly as the daemon will.
pub async fn explain_grants(
    rt: &Runtime,
    config_dir: &Path,
    groups: &[crate::config::ResourceGroup],
    policy: &Policy,
) -> Vec<Vec<GrantText>> {
    let mut out = Vec::new();
    for g in groups {
        let mut lines = Vec::new();
        for token in &g.resources {
            let grant = match resolve_agent(rt, &token.agent, config_dir, policy) {
                Ok(resolved) => grant_for(&resolved, token, policy).await,
                Err(e) => Err(e),
            };
            lines.push(match grant {
                Ok(g) => GrantText::Lines(g.lines()),
                Err(e) => GrantText::Error(e.to_string()),
            });
        }
        out.push(lines);
    }
    out
}

/// The arguments the agent receives: the token's, preceded by
/// `script=PATH` for the LSB agent.
pub fn agent_args(resolved: &Resolved, token: &ResourceToken) -> Vec<String> {
    match &resolved.script {
        Some(script) => std::iter::once(format!("script={}", script.display()))
            .chain(token.args.iter().cloned())
            .collect(),
        None => token.args.clone(),
    }
}

impl Runtime {
    /// Load the generic LSB/heartbeat-script agent.
    pub fn load_lsb(&self) -> Result<LoadedAgent, LoadError> {
        self.load_component("lsb", builtin::LSB, true)
    }
}

//! One OCF action of one agent: `wasmbeat ocf AGENT ACTION`.

use std::path::PathBuf;
use std::time::Duration;

use super::{metadata, params};
use crate::config::token::{AgentRef, ResourceToken};
use crate::grant::Policy;
use crate::runtime::bind::{self, Resolved};
use crate::runtime::cli::exit;
use crate::runtime::{bind_args, AgentError, Runtime, RuntimeConfig, Status};

/// The actions of the OCF resource agent API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `monitor` (and the older `status`).
    Monitor,
    /// `validate-all`.
    ValidateAll,
    /// `meta-data`.
    MetaData,
    /// `usage`, `help`.
    Usage,
    /// Anything else (notify, promote, demote, migrate_to, reload, ...):
    /// exit 3, which Pacemaker and ocf-tester read as "not offered".
    Unimplemented(String),
}

impl Action {
    /// The action named `s` as Pacemaker passes it.
    pub fn parse(s: &str) -> Action {
        match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" | "status" => Action::Monitor,
            "validate-all" => Action::ValidateAll,
            "meta-data" | "meta_data" => Action::MetaData,
            "usage" | "help" => Action::Usage,
            other => Action::Unimplemented(other.to_string()),
        }
    }
}

/// What `wasmbeat ocf` runs with.
#[derive(Debug, Clone)]
pub struct OcfOptions {
    /// Agents in `resource.d/`, grants in `agents.toml`.
    pub config_dir: PathBuf,
    /// Runtime settings; the action's deadline is shortened to fit
    /// Pacemaker's `OCF_RESKEY_CRM_meta_timeout`.
    pub runtime: RuntimeConfig,
}

/// Pacemaker kills the agent process at the operation's timeout; the
/// agent's own deadline ends a little earlier so the sandbox can stop
/// what the operation started and report a timeout instead of being
/// killed mid-way. A tenth of the timeout, at most 2 s, is kept back.
fn deadline_within(timeout_ms: u64) -> Duration {
    let t = Duration::from_millis(timeout_ms);
    t.saturating_sub((t / 10).min(Duration::from_secs(2)))
        .max(Duration::from_millis(100))
}

fn usage(agent: &str) -> String {
    format!("usage: {agent} {{start|stop|monitor|validate-all|meta-data}}  (ocf:wasmbeat:{agent}, parameters as OCF_RESKEY_name)")
}

fn fail(agent: &str, what: &str, code: i32) -> i32 {
    eprintln!("ocf:wasmbeat:{agent}: {what}");
    code
}

fn agent_error(agent: &str, action: &str, e: &AgentError) -> i32 {
    fail(agent, &format!("{action}: {e}"), e.ocf_exit_code())
}

/// Run `action` of agent `agent` with the parameters in `env` (the
/// process environment: `OCF_RESKEY_*`); messages go to stderr (Pacemaker
/// logs them), meta-data to stdout. Returns the OCF exit code.
pub async fn ocf_command(
    agent: &str,
    action: &Action,
    env: &[(String, String)],
    opts: &OcfOptions,
) -> i32 {
    let name = match action {
        Action::Usage => {
            println!("{}", usage(agent));
            return exit::OK;
        }
        Action::Unimplemented(a) => {
            // Quietly: Pacemaker and ocf-tester probe optional actions.
            eprintln!("ocf:wasmbeat:{agent}: action {a:?} is not offered");
            return exit::ERR_UNIMPLEMENTED;
        }
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Monitor => "monitor",
        Action::ValidateAll => "validate-all",
        Action::MetaData => "meta-data",
    };
    let mut config = opts.runtime.clone();
    let crm_timeout = env
        .iter()
        .find(|(k, _)| k == "OCF_RESKEY_CRM_meta_timeout")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    if let Some(ms) = crm_timeout {
        let d = deadline_within(ms);
        let dl = &mut config.deadlines;
        match action {
            Action::Start => dl.start = d,
            Action::Stop => dl.stop = d,
            Action::Monitor => dl.monitor = d,
            Action::ValidateAll => dl.validate = d,
            _ => {}
        }
    }
    let meta_deadlines = opts.runtime.deadlines;
    let rt = match Runtime::new(config) {
        Ok(rt) => rt,
        Err(e) => return fail(agent, &e.to_string(), exit::ERR_GENERIC),
    };
    if !super::install::valid_agent_name(agent) {
        return fail(
            agent,
            "not an agent name (letters, digits, ._- only)",
            exit::ERR_INSTALLED,
        );
    }
    let agent_ref = AgentRef::Name(agent.to_string());
    // The agent is loaded directly, never as a granted LSB script:
    // Pacemaker runs those itself (lsb:NAME).
    let loaded = match rt.load(&agent_ref, &opts.config_dir) {
        Ok(a) => a,
        Err(e) => {
            return fail(
                agent,
                &e.to_string(),
                bind::BindError::from(e).ocf_exit_code(),
            )
        }
    };
    let meta = match loaded.meta_data().await {
        Ok(m) => m,
        Err(e) => return agent_error(agent, "meta-data", &e),
    };
    if *action == Action::MetaData {
        print!("{}", metadata::xml(&meta, &meta_deadlines));
        return exit::OK;
    }
    let (policy, diags) = Policy::load(&opts.config_dir);
    if crate::config::diag::has_errors(&diags) {
        for d in diags.iter().filter(|d| d.is_error()) {
            eprintln!("ocf:wasmbeat:{agent}: {d}");
        }
        return exit::ERR_CONFIGURED;
    }
    let args = match params::from_env(&meta, env.iter().map(|(k, v)| (k, v))) {
        Ok(a) => a,
        Err(e) => return fail(agent, &e.to_string(), exit::ERR_CONFIGURED),
    };
    if let Err(e) = bind_args(&meta, &args) {
        return fail(agent, &e.to_string(), exit::ERR_CONFIGURED);
    }
    let token = ResourceToken {
        text: params::resource_text(&meta, agent, &args, &policy),
        agent: agent_ref,
        args,
    };
    let resolved = Resolved {
        agent: loaded,
        script: None,
    };
    let res = match bind::bind_resolved(&resolved, &token, &policy).await {
        Ok(r) => r,
        Err(e) => {
            // A grant template that cannot be filled from these
            // parameters is a configuration error like a bad parameter.
            // (A grant error names the resource itself.)
            return match &e {
                bind::BindError::Grant(_) => fail(agent, &e.to_string(), exit::ERR_CONFIGURED),
                other => fail(
                    agent,
                    &format!("{}: {e}", token.text),
                    other.ocf_exit_code(),
                ),
            };
        }
    };
    let code = match action {
        Action::Start => res
            .start()
            .await
            .map_or_else(|e| agent_error(agent, name, &e), |()| exit::OK),
        Action::Stop => res
            .stop()
            .await
            .map_or_else(|e| agent_error(agent, name, &e), |()| exit::OK),
        Action::ValidateAll => res
            .validate()
            .await
            .map_or_else(|e| agent_error(agent, name, &e), |()| exit::OK),
        Action::Monitor => match res.monitor().await {
            Ok(Status::Running) => exit::OK,
            Ok(Status::NotRunning) => exit::NOT_RUNNING,
            Ok(Status::Failed) => fail(
                agent,
                "monitor: active but not working (the agent reports failed)",
                exit::ERR_GENERIC,
            ),
            Err(e) => agent_error(agent, name, &e),
        },
        Action::MetaData | Action::Usage | Action::Unimplemented(_) => {
            unreachable!("answered above")
        }
    };
    // Announcements continue after start returns; this short-lived
    // process must not cut them off.
    rt.wait_background().await;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_as_pacemaker_names_them() {
        assert_eq!(Action::parse("status"), Action::Monitor);
        assert_eq!(Action::parse("validate-all"), Action::ValidateAll);
        assert_eq!(
            Action::parse("notify"),
            Action::Unimplemented("notify".into())
        );
    }

    #[test]
    fn deadline_keeps_a_margin_inside_pacemakers_timeout() {
        assert_eq!(deadline_within(20_000), Duration::from_secs(18));
        assert_eq!(deadline_within(60_000), Duration::from_secs(58));
        assert_eq!(deadline_within(50), Duration::from_millis(100));
    }
}

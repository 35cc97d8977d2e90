//! `wasmbeat agent TOKEN OP`: run one agent operation by hand, as
//! heartbeat's `/etc/ha.d/resource.d/IPaddr 10.0.0.1 start` does, with
//! OCF exit codes.

use std::path::PathBuf;

use super::{bind, conformance, AgentError, Meta, Runtime, RuntimeConfig, Status};
use crate::config::token::ResourceToken;
use crate::grant::Policy;

/// OCF exit codes used by the CLI.
pub mod exit {
    /// Success / running.
    pub const OK: i32 = 0;
    /// Generic error.
    pub const ERR_GENERIC: i32 = 1;
    /// Invalid arguments.
    pub const ERR_ARGS: i32 = 2;
    /// The action is not offered (OCF agents: notify, promote, ...).
    pub const ERR_UNIMPLEMENTED: i32 = 3;
    /// Insufficient privilege (also: call denied by the grant).
    pub const ERR_PERM: i32 = 4;
    /// Agent or something it needs is not installed.
    pub const ERR_INSTALLED: i32 = 5;
    /// Configuration cannot work here.
    pub const ERR_CONFIGURED: i32 = 6;
    /// Not running.
    pub const NOT_RUNNING: i32 = 7;
}

/// The operations `wasmbeat agent` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliOp {
    /// Bring the resource up.
    Start,
    /// Take it down.
    Stop,
    /// Print `running` or `stopped` (heartbeat's status).
    Status,
    /// Exit 0 if running, 7 if not (OCF monitor).
    Monitor,
    /// Print the agent's parameters (OCF resource-agent XML).
    MetaData,
    /// Check the arguments.
    Validate,
}

/// Options of `wasmbeat agent`.
#[derive(Debug, Clone)]
pub struct AgentCliOptions {
    /// heartbeat's configuration directory (`resource.d/` is looked up in it).
    pub config_dir: PathBuf,
    /// Runtime settings (cache directory, limits).
    pub runtime: RuntimeConfig,
}

/// What every `wasmbeat agent` command needs: the parsed token, a
/// runtime, agents.toml and the resolved agent. Errors are printed; the
/// exit code is returned.
struct Prepared {
    token: ResourceToken,
    rt: Runtime,
    policy: Policy,
    resolved: bind::Resolved,
}

fn prepare(token: &str, opts: &AgentCliOptions) -> Result<Prepared, i32> {
    let token = ResourceToken::parse(token).map_err(|e| {
        eprintln!("wasmbeat agent: {e}");
        exit::ERR_ARGS
    })?;
    let rt = Runtime::new(opts.runtime.clone()).map_err(|e| {
        eprintln!("wasmbeat agent: {e}");
        exit::ERR_GENERIC
    })?;
    let (policy, diags) = Policy::load(&opts.config_dir);
    if crate::config::diag::has_errors(&diags) {
        for d in &diags {
            eprintln!("wasmbeat agent: {d}");
        }
        return Err(exit::ERR_CONFIGURED);
    }
    let resolved =
        bind::resolve_agent(&rt, &token.agent, &opts.config_dir, &policy).map_err(|e| {
            eprintln!("wasmbeat agent: {e}");
            e.ocf_exit_code()
        })?;
    Ok(Prepared {
        token,
        rt,
        policy,
        resolved,
    })
}

/// Run one operation; returns the process exit code. Messages go to
/// stderr, results (status word, meta-data) to stdout.
pub async fn agent_command(token: &str, op: CliOp, opts: &AgentCliOptions) -> i32 {
    let Prepared {
        token,
        rt,
        policy,
        resolved,
    } = match prepare(token, opts) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if op == CliOp::MetaData {
        return match resolved.agent.meta_data().await {
            Ok(m) => {
                print!("{}", meta_xml(&m));
                exit::OK
            }
            Err(e) => report(&token, "meta-data", &e),
        };
    }
    let res = match bind::bind_resolved(&resolved, &token, &policy).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wasmbeat agent: {token}: {e}");
            return e.ocf_exit_code();
        }
    };
    let code = match op {
        CliOp::Start => res
            .start()
            .await
            .map_or_else(|e| report(&token, "start", &e), |()| exit::OK),
        CliOp::Stop => res
            .stop()
            .await
            .map_or_else(|e| report(&token, "stop", &e), |()| exit::OK),
        CliOp::Validate => res
            .validate()
            .await
            .map_or_else(|e| report(&token, "validate", &e), |()| exit::OK),
        CliOp::Status | CliOp::Monitor => match res.monitor().await {
            Ok(Status::Running) => {
                if op == CliOp::Status {
                    println!("running");
                }
                exit::OK
            }
            Ok(Status::NotRunning) => {
                if op == CliOp::Status {
                    println!("stopped");
                }
                exit::NOT_RUNNING
            }
            Ok(Status::Failed) => {
                if op == CliOp::Status {
                    println!("failed");
                }
                exit::ERR_GENERIC
            }
            Err(e) => report(&token, "monitor", &e),
        },
        CliOp::MetaData => unreachable!("handled above"),
    };
    // Announcements continue after start returns; a short-lived process
    // must not cut them off.
    rt.wait_background().await;
    code
}

/// `wasmbeat agent test TOKEN`: the conformance sequence (see
/// [`conformance`]); prints one line per step and returns 0 only when no
/// step failed. `context` names where it runs (the scratch namespace or
/// the current one) for the header.
pub async fn agent_test_command(token: &str, opts: &AgentCliOptions, context: &str) -> i32 {
    let Prepared {
        token,
        rt,
        policy,
        resolved,
    } = match prepare(token, opts) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let origin = match (&token.agent, resolved.agent.is_builtin()) {
        (_, true) => "built-in".to_string(),
        (crate::config::token::AgentRef::WasmPath(p), _) => p.display().to_string(),
        (crate::config::token::AgentRef::Name(n), _) => opts
            .config_dir
            .join("resource.d")
            .join(format!("{n}.wasm"))
            .display()
            .to_string(),
    };
    println!("wasmbeat agent test {token} ({origin}; {context})");
    let mut report = conformance::Report::default();
    let args = bind::agent_args(&resolved, &token);
    let t0 = std::time::Instant::now();
    let meta = resolved.agent.meta_data().await;
    let meta_ok = conformance::meta_step(&mut report, meta, t0.elapsed(), &args);
    if meta_ok {
        let bound = bind::bind_resolved(&resolved, &token, &policy)
            .await
            .map_err(|e| e.to_string());
        match bound {
            Ok(res) => {
                report = conformance::run_sequence(report, &res, &opts.runtime.deadlines).await;
            }
            Err(e) => conformance::skip_rest(&mut report, &format!("cannot bind: {e}")),
        }
    } else {
        conformance::skip_rest(&mut report, "meta-data failed");
    }
    rt.wait_background().await;
    print!("{}", report.render());
    if report.passed() {
        exit::OK
    } else {
        exit::ERR_GENERIC
    }
}

fn report(token: &ResourceToken, op: &str, e: &AgentError) -> i32 {
    eprintln!("wasmbeat agent: {token} {op}: {e}");
    e.ocf_exit_code()
}

/// The agent's meta-data as OCF resource-agent XML (what `crm`/`pcs`
/// and humans read from an OCF agent's `meta-data`), with the default
/// deadlines as action timeouts.
pub fn meta_xml(m: &Meta) -> String {
    crate::ocf::metadata::xml(m, &super::Deadlines::default())
}

//! `wasmbeat fence test AGENT key=value... [--node N] [--action A]`: check a
//! fence agent the way `wasmbeat agent test` checks resource agents:
//! meta-data well-formed, arguments bind, validate, list, status; the
//! destructive actions (off, reset, on) only when asked for.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::device::{self, Entry, PlanKind};
use super::world::{Answer, Op};
use super::{FenceAction, Fencing, Imp, PowerState};
use crate::grant::Policy;
use crate::runtime::{Runtime, RuntimeConfig};

/// Options of `wasmbeat fence test`.
#[derive(Debug, Clone)]
pub struct FenceTestOptions {
    /// heartbeat's configuration directory (`resource.d/`, `agents.toml`).
    pub config_dir: PathBuf,
    /// Runtime settings (cache directory, limits).
    pub runtime: RuntimeConfig,
    /// The node for status and the action (default: the first listed).
    pub node: Option<String>,
    /// An action to run besides list and status.
    pub action: Option<FenceAction>,
    /// Deadline of each step.
    pub timeout: Duration,
}

struct Report {
    steps: usize,
    failed: usize,
}

impl Report {
    fn step(&mut self, name: &str, t: Option<Duration>, r: Result<String, String>) -> bool {
        self.steps += 1;
        let time = t.map_or(String::new(), |t| {
            format!("{:.1} ms", t.as_secs_f64() * 1000.0)
        });
        let (tag, text, ok) = match r {
            Ok(s) => ("PASS", s, true),
            Err(s) => {
                self.failed += 1;
                ("FAIL", s, false)
            }
        };
        println!("  {tag}  {name:<12} {time:>10}  {text}");
        ok
    }

    fn skip(&self, name: &str, why: &str) {
        println!("  SKIP  {name:<12} {:>10}  {why}", "");
    }
}

/// Run the test; the exit code (0: every step passed).
pub async fn fence_test_command(agent: &str, params: &[String], opts: &FenceTestOptions) -> i32 {
    println!("wasmbeat fence test {agent} {}", params.join(" "));
    let mut rep = Report {
        steps: 0,
        failed: 0,
    };
    let (policy, pdiags) = Policy::load(&opts.config_dir);
    for d in pdiags.iter().filter(|d| d.is_error()) {
        eprintln!("{d}");
    }
    let entry = Entry {
        directive: agent.to_string(),
        file: "fence test",
        line: 0,
        kind: agent,
        params: params.to_vec(),
    };
    let plan = match device::plan_entry(&entry, &policy, &opts.config_dir) {
        Ok(p) => {
            rep.step("resolve", None, Ok(p.describe()));
            p
        }
        Err(diags) => {
            let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            rep.step("resolve", None, Err(text.join("; ")));
            return finish(&rep);
        }
    };
    let is_meatware = matches!(plan.kind, PlanKind::Meatware { .. });
    let rt = match Runtime::new(opts.runtime.clone()) {
        Ok(rt) => rt,
        Err(e) => {
            rep.step("load", None, Err(e.to_string()));
            return finish(&rep);
        }
    };
    let t = Instant::now();
    let fencing = match Fencing::from_plans(vec![plan], &rt) {
        Ok(f) => {
            rep.step("load", Some(t.elapsed()), Ok("loaded".into()));
            f
        }
        Err(e) => {
            rep.step("load", Some(t.elapsed()), Err(e.to_string()));
            return finish(&rep);
        }
    };
    let dev = &fencing.inner.devices[0];
    let deadline = opts.timeout;

    if let Imp::Agent { agent, params, .. } = &dev.imp {
        let t = Instant::now();
        let meta = tokio::time::timeout(deadline, agent.meta_data()).await;
        let meta = match meta {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                rep.step("meta-data", Some(t.elapsed()), Err(e.to_string()));
                return finish(&rep);
            }
            Err(_) => {
                rep.step(
                    "meta-data",
                    Some(t.elapsed()),
                    Err(format!("no answer within {deadline:?}")),
                );
                return finish(&rep);
            }
        };
        let problems = meta_problems(&meta);
        let bound = super::bind(&meta, params);
        let r = match (problems.is_empty(), &bound) {
            (true, Ok(b)) => Ok(format!(
                "{} {}, {} parameter(s); bound: {}",
                meta.name,
                meta.version,
                meta.params.len(),
                b.iter()
                    .map(|(k, v)| if device_secret(k) {
                        format!("{k}=(hidden)")
                    } else {
                        format!("{k}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            (_, Err(e)) => Err(format!(
                "{}{e}",
                problems
                    .iter()
                    .map(|p| format!("{p}; "))
                    .collect::<String>()
            )),
            (false, Ok(_)) => Err(problems.join("; ")),
        };
        if !rep.step("meta-data", Some(t.elapsed()), r) {
            return finish(&rep);
        }
        let t = Instant::now();
        let r = dev
            .validate(deadline)
            .await
            .map(|()| "ok".to_string())
            .map_err(|e| e.to_string());
        rep.step("validate", Some(t.elapsed()), r);
    }

    let t = Instant::now();
    let end = tokio::time::Instant::now() + deadline;
    let listed = dev.list(deadline, end).await;
    let nodes = match listed {
        Ok(n) => {
            let r = if n.is_empty() {
                Err("the device lists no node: it could fence nothing".to_string())
            } else {
                Ok(n.join(", "))
            };
            rep.step("list", Some(t.elapsed()), r);
            n
        }
        Err(e) => {
            rep.step("list", Some(t.elapsed()), Err(e.to_string()));
            Vec::new()
        }
    };
    let node = opts.node.clone().or_else(|| nodes.first().cloned());
    match &node {
        None => rep.skip("status", "no node (give --node)"),
        Some(n) => {
            let t = Instant::now();
            let end = tokio::time::Instant::now() + deadline;
            let r = if is_meatware {
                Ok(format!(
                    "{n}: {} (meatware cannot tell)",
                    PowerState::Unknown
                ))
            } else {
                match dev.run(Op::Status(n.clone()), deadline, end).await {
                    Ok(Answer::Power(p)) => Ok(format!("{n}: {}", PowerState::from(p))),
                    Ok(_) => Err("status returned no power state".into()),
                    Err(e) => Err(e.to_string()),
                }
            };
            rep.step("status", Some(t.elapsed()), r);
            if !nodes.is_empty() && !nodes.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                rep.step(
                    "listed",
                    None,
                    Err(format!("{n} is not among the listed nodes")),
                );
            }
        }
    }

    match opts.action {
        None | Some(FenceAction::List) | Some(FenceAction::Status) => rep.skip(
            "action",
            "off/reset/on only with --action (they power nodes off)",
        ),
        Some(a) => match (&opts.node, is_meatware) {
            (None, _) => {
                rep.step(
                    &a.to_string(),
                    None,
                    Err(format!(
                        "--action {a} needs --node NODE (never a guessed node)"
                    )),
                );
            }
            (Some(_), true) => {
                rep.step(&a.to_string(), None, Err("meatware waits for an operator's `wasmbeat fence-ack NODE` in the daemon; `fence test` does not run it".into()));
            }
            (Some(n), false) => {
                let t = Instant::now();
                let end = tokio::time::Instant::now() + deadline;
                let r = dev
                    .act(n, a, deadline, end, &fencing.inner.acks)
                    .await
                    .map(|_| format!("{a} {n}: done"))
                    .map_err(|e| e.to_string());
                rep.step(&a.to_string(), Some(t.elapsed()), r);
            }
        },
    }
    finish(&rep)
}

fn device_secret(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["token", "pass", "secret", "key", "community"]
        .iter()
        .any(|s| k.contains(s))
}

/// What is wrong with a fence agent's meta-data.
fn meta_problems(m: &super::world::FenceMeta) -> Vec<String> {
    let mut out = Vec::new();
    if m.name.trim().is_empty() {
        out.push("meta-data has no name".to_string());
    }
    if m.version.trim().is_empty() {
        out.push("meta-data has no version".to_string());
    }
    if m.description.trim().is_empty() {
        out.push("meta-data has no description".to_string());
    }
    for (i, p) in m.params.iter().enumerate() {
        if p.name.is_empty()
            || !p
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push(format!("parameter {:?}: not a key=value name", p.name));
        }
        if m.params[..i].iter().any(|q| q.name == p.name) {
            out.push(format!("parameter {} is declared twice", p.name));
        }
        if p.description.trim().is_empty() {
            out.push(format!("parameter {} has no description", p.name));
        }
        if let Some(d) = &p.default {
            let ty = crate::runtime::agent_decl(&super::world::as_meta(m)).params[i].ty;
            if let Err(e) = wasmbeat_args::value::check(ty, d) {
                out.push(format!("parameter {}: default {d:?}: {e}", p.name));
            }
        }
    }
    out
}

fn finish(rep: &Report) -> i32 {
    if rep.failed == 0 {
        println!("PASSED: {} steps, no failure", rep.steps);
        0
    } else {
        println!("FAILED: {} of {} steps", rep.failed, rep.steps);
        1
    }
}

//! Notify hooks (`[notify.NAME]` in agents.toml): a command run on each
//! state change an operator wants to hear about, with the event as its
//! last four arguments: CAUSE NODE WHAT WHY.
//!
//! The heartbeat loop only queues the event (never waits); one worker on
//! the agents' runtime runs the hooks in the order the changes happened,
//! one at a time, each confined like an agent's command (its own process
//! group and cgroup, no_new_privs, the granted capabilities only, `nobody`
//! unless the grant says otherwise, an environment of only PATH) and killed
//! with everything it started at its timeout. A full queue drops the event
//! and says so: a stuck pager script must not grow the daemon without bound.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::caps::process::ProcessTable;
use crate::cluster::{Cause, StateChange};
use crate::confine::launch::Launch;
use crate::confine::ProcessLimits;
use crate::grant::policy::NotifyHook;

/// Events waiting for the worker; beyond this they are dropped (counted).
const QUEUE: usize = 256;

/// One event on its way to the hooks configured when it happened.
struct Event {
    cause: Cause,
    what: String,
    why: String,
    hooks: Arc<Vec<NotifyHook>>,
}

/// The loop's handle on the hook worker.
pub struct Hooks {
    /// Shared with queued events, so the loop never copies a hook.
    hooks: Arc<Vec<NotifyHook>>,
    node: String,
    tx: Option<mpsc::Sender<Event>>,
    dropped: u64,
}

impl Hooks {
    /// Start the worker on `ops` (nothing runs when `hooks` is empty).
    pub fn start(hooks: Vec<NotifyHook>, node: &str, ops: &tokio::runtime::Handle) -> Hooks {
        let tx = (!hooks.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            ops.spawn(worker(rx, node.to_string()));
            tx
        });
        for h in &hooks {
            tracing::info!(
                "notify hook {} runs {} as {} on: {}",
                h.name,
                h.argv.join(" "),
                h.user,
                h.events
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Hooks {
            hooks: Arc::new(hooks),
            node: node.to_string(),
            tx,
            dropped: 0,
        }
    }

    /// The hooks of a reloaded configuration; queued events keep theirs.
    pub fn replace(&mut self, hooks: Vec<NotifyHook>, ops: &tokio::runtime::Handle) {
        if hooks != *self.hooks {
            let dropped = self.dropped;
            *self = Hooks::start(hooks, &self.node, ops);
            self.dropped = dropped;
        }
    }

    /// Queue `change` for every hook that wants its cause.
    pub fn on_change(&mut self, change: &StateChange) {
        let Some(tx) = &self.tx else {
            return;
        };
        if !self.hooks.iter().any(|h| h.events.contains(&change.cause)) {
            return;
        }
        let event = Event {
            cause: change.cause,
            what: change.what.clone(),
            why: change.why.clone(),
            hooks: Arc::clone(&self.hooks),
        };
        if tx.try_send(event).is_err() {
            self.dropped += 1;
            tracing::warn!(
                "notify hooks are {QUEUE} events behind: dropped \"{}\" ({} dropped so far)",
                change.what,
                self.dropped
            );
        }
    }
}

async fn worker(mut rx: mpsc::Receiver<Event>, node: String) {
    // One table (one cgroup) for every hook process.
    let table = ProcessTable::new("notify-hooks", ProcessLimits::default());
    while let Some(e) = rx.recv().await {
        for hook in e.hooks.iter().filter(|h| h.events.contains(&e.cause)) {
            let mut argv = hook.argv.clone();
            argv.extend([
                e.cause.as_str().to_string(),
                node.clone(),
                e.what.clone(),
                e.why.clone(),
            ]);
            let launch = Launch {
                argv,
                user: Some(hook.user.clone()),
                capabilities: hook.capabilities.iter().map(|c| c.linux_name()).collect(),
            };
            let started = std::time::Instant::now();
            match table.run(&launch, hook.timeout).await {
                Ok(out) if out.exit_code == Some(0) => tracing::debug!(
                    "notify hook {} ran for {} in {:.0} ms",
                    hook.name,
                    e.cause.as_str(),
                    started.elapsed().as_secs_f64() * 1000.0
                ),
                Ok(out) => tracing::warn!(
                    "notify hook {} failed for \"{}\": exit {:?}{}; stderr: {}",
                    hook.name,
                    e.what,
                    out.exit_code,
                    out.signal
                        .map(|s| format!(", signal {s}"))
                        .unwrap_or_default(),
                    crate::logging::untrusted::sanitize_bytes(
                        &out.stderr,
                        crate::logging::untrusted::MAX_LINE_BYTES
                    )
                ),
                Err(err) => {
                    tracing::warn!("notify hook {} failed for \"{}\": {err}", hook.name, e.what)
                }
            }
        }
    }
}

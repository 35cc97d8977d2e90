//! Ordered operations over one resource group.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A boxed future returned by [`Resource`] operations.
pub type ResourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// One resource of a group, as the group runner drives it. The daemon
/// implements it over the agent runtime; tests implement it over a script.
pub trait Resource: Send + Sync {
    /// The haresources token, for logs (`IPaddr::10.0.0.10/24`).
    fn name(&self) -> &str;
    /// Bring the resource up; idempotent.
    fn start(&self) -> ResourceFuture<'_, ()>;
    /// Take the resource down; idempotent.
    fn stop(&self) -> ResourceFuture<'_, ()>;
    /// Whether the resource runs here.
    fn monitor(&self) -> ResourceFuture<'_, bool>;
    /// SIGKILL every process the resource started (its cgroup); how many.
    /// The escalation when its agent's stop keeps failing.
    fn kill_processes(&self) -> ResourceFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }
}

/// Which way a group operation goes: the engine's one `Op`.
pub use crate::cluster::Op as GroupOp;

/// What happened to one resource during a group operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// The resource token.
    pub resource: String,
    /// What was done: "started", "already running", "stopped", "failed: ...".
    pub outcome: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// The result of one group operation, with per-resource detail for the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupReport {
    /// Start or stop.
    pub op: GroupOp,
    /// Whether the group reached the requested state.
    pub ok: bool,
    /// The first failure, if any, naming the resource.
    pub failure: Option<String>,
    /// Per-resource steps in the order they ran.
    pub steps: Vec<StepReport>,
    /// Wall time of the whole operation.
    pub elapsed: Duration,
}

/// How many times a failing stop is retried, and how far apart
/// (heartbeat's `HA_STOPRETRYMAX` default 10, 1 s apart).
#[derive(Debug, Clone, Copy)]
pub struct StopRetry {
    /// Attempts in all.
    pub attempts: u32,
    /// Pause between attempts.
    pub pause: Duration,
}

impl Default for StopRetry {
    fn default() -> Self {
        StopRetry {
            attempts: 10,
            pause: Duration::from_secs(1),
        }
    }
}

/// Acquire a group: for each resource left to right, start it. One that
/// monitor says already runs is started again all the same (starts are
/// idempotent, `wasmbeat agent test` checks it): an address that stayed up
/// through a crash is announced again, so neighbours that learnt the
/// peer's MAC meanwhile come back (heartbeat skips it, and its clients wait
/// for their neighbour entry to time out). On the first failure, stop what this call
/// started (right to left) and report the group failed, as heartbeat's
/// `takegroup` gives the whole group up.
pub async fn start_group(resources: &[Box<dyn Resource>], retry: StopRetry) -> GroupReport {
    let began = Instant::now();
    let mut steps = Vec::new();
    for r in resources {
        let t = Instant::now();
        if let Ok(true) = r.monitor().await {
            let outcome = match r.start().await {
                Ok(()) => "already running; started again".to_string(),
                // It runs: a failed repeat (an announcement refused) is
                // reported, not a reason to give the group up.
                Err(e) => format!("already running; starting again failed: {e}"),
            };
            steps.push(step(r.name(), &outcome, t));
            continue;
        }
        match r.start().await {
            Ok(()) => {
                steps.push(step(r.name(), "started", t));
            }
            Err(e) => {
                let failure = format!("{}: {e}", r.name());
                steps.push(step(r.name(), &format!("failed: {e}"), t));
                // Give the whole group up, right to left, as heartbeat's
                // givegroup does: stop is idempotent, and a resource that
                // failed half-way may have left something running.
                for r in resources.iter().rev() {
                    let t = Instant::now();
                    let outcome = stop_with_retry(r.as_ref(), retry).await;
                    steps.push(step(r.name(), &outcome.unwrap_or_else(|e| e), t));
                }
                return GroupReport {
                    op: GroupOp::Start,
                    ok: false,
                    failure: Some(failure),
                    steps,
                    elapsed: began.elapsed(),
                };
            }
        }
    }
    GroupReport {
        op: GroupOp::Start,
        ok: true,
        failure: None,
        steps,
        elapsed: began.elapsed(),
    }
}

/// Release a group: stop every resource right to left (idempotent, so also
/// resources that never ran), retrying a failing stop. A stop that keeps
/// failing fails the group but the remaining resources are still stopped.
pub async fn stop_group(resources: &[Box<dyn Resource>], retry: StopRetry) -> GroupReport {
    let began = Instant::now();
    let mut steps = Vec::new();
    let mut failure = None;
    for r in resources.iter().rev() {
        let t = Instant::now();
        match stop_with_retry(r.as_ref(), retry).await {
            Ok(outcome) => steps.push(step(r.name(), &outcome, t)),
            Err(e) => {
                failure.get_or_insert_with(|| format!("{}: {e}", r.name()));
                steps.push(step(r.name(), &e, t));
            }
        }
    }
    GroupReport {
        op: GroupOp::Stop,
        ok: failure.is_none(),
        failure,
        steps,
        elapsed: began.elapsed(),
    }
}

async fn stop_with_retry(r: &dyn Resource, retry: StopRetry) -> Result<String, String> {
    let mut last = String::new();
    for attempt in 1..=retry.attempts.max(1) {
        match r.stop().await {
            Ok(()) if attempt == 1 => return Ok("stopped".into()),
            Ok(()) => return Ok(format!("stopped (attempt {attempt})")),
            Err(e) => last = e,
        }
        if attempt < retry.attempts {
            tokio::time::sleep(retry.pause).await;
        }
    }
    // Escalate before giving up: what the resource started is killed and
    // the stop asked again. heartbeat reboots the node here; a resource
    // left half-running blocks every move of its group.
    let killed = r.kill_processes().await.unwrap_or(0);
    if killed > 0 {
        tracing::warn!(
            "{}: stop failed ({last}); killed {killed} process(es) it started, stopping again",
            r.name()
        );
        match r.stop().await {
            Ok(()) => {
                return Ok(format!(
                    "stopped after killing {killed} process(es) its stop left running"
                ))
            }
            Err(e) => last = e,
        }
    }
    // Still failing: report, and let the operator (or fencing) decide.
    Err(format!(
        "stop failed {} times: {last}",
        retry.attempts.max(1)
    ))
}

fn step(resource: &str, outcome: &str, since: Instant) -> StepReport {
    StepReport {
        resource: resource.to_string(),
        outcome: outcome.to_string(),
        elapsed: since.elapsed(),
    }
}

impl GroupReport {
    /// One line for the operator: what ran, in which order, how long.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{} {} ({:.1} ms)", s.resource, s.outcome, ms(s.elapsed)))
            .collect();
        format!("{}; total {:.1} ms", steps.join(", "), ms(self.elapsed))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A scripted resource recording every call into a shared journal.
    struct Scripted {
        name: String,
        running: Mutex<bool>,
        fail_start: bool,
        stop_failures: Mutex<u32>,
        journal: Arc<Mutex<Vec<String>>>,
    }

    impl Scripted {
        fn new(name: &str, journal: &Arc<Mutex<Vec<String>>>) -> Scripted {
            Scripted {
                name: name.into(),
                running: Mutex::new(false),
                fail_start: false,
                stop_failures: Mutex::new(0),
                journal: journal.clone(),
            }
        }
    }

    impl Resource for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn start(&self) -> ResourceFuture<'_, ()> {
            Box::pin(async move {
                self.journal
                    .lock()
                    .unwrap()
                    .push(format!("start {}", self.name));
                if self.fail_start {
                    return Err("port in use".into());
                }
                *self.running.lock().unwrap() = true;
                Ok(())
            })
        }
        fn stop(&self) -> ResourceFuture<'_, ()> {
            Box::pin(async move {
                self.journal
                    .lock()
                    .unwrap()
                    .push(format!("stop {}", self.name));
                let mut left = self.stop_failures.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err("busy".into());
                }
                *self.running.lock().unwrap() = false;
                Ok(())
            })
        }
        fn monitor(&self) -> ResourceFuture<'_, bool> {
            Box::pin(async move { Ok(*self.running.lock().unwrap()) })
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    const FAST: StopRetry = StopRetry {
        attempts: 3,
        pause: Duration::from_millis(1),
    };

    #[test]
    fn start_goes_left_to_right_and_stop_right_to_left() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let group: Vec<Box<dyn Resource>> = ["ip", "named", "httpd"]
            .iter()
            .map(|n| Box::new(Scripted::new(n, &j)) as Box<dyn Resource>)
            .collect();
        let up = rt().block_on(start_group(&group, FAST));
        assert!(up.ok, "{up:?}");
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(down.ok);
        assert_eq!(
            *j.lock().unwrap(),
            [
                "start ip",
                "start named",
                "start httpd",
                "stop httpd",
                "stop named",
                "stop ip"
            ]
        );
    }

    #[test]
    fn already_running_resources_are_started_again_to_announce_them() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let a = Scripted::new("ip", &j);
        *a.running.lock().unwrap() = true;
        let group: Vec<Box<dyn Resource>> = vec![Box::new(a), Box::new(Scripted::new("httpd", &j))];
        let up = rt().block_on(start_group(&group, FAST));
        assert_eq!(up.steps[0].outcome, "already running; started again");
        assert_eq!(*j.lock().unwrap(), ["start ip", "start httpd"]);
    }

    #[test]
    fn a_failed_start_gives_the_whole_group_up() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let mut bad = Scripted::new("httpd", &j);
        bad.fail_start = true;
        let group: Vec<Box<dyn Resource>> = vec![
            Box::new(Scripted::new("ip", &j)),
            Box::new(bad),
            Box::new(Scripted::new("mysqld", &j)),
        ];
        let up = rt().block_on(start_group(&group, FAST));
        assert!(!up.ok);
        assert_eq!(up.failure.as_deref(), Some("httpd: port in use"));
        assert_eq!(
            *j.lock().unwrap(),
            [
                "start ip",
                "start httpd",
                "stop mysqld",
                "stop httpd",
                "stop ip"
            ]
        );
    }

    #[test]
    fn a_failing_stop_is_retried_then_reported() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let flaky = Scripted::new("httpd", &j);
        *flaky.stop_failures.lock().unwrap() = 2;
        let group: Vec<Box<dyn Resource>> = vec![Box::new(flaky)];
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(down.ok);
        assert_eq!(down.steps[0].outcome, "stopped (attempt 3)");

        let stuck = Scripted::new("mysqld", &j);
        *stuck.stop_failures.lock().unwrap() = 99;
        let group: Vec<Box<dyn Resource>> =
            vec![Box::new(Scripted::new("ip", &j)), Box::new(stuck)];
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(!down.ok);
        assert_eq!(
            down.failure.as_deref(),
            Some("mysqld: stop failed 3 times: busy")
        );
        // The rest of the group is still released.
        assert_eq!(down.steps[1].resource, "ip");
        assert_eq!(down.steps[1].outcome, "stopped");
    }
}

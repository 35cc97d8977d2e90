//! Ordered operations over one resource group.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;

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
    /// The one address this resource adds, when it is an address resource
    /// (the built-in IPaddr): consecutive ones start and stop together
    /// (see [`start_group`]). None for anything else, which keeps its
    /// place in the order.
    fn address(&self) -> Option<std::net::IpAddr> {
        None
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

/// Most address resources of one run that start or stop at the same time.
///
/// Each operation instantiates its own agent, and the agents' threads are
/// shared with every other group's, so the run goes in waves of this many
/// rather than all 256 at once. At 16 both agent threads always have an
/// operation to run while others wait on the kernel, and a start that
/// fails has at most 15 others in flight to roll back.
pub const ADDRESS_CONCURRENCY: usize = 16;

/// The start-order rule, as heartbeat's order rules allow it:
///
/// * a resource starts only once every resource left of it that is not an
///   address of the same run has started (services wait for every
///   address before them, an address waits for every service before it);
/// * a *run* — consecutive address resources ([`Resource::address`]) with
///   distinct addresses — has no order among itself: adding one address
///   does not depend on another, and heartbeat's left-to-right walk only
///   existed because its shell had no other way. Such a run starts (and
///   stops) concurrently, [`ADDRESS_CONCURRENCY`] at a time;
/// * stop goes right to left by the same runs.
///
/// The same address twice in a row starts one after the other (the second
/// start sees the first one's address and only announces it); anything
/// else (a service, an unknown agent) is a run of its own.
fn runs(resources: &[Arc<dyn Resource>]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in resources.iter().enumerate() {
        let joins = match (r.address(), out.last()) {
            (Some(ip), Some(last)) if last.end == i => {
                let last_is_run = resources[last.start].address().is_some();
                last_is_run && !seen.contains(&ip)
            }
            _ => false,
        };
        if joins {
            out.last_mut().expect("joined a run").end = i + 1;
        } else {
            seen.clear();
            out.push(i..i + 1);
        }
        if let Some(ip) = r.address() {
            seen.insert(ip);
        }
    }
    out
}

/// What [`each`] does to every resource of a run.
#[derive(Clone, Copy)]
enum Action {
    /// [`start_one`]: monitor, then start.
    Start,
    /// Stop, retried.
    Stop(StopRetry),
    /// Start again without asking (re-announcing).
    Restart,
}

/// One resource's step: its report and, when it failed, the error.
type Finished = (StepReport, Option<String>);

fn act(r: &dyn Resource, action: Action) -> ResourceFuture<'_, String> {
    match action {
        Action::Start => start_one(r),
        Action::Stop(retry) => Box::pin(stop_with_retry(r, retry)),
        Action::Restart => Box::pin(async move { r.start().await.map(|()| String::new()) }),
    }
}

async fn timed(r: &dyn Resource, action: Action) -> Finished {
    let t = Instant::now();
    match act(r, action).await {
        Ok(outcome) => (step(r.name(), &outcome, t), None),
        Err(e) => (step(r.name(), &e, t), Some(e)),
    }
}

/// Do `action` to `run` in that order, [`ADDRESS_CONCURRENCY`] at a time
/// (a run of one is the sequential walk). Returns the steps in the order
/// they finished, each with its error. With `stop_on_failure`, no resource
/// of the run begins once one has failed; those in flight finish (an agent
/// operation is never abandoned half-way: its address might be half added).
///
/// Each operation is a task of its own: an agent's instantiation and code
/// run inside the future's poll, so futures polled by one task take turns
/// on one thread, and 256 starts went in waves of 16 on one of the two
/// agent threads. (256 IPaddr starts took no less time for it, ~40 ms:
/// each instance maps and unmaps its own memory, and the process's
/// address-space changes serialize; agents whose own code runs long gain.)
/// A panic in one operation is that resource's failure.
async fn each(run: Vec<Arc<dyn Resource>>, stop_on_failure: bool, action: Action) -> Vec<Finished> {
    let mut waiting = run.into_iter();
    let mut running = tokio::task::JoinSet::new();
    let mut finished = Vec::new();
    let mut failed = false;
    loop {
        while running.len() < ADDRESS_CONCURRENCY && !(stop_on_failure && failed) {
            match waiting.next() {
                Some(r) => {
                    running.spawn(async move {
                        let t = Instant::now();
                        match AssertUnwindSafe(timed(&*r, action)).catch_unwind().await {
                            Ok(done) => done,
                            Err(_) => {
                                let e = "the operation panicked".to_string();
                                (step(r.name(), &e, t), Some(e))
                            }
                        }
                    });
                }
                None => break,
            }
        }
        match running.join_next().await {
            Some(Ok(done)) => {
                failed |= done.1.is_some();
                finished.push(done);
            }
            // Only an abort ends a task without its report, and nothing
            // aborts these but dropping this future with the set.
            Some(Err(e)) => unreachable!("group operation task ended without a report: {e}"),
            None => return finished,
        }
    }
}

/// The resources of `range`, left to right or (`reverse`) right to left.
fn visit(
    resources: &[Arc<dyn Resource>],
    range: std::ops::Range<usize>,
    reverse: bool,
) -> Vec<Arc<dyn Resource>> {
    let mut v: Vec<Arc<dyn Resource>> = resources[range].to_vec();
    if reverse {
        v.reverse();
    }
    v
}

/// Start one resource: a running one is started again (to announce it).
///
/// An address resource is started first and asked whether it runs only
/// when its start failed: its start on a running address only announces
/// it, so the answer only decides whether a failure gives the group up.
/// Each question is a whole agent operation listing every address of the
/// node, and asking it first for each of 256 addresses doubled the
/// group's start. The difference: an address that a failed start left
/// configured counts as running (it is up, and neighbours learn it at the
/// next announcement) where asking first would have given the group up.
fn start_one(r: &dyn Resource) -> ResourceFuture<'_, String> {
    Box::pin(async move {
        if r.address().is_some() {
            return match r.start().await {
                Ok(()) => Ok("started".to_string()),
                Err(e) => match r.monitor().await {
                    Ok(true) => Ok(format!("already running; starting again failed: {e}")),
                    _ => Err(e),
                },
            };
        }
        if let Ok(true) = r.monitor().await {
            return Ok(match r.start().await {
                Ok(()) => "already running; started again".to_string(),
                // It runs: a failed repeat (an announcement refused) is
                // reported, not a reason to give the group up.
                Err(e) => format!("already running; starting again failed: {e}"),
            });
        }
        r.start().await.map(|()| "started".to_string())
    })
}

/// Acquire a group: run by run left to right ([`runs`]: consecutive
/// addresses together, everything else alone), start each resource. One
/// that monitor says already runs is started again all the same (starts are
/// idempotent, `wasmbeat agent test` checks it): an address that stayed up
/// through a crash is announced again, so neighbours that learnt the
/// peer's MAC meanwhile come back (heartbeat skips it, and its clients wait
/// for their neighbour entry to time out). On the first failure, nothing
/// further starts, the starts in flight finish, and the whole group is
/// stopped (right to left) and reported failed, as heartbeat's `takegroup`
/// gives the whole group up.
pub async fn start_group(resources: &[Arc<dyn Resource>], retry: StopRetry) -> GroupReport {
    let began = Instant::now();
    let mut steps = Vec::new();
    for run in runs(resources) {
        let mut failure = None;
        for (mut s, error) in each(visit(resources, run, false), true, Action::Start).await {
            if let Some(e) = error {
                failure.get_or_insert_with(|| format!("{}: {e}", s.resource));
                s.outcome = format!("failed: {e}");
            }
            steps.push(s);
        }
        if let Some(failure) = failure {
            // Give the whole group up, right to left, as heartbeat's
            // givegroup does: stop is idempotent, and a resource that
            // failed half-way may have left something running.
            let (undone, _) = stop_runs(resources, retry).await;
            steps.extend(undone);
            return GroupReport {
                op: GroupOp::Start,
                ok: false,
                failure: Some(failure),
                steps,
                elapsed: began.elapsed(),
            };
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

/// Stop every resource run by run right to left (right to left inside a
/// run too, when it goes one at a time). Every resource is stopped
/// whatever failed before it; the first failure is returned.
async fn stop_runs(
    resources: &[Arc<dyn Resource>],
    retry: StopRetry,
) -> (Vec<StepReport>, Option<String>) {
    let mut steps = Vec::new();
    let mut failure = None;
    for run in runs(resources).into_iter().rev() {
        for (s, error) in each(visit(resources, run, true), false, Action::Stop(retry)).await {
            if let Some(e) = error {
                failure.get_or_insert_with(|| format!("{}: {e}", s.resource));
            }
            steps.push(s);
        }
    }
    (steps, failure)
}

/// Release a group: stop every resource right to left (idempotent, so also
/// resources that never ran), retrying a failing stop; a run of addresses
/// stops together, as it started. A stop that keeps failing fails the
/// group but the remaining resources are still stopped.
pub async fn stop_group(resources: &[Arc<dyn Resource>], retry: StopRetry) -> GroupReport {
    let began = Instant::now();
    let (steps, failure) = stop_runs(resources, retry).await;
    GroupReport {
        op: GroupOp::Stop,
        ok: failure.is_none(),
        failure,
        steps,
        elapsed: began.elapsed(),
    }
}

/// Start every resource again to refresh neighbours (after a split brain):
/// on a running address IPaddr only announces it. Goes run by run as
/// [`start_group`] does, so 256 addresses are announced at once, not one
/// after the other; returns the resources whose start failed, with why.
pub async fn restart_all(resources: &[Arc<dyn Resource>]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for run in runs(resources) {
        for (s, error) in each(visit(resources, run, false), false, Action::Restart).await {
            if let Some(e) = error {
                failed.push((s.resource, e));
            }
        }
    }
    failed
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
        /// Set: an address resource, whose start and stop take a while.
        address: Option<std::net::IpAddr>,
    }

    impl Scripted {
        fn new(name: &str, journal: &Arc<Mutex<Vec<String>>>) -> Scripted {
            Scripted {
                name: name.into(),
                running: Mutex::new(false),
                fail_start: false,
                stop_failures: Mutex::new(0),
                journal: journal.clone(),
                address: None,
            }
        }

        /// An address resource (IPaddr::10.0.0.N).
        fn ip(n: u8, journal: &Arc<Mutex<Vec<String>>>) -> Scripted {
            let mut s = Scripted::new(&format!("ip{n}"), journal);
            s.address = Some(std::net::IpAddr::from([10, 0, 0, n]));
            s
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
                if self.address.is_some() {
                    // Long enough for the others of its run to begin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                self.journal
                    .lock()
                    .unwrap()
                    .push(format!("started {}", self.name));
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
        fn address(&self) -> Option<std::net::IpAddr> {
            self.address
        }
    }

    /// An address whose start blocks its thread, as an agent's code does,
    /// until its partner's start has begun too (at most 10 s); its start
    /// panics instead when it has no partner.
    struct Rendezvous {
        name: String,
        ip: std::net::IpAddr,
        partner: Option<(
            std::sync::mpsc::SyncSender<()>,
            Mutex<std::sync::mpsc::Receiver<()>>,
        )>,
    }

    impl Rendezvous {
        fn pair() -> [Arc<dyn Resource>; 2] {
            let (to_b, from_a) = std::sync::mpsc::sync_channel(1);
            let (to_a, from_b) = std::sync::mpsc::sync_channel(1);
            let r = |n: u8, tx, rx| {
                Arc::new(Rendezvous {
                    name: format!("ip{n}"),
                    ip: std::net::IpAddr::from([10, 0, 0, n]),
                    partner: Some((tx, Mutex::new(rx))),
                }) as Arc<dyn Resource>
            };
            [r(1, to_b, from_b), r(2, to_a, from_a)]
        }
    }

    impl Resource for Rendezvous {
        fn name(&self) -> &str {
            &self.name
        }
        fn start(&self) -> ResourceFuture<'_, ()> {
            Box::pin(async move {
                let Some((tx, rx)) = &self.partner else {
                    panic!("agent bug");
                };
                tx.send(()).expect("partner alive");
                rx.lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10))
                    .map_err(|_| "the partner's start never ran beside this one".to_string())
            })
        }
        fn stop(&self) -> ResourceFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn monitor(&self) -> ResourceFuture<'_, bool> {
            Box::pin(async { Ok(false) })
        }
        fn address(&self) -> Option<std::net::IpAddr> {
            Some(self.ip)
        }
    }

    #[test]
    fn the_addresses_of_a_run_start_on_both_agent_threads_at_once() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let report = rt.block_on(start_group(&Rendezvous::pair(), FAST));
        assert!(report.ok, "{}", report.summary());
    }

    #[test]
    fn a_panicking_operation_fails_its_resource_and_the_group_not_the_daemon() {
        let j = Arc::new(Mutex::new(vec![]));
        let group: Vec<Arc<dyn Resource>> = vec![
            Arc::new(Scripted::ip(1, &j)),
            Arc::new(Rendezvous {
                name: "ip2".into(),
                ip: std::net::IpAddr::from([10, 0, 0, 2]),
                partner: None,
            }),
        ];
        let report = rt().block_on(start_group(&group, FAST));
        assert!(!report.ok);
        assert_eq!(
            report.failure.as_deref(),
            Some("ip2: the operation panicked"),
            "{}",
            report.summary()
        );
        assert!(
            calls(&j).contains(&"stop ip1".to_string()),
            "{:?}",
            calls(&j)
        );
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// The journal without the "started" (start finished) entries.
    fn calls(j: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        j.lock()
            .unwrap()
            .iter()
            .filter(|e| !e.starts_with("started "))
            .cloned()
            .collect()
    }

    const FAST: StopRetry = StopRetry {
        attempts: 3,
        pause: Duration::from_millis(1),
    };

    #[test]
    fn start_goes_left_to_right_and_stop_right_to_left() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let group: Vec<Arc<dyn Resource>> = ["ip", "named", "httpd"]
            .iter()
            .map(|n| Arc::new(Scripted::new(n, &j)) as Arc<dyn Resource>)
            .collect();
        let up = rt().block_on(start_group(&group, FAST));
        assert!(up.ok, "{up:?}");
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(down.ok);
        assert_eq!(
            calls(&j),
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
        let group: Vec<Arc<dyn Resource>> = vec![Arc::new(a), Arc::new(Scripted::new("httpd", &j))];
        let up = rt().block_on(start_group(&group, FAST));
        assert_eq!(up.steps[0].outcome, "already running; started again");
        assert_eq!(calls(&j), ["start ip", "start httpd"]);
    }

    #[test]
    fn a_failed_start_gives_the_whole_group_up() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let mut bad = Scripted::new("httpd", &j);
        bad.fail_start = true;
        let group: Vec<Arc<dyn Resource>> = vec![
            Arc::new(Scripted::new("ip", &j)),
            Arc::new(bad),
            Arc::new(Scripted::new("mysqld", &j)),
        ];
        let up = rt().block_on(start_group(&group, FAST));
        assert!(!up.ok);
        assert_eq!(up.failure.as_deref(), Some("httpd: port in use"));
        assert_eq!(
            calls(&j),
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
        let group: Vec<Arc<dyn Resource>> = vec![Arc::new(flaky)];
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(down.ok);
        assert_eq!(down.steps[0].outcome, "stopped (attempt 3)");

        let stuck = Scripted::new("mysqld", &j);
        *stuck.stop_failures.lock().unwrap() = 99;
        let group: Vec<Arc<dyn Resource>> =
            vec![Arc::new(Scripted::new("ip", &j)), Arc::new(stuck)];
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

    fn boxed(v: Vec<Scripted>) -> Vec<Arc<dyn Resource>> {
        v.into_iter()
            .map(|r| Arc::new(r) as Arc<dyn Resource>)
            .collect()
    }

    fn position(j: &[String], entry: &str) -> usize {
        j.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("{entry:?} not in {j:?}"))
    }

    #[test]
    fn runs_are_consecutive_distinct_addresses() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let group = boxed(vec![
            Scripted::ip(1, &j),
            Scripted::ip(2, &j),
            Scripted::new("named", &j),
            Scripted::ip(3, &j),
            Scripted::ip(3, &j),
            Scripted::ip(4, &j),
            Scripted::new("httpd", &j),
            Scripted::new("mysqld", &j),
        ]);
        // The same address twice goes one after the other.
        assert_eq!(runs(&group), [0..2, 2..3, 3..4, 4..6, 6..7, 7..8]);
    }

    /// Addresses of one run start together (not more than the bound at a
    /// time); a service starts only when every address left of it has
    /// started, and the addresses after it only when it has.
    #[test]
    fn a_run_of_addresses_starts_together_between_ordered_services() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let n = ADDRESS_CONCURRENCY as u8 * 2 + 3;
        let mut v = vec![Scripted::new("named", &j)];
        v.extend((1..=n).map(|k| Scripted::ip(k, &j)));
        v.push(Scripted::new("httpd", &j));
        let group = boxed(v);
        let up = rt().block_on(start_group(&group, FAST));
        assert!(up.ok, "{up:?}");
        let log = j.lock().unwrap().clone();
        let first_ip = log.iter().position(|e| e.starts_with("start ip")).unwrap();
        assert!(position(&log, "started named") < first_ip, "{log:?}");
        let last_ip = log
            .iter()
            .rposition(|e| e.starts_with("started ip"))
            .unwrap();
        assert!(last_ip < position(&log, "start httpd"), "{log:?}");
        // How many addresses were in flight at most.
        let (mut inflight, mut peak) = (0usize, 0usize);
        for e in &log {
            if e.starts_with("start ip") {
                inflight += 1;
                peak = peak.max(inflight);
            } else if e.starts_with("started ip") {
                inflight -= 1;
            }
        }
        assert_eq!(peak, ADDRESS_CONCURRENCY, "{log:?}");

        j.lock().unwrap().clear();
        let down = rt().block_on(stop_group(&group, FAST));
        assert!(down.ok);
        let log = calls(&j);
        assert_eq!(log.first().map(String::as_str), Some("stop httpd"));
        assert_eq!(log.last().map(String::as_str), Some("stop named"));
        assert_eq!(log.len(), group.len());
    }

    /// An address failing in the middle of a run: nothing more of the run
    /// begins, the service after it never starts, and the whole group is
    /// stopped, the same give-up as a sequential group.
    #[test]
    fn an_address_failing_mid_run_gives_the_whole_group_up() {
        let j = Arc::new(Mutex::new(Vec::new()));
        let n = ADDRESS_CONCURRENCY as u8 * 3;
        let mut v: Vec<Scripted> = (1..=n).map(|k| Scripted::ip(k, &j)).collect();
        v[4].fail_start = true;
        v.push(Scripted::new("httpd", &j));
        let group = boxed(v);
        let up = rt().block_on(start_group(&group, FAST));
        assert!(!up.ok);
        assert_eq!(up.failure.as_deref(), Some("ip5: port in use"));
        let log = calls(&j);
        let starts = log.iter().filter(|e| e.starts_with("start ")).count();
        assert!(
            starts < n as usize,
            "the run went on after the failure: {starts} starts"
        );
        assert!(!log.contains(&"start httpd".to_string()), "{log:?}");
        // Everything is stopped, httpd first, every address after it.
        let stops: Vec<&String> = log.iter().filter(|e| e.starts_with("stop ")).collect();
        assert_eq!(stops.len(), group.len(), "{log:?}");
        assert_eq!(stops[0], "stop httpd");
        assert!(group
            .iter()
            .all(|r| !rt().block_on(r.monitor()).unwrap() || r.name() == "ip5"));
    }
}

//! Prometheus metrics on an opt-in listen address (`wasmbeat run
//! --metrics-listen`, loopback by default).
//!
//! Two kinds of figures: counters and histograms the heartbeat loop feeds
//! as things happen (transitions by cause, agent operation durations,
//! monitor restarts), and the cluster's current state, taken from the same
//! [`StatusReport`] `wasmbeat status` prints at the moment of the scrape, so
//! the metrics and the status never disagree.
//!
//! The HTTP side runs on the agents' runtime; a scrape asks the heartbeat
//! loop for the text through a bounded channel, so a flood of scrapes can
//! cost the loop at most one rendering per queued request and never blocks
//! it.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use super::status::StatusReport;
use crate::cluster::{Cause, GroupRun, NodeStatus, Op, StateChange};
use crate::resources::GroupReport;

/// A metric's labels, in the order they are rendered.
type Labels = Vec<(&'static str, String)>;

/// Where a scrape asks the heartbeat loop for the rendered text.
pub type ScrapeRequests = mpsc::Sender<oneshot::Sender<String>>;

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Every metric the daemon exports, owned by the heartbeat loop.
pub struct Metrics {
    registry: Registry,
    transitions: Family<Labels, Counter>,
    group_ops: Family<Labels, Histogram>,
    agent_ops: Family<Labels, Histogram>,
    monitor_restarts: Family<Labels, Counter>,
    split_brains: Counter,
    packets_accepted: Counter,
    packets_dropped: Family<Labels, Counter>,
    medium_errors: Family<Labels, Counter>,
    node_info: Family<Labels, Gauge>,
    node_state: Family<Labels, Gauge>,
    link_up: Family<Labels, Gauge>,
    link_last_heard: Family<Labels, Gauge<f64, AtomicU64>>,
    group_owner: Family<Labels, Gauge>,
    group_running_here: Family<Labels, Gauge>,
    group_state: Family<Labels, Gauge>,
    watchdog_pet_failures: Counter,
    watchdog_last_pet: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// Agent operations range from a fraction of a millisecond (IPaddr in
/// process) to minutes (a database's recovery).
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 4.0, 10))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric (names prefixed `wasmbeat_`).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmbeat");
        let m = Metrics {
            transitions: Family::default(),
            group_ops: Family::new_with_constructor(duration_histogram),
            agent_ops: Family::new_with_constructor(duration_histogram),
            monitor_restarts: Family::default(),
            split_brains: Counter::default(),
            packets_accepted: Counter::default(),
            packets_dropped: Family::default(),
            medium_errors: Family::default(),
            node_info: Family::default(),
            node_state: Family::default(),
            link_up: Family::default(),
            link_last_heard: Family::default(),
            group_owner: Family::default(),
            group_running_here: Family::default(),
            group_state: Family::default(),
            watchdog_pet_failures: Counter::default(),
            watchdog_last_pet: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "transitions",
            "State changes logged, by cause (peer_dead, failover, group_started, split_brain, ...)",
            m.transitions.clone(),
        );
        registry.register(
            "group_operation_seconds",
            "Duration of whole-group start/stop operations run here",
            m.group_ops.clone(),
        );
        registry.register(
            "agent_operation_seconds",
            "Duration of each resource agent's start/stop within a group operation",
            m.agent_ops.clone(),
        );
        registry.register(
            "monitor_restarts",
            "Local restarts of a resource after a failed monitor probe",
            m.monitor_restarts.clone(),
        );
        registry.register(
            "split_brains",
            "Partitions that healed with both nodes possibly running the same groups",
            m.split_brains.clone(),
        );
        registry.register(
            "packets_accepted",
            "Cluster messages accepted",
            m.packets_accepted.clone(),
        );
        registry.register(
            "packets_dropped",
            "Cluster packets dropped, by reason (bad_auth, replay, malformed, ...)",
            m.packets_dropped.clone(),
        );
        registry.register(
            "medium_errors",
            "Failed sends and reads on each heartbeat medium, by link and direction (send, receive)",
            m.medium_errors.clone(),
        );
        registry.register(
            "node_info",
            "This node's name and wasmbeat version (value 1)",
            m.node_info.clone(),
        );
        registry.register(
            "node_state",
            "Each cluster node's state as heartbeat names it (1 for the current one)",
            m.node_state.clone(),
        );
        registry.register(
            "link_up",
            "Whether a packet from the peer arrived on the medium within its dead time",
            m.link_up.clone(),
        );
        registry.register(
            "link_last_heard_age_seconds",
            "Seconds since a packet from the peer last arrived on the medium",
            m.link_last_heard.clone(),
        );
        registry.register(
            "group_owner",
            "Which node owns each resource group (1 for the owner)",
            m.group_owner.clone(),
        );
        registry.register(
            "group_running_here",
            "Whether each resource group runs on this node",
            m.group_running_here.clone(),
        );
        registry.register(
            "group_state",
            "Each resource group's local state (1 for the current one)",
            m.group_state.clone(),
        );
        registry.register(
            "watchdog_pet_failures",
            "Writes to the ha.cf watchdog device that failed (the node is reset when its timeout passes without a pet)",
            m.watchdog_pet_failures.clone(),
        );
        registry.register(
            "watchdog_last_pet_age_seconds",
            "Seconds since the ha.cf watchdog device was last petted",
            m.watchdog_last_pet.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A write to the watchdog device failed.
    pub fn on_watchdog_failure(&self) {
        self.watchdog_pet_failures.inc();
    }

    /// A state change the Node logged.
    pub fn on_change(&self, change: &StateChange) {
        self.transitions
            .get_or_create(&labels([("cause", change.cause.as_str())]))
            .inc();
        if change.cause == Cause::SplitBrain {
            self.split_brains.inc();
        }
    }

    /// A finished group operation, with its per-agent steps.
    pub fn on_group_done(&self, group: &str, op: Op, report: &GroupReport) {
        let op = match op {
            Op::Start => "start",
            Op::Stop => "stop",
        };
        let result = if report.ok { "ok" } else { "failed" };
        self.group_ops
            .get_or_create(&labels([("group", group), ("op", op), ("result", result)]))
            .observe(report.elapsed.as_secs_f64());
        for step in &report.steps {
            let agent = step.resource.split("::").next().unwrap_or(&step.resource);
            self.agent_ops
                .get_or_create(&labels([("agent", agent), ("op", op)]))
                .observe(step.elapsed.as_secs_f64());
        }
    }

    /// A resource restarted here after a failed monitor.
    pub fn on_monitor_restart(&self, group: &str) {
        self.monitor_restarts
            .get_or_create(&labels([("group", group)]))
            .inc();
    }

    /// The exposition text, with the state gauges taken from `report`.
    pub fn render(&self, report: &StatusReport) -> String {
        self.refresh(report);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    fn refresh(&self, report: &StatusReport) {
        let c = &report.cluster;
        self.node_info.clear();
        self.node_info
            .get_or_create(&labels([
                ("node", &report.node),
                ("version", env!("CARGO_PKG_VERSION")),
            ]))
            .set(1);
        catch_up(&self.packets_accepted, report.packets.accepted);
        for (reason, n) in &report.packets.dropped {
            catch_up(
                &self
                    .packets_dropped
                    .get_or_create(&labels([("reason", reason)])),
                *n,
            );
        }
        for m in &report.media {
            for (direction, n) in [("send", m.send_errors), ("receive", m.receive_errors)] {
                catch_up(
                    &self
                        .medium_errors
                        .get_or_create(&labels([("link", &m.link), ("direction", direction)])),
                    n,
                );
            }
        }

        self.node_state.clear();
        self.link_up.clear();
        self.link_last_heard.clear();
        for n in &c.nodes {
            for state in NodeStatus::ALL {
                self.node_state
                    .get_or_create(&labels([("node", &n.name), ("state", state.as_str())]))
                    .set(i64::from(n.status == state));
            }
            for l in &n.links {
                let key = labels([("peer", &n.name), ("link", &l.link.0)]);
                self.link_up.get_or_create(&key).set(i64::from(l.up));
                let age = Duration::from_millis(c.now.0.saturating_sub(l.last_heard.0));
                self.link_last_heard
                    .get_or_create(&key)
                    .set(age.as_secs_f64());
            }
        }
        self.watchdog_last_pet.clear();
        if let Some(w) = &report.watchdog {
            self.watchdog_last_pet
                .get_or_create(&labels([("device", &w.device)]))
                .set(w.last_pet_age_s);
        }
        self.group_owner.clear();
        self.group_running_here.clear();
        self.group_state.clear();
        for g in &c.groups {
            if let Some(owner) = &g.owner {
                self.group_owner
                    .get_or_create(&labels([("group", &g.key), ("node", owner)]))
                    .set(1);
            }
            // Zero from the start, so rate() and alerts see the series.
            drop(
                self.monitor_restarts
                    .get_or_create(&labels([("group", &g.key)])),
            );
            self.group_running_here
                .get_or_create(&labels([("group", &g.key)]))
                .set(i64::from(g.run == GroupRun::Running));
            self.group_state
                .get_or_create(&labels([("group", &g.key), ("state", g.run.as_str())]))
                .set(1);
        }
    }
}

/// Bring `counter` up to `total`, a running count kept elsewhere (the
/// wire's, the transport's): a Prometheus counter only goes up, so it is
/// given what was counted since the last scrape.
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// Serve `GET /metrics` on `listener` until the runtime shuts down.
pub async fn serve(listener: tokio::net::TcpListener, scrapes: ScrapeRequests) {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let scrapes = scrapes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, scrapes.clone()));
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

type Body = http_body_util::Full<hyper::body::Bytes>;

fn reply(status: u16, content_type: &str, text: String) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(Body::from(text));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    scrapes: ScrapeRequests,
) -> Result<hyper::Response<Body>, std::convert::Infallible> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != hyper::Method::GET || req.uri().path() != "/metrics" {
        return Ok(reply(404, TEXT, "only GET /metrics is served\n".into()));
    }
    let (tx, rx) = oneshot::channel();
    if scrapes.try_send(tx).is_err() {
        return Ok(reply(503, TEXT, "too many scrapes in flight\n".into()));
    }
    Ok(
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(text)) => reply(200, "text/plain; version=0.0.4; charset=utf-8", text),
            _ => reply(
                503,
                TEXT,
                "the heartbeat loop did not answer within 5 s\n".into(),
            ),
        },
    )
}

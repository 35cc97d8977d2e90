//! `wasmbeat run`: the one place that wires IO to the failover core.
//!
//! Two tokio runtimes keep resource work off the heartbeat path: the
//! heartbeat loop (media, wire session, core, control socket, signals) runs
//! on a current-thread runtime on the main thread, at realtime priority when
//! ha.cf asks for it; agent operations run on a separate multi-thread
//! runtime and report back through a channel. A slow `start` therefore never
//! delays a heartbeat.

mod agents;
pub mod status;
mod wake_timer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cluster::{self, Action, Cluster, ClusterParams, Event, Level, LinkId, Millis, Op};
use crate::config::{self, Config};
use crate::control::{self, Request, Response, RuntimePaths, Scope};
use crate::logging::{self, LogTargets};
use crate::pidfile::PidFile;
use crate::resources::monitor::{MonitorSpec, RestartBudget, Verdict};
use crate::resources::{self, GroupReport, StopRetry};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::transport::{self, Transport};
use crate::wire::{self, Endpoint, EndpointConfig};

pub use agents::GroupResources;

/// How `wasmbeat run` was invoked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// heartbeat's configuration directory (ha.cf, haresources, authkeys).
    pub config_dir: PathBuf,
    /// This node's name (default `uname -n`).
    pub node: Option<String>,
    /// Parent of the control socket / pid file directory.
    pub runtime_dir: Option<PathBuf>,
    /// Where the node UUID and generation live (default: heartbeat's
    /// `/var/lib/heartbeat` for `/etc/ha.d`, so a migrated node keeps its UUID).
    pub state_dir: Option<PathBuf>,
    /// Cache of compiled agents.
    pub cache_dir: Option<PathBuf>,
}

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration has errors (each diagnostic on its own line).
    #[error("configuration in {dir} does not run:\n{diagnostics}")]
    Config {
        /// The config dir.
        dir: PathBuf,
        /// Rendered diagnostics.
        diagnostics: String,
    },
    /// Another instance runs, or the pid file is unusable.
    #[error(transparent)]
    PidFile(#[from] crate::pidfile::PidFileError),
    /// Log files could not be opened.
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    /// The control socket could not be created.
    #[error("control socket {path}: {source}")]
    Control {
        /// Socket path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The node UUID / generation files.
    #[error(transparent)]
    Identity(#[from] wire::identity::IdentityError),
    /// authkeys could not be turned into a keyring.
    #[error("authkeys: {0}")]
    Auth(#[from] wire::auth::AuthError),
    /// A medium could not be opened.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The agent runtime or an agent failed to load.
    #[error("{0}")]
    Agents(String),
    /// Setting up the tokio runtimes failed.
    #[error("cannot start the async runtime: {0}")]
    Async(std::io::Error),
}

/// Runtime files for a config dir, including the state dir default.
fn state_dir_for(opts: &RunOptions, paths: &RuntimePaths) -> PathBuf {
    if let Some(d) = &opts.state_dir {
        return d.clone();
    }
    let absolute =
        std::fs::canonicalize(&opts.config_dir).unwrap_or_else(|_| opts.config_dir.clone());
    if absolute == Path::new(config::DEFAULT_CONFIG_DIR) {
        PathBuf::from("/var/lib/heartbeat")
    } else {
        paths.dir.join("state")
    }
}

/// Load and validate the configuration, rendering every diagnostic.
pub fn load_config(dir: &Path, node: Option<&str>) -> Result<Config, DaemonError> {
    match Config::load(dir, node) {
        Ok((cfg, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(cfg)
        }
        Err(diags) => Err(DaemonError::Config {
            dir: dir.to_path_buf(),
            diagnostics: diags
                .iter()
                .map(|d| format!("  {d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    }
}

/// The core's view of a configuration.
pub fn cluster_params(cfg: &Config, generation: u64) -> ClusterParams {
    ClusterParams {
        local: cfg.local_node.clone(),
        nodes: cfg.ha.nodes.clone(),
        keepalive: cfg.ha.keepalive,
        deadtime: cfg.ha.deadtime,
        warntime: cfg.ha.warntime,
        initdead: cfg.ha.initdead,
        auto_failback: cfg.ha.auto_failback,
        groups: cfg
            .resources
            .groups
            .iter()
            .map(|g| cluster::GroupSpec {
                key: g.key.clone(),
                preferred: g.preferred_node.clone(),
            })
            .collect(),
        generation,
    }
}

/// The media the transport can carry; the rest (IPv6 for now) are skipped
/// with a warning instead of failing the whole node.
fn usable_media(cfg: &Config) -> Vec<config::Medium> {
    cfg.ha
        .media
        .iter()
        .filter(|m| match transport::check_supported(m) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("{e}; medium skipped");
                false
            }
        })
        .cloned()
        .collect()
}

fn log_targets(cfg: &Config) -> LogTargets {
    LogTargets {
        logfile: cfg.ha.logfile.as_ref().map(PathBuf::from),
        debugfile: cfg.ha.debugfile.as_ref().map(PathBuf::from),
        facility: cfg.ha.logfacility.clone(),
        use_logd: cfg.ha.use_logd.unwrap_or(false),
    }
}

/// A finished monitor probe or local restart of one resource.
struct MonitorDone {
    key: String,
    index: usize,
    outcome: MonitorOutcome,
}

enum MonitorOutcome {
    /// The probe ran: whether the resource runs (Err: the probe itself failed).
    Probed(Result<bool, String>),
    /// A local restart (stop + start) finished.
    Restarted(Result<(), String>),
}

/// Monitoring state of one resource.
struct Watch {
    spec: MonitorSpec,
    budget: RestartBudget,
    next_due: Instant,
    busy: bool,
}

/// A finished group operation, sent from the ops runtime to the loop.
struct GroupDone {
    key: String,
    op: Op,
    report: GroupReport,
}

/// Shortest and longest sleep of the session/monitor timer.
const TIMER_MIN: Duration = Duration::from_millis(1);
const TIMER_MAX: Duration = Duration::from_secs(1);

/// Give heap memory freed after agent work back to the kernel. glibc
/// keeps freed blocks in per-thread arenas indefinitely; a daemon that
/// idles for months should not carry the peak of its last compile or
/// failover in its RSS.
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions; it only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Run the daemon until a graceful shutdown completes.
pub fn run(opts: RunOptions) -> Result<(), DaemonError> {
    let cfg = load_config(&opts.config_dir, opts.node.as_deref())?;
    for note in logging::init(&log_targets(&cfg))? {
        tracing::warn!("{note}");
    }
    let paths = RuntimePaths::for_config_dir(&opts.config_dir, opts.runtime_dir.as_deref());
    let _pid = PidFile::acquire(&paths.pid_file)?;

    // Agent operations: their own threads, never the heartbeat thread.
    let ops_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wasmbeat-agents")
        .enable_all()
        .build()
        .map_err(DaemonError::Async)?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(
            opts.cache_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::runtime::DEFAULT_CACHE_DIR)),
        ),
        // Cranelift's code and heap stay out of the daemon's memory.
        compiler: std::env::current_exe().ok(),
        ..RuntimeConfig::default()
    })
    .map_err(|e| DaemonError::Agents(e.to_string()))?;
    let loading = Instant::now();
    let groups = ops_rt
        .block_on(agents::load_groups(&runtime, &cfg))
        .map_err(DaemonError::Agents)?;
    tracing::info!(
        "loaded {} resource group(s) with {} agent instance(s) in {:.1} ms",
        groups.len(),
        groups.values().map(|g| g.resources.len()).sum::<usize>(),
        loading.elapsed().as_secs_f64() * 1000.0
    );

    // Compiling agents on a cold cache leaves megabytes of freed heap.
    trim_heap();

    if cfg.ha.realtime {
        transport::realtime::apply_or_warn(&transport::realtime::RealtimeConfig::default());
    }
    let hb_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Async)?;
    let state_dir = state_dir_for(&opts, &paths);
    let result = hb_rt.block_on(heartbeat_loop(
        cfg,
        opts,
        paths,
        state_dir,
        groups,
        ops_rt.handle().clone(),
        runtime,
    ));
    // Give agents' background work (announcements) a moment to finish.
    ops_rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// Everything the heartbeat loop owns besides the media.
struct Node {
    cfg: Config,
    opts: RunOptions,
    core: Cluster,
    endpoint: Endpoint,
    groups: BTreeMap<String, Arc<GroupResources>>,
    ops: tokio::runtime::Handle,
    done_tx: mpsc::Sender<GroupDone>,
    started: Instant,
    links: Vec<String>,
    reports: BTreeMap<String, (Op, GroupReport)>,
    runtime: Runtime,
    generation: u64,
    /// Monitoring of groups that run here, by group key (index = resource).
    watches: BTreeMap<String, Vec<Option<Watch>>>,
    monitor_specs: BTreeMap<String, Vec<Option<MonitorSpec>>>,
    monitor_tx: mpsc::Sender<MonitorDone>,
    exit: bool,
}

async fn heartbeat_loop(
    cfg: Config,
    opts: RunOptions,
    paths: RuntimePaths,
    state_dir: PathBuf,
    groups: BTreeMap<String, Arc<GroupResources>>,
    ops: tokio::runtime::Handle,
    runtime: Runtime,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};

    let identity = wire::identity::Identity::load_or_create(
        &state_dir,
        match cfg.ha.hbgenmethod {
            config::hacf::GenMethod::File => wire::identity::GenMethod::File,
            config::hacf::GenMethod::Time => wire::identity::GenMethod::Time,
        },
    )?;
    let generation = identity.generation;
    let media = usable_media(&cfg);
    let mut transport = Transport::open(&media).await?;
    let links: Vec<String> = media.iter().map(transport::medium_label).collect();
    let nodes: Vec<&str> = cfg.ha.nodes.iter().map(String::as_str).collect();
    let link_refs: Vec<&str> = links.iter().map(String::as_str).collect();
    let mut ecfg = EndpointConfig::new(
        &cfg.local_node,
        &nodes,
        wire::Keyring::from_authkeys(&cfg.auth)?,
        &link_refs,
    );
    ecfg.deadtime = cfg.ha.deadtime;
    ecfg.hopfudge = cfg.ha.hopfudge;
    ecfg.classic_auth_field = cfg.ha.msgfmt == config::hacf::MsgFmt::Classic;
    let endpoint = Endpoint::new(ecfg, identity);

    let listener = control::server::bind(&paths.socket).map_err(|source| DaemonError::Control {
        path: paths.socket.clone(),
        source,
    })?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
    tokio::spawn(control::server::serve(listener, ctl_tx));

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Async)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Async)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Async)?;

    let started = Instant::now();
    let (done_tx, mut done_rx) = mpsc::channel(64);
    let (monitor_tx, mut monitor_rx) = mpsc::channel(64);
    let monitor_specs = agents::monitor_specs(&cfg);
    let params = cluster_params(&cfg, generation);
    tracing::info!(
        "wasmbeat {} starting as {} (generation {generation}) in a cluster of {}; keepalive {:?}, deadtime {:?}, initdead {:?}, auto_failback {:?}; media: {}; {} resource group(s)",
        env!("CARGO_PKG_VERSION"),
        cfg.local_node,
        cfg.ha.nodes.join(", "),
        cfg.ha.keepalive,
        cfg.ha.deadtime,
        cfg.ha.initdead,
        cfg.ha.auto_failback,
        links.join(", "),
        cfg.resources.groups.len()
    );
    let mut node = Node {
        core: Cluster::new(params, Millis(0)),
        cfg,
        opts,
        endpoint,
        groups,
        ops,
        done_tx,
        started,
        links,
        reports: BTreeMap::new(),
        runtime,
        generation,
        watches: BTreeMap::new(),
        monitor_specs,
        monitor_tx,
        exit: false,
    };
    node.feed(Event::Tick);

    let mut shutdown_started: Option<Instant> = None;
    let mut wake = wake_timer::WakeTimer::new().map_err(DaemonError::Async)?;
    loop {
        // One timer for the earliest of the core's deadline (a peer's
        // death, the next heartbeat) and the session's/monitors' next work,
        // on a timerfd: one wake-up per deadline (see wake_timer).
        let core_due = node
            .core
            .next_deadline()
            .map(|m| node.started + Duration::from_millis(m.0))
            .unwrap_or_else(|| Instant::now() + TIMER_MAX);
        let timer_due = node.next_timer();
        wake.arm(core_due.min(timer_due))
            .map_err(DaemonError::Async)?;
        tokio::select! {
            Some(inbound) = transport.recv() => node.on_packet(&inbound.data, inbound.link),
            fired = wake.expired() => {
                fired.map_err(DaemonError::Async)?;
                let now = Instant::now();
                if now >= timer_due {
                    node.on_tick();
                }
                if now >= core_due {
                    node.feed(Event::Tick);
                }
            }
            Some(done) = done_rx.recv() => node.on_group_done(done),
            Some(done) = monitor_rx.recv() => node.on_monitor_done(done),
            Some((req, reply)) = ctl_rx.recv() => {
                let answer = node.on_control(req);
                let _ = reply.send(answer);
            }
            _ = sigterm.recv() => node.begin_shutdown("SIGTERM", &mut shutdown_started),
            _ = sigint.recv() => node.begin_shutdown("SIGINT", &mut shutdown_started),
            _ = sighup.recv() => { let _ = node.reload("SIGHUP"); }
        }
        while let Some(pkt) = node.endpoint.poll_transmit() {
            transport.send(&pkt).await;
        }
        if node.exit {
            break;
        }
        if let Some(t) = shutdown_started {
            // heartbeat waits forever for a stuck stop; we give up after a
            // bound and say so, so an operator's `systemctl stop` returns.
            if t.elapsed() > SHUTDOWN_LIMIT {
                tracing::error!(
                    "graceful shutdown did not finish within {SHUTDOWN_LIMIT:?}; exiting with resources possibly still held"
                );
                break;
            }
        }
    }
    tracing::info!(
        "{} left the cluster after {:.1} s",
        node.cfg.local_node,
        node.started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The core retries a failed stop itself (every second, heartbeat's
/// HA_STOPRETRYMAX semantics), so each request is one attempt per resource.
const ONE_ATTEMPT: StopRetry = StopRetry {
    attempts: 1,
    pause: Duration::ZERO,
};

/// Upper bound on a graceful shutdown (stops of every group plus the handoff).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(120);

impl Node {
    fn now(&self) -> Millis {
        Millis(self.started.elapsed().as_millis() as u64)
    }

    /// Feed one event to the core and carry out what it decides.
    fn feed(&mut self, event: Event) -> Vec<String> {
        let now = self.now();
        let actions = self.core.handle(now, event);
        self.act(actions)
    }

    /// Carry out core actions; returns the operator notes among them.
    fn act(&mut self, actions: Vec<Action>) -> Vec<String> {
        let mut notes = Vec::new();
        for action in actions {
            match action {
                Action::Send(msg) => {
                    self.endpoint
                        .send(wire::typed::to_wire(&msg), Instant::now());
                }
                Action::StartGroup(key) => self.run_group(key, Op::Start),
                Action::StopGroup(key) => self.run_group(key, Op::Stop),
                Action::Notify(change) => {
                    let line = format!("{}: {}", change.what, change.why);
                    match change.level {
                        Level::Info => tracing::info!("{line}"),
                        Level::Warn => tracing::warn!("{line}"),
                        Level::Crit => tracing::error!("{line}"),
                    }
                    notes.push(line);
                }
                Action::Announce(key) => self.reannounce(key),
                Action::Exit => self.exit = true,
            }
        }
        notes
    }

    fn run_group(&mut self, key: String, op: Op) {
        let Some(group) = self.groups.get(&key).cloned() else {
            // The core only names configured groups; a reload race is the
            // only way here. Report failure so the core does not wait.
            tracing::error!("group {key} is not configured here; reporting the {op:?} as failed");
            let _ = self.done_tx.try_send(GroupDone {
                key,
                op,
                report: GroupReport {
                    op: match op {
                        Op::Start => resources::GroupOp::Start,
                        Op::Stop => resources::GroupOp::Stop,
                    },
                    ok: false,
                    failure: Some("group not configured".into()),
                    steps: vec![],
                    elapsed: Duration::ZERO,
                },
            });
            return;
        };
        let verb = match op {
            Op::Start => "starting",
            Op::Stop => "stopping",
        };
        // Monitoring covers groups that run here; any operation pauses it.
        self.watches.remove(&key);
        tracing::info!("{verb} group {key} ({})", group.describe(op));
        let tx = self.done_tx.clone();
        self.ops.spawn(async move {
            // One operation at a time per group, whatever the core asks.
            let _serial = group.lock.lock().await;
            let report = match op {
                Op::Start => resources::start_group(&group.resources, ONE_ATTEMPT).await,
                Op::Stop => resources::stop_group(&group.resources, ONE_ATTEMPT).await,
            };
            let _ = tx.send(GroupDone { key, op, report }).await;
        });
    }

    /// Refresh neighbours' view of a group that runs here: `start` is
    /// idempotent, and on a running address IPaddr only announces it again.
    fn reannounce(&mut self, key: String) {
        let Some(group) = self.groups.get(&key).cloned() else {
            return;
        };
        tracing::info!("re-announcing group {key} ({})", group.describe(Op::Start));
        self.ops.spawn(async move {
            let _serial = group.lock.lock().await;
            for r in &group.resources {
                if let Err(e) = r.start().await {
                    tracing::warn!("re-announcing {}: {e}", r.name());
                }
            }
        });
    }

    fn on_group_done(&mut self, done: GroupDone) {
        let GroupDone { key, op, report } = done;
        let verb = match op {
            Op::Start => "started",
            Op::Stop => "stopped",
        };
        // The core logs the outcome (with this detail) as a state change;
        // failures also get the full step list here.
        if !report.ok {
            tracing::error!(
                "group {key} could not be {verb}: {}; steps: {}",
                report.failure.as_deref().unwrap_or("unknown failure"),
                report.summary()
            );
        }
        if report.ok && op == Op::Start {
            self.watch(&key);
        }
        let detail = report.failure.clone().unwrap_or_else(|| report.summary());
        let ok = report.ok;
        self.reports.insert(key.clone(), (op, report));
        // Each operation instantiated agents on the ops threads' arenas.
        trim_heap();
        self.feed(Event::ResourceResult {
            group: key,
            op,
            ok,
            detail,
        });
    }

    fn on_packet(&mut self, data: &[u8], link: usize) {
        let events = match self.endpoint.receive(data, link, Instant::now()) {
            Ok(events) => events,
            Err(reason) => {
                tracing::trace!(reason = reason.name(), "packet dropped");
                return;
            }
        };
        self.on_wire_events(events);
    }

    /// The session's periodic work (retransmissions, link timeouts) and
    /// due monitors; the core is ticked at its own deadline in the loop.
    /// When the session (retransmissions, link deadlines) or a resource
    /// monitor next needs the loop. Woken only for work: at keepalive 50 ms
    /// a fixed 50 ms tick was a third of the idle daemon's wake-ups.
    fn next_timer(&self) -> Instant {
        let now = Instant::now();
        let monitors = self
            .watches
            .values()
            .flatten()
            .flatten()
            .filter(|w| !w.busy)
            .map(|w| w.next_due)
            .min();
        [self.endpoint.next_timeout(now), monitors]
            .into_iter()
            .flatten()
            .min()
            // Bounds: never spin on a deadline that is already due, and
            // look again at least once a second whatever happens.
            .map_or(now + TIMER_MAX, |d| {
                d.clamp(now + TIMER_MIN, now + TIMER_MAX)
            })
    }

    fn on_tick(&mut self) {
        let events = self.endpoint.handle_timeout(Instant::now());
        self.on_wire_events(events);
        self.run_due_monitors();
    }

    /// Start monitoring a group that now runs here (fresh restart budgets).
    fn watch(&mut self, key: &str) {
        let Some(specs) = self.monitor_specs.get(key) else {
            return;
        };
        let now = Instant::now();
        let watches = specs
            .iter()
            .map(|spec| {
                spec.map(|spec| Watch {
                    spec,
                    budget: RestartBudget::new(spec.max_restarts),
                    next_due: now + spec.interval,
                    busy: false,
                })
            })
            .collect();
        self.watches.insert(key.to_string(), watches);
    }

    fn run_due_monitors(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (key, watches) in self.watches.iter_mut() {
            for (index, w) in watches.iter_mut().enumerate() {
                if let Some(w) = w {
                    if !w.busy && w.next_due <= now {
                        w.busy = true;
                        due.push((key.clone(), index));
                    }
                }
            }
        }
        for (key, index) in due {
            self.spawn_resource_task(key, index, false);
        }
    }

    /// Probe (or, with `restart`, stop and start) one resource of a group,
    /// holding the group's lock so it never overlaps a group operation.
    fn spawn_resource_task(&self, key: String, index: usize, restart: bool) {
        let Some(group) = self.groups.get(&key).cloned() else {
            return;
        };
        let tx = self.monitor_tx.clone();
        self.ops.spawn(async move {
            let _serial = group.lock.lock().await;
            let r = &group.resources[index];
            let outcome = if restart {
                let stopped = r.stop().await;
                MonitorOutcome::Restarted(match stopped {
                    Ok(()) => r.start().await,
                    Err(e) => Err(format!("stop failed: {e}")),
                })
            } else {
                MonitorOutcome::Probed(r.monitor().await)
            };
            let _ = tx
                .send(MonitorDone {
                    key,
                    index,
                    outcome,
                })
                .await;
        });
    }

    fn on_monitor_done(&mut self, done: MonitorDone) {
        let MonitorDone {
            key,
            index,
            outcome,
        } = done;
        let Some(Some(w)) = self.watches.get_mut(&key).and_then(|ws| ws.get_mut(index)) else {
            // The group was stopped or restarted meanwhile: stale result.
            return;
        };
        let name = self.groups[&key].resources[index].name().to_string();
        w.busy = false;
        w.next_due = Instant::now() + w.spec.interval;
        let running = match outcome {
            MonitorOutcome::Probed(Ok(running)) => running,
            MonitorOutcome::Probed(Err(e)) => {
                tracing::warn!("monitor of {name} (group {key}) failed: {e}");
                false
            }
            MonitorOutcome::Restarted(Ok(())) => {
                tracing::info!("{name} (group {key}) restarted locally after a failed monitor");
                return;
            }
            MonitorOutcome::Restarted(Err(e)) => {
                tracing::error!("local restart of {name} (group {key}) failed: {e}");
                false
            }
        };
        match w.budget.on_probe(running) {
            Verdict::Healthy => {}
            Verdict::Restart { attempt, max } => {
                tracing::warn!(
                    "{name} (group {key}) is not running: restarting it here (restart {attempt} of {max})"
                );
                w.busy = true;
                self.spawn_resource_task(key, index, true);
            }
            Verdict::GiveUp { restarts } => {
                self.watches.remove(&key);
                let local = self
                    .cfg
                    .resources
                    .groups
                    .iter()
                    .any(|g| g.key == key && g.preferred_node == self.cfg.local_node);
                let which = if local {
                    cluster::Which::Local
                } else {
                    cluster::Which::Foreign
                };
                tracing::error!(
                    "{name} (group {key}) keeps failing after {restarts} local restart(s): handing {} groups to the peer (standby {})",
                    which.as_str(),
                    which.as_str()
                );
                self.feed(Event::Command(cluster::Command::Standby(which)));
            }
        }
    }

    fn on_wire_events(&mut self, events: Vec<wire::Event>) {
        for e in events {
            match e {
                wire::Event::Message {
                    header,
                    message,
                    link,
                } => {
                    let Some(msg) = wire::typed::from_wire(&message) else {
                        tracing::debug!(t = %header.msg_type, src = %header.src, "message type not used in haresources mode; ignored");
                        continue;
                    };
                    let link = LinkId(self.links.get(link).cloned().unwrap_or_default());
                    self.feed(Event::Heard {
                        from: header.src,
                        link,
                        generation: header.generation,
                        msg,
                    });
                }
                wire::Event::PeerRestarted { node, old, new } => {
                    tracing::info!("{node} restarted (generation {old} -> {new})")
                }
                wire::Event::LinkUp { node, link } => tracing::info!(
                    "link {node}:{} up",
                    self.links.get(link).map(String::as_str).unwrap_or("?")
                ),
                wire::Event::LinkDown { node, link } => tracing::warn!(
                    "link {node}:{} dead (nothing heard for its dead time)",
                    self.links.get(link).map(String::as_str).unwrap_or("?")
                ),
                wire::Event::Lost { node, seq } => {
                    tracing::warn!("message {seq} from {node} irretrievably lost")
                }
                wire::Event::FlowControlDisabled { node } => tracing::warn!(
                    "{node} does not speak heartbeat's flow control; disabled cluster-wide"
                ),
                wire::Event::NodeList { from, nodes, .. } => {
                    tracing::debug!("{from} lists nodes {}", nodes.join(" "))
                }
            }
        }
    }

    fn begin_shutdown(&mut self, why: &str, started: &mut Option<Instant>) {
        if started.is_some() {
            tracing::warn!("{why} again: graceful shutdown already in progress");
            return;
        }
        *started = Some(Instant::now());
        tracing::info!(
            "{why}: graceful shutdown: releasing every group, then telling the peer (shutdone)"
        );
        self.feed(Event::Command(cluster::Command::Shutdown));
    }

    /// Re-read the configuration; on error keep the running one.
    fn reload(&mut self, why: &str) -> Result<String, String> {
        let cfg = match Config::load(&self.opts.config_dir, self.opts.node.as_deref()) {
            Ok((cfg, _warnings)) => cfg,
            Err(diags) => {
                let text = diags
                    .iter()
                    .filter(|d| d.severity == config::Severity::Error)
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::error!("{why}: reload failed, keeping the running configuration: {text}");
                return Err(format!("reload failed, running configuration kept: {text}"));
            }
        };
        let mut ignored = Vec::new();
        if cfg.ha.media != self.cfg.ha.media || cfg.ha.udpport != self.cfg.ha.udpport {
            ignored.push("media");
        }
        if cfg.auth.keys != self.cfg.auth.keys
            || cfg.auth.active_index != self.cfg.auth.active_index
        {
            ignored.push("authkeys");
        }
        if cfg.ha.nodes != self.cfg.ha.nodes || cfg.local_node != self.cfg.local_node {
            ignored.push("node list");
        }
        if !ignored.is_empty() {
            let text = format!(
                "{why}: changes to {} need a restart; reload refused, running configuration kept",
                ignored.join(", ")
            );
            tracing::error!("{text}");
            return Err(text);
        }
        // Groups whose resources changed get fresh agent instances; others
        // keep theirs, so an unchanged held group is not touched (no flap).
        let changed: Vec<String> = cfg
            .resources
            .groups
            .iter()
            .filter(|g| {
                self.cfg
                    .resources
                    .groups
                    .iter()
                    .find(|old| old.key == g.key)
                    .is_none_or(|old| old.resources != g.resources)
            })
            .map(|g| g.key.clone())
            .collect();
        let runtime_groups = match self.ops.block_on_outside(agents::load_some(
            self.runtime.clone(),
            cfg.clone(),
            changed.clone(),
        )) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("{why}: reload failed, keeping the running configuration: {e}");
                return Err(format!("reload failed, running configuration kept: {e}"));
            }
        };
        for (key, group) in runtime_groups {
            self.groups.insert(key, group);
        }
        let params = cluster_params(&cfg, self.generation);
        self.monitor_specs = agents::monitor_specs(&cfg);
        self.cfg = cfg;
        let notes = self.feed(Event::Reload(params));
        let text = format!(
            "{why}: configuration reloaded ({} group(s) redefined){}",
            changed.len(),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        );
        tracing::info!("{text}");
        Ok(text)
    }

    fn on_control(&mut self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status {
                status: status::snapshot(self),
            },
            Request::Standby(scope) => {
                let notes = self.feed(Event::Command(cluster::Command::Standby(which(scope))));
                Response::Ok {
                    message: summarise(&format!("standby {} requested", scope.as_str()), notes),
                }
            }
            Request::Takeover(scope) => {
                let notes = self.feed(Event::Command(cluster::Command::Takeover(which(scope))));
                Response::Ok {
                    message: summarise(&format!("takeover {} requested", scope.as_str()), notes),
                }
            }
            Request::Reload => match self.reload("reload command") {
                Ok(message) => Response::Ok { message },
                Err(message) => Response::Error { message },
            },
        }
    }
}

fn which(scope: Scope) -> cluster::Which {
    match scope {
        Scope::All => cluster::Which::All,
        Scope::Local => cluster::Which::Local,
        Scope::Foreign => cluster::Which::Foreign,
    }
}

fn summarise(head: &str, notes: Vec<String>) -> String {
    if notes.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {}", notes.join("; "))
    }
}

/// Run a future on the ops runtime from the heartbeat thread and wait for it.
trait BlockOnOutside {
    fn block_on_outside<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static;
}

impl BlockOnOutside for tokio::runtime::Handle {
    fn block_on_outside<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // A reload is rare and operator-driven; waiting here for agent
        // loading (milliseconds with a warm cache) is acceptable.
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("ops runtime alive while the daemon runs")
    }
}

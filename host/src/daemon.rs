//! `wasmbeat run`: the thin IO shell around the pure [`Node`].
//!
//! The shell owns what the engine must not: sockets, the timer, the control
//! socket, signals, agent instances and the clock. Every decision is the
//! Node's; the shell turns its [`Output`]s into IO and everything that
//! happens back into [`Input`]s.
//!
//! Two tokio runtimes keep agent work off the heartbeat path: the heartbeat
//! loop runs on a current-thread runtime on the main thread, at realtime
//! priority when ha.cf asks for it; agent operations, probes and the agent
//! loading of a reload run on a separate multi-thread runtime and come back
//! through a channel as inputs. A slow `start` or a cold compile therefore
//! never delays a heartbeat.

mod agents;
mod hooks;
pub mod metrics;
mod reload;
pub mod status;
mod systemd;
mod wake_timer;
pub mod watchdog;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use tokio::sync::oneshot;

use crate::cluster::{self, ClusterParams, Level, LinkId, Op};
use crate::config::{self, Config};
use crate::control::{self, Request, Response, RuntimePaths};
use crate::logging::{self, LogTargets};
use crate::node::{Input, Node, NodeConfig, Output};
use crate::pidfile::PidFile;
use crate::resources::{GroupReport, StopRetry};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::transport::{self, Transport};
use crate::wire::{self, EndpointConfig};
use crate::Millis;

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
    /// Serve Prometheus metrics here (off when None).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// wasmbeat-only configuration choices (`--allow-crc-on-network`).
    pub load: config::LoadOptions,
    /// How long other authkeys slots still verify after the keys are
    /// loaded (`--key-rotation-window`).
    pub key_rotation_window: Duration,
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
    /// A medium could not be opened (each failing one is named).
    #[error(transparent)]
    Media(#[from] transport::OpenError),
    /// The ping nodes' ICMP sockets could not be opened.
    #[error(transparent)]
    Ping(#[from] transport::icmp::PingError),
    /// The track_link carrier watch could not start.
    #[error(transparent)]
    Carrier(#[from] transport::carrier::CarrierError),
    /// The agent runtime or an agent failed to load.
    #[error("{0}")]
    Agents(String),
    /// The metrics listen address could not be bound.
    #[error(
        "metrics listen address {addr}: {source}; pick a free address or drop --metrics-listen"
    )]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// ha.cf asks for a watchdog device that cannot be used.
    #[error(transparent)]
    Watchdog(#[from] watchdog::OpenError),
    /// A STONITH device cannot be loaded or its parameters are wrong.
    #[error("fencing devices:\n{0}")]
    Fencing(#[from] crate::fence::FenceConfigError),
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
pub fn load_config(
    dir: &Path,
    node: Option<&str>,
    opts: config::LoadOptions,
) -> Result<Config, DaemonError> {
    match Config::load_with(dir, node, opts) {
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

/// In a partition where both nodes hold groups, the node whose name sorts
/// later waits this long before fencing: long enough for the first node's
/// power switch or BMC to cut its peer (a few seconds for most devices).
const FENCE_DELAY: Duration = Duration::from_secs(10);

/// One fencing attempt (every device tried) ends within this; the core
/// retries a failed attempt 5 s later.
const FENCE_ATTEMPT_LIMIT: Duration = Duration::from_secs(60);

/// The engine's view of a configuration.
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
        ping: Box::new(cluster::PingParams {
            nodes: cfg.ha.ping_nodes(),
            deadping: cfg.ha.deadping,
            ipfail: cfg.ha.ipfail(),
            track_links: cfg.ha.track_link.clone(),
        }),
        fencing: cluster::FenceParams {
            configured: cfg.ha.fencing_configured(&cfg.local_node),
            delay: FENCE_DELAY,
        },
        tiebreaker: cfg.ha.tiebreaker.is_some(),
    }
}

fn log_targets(cfg: &Config) -> LogTargets {
    LogTargets {
        logfile: cfg.ha.logfile.as_ref().map(PathBuf::from),
        debugfile: cfg.ha.debugfile.as_ref().map(PathBuf::from),
        facility: cfg.ha.logfacility.clone(),
        use_logd: cfg.ha.use_logd.unwrap_or(false),
    }
}

/// Something the ops runtime finished, on its way back to the loop.
enum Done {
    /// A group operation, with its full report (kept for `status`).
    Group {
        key: String,
        op: Op,
        report: GroupReport,
    },
    /// A probe, a local restart or a fencing attempt: already the Node's input.
    Resource(Input),
    /// The agents of a reload, loaded (or not) off the heartbeat thread.
    Agents {
        reload: u64,
        loaded: Result<Vec<(String, Arc<GroupResources>)>, String>,
    },
}

/// Shortest sleep of the loop: a deadline already due never makes it spin
/// (the longest is [`crate::node::MAX_SLEEP`]).
const TIMER_MIN: Duration = Duration::from_millis(1);

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
    let cfg = load_config(&opts.config_dir, opts.node.as_deref(), opts.load)?;
    for note in logging::init(&log_targets(&cfg))? {
        tracing::warn!("{note}");
    }
    let paths = RuntimePaths::for_config_dir(&opts.config_dir, opts.runtime_dir.as_deref());
    let _pid = PidFile::acquire(&paths.pid_file)?;
    // A missing watchdog driver stops the start now, not after the agents
    // compiled; the device is opened (and armed) just before the loop.
    if let Some(path) = &cfg.ha.watchdog {
        watchdog::precheck(path)?;
    }

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

    // STONITH devices: loaded and validated now, so a broken device stops
    // the start instead of a takeover.
    let fencing = crate::fence::Fencing::from_config(
        &cfg.ha,
        &cfg.policy,
        &cfg.local_node,
        &opts.config_dir,
        &runtime,
    )?;
    if fencing.is_configured() {
        ops_rt.block_on(fencing.validate(FENCE_ATTEMPT_LIMIT))?;
        tracing::info!(
            "STONITH: a dead peer that may run groups is reset before they start here, by {}",
            fencing.describe().join("; ")
        );
    }

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
        Loaded {
            groups,
            runtime,
            fencing,
        },
        ops_rt.handle().clone(),
    ));
    // Give agents' background work (announcements) a moment to finish.
    ops_rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The IO the heartbeat loop owns around the [`Node`].
struct Shell {
    cfg: Config,
    opts: RunOptions,
    node: Node,
    groups: BTreeMap<String, Arc<GroupResources>>,
    ops: tokio::runtime::Handle,
    done_tx: mpsc::Sender<Done>,
    started: Instant,
    reports: BTreeMap<String, (Op, GroupReport)>,
    runtime: Runtime,
    /// The configuration of a reload whose agents are loading.
    staged: Option<Config>,
    /// The operator waiting for the answer to that reload, if one asked.
    reload_reply: Option<oneshot::Sender<Response>>,
    /// Packets the Node asked to send, for the loop's transport.
    outbox: Vec<wire::OutPacket>,
    exit: bool,
    /// systemd's notify protocol (ready, reloading, stopping, watchdog).
    systemd: systemd::ServiceManager,
    /// A state change happened since `STATUS=` was last refreshed.
    status_dirty: bool,
    /// Prometheus counters and the state gauges' renderer.
    metrics: metrics::Metrics,
    /// `[notify.NAME]` commands run on state changes.
    hooks: hooks::Hooks,
    /// The STONITH devices this node may use (none configured: never asked).
    fencing: crate::fence::Fencing,
    /// ha.cf's `watchdog` device, petted after each of our heartbeats.
    watchdog: Option<watchdog::Watchdog>,
    /// Each medium's send and receive errors, as the transport counts them.
    media_errors: Vec<Arc<transport::MediumErrors>>,
    /// This run's generation (`hg`): the witness's replay check counts in it.
    generation: u64,
    /// The witness requests' seq, shared by every exchange of this run.
    tiebreak_seq: Arc<std::sync::atomic::AtomicU64>,
}

/// What start-up loaded before the loop turns: the groups' agents, the
/// runtime they run on, and the fencing devices.
struct Loaded {
    groups: BTreeMap<String, Arc<GroupResources>>,
    runtime: Runtime,
    fencing: crate::fence::Fencing,
}

async fn heartbeat_loop(
    cfg: Config,
    opts: RunOptions,
    paths: RuntimePaths,
    state_dir: PathBuf,
    loaded: Loaded,
    ops: tokio::runtime::Handle,
) -> Result<(), DaemonError> {
    let Loaded {
        groups,
        runtime,
        fencing,
    } = loaded;
    use tokio::signal::unix::{signal, SignalKind};

    let identity = wire::identity::load_or_create(&state_dir, cfg.ha.hbgenmethod)?;
    let generation = identity.generation;
    let mut transport = Transport::open(&cfg.ha.media).await?;
    let links: Vec<String> = cfg.ha.media.iter().map(transport::medium_label).collect();
    // Echo replies from the ping nodes, probed off this thread.
    let (ping_tx, mut ping_rx) = mpsc::channel::<String>(64);
    let ping_members: Vec<String> = cfg
        .ha
        .ping_nodes()
        .into_iter()
        .flat_map(|n| n.members)
        .collect();
    if !ping_members.is_empty() {
        transport::icmp::start(&ping_members, cfg.ha.keepalive, ping_tx.clone())?;
    }
    // Carrier of the track_link interfaces, from rtnetlink events.
    let (carrier_tx, mut carrier_rx) = mpsc::channel::<(String, bool)>(64);
    if !cfg.ha.track_link.is_empty() {
        transport::carrier::start(&cfg.ha.track_link, carrier_tx)?;
        tracing::info!(
            "tracking carrier of {} (track_link): a lost carrier hands the groups over through ipfail at once",
            cfg.ha.track_link.join(", ")
        );
    } else {
        drop(carrier_tx);
    }
    if let Some(w) = cfg.ha.tiebreaker {
        tracing::info!(
            "tie-breaker: witness {w} decides which side of a partition runs the groups (lease {:?})",
            cfg.ha.deadtime * 2
        );
    }
    let nodes: Vec<&str> = cfg.ha.nodes.iter().map(String::as_str).collect();
    let mut ecfg = EndpointConfig::new(&cfg.local_node, &nodes, cfg.auth.keyring()?);
    ecfg.hopfudge = cfg.ha.hopfudge;
    ecfg.max_rexmit_delay = cfg.ha.max_rexmit_delay;
    ecfg.classic_auth_field = cfg.ha.msgfmt == config::hacf::MsgFmt::Classic;
    ecfg.seed = rand::random();
    ecfg.key_rotation_window = opts.key_rotation_window;

    let listener = control::server::bind(&paths.socket).map_err(|source| DaemonError::Control {
        path: paths.socket.clone(),
        source,
    })?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
    tokio::spawn(control::server::serve(listener, ctl_tx));
    // Scrapes are served on the agents' runtime; only the rendering, on
    // request, happens here. Two queued at most: a flood gets 503s.
    let (scrape_tx, mut scrape_rx) = mpsc::channel::<oneshot::Sender<String>>(2);
    if let Some(addr) = opts.metrics_listen {
        let bound = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(|l| {
                let _enter = ops.enter();
                tokio::net::TcpListener::from_std(l)
            })
            .map_err(|source| DaemonError::Metrics { addr, source })?;
        tracing::info!("Prometheus metrics on http://{addr}/metrics");
        ops.spawn(metrics::serve(bound, scrape_tx));
    }

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Async)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Async)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Async)?;

    let started = Instant::now();
    let (done_tx, mut done_rx) = mpsc::channel(64);
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
    let node = Node::new(
        NodeConfig {
            cluster: cluster_params(&cfg, generation),
            endpoint: ecfg,
            identity,
            links: links.into_iter().map(LinkId).collect(),
            monitors: agents::monitor_specs(&cfg),
        },
        Millis(0),
    );
    let mut node = node;
    let peers_saved = restore_peer_state(&mut node, &state_dir);
    let mut peer_writer = PeerStateWriter::start(state_dir.clone(), peers_saved);
    let hooks = hooks::Hooks::start(cfg.policy.notify.clone(), &cfg.local_node, &ops);
    let mut wake = wake_timer::WakeTimer::new().map_err(DaemonError::Async)?;
    // The last step that can fail before the loop turns: from here on the
    // device is armed, and only a graceful stop disarms it.
    let watchdog = match &cfg.ha.watchdog {
        Some(path) => Some(watchdog::Watchdog::open(
            path,
            cfg.ha.deadtime,
            cfg.ha.keepalive,
        )?),
        None => None,
    };
    let mut shell = Shell {
        cfg,
        opts,
        node,
        groups,
        ops,
        done_tx,
        started,
        reports: BTreeMap::new(),
        runtime,
        staged: None,
        reload_reply: None,
        outbox: Vec::new(),
        exit: false,
        systemd: systemd::ServiceManager::from_env(),
        status_dirty: false,
        generation,
        tiebreak_seq: Default::default(),
        metrics: metrics::Metrics::new(),
        hooks,
        fencing,
        watchdog,
        media_errors: transport.errors(),
    };
    let mut load = wire::environment::LoadAvg::default();
    let mut tick = |shell: &mut Shell| {
        shell.feed(Input::Tick {
            wall_secs: wire::environment::wall_secs(),
            loadavg: load.refresh(),
        });
    };
    tick(&mut shell);
    // Media are open, agents loaded and the control socket bound.
    let line = shell.status_line();
    shell.systemd.ready(&line);

    let mut shutdown_started: Option<Instant> = None;
    loop {
        // One timer for the Node's next deadline (a peer's death, the next
        // heartbeat, a retransmission, a probe), on a timerfd: one wake-up
        // per deadline (see wake_timer).
        let now = Instant::now();
        let due = shell
            .node
            .next_timeout(shell.now())
            .map(|m| shell.started + Duration::from_millis(m.0))
            .unwrap_or(now + crate::node::MAX_SLEEP)
            // Bounds: never spin on a deadline that is already due, and
            // look again at least once a second whatever happens.
            .clamp(now + TIMER_MIN, now + crate::node::MAX_SLEEP);
        let due = shell
            .systemd
            .next_pet(now)
            .map_or(due, |pet| due.min(pet.max(now + TIMER_MIN)));
        wake.arm(due).map_err(DaemonError::Async)?;
        tokio::select! {
            Some(inbound) = transport.recv() => { shell.feed(Input::Packet { link: inbound.link, bytes: inbound.data }); }
            Some(member) = ping_rx.recv() => { shell.feed(Input::PingReply { member }); }
            Some((iface, up)) = carrier_rx.recv() => { shell.feed(Input::Carrier { iface, up }); }
            fired = wake.expired() => {
                fired.map_err(DaemonError::Async)?;
                tick(&mut shell);
            }
            Some(done) = done_rx.recv() => shell.on_done(done),
            Some((req, reply)) = ctl_rx.recv() => shell.on_control(req, reply),
            Some(reply) = scrape_rx.recv() => {
                let report = status::snapshot(&shell);
                let _ = reply.send(shell.metrics.render(&report));
            }
            _ = sigterm.recv() => shell.begin_shutdown("SIGTERM", &mut shutdown_started),
            _ = sigint.recv() => shell.begin_shutdown("SIGINT", &mut shutdown_started),
            _ = sighup.recv() => shell.reload("SIGHUP", None),
        }
        let mut own_status = false;
        for pkt in std::mem::take(&mut shell.outbox) {
            own_status |= pkt.msg_type == wire::fields::T_STATUS && !pkt.resend;
            transport.send(&pkt).await;
        }
        // The hardware watchdog is petted with each of our own heartbeats,
        // once it is out: the core decides them every keepalive, so a stuck
        // core, loop or transmit path stops both (see daemon/watchdog.rs).
        if own_status {
            shell.pet_watchdog();
        }
        // Petted from here and nowhere else: a loop that stops turning
        // stops petting.
        shell.systemd.pet(Instant::now());
        peer_writer.offer(shell.node.peer_state(), false);
        if std::mem::take(&mut shell.status_dirty) {
            let line = shell.status_line();
            shell.systemd.status(&line);
        }
        if shell.exit {
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
    // The magic close only when the core released every group (Exit);
    // a shutdown that gave up on a stuck stop leaves the device armed, so
    // the reset frees what may still be held.
    if let Some(w) = shell.watchdog.take() {
        if shell.exit {
            w.disarm();
        }
        // Otherwise it is dropped armed, and says so.
    }
    // Closing the channel ends the ping threads.
    drop(ping_rx);
    drop(ping_tx);
    // The seq reached at exit, so a restart right away keeps all of it.
    peer_writer.offer(shell.node.peer_state(), true);
    peer_writer.finish();
    tracing::info!(
        "{} left the cluster after {:.1} s",
        shell.cfg.local_node,
        shell.started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Restore what we last accepted from each peer before this start; a
/// missing or unreadable file means starting as heartbeat does (never a
/// refusal to start). Returns what was restored (already on disk).
fn restore_peer_state(node: &mut Node, state_dir: &Path) -> Vec<wire::PeerState> {
    use wire::peer_state;
    match peer_state::load(state_dir) {
        Ok(states) => {
            if !states.is_empty() {
                tracing::info!(
                    "restored peer sequence state from {}: {}; older messages from them are refused as replays",
                    peer_state::path(state_dir).display(),
                    states
                        .iter()
                        .map(|s| format!("{} generation {} seq {}", s.node, s.generation, s.seq))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            node.restore_peer_state(&states);
            states
        }
        Err(e) => {
            tracing::warn!(
                "ignoring peer sequence state ({e}); starting without it: messages recorded before this start are not recognised as replays until each peer restarts. The file is rewritten shortly"
            );
            Vec::new()
        }
    }
}

/// Writes the peer state file off the heartbeat thread (fsync can take
/// milliseconds); queued states collapse to the newest before each write.
struct PeerStateWriter {
    policy: wire::peer_state::SavePolicy,
    tx: Option<std::sync::mpsc::Sender<Vec<wire::PeerState>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeerStateWriter {
    fn start(state_dir: PathBuf, on_disk: Vec<wire::PeerState>) -> PeerStateWriter {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<wire::PeerState>>();
        let thread = std::thread::Builder::new()
            .name("wasmbeat-state".into())
            .spawn(move || {
                while let Ok(mut states) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        states = newer;
                    }
                    if let Err(e) = wire::peer_state::save(&state_dir, &states) {
                        tracing::warn!("cannot save peer sequence state: {e}");
                    }
                }
            })
            .map_err(|e| {
                tracing::warn!(
                    "cannot start the state writer thread: {e}; peer sequence state is not saved"
                )
            })
            .ok();
        PeerStateWriter {
            policy: wire::peer_state::SavePolicy::written(on_disk, Instant::now()),
            tx: thread.is_some().then_some(tx),
            thread,
        }
    }

    /// Hand `states` to the writer when the policy says so (or `always`).
    fn offer(&mut self, states: Vec<wire::PeerState>, always: bool) {
        let due = self.policy.due(&states, Instant::now());
        if let (Some(tx), true) = (&self.tx, due || always) {
            let _ = tx.send(states);
        }
    }

    /// Wait for the last write.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The core retries a failed stop itself (every second, heartbeat's
/// HA_STOPRETRYMAX semantics), so each request is one attempt per resource.
const ONE_ATTEMPT: StopRetry = StopRetry {
    attempts: 1,
    pause: Duration::ZERO,
};

/// Upper bound on a graceful shutdown (stops of every group plus the handoff).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(120);

impl Shell {
    fn status_line(&self) -> String {
        status::one_line(&self.node.cluster_status())
    }

    /// Pet the ha.cf watchdog (if any); a failed write is counted.
    fn pet_watchdog(&mut self) {
        if let Some(w) = &mut self.watchdog {
            if !w.pet(Instant::now()) {
                self.metrics.on_watchdog_failure();
            }
        }
    }

    fn now(&self) -> Millis {
        Millis(self.started.elapsed().as_millis() as u64)
    }

    /// Feed one input to the Node and carry out what it decides; returns
    /// the state changes it logged (for the operator who caused them).
    fn feed(&mut self, input: Input) -> Vec<String> {
        let now = self.now();
        let outputs = self.node.handle(now, input);
        self.act(outputs)
    }

    fn act(&mut self, outputs: Vec<Output>) -> Vec<String> {
        let mut notes = Vec::new();
        for output in outputs {
            match output {
                Output::Transmit(p) => self.outbox.push(p),
                Output::RunGroup { group, op } => self.run_group(group, op),
                Output::Announce(group) => self.reannounce(group),
                Output::Probe { group, resource } => {
                    self.spawn_resource_task(group, resource, false)
                }
                Output::Restart { group, resource } => {
                    self.metrics.on_monitor_restart(&group);
                    self.spawn_resource_task(group, resource, true)
                }
                Output::LoadAgents { reload, groups } => self.load_agents(reload, groups),
                Output::Reloaded(result) => self.reloaded(result),
                Output::Log(change) => {
                    let line = format!("{}: {}", change.what, change.why);
                    match change.level {
                        Level::Info => tracing::info!("{line}"),
                        Level::Warn => tracing::warn!("{line}"),
                        Level::Crit => tracing::error!("{line}"),
                    }
                    notes.push(line);
                    self.status_dirty = true;
                    self.metrics.on_change(&change);
                    self.hooks.on_change(&change);
                }
                Output::Fence(node) => self.fence(node),
                Output::AskTiebreak { peer, lease } => self.ask_tiebreak(peer, lease),
                Output::ReleaseTiebreak { peer } => self.release_tiebreak(peer),
                Output::Exit => self.exit = true,
            }
        }
        notes
    }

    /// Reset a dead peer with the configured devices, off the heartbeat
    /// thread; the outcome comes back as [`Input::FenceDone`].
    fn fence(&mut self, node: String) {
        let fencing = self.fencing.clone();
        let tx = self.done_tx.clone();
        // The core logged why; the fence module logs each device it tries.
        self.ops.spawn(async move {
            let started = Instant::now();
            let result = fencing
                .fence(&node, crate::fence::FenceAction::Reset, FENCE_ATTEMPT_LIMIT)
                .await
                .map(|outcome| outcome.to_string())
                .map_err(|e| format!("{e} (after {:.1} s)", started.elapsed().as_secs_f64()));
            let _ = tx
                .send(Done::Resource(Input::FenceDone { node, result }))
                .await;
        });
    }

    /// The witness client for the configuration in effect (`Err`: why
    /// none can ask, e.g. a crc key).
    fn tiebreak_client(&self) -> Result<crate::witness::Client, String> {
        let addr = self.cfg.ha.tiebreaker.ok_or("no tiebreaker in ha.cf")?;
        if matches!(
            self.cfg.auth.method,
            wasmbeat_core::wire::keys::AuthMethod::Crc
        ) {
            return Err(
                "authkeys uses crc, which is no authentication: the witness refuses it".into(),
            );
        }
        let ring = self.cfg.auth.keyring().map_err(|e| e.to_string())?;
        Ok(crate::witness::Client::new(
            addr,
            &self.cfg.local_node,
            self.generation,
            ring,
            self.tiebreak_seq.clone(),
        ))
    }

    /// Ask the witness for the lease, off the heartbeat thread; the
    /// verdict comes back as [`Input::TiebreakDone`].
    fn ask_tiebreak(&mut self, peer: String, lease: Duration) {
        let tx = self.done_tx.clone();
        let client = self.tiebreak_client();
        self.ops.spawn(async move {
            let (verdict, detail) = match client {
                Ok(c) => c.acquire(&peer, lease).await,
                Err(e) => (cluster::TiebreakVerdict::Unreachable, e),
            };
            tracing::debug!(%peer, ?verdict, "tie-breaker: {detail}");
            let _ = tx
                .send(Done::Resource(Input::TiebreakDone {
                    peer,
                    verdict,
                    detail,
                }))
                .await;
        });
    }

    /// Tell the witness we give the lease up (best effort).
    fn release_tiebreak(&mut self, peer: String) {
        if let Ok(c) = self.tiebreak_client() {
            self.ops.spawn(async move { c.release(&peer).await });
        }
    }

    fn run_group(&mut self, key: String, op: Op) {
        let Some(group) = self.groups.get(&key).cloned() else {
            // The Node only names configured groups; a reload race is the
            // only way here. Report failure so the Node does not wait.
            tracing::error!("group {key} is not configured here; reporting the {op:?} as failed");
            let _ = self.done_tx.try_send(Done::Group {
                key,
                op,
                report: GroupReport {
                    op,
                    ok: false,
                    failure: Some("group not configured".into()),
                    steps: vec![],
                    elapsed: Duration::ZERO,
                },
            });
            return;
        };
        tracing::info!("{} group {key} ({})", op.verb_ing(), group.describe(op));
        let tx = self.done_tx.clone();
        self.ops.spawn(async move {
            // One operation at a time per group, whatever the Node asks.
            let _serial = group.lock.lock().await;
            let report = match op {
                Op::Start => crate::resources::start_group(&group.resources, ONE_ATTEMPT).await,
                Op::Stop => crate::resources::stop_group(&group.resources, ONE_ATTEMPT).await,
            };
            let _ = tx.send(Done::Group { key, op, report }).await;
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
            for (name, e) in crate::resources::restart_all(&group.resources).await {
                tracing::warn!("re-announcing {name}: {e}");
            }
        });
    }

    /// Probe (or, with `restart`, stop and start) one resource of a group,
    /// holding the group's lock so it never overlaps a group operation.
    fn spawn_resource_task(&self, key: String, index: usize, restart: bool) {
        let Some(group) = self.groups.get(&key).cloned() else {
            return;
        };
        let tx = self.done_tx.clone();
        self.ops.spawn(async move {
            let _serial = group.lock.lock().await;
            let Some(r) = group.resources.get(index) else {
                return;
            };
            let input = if restart {
                let result = match r.stop().await {
                    Ok(()) => r.start().await,
                    Err(e) => Err(format!("stop failed: {e}")),
                };
                Input::RestartDone {
                    group: key,
                    resource: index,
                    result,
                }
            } else {
                Input::ProbeDone {
                    group: key,
                    resource: index,
                    result: r.monitor().await,
                }
            };
            let _ = tx.send(Done::Resource(input)).await;
        });
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Group { key, op, report } => {
                // The Node logs the outcome (with this detail) as a state
                // change; failures also get the full step list here.
                if !report.ok {
                    tracing::error!(
                        "group {key} could not be {}: {}; steps: {}",
                        op.verb_ed(),
                        report.failure.as_deref().unwrap_or("unknown failure"),
                        report.summary()
                    );
                }
                self.metrics.on_group_done(&key, op, &report);
                let detail = report.failure.clone().unwrap_or_else(|| report.summary());
                let ok = report.ok;
                self.reports.insert(key.clone(), (op, report));
                // Each operation instantiated agents on the ops threads' arenas.
                trim_heap();
                self.feed(Input::GroupDone {
                    group: key,
                    op,
                    ok,
                    detail,
                });
            }
            Done::Resource(input) => {
                self.feed(input);
            }
            Done::Agents { reload, loaded } => {
                let result = match loaded {
                    Ok(groups) => {
                        // Installed before the Node applies the reload, which
                        // may start a new group at once.
                        self.groups.extend(groups);
                        if let Some(cfg) = self.staged.take() {
                            self.hooks.replace(cfg.policy.notify.clone(), &self.ops);
                            self.cfg = cfg;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.staged = None;
                        Err(e)
                    }
                };
                trim_heap();
                self.feed(Input::AgentsLoaded { reload, result });
            }
        }
    }

    fn begin_shutdown(&mut self, why: &str, started: &mut Option<Instant>) {
        if started.is_some() {
            tracing::warn!("{why} again: graceful shutdown already in progress");
            return;
        }
        *started = Some(Instant::now());
        self.systemd.stopping(why);
        tracing::info!(
            "{why}: graceful shutdown: releasing every group, then telling the peer (shutdone)"
        );
        self.feed(Input::Command(cluster::Command::Shutdown));
    }

    /// Re-read the configuration and hand the Node a reload plan; the
    /// changed groups' agents load off this thread and the answer comes
    /// when they are in (`Output::Reloaded`). On error the running
    /// configuration stays.
    fn reload(&mut self, why: &str, reply: Option<oneshot::Sender<Response>>) {
        let answer = |reply: Option<oneshot::Sender<Response>>, r: Response| {
            if let Some(tx) = reply {
                let _ = tx.send(r);
            }
        };
        if self.node.reload_pending() {
            let message =
                format!("{why}: a reload is still loading agents; try again when it finished");
            tracing::warn!("{message}");
            return answer(reply, Response::Error { message });
        }
        let plan = match reload::plan(&self.cfg, &self.opts, why) {
            Ok((plan, cfg)) => {
                self.staged = Some(cfg);
                plan
            }
            Err(message) => {
                tracing::error!("{message}");
                return answer(reply, Response::Error { message });
            }
        };
        tracing::info!(
            "{why}: reloading; loading agents of {} changed group(s) off the heartbeat thread",
            plan.changed.len()
        );
        self.reload_reply = reply;
        self.systemd.reloading();
        self.feed(Input::Reload(plan));
    }

    fn load_agents(&mut self, reload: u64, groups: Vec<String>) {
        let Some(cfg) = self.staged.clone() else {
            return;
        };
        let runtime = self.runtime.clone();
        let tx = self.done_tx.clone();
        self.ops.spawn(async move {
            let loaded = agents::load_some(runtime, cfg, groups).await;
            let _ = tx.send(Done::Agents { reload, loaded }).await;
        });
    }

    fn reloaded(&mut self, result: Result<String, String>) {
        match &result {
            Ok(text) => tracing::info!("{text}"),
            Err(text) => tracing::error!("{text}"),
        }
        if result.is_ok() {
            // deadtime and keepalive reload; the device path does not.
            let (deadtime, keepalive) = (self.cfg.ha.deadtime, self.cfg.ha.keepalive);
            if let Some(w) = &mut self.watchdog {
                w.tune(deadtime, keepalive);
            }
        }
        let line = self.status_line();
        self.systemd.reloaded(&line);
        if let Some(tx) = self.reload_reply.take() {
            let _ = tx.send(match result {
                Ok(message) => Response::Ok { message },
                Err(message) => Response::Error { message },
            });
        }
    }

    /// The operator's word that `node` is off: fencing it is done.
    fn fence_ack(&mut self, node: String) -> Response {
        let status = self.node.cluster_status();
        let Some(view) = status.nodes.iter().find(|n| n.name == node && !n.local) else {
            return Response::Error {
                message: format!("{node} is not a peer in this cluster (ha.cf node)"),
            };
        };
        if !matches!(view.fencing, cluster::FenceView::Pending { .. }) {
            return Response::Error {
                message: format!(
                    "{node} is not waiting to be fenced (its state: {}); nothing to confirm",
                    view.status.as_str()
                ),
            };
        }
        tracing::warn!("the operator confirms that {node} is off (wasmbeat fence-ack)");
        self.fencing.ack(&node);
        let notes = self.feed(Input::FenceDone {
            node: node.clone(),
            result: Ok("confirmed off by the operator (wasmbeat fence-ack)".into()),
        });
        Response::Ok {
            message: summarise(&format!("{node} confirmed off"), notes),
        }
    }

    fn on_control(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        let answer = match req {
            Request::Status => Response::Status {
                status: Box::new(status::snapshot(self)),
            },
            Request::Standby(scope) => {
                let notes = self.feed(Input::Command(cluster::Command::Standby(scope)));
                Response::Ok {
                    message: summarise(&format!("standby {} requested", scope.as_str()), notes),
                }
            }
            Request::Takeover(scope) => {
                let notes = self.feed(Input::Command(cluster::Command::Takeover(scope)));
                Response::Ok {
                    message: summarise(&format!("takeover {} requested", scope.as_str()), notes),
                }
            }
            Request::Reload => return self.reload("reload command", Some(reply)),
            Request::FenceAck(node) => self.fence_ack(node),
        };
        let _ = reply.send(answer);
    }
}

fn summarise(head: &str, notes: Vec<String>) -> String {
    if notes.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {}", notes.join("; "))
    }
}

//! The agent runtime: a wasmtime engine with the component model, an
//! on-disk cache of compiled components, pre-linked instances so each
//! operation instantiates in microseconds, and per-operation limits (a
//! deadline through epoch interruption and a memory limit). An agent that
//! traps, loops or hoards memory yields an [`AgentError`]; the host
//! process is never taken down by an agent.
//!
//! ```text
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let agent = rt.load(&token.agent, Path::new("/etc/ha.d"))?;
//! let res = agent.instance_for(&token.text, &token.args, grant).await?;
//! res.start().await?;  res.monitor().await?;  res.stop().await?;
//! rt.wait_background().await;   // pending ARP announcements
//! ```

pub mod bind;
pub mod boundary;
pub mod builtin;
pub mod cache;
pub mod cli;
pub mod conformance;
pub(crate) mod host;
pub mod limiter;
mod loaded;
pub mod scratch_net;
pub mod slots;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use crate::caps::{Caller, Caps, ProcessTable};
use crate::config::token::AgentRef;
use crate::confine::ProcessLimits;
use crate::grant::needs::{AddressParams, AgentDecl, CommandDecl, Needs, ParamDecl};
use crate::grant::Grant;
use crate::logging::budget::LineBudget;
use host::{HostState, ResourceAgent, ResourceAgentPre};
use limiter::{InstanceLimiter, LimitHit};
use wasmbeat_args::bind::Declared;
use wasmbeat_args::value::ValueType;

pub use cache::CacheUse;
pub use host::wasmbeat::agent::types::{Meta, Param, ParamType, Status};

/// Per-operation deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// `start` (default 20 s).
    pub start: Duration,
    /// `stop` (default 20 s).
    pub stop: Duration,
    /// `monitor`/`status` (default 10 s).
    pub monitor: Duration,
    /// `validate` (default 10 s).
    pub validate: Duration,
    /// `meta-data` (default 5 s).
    pub meta_data: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            start: Duration::from_secs(20),
            stop: Duration::from_secs(20),
            monitor: Duration::from_secs(10),
            validate: Duration::from_secs(10),
            meta_data: Duration::from_secs(5),
        }
    }
}

/// Runtime settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (None: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Linear memory limit per agent instance, all its memories together
    /// (default 64 MiB).
    pub memory_limit: usize,
    /// Per-operation deadlines.
    pub deadlines: Deadlines,
    /// How often a running agent is interrupted to check its deadline and
    /// let other tasks run (default 10 ms).
    pub epoch_tick: Duration,
    /// The `wasmbeat-compile` helper that compiles agents in a child
    /// process (the daemon is built without a compiler); None: the one
    /// next to this executable ([`cache::default_compiler`]).
    pub compiler: Option<PathBuf>,
    /// Where the servers agents spawn write their output.
    pub server_output: crate::caps::ServerOutput,
}

/// Default cache directory for compiled components.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmbeat";

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            memory_limit: 64 << 20,
            deadlines: Deadlines::default(),
            epoch_tick: Duration::from_millis(10),
            compiler: None,
            server_output: crate::caps::ServerOutput::Log,
        }
    }
}

/// An operation an agent exports (a group's start/stop is `cluster::Op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentOp {
    /// `meta-data`.
    MetaData,
    /// `validate`.
    Validate,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `monitor` (heartbeat's `status`).
    Monitor,
}

impl fmt::Display for AgentOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AgentOp::MetaData => "meta-data",
            AgentOp::Validate => "validate",
            AgentOp::Start => "start",
            AgentOp::Stop => "stop",
            AgentOp::Monitor => "monitor",
        })
    }
}

/// Why an agent could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No built-in agent and no `.wasm` file of that name.
    #[error("agent {name:?} not found: not a built-in agent ({builtins}) and {} does not exist", path.display())]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where the file was looked for.
        path: PathBuf,
        /// Built-in names, for the message.
        builtins: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read agent {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a component, or it imports something the host does not offer.
    #[error("agent {name:?} is not a usable wasmbeat:agent@0.2.0 component: {reason}")]
    Invalid {
        /// Agent name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine or linker could not be set up.
    #[error("agent runtime setup failed: {0}")]
    Setup(String),
    /// The `wasmbeat-compile` helper is missing, untrusted or failed.
    #[error("agent compiler {}: {reason}", program.display())]
    Compiler {
        /// The helper.
        program: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The agent file or the compiled-agent cache could have been written
    /// by someone other than root.
    #[error(transparent)]
    Untrusted(#[from] crate::trust::TrustError),
}

/// Why an agent operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The resource arguments are malformed.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// Something the agent needs is missing on this node.
    #[error("not installed: {0}")]
    NotInstalled(String),
    /// The configuration cannot work on this node.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// A capability call was outside the resource's grant.
    #[error("denied: {0}")]
    Denied(String),
    /// The operation (or a call it made) ran past its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The agent reported a failure.
    #[error("failed: {0}")]
    Failed(String),
    /// The agent tried to grow its memory past the limit.
    #[error("agent exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The agent crashed (trap, panic, abort, exit).
    #[error("agent crashed: {0}")]
    Trap(String),
}

impl AgentError {
    /// The OCF exit code for this error (1 generic, 2 args, 4 privilege,
    /// 5 not installed, 6 not configured).
    pub fn ocf_exit_code(&self) -> i32 {
        match self {
            AgentError::InvalidArgs(_) => 2,
            AgentError::Denied(_) => 4,
            AgentError::NotInstalled(_) => 5,
            AgentError::NotConfigured(_) => 6,
            _ => 1,
        }
    }
}

impl From<host::wasmbeat::agent::types::Error> for AgentError {
    fn from(e: host::wasmbeat::agent::types::Error) -> AgentError {
        use host::wasmbeat::agent::types::Error as W;
        match e {
            W::InvalidArgs(m) => AgentError::InvalidArgs(m),
            W::NotInstalled(m) => AgentError::NotInstalled(m),
            W::NotConfigured(m) => AgentError::NotConfigured(m),
            W::Denied(m) => AgentError::Denied(m),
            W::Timeout => AgentError::Timeout("the agent reported a timeout".into()),
            W::Failed(m) => AgentError::Failed(m),
        }
    }
}

/// Counts running operations; the epoch ticker only runs while there are
/// any, so an idle daemon has no periodic wake-ups.
struct Ticker {
    state: Mutex<(usize, bool)>, // (active operations, shutting down)
    cv: Condvar,
}

struct ActiveGuard(Arc<Ticker>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 -= 1;
    }
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Arc<Ticker>> {
        let t = Arc::new(Ticker {
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        });
        let t2 = Arc::clone(&t);
        std::thread::Builder::new()
            .name("wasmbeat-epoch".into())
            .spawn(move || loop {
                {
                    let mut s = t2.state.lock().unwrap_or_else(|p| p.into_inner());
                    while s.0 == 0 && !s.1 {
                        s = t2.cv.wait(s).unwrap_or_else(|p| p.into_inner());
                    }
                    if s.1 {
                        return;
                    }
                }
                std::thread::sleep(tick);
                engine.increment_epoch();
            })?;
        Ok(t)
    }

    fn active(self: &Arc<Self>) -> ActiveGuard {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += 1;
        self.cv.notify_all();
        ActiveGuard(Arc::clone(self))
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    /// What every operation's capabilities share.
    shared: crate::caps::Shared,
    ticker: Arc<Ticker>,
    /// At most as many operations hold an instance as the pool has slots.
    slots: slots::Gate,
    /// Agents loaded and still in use, shared by every resource that
    /// names them.
    loaded: loaded::Loaded<AgentInner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut s = self.ticker.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 = true;
        self.ticker.cv.notify_all();
    }
}

/// The engine settings every runtime and the `wasmbeat-compile` helper
/// share: the helper compiles for exactly the engine that maps its output.
pub fn engine_config() -> Config {
    let mut wc = Config::new();
    wc.epoch_interruption(true);
    wc.wasm_component_model(true);
    // Operations take a kept instance slot instead of mapping one each
    // (see slots.rs).
    wc.allocation_strategy(slots::pooling());
    wc
}

/// What [`engine_config`] sets, as one line: with the wasmtime release it
/// keys the compiled-agent cache, so a change of either compiles afresh
/// instead of offering old code to wasmtime's compatibility check.
pub(crate) fn engine_fingerprint() -> String {
    format!(
        "wasmtime {WASMTIME_VERSION}; epoch interruption; component model; {:?}",
        slots::pooling()
    )
}

/// The wasmtime release this runtime is built against (a unit test keeps
/// it equal to Cargo.lock's).
pub const WASMTIME_VERSION: &str = "48.0.8";

fn engine() -> Result<Engine, LoadError> {
    Engine::new(&engine_config()).map_err(|e| LoadError::Setup(format!("{e:#}")))
}

/// The agent runtime (cheap to clone; one per daemon).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Set up the engine and the host imports.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let engine = engine()?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Setup(format!("{e:#}")))?;
        ResourceAgent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Setup(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Setup(format!("starting the epoch thread: {e}")))?;
        crate::confine::log_support_once();
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                shared: crate::caps::Shared::default(),
                ticker,
                slots: slots::Gate::new(),
                loaded: loaded::Loaded::default(),
            }),
        })
    }

    /// The settings this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Resolve and load an agent the way heartbeat resolves resource
    /// scripts: a built-in agent, then `<config_dir>/resource.d/NAME.wasm`;
    /// a `.wasm` token is taken relative to `<config_dir>/resource.d/`
    /// unless absolute.
    pub fn load(&self, agent: &AgentRef, config_dir: &Path) -> Result<LoadedAgent, LoadError> {
        let rd = config_dir.join("resource.d");
        match agent {
            AgentRef::Name(name) => {
                if let Some(bytes) = builtin::lookup(name) {
                    return self.load_component(name, bytes, true);
                }
                let path = rd.join(format!("{name}.wasm"));
                if !path.exists() {
                    return Err(LoadError::NotFound {
                        name: name.clone(),
                        path,
                        builtins: builtin::NAMES.join(", "),
                    });
                }
                self.load_file_as(name, &path)
            }
            AgentRef::WasmPath(p) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    rd.join(p)
                };
                self.load_file_as(&agent.display_name(), &path)
            }
        }
    }

    /// Load an agent from a `.wasm` file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedAgent, LoadError> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.load_file_as(&name, path)
    }

    fn load_file_as(&self, name: &str, path: &Path) -> Result<LoadedAgent, LoadError> {
        // Checked before reading; a missing file is reported as not found.
        let bytes = self.read_agent_file(name, path)?;
        self.load_bytes(name, &bytes)
    }

    /// Load an agent from component bytes.
    pub fn load_bytes(&self, name: &str, wasm: &[u8]) -> Result<LoadedAgent, LoadError> {
        self.load_component(name, wasm, false)
    }

    fn load_component(
        &self,
        name: &str,
        wasm: &[u8],
        builtin: bool,
    ) -> Result<LoadedAgent, LoadError> {
        let inner = &self.inner;
        let key = loaded::Key::new(name, wasm, builtin);
        if let Some(agent) = inner.loaded.get(&key) {
            return Ok(LoadedAgent { inner: agent });
        }
        let (component, cache_use): (Component, CacheUse) = self.compile(name, wasm)?;
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: name.to_string(),
            reason: format!("{e:#}"),
        };
        let instance_pre = inner.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = ResourceAgentPre::new(instance_pre).map_err(invalid)?;
        let agent = Arc::new(AgentInner {
            name: name.to_string(),
            pre,
            cache_use,
            builtin,
            meta: tokio::sync::OnceCell::new(),
            rt: self.clone(),
        });
        inner.loaded.insert(key, &agent);
        Ok(LoadedAgent { inner: agent })
    }

    /// The engine every component of this runtime is compiled for (fence
    /// agents use it too: one epoch ticker, one cache).
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Compile `wasm` (or map it from the cache) for this runtime's engine.
    pub(crate) fn compile(
        &self,
        name: &str,
        wasm: &[u8],
    ) -> Result<(Component, CacheUse), LoadError> {
        let inner = &self.inner;
        let compiler = inner
            .config
            .compiler
            .clone()
            .unwrap_or_else(cache::default_compiler);
        cache::load(
            &inner.engine,
            inner.config.cache_dir.as_deref(),
            name,
            wasm,
            &compiler,
        )
    }

    /// What every operation's capabilities share (announcer, network view).
    pub(crate) fn shared(&self) -> crate::caps::Shared {
        self.inner.shared.clone()
    }

    /// Keep the epoch ticker running while the guard lives (an operation
    /// in progress: its deadline and yields need the ticks).
    pub(crate) fn operation(&self) -> impl Drop + Send {
        self.inner.ticker.active()
    }

    /// Wait up to `deadline` for an instance slot for `what`: the permit
    /// (hold it until the instance's store is dropped) and what is left
    /// of the deadline.
    pub(crate) async fn instance_slot(
        &self,
        what: &str,
        deadline: Duration,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, Duration), AgentError> {
        self.inner.slots.enter(what, deadline).await
    }

    /// Read an agent file the way resource agents are read (trusted
    /// owner, not found reported as such).
    pub(crate) fn read_agent_file(&self, name: &str, path: &Path) -> Result<Vec<u8>, LoadError> {
        if let Err(e) = crate::trust::check("agent", path) {
            if !matches!(&e, crate::trust::TrustError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound)
            {
                return Err(e.into());
            }
        }
        std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                LoadError::NotFound {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    builtins: builtin::NAMES.join(", "),
                }
            } else {
                LoadError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }

    /// Wait until background work started by agents (the remaining
    /// address announcements) is done. A short-lived process (the CLI)
    /// calls this before exiting.
    pub async fn wait_background(&self) {
        self.inner.shared.announcer.wait_idle().await
    }

    /// Background announcement tasks still running.
    pub fn pending_background(&self) -> usize {
        self.inner.shared.announcer.pending()
    }
}

struct AgentInner {
    name: String,
    pre: ResourceAgentPre<HostState>,
    cache_use: CacheUse,
    builtin: bool,
    meta: tokio::sync::OnceCell<Meta>,
    rt: Runtime,
}

/// A compiled, pre-linked agent, ready to instantiate per operation.
#[derive(Clone)]
pub struct LoadedAgent {
    inner: Arc<AgentInner>,
}

impl LoadedAgent {
    /// The name the agent was loaded under (`IPaddr`, file stem for paths).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this is an agent embedded in the binary (only those get
    /// their declared needs as a default grant, see [`crate::grant::resolve`]).
    pub fn is_builtin(&self) -> bool {
        self.inner.builtin
    }

    /// Whether loading used the component cache (a load that shared a
    /// live one reports that one's).
    pub fn cache_use(&self) -> CacheUse {
        self.inner.cache_use
    }

    /// The agent's self-description (asked once, then remembered).
    pub async fn meta_data(&self) -> Result<Meta, AgentError> {
        let caller = Caller {
            agent: self.inner.name.clone(),
            resource: format!("{} (meta-data)", self.inner.name),
        };
        self.inner
            .meta
            .get_or_try_init(|| async {
                let procs = ProcessTable::new(&caller.resource, ProcessLimits::default());
                let caps = Caps::new(
                    caller,
                    Arc::new(Grant::none()),
                    procs,
                    self.inner.rt.shared(),
                );
                self.run_op(
                    AgentOp::MetaData,
                    caps,
                    Vec::new(),
                    &Arc::new(LineBudget::for_agent()),
                )
                .await
                .map(|r| match r {
                    OpResult::Meta(m) => m,
                    _ => unreachable!("meta-data returns meta"),
                })
            })
            .await
            .cloned()
    }

    /// Bind a resource: `args` are the haresources positional arguments
    /// (bound to the agent's parameters in declared order; an argument
    /// `name=value` naming a declared parameter binds by name) and
    /// `grant` is what the resource may do.
    pub async fn instance_for(
        &self,
        resource: &str,
        args: &[String],
        grant: Grant,
    ) -> Result<Resource, AgentError> {
        self.instance_with_limits(resource, args, grant, ProcessLimits::default())
            .await
    }

    /// [`LoadedAgent::instance_for`] with limits on what the resource may
    /// start (agents.toml's `pids_max`, `memory_max`, `max_spawned`).
    pub async fn instance_with_limits(
        &self,
        resource: &str,
        args: &[String],
        grant: Grant,
        limits: ProcessLimits,
    ) -> Result<Resource, AgentError> {
        let meta = self.meta_data().await?;
        let args = bind_args(&meta, args)?;
        Ok(Resource {
            agent: self.clone(),
            caller: Caller {
                agent: self.inner.name.clone(),
                resource: resource.to_string(),
            },
            args,
            grant: Arc::new(grant),
            procs: ProcessTable::with_output(
                resource,
                limits,
                self.inner.rt.inner.config.server_output.clone(),
            ),
            log_budget: Arc::new(LineBudget::for_agent()),
        })
    }

    async fn run_op(
        &self,
        op: AgentOp,
        caps: Caps,
        args: Vec<(String, String)>,
        log_budget: &Arc<LineBudget>,
    ) -> Result<OpResult, AgentError> {
        let rt = &self.inner.rt.inner;
        let d = rt.config.deadlines;
        let deadline = match op {
            AgentOp::MetaData => d.meta_data,
            AgentOp::Validate => d.validate,
            AgentOp::Start => d.start,
            AgentOp::Stop => d.stop,
            AgentOp::Monitor => d.monitor,
        };
        let _active = rt.ticker.active();
        // Declared before the store, so dropped after it: the slot is
        // free only once the instance is gone.
        let (_slot, left) = rt
            .slots
            .enter(&format!("{} {op}", self.inner.name), deadline)
            .await?;
        let sb = Sandbox::new(rt.config.memory_limit);
        let mut store = Store::new(
            &rt.engine,
            HostState {
                wasi: sb.wasi,
                table: sb.table,
                limiter: sb.limiter,
                caps,
                stderr: sb.stderr,
                log_budget: Arc::clone(log_budget),
            },
        );
        store.limiter(|s| &mut s.limiter);
        confine_store(&mut store);

        let pre = &self.inner.pre;
        let work = async {
            let inst = pre.instantiate_async(&mut store).await;
            let inst = match inst {
                Ok(i) => i,
                Err(e) => return Err(trap_error(&store, e)),
            };
            let g = inst.wasmbeat_agent_agent();
            let r = match op {
                AgentOp::MetaData => g
                    .call_meta_data(&mut store)
                    .await
                    .map(|m| Ok(OpResult::Meta(m))),
                AgentOp::Validate => g
                    .call_validate(&mut store, &args)
                    .await
                    .map(|r| r.map(|()| OpResult::Unit)),
                AgentOp::Start => g
                    .call_start(&mut store, &args)
                    .await
                    .map(|r| r.map(|()| OpResult::Unit)),
                AgentOp::Stop => g
                    .call_stop(&mut store, &args)
                    .await
                    .map(|r| r.map(|()| OpResult::Unit)),
                AgentOp::Monitor => g
                    .call_monitor(&mut store, &args)
                    .await
                    .map(|r| r.map(OpResult::Status)),
            };
            match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(AgentError::from(e)),
                Err(e) => Err(trap_error(&store, e)),
            }
        };
        let outcome = tokio::time::timeout(left, work).await;
        store.data().report_suppressed_logs();
        let l = &store.data().limiter;
        tracing::trace!(agent = %self.inner.name, %op, memory_peak = l.memory_peak,
            memories = l.memories_created, tables = l.tables_created, "instance footprint");
        match outcome {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(agent = %self.inner.name, %op, "operation exceeded its deadline of {deadline:?}; instance discarded");
                Err(AgentError::Timeout(format!(
                    "{op} exceeded its deadline of {deadline:?}"
                )))
            }
        }
    }
}

/// What every agent instance's store starts with, whatever its world: WASI
/// with nothing preopened and no sockets, a resource table and a memory
/// limiter with the runtime's caps, and a small stderr buffer.
pub(crate) struct Sandbox {
    pub(crate) wasi: wasmtime_wasi::WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) stderr: MemoryOutputPipe,
}

impl Sandbox {
    pub(crate) fn new(memory_limit: usize) -> Sandbox {
        let stderr = MemoryOutputPipe::new(4096);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(limiter::MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limiter::MAX_WASI_RESOURCES);
        Sandbox {
            wasi,
            table,
            limiter: InstanceLimiter::new(memory_limit),
            stderr,
        }
    }
}

/// The per-store limits every agent operation runs under (the memory
/// limiter is installed by the caller, which knows its state type).
pub(crate) fn confine_store<T>(store: &mut Store<T>) {
    store.set_hostcall_fuel(boundary::HOSTCALL_FUEL);
    store.set_max_component_handles(limiter::MAX_COMPONENT_HANDLES);
    // Yield to the executor every tick: a looping agent never blocks
    // the thread, and the caller's timeout can cancel it.
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
}

fn trap_error(store: &Store<HostState>, e: wasmtime::Error) -> AgentError {
    let s = store.data();
    trap_error_of(&s.limiter, &s.stderr, e)
}

/// An [`AgentError`] for a trap, from the instance's limiter and stderr.
pub(crate) fn trap_error_of(
    limiter: &InstanceLimiter,
    stderr: &MemoryOutputPipe,
    e: wasmtime::Error,
) -> AgentError {
    match limiter.hit {
        Some(LimitHit::Memory) => {
            return AgentError::MemoryLimit {
                limit: limiter.memory_limit,
            }
        }
        Some(LimitHit::TableElements) => {
            return AgentError::Trap(format!(
                "{e:#} (the agent's tables exceed {} elements in total)",
                limiter::MAX_TABLE_ELEMENTS
            ))
        }
        None => {}
    }
    let stderr = stderr.contents();
    let stderr = crate::logging::untrusted::sanitize_bytes(stderr.trim_ascii(), 1024);
    let mut msg = format!("{e:#}");
    if msg.contains("fuel allocated for hostcalls has been exhausted") {
        // wasmtime's message comes with a wasm backtrace nobody can read.
        msg = format!(
            "the agent tried to pass more than {} bytes to the host in one call",
            boundary::HOSTCALL_FUEL
        );
    }
    if msg.contains("resource limit exceeded") {
        msg.push_str(&format!(
            " (an agent instance may create at most {} core instances, {} memories and {} tables)",
            limiter::MAX_INSTANCES,
            limiter::MAX_MEMORIES,
            limiter::MAX_TABLES
        ));
    }
    if stderr.is_empty() {
        AgentError::Trap(msg)
    } else {
        AgentError::Trap(format!("{msg}; agent stderr: {stderr}"))
    }
}

enum OpResult {
    Unit,
    Meta(Meta),
    Status(Status),
}

/// The value type a WIT parameter type stands for.
fn value_type(t: ParamType) -> ValueType {
    match t {
        ParamType::String => ValueType::String,
        ParamType::Integer => ValueType::Integer,
        ParamType::Boolean => ValueType::Boolean,
        ParamType::Path => ValueType::Path,
        ParamType::Address => ValueType::Address,
        ParamType::Endpoint => ValueType::Endpoint,
        ParamType::Name => ValueType::Name,
    }
}

/// The host's view of an agent's meta-data: typed parameters and needs.
pub fn agent_decl(meta: &Meta) -> AgentDecl {
    use host::wasmbeat::agent::types as wit;
    let strings = |v: &[String]| v.to_vec();
    let needs = |n: &wit::Needs| Needs {
        when: n.when.clone(),
        netlink_read: n.netlink_read,
        addresses: n
            .addresses
            .iter()
            .map(|a| AddressParams {
                ip: a.ip.clone(),
                cidr_netmask: a.cidr_netmask.clone(),
                nic: a.nic.clone(),
                broadcast: a.broadcast.clone(),
            })
            .collect(),
        commands: n
            .commands
            .iter()
            .map(|c| CommandDecl {
                name: c.name.clone(),
                description: c.description.clone(),
                argv: strings(&c.argv),
                capabilities: strings(&c.capabilities),
            })
            .collect(),
        pidfiles: strings(&n.pidfiles),
        probes: strings(&n.probes),
        paths: strings(&n.paths),
    };
    AgentDecl {
        name: meta.name.clone(),
        params: meta
            .params
            .iter()
            .map(|p| ParamDecl {
                name: p.name.clone(),
                description: p.description.clone(),
                ty: value_type(p.type_),
                default: p.default.clone(),
                required: p.required,
            })
            .collect(),
        needs: meta.needs.iter().map(needs).collect(),
    }
}

/// Bind haresources arguments to the agent's parameters (positionally in
/// declared order, or `name=value`) and check each value against its
/// parameter's type.
pub fn bind_args(meta: &Meta, args: &[String]) -> Result<Vec<(String, String)>, AgentError> {
    let declared: Vec<Declared<'_>> = meta
        .params
        .iter()
        .map(|p| Declared {
            name: &p.name,
            required: p.required,
            description: &p.description,
        })
        .collect();
    let bound = wasmbeat_args::bind::bind(&meta.name, &declared, args)
        .map_err(|e| AgentError::InvalidArgs(e.to_string()))?;
    for (name, v) in &bound {
        if let Some(p) = meta.params.iter().find(|p| &p.name == name) {
            wasmbeat_args::value::check(value_type(p.type_), v)
                .map_err(|e| AgentError::InvalidArgs(format!("parameter {name}: {e}")))?;
        }
    }
    Ok(bound)
}

/// One configured resource (agent + arguments + grant). Operations are
/// async and never block the calling thread for longer than one epoch
/// tick; each instantiates a fresh, isolated instance.
#[derive(Clone)]
pub struct Resource {
    agent: LoadedAgent,
    caller: Caller,
    args: Vec<(String, String)>,
    grant: Arc<Grant>,
    procs: ProcessTable,
    /// Log lines its agent may write, shared by its operations.
    log_budget: Arc<LineBudget>,
}

impl Resource {
    fn caps(&self) -> Caps {
        Caps::new(
            self.caller.clone(),
            Arc::clone(&self.grant),
            self.procs.clone(),
            self.agent.inner.rt.shared(),
        )
    }

    /// The resource name (haresources token).
    pub fn name(&self) -> &str {
        &self.caller.resource
    }

    /// The address this resource manages, when its agent is the built-in
    /// IPaddr (or IPaddr2) granted exactly one address: the group runner
    /// starts consecutive ones together. Only the built-in agent is known
    /// to touch nothing but its own address; a custom agent granted an
    /// address may depend on what its left neighbour did, so it keeps its
    /// place in the order.
    pub fn managed_address(&self) -> Option<std::net::IpAddr> {
        let is_ipaddr = self.agent.is_builtin()
            && builtin::lookup(self.agent.name()).is_some_and(|b| std::ptr::eq(b, builtin::IPADDR));
        match self.grant.addresses.as_slice() {
            [one] if is_ipaddr => Some(one.spec.ip),
            _ => None,
        }
    }

    /// The bound (name, value) arguments.
    pub fn args(&self) -> &[(String, String)] {
        &self.args
    }

    async fn unit(&self, op: AgentOp) -> Result<(), AgentError> {
        let t0 = Instant::now();
        let r = self
            .agent
            .run_op(op, self.caps(), self.args.clone(), &self.log_budget)
            .await
            .map(|_| ());
        tracing::debug!(resource = %self.caller.resource, %op, elapsed = ?t0.elapsed(), ok = r.is_ok());
        r
    }

    /// Check the arguments.
    pub async fn validate(&self) -> Result<(), AgentError> {
        self.unit(AgentOp::Validate).await
    }

    /// Bring the resource up (idempotent).
    pub async fn start(&self) -> Result<(), AgentError> {
        self.unit(AgentOp::Start).await
    }

    /// Take the resource down (idempotent). Once the agent's stop has
    /// succeeded, whatever the resource started and is still running (a
    /// server's workers, what an init script daemonized) is killed: the
    /// resource is stopped as a whole.
    pub async fn stop(&self) -> Result<(), AgentError> {
        self.unit(AgentOp::Stop).await?;
        let procs = self.procs.clone();
        let killed = tokio::task::spawn_blocking(move || procs.kill_all())
            .await
            .unwrap_or(0);
        if killed > 0 {
            tracing::warn!(resource = %self.caller.resource,
                "killed {killed} process(es) the resource started that were still running after its stop");
        }
        Ok(())
    }

    /// The resource's process table (its cgroup and what it started).
    pub fn processes(&self) -> &ProcessTable {
        &self.procs
    }

    /// Whether the resource is active here.
    pub async fn monitor(&self) -> Result<Status, AgentError> {
        match self
            .agent
            .run_op(
                AgentOp::Monitor,
                self.caps(),
                self.args.clone(),
                &self.log_budget,
            )
            .await?
        {
            OpResult::Status(s) => Ok(s),
            _ => unreachable!("monitor returns a status"),
        }
    }
}

/// Meta-data of an agent `name` with string parameters `(name, required)`
/// and nothing else, for unit tests of argument binding.
#[cfg(test)]
pub(crate) fn test_meta(name: &str, params: &[(&str, bool)]) -> Meta {
    Meta {
        name: name.into(),
        version: "1".into(),
        description: String::new(),
        params: params
            .iter()
            .map(|&(name, required)| Param {
                name: name.into(),
                description: format!("the {name}"),
                type_: ParamType::String,
                default: None,
                required,
            })
            .collect(),
        needs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        test_meta("X", &[("ip", true), ("nic", false), ("count", false)])
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_cache_key_names_the_wasmtime_release_cargo_lock_pins() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("the workspace's Cargo.lock");
        let pinned = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"\n");
        assert!(
            lock.contains(&pinned),
            "Cargo.lock pins another wasmtime than WASMTIME_VERSION {WASMTIME_VERSION}: update it"
        );
        assert!(engine_fingerprint().contains(WASMTIME_VERSION));
    }

    #[test]
    fn resources_naming_one_agent_share_its_load_while_any_holds_it() {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: None,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let ipaddr = AgentRef::Name("IPaddr".into());
        let dir = Path::new("/nonexistent");
        let first = rt.load(&ipaddr, dir).unwrap();
        let second = rt.load(&ipaddr, dir).unwrap();
        assert!(Arc::ptr_eq(&first.inner, &second.inner), "loaded twice");
        let other = rt.load(&AgentRef::Name("IPaddr2".into()), dir).unwrap();
        assert!(!Arc::ptr_eq(&first.inner, &other.inner), "names differ");
        drop((first, second));
        let key = loaded::Key::new("IPaddr", builtin::lookup("IPaddr").unwrap(), true);
        assert!(
            rt.inner.loaded.get(&key).is_none(),
            "kept after its last user"
        );
    }

    #[test]
    fn positional_and_named_arguments_bind_in_order() {
        let b = bind_args(&meta(), &s(&["10.0.0.1", "eth0"])).unwrap();
        assert_eq!(
            b,
            vec![
                ("ip".into(), "10.0.0.1".into()),
                ("nic".into(), "eth0".into())
            ]
        );
        let b = bind_args(&meta(), &s(&["count=3", "10.0.0.1"])).unwrap();
        assert_eq!(
            b,
            vec![
                ("count".into(), "3".into()),
                ("ip".into(), "10.0.0.1".into())
            ]
        );
    }

    #[test]
    fn values_are_checked_against_their_types() {
        let mut m = meta();
        m.params[1].type_ = ParamType::Name;
        m.params[2].type_ = ParamType::Integer;
        assert!(bind_args(&m, &s(&["x", "eth0", "3"])).is_ok());
        let e = bind_args(&m, &s(&["x", "eth0 -c", "3"])).unwrap_err();
        assert!(
            matches!(&e, AgentError::InvalidArgs(t) if t.starts_with("parameter nic:")),
            "{e}"
        );
        assert!(matches!(
            bind_args(&m, &s(&["x", "eth0", "three"])),
            Err(AgentError::InvalidArgs(_))
        ));
    }

    #[test]
    fn too_many_missing_and_duplicate_arguments_are_invalid() {
        assert!(matches!(
            bind_args(&meta(), &s(&["a", "b", "c", "d"])),
            Err(AgentError::InvalidArgs(_))
        ));
        assert!(matches!(
            bind_args(&meta(), &s(&[])),
            Err(AgentError::InvalidArgs(_))
        ));
        assert!(matches!(
            bind_args(&meta(), &s(&["ip=1", "ip=2"])),
            Err(AgentError::InvalidArgs(_))
        ));
    }

    #[test]
    fn runtime_and_operations_can_move_across_tokio_tasks() {
        fn send<T: Send + Sync>(_: &T) {}
        fn send_fut<F: std::future::Future + Send>(_: F) {}
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: None,
            ..RuntimeConfig::default()
        })
        .unwrap();
        send(&rt);
        let agent = rt.load_bytes("IPaddr", builtin::IPADDR).unwrap();
        send(&agent);
        send_fut(agent.meta_data());
        send_fut(agent.instance_for("x", &[], Grant::none()));
        send_fut(rt.wait_background());
        fn resource_ops(r: &Resource) {
            send_fut(r.start());
            send_fut(r.stop());
            send_fut(r.monitor());
            send_fut(r.validate());
        }
        let _ = resource_ops;
    }

    #[test]
    fn ocf_codes() {
        assert_eq!(AgentError::InvalidArgs(String::new()).ocf_exit_code(), 2);
        assert_eq!(AgentError::Denied(String::new()).ocf_exit_code(), 4);
        assert_eq!(AgentError::NotInstalled(String::new()).ocf_exit_code(), 5);
        assert_eq!(AgentError::NotConfigured(String::new()).ocf_exit_code(), 6);
        assert_eq!(AgentError::MemoryLimit { limit: 1 }.ocf_exit_code(), 1);
    }
}

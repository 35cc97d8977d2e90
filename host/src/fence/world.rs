//! The `fence-agent` world on the agent runtime: the same engine, cache,
//! epoch ticker, memory limiter, hostcall fuel and log capture as resource
//! agents (`crate::runtime`), a store state of its own (no resource
//! capabilities, only `log` and the device's `http`).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::http::HttpCap;
use crate::caps::{Caller, Caps, ProcessTable};
use crate::grant::Grant;
use crate::logging::budget::LineBudget;
use crate::runtime::host::wasmbeat::agent::{log, types};
use crate::runtime::limiter::InstanceLimiter;
use crate::runtime::{boundary, AgentError, CacheUse, LoadError, Meta, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "fence-agent",
    imports: { default: async },
    exports: { default: async },
    with: {
        "wasmbeat:agent/types": crate::runtime::host::wasmbeat::agent::types,
        "wasmbeat:agent/log": crate::runtime::host::wasmbeat::agent::log,
        "wasmbeat:agent/process": crate::runtime::host::wasmbeat::agent::process,
    },
});

pub use self::exports::wasmbeat::agent::fence::{FenceMeta, PowerState as WitPowerState};
use self::wasmbeat::agent::http;

/// Everything one fence operation's store owns.
pub(crate) struct FenceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: InstanceLimiter,
    stderr: MemoryOutputPipe,
    caller: Caller,
    log_budget: Arc<LineBudget>,
    http: HttpCap,
    caps: Caps,
}

crate::runtime::host::process_host!(FenceState);

impl WasiView for FenceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for FenceState {}

impl log::Host for FenceState {
    async fn log(&mut self, level: log::Level, message: String) {
        crate::runtime::host::agent_log(&self.caller, &self.log_budget, level, message)
    }
}

impl http::Host for FenceState {
    async fn request(
        &mut self,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<http::Response, types::Error> {
        boundary::string("method", &method)?;
        boundary::string("url", &url)?;
        let mut flat = Vec::with_capacity(headers.len() * 2);
        for (k, v) in &headers {
            flat.push(k.clone());
            flat.push(v.clone());
        }
        boundary::strings("headers", &flat)?;
        let r = self
            .http
            .request(
                &method,
                &url,
                &headers,
                body,
                Duration::from_millis(timeout_ms.into()),
            )
            .await;
        match &r {
            Ok(resp) => {
                tracing::debug!(device = %self.http.device, %method, %url, status = resp.status, "fence http")
            }
            Err(crate::caps::CapError::Denied(m)) => {
                tracing::warn!(device = %self.http.device, "denied: {m}")
            }
            Err(e) => {
                tracing::info!(device = %self.http.device, %method, %url, "fence http failed: {e}")
            }
        }
        let r = r?;
        Ok(http::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }
}

/// An operation of the `fence` export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    MetaData,
    Validate,
    List,
    Status(String),
    On(String),
    Off(String),
    Reset(String),
}

impl Op {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::MetaData => "meta-data",
            Op::Validate => "validate",
            Op::List => "list",
            Op::Status(_) => "status",
            Op::On(_) => "on",
            Op::Off(_) => "off",
            Op::Reset(_) => "reset",
        }
    }
}

/// What an operation returned.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Meta(FenceMeta),
    Unit,
    Nodes(Vec<String>),
    Power(WitPowerState),
}

/// A compiled, pre-linked fence agent.
#[derive(Clone)]
pub struct LoadedFence {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    builtin: bool,
    pre: FenceAgentPre<FenceState>,
    rt: Runtime,
    cache_use: CacheUse,
    meta: tokio::sync::OnceCell<FenceMeta>,
    log_budget: Arc<LineBudget>,
}

/// Link the fence world (WASI as for resource agents, `log`, `http`).
fn linker(rt: &Runtime) -> Result<Linker<FenceState>, LoadError> {
    let mut linker: Linker<FenceState> = Linker::new(rt.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| LoadError::Setup(format!("{e:#}")))?;
    FenceAgent::add_to_linker::<FenceState, HasSelf<FenceState>>(&mut linker, |s| s)
        .map_err(|e| LoadError::Setup(format!("{e:#}")))?;
    Ok(linker)
}

impl LoadedFence {
    /// Compile (or map from the cache) and pre-link a fence component.
    pub fn load(
        rt: &Runtime,
        name: &str,
        wasm: &[u8],
        builtin: bool,
    ) -> Result<LoadedFence, LoadError> {
        let (component, cache_use) = rt.compile(name, wasm)?;
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: name.to_string(),
            reason: format!("{e:#}"),
        };
        let pre = linker(rt)?.instantiate_pre(&component).map_err(invalid)?;
        let pre = FenceAgentPre::new(pre).map_err(invalid)?;
        Ok(LoadedFence {
            inner: Arc::new(Inner {
                name: name.to_string(),
                builtin,
                pre,
                rt: rt.clone(),
                cache_use,
                meta: tokio::sync::OnceCell::new(),
                log_budget: Arc::new(LineBudget::for_agent()),
            }),
        })
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether it is embedded in the binary.
    pub fn is_builtin(&self) -> bool {
        self.inner.builtin
    }

    /// The runtime it runs on.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.rt
    }

    /// Whether loading used the component cache.
    pub fn cache_use(&self) -> CacheUse {
        self.inner.cache_use
    }

    /// The agent's self-description (asked once).
    pub async fn meta_data(&self) -> Result<FenceMeta, AgentError> {
        let d = self.inner.rt.config().deadlines.meta_data;
        self.inner
            .meta
            .get_or_try_init(|| async {
                let cap = HttpCap {
                    device: format!("{} (meta-data)", self.inner.name),
                    section: format!("[fence.{}]", self.inner.name),
                    grants: Arc::new(Vec::new()),
                    deadline: tokio::time::Instant::now() + d,
                    sent: 0,
                };
                let caller = Caller {
                    agent: self.inner.name.clone(),
                    resource: cap.device.clone(),
                };
                let caps = Caps::new(
                    caller,
                    Arc::new(Grant::none()),
                    ProcessTable::new(&cap.device, crate::confine::ProcessLimits::default()),
                    self.inner.rt.shared(),
                );
                match self.run(Op::MetaData, Vec::new(), cap, caps, d).await? {
                    Answer::Meta(m) => Ok(m),
                    _ => unreachable!("meta-data returns fence-meta"),
                }
            })
            .await
            .cloned()
    }

    /// Run one operation with `args` under `http` for at most `deadline`.
    pub(crate) async fn run(
        &self,
        op: Op,
        args: Vec<(String, String)>,
        http: HttpCap,
        caps: Caps,
        deadline: Duration,
    ) -> Result<Answer, AgentError> {
        let rt = &self.inner.rt;
        let _active = rt.operation();
        // Before the store, so released after it (runtime/slots.rs).
        let (_slot, left) = rt
            .instance_slot(&format!("{} {}", self.inner.name, op.name()), deadline)
            .await?;
        let sb = crate::runtime::Sandbox::new(rt.config().memory_limit);
        let mut store = Store::new(
            rt.engine(),
            FenceState {
                wasi: sb.wasi,
                table: sb.table,
                limiter: sb.limiter,
                stderr: sb.stderr,
                caller: Caller {
                    agent: self.inner.name.clone(),
                    resource: http.device.clone(),
                },
                log_budget: Arc::clone(&self.inner.log_budget),
                http,
                caps,
            },
        );
        store.limiter(|s| &mut s.limiter);
        crate::runtime::confine_store(&mut store);
        let op_name = op.name();
        let pre = &self.inner.pre;
        let trap = |store: &Store<FenceState>, e| {
            let s = store.data();
            crate::runtime::trap_error_of(&s.limiter, &s.stderr, e)
        };
        let work = async {
            let inst = match pre.instantiate_async(&mut store).await {
                Ok(i) => i,
                Err(e) => return Err(trap(&store, e)),
            };
            let g = inst.wasmbeat_agent_fence();
            let r = match &op {
                Op::MetaData => g
                    .call_meta_data(&mut store)
                    .await
                    .map(|m| Ok(Answer::Meta(m))),
                Op::Validate => g
                    .call_validate(&mut store, &args)
                    .await
                    .map(|r| r.map(|()| Answer::Unit)),
                Op::List => g
                    .call_list(&mut store, &args)
                    .await
                    .map(|r| r.map(Answer::Nodes)),
                Op::Status(n) => g
                    .call_status(&mut store, &args, n)
                    .await
                    .map(|r| r.map(Answer::Power)),
                Op::On(n) => g
                    .call_on(&mut store, &args, n)
                    .await
                    .map(|r| r.map(|()| Answer::Unit)),
                Op::Off(n) => g
                    .call_off(&mut store, &args, n)
                    .await
                    .map(|r| r.map(|()| Answer::Unit)),
                Op::Reset(n) => g
                    .call_reset(&mut store, &args, n)
                    .await
                    .map(|r| r.map(|()| Answer::Unit)),
            };
            match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(AgentError::from(e)),
                Err(e) => Err(trap(&store, e)),
            }
        };
        let outcome = tokio::time::timeout(left, work).await;
        match outcome {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(agent = %self.inner.name, op = op_name, "fence operation exceeded its deadline of {deadline:?}; instance discarded");
                Err(AgentError::Timeout(format!(
                    "{op_name} exceeded its deadline of {deadline:?}"
                )))
            }
        }
    }
}

/// The fence agent's meta-data as resource-agent meta-data (no needs),
/// so arguments bind and are type-checked exactly as for resources.
pub(crate) fn as_meta(m: &FenceMeta) -> Meta {
    Meta {
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        params: m.params.clone(),
        needs: Vec::new(),
    }
}

//! The store state of one agent operation and the WIT imports bound to
//! the vetted capabilities in `caps`.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::{CapError, Caps, MysqlGreeting, PathKind, RunOutput};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "resource-agent",
    imports: { default: async },
    exports: { default: async },
});

use wasmbeat::agent::types::Error as WitError;
use wasmbeat::agent::{announce, files, log, netlink, probe, process, types};

impl From<CapError> for WitError {
    fn from(e: CapError) -> WitError {
        match e {
            CapError::InvalidArgs(m) => WitError::InvalidArgs(m),
            CapError::NotInstalled(m) => WitError::NotInstalled(m),
            CapError::NotConfigured(m) => WitError::NotConfigured(m),
            CapError::Denied(m) => WitError::Denied(m),
            CapError::Timeout => WitError::Timeout,
            CapError::Failed(m) => WitError::Failed(m),
        }
    }
}

/// Refuses memory growth past the limit and remembers that it did, so a
/// resulting trap (Rust's allocator aborts on failure) is reported as a
/// memory-limit error rather than a generic crash.
pub(crate) struct MemLimiter {
    pub(crate) limit: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any agent.
        Ok(desired <= 100_000)
    }
}

/// Everything one operation's store owns.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemLimiter,
    pub(crate) caps: Caps,
    pub(crate) stderr: MemoryOutputPipe,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        let c = self.caps.caller();
        let (agent, resource) = (c.agent.as_str(), c.resource.as_str());
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "wasmbeat::agent", agent, resource, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "wasmbeat::agent", agent, resource, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "wasmbeat::agent", agent, resource, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "wasmbeat::agent", agent, resource, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "wasmbeat::agent", agent, resource, "{message}")
            }
        }
    }
}

impl netlink::Host for HostState {
    async fn list_links(&mut self) -> Result<Vec<netlink::Link>, WitError> {
        Ok(self
            .caps
            .list_links()
            .await?
            .into_iter()
            .map(|l| netlink::Link {
                index: l.index,
                name: l.name,
                up: l.up,
                mac: l.mac,
                mtu: l.mtu,
            })
            .collect())
    }

    async fn list_addresses(&mut self) -> Result<Vec<netlink::Address>, WitError> {
        let links = self.caps.list_links().await?;
        Ok(self
            .caps
            .list_addresses()
            .await?
            .into_iter()
            .map(|a| netlink::Address {
                link_index: a.link_index,
                link_name: links
                    .iter()
                    .find(|l| l.index == a.link_index)
                    .map(|l| l.name.clone())
                    .unwrap_or_default(),
                address: a.ip.to_string(),
                prefix_len: a.prefix_len,
                broadcast: a.broadcast.map(|b| b.to_string()),
                label: a.label,
            })
            .collect())
    }

    async fn plan_address(&mut self, address: String) -> Result<netlink::Assignment, WitError> {
        Ok(assignment(self.caps.plan_address(&address).await?))
    }

    async fn add_address(&mut self, address: String) -> Result<netlink::Assignment, WitError> {
        Ok(assignment(self.caps.add_address(&address).await?))
    }

    async fn remove_address(&mut self, address: String) -> Result<u32, WitError> {
        Ok(self.caps.remove_address(&address).await?)
    }
}

fn assignment(p: wasmbeat_args::address::Plan) -> netlink::Assignment {
    netlink::Assignment {
        link_name: p.nic,
        address: p.ip.to_string(),
        prefix_len: p.prefix,
        broadcast: p.broadcast.map(|b| b.to_string()),
        label: p.label,
    }
}

impl announce::Host for HostState {
    async fn announce(
        &mut self,
        address: String,
        count: u32,
        interval_ms: u32,
    ) -> Result<(), WitError> {
        Ok(self
            .caps
            .announce(&address, count, Duration::from_millis(interval_ms.into()))
            .await?)
    }
}

impl process::Host for HostState {
    async fn run(&mut self, command: String, timeout_ms: u32) -> Result<process::Output, WitError> {
        let out = self
            .caps
            .run(&command, Duration::from_millis(timeout_ms.into()))
            .await?;
        Ok(output(out))
    }

    async fn spawn(&mut self, command: String) -> Result<u32, WitError> {
        Ok(self.caps.spawn(&command)?)
    }

    async fn signal(&mut self, pid: u32, signal: i32) -> Result<(), WitError> {
        Ok(self.caps.signal(pid, signal)?)
    }

    async fn is_alive(&mut self, pid: u32) -> bool {
        self.caps.is_alive(pid)
    }

    async fn pidfile_pid(&mut self, pidfile: String) -> Result<Option<u32>, WitError> {
        Ok(self.caps.pidfile_pid(&pidfile)?)
    }

    async fn spawned_exit(&mut self, pid: u32) -> Option<process::Output> {
        self.caps.spawned_exit(pid).map(output)
    }
}

fn output(out: RunOutput) -> process::Output {
    process::Output {
        exit_code: out.exit_code,
        signal: out.signal,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

impl files::Host for HostState {
    async fn inspect(&mut self, path: String) -> Result<files::PathKind, WitError> {
        Ok(match self.caps.inspect(&path)? {
            PathKind::Missing => files::PathKind::Missing,
            PathKind::File => files::PathKind::File,
            PathKind::EmptyDirectory => files::PathKind::EmptyDirectory,
            PathKind::Directory => files::PathKind::Directory,
            PathKind::Other => files::PathKind::Other,
        })
    }
}

impl probe::Host for HostState {
    async fn tcp_connect(&mut self, target: String, timeout_ms: u32) -> Result<u64, WitError> {
        let d = self
            .caps
            .tcp_connect(&target, Duration::from_millis(timeout_ms.into()))
            .await?;
        Ok(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    async fn http_get(
        &mut self,
        target: String,
        host: String,
        path: String,
        timeout_ms: u32,
    ) -> Result<u16, WitError> {
        Ok(self
            .caps
            .http_get(
                &target,
                &host,
                &path,
                Duration::from_millis(timeout_ms.into()),
            )
            .await?)
    }

    async fn dns_query(
        &mut self,
        target: String,
        name: String,
        qtype: u16,
        timeout_ms: u32,
    ) -> Result<probe::DnsAnswer, WitError> {
        let a = self
            .caps
            .dns_query(
                &target,
                &name,
                qtype,
                Duration::from_millis(timeout_ms.into()),
            )
            .await?;
        Ok(probe::DnsAnswer {
            rcode: a.rcode,
            authoritative: a.authoritative,
            answers: a.answers,
        })
    }

    async fn mysql_handshake(
        &mut self,
        target: String,
        timeout_ms: u32,
    ) -> Result<probe::MysqlGreeting, WitError> {
        Ok(
            match self
                .caps
                .mysql_handshake(&target, Duration::from_millis(timeout_ms.into()))
                .await?
            {
                MysqlGreeting::Handshake(v) => probe::MysqlGreeting::Handshake(v),
                MysqlGreeting::Refused(c, m) => probe::MysqlGreeting::Refused((c, m)),
            },
        )
    }
}

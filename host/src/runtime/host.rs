//! The store state of one agent operation and the WIT imports bound to
//! the vetted capabilities in `caps`.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::boundary;
use super::limiter::InstanceLimiter;
use crate::caps::{CapError, Caps, MysqlGreeting, PathKind, RunOutput};
use crate::logging::budget::{Admit, LineBudget};
use crate::logging::untrusted::{sanitize, MAX_LINE_BYTES};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "resource-agent",
    imports: { default: async },
    exports: { default: async },
});

use self::wasmbeat::agent::types::Error as WitError;
use self::wasmbeat::agent::{announce, files, log, netlink, probe, process, types};

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

/// Everything one operation's store owns.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) caps: Caps,
    pub(crate) stderr: MemoryOutputPipe,
    /// The resource's log-line budget (shared by its operations).
    pub(crate) log_budget: Arc<LineBudget>,
}

impl HostState {
    /// Report log lines the budget dropped and has not reported yet (at
    /// the end of an operation, when the agent may not log again soon).
    pub(crate) fn report_suppressed_logs(&self) {
        let n = self.log_budget.take_suppressed();
        if n > 0 {
            let c = self.caps.caller();
            tracing::warn!(target: "wasmbeat::agent", agent = %c.agent, resource = %c.resource,
                "{n} agent log line(s) suppressed (rate limit: a burst of 100, then 20 per second)");
        }
    }
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
        agent_log(self.caps.caller(), &self.log_budget, level, message)
    }
}

/// One agent log line into the daemon's log: budgeted, sanitised, tagged
/// with the agent and what it runs for (resource agents and fence agents).
pub(crate) fn agent_log(
    c: &crate::caps::Caller,
    log_budget: &LineBudget,
    level: log::Level,
    message: String,
) {
    {
        let (agent, resource) = (c.agent.as_str(), c.resource.as_str());
        match log_budget.admit() {
            Admit::Drop => return,
            Admit::Log { suppressed: 0 } => {}
            Admit::Log { suppressed } => {
                tracing::warn!(target: "wasmbeat::agent", agent, resource,
                    "{suppressed} agent log line(s) suppressed (rate limit: a burst of 100, then 20 per second)")
            }
        }
        // One line per call, whatever the agent put in it: no forged line
        // starts, no terminal escapes, a few KiB at most.
        let message = sanitize(&message, MAX_LINE_BYTES);
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
        boundary::string("address", &address)?;
        Ok(assignment(self.caps.plan_address(&address).await?))
    }

    async fn add_address(&mut self, address: String) -> Result<netlink::Assignment, WitError> {
        boundary::string("address", &address)?;
        Ok(assignment(self.caps.add_address(&address).await?))
    }

    async fn remove_address(&mut self, address: String) -> Result<u32, WitError> {
        boundary::string("address", &address)?;
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
        boundary::string("address", &address)?;
        Ok(self
            .caps
            .announce(&address, count, Duration::from_millis(interval_ms.into()))
            .await?)
    }
}

/// `process` for a store state with a `caps: Caps` field: resource
/// agents, and fence agents (vendor commands).
macro_rules! process_host {
    ($t:ty) => {
        impl $crate::runtime::host::wasmbeat::agent::process::Host for $t {
            async fn run(
                &mut self,
                command: String,
                timeout_ms: u32,
            ) -> Result<
                $crate::runtime::host::wasmbeat::agent::process::Output,
                $crate::runtime::host::wasmbeat::agent::types::Error,
            > {
                $crate::runtime::boundary::string("command", &command)?;
                let out = self
                    .caps
                    .run(
                        &command,
                        ::std::time::Duration::from_millis(timeout_ms.into()),
                    )
                    .await?;
                Ok($crate::runtime::host::output(out))
            }

            async fn spawn(
                &mut self,
                command: String,
            ) -> Result<u32, $crate::runtime::host::wasmbeat::agent::types::Error> {
                $crate::runtime::boundary::string("command", &command)?;
                Ok(self.caps.spawn(&command)?)
            }

            async fn signal(
                &mut self,
                pid: u32,
                signal: i32,
            ) -> Result<(), $crate::runtime::host::wasmbeat::agent::types::Error> {
                Ok(self.caps.signal(pid, signal)?)
            }

            async fn is_alive(&mut self, pid: u32) -> bool {
                self.caps.is_alive(pid)
            }

            async fn pidfile_pid(
                &mut self,
                pidfile: String,
            ) -> Result<Option<u32>, $crate::runtime::host::wasmbeat::agent::types::Error> {
                $crate::runtime::boundary::string("pid file", &pidfile)?;
                Ok(self.caps.pidfile_pid(&pidfile).await?)
            }

            async fn spawned_exit(
                &mut self,
                pid: u32,
            ) -> Option<$crate::runtime::host::wasmbeat::agent::process::Output> {
                self.caps
                    .spawned_exit(pid)
                    .map($crate::runtime::host::output)
            }
        }
    };
}
pub(crate) use process_host;

process_host!(HostState);

pub(crate) fn output(out: RunOutput) -> process::Output {
    process::Output {
        exit_code: out.exit_code,
        signal: out.signal,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

impl files::Host for HostState {
    async fn inspect(&mut self, path: String) -> Result<files::PathKind, WitError> {
        boundary::string("path", &path)?;
        Ok(match self.caps.inspect(&path).await? {
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
        boundary::string("target", &target)?;
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
        boundary::string("target", &target)?;
        boundary::string("host", &host)?;
        boundary::string("path", &path)?;
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
        boundary::string("target", &target)?;
        boundary::string("name", &name)?;
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
        boundary::string("target", &target)?;
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

//! A runtime resource (an agent instance) seen through the group runner's
//! [`Resource`] interface: what the daemon runs, and what lab tests drive
//! the group runner with.

use std::net::IpAddr;

use super::{Resource, ResourceFuture};
use crate::runtime;

/// An agent instance as a group member.
pub struct AgentResource(pub runtime::Resource);

impl Resource for AgentResource {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn start(&self) -> ResourceFuture<'_, ()> {
        Box::pin(async move { self.0.start().await.map_err(|e| e.to_string()) })
    }
    fn stop(&self) -> ResourceFuture<'_, ()> {
        Box::pin(async move { self.0.stop().await.map_err(|e| e.to_string()) })
    }
    fn kill_processes(&self) -> ResourceFuture<'_, usize> {
        Box::pin(async move {
            let procs = self.0.processes().clone();
            tokio::task::spawn_blocking(move || procs.kill_all())
                .await
                .map_err(|e| e.to_string())
        })
    }
    fn monitor(&self) -> ResourceFuture<'_, bool> {
        Box::pin(async move {
            match self.0.monitor().await.map_err(|e| e.to_string())? {
                runtime::Status::Running => Ok(true),
                // A failed resource is not "already running": start it again.
                runtime::Status::NotRunning | runtime::Status::Failed => Ok(false),
            }
        })
    }
    fn address(&self) -> Option<IpAddr> {
        self.0.managed_address()
    }
}

//! Vetted host capabilities for agents: netlink (addresses), announce
//! (gratuitous ARP / unsolicited NA), process, files, probe. Every call
//! goes through [`Caps`], which checks it against the calling resource's
//! [`Grant`] before it touches the system; a denied call is logged with
//! the agent and resource name and returned as [`CapError::Denied`] naming
//! the agents.toml key that would allow it. Nothing the agent passes is
//! executed or configured as given: commands come whole from the grant,
//! and an address's interface, prefix, broadcast and label are derived
//! from the grant and the node's addresses.

pub mod announce;
pub mod file_access;
pub mod netlink;
pub mod node_net;
pub mod probe;
pub mod process;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmbeat_args::address::{self, Configured, Plan, PlanError};

use crate::grant::{explain, AddressGrant, Grant};

pub use announce::Announcer;
pub use netlink::{AddrInfo, LinkInfo};
pub use node_net::NodeNet;
pub use probe::{DnsAnswer, MysqlGreeting};
pub use process::{server_log_path, ProcessTable, RunOutput, ServerOutput, DEFAULT_SERVER_LOG_DIR};

/// What `files.inspect` reports about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing there.
    Missing,
    /// A regular file.
    File,
    /// A directory without entries.
    EmptyDirectory,
    /// A directory with entries.
    Directory,
    /// Socket, device, fifo.
    Other,
}

/// A capability call failed (maps 1:1 to the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Malformed call arguments.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// Something needed is missing (interface, program).
    #[error("not installed: {0}")]
    NotInstalled(String),
    /// The request cannot work on this node as configured.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// Outside the resource's grant.
    #[error("denied: {0}")]
    Denied(String),
    /// Ran past its timeout.
    #[error("timed out")]
    Timeout,
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

/// Who is calling: for logs and denials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Agent name (`IPaddr`).
    pub agent: String,
    /// Resource name (the haresources token, `IPaddr::10.0.0.1/24`).
    pub resource: String,
}

/// What every operation of one runtime shares: the announcements in
/// flight and the view of the node's links and addresses. Cheap to clone.
#[derive(Clone, Default)]
pub struct Shared {
    /// The owner of background announcements and their budgets.
    pub announcer: Announcer,
    /// The links and addresses the host's checks read.
    pub net: NodeNet,
}

/// The capabilities of one operation of one resource. Sockets are opened
/// lazily in the calling thread's network namespace.
pub struct Caps {
    caller: Caller,
    grant: Arc<Grant>,
    procs: ProcessTable,
    /// What the runtime's operations share (announcer, network view).
    shared: Shared,
    netlink: Option<rtnetlink::Handle>,
    /// This operation's hold on the shared view of links and addresses
    /// the host's checks read (see [`node_net`]), once it needed one.
    lease: Option<node_net::Lease>,
    /// Processes found through granted pid files in this operation, each
    /// pinned by a pidfd opened when it was found, so a recycled PID is
    /// never signalled.
    found: HashMap<u32, Found>,
    /// The agents.toml section that grants more, when it is not the
    /// resource's (`[fence.NAME]` for fence devices).
    policy_section: Option<String>,
}

/// A process found through a pid file.
struct Found {
    pidfd: std::os::fd::OwnedFd,
}

/// The link called `name`, or the error a missing interface is.
fn find_link<'a>(links: &'a [LinkInfo], name: &str) -> Result<&'a LinkInfo, CapError> {
    links
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| CapError::NotInstalled(format!("no interface named {name:?}")))
}

/// findif's plan for the granted address `ip` on a node with these links
/// and addresses.
fn plan_in(
    g: &AddressGrant,
    ip: IpAddr,
    links: &[LinkInfo],
    addrs: &[AddrInfo],
) -> Result<Plan, CapError> {
    let names: Vec<String> = links.iter().map(|l| l.name.clone()).collect();
    let configured: Vec<Configured> = addrs
        .iter()
        .map(|a| Configured {
            link: links
                .iter()
                .find(|l| l.index == a.link_index)
                .map(|l| l.name.clone())
                .unwrap_or_default(),
            ip: a.ip,
            prefix: a.prefix_len,
            broadcast: a.broadcast,
            label: a.label.clone(),
        })
        .collect();
    address::plan(&g.spec, g.rule, &names, &configured).map_err(|e| match e {
        PlanError::Address(e) => CapError::InvalidArgs(format!("granted address {ip}: {e}")),
        // As heartbeat's IPaddr2: a missing nic is a configuration error (OCF 6).
        PlanError::NoSuchInterface(_) | PlanError::NoSubnet(_) | PlanError::NoNetmask(..) => {
            CapError::NotConfigured(e.to_string())
        }
    })
}

fn parse_ip(text: &str) -> Result<IpAddr, CapError> {
    text.parse()
        .map_err(|_| CapError::InvalidArgs(format!("{text:?} is not an IP address")))
}

impl Caps {
    /// Capabilities for `caller` limited by `grant`; `procs` is the
    /// resource's process table (shared by its operations) and `shared`
    /// what every operation of the runtime shares.
    pub fn new(caller: Caller, grant: Arc<Grant>, procs: ProcessTable, shared: Shared) -> Caps {
        Caps {
            caller,
            grant,
            procs,
            shared,
            netlink: None,
            lease: None,
            found: HashMap::new(),
            policy_section: None,
        }
    }

    /// Name `section` (e.g. `[fence.acme]`) as where a denied call would
    /// be granted, instead of the resource's sections.
    pub fn granted_in(mut self, section: String) -> Caps {
        self.policy_section = Some(section);
        self
    }

    /// The caller (agent and resource).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Refuse a call: logged once here, returned to the agent with the
    /// agents.toml line that would allow it.
    fn deny(&self, what: String, grant_key: &str) -> CapError {
        let hint = match &self.policy_section {
            Some(section) => format!("to allow it, add {grant_key} to {section} in agents.toml"),
            None => explain::hint(&self.caller.resource, &self.caller.agent, grant_key),
        };
        let msg = format!("{what}: not granted to {} ({hint})", self.caller.resource);
        tracing::warn!(
            agent = %self.caller.agent,
            resource = %self.caller.resource,
            "denied: {msg}"
        );
        CapError::Denied(msg)
    }

    fn handle(&mut self) -> Result<rtnetlink::Handle, CapError> {
        if let Some(h) = &self.netlink {
            return Ok(h.clone());
        }
        let handle = self.view().netlink()?;
        self.netlink = Some(handle.clone());
        Ok(handle)
    }

    fn require_read(&self) -> Result<(), CapError> {
        if self.grant.netlink_read {
            Ok(())
        } else {
            Err(self.deny(
                "listing links and addresses".to_string(),
                "netlink_read = true",
            ))
        }
    }

    /// All links (needs `netlink_read`).
    pub async fn list_links(&mut self) -> Result<Vec<LinkInfo>, CapError> {
        self.require_read()?;
        Ok(self.links().await?.to_vec())
    }

    /// This operation's hold on the namespace's shared view, taken on
    /// first use (operations that never touch addresses never take one).
    fn view(&mut self) -> node_net::Lease {
        self.lease
            .get_or_insert_with(|| self.shared.net.lease())
            .clone()
    }

    async fn links(&mut self) -> Result<Arc<Vec<LinkInfo>>, CapError> {
        let h = self.handle()?;
        let view = self.view();
        let mut s = view.lock().await;
        s.links(&h).await
    }

    /// All addresses (needs `netlink_read`), dumped now; the dump also
    /// refreshes the shared view.
    pub async fn list_addresses(&mut self) -> Result<Vec<AddrInfo>, CapError> {
        self.require_read()?;
        let h = self.handle()?;
        let view = self.view();
        let _no_change_in_flight = view.dump().await;
        let mut s = view.lock().await;
        s.refresh_addrs(&h).await.map(|a| a.clone())
    }

    /// The address grant for `ip`, or a denial.
    fn granted_address(&self, op: &str, ip: IpAddr) -> Result<AddressGrant, CapError> {
        self.grant.address(ip).cloned().ok_or_else(|| {
            self.deny(
                format!("{op} address {ip}"),
                &format!("addresses = [\"{ip}/PREFIX/IFACE\"]"),
            )
        })
    }

    /// How a granted address goes on this node (findif's choice, from the
    /// grant; nothing from the caller).
    pub async fn plan_address(&mut self, ip: &str) -> Result<Plan, CapError> {
        let ip = parse_ip(ip)?;
        let g = self.granted_address("plan", ip)?;
        let h = self.handle()?;
        let view = self.view();
        let mut s = view.lock().await;
        let links = s.links(&h).await?;
        plan_in(&g, ip, &links, s.addrs(&h).await?)
    }

    /// Add a granted address as planned. The plan, the duplicate check and
    /// the view's update happen under one hold of the view's lock, so two
    /// starts cannot plan the same free label or both pass the check. The
    /// netlink request runs after the lock is released, under the view's
    /// change guard: the adds of a group overlap, and no dump runs while
    /// one is in flight (a dump racing changes can skip addresses).
    pub async fn add_address(&mut self, ip: &str) -> Result<Plan, CapError> {
        let ip = parse_ip(ip)?;
        let g = self.granted_address("plan", ip)?;
        let h = self.handle()?;
        let view = self.view();
        let _in_flight = view.change().await;
        let (plan, added) = {
            let mut s = view.lock().await;
            let links = s.links(&h).await?;
            let addrs = s.addrs(&h).await?;
            let plan = plan_in(&g, ip, &links, addrs)?;
            let link = find_link(&links, &plan.nic)?;
            if let Some(a) = addrs.iter().find(|a| a.ip == plan.ip) {
                let on = links.iter().find(|l| l.index == a.link_index);
                return Err(CapError::Failed(format!(
                    "{} is already configured on {}",
                    plan.ip,
                    on.map_or("another interface", |l| l.name.as_str())
                )));
            }
            let added = AddrInfo {
                link_index: link.index,
                ip: plan.ip,
                prefix_len: plan.prefix,
                broadcast: plan.broadcast,
                label: plan.label.clone(),
            };
            // In the view before the kernel has it: a concurrent start of
            // the same address sees it taken.
            addrs.push(added.clone());
            (plan, added)
        };
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "adding {}/{} on {}", plan.ip, plan.prefix, plan.nic);
        let done = netlink::add_address(
            &h,
            added.link_index,
            plan.ip,
            plan.prefix,
            plan.broadcast,
            plan.label.clone(),
        )
        .await;
        if let Err(e) = done {
            let mut s = view.lock().await;
            if let Some(addrs) = s.cached_addrs() {
                if let Some(i) = addrs.iter().position(|a| *a == added) {
                    addrs.swap_remove(i);
                }
            }
            return Err(e);
        }
        Ok(plan)
    }

    /// Remove a granted address from the interfaces its grant allows;
    /// the number removed. Also stops its pending announcements.
    pub async fn remove_address(&mut self, ip: &str) -> Result<u32, CapError> {
        let ip = parse_ip(ip)?;
        let g = self.granted_address("remove", ip)?;
        self.shared.announcer.cancel(ip);
        let h = self.handle()?;
        // As add_address: the view is updated under its lock, the netlink
        // requests run under the change guard only.
        let view = self.view();
        let _in_flight = view.change().await;
        let (links, mut going) = {
            let mut s = view.lock().await;
            let links = s.links(&h).await?;
            let addrs = s.addrs(&h).await?;
            let allowed = |a: &AddrInfo| {
                a.ip == ip
                    && links
                        .iter()
                        .any(|l| l.index == a.link_index && g.allows_link(&l.name))
            };
            let going: Vec<AddrInfo> = addrs.iter().filter(|a| allowed(a)).cloned().collect();
            addrs.retain(|a| !allowed(a));
            (links, going)
        };
        let mut removed = 0;
        while let Some(a) = going.pop() {
            let name = links
                .iter()
                .find(|l| l.index == a.link_index)
                .map_or("", |l| l.name.as_str());
            tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
                "removing {ip}/{} from {name}", a.prefix_len);
            match netlink::remove_address(&h, a.link_index, ip, a.prefix_len).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    // Still configured, as are the copies not tried yet.
                    going.push(a);
                    let mut s = view.lock().await;
                    if let Some(addrs) = s.cached_addrs() {
                        addrs.extend(going);
                    }
                    return Err(e);
                }
            }
        }
        Ok(removed)
    }

    /// Announce a granted address that is configured here, within its budget.
    pub async fn announce(
        &mut self,
        ip: &str,
        count: u32,
        interval: Duration,
    ) -> Result<(), CapError> {
        let ip = parse_ip(ip)?;
        let g = self.granted_address("announce", ip)?;
        let h = self.handle()?;
        let view = self.view();
        let carrier = {
            let mut s = view.lock().await;
            let links = s.links(&h).await?;
            let addrs = s.addrs(&h).await?;
            addrs.iter().filter(|a| a.ip == ip).find_map(|a| {
                links
                    .iter()
                    .find(|l| l.index == a.link_index && g.allows_link(&l.name))
                    .cloned()
            })
        };
        let Some(link) = carrier else {
            return Err(CapError::NotConfigured(format!(
                "{ip} is not configured on this node: only addresses this node carries are announced"
            )));
        };
        let mac: [u8; 6] = link.mac.as_slice().try_into().map_err(|_| {
            CapError::Failed(format!(
                "{} has no Ethernet address to announce from",
                link.name
            ))
        })?;
        // Bounded so a buggy agent cannot flood the link for hours.
        let count = count.min(100);
        let interval = interval.clamp(Duration::from_millis(10), Duration::from_secs(10));
        let asked = count;
        let count = match self.shared.announcer.spend(ip, count) {
            Ok(n) => n,
            Err(e) => {
                let msg = format!(
                    "announce {ip} {count} time(s): its announcement budget ({} in a burst, {} \
                     more per second) is used up; the next repetition in {:.1} s",
                    announce::BURST,
                    announce::REFILL_PER_SEC,
                    e.wait.as_secs_f64()
                );
                tracing::warn!(agent = %self.caller.agent, resource = %self.caller.resource, "denied: {msg}");
                return Err(CapError::Denied(msg));
            }
        };
        if count < asked {
            tracing::warn!(
                agent = %self.caller.agent, resource = %self.caller.resource,
                "announcing {ip} {count} of {asked} time(s): the rest are over its budget ({} in a burst, {} more per second)",
                announce::BURST,
                announce::REFILL_PER_SEC,
            );
        }
        let socket = self.view().packet_socket();
        socket
            .and_then(|socket| {
                self.shared
                    .announcer
                    .announce(socket, link.index, mac, ip, count, interval)
            })
            .map_err(|e| {
                let msg = format!("announcing {ip} on {}: {e}", link.name);
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    CapError::Denied(msg)
                } else {
                    CapError::Failed(msg)
                }
            })
    }

    /// The granted command `name`, or a denial.
    fn command(&self, op: &str, name: &str) -> Result<crate::grant::CommandGrant, CapError> {
        self.grant.command(name).cloned().ok_or_else(|| {
            self.deny(
                format!("{op} command {name:?}"),
                &format!("commands.{name} = [\"/absolute/program\", \"arg\", ...]"),
            )
        })
    }

    /// The launch of a granted command: its command line, user and
    /// capabilities exactly as granted.
    fn launch(c: &crate::grant::CommandGrant) -> crate::confine::Launch {
        crate::confine::Launch {
            argv: c.argv.clone(),
            user: c.user.clone(),
            capabilities: c.capabilities.iter().map(|c| c.linux_name()).collect(),
        }
    }

    /// Run a granted command to completion, confined.
    pub async fn run(&mut self, name: &str, timeout: Duration) -> Result<RunOutput, CapError> {
        let c = self.command("run", name)?;
        tracing::debug!(agent = %self.caller.agent, resource = %self.caller.resource,
            "run {name}: {}", c.argv.join(" "));
        self.procs.run(&Self::launch(&c), timeout).await
    }

    /// Spawn a granted command, confined; the resource may later signal it.
    pub fn spawn(&mut self, name: &str) -> Result<u32, CapError> {
        let c = self.command("spawn", name)?;
        let pid = self.procs.spawn(&Self::launch(&c))?;
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "spawned {name} as pid {pid}: {}", c.argv.join(" "));
        Ok(pid)
    }

    /// Whether a process found through a pid file in this operation is
    /// still alive (its pidfd names it even if the PID was recycled).
    fn found_alive(&self, pid: u32) -> bool {
        self.found.get(&pid).is_some_and(|f| {
            // Signal 0 through the pidfd: delivered only to that process.
            crate::confine::cgroup::pidfd_signal(&f.pidfd, 0).is_ok()
                && process::proc_info(pid).is_some_and(|i| !i.zombie)
        })
    }

    /// Signal a process this resource spawned or found through a granted
    /// pid file in this operation.
    pub fn signal(&mut self, pid: u32, signal: i32) -> Result<(), CapError> {
        if self.procs.owns(pid) {
            tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
                "signal {signal} to pid {pid}");
            return self.procs.signal(pid, signal);
        }
        let Some(found) = self.found.get(&pid) else {
            let msg = format!(
                "signal {signal} to pid {pid}: not spawned by {} nor found through its pid files",
                self.caller.resource
            );
            tracing::warn!(agent = %self.caller.agent, resource = %self.caller.resource, "denied: {msg}");
            return Err(CapError::Denied(msg));
        };
        if !self.found_alive(pid) {
            return Err(CapError::Failed(format!("process {pid} is not running")));
        }
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "signal {signal} to pid {pid}");
        process::signal_found(&found.pidfd, pid, signal)
    }

    /// Whether a process this resource spawned, or found through a pid
    /// file in this operation, is alive (false for others).
    pub fn is_alive(&self, pid: u32) -> bool {
        if self.procs.owns(pid) {
            self.procs.is_alive(pid)
        } else {
            self.found_alive(pid)
        }
    }

    /// How a process this resource spawned ended (None while it runs).
    pub fn spawned_exit(&self, pid: u32) -> Option<RunOutput> {
        self.procs.exit_of(pid)
    }

    /// The live process recorded in a granted pid file, if it is this
    /// resource's: in its cgroup, or (started by an earlier wasmbeat
    /// process: the CLI, the daemon before a restart) in a wasmbeat cgroup
    /// of the same resource and running a granted program. Where no cgroup
    /// can be made, a granted program is enough (executable and start
    /// time). The file is read off the agent's thread, never followed if
    /// it is a symlink, never waited on if it is a FIFO, at most 4 KiB.
    pub async fn pidfile_pid(&mut self, pidfile: &str) -> Result<Option<u32>, CapError> {
        let path = Path::new(pidfile);
        if !self.grant.pidfile(path) {
            return Err(self.deny(
                format!("read pid file {pidfile}"),
                &format!("pidfiles = [\"{pidfile}\"]"),
            ));
        }
        let Some(text) = file_access::read_pidfile_bounded(path.to_path_buf()).await? else {
            return Ok(None);
        };
        let Some(pid) = process::parse_pidfile(&text) else {
            tracing::debug!(resource = %self.caller.resource, "{pidfile} holds no PID");
            return Ok(None);
        };
        // Pin the process first: every check below is then about the
        // process the pidfd names, and signals go to it alone.
        let Ok(pidfd) = crate::confine::cgroup::pidfd_open(pid) else {
            return Ok(None);
        };
        let Some(info) = process::proc_info(pid) else {
            return Ok(None);
        };
        if info.zombie {
            return Ok(None);
        }
        let granted_exe = || {
            info.exe.as_ref().is_some_and(|exe| {
                self.grant
                    .commands
                    .iter()
                    .any(|c| same_program(c.program(), exe))
            })
        };
        let ours = if self.procs.tracks_by_cgroup() {
            self.procs.in_cgroup(pid)
                || (crate::confine::cgroup::in_wasmbeat_cgroup_of(pid, self.procs.resource())
                    && granted_exe())
        } else {
            self.procs.is_alive(pid) || granted_exe()
        };
        if !ours {
            // A stale pid file whose PID now belongs to something else.
            tracing::info!(resource = %self.caller.resource,
                "{pidfile} names pid {pid}, which runs {:?} and is not this resource's: treated as stale",
                info.exe);
            return Ok(None);
        }
        self.found.insert(pid, Found { pidfd });
        Ok(Some(pid))
    }

    /// What is at a granted path (kind and emptiness only), found off the
    /// agent's thread without opening anything but a directory.
    pub async fn inspect(&self, path: &str) -> Result<PathKind, CapError> {
        let p = Path::new(path);
        if !self.grant.path(p) {
            return Err(self.deny(format!("inspect {path}"), &format!("paths = [\"{path}\"]")));
        }
        file_access::inspect_bounded(p.to_path_buf()).await
    }

    fn probe_target(&self, probe: &str, target: &str) -> Result<SocketAddr, CapError> {
        let addr: SocketAddr = target
            .parse()
            .map_err(|_| CapError::InvalidArgs(format!("{target:?} is not ip:port")))?;
        if !self.grant.probe(addr) {
            return Err(self.deny(format!("{probe} {addr}"), &format!("probe = [\"{addr}\"]")));
        }
        Ok(addr)
    }

    /// TCP-connect to a granted target.
    pub async fn tcp_connect(
        &mut self,
        target: &str,
        timeout: Duration,
    ) -> Result<Duration, CapError> {
        let addr = self.probe_target("tcp-connect", target)?;
        probe::tcp_connect(addr, timeout).await
    }

    /// HTTP GET against a granted target; the status code.
    pub async fn http_get(
        &mut self,
        target: &str,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u16, CapError> {
        let addr = self.probe_target("http-get", target)?;
        probe::http_get(addr, host, path, timeout).await
    }

    /// DNS query to a granted target.
    pub async fn dns_query(
        &mut self,
        target: &str,
        name: &str,
        qtype: u16,
        timeout: Duration,
    ) -> Result<DnsAnswer, CapError> {
        let addr = self.probe_target("dns-query", target)?;
        probe::dns_query(addr, name, qtype, timeout).await
    }

    /// MySQL greeting from a granted target.
    pub async fn mysql_handshake(
        &mut self,
        target: &str,
        timeout: Duration,
    ) -> Result<MysqlGreeting, CapError> {
        let addr = self.probe_target("mysql-handshake", target)?;
        probe::mysql_handshake(addr, timeout).await
    }
}

/// Whether the running executable `exe` (from /proc/PID/exe, always the
/// resolved file) is the granted program `granted`, which an administrator
/// may have written as a symlink such as /usr/bin/python3.
fn same_program(granted: &Path, exe: &Path) -> bool {
    granted == exe || std::fs::canonicalize(granted).is_ok_and(|c| c == exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(program: &Path) -> crate::grant::CommandGrant {
        crate::grant::CommandGrant {
            name: "server".into(),
            argv: vec![program.display().to_string()],
            capabilities: Vec::new(),
            user: None,
            origin: crate::grant::Origin::Direct,
        }
    }

    fn caps(grant: Grant) -> Caps {
        Caps::new(
            Caller {
                agent: "t".into(),
                resource: "t::1".into(),
            },
            Arc::new(grant),
            ProcessTable::new("t::1", crate::confine::ProcessLimits::default()),
            Shared::default(),
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn pidfile_lookup_is_vetted_and_ignores_other_processes() {
        block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let pidfile = dir.path().join("x.pid");
            let me = std::process::id();
            std::fs::write(&pidfile, format!("{me}\n")).unwrap();
            let pf = pidfile.display().to_string();
            let my_exe = std::fs::read_link("/proc/self/exe").unwrap();

            let mut c = caps(Grant::none());
            let e = c.pidfile_pid(&pf).await.unwrap_err();
            assert!(
                matches!(&e, CapError::Denied(m) if m.contains("pidfiles") && m.contains("t::1")),
                "{e}"
            );
            // Granted pid file naming a process that runs no granted program: stale.
            let mut c = caps(Grant {
                pidfiles: vec![pidfile.clone()],
                commands: vec![server(Path::new("/usr/sbin/named"))],
                ..Grant::none()
            });
            assert_eq!(c.pidfile_pid(&pf).await.unwrap(), None);
            assert!(c.signal(me, 0).is_err(), "not found, not signallable");

            // A process running a granted program but not started by the
            // resource (this test, as a recycled PID would be): with
            // cgroups it is not the resource's; without, the executable
            // is all there is to go by.
            let link = dir.path().join("me-link");
            std::os::unix::fs::symlink(&my_exe, &link).unwrap();
            let mut c = caps(Grant {
                pidfiles: vec![pidfile.clone()],
                commands: vec![
                    server(&link),
                    crate::grant::CommandGrant::direct("sleep", &["/usr/bin/sleep", "30"]),
                ],
                ..Grant::none()
            });
            let by_cgroup = c.procs.tracks_by_cgroup();
            let found = c.pidfile_pid(&pf).await.unwrap();
            assert_eq!(found, (!by_cgroup).then_some(me), "cgroups: {by_cgroup}");

            // Positive control: a process the resource spawned is found,
            // signallable, and stale once it is gone.
            let pid = c.spawn("sleep").unwrap();
            std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
            assert_eq!(c.pidfile_pid(&pf).await.unwrap(), Some(pid));
            assert!(c.is_alive(pid));
            c.signal(pid, libc::SIGKILL).unwrap();
            let t0 = std::time::Instant::now();
            while c.is_alive(pid) && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!c.is_alive(pid), "spawned sleep survived SIGKILL");
            assert_eq!(c.pidfile_pid(&pf).await.unwrap(), None);

            std::fs::write(&pidfile, "garbage").unwrap();
            assert_eq!(c.pidfile_pid(&pf).await.unwrap(), None);
            std::fs::remove_file(&pidfile).unwrap();
            assert_eq!(c.pidfile_pid(&pf).await.unwrap(), None);
        });
    }

    #[test]
    fn inspect_is_vetted() {
        block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().to_path_buf();
            let f = d.join("file");
            let c = caps(Grant {
                paths: vec![d.clone(), f.clone()],
                ..Grant::none()
            });
            let ds = d.display().to_string();
            let fs = f.display().to_string();
            assert_eq!(c.inspect(&ds).await.unwrap(), PathKind::EmptyDirectory);
            assert_eq!(c.inspect(&fs).await.unwrap(), PathKind::Missing);
            std::fs::write(&f, "x").unwrap();
            assert_eq!(c.inspect(&fs).await.unwrap(), PathKind::File);
            assert_eq!(c.inspect(&ds).await.unwrap(), PathKind::Directory);
            assert!(matches!(
                c.inspect("/etc/shadow").await,
                Err(CapError::Denied(_))
            ));
            assert!(matches!(
                c.inspect("relative").await,
                Err(CapError::Denied(_))
            ));
        });
    }

    #[test]
    fn probes_outside_the_grant_are_denied_before_any_packet() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut c = caps(Grant {
            probes: vec!["127.0.0.1:9".parse().unwrap()],
            ..Grant::none()
        });
        rt.block_on(async {
            let t = Duration::from_millis(100);
            let e = c.http_get("127.0.0.1:80", "x", "/", t).await.unwrap_err();
            assert!(
                matches!(&e, CapError::Denied(m) if m.contains("probe = [\"127.0.0.1:80\"]")),
                "{e}"
            );
            assert!(matches!(
                c.dns_query("127.0.0.1:53", "x", 1, t).await,
                Err(CapError::Denied(_))
            ));
            assert!(matches!(
                c.mysql_handshake("127.0.0.1:3306", t).await,
                Err(CapError::Denied(_))
            ));
            assert!(matches!(
                c.spawn("shell"),
                Err(CapError::Denied(m)) if m.contains("commands.shell = [")
            ));
            assert!(matches!(c.run("shell", t).await, Err(CapError::Denied(_))));
        });
    }
}

//! Vetted host capabilities for agents: netlink (addresses), announce
//! (gratuitous ARP / unsolicited NA), process, probe. Every call goes
//! through [`Caps`], which checks it against the calling resource's
//! [`Grant`] before it touches the system; a denied call is logged with
//! the agent and resource name and returned as [`CapError::Denied`].

pub mod announce;
pub mod file_access;
pub mod grant;
pub mod netlink;
pub mod probe;
pub mod process;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use announce::Announcer;
pub use grant::{AddressGrant, Grant, GrantError, IfaceRule};
pub use netlink::{AddrInfo, LinkInfo};
pub use probe::{DnsAnswer, MysqlGreeting};
pub use process::{ProcessTable, RunOutput};

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

/// The capabilities of one operation of one resource. Sockets are opened
/// lazily in the calling thread's network namespace.
pub struct Caps {
    caller: Caller,
    grant: Arc<Grant>,
    procs: ProcessTable,
    announcer: Announcer,
    netlink: Option<rtnetlink::Handle>,
    // Links do not change under an operation in ways that matter (agents
    // cannot create or rename them), so one dump serves the whole call.
    links: Option<Vec<LinkInfo>>,
    /// Processes found through granted pid files in this operation, each
    /// pinned by a pidfd opened when it was found, so a recycled PID is
    /// never signalled.
    found: HashMap<u32, Found>,
}

/// A process found through a pid file.
struct Found {
    pidfd: std::os::fd::OwnedFd,
}

fn parse_ip(text: &str) -> Result<IpAddr, CapError> {
    text.parse()
        .map_err(|_| CapError::InvalidArgs(format!("{text:?} is not an IP address")))
}

impl Caps {
    /// Capabilities for `caller` limited by `grant`; `procs` is the
    /// resource's process table (shared by its operations) and `announcer`
    /// the runtime's announcement owner.
    pub fn new(
        caller: Caller,
        grant: Arc<Grant>,
        procs: ProcessTable,
        announcer: Announcer,
    ) -> Caps {
        Caps {
            caller,
            grant,
            procs,
            announcer,
            netlink: None,
            links: None,
            found: HashMap::new(),
        }
    }

    /// The caller (agent and resource).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    fn deny(&self, what: String) -> CapError {
        tracing::warn!(
            agent = %self.caller.agent,
            resource = %self.caller.resource,
            "denied: {what}"
        );
        CapError::Denied(what)
    }

    fn handle(&mut self) -> Result<rtnetlink::Handle, CapError> {
        if let Some(h) = &self.netlink {
            return Ok(h.clone());
        }
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| CapError::Failed(format!("opening a netlink socket: {e}")))?;
        // The connection task ends when the last handle is dropped.
        tokio::spawn(conn);
        self.netlink = Some(handle.clone());
        Ok(handle)
    }

    fn require_read(&self) -> Result<(), CapError> {
        if self.grant.netlink_read {
            Ok(())
        } else {
            Err(self.deny(format!(
                "listing links and addresses is not granted to {} (add netlink_read = true to \
                 [resource.\"{}\"] or [agent.{}] in agents.toml)",
                self.caller.resource, self.caller.resource, self.caller.agent
            )))
        }
    }

    /// All links (needs `netlink_read`).
    pub async fn list_links(&mut self) -> Result<Vec<LinkInfo>, CapError> {
        self.require_read()?;
        self.links().await
    }

    async fn links(&mut self) -> Result<Vec<LinkInfo>, CapError> {
        if let Some(l) = &self.links {
            return Ok(l.clone());
        }
        let h = self.handle()?;
        let l = netlink::list_links(&h).await?;
        self.links = Some(l.clone());
        Ok(l)
    }

    /// All addresses (needs `netlink_read`).
    pub async fn list_addresses(&mut self) -> Result<Vec<AddrInfo>, CapError> {
        self.require_read()?;
        let h = self.handle()?;
        netlink::list_addresses(&h).await
    }

    async fn link_by_name(&mut self, name: &str) -> Result<LinkInfo, CapError> {
        self.links()
            .await?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| CapError::NotInstalled(format!("no interface named {name:?}")))
    }

    /// The part of the address check that needs no system access: the
    /// address is granted, and on the named interface if the grant names one.
    fn vet_ip(&self, op: &str, link_name: &str, ip: IpAddr) -> Result<IfaceRule, CapError> {
        let Some(g) = self.grant.address(ip) else {
            return Err(self.deny(format!(
                "{op} {ip} on {link_name}: address not granted ({})",
                self.grant_hint("addresses", &ip.to_string())
            )));
        };
        match &g.iface {
            IfaceRule::Named(n) if n != link_name => {
                Err(self.deny(format!("{op} {ip} on {link_name}: only granted on {n}")))
            }
            rule => Ok(rule.clone()),
        }
    }

    /// The rest of the address check: with [`IfaceRule::OnSubnet`], the
    /// link must have an address whose subnet contains `ip`. `adding`
    /// excludes the address itself (a VIP must not vouch for its own
    /// interface).
    async fn vet_subnet(
        &mut self,
        op: &str,
        rule: &IfaceRule,
        link: &LinkInfo,
        ip: IpAddr,
        adding: bool,
    ) -> Result<(), CapError> {
        if *rule != IfaceRule::OnSubnet {
            return Ok(());
        }
        let h = self.handle()?;
        let on_subnet = netlink::list_addresses(&h).await?.iter().any(|a| {
            a.link_index == link.index && !(adding && a.ip == ip) && a.subnet_contains(ip)
        });
        if on_subnet {
            Ok(())
        } else {
            Err(self.deny(format!(
                "{op} {ip} on {}: no address of that interface has a subnet containing {ip}",
                link.name
            )))
        }
    }

    /// Add an address, if granted.
    pub async fn add_address(
        &mut self,
        link_name: &str,
        ip: &str,
        prefix_len: u8,
        broadcast: Option<&str>,
        label: Option<&str>,
    ) -> Result<(), CapError> {
        let ip = parse_ip(ip)?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(CapError::InvalidArgs(format!(
                "prefix length {prefix_len} > {max}"
            )));
        }
        let broadcast: Option<Ipv4Addr> = match broadcast {
            None => None,
            Some(b) => Some(b.parse().map_err(|_| {
                CapError::InvalidArgs(format!("broadcast {b:?} is not an IPv4 address"))
            })?),
        };
        if let Some(l) = label {
            if ip.is_ipv6() || !l.starts_with(link_name) || l.len() > 15 {
                return Err(CapError::InvalidArgs(format!(
                    "label {l:?}: labels are IPv4-only, start with the interface name and fit 15 bytes"
                )));
            }
        }
        let rule = self.vet_ip("add", link_name, ip)?;
        let link = self.link_by_name(link_name).await?;
        self.vet_subnet("add", &rule, &link, ip, true).await?;
        let h = self.handle()?;
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "adding {ip}/{prefix_len} on {link_name}");
        netlink::add_address(
            &h,
            link.index,
            ip,
            prefix_len,
            broadcast,
            label.map(String::from),
        )
        .await
    }

    /// Remove an address, if granted; also stops its pending announcements.
    pub async fn remove_address(
        &mut self,
        link_name: &str,
        ip: &str,
        prefix_len: u8,
    ) -> Result<(), CapError> {
        let ip = parse_ip(ip)?;
        let rule = self.vet_ip("remove", link_name, ip)?;
        let link = self.link_by_name(link_name).await?;
        self.vet_subnet("remove", &rule, &link, ip, false).await?;
        self.announcer.cancel(ip);
        let h = self.handle()?;
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "removing {ip}/{prefix_len} from {link_name}");
        netlink::remove_address(&h, link.index, ip, prefix_len).await
    }

    /// Announce a granted address on its interface.
    pub async fn announce(
        &mut self,
        link_name: &str,
        ip: &str,
        count: u32,
        interval: Duration,
    ) -> Result<(), CapError> {
        let ip = parse_ip(ip)?;
        let rule = self.vet_ip("announce", link_name, ip)?;
        let link = self.link_by_name(link_name).await?;
        self.vet_subnet("announce", &rule, &link, ip, false).await?;
        let mac: [u8; 6] = link.mac.as_slice().try_into().map_err(|_| {
            CapError::Failed(format!(
                "{link_name} has no Ethernet address to announce from"
            ))
        })?;
        // Bounded so a buggy agent cannot flood the link for hours.
        let count = count.min(100);
        let interval = interval.clamp(Duration::from_millis(10), Duration::from_secs(10));
        self.announcer
            .announce(link.index, mac, ip, count, interval)
            .map_err(|e| {
                let msg = format!("announcing {ip} on {link_name}: {e}");
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    CapError::Denied(msg)
                } else {
                    CapError::Failed(msg)
                }
            })
    }

    /// The policy-file line that would grant `what`, for denial messages.
    /// The grant hint for a denied call: the agents.toml key to add.
    fn grant_hint(&self, key: &str, value: &str) -> String {
        format!(
            "add {key} = [\"{value}\"] to [resource.\"{}\"] in agents.toml, \
             or to [agent.{}] for all its resources",
            self.caller.resource, self.caller.agent
        )
    }

    fn vet_program(&self, op: &str, program: &str) -> Result<(), CapError> {
        let p = Path::new(program);
        if p.is_absolute() && self.grant.programs.iter().any(|g| g == p) {
            Ok(())
        } else {
            Err(self.deny(format!(
                "{op} {program}: program not granted to {} ({})",
                self.caller.resource,
                self.grant_hint("programs", program)
            )))
        }
    }

    /// Run a granted program to completion, confined.
    pub async fn run(
        &mut self,
        program: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<RunOutput, CapError> {
        self.vet_program("run", program)?;
        tracing::debug!(agent = %self.caller.agent, resource = %self.caller.resource,
            "run {program} {}", args.join(" "));
        self.procs.run(&legacy_launch(program, args), timeout).await
    }

    /// Spawn a granted program, confined; the resource may later signal it.
    pub fn spawn(&mut self, program: &str, args: &[String]) -> Result<u32, CapError> {
        self.vet_program("spawn", program)?;
        let pid = self.procs.spawn(&legacy_launch(program, args))?;
        tracing::info!(agent = %self.caller.agent, resource = %self.caller.resource,
            "spawned {program} {} as pid {pid}", args.join(" "));
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
            return Err(self.deny(format!(
                "signal {signal} to pid {pid}: not spawned by this resource nor found through its pid files"
            )));
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
        if !path.is_absolute() || !self.grant.pidfiles.iter().any(|g| g == path) {
            return Err(self.deny(format!(
                "read pid file {pidfile}: not granted to {} ({})",
                self.caller.resource,
                self.grant_hint("pidfiles", pidfile)
            )));
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
            info.exe
                .as_ref()
                .is_some_and(|exe| self.grant.programs.iter().any(|g| same_program(g, exe)))
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
        if !p.is_absolute() || !self.grant.paths.iter().any(|g| g == p) {
            return Err(self.deny(format!(
                "inspect {path}: not granted to {} ({})",
                self.caller.resource,
                self.grant_hint("paths", path)
            )));
        }
        file_access::inspect_bounded(p.to_path_buf()).await
    }

    fn probe_target(&self, probe: &str, target: &str) -> Result<SocketAddr, CapError> {
        let addr: SocketAddr = target
            .parse()
            .map_err(|_| CapError::InvalidArgs(format!("{target:?} is not ip:port")))?;
        if !self.grant.probe_targets.contains(&addr) {
            return Err(self.deny(format!(
                "{probe} {addr}: target not granted to {} ({})",
                self.caller.resource,
                self.grant_hint("probe", &addr.to_string())
            )));
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

/// Capabilities of the transitional launch spec: what the built-in
/// services need to start as root and drop to their own user (bind low
/// ports, chown and write their data and run directories, switch user,
/// raise limits). Not granted: network and system administration, raw
/// sockets, ptrace, module loading, mounts, devices, file capabilities.
const LEGACY_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_SYS_RESOURCE",
    "CAP_IPC_LOCK",
    "CAP_AUDIT_WRITE",
];

/// Transitional: a launch spec for the program-plus-arguments calls of
/// WIT 0.1, until grants name commands, which will carry their own user
/// and capability list (then this and [`LEGACY_CAPABILITIES`] go).
fn legacy_launch(program: &str, args: &[String]) -> crate::confine::Launch {
    crate::confine::Launch {
        capabilities: LEGACY_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        ..crate::confine::Launch::new(
            std::iter::once(program.to_string()).chain(args.iter().cloned()),
        )
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
    use std::path::PathBuf;

    fn caps(grant: Grant) -> Caps {
        Caps::new(
            Caller {
                agent: "t".into(),
                resource: "t::1".into(),
            },
            Arc::new(grant),
            ProcessTable::new("t::1", crate::confine::ProcessLimits::default()),
            Announcer::new(),
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
                programs: vec![PathBuf::from("/usr/sbin/named")],
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
                programs: vec![link, PathBuf::from("/usr/bin/sleep")],
                ..Grant::none()
            });
            let by_cgroup = c.procs.tracks_by_cgroup();
            let found = c.pidfile_pid(&pf).await.unwrap();
            assert_eq!(found, (!by_cgroup).then_some(me), "cgroups: {by_cgroup}");

            // Positive control: a process the resource spawned is found,
            // signallable, and stale once it is gone.
            let pid = c.spawn("/usr/bin/sleep", &["30".to_string()]).unwrap();
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
            probe_targets: vec!["127.0.0.1:9".parse().unwrap()],
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
                c.spawn("/bin/sh", &[]),
                Err(CapError::Denied(m)) if m.contains("programs = [\"/bin/sh\"]")
            ));
        });
    }
}

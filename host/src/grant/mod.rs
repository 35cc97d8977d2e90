//! What a resource may do: the one home of grants. Every capability call
//! an agent makes is checked against its resource's [`Grant`], computed
//! once when the resource is bound and never changed by the agent.
//!
//! One path, one module each:
//! - [`policy`] parses `agents.toml` (the administrator's sections);
//! - [`needs`] holds what each agent declares in its meta-data (a built-in
//!   agent's needs are its default grant);
//! - [`resolve`] binds declarations and sections to one resource's own
//!   parameters through [`template`]s, refusing [`launchers`] with holes;
//! - [`Grant`]'s lookups below are the per-call check;
//! - [`explain`] renders grants for `wasmbeat check` and denials for logs.

pub mod capability;
pub mod explain;
pub mod launchers;
pub mod needs;
pub mod policy;
pub mod resolve;
pub mod template;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use wasmbeat_args::address::{AddressSpec, MaskRule};

pub use capability::Capability;
pub use policy::{LimitSpec, Policy};
pub use resolve::{resolve, GrantError, Subject};

/// Where a granted item came from, for `check` and denials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Declared by the (built-in) agent itself.
    Declared,
    /// An agents.toml section, with the line of the item.
    Policy {
        /// `[agent.NAME]` or `[resource."TOKEN"]` / `[lsb.NAME]`.
        section: String,
        /// Line in agents.toml.
        line: usize,
    },
    /// Set directly by the program (tests, the CLI).
    Direct,
}

/// An address the resource may add, remove and announce, with the
/// settings the host derives its configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressGrant {
    /// `IP[/MASK[/NIC[/BROADCAST]]]` as granted.
    pub spec: AddressSpec,
    /// How a non-contiguous dotted netmask reads (IPaddr vs IPaddr2).
    pub rule: MaskRule,
}

impl AddressGrant {
    /// Parse a granted address in the IPaddr grammar (strict netmasks).
    pub fn parse(text: &str) -> Result<AddressGrant, wasmbeat_args::address::AddressError> {
        Ok(AddressGrant {
            spec: AddressSpec::parse(text)?,
            rule: MaskRule::Strict,
        })
    }

    /// Whether the address may live on interface `link`.
    pub fn allows_link(&self, link: &str) -> bool {
        self.spec.nic.as_deref().is_none_or(|n| n == link)
    }
}

/// A command the resource may run: its whole command line is fixed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandGrant {
    /// What the agent asks for.
    pub name: String,
    /// `argv[0]` (absolute) and the arguments.
    pub argv: Vec<String>,
    /// The capabilities the process keeps.
    pub capabilities: Vec<Capability>,
    /// Run as this user instead of root.
    pub user: Option<String>,
    /// Where it was granted.
    pub origin: Origin,
}

impl CommandGrant {
    /// A command granted directly by the program (tests, tools), with no
    /// capabilities, run as root.
    pub fn direct(name: &str, argv: &[&str]) -> CommandGrant {
        CommandGrant {
            name: name.to_string(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            capabilities: Vec::new(),
            user: None,
            origin: Origin::Direct,
        }
    }

    /// The program it runs.
    pub fn program(&self) -> &Path {
        Path::new(&self.argv[0])
    }
}

/// Everything one resource may do beyond computing and logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Whether the resource may list links and addresses.
    pub netlink_read: bool,
    /// Addresses it may add, remove and announce.
    pub addresses: Vec<AddressGrant>,
    /// Commands it may run or spawn, by name.
    pub commands: Vec<CommandGrant>,
    /// Targets it may probe.
    pub probes: Vec<SocketAddr>,
    /// Pid files it may read to find its server (`process.pidfile-pid`).
    pub pidfiles: Vec<PathBuf>,
    /// Paths it may inspect (`files.inspect`): kind and emptiness only.
    pub paths: Vec<PathBuf>,
    /// Limits of its processes' cgroup.
    pub limits: LimitSpec,
}

impl Grant {
    /// The empty grant: no capability at all.
    pub fn none() -> Grant {
        Grant::default()
    }

    /// The address grant covering `ip`.
    pub fn address(&self, ip: IpAddr) -> Option<&AddressGrant> {
        self.addresses.iter().find(|g| g.spec.ip == ip)
    }

    /// The granted command called `name`.
    pub fn command(&self, name: &str) -> Option<&CommandGrant> {
        self.commands.iter().find(|c| c.name == name)
    }

    /// Whether `path` is a granted pid file.
    pub fn pidfile(&self, path: &Path) -> bool {
        path.is_absolute() && self.pidfiles.iter().any(|g| g == path)
    }

    /// Whether `path` may be inspected.
    pub fn path(&self, path: &Path) -> bool {
        path.is_absolute() && self.paths.iter().any(|g| g == path)
    }

    /// Whether `target` may be probed.
    pub fn probe(&self, target: SocketAddr) -> bool {
        self.probes.contains(&target)
    }

    /// Add a command, replacing one of the same name.
    pub fn set_command(&mut self, c: CommandGrant) {
        match self.commands.iter_mut().find(|x| x.name == c.name) {
            Some(old) => *old = c,
            None => self.commands.push(c),
        }
    }

    /// Add an address, replacing one for the same IP.
    pub fn set_address(&mut self, a: AddressGrant) {
        match self.addresses.iter_mut().find(|x| x.spec.ip == a.spec.ip) {
            Some(old) => *old = a,
            None => self.addresses.push(a),
        }
    }
}

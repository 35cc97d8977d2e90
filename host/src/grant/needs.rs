//! What an agent declares in its `meta-data`: its parameters (with types
//! and defaults) and what it needs from the host. A built-in agent's needs
//! are its default grant; any other agent's are shown by `wasmbeat check`
//! and granted only by the administrator.

use wasmbeat_args::value::ValueType;

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDecl {
    /// Name used for named arguments and template holes.
    pub name: String,
    /// One line for messages.
    pub description: String,
    /// Value type; every value is checked against it.
    pub ty: ValueType,
    /// Default used when no value is given.
    pub default: Option<String>,
    /// Whether binding fails without a value.
    pub required: bool,
}

/// A command an agent declares (argument templates as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDecl {
    /// The name the agent asks for.
    pub name: String,
    /// One line for `check`.
    pub description: String,
    /// `argv[0]` and arguments, as templates.
    pub argv: Vec<String>,
    /// Capabilities the process keeps (grant spelling).
    pub capabilities: Vec<String>,
}

/// The parameters holding an address in the IPaddr grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressParams {
    /// The parameter with the IP or the whole `IP/MASK/NIC/BROADCAST`.
    pub ip: String,
    /// The netmask parameter, if separate.
    pub cidr_netmask: Option<String>,
    /// The interface parameter, if separate.
    pub nic: Option<String>,
    /// The broadcast parameter, if separate.
    pub broadcast: Option<String>,
}

/// One block of needs, applying when its conditions hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needs {
    /// (parameter, accepted values): all must hold; empty: always.
    pub when: Vec<(String, Vec<String>)>,
    /// Listing links and addresses.
    pub netlink_read: bool,
    /// Addresses.
    pub addresses: Vec<AddressParams>,
    /// Commands.
    pub commands: Vec<CommandDecl>,
    /// Pid file templates.
    pub pidfiles: Vec<String>,
    /// Probe target templates (`ip:port`).
    pub probes: Vec<String>,
    /// Inspectable path templates.
    pub paths: Vec<String>,
}

/// An agent as its meta-data describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDecl {
    /// Agent name.
    pub name: String,
    /// Parameters in positional order.
    pub params: Vec<ParamDecl>,
    /// Needs blocks.
    pub needs: Vec<Needs>,
}

impl AgentDecl {
    /// A declared parameter.
    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name == name)
    }
}

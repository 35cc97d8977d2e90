//! Write a [wasmbeat](https://example.invalid/wasmbeat) resource agent in Rust.
//!
//! An agent is a WebAssembly component (target `wasm32-wasip2`) exporting
//! the `wasmbeat:agent/agent` interface. With this crate it is a type
//! implementing [`Agent`] plus one [`export_agent!`] line; the host
//! capabilities (netlink, announce, process, files, probe, log) are plain Rust
//! functions with `std` types. Every capability call is vetted by the host
//! against the resource's grant: a call outside it returns
//! [`Error::Denied`] and changes nothing.
//!
//! ```no_run
//! use wasmbeat_sdk::{export_agent, log, Agent, Args, Error, Meta, Param, Status};
//!
//! struct Hello;
//!
//! impl Agent for Hello {
//!     fn meta_data() -> Meta {
//!         Meta::new("Hello", "0.1.0", "Says hello; never running.")
//!             .param(Param::string("greeting", "What to say").default("hi"))
//!     }
//!     fn start(args: &Args) -> Result<(), Error> {
//!         let greeting: String = args.get_or("greeting", "hi".to_string())?;
//!         log::info(&greeting);
//!         Ok(())
//!     }
//!     fn stop(_args: &Args) -> Result<(), Error> {
//!         Ok(())
//!     }
//!     fn monitor(_args: &Args) -> Result<Status, Error> {
//!         Ok(Status::NotRunning)
//!     }
//! }
//!
//! export_agent!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and reference
//! the `.wasm` from haresources (`hello.wasm::hey` or, installed as
//! `/etc/ha.d/resource.d/hello.wasm`, `hello::hey`).

use std::fmt;
use std::str::FromStr;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "resource-agent",
        pub_export_macro: true,
        default_bindings_module: "wasmbeat_sdk::bindings",
    });
}

pub use bindings::wasmbeat::agent::types::{
    AddressParams, Command, Error, Meta, Needs, Param, ParamType, Status,
};
/// The IPaddr grammar, argument binding and value types the host uses.
pub use wasmbeat_args as args;

pub mod files;
pub mod log;
pub mod net;
pub mod probe;
pub mod process;
pub mod service;

/// A resource agent: the operations heartbeat's resource scripts offer.
///
/// Every operation must be idempotent (start on a started resource and stop
/// on a stopped one succeed), as heartbeat's ResourceManager relies on it.
pub trait Agent {
    /// Name, version, description and the parameters in positional order.
    fn meta_data() -> Meta;
    /// Check the arguments without changing anything (default: accept).
    fn validate(_args: &Args) -> Result<(), Error> {
        Ok(())
    }
    /// Bring the resource up on this node.
    fn start(args: &Args) -> Result<(), Error>;
    /// Take the resource down on this node.
    fn stop(args: &Args) -> Result<(), Error>;
    /// Report whether the resource is active on this node.
    fn monitor(args: &Args) -> Result<Status, Error>;
}

/// The resource's arguments by parameter name (the host has already bound
/// positional haresources arguments to the names declared in [`Meta`]).
#[derive(Debug, Clone, Default)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Wrap raw (name, value) pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Args {
        Args { pairs }
    }

    /// The raw text of a parameter, if given.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter parsed as `T`, if given; a malformed value is
    /// [`Error::InvalidArgs`] naming the parameter.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|e| {
                Error::InvalidArgs(format!("parameter {name}={v:?} is not valid: {e}"))
            }),
        }
    }

    /// A parameter parsed as `T`, or `default` when absent.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// A parameter parsed as `T`; absent is [`Error::InvalidArgs`].
    pub fn require<T: FromStr>(&self, name: &str) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        self.get(name)?
            .ok_or_else(|| Error::InvalidArgs(format!("parameter {name} is required")))
    }

    /// All pairs in the order the host passed them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl Meta {
    /// Start a description with no parameters and no needs.
    pub fn new(name: &str, version: &str, description: &str) -> Meta {
        Meta {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            params: Vec::new(),
            needs: Vec::new(),
        }
    }

    /// Append a parameter (order = positional order in haresources).
    pub fn param(mut self, p: Param) -> Meta {
        self.params.push(p);
        self
    }

    /// Append a block of needs (a built-in agent's default grant; shown to
    /// the administrator by `wasmbeat check` for any other agent).
    pub fn needs(mut self, n: Needs) -> Meta {
        self.needs.push(n);
        self
    }
}

impl Needs {
    /// Needs that always apply.
    pub fn new() -> Needs {
        Needs {
            when: Vec::new(),
            netlink_read: false,
            addresses: Vec::new(),
            commands: Vec::new(),
            pidfiles: Vec::new(),
            probes: Vec::new(),
            paths: Vec::new(),
        }
    }

    /// Apply only when parameter `param` has one of `values` (its default
    /// when absent).
    pub fn when(mut self, param: &str, values: &[&str]) -> Needs {
        self.when
            .push((param.into(), values.iter().map(|v| v.to_string()).collect()));
        self
    }

    /// Listing links and addresses.
    pub fn netlink_read(mut self) -> Needs {
        self.netlink_read = true;
        self
    }

    /// The address held by these parameters (IPaddr grammar).
    pub fn address(mut self, a: AddressParams) -> Needs {
        self.addresses.push(a);
        self
    }

    /// A command (see [`Command::new`]).
    pub fn command(mut self, c: Command) -> Needs {
        self.commands.push(c);
        self
    }

    /// A pid file template, e.g. `{pid_file}`.
    pub fn pidfile(mut self, template: &str) -> Needs {
        self.pidfiles.push(template.into());
        self
    }

    /// A probe target template, e.g. `{listen}`.
    pub fn probe(mut self, template: &str) -> Needs {
        self.probes.push(template.into());
        self
    }

    /// An inspectable path template, e.g. `{config}`.
    pub fn path(mut self, template: &str) -> Needs {
        self.paths.push(template.into());
        self
    }
}

impl Default for Needs {
    fn default() -> Needs {
        Needs::new()
    }
}

impl Command {
    /// A command `name` running `argv` (templates: `{param}`,
    /// `{param|default}`, or a whole element `{param?}`), with no
    /// capabilities.
    pub fn new(name: &str, description: &str, argv: &[&str]) -> Command {
        Command {
            name: name.into(),
            description: description.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            capabilities: Vec::new(),
        }
    }

    /// The Linux capabilities the process keeps (`net-bind-service`, ...).
    pub fn capabilities(mut self, caps: &[&str]) -> Command {
        self.capabilities = caps.iter().map(|c| c.to_string()).collect();
        self
    }
}

impl AddressParams {
    /// The OCF names IPaddr uses: `ip`, `cidr_netmask`, `nic`, `broadcast`.
    pub fn ipaddr() -> AddressParams {
        AddressParams {
            ip: "ip".into(),
            cidr_netmask: Some("cidr_netmask".into()),
            nic: Some("nic".into()),
            broadcast: Some("broadcast".into()),
        }
    }

    /// A single parameter holding `IP[/MASK[/NIC[/BROADCAST]]]`.
    pub fn single(param: &str) -> AddressParams {
        AddressParams {
            ip: param.into(),
            cidr_netmask: None,
            nic: None,
            broadcast: None,
        }
    }
}

impl Param {
    fn of(name: &str, description: &str, ty: ParamType) -> Param {
        Param {
            name: name.into(),
            description: description.into(),
            type_: ty,
            default: None,
            required: false,
        }
    }

    /// A free-text parameter.
    pub fn string(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::String)
    }

    /// An integer parameter.
    pub fn integer(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Integer)
    }

    /// A boolean parameter.
    pub fn boolean(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Boolean)
    }

    /// An absolute-path parameter (safe characters only, no `..`).
    pub fn path(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Path)
    }

    /// An IP address parameter.
    pub fn address(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Address)
    }

    /// An `ip:port` parameter.
    pub fn endpoint(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Endpoint)
    }

    /// A name parameter (user, group, DNS name).
    pub fn name(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Name)
    }

    /// The value used when the parameter is absent (a valid value of its
    /// type: command templates use it).
    pub fn default(mut self, value: &str) -> Param {
        self.default = Some(value.into());
        self
    }

    /// Mark as required.
    pub fn required(mut self) -> Param {
        self.required = true;
        self
    }
}

#[doc(hidden)]
pub mod __private {
    use super::{Agent, Args, Error, Meta, Status};

    pub fn meta_data<A: Agent>() -> Meta {
        A::meta_data()
    }
    pub fn validate<A: Agent>(args: Vec<(String, String)>) -> Result<(), Error> {
        A::validate(&Args::new(args))
    }
    pub fn start<A: Agent>(args: Vec<(String, String)>) -> Result<(), Error> {
        A::start(&Args::new(args))
    }
    pub fn stop<A: Agent>(args: Vec<(String, String)>) -> Result<(), Error> {
        A::stop(&Args::new(args))
    }
    pub fn monitor<A: Agent>(args: Vec<(String, String)>) -> Result<Status, Error> {
        A::monitor(&Args::new(args))
    }
}

/// Export a type implementing [`Agent`] as the component's `agent` interface.
/// Use exactly once per agent crate (crate-type `cdylib`).
#[macro_export]
macro_rules! export_agent {
    ($agent:ty) => {
        #[doc(hidden)]
        struct __WasmbeatExport;

        impl $crate::bindings::exports::wasmbeat::agent::agent::Guest for __WasmbeatExport {
            fn meta_data() -> $crate::Meta {
                $crate::__private::meta_data::<$agent>()
            }
            fn validate(args: ::std::vec::Vec<(String, String)>) -> Result<(), $crate::Error> {
                $crate::__private::validate::<$agent>(args)
            }
            fn start(args: ::std::vec::Vec<(String, String)>) -> Result<(), $crate::Error> {
                $crate::__private::start::<$agent>(args)
            }
            fn stop(args: ::std::vec::Vec<(String, String)>) -> Result<(), $crate::Error> {
                $crate::__private::stop::<$agent>(args)
            }
            fn monitor(
                args: ::std::vec::Vec<(String, String)>,
            ) -> Result<$crate::Status, $crate::Error> {
                $crate::__private::monitor::<$agent>(args)
            }
        }

        $crate::bindings::export!(__WasmbeatExport with_types_in $crate::bindings);
    };
}

//! Write a wasmbeat fence (STONITH) agent in Rust.
//!
//! A fence agent is a WebAssembly component (target `wasm32-wasip2`) of the
//! world `wasmbeat:agent/fence-agent`: it exports `fence` (meta-data,
//! validate, list, status, on, off, reset) and may import only `log`,
//! `http` and `process`. Every HTTP request is checked by the host against
//! the device's granted endpoints before a connection is made, and every
//! command against the commands granted to it; outside them the call is
//! [`Error::Denied`].
//!
//! ```no_run
//! use wasmbeat_fence_sdk::{export_fence_agent, http, Args, Error, FenceAgent, FenceMeta, Param, PowerState};
//!
//! struct Switch;
//!
//! impl FenceAgent for Switch {
//!     fn meta_data() -> FenceMeta {
//!         FenceMeta::new("my-switch", "0.1.0", "Powers nodes through my switch")
//!             .param(Param::string("base", "The switch's URL").required())
//!     }
//!     fn list(args: &Args) -> Result<Vec<String>, Error> {
//!         let base: String = args.require("base")?;
//!         let r = http::get(&format!("{base}/nodes"), &[], 5000)?;
//!         Ok(r.text().lines().map(str::to_string).collect())
//!     }
//!     fn status(_args: &Args, _node: &str) -> Result<PowerState, Error> {
//!         Ok(PowerState::Unknown)
//!     }
//!     fn off(_args: &Args, _node: &str) -> Result<(), Error> {
//!         Err(Error::Failed("not wired".into()))
//!     }
//!     fn on(_args: &Args, _node: &str) -> Result<(), Error> {
//!         Err(Error::Failed("not wired".into()))
//!     }
//!     fn reset(_args: &Args, _node: &str) -> Result<(), Error> {
//!         Err(Error::Failed("not wired".into()))
//!     }
//! }
//!
//! export_fence_agent!(Switch);
//! ```

use std::fmt;
use std::str::FromStr;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fence-agent",
        pub_export_macro: true,
        default_bindings_module: "wasmbeat_fence_sdk::bindings",
    });
}

pub use bindings::exports::wasmbeat::agent::fence::{FenceMeta, PowerState};
pub use bindings::wasmbeat::agent::types::{Error, Param, ParamType};

/// A fence device's operations. Each runs in a fresh instance; nothing
/// survives between calls.
pub trait FenceAgent {
    /// Name, version, description and parameters.
    fn meta_data() -> FenceMeta;
    /// Check the arguments without changing anything (default: accept).
    fn validate(_args: &Args) -> Result<(), Error> {
        Ok(())
    }
    /// The nodes this device can fence.
    fn list(args: &Args) -> Result<Vec<String>, Error>;
    /// The power state of `node`.
    fn status(args: &Args, node: &str) -> Result<PowerState, Error>;
    /// Power `node` on.
    fn on(args: &Args, node: &str) -> Result<(), Error>;
    /// Power `node` off; return only once it is off.
    fn off(args: &Args, node: &str) -> Result<(), Error>;
    /// Power-cycle `node`.
    fn reset(args: &Args, node: &str) -> Result<(), Error>;
}

/// The device's arguments by parameter name.
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

    /// A parameter parsed as `T`, if given.
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

    /// A parameter parsed as `T`; absent is [`Error::InvalidArgs`].
    pub fn require<T: FromStr>(&self, name: &str) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        self.get(name)?
            .ok_or_else(|| Error::InvalidArgs(format!("parameter {name} is required")))
    }
}

impl FenceMeta {
    /// Start a description with no parameters.
    pub fn new(name: &str, version: &str, description: &str) -> FenceMeta {
        FenceMeta {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            params: Vec::new(),
        }
    }

    /// Append a parameter.
    pub fn param(mut self, p: Param) -> FenceMeta {
        self.params.push(p);
        self
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

    /// A name parameter.
    pub fn name(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Name)
    }

    /// An integer parameter.
    pub fn integer(name: &str, description: &str) -> Param {
        Param::of(name, description, ParamType::Integer)
    }

    /// The value used when the parameter is absent.
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

/// Log lines into the host's log, tagged with the agent and device.
pub mod log {
    use crate::bindings::wasmbeat::agent::log::{log, Level};

    /// Log at debug level.
    pub fn debug(msg: &str) {
        log(Level::Debug, msg)
    }
    /// Log at info level.
    pub fn info(msg: &str) {
        log(Level::Info, msg)
    }
    /// Log at warning level.
    pub fn warn(msg: &str) {
        log(Level::Warn, msg)
    }
    /// Log at error level.
    pub fn error(msg: &str) {
        log(Level::Error, msg)
    }
}

/// HTTP to the device's granted endpoints (checked by the host).
pub mod http {
    use crate::bindings::wasmbeat::agent::http as wit;
    use crate::Error;

    /// What the server answered.
    pub use wit::Response;

    /// Send one request; any status is `Ok` (the caller judges it).
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<Response, Error> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        wit::request(method, url, &headers, body, timeout_ms)
    }

    /// `GET url`.
    pub fn get(url: &str, headers: &[(&str, &str)], timeout_ms: u32) -> Result<Response, Error> {
        request("GET", url, headers, &[], timeout_ms)
    }

    /// `POST url` with `body`.
    pub fn post(
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<Response, Error> {
        request("POST", url, headers, body, timeout_ms)
    }

    impl Response {
        /// The body as text (lossy), trimmed.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).trim().to_string()
        }

        /// Whether the status is 2xx.
        pub fn ok(&self) -> bool {
            (200..300).contains(&self.status)
        }
    }
}

/// Vendor commands granted to the device (agents.toml's
/// `[fence.NAME] commands.CMD = [...]`), run confined; the agent names the
/// command, the administrator's grant fixes its whole command line.
pub mod process {
    use crate::bindings::wasmbeat::agent::process as wit;
    use crate::Error;

    /// How a command ended and what it printed.
    pub use wit::Output;

    /// Run the granted command `command` to completion (killed with all
    /// it started after `timeout_ms`).
    pub fn run(command: &str, timeout_ms: u32) -> Result<Output, Error> {
        wit::run(command, timeout_ms)
    }
}

#[doc(hidden)]
pub mod __private {
    use super::{Args, Error, FenceAgent, FenceMeta, PowerState};

    pub fn meta_data<A: FenceAgent>() -> FenceMeta {
        A::meta_data()
    }
    pub fn validate<A: FenceAgent>(args: Vec<(String, String)>) -> Result<(), Error> {
        A::validate(&Args::new(args))
    }
    pub fn list<A: FenceAgent>(args: Vec<(String, String)>) -> Result<Vec<String>, Error> {
        A::list(&Args::new(args))
    }
    pub fn status<A: FenceAgent>(
        args: Vec<(String, String)>,
        node: String,
    ) -> Result<PowerState, Error> {
        A::status(&Args::new(args), &node)
    }
    pub fn on<A: FenceAgent>(args: Vec<(String, String)>, node: String) -> Result<(), Error> {
        A::on(&Args::new(args), &node)
    }
    pub fn off<A: FenceAgent>(args: Vec<(String, String)>, node: String) -> Result<(), Error> {
        A::off(&Args::new(args), &node)
    }
    pub fn reset<A: FenceAgent>(args: Vec<(String, String)>, node: String) -> Result<(), Error> {
        A::reset(&Args::new(args), &node)
    }
}

/// Export a type implementing [`FenceAgent`] as the component's `fence`
/// interface. Use exactly once per agent crate (crate-type `cdylib`).
#[macro_export]
macro_rules! export_fence_agent {
    ($agent:ty) => {
        #[doc(hidden)]
        struct __WasmbeatFenceExport;

        impl $crate::bindings::exports::wasmbeat::agent::fence::Guest for __WasmbeatFenceExport {
            fn meta_data() -> $crate::FenceMeta {
                $crate::__private::meta_data::<$agent>()
            }
            fn validate(args: ::std::vec::Vec<(String, String)>) -> Result<(), $crate::Error> {
                $crate::__private::validate::<$agent>(args)
            }
            fn list(
                args: ::std::vec::Vec<(String, String)>,
            ) -> Result<::std::vec::Vec<String>, $crate::Error> {
                $crate::__private::list::<$agent>(args)
            }
            fn status(
                args: ::std::vec::Vec<(String, String)>,
                node: String,
            ) -> Result<$crate::PowerState, $crate::Error> {
                $crate::__private::status::<$agent>(args, node)
            }
            fn on(args: ::std::vec::Vec<(String, String)>, node: String) -> Result<(), $crate::Error> {
                $crate::__private::on::<$agent>(args, node)
            }
            fn off(args: ::std::vec::Vec<(String, String)>, node: String) -> Result<(), $crate::Error> {
                $crate::__private::off::<$agent>(args, node)
            }
            fn reset(
                args: ::std::vec::Vec<(String, String)>,
                node: String,
            ) -> Result<(), $crate::Error> {
                $crate::__private::reset::<$agent>(args, node)
            }
        }

        $crate::bindings::export!(__WasmbeatFenceExport with_types_in $crate::bindings);
    };
}

//! The control socket and protocol used by the CLI (status, standby,
//! takeover, reload): newline-delimited JSON over a Unix stream socket that
//! only root can open.

pub mod client;
pub mod paths;
pub mod protocol;
pub mod server;

pub use paths::RuntimePaths;
pub use protocol::{Request, Response, Which};

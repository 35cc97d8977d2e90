//! Log lines into the host's log, tagged with the agent and resource name.

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

//! Requests and responses exchanged over the control socket, one JSON
//! document per line.

use serde::{Deserialize, Serialize};

/// Which resource groups a standby or takeover command moves: the
/// engine's own type, as heartbeat's `hb_standby`/`hb_takeover` take it.
pub use crate::cluster::Which;

/// A command sent by the CLI to the running daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "scope", rename_all = "lowercase")]
pub enum Request {
    /// Report nodes, links and group ownership.
    Status,
    /// Give the named groups to the peer (`hb_standby`).
    Standby(Which),
    /// Take the named groups from the peer (`hb_takeover`).
    Takeover(Which),
    /// Re-read the configuration (same as SIGHUP).
    Reload,
}

/// The daemon's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Response {
    /// The status snapshot, as the daemon renders it (see `wasmbeat status --json`).
    Status {
        /// The snapshot document.
        status: Box<crate::daemon::status::StatusReport>,
    },
    /// The command was accepted; `message` says what will happen.
    Ok {
        /// Human-readable outcome.
        message: String,
    },
    /// The command was refused; `message` says why.
    Error {
        /// Human-readable reason.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_json_lines() {
        for req in [
            Request::Status,
            Request::Standby(Which::Foreign),
            Request::Takeover(Which::All),
            Request::Reload,
        ] {
            let line = serde_json::to_string(&req).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
        }
        assert_eq!(
            serde_json::to_string(&Request::Standby(Which::Local)).unwrap(),
            r#"{"cmd":"standby","scope":"local"}"#
        );
    }
}

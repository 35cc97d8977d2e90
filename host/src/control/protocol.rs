//! Requests and responses exchanged over the control socket, one JSON
//! document per line.

use serde::{Deserialize, Serialize};

/// Which resource groups a standby or takeover command moves, as in
/// heartbeat's `hb_standby`/`hb_takeover` (`failback` is an alias of `foreign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every group in haresources.
    All,
    /// Groups whose preferred node is this node.
    Local,
    /// Groups whose preferred node is the peer.
    #[value(alias = "failback")]
    Foreign,
}

impl Scope {
    /// The word heartbeat uses on the wire and in its tools.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Local => "local",
            Scope::Foreign => "foreign",
        }
    }
}

/// A command sent by the CLI to the running daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "scope", rename_all = "lowercase")]
pub enum Request {
    /// Report nodes, links and group ownership.
    Status,
    /// Give the named groups to the peer (`hb_standby`).
    Standby(Scope),
    /// Take the named groups from the peer (`hb_takeover`).
    Takeover(Scope),
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
        status: serde_json::Value,
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
            Request::Standby(Scope::Foreign),
            Request::Takeover(Scope::All),
            Request::Reload,
        ] {
            let line = serde_json::to_string(&req).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
        }
        assert_eq!(
            serde_json::to_string(&Request::Standby(Scope::Local)).unwrap(),
            r#"{"cmd":"standby","scope":"local"}"#
        );
    }
}

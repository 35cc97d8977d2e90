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
    /// The operator confirms that this node is off (`wasmbeat fence-ack`,
    /// heartbeat's `meatclient -c`): fencing it counts as done.
    #[serde(rename = "fence-ack")]
    FenceAck(String),
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

/// Longest request line the daemon reads; anything longer is a
/// misbehaving client.
pub const MAX_REQUEST_LINE: usize = 4096;

/// Why the bytes a client sent are not a request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The line is not UTF-8 (JSON text always is).
    #[error("request is not UTF-8 text")]
    NotUtf8,
    /// The line is UTF-8 but not a request document.
    #[error("malformed control request: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl Request {
    /// Decode one request line as the daemon reads it off the socket (at
    /// most [`MAX_REQUEST_LINE`] bytes, its newline included or not). Pure,
    /// so the server and the fuzzer decode the same way.
    pub fn decode(line: &[u8]) -> Result<Request, RequestError> {
        let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
        Ok(serde_json::from_str(text.trim_end())?)
    }

    /// The request as one line of JSON, newline included, as the CLI sends it.
    pub fn encode(&self) -> String {
        let mut line = serde_json::to_string(self).expect("requests always serialize");
        line.push('\n');
        line
    }
}

impl Response {
    /// The answer as one line of JSON, newline included, as the daemon writes it.
    pub fn encode(&self) -> String {
        let mut line = serde_json::to_string(self).expect("responses always serialize");
        line.push('\n');
        line
    }
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
            Request::FenceAck("node2".into()),
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

//! The last (generation, seq) accepted from each peer, persisted in the
//! state directory next to `hb_uuid` and `hb_generation`, so that a restart
//! of ours does not forget what the peers already said. Without it, the
//! first message after our start is taken as the peer's first ever, and a
//! recorded `hb_takeover` or `ip-request` from any earlier generation of
//! the peer would be obeyed (heartbeat has the same hole).
//!
//! The peer's generation is the main guard: it changes on every restart of
//! the peer, and the file is written at once when it does. The seq inside a
//! generation is written every [`SAVE_INTERVAL`] and at shutdown, so after
//! a crash of ours only the peer's last few seconds before it are not
//! covered (and, for `NS_*`, the `ts` freshness check still applies).
//!
//! Format (text, one peer a line, so an operator can read it):
//!
//! ```text
//! # wasmbeat peer sequence state v1: node generation seq
//! node1 1795554622 1234
//! ```
//!
//! A missing file is the first start; a corrupt one is logged and ignored
//! (the daemon starts as it would without it, never refuses).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::identity::{write_durable, IdentityError};
pub use wasmbeat_core::wire::PeerState;

/// File name inside the state directory.
pub const PEER_STATE_FILE: &str = "wb_peer_seq";
/// How often a seq that moved (same generations) is written.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(30);

const HEADER: &str = "# wasmbeat peer sequence state v1: node generation seq";

/// Why the peer state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerStateError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] IdentityError),
    /// A line is not `node generation seq`.
    #[error("{path}:{line}: expected \"node generation seq\" (decimal), found {text:?}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The line as found.
        text: String,
    },
}

/// Where the file lives in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(PEER_STATE_FILE)
}

/// Read the saved states (empty when the file does not exist yet).
pub fn load(state_dir: &Path) -> Result<Vec<PeerState>, PeerStateError> {
    let p = path(state_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PeerStateError::Io(IdentityError::Io { path: p, source }));
        }
    };
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let parsed = match words[..] {
            [node, g, s] => g
                .parse()
                .ok()
                .zip(s.parse().ok())
                .map(|(generation, seq)| PeerState {
                    node: node.to_string(),
                    generation,
                    seq,
                }),
            _ => None,
        };
        out.push(parsed.ok_or_else(|| PeerStateError::Corrupt {
            path: p.clone(),
            line: i + 1,
            text: raw.to_string(),
        })?);
    }
    Ok(out)
}

/// Write the states durably (temp file, fsync, rename).
pub fn save(state_dir: &Path, states: &[PeerState]) -> Result<(), PeerStateError> {
    let mut text = format!("{HEADER}\n");
    for s in states {
        text.push_str(&format!("{} {} {}\n", s.node, s.generation, s.seq));
    }
    write_durable(&path(state_dir), text.as_bytes())?;
    Ok(())
}

/// Decides when the states are worth writing: at once when a peer's
/// generation changed (a restart of the peer: the guard that matters), else
/// when a seq moved and [`SAVE_INTERVAL`] passed since the last write.
#[derive(Debug, Default)]
pub struct SavePolicy {
    written: Vec<PeerState>,
    at: Option<std::time::Instant>,
}

impl SavePolicy {
    /// A policy that knows `states` are already on disk.
    pub fn written(states: Vec<PeerState>, at: std::time::Instant) -> SavePolicy {
        SavePolicy {
            written: states,
            at: Some(at),
        }
    }

    /// Whether `now_states` should be written at `now`; if so, they are
    /// taken as written.
    pub fn due(&mut self, now_states: &[PeerState], now: std::time::Instant) -> bool {
        if now_states == self.written.as_slice() {
            return false;
        }
        let generation_of =
            |v: &[PeerState], node: &str| v.iter().find(|s| s.node == node).map(|s| s.generation);
        let new_generation = now_states
            .iter()
            .any(|s| generation_of(&self.written, &s.node) != Some(s.generation));
        let interval_passed = self
            .at
            .is_none_or(|t| now.duration_since(t) >= SAVE_INTERVAL);
        if new_generation || interval_passed {
            self.written = now_states.to_vec();
            self.at = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn st(node: &str, generation: u64, seq: u64) -> PeerState {
        PeerState {
            node: node.into(),
            generation,
            seq,
        }
    }

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = std::env::temp_dir().join(format!("wb-peerstate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load(&dir).unwrap(), vec![]);
        let states = vec![st("node1", 1795554622, 1234), st("node3", 7, 1)];
        save(&dir, &states).unwrap();
        assert_eq!(load(&dir).unwrap(), states);
        assert!(!dir.join("wb_peer_seq.tmp").exists());
        std::fs::write(path(&dir), "# x\nnode1 12 nope\n").unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(e.contains("wb_peer_seq:2") && e.contains("nope"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn written_at_once_on_a_new_generation_else_every_interval() {
        let t = Instant::now();
        let mut p = SavePolicy::written(vec![st("a", 5, 10)], t);
        assert!(!p.due(&[st("a", 5, 10)], t), "nothing changed");
        assert!(!p.due(&[st("a", 5, 11)], t), "a seq moved: wait");
        assert!(p.due(&[st("a", 6, 1)], t), "the peer restarted: now");
        assert!(!p.due(&[st("a", 6, 90)], t + SAVE_INTERVAL / 2));
        assert!(p.due(&[st("a", 6, 90)], t + SAVE_INTERVAL));
        assert!(p.due(&[st("a", 6, 90), st("b", 1, 1)], t + SAVE_INTERVAL));
    }
}

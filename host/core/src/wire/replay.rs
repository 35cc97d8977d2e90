//! Per-peer (generation, seq) tracking: duplicate suppression across
//! redundant media, replay rejection and gap detection, as heartbeat's
//! `should_drop_message` does it (spec §5.7).

use std::collections::BTreeSet;

/// Heartbeat's FLOWCONTROL_LIMIT: a jump larger than this resets tracking.
pub const FLOWCONTROL_LIMIT: u64 = 250;
/// Most missing sequence numbers remembered per peer.
pub const MAX_MISSING: usize = 500;

/// What to do with a message, by its (generation, seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqVerdict {
    /// New message: act on it. `gap` lists seqs newly found missing.
    Accept {
        /// Sequence numbers skipped by this message (to request again).
        gap: Vec<u64>,
        /// True when this message filled an earlier gap.
        filled: bool,
    },
    /// The peer restarted (higher generation on a status): tracking reset,
    /// message accepted.
    Restarted {
        /// Previously known generation.
        old: u64,
    },
    /// Same seq as the last one: a copy from another medium.
    Duplicate,
    /// Older seq that was not missing: a replay or a late copy.
    Old,
    /// Generation lower than known: a replay (heartbeat: "attempted replay attack").
    OldGeneration,
}

impl SeqVerdict {
    /// True when the message should be acted on.
    pub fn accepted(&self) -> bool {
        matches!(
            self,
            SeqVerdict::Accept { .. } | SeqVerdict::Restarted { .. }
        )
    }
}

/// Sequence state for one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSeq {
    /// Highest generation seen on a status message (0 = none yet).
    pub generation: u64,
    /// Last in-order sequence number accepted (0 = none yet).
    pub last_seq: u64,
    /// Sequence numbers skipped and not yet received.
    pub missing: BTreeSet<u64>,
}

impl PeerSeq {
    /// Judge a message with generation `hg`, sequence `seq` (None for
    /// `NS_*`), `is_status` for `t=status`.
    pub fn check(&mut self, hg: u64, seq: Option<u64>, is_status: bool) -> SeqVerdict {
        if hg < self.generation {
            return SeqVerdict::OldGeneration;
        }
        let mut restarted = None;
        // Only a status adopts a new generation; a restarted node's other
        // messages are judged against the old seq state until then.
        if is_status && hg > self.generation {
            if self.generation != 0 {
                restarted = Some(self.generation);
            }
            self.generation = hg;
            self.last_seq = 0;
            self.missing.clear();
        }
        let Some(seq) = seq else {
            return match restarted {
                Some(old) => SeqVerdict::Restarted { old },
                None => SeqVerdict::Accept {
                    gap: vec![],
                    filled: false,
                },
            };
        };
        let verdict = if self.last_seq == 0 || seq == self.last_seq + 1 {
            self.last_seq = seq;
            SeqVerdict::Accept {
                gap: vec![],
                filled: false,
            }
        } else if seq == self.last_seq {
            SeqVerdict::Duplicate
        } else if seq > self.last_seq {
            if seq - self.last_seq > FLOWCONTROL_LIMIT {
                self.missing.clear();
                self.last_seq = seq;
                SeqVerdict::Accept {
                    gap: vec![],
                    filled: false,
                }
            } else {
                let gap: Vec<u64> = (self.last_seq + 1..seq).collect();
                self.missing.extend(gap.iter().copied());
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                }
                self.last_seq = seq;
                SeqVerdict::Accept { gap, filled: false }
            }
        } else if self.missing.remove(&seq) {
            SeqVerdict::Accept {
                gap: vec![],
                filled: true,
            }
        } else {
            SeqVerdict::Old
        };
        match (restarted, verdict.accepted()) {
            (Some(old), true) => SeqVerdict::Restarted { old },
            (_, _) => verdict,
        }
    }

    /// Forget a missing seq (the sender said it cannot retransmit it).
    pub fn give_up(&mut self, seq: u64) -> bool {
        self.missing.remove(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeqVerdict::*;

    #[test]
    fn in_order_duplicates_and_replays() {
        let mut p = PeerSeq::default();
        assert_eq!(
            p.check(10, Some(1), true),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert_eq!(p.check(10, Some(1), true), Duplicate);
        assert_eq!(
            p.check(10, Some(2), false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert_eq!(
            p.check(10, Some(5), false),
            Accept {
                gap: vec![3, 4],
                filled: false
            }
        );
        assert_eq!(
            p.check(10, Some(4), false),
            Accept {
                gap: vec![],
                filled: true
            }
        );
        assert_eq!(p.check(10, Some(4), false), Old);
        assert_eq!(p.check(9, Some(6), true), OldGeneration);
        assert_eq!(p.check(9, None, false), OldGeneration);
        assert_eq!(
            p.check(10, None, false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert!(p.give_up(3));
        assert_eq!(p.check(10, Some(3), false), Old);
    }

    #[test]
    fn restart_needs_a_status() {
        let mut p = PeerSeq::default();
        p.check(10, Some(1), true);
        p.check(10, Some(2), true);
        // Non-status from the new generation with a small seq: dropped.
        assert_eq!(p.check(11, Some(1), false), Old);
        assert_eq!(p.check(11, Some(1), true), Restarted { old: 10 });
        assert_eq!(
            p.check(11, Some(2), false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
    }

    #[test]
    fn big_jump_resets() {
        let mut p = PeerSeq::default();
        p.check(1, Some(1), true);
        assert_eq!(
            p.check(1, Some(1000), false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert!(p.missing.is_empty());
    }
}

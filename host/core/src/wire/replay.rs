//! Per-peer (generation, seq) tracking: duplicate suppression across
//! redundant media, replay rejection and gap detection, as heartbeat's
//! `should_drop_message` does it (spec §5.7).
//!
//! Sequence numbers are u64 (heartbeat's `seqno_t`, an unsigned long on
//! 64-bit Linux). Every step here is checked arithmetic: a peer (or a
//! forged-but-signed packet) at `u64::MAX` is judged like any other seq,
//! never wraps and never panics. What the *sender* does when its own space
//! runs out is in `session` ([`crate::wire::session::SEQ_RESERVE`]).

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
    /// Restored from before our own restart: in `generation`, nothing at or
    /// below this seq is accepted (we saw it, or could have, last time).
    /// 0 = no floor.
    pub floor_seq: u64,
}

impl PeerSeq {
    /// Tracking restored after our own restart from the last (generation,
    /// seq) accepted before it: older generations are replays, and so is
    /// anything at or below `seq` in `generation`. The first newer message
    /// starts tracking without a gap (what the peer sent while we were down
    /// is not ours to request).
    pub fn restored(generation: u64, seq: u64) -> PeerSeq {
        PeerSeq {
            generation,
            floor_seq: seq,
            ..PeerSeq::default()
        }
    }

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
            self.floor_seq = 0;
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
        if hg == self.generation && seq <= self.floor_seq {
            return SeqVerdict::Old;
        }
        let next = self.last_seq.checked_add(1);
        let verdict = if self.last_seq == 0 || Some(seq) == next {
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

    /// A peer at the top of the seq space is judged like any other: the
    /// last seq is accepted once, repeats are duplicates, older ones stay
    /// old, and only a restart (a status with a higher generation) moves on.
    #[test]
    fn seq_at_u64_max_neither_wraps_nor_panics() {
        let mut p = PeerSeq::default();
        p.check(7, Some(u64::MAX - 1), true);
        assert_eq!(
            p.check(7, Some(u64::MAX), false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert_eq!(p.check(7, Some(u64::MAX), false), Duplicate);
        // What a wrapping sender would send next (heartbeat's seqno_t would
        // wrap to 0, which receivers refuse as "no seq", then 1): old.
        assert_eq!(p.check(7, Some(1), false), Old);
        assert_eq!(p.check(8, Some(1), true), Restarted { old: 7 });
    }

    /// After our restart, the restored (generation, seq) floor refuses what
    /// we may have seen before it and every older generation; the peer's
    /// next message continues without a gap.
    #[test]
    fn restored_floor_refuses_old_and_accepts_new() {
        let mut p = PeerSeq::restored(20, 40);
        assert_eq!(p.check(19, Some(500), false), OldGeneration);
        assert_eq!(p.check(20, Some(40), false), Old);
        assert_eq!(p.check(20, Some(3), true), Old);
        assert_eq!(
            p.check(20, Some(45), false),
            Accept {
                gap: vec![],
                filled: false
            }
        );
        assert!(p.missing.is_empty());
        // A fresh tracker (no persisted state) is the attack's way in: it
        // takes the replayed seq 3 as the peer's first message.
        assert!(PeerSeq::default().check(20, Some(3), false).accepted());
    }
}

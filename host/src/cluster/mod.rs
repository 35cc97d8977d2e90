//! The failover core: membership and resource ownership as a pure state machine (no IO, no clock).

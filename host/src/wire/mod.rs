//! Heartbeat message encode/decode and authentication (authkeys methods).

//! Parsing of heartbeat's ha.cf, haresources and authkeys into typed structs.

pub mod token;

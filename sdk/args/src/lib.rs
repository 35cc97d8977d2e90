//! What wasmbeat's host and its agents agree on about resource arguments,
//! in one place so the two can never read the same text differently:
//!
//! - [`bind`]: haresources arguments (`IPaddr::10.0.0.1/24::eth0`, or
//!   `name=value`) bound to the parameters an agent declares;
//! - [`value`]: the types a parameter can declare, and which text is a
//!   valid value of each (conservative, since values fill command templates);
//! - [`address`]: heartbeat's `IP[/MASK[/NIC[/BROADCAST]]]` grammar and
//!   the interface/netmask choice of its `findif`.
//!
//! No IO and no dependencies: the host links it natively and the IPaddr
//! agent compiles it to WebAssembly.

pub mod address;
pub mod bind;
pub mod value;

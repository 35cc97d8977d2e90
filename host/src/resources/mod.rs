//! Resource groups: ordered start/stop and monitoring through the agent runtime.

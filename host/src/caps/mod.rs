//! Capability providers the agent WIT imports bind to, each with its policy check.

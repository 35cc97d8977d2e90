//! Scenario tests for the heartbeat rules, one per rule.

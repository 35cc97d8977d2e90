//! The control socket and protocol used by the CLI (status, standby, takeover, reload).

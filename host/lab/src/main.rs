//! The `wasmbeat-lab` command line: the failover demo and the helper
//! processes tests and benchmarks spawn inside network namespaces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use wasmbeat_lab::{demo, http, sibling_binary, wire_peer};

/// Test and demo companion of the wasmbeat daemon.
#[derive(Parser)]
#[command(name = "wasmbeat-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Two-node failover demo in network namespaces (needs root).
    Demo {
        /// Heartbeat interval (heartbeat syntax: 1, 200ms).
        #[arg(long, default_value = "100ms", value_parser = parse_duration)]
        keepalive: Duration,
        /// Time without heartbeats before the peer is declared dead.
        #[arg(long, default_value = "500ms", value_parser = parse_duration)]
        deadtime: Duration,
        /// auto_failback on|off.
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        auto_failback: String,
        /// Leave the lab running at the end until Ctrl-C.
        #[arg(long)]
        keep: bool,
        /// The wasmbeat binary to run on the nodes (default: the one next
        /// to this program, as cargo builds them).
        #[arg(long)]
        wasmbeat: Option<PathBuf>,
    },
    /// Bare wire peer for interop tests: heartbeats and protocol answers only.
    WirePeer(wire_peer::WirePeerArgs),
    /// Serve a fixed body over HTTP until killed (the demo's and the
    /// benchmarks' service: it tells the client which node answered).
    HttpResponder {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Body of every answer.
        #[arg(long)]
        body: String,
    },
}

/// heartbeat's time syntax for CLI flags (seconds, or `ms`/`us` suffixes).
fn parse_duration(s: &str) -> Result<Duration, String> {
    wasmbeat::config::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn init_stderr_logging() {
    let _ = wasmbeat::logging::init(&wasmbeat::logging::LogTargets::default());
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo {
            keepalive,
            deadtime,
            auto_failback,
            keep,
            wasmbeat,
        } => {
            init_stderr_logging();
            let wasmbeat = match wasmbeat {
                Some(path) => path,
                None => sibling_binary("wasmbeat").context(
                    "no wasmbeat binary next to wasmbeat-lab: build both (cargo build -p wasmbeat -p wasmbeat-lab) or pass --wasmbeat PATH",
                )?,
            };
            let responder = std::env::current_exe().context("locating wasmbeat-lab itself")?;
            demo::run(&demo::DemoOptions {
                wasmbeat,
                responder,
                keepalive,
                deadtime,
                auto_failback: auto_failback == "on",
                keep,
            })?;
        }
        Command::WirePeer(args) => {
            init_stderr_logging();
            wire_peer::run_blocking(args)?;
        }
        Command::HttpResponder { listen, body } => http::serve(listen, &body)?,
    }
    Ok(())
}

//! The `wasmbeat` command line.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Active/passive IP failover daemon compatible with Linux-HA heartbeat.
#[derive(Parser)]
#[command(name = "wasmbeat", version, about)]
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
    },
    /// Serve a fixed body over HTTP (the demo's and benchmarks' service).
    #[command(hide = true)]
    HttpResponder {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Body of every answer.
        #[arg(long)]
        body: String,
    },
}

/// heartbeat's time syntax for CLI flags: seconds, or `ms`/`us` suffixes.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("{s:?} is not a duration; write e.g. 5, 500ms"))
}

fn init_stderr_logging() {
    let _ = wasmbeat::logging::init(&wasmbeat::logging::LogTargets::default());
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            keepalive,
            deadtime,
            auto_failback,
            keep,
        } => {
            init_stderr_logging();
            wasmbeat::demo::run(&wasmbeat::demo::DemoOptions {
                keepalive,
                deadtime,
                auto_failback: auto_failback == "on",
                keep,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HttpResponder { listen, body } => {
            wasmbeat::lab::http::serve(listen, &body)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

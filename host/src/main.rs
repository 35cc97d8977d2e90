//! The `wasmbeat` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Check heartbeat's ha.cf, haresources and authkeys and summarise the cluster.
    Check {
        /// Directory holding ha.cf, haresources, authkeys and resource.d/.
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// This node's name (default: `uname -n`, lowercased, as heartbeat).
        #[arg(long)]
        node: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bare wire peer for interop tests: heartbeats and protocol answers only.
    #[command(hide = true)]
    WirePeer(wasmbeat::transport::peer::WirePeerArgs),
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

/// heartbeat's time syntax for CLI flags (seconds, or `ms`/`us` suffixes).
fn parse_duration(s: &str) -> Result<Duration, String> {
    wasmbeat::config::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn check(config_dir: &Path, node: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let report = wasmbeat::config::check::check(config_dir, node);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        Command::Check {
            config_dir,
            node,
            json,
        } => {
            init_stderr_logging();
            check(&config_dir, node.as_deref(), json)
        }
        Command::WirePeer(args) => {
            init_stderr_logging();
            wasmbeat::transport::peer::run_blocking(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HttpResponder { listen, body } => {
            wasmbeat::lab::http::serve(listen, &body)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

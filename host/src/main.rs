//! The `wasmbeat` command line.

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
    /// Bare wire peer for interop tests: heartbeats and protocol answers only.
    #[command(hide = true)]
    WirePeer(wasmbeat::transport::peer::WirePeerArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::WirePeer(args) => wasmbeat::transport::peer::run_blocking(args)?,
    }
    Ok(())
}

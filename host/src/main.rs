//! The `wasmbeat` command line.

use std::path::PathBuf;

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
}

fn check(config_dir: &std::path::Path, node: Option<&str>, json: bool) -> anyhow::Result<()> {
    let report = wasmbeat::config::check::check(config_dir, node);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
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
        Command::Check {
            config_dir,
            node,
            json,
        } => check(&config_dir, node.as_deref(), json),
    }
}

//! The `wasmbeat` command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wasmbeat::runtime::cli::{agent_command, AgentCliOptions, CliOp};
use wasmbeat::runtime::RuntimeConfig;

/// Active/passive IP failover daemon compatible with Linux-HA heartbeat.
#[derive(Parser)]
#[command(name = "wasmbeat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one resource-agent operation by hand, like heartbeat's
    /// `/etc/ha.d/resource.d/IPaddr 10.0.0.1 start`. Exit codes follow OCF.
    Agent {
        /// A haresources resource token, e.g. `IPaddr::10.0.0.1/24/eth0`.
        token: String,
        /// The operation.
        #[arg(value_enum)]
        op: CliOp,
        /// heartbeat configuration directory (agents in `resource.d/`).
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
        /// Cache of compiled agents.
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// Compile agents every time instead of using the cache.
        #[arg(long)]
        no_cache: bool,
        /// Deadline for the operation in seconds (default: 20 start/stop, 10 monitor).
        #[arg(long)]
        timeout: Option<f64>,
    },
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
        Command::Agent {
            token,
            op,
            config_dir,
            cache_dir,
            no_cache,
            timeout,
        } => {
            let mut runtime = RuntimeConfig {
                cache_dir: (!no_cache).then_some(cache_dir),
                ..RuntimeConfig::default()
            };
            if let Some(t) = timeout {
                let d = Duration::try_from_secs_f64(t).map_err(|_| {
                    anyhow::anyhow!("--timeout {t}: not a positive number of seconds")
                })?;
                let dl = &mut runtime.deadlines;
                (dl.start, dl.stop, dl.monitor, dl.validate) = (d, d, d, d);
            }
            let opts = AgentCliOptions {
                config_dir,
                runtime,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let code = rt.block_on(agent_command(&token, op, &opts));
            drop(rt);
            std::process::exit(code);
        }
    }
}

//! Developer tasks: the benchmarks (`cargo run --release -p xtask -- bench
//! ...`) and the chaos run (`... -- chaos`). Needs root, iproute2, and for
//! the comparison rows the Debian `heartbeat`, `resource-agents` and
//! `keepalived` packages.
//!
//! Module imports point one way: `bench` runs `failover`, `vips`, `uplink`
//! and `footprint` and writes the `report`; `chaos` runs its own lab; those
//! use `probe` (the client's HTTP probe, over `cadence` and `interrupt`),
//! `systems` (the daemons under test), `stats`, `interrupt`, `machine`,
//! `cadence` and `hub`, which import no other xtask module.

use anyhow::{bail, Context, Result};

mod agent_bench;
mod bench;
mod cadence;
mod chaos;
mod failover;
mod footprint;
mod hub;
mod interrupt;
mod machine;
mod probe;
mod report;
mod resume;
mod rounds;
mod stats;
mod systems;
mod uplink;
mod vips;

fn main() -> Result<()> {
    // RUST_LOG=debug shows per-operation timings and capability calls.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bench", "agent"] => agent_bench::run(30),
        ["bench", "agent", n] => agent_bench::run(n.parse().context("iterations")?),
        ["bench", rest @ ..] => bench::main(rest),
        ["chaos", rest @ ..] => chaos::main(rest),
        _ => bail!(
            "usage: cargo run --release -p xtask -- bench agent [ITERATIONS] | bench [--quick] ... | chaos [--minutes M] [--seed N] ..."
        ),
    }
}

//! `wasmbeat-compile`: compiles an agent component (read from stdin) for
//! the engine the daemon runs agents in. The daemon is built without a
//! compiler and runs this in a child process on a cache miss; an
//! administrator can run it to fill a cache ahead of time.
//!
//! With `--cache-dir DIR` the result is stored as DIR's entry for that
//! component; without, it is written to stdout. Exit status: 0 done,
//! 65 not a valid component, 73 the cache entry could not be written.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wasmbeat::runtime::cache;

/// Compile a wasmbeat agent component (stdin) for the daemon's engine.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Store the result in this agent cache instead of writing it to stdout.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut wasm) {
        eprintln!("reading the component from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let compiled = match cache::compile(&wasm) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(cache::exit::INVALID);
        }
    };
    match args.cache_dir {
        Some(dir) => {
            let path = cache::cache_path(&dir, &wasm);
            if let Err(e) = cache::store(&dir, &path, &compiled) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::from(cache::exit::CANNOT_STORE);
            }
        }
        None => {
            if let Err(e) = std::io::stdout().lock().write_all(&compiled) {
                eprintln!("writing the compiled component to stdout: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

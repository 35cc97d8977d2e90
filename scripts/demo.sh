#!/usr/bin/env bash
# The main job: a local two-node failover demo in network namespaces.
# Extra arguments go to `wasmbeat-lab demo` (e.g. --auto-failback off, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The dev profile (Cranelift itself is optimised, see Cargo.toml) shares its
# build with scripts/test.sh and builds in a fraction of a release build's time.
# The demo lives in the lab crate (test support, not shipped in the daemon);
# it runs the `wasmbeat` daemon built next to it.
cargo build -p wasmbeat -p wasmbeat-lab
exec target/debug/wasmbeat-lab demo "$@"

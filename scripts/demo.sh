#!/usr/bin/env bash
# The main job: a local two-node failover demo in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p wasmbeat
exec target/release/wasmbeat demo "$@"

#!/usr/bin/env bash
# Runs every test: unit, simulation, runtime and (as root) the network
# namespace lab tests. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets -- --test-threads=2

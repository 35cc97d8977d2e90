#!/usr/bin/env bash
# Runs every test: unit, simulation, runtime, the example agents in Python
# and C, and (as root) the network namespace lab tests. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-examples.sh
cargo test --workspace --all-targets -- --test-threads=2
# The agents (wasm32-wasip2 crates) have their own workspace; their pure
# logic and the SDK's doc example run on the host target.
(cd agents && cargo test --workspace)

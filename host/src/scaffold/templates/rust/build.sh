#!/usr/bin/env bash
# Builds @NAME@.wasm (needs rustup's wasm32-wasip2 target:
# `rustup target add wasm32-wasip2`).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/@CRATE@.wasm" @NAME@.wasm
echo "built $(pwd)/@NAME@.wasm ($(stat -c %s @NAME@.wasm) bytes)"

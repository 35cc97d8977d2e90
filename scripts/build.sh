#!/usr/bin/env bash
# Builds what a node runs: the daemon, without the agent compiler, and
# `wasmbeat-compile`, the compiler it runs in a child process on a cache
# miss. Two cargo runs: one would unify the features and link Cranelift
# into the daemon as well. Prints the directory that holds both.
#
#   scripts/build.sh          # release (what ships)
#   scripts/build.sh dev      # debug
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-release}" in
release) flags=(--release); profile_dir=release ;;
dev) flags=(); profile_dir=debug ;;
*) echo "usage: scripts/build.sh [release|dev]" >&2; exit 2 ;;
esac
cargo build "${flags[@]}" -p wasmbeat --no-default-features --bin wasmbeat >&2
cargo build "${flags[@]}" -p wasmbeat --bin wasmbeat-compile >&2
echo "${CARGO_TARGET_DIR:-target}/$profile_dir"

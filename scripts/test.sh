#!/usr/bin/env bash
# Runs every test: unit, simulation, runtime, the example agents in Python
# and C, (as root) the network namespace lab tests, and a short run of every
# fuzz target over its committed corpus. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# A test run builds once; incremental state would only cost disk (15 GB
# of it for this workspace's test binaries).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
scripts/setup.sh
scripts/build-examples.sh
# The Debian package, release build, as it ships; the package test unpacks
# and runs exactly this file.
WASMBEAT_PACKAGE_DEB="$(pwd)/$(scripts/package.sh | tail -1)"
export WASMBEAT_PACKAGE_DEB
# Lab tests spawn `wasmbeat-lab` (wire peer, HTTP responder) from next to
# the `wasmbeat` binary under test. The lab crate has integration tests of
# its own, so this one cargo run builds that binary, with every test, before
# any test starts (a separate `cargo build` would resolve features
# differently and build the dependencies twice).
cargo test --workspace --all-targets -- --test-threads=2
# The chaos smoke: three minutes of one-at-a-time faults (kill -9, SIGSTOP,
# link flaps, loss, duplication, reload storms, operator commands, a full
# or read-only state directory, wall-clock steps, a hanging monitor)
# against two daemons in the lab, judged from outside; the same `xtask chaos` that wrote the 60-minute report in
# bench/results. A violation prints its seed and the replay command.
if [ "$(id -u)" = 0 ]; then
    "${CARGO_TARGET_DIR:-target}/debug/xtask" chaos --minutes 3 --seed 1 \
        --out "${CARGO_TARGET_DIR:-target}/chaos"
elif [ -n "${WASMBEAT_REQUIRE_LAB:-}" ]; then
    echo "chaos smoke needs root (network namespaces, mounts)" >&2
    exit 1
else
    echo "chaos smoke skipped: not root" >&2
fi
# The agents (wasm32-wasip2 crates) have their own workspace; their pure
# logic and the SDK's doc example run on the host target.
(cd agents && cargo test --workspace)
# Each fuzz target for a few seconds over its committed corpus (stable
# toolchain, libFuzzer without sanitizers): every corpus input still passes
# its target's checks, and a little fresh fuzzing on top.
scripts/fuzz.sh --time "${WASMBEAT_FUZZ_SECONDS:-15}"

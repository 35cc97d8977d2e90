#!/usr/bin/env bash
# Installs, into target/tools at the repository root, what turns a C agent
# into a wasmbeat component (agents/examples/c-nginx/build.sh uses them):
#   - wit-bindgen-cli 0.60.0 (C generator only): `wit-bindgen c` makes the
#     bindings for wit/agent.wit. 0.60 is the release built on wit-parser
#     0.254, the WIT parser of the wasmtime 48 that the host embeds.
#   - wasm-tools 1.254.2 (feature `component` only): `component new`.
#   - the WASI preview1 reactor adapter of wasmtime 48.0.8, taken from the
#     crates.io package wasi-preview1-component-adapter-provider (the
#     adapter bytes ship inside it), checked against pinned sha256 sums.
# Idempotent: each piece is skipped when the pinned version is already there
# (no network then). First run compiles the two CLIs from source with cargo
# (measured: wit-bindgen 5 min 15 s, wasm-tools 6 min, on 2 shared cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"

WIT_BINDGEN_VERSION=0.60.0
WASM_TOOLS_VERSION=1.254.2
ADAPTER_CRATE=wasi-preview1-component-adapter-provider
ADAPTER_VERSION=48.0.8
# sha256 of the .crate file; equals the "cksum" of that version in the
# crates.io index, which is what cargo itself verifies.
ADAPTER_CRATE_SHA256=d3a1674fffec103c1d4367d4417a3bd5423cde3cfd56ff3b326b5fc72c0a8ebd
ADAPTER_WASM_SHA256=134b86dc09c6b62077f2307b96fa8b83b94dc86737bc705ac3dbe27cb107b1f9
ADAPTER="$TOOLS/wasi_snapshot_preview1.reactor.wasm"

die() { echo "install-c-tools: $*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed: $2"
}

# `cargo install` of one pinned CLI unless that exact version is installed.
cargo_tool() {
    local bin=$1 crate=$2 version=$3
    shift 3
    if [ -x "$TOOLS/bin/$bin" ] && "$TOOLS/bin/$bin" --version 2>/dev/null | grep -qw "$version"; then
        return 0
    fi
    need cargo "install Rust (rustup or Debian's cargo) to build $crate"
    echo "install-c-tools: building $crate $version into $TOOLS (one-time, a few minutes)"
    local t0=$SECONDS
    cargo install --locked --root "$TOOLS" "$crate@$version" --no-default-features "$@"
    echo "install-c-tools: $crate $version built in $((SECONDS - t0)) s"
}

cargo_tool wit-bindgen wit-bindgen-cli "$WIT_BINDGEN_VERSION" --features c
cargo_tool wasm-tools wasm-tools "$WASM_TOOLS_VERSION" --features component

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -f "$ADAPTER" ] || [ "$(sha256_of "$ADAPTER")" != "$ADAPTER_WASM_SHA256" ]; then
    need curl "apt-get install curl"
    need tar "apt-get install tar"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    url="https://static.crates.io/crates/$ADAPTER_CRATE/$ADAPTER_VERSION/download"
    echo "install-c-tools: fetching $ADAPTER_CRATE $ADAPTER_VERSION from crates.io"
    curl -sSfL --retry 3 -o "$tmp/adapter.crate" "$url" || die "download of $url failed"
    [ "$(sha256_of "$tmp/adapter.crate")" = "$ADAPTER_CRATE_SHA256" ] ||
        die "$ADAPTER_CRATE $ADAPTER_VERSION: sha256 mismatch (expected $ADAPTER_CRATE_SHA256)"
    member="$ADAPTER_CRATE-$ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm"
    tar -xzf "$tmp/adapter.crate" -C "$tmp" "$member"
    [ "$(sha256_of "$tmp/$member")" = "$ADAPTER_WASM_SHA256" ] ||
        die "reactor adapter in $ADAPTER_CRATE $ADAPTER_VERSION: sha256 mismatch"
    mkdir -p "$TOOLS"
    mv "$tmp/$member" "$ADAPTER"
    echo "install-c-tools: $ADAPTER ($(stat -c %s "$ADAPTER") bytes)"
fi

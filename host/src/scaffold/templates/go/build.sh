#!/usr/bin/env bash
# Builds @NAME@.wasm: wit-bindgen go (world address-agent) -> Go 1.27
# (GOOS=wasip1, -buildmode=c-shared: a reactor) -> wasm-tools component
# embed + new with the WASI preview1 reactor adapter.
# Tools: Go 1.27 or later (Debian trixie-backports: golang-1.27-go),
# `cargo install --locked wit-bindgen-cli@0.63.0 --features go` (its crate
# source, wit-bindgen-go-0.63.0/src/pkg, is the runtime package the
# bindings need: GO_PKG), `cargo install --locked wasm-tools@1.254.2`, and
# the reactor adapter of wasmtime 48 (crate
# wasi-preview1-component-adapter-provider, artefacts/). Override with GO,
# WIT_BINDGEN, WASM_TOOLS, GO_PKG, ADAPTER.
set -euo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
WIT_BINDGEN="${WIT_BINDGEN:-wit-bindgen}"
WASM_TOOLS="${WASM_TOOLS:-wasm-tools}"
ADAPTER="${ADAPTER:-wasi_snapshot_preview1.reactor.wasm}"
GO_PKG="${GO_PKG:?set GO_PKG to the wit-bindgen-go crate source src/pkg directory}"
rm -rf build && mkdir -p build/export_wasmbeat_agent_agent
cp agent.go build/export_wasmbeat_agent_agent/
cd build
# Quiet unless it fails (it lists every file it writes on stderr).
log="$("$WIT_BINDGEN" go -w address-agent ../wit 2>&1)" || { echo "$log" >&2; exit 1; }
# Offline: the runtime package from the crate instead of the module proxy.
echo "replace go.bytecodealliance.org/pkg => $GO_PKG" >>go.mod
GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOOS=wasip1 GOARCH=wasm \
    "$GO" build -buildmode=c-shared -ldflags=-checklinkname=0 -trimpath -o core.wasm
"$WASM_TOOLS" component embed -w address-agent ../wit core.wasm -o embedded.wasm
"$WASM_TOOLS" component new embedded.wasm --adapt "wasi_snapshot_preview1=$ADAPTER" -o ../@NAME@.wasm
cd ..
echo "built $(pwd)/@NAME@.wasm ($(stat -c %s @NAME@.wasm) bytes)"

#!/usr/bin/env bash
# Builds the Go agent haproxy-go into target/examples/go-haproxy.wasm:
#   wit-bindgen go (bindings for wit/, world service-agent)
#   -> Go 1.27, GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (a reactor)
#   -> wasm-tools component embed + component new with the WASI preview1
#      reactor adapter.
# Tools (idempotent, into target/tools): Go 1.27 from Debian
# trixie-backports, wit-bindgen-cli 0.63.0 and the Go runtime package of
# its bindings (scripts/install-go-tools.sh); wasm-tools and the adapter
# (scripts/install-c-tools.sh). The Go build is offline (GOPROXY=off):
# the bindings' only dependency, go.bytecodealliance.org/pkg, is replaced
# by its copy from the wit-bindgen-go crate.
# Idempotent: does nothing when the component is newer than its inputs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TOOLS="$ROOT/target/tools"
OUT_DIR="$ROOT/target/examples"
STAGE="$OUT_DIR/go-haproxy.src"
OUT="$OUT_DIR/go-haproxy.wasm"
WORLD=service-agent
GOROOT_DIR="$TOOLS/golang-1.27/usr/lib/go-1.27"
WIT_BINDGEN="$TOOLS/wit-bindgen-0.63.0/bin/wit-bindgen"
GO_PKG="$TOOLS/go-bytecodealliance-pkg"
ADAPTER="$TOOLS/wasi_snapshot_preview1.reactor.wasm"

die() { echo "go-haproxy build: $*" >&2; exit 1; }

"$ROOT/scripts/install-c-tools.sh"
"$ROOT/scripts/install-go-tools.sh"

INPUTS=("$HERE/agent.go" "$HERE/build.sh" "$ROOT"/wit/*.wit "$WIT_BINDGEN" "$TOOLS/bin/wasm-tools" "$ADAPTER")
. "$ROOT/scripts/lib/up-to-date.sh"
exit_if_up_to_date go-haproxy "$OUT" "${INPUTS[@]}"

rm -rf "$STAGE"
mkdir -p "$STAGE/export_wasmbeat_agent_agent"
cd "$STAGE"
# Quiet unless it fails (it lists every file it writes).
if ! log="$("$WIT_BINDGEN" go -w "$WORLD" "$ROOT/wit" 2>&1)"; then
    echo "$log" >&2
    die "wit-bindgen go failed"
fi
# The generated module requires go.bytecodealliance.org/pkg from the module
# proxy, which CI cannot reach: use the copy shipped in the crate.
echo "replace go.bytecodealliance.org/pkg => $GO_PKG" >>go.mod
cp "$HERE/agent.go" export_wasmbeat_agent_agent/agent.go

export GOROOT="$GOROOT_DIR" GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOTELEMETRY=off
export GOCACHE="$OUT_DIR/go-cache" GOPATH="$OUT_DIR/go-path"
# -checklinkname=0: the bindings' runtime links to Go runtime internals.
GOOS=wasip1 GOARCH=wasm "$GOROOT_DIR/bin/go" build -buildmode=c-shared -ldflags=-checklinkname=0 \
    -trimpath -o core.wasm
"$TOOLS/bin/wasm-tools" component embed -w "$WORLD" "$ROOT/wit" core.wasm -o embedded.wasm
"$TOOLS/bin/wasm-tools" component new embedded.wasm \
    --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "go-haproxy: built $OUT ($(stat -c %s "$OUT") bytes; core module $(stat -c %s core.wasm) bytes)"

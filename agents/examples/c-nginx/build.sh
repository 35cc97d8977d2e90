#!/usr/bin/env bash
# Builds the C agent nginx-c into target/examples/c-nginx.wasm:
#   wit-bindgen c (bindings for wit/agent.wit, world resource-agent)
#   -> clang --target=wasm32-wasi (wasi-libc, reactor: a library, no main)
#   -> wasm-tools component new with the WASI preview1 reactor adapter.
# Needs Debian's clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32;
# the wit-bindgen/wasm-tools CLIs and the adapter are put into target/tools
# by scripts/install-c-tools.sh (called here; a no-op once done).
# Idempotent: does nothing when the component is newer than its inputs.
# Environment: CC (default clang-14, else clang), WASI_SYSROOT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TOOLS="$ROOT/target/tools"
OUT_DIR="$ROOT/target/examples"
BINDINGS="$OUT_DIR/c-nginx-bindings"
CORE="$OUT_DIR/c-nginx-core.wasm"
OUT="$OUT_DIR/c-nginx.wasm"
ADAPTER="$TOOLS/wasi_snapshot_preview1.reactor.wasm"
APT_PACKAGES="clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"

die() { echo "c-nginx build: $*" >&2; exit 1; }
missing() { die "$1 is missing: apt-get install $APT_PACKAGES"; }

# --- the C toolchain (Debian packages; not installed by this script) ---
CC="${CC:-}"
if [ -z "$CC" ]; then
    if command -v clang-14 >/dev/null 2>&1; then CC=clang-14
    elif command -v clang >/dev/null 2>&1; then CC=clang
    else missing "clang"; fi
fi
command -v "$CC" >/dev/null 2>&1 || missing "the C compiler $CC"
# clang runs wasm-ld for the wasm32 target: from its own directory (Debian:
# /usr/lib/llvm-14/bin) or PATH.
cc_dir="$(dirname "$(readlink -f "$(command -v "$CC")")")"
[ -x "$cc_dir/wasm-ld" ] || command -v wasm-ld >/dev/null 2>&1 ||
    missing "wasm-ld (LLVM's WebAssembly linker, package lld-14)"
# wasi-libc: /usr/share/wasi-sysroot on newer Debian and in wasi-sdk; Debian
# 12's wasi-libc installs into /usr (include/wasm32-wasi, lib/wasm32-wasi).
if [ -z "${WASI_SYSROOT:-}" ]; then
    for s in /usr/share/wasi-sysroot /usr; do
        if [ -f "$s/lib/wasm32-wasi/libc.a" ]; then WASI_SYSROOT=$s; break; fi
    done
fi
[ -n "${WASI_SYSROOT:-}" ] && [ -f "$WASI_SYSROOT/lib/wasm32-wasi/crt1-reactor.o" ] ||
    missing "the WASI sysroot (wasi-libc: lib/wasm32-wasi/libc.a, crt1-reactor.o)"
rt="$("$CC" --target=wasm32-wasi -print-libgcc-file-name)"
[ -f "$rt" ] || missing "compiler-rt builtins for wasm32 ($rt)"

# --- wit-bindgen, wasm-tools, adapter in target/tools (idempotent) ---
"$ROOT/scripts/install-c-tools.sh"

INPUTS=(
    "$HERE/agent.c" "$HERE/build.sh" "$ROOT/wit/agent.wit"
    "$TOOLS/bin/wit-bindgen" "$TOOLS/bin/wasm-tools" "$ADAPTER"
)
. "$ROOT/scripts/lib/up-to-date.sh"
exit_if_up_to_date c-nginx "$OUT" "${INPUTS[@]}"

mkdir -p "$OUT_DIR"
rm -rf "$BINDINGS"
# Quiet unless it fails (it reports every file it writes on stderr).
if ! log="$("$TOOLS/bin/wit-bindgen" c "$ROOT/wit" --world resource-agent --out-dir "$BINDINGS" 2>&1)"; then
    echo "$log" >&2
    die "wit-bindgen c failed"
fi

# -mexec-model=reactor: crt1-reactor.o, exports instead of main.
# The *_component_type.o carries the world in a custom section that
# `component new` reads; --strip-debug drops DWARF only, keeping it.
"$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
    -O2 -Wall -Wextra -Werror -I"$BINDINGS" \
    -Wl,--strip-debug \
    -o "$CORE" \
    "$HERE/agent.c" "$BINDINGS/resource_agent.c" "$BINDINGS/resource_agent_component_type.o"

"$TOOLS/bin/wasm-tools" component new "$CORE" \
    --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "c-nginx: built $OUT ($(stat -c %s "$OUT") bytes; core module $(stat -c %s "$CORE") bytes)"

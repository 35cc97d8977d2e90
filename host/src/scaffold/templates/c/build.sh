#!/usr/bin/env bash
# Builds @NAME@.wasm: wit-bindgen c -> clang (wasm32-wasi reactor,
# wasi-libc) -> wasm-tools component new with the WASI preview1 reactor
# adapter. Debian: apt-get install clang-14 lld-14 wasi-libc
# libclang-rt-14-dev-wasm32; `cargo install --locked wit-bindgen-cli@0.60.0
# wasm-tools@1.254.2`; the adapter ships in the crate
# wasi-preview1-component-adapter-provider 48.0.8 (artefacts/). Override
# the tools with WIT_BINDGEN, WASM_TOOLS, ADAPTER, CC, WASI_SYSROOT.
set -euo pipefail
cd "$(dirname "$0")"
WIT_BINDGEN="${WIT_BINDGEN:-wit-bindgen}"
WASM_TOOLS="${WASM_TOOLS:-wasm-tools}"
ADAPTER="${ADAPTER:-wasi_snapshot_preview1.reactor.wasm}"
CC="${CC:-clang-14}"
if [ -z "${WASI_SYSROOT:-}" ]; then
    # Debian 12's wasi-libc installs into /usr; newer ones into /usr/share/wasi-sysroot.
    for s in /usr/share/wasi-sysroot /usr; do
        [ -f "$s/lib/wasm32-wasi/libc.a" ] && { WASI_SYSROOT=$s; break; }
    done
fi
rm -rf bindings
# Quiet unless it fails (it lists every file it writes on stderr).
log="$("$WIT_BINDGEN" c wit --world address-agent --out-dir bindings 2>&1)" || { echo "$log" >&2; exit 1; }
"$CC" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:?no WASI sysroot found}" -mexec-model=reactor \
    -O2 -Wall -Wextra -Werror -Ibindings -Wl,--strip-debug -o core.wasm \
    agent.c bindings/address_agent.c bindings/address_agent_component_type.o
"$WASM_TOOLS" component new core.wasm --adapt "wasi_snapshot_preview1=$ADAPTER" -o @NAME@.wasm
echo "built $(pwd)/@NAME@.wasm ($(stat -c %s @NAME@.wasm) bytes)"

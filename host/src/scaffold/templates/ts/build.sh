#!/usr/bin/env bash
# Builds @NAME@.wasm: npm ci (pinned componentize-js, jco, typescript)
# -> jco guest-types (TypeScript declarations of wit/) -> tsc -> componentize-js.
# Needs node 20 or later and npm. TS_TOOLCHAIN names a directory whose
# node_modules already holds these pins (no npm ci here then).
set -euo pipefail
cd "$(dirname "$0")"
if [ -n "${TS_TOOLCHAIN:-}" ]; then
    BIN="$TS_TOOLCHAIN/node_modules/.bin"
else
    [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
    BIN=node_modules/.bin
fi
rm -rf types out
"$BIN/jco" guest-types wit -n address-agent -o types >/dev/null
"$BIN/tsc" -p tsconfig.json
# -d http fetch-event: without it the engine imports wasi:http, which the
# wasmbeat host does not provide.
"$BIN/componentize-js" out/agent.js --wit wit -n address-agent -d http fetch-event -o @NAME@.wasm
echo "built $(pwd)/@NAME@.wasm ($(stat -c %s @NAME@.wasm) bytes)"

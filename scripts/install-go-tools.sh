#!/usr/bin/env bash
# Installs, into target/tools at the repository root, what turns a Go agent
# into a wasmbeat component (agents/examples/go-haproxy/build.sh uses it):
#   - Go 1.27 from Debian trixie-backports (golang-1.27-go, golang-1.27-src;
#     bookworm's Go is 1.19, too old for GOOS=wasip1 -buildmode=c-shared).
#     The two packages are downloaded with a private apt configuration
#     (its own sources list and index under target/tools/apt-trixie; the
#     system's sources, pins and packages are not touched) and unpacked
#     into target/tools/golang-1.27. apt checks them against trixie's
#     signed index; the Go in them is statically linked and runs on
#     bookworm. Root is not needed.
#   - wit-bindgen-cli 0.63.0 with its Go generator (`wit-bindgen go`),
#     into target/tools/wit-bindgen-0.63 (the C example keeps 0.60).
#   - the Go runtime package of those bindings, go.bytecodealliance.org/pkg,
#     copied from the wit-bindgen-go crate's source (the Go module proxy is
#     not reachable from CI; builds run with GOPROXY=off).
# wasm-tools and the WASI reactor adapter come from install-c-tools.sh.
# Idempotent: each piece is skipped when present (no network then).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"
GO_MINOR=1.27
GOROOT_DIR="$TOOLS/golang-$GO_MINOR/usr/lib/go-$GO_MINOR"
WIT_BINDGEN_VERSION=0.63.0
WB_ROOT="$TOOLS/wit-bindgen-$WIT_BINDGEN_VERSION"
GO_PKG="$TOOLS/go-bytecodealliance-pkg"

die() { echo "install-go-tools: $*" >&2; exit 1; }

# --- Go from trixie-backports, unpacked (not installed) ---
if ! "$GOROOT_DIR/bin/go" version 2>/dev/null | grep -q "go$GO_MINOR"; then
    command -v apt-get >/dev/null || die "apt-get is needed to fetch golang-$GO_MINOR from Debian"
    apt_dir="$TOOLS/apt-trixie"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-trixie-automatic.gpg] http://deb.debian.org/debian trixie-backports main" \
        >"$apt_dir/sources.list"
    [ -f /usr/share/keyrings/debian-archive-trixie-automatic.gpg ] ||
        die "trixie's archive key is missing: apt-get install debian-archive-keyring (bookworm's 2023.3+deb12u1 or later has it)"
    apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
        -o APT::Architectures::=amd64
    )
    # apt drops to user _apt for downloads, which cannot write into
    # target/tools; as root, stay root (nothing is installed).
    [ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
    echo "install-go-tools: fetching golang-$GO_MINOR-go and -src from trixie-backports"
    apt-get -qq "${apt_opts[@]}" update || die "apt-get update of trixie-backports failed"
    rm -f "$apt_dir/debs"/*.deb
    (cd "$apt_dir/debs" && apt-get -qq "${apt_opts[@]}" download "golang-$GO_MINOR-go" "golang-$GO_MINOR-src") ||
        die "downloading golang-$GO_MINOR failed"
    rm -rf "$TOOLS/golang-$GO_MINOR"
    for deb in "$apt_dir/debs"/*.deb; do
        dpkg-deb -x "$deb" "$TOOLS/golang-$GO_MINOR"
    done
    "$GOROOT_DIR/bin/go" version | grep -q "go$GO_MINOR" || die "the unpacked Go does not run"
    echo "install-go-tools: $("$GOROOT_DIR/bin/go" version) in $GOROOT_DIR"
fi

# --- wit-bindgen-cli with the Go generator ---
if ! "$WB_ROOT/bin/wit-bindgen" --version 2>/dev/null | grep -qw "$WIT_BINDGEN_VERSION"; then
    command -v cargo >/dev/null || die "cargo is needed to build wit-bindgen-cli"
    echo "install-go-tools: building wit-bindgen-cli $WIT_BINDGEN_VERSION (go) into $WB_ROOT (one-time, minutes)"
    t0=$SECONDS
    cargo install --locked --root "$WB_ROOT" "wit-bindgen-cli@$WIT_BINDGEN_VERSION" \
        --no-default-features --features go
    echo "install-go-tools: wit-bindgen-cli built in $((SECONDS - t0)) s"
fi

# --- go.bytecodealliance.org/pkg from the crate source cargo fetched ---
if [ ! -f "$GO_PKG/go.mod" ]; then
    cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    src="$(ls -d "$cargo_home"/registry/src/*/"wit-bindgen-go-$WIT_BINDGEN_VERSION"/src/pkg 2>/dev/null | head -1)"
    [ -n "$src" ] && [ -f "$src/go.mod" ] ||
        die "wit-bindgen-go-$WIT_BINDGEN_VERSION/src/pkg not found under $cargo_home/registry/src (cargo fetches it with wit-bindgen-cli)"
    rm -rf "$GO_PKG"
    cp -r "$src" "$GO_PKG"
    echo "install-go-tools: $(head -1 "$GO_PKG/go.mod") from $src"
fi

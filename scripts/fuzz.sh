#!/usr/bin/env bash
# Builds the fuzz targets of host/fuzz with libFuzzer on the stable
# toolchain and runs each over its committed corpus. The test command runs
# it with its defaults (a short run); the long runs use --runs.
#
#   scripts/fuzz.sh                     every target, 15 s each
#   scripts/fuzz.sh --time 60 hacf      one target, 60 s
#   scripts/fuzz.sh --runs 10000000 control
#   scripts/fuzz.sh --runs 10000000 --time 900 hacf   whichever comes first
#   scripts/fuzz.sh --build             build only
#
# No cargo-fuzz and no nightly: cargo-fuzz's own flags are plain codegen
# options (SanitizerCoverage pass, `--cfg fuzzing`), which stable rustc
# takes; only its sanitizers (ASan etc.) need nightly, and safe Rust needs
# none. New inputs go to target/fuzz/work, never into the committed
# corpus; a crash leaves its input in target/fuzz/artifacts and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ALL=(decode endpoint hacf haresources authkeys agents_toml control)
time_s=15
time_set=false
runs=""
build_only=false
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s=$2; time_set=true; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build_only=true; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

# Inside the ignored target/ of the main workspace, so a clean clone works
# and the fuzz build never touches the test build's artifacts.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$root/target/fuzz}"
export CARGO_INCREMENTAL=0
host=$(rustc -vV | sed -n 's/^host: //p')
# An explicit --target keeps these flags off build scripts and proc macros
# (a proc macro with coverage hooks would not load into rustc).
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
started=$(date +%s)
cargo build --locked --release --bins --target "$host" --manifest-path host/fuzz/Cargo.toml
echo "fuzz: build took $(($(date +%s) - started)) s"
$build_only && exit 0

bin="$CARGO_TARGET_DIR/$host/release"
work="$CARGO_TARGET_DIR/work"
artifacts="$CARGO_TARGET_DIR/artifacts"
failed=()
for t in "${targets[@]}"; do
  corpus="host/fuzz/corpus/$t"
  [ -d "$corpus" ] || { echo "fuzz: no corpus $corpus" >&2; exit 2; }
  mkdir -p "$work/$t" "$artifacts/$t"
  limit=()
  [ -z "$runs" ] || limit+=(-runs="$runs")
  if [ -z "$runs" ] || $time_set; then limit+=(-max_total_time="$time_s"); fi
  echo "fuzz: $t (${limit[*]})"
  t0=$(date +%s)
  # A slow input or a memory blow-up is a finding too. Inputs stay at
  # libFuzzer's default of at most 4 KiB (more than any corpus file):
  # longer ones only make each run slower, not the parsers' paths deeper.
  if ! "$bin/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t/" \
      "$work/$t" "$corpus" 2>"$work/$t.log"; then
    tail -n 40 "$work/$t.log" >&2
    failed+=("$t")
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|Done [0-9]+ runs)' "$work/$t.log" || true
  echo "fuzz: $t took $(($(date +%s) - t0)) s; log $work/$t.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $artifacts)" >&2
  exit 1
fi

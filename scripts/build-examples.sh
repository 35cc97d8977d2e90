#!/usr/bin/env bash
# Builds the example agents in other languages into target/examples/ (the
# tests run them through `wasmbeat agent test` and the daemon):
#   python-tcpservice.wasm  componentize-py (pinned, in a venv from PyPI)
#   c-nginx.wasm            clang + wasi-libc, wit-bindgen c, wasm-tools
#   ts-redis.wasm           tsc + componentize-js (npm packages pinned by its
#                           package-lock.json, in target/examples/ts-toolchain)
#   go-haproxy.wasm         Go 1.27 (wasip1) + wit-bindgen go + wasm-tools
#                           (scripts/install-go-tools.sh, first run: minutes)
# and runs the Python agent's own unit tests. Each step is a no-op when its
# output is up to date; the first run builds the C tools (a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
agents/examples/python-tcpservice/build.sh
python3 -m unittest discover -q -s agents/examples/python-tcpservice -p 'test_*.py'
agents/examples/c-nginx/build.sh
agents/examples/ts-redis/build.sh
agents/examples/go-haproxy/build.sh

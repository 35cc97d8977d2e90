#!/usr/bin/env bash
# Build the Python tcpservice agent into a WebAssembly component:
#   target/examples/python-tcpservice.wasm   (at the repository root)
#
# componentize-py (PyPI) bundles CPython and the agent's modules into a
# component of the world `resource-agent` in wit/agent.wit. It is installed,
# at a pinned version, into a venv under target/examples/. Re-running is
# cheap: the venv is reused and the component is rebuilt only when an input
# (the agent's .py files, wit/agent.wit, this script) is newer than it.
#
# Needs: python3 with the venv module (Debian: apt-get install python3-venv)
# and PyPI reachable on the first run.
set -euo pipefail

# 0.25.1: checked to produce a component (WASI 0.2 imports only) that
# wasmbeat's wasmtime 48 host instantiates within its 64 MiB memory limit.
COMPONENTIZE_PY_VERSION=0.25.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
out_dir="$root/target/examples"
venv="$out_dir/venv-componentize-py"
out="$out_dir/python-tcpservice.wasm"
tool="$venv/bin/componentize-py"

die() { echo "build.sh: error: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 not found (Debian: apt-get install python3 python3-venv)"
mkdir -p "$out_dir"

if [[ ! -x "$tool" ]] || [[ "$("$tool" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -c 'import venv, ensurepip' 2>/dev/null \
            || die "python3 has no working venv module (Debian: apt-get install python3-venv)"
        echo "build.sh: creating venv $venv"
        python3 -m venv "$venv" || { rm -rf "$venv"; die "python3 -m venv failed (Debian: apt-get install python3-venv)"; }
    fi
    echo "build.sh: installing componentize-py==$COMPONENTIZE_PY_VERSION"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" \
        || die "pip could not install componentize-py==$COMPONENTIZE_PY_VERSION (is PyPI reachable?)"
fi

# The agent's own modules: exactly these are bundled (componentize-py takes
# every file in the directories of its python path, so the lab and test
# files beside them are kept out by building from a staging copy).
modules=(app.py conf.py)
inputs=("${modules[@]/#/$here/}" "$root/wit/agent.wit" "${BASH_SOURCE[0]}")
stale=1
if [[ -f "$out" ]]; then
    stale=0
    for f in "${inputs[@]}"; do
        [[ "$f" -nt "$out" ]] && { stale=1; break; }
    done
fi

if (( stale )); then
    echo "build.sh: componentize-py $COMPONENTIZE_PY_VERSION -> $out"
    tmp="$out.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    stage="$out_dir/python-tcpservice.src"
    rm -rf "$stage" && mkdir -p "$stage"
    cp "${inputs[@]:0:${#modules[@]}}" "$stage/"
    (cd "$stage" && "$tool" -d "$root/wit" -w resource-agent componentize app -p "$stage" -o "$tmp")
    mv -f "$tmp" "$out"
    trap - EXIT
else
    echo "build.sh: $out is up to date"
fi
echo "build.sh: component size $(stat -c %s "$out") bytes"

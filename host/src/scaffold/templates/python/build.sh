#!/usr/bin/env bash
# Builds @NAME@.wasm with componentize-py (pinned; installed into ./venv
# from PyPI on the first run; Debian: apt-get install python3-venv).
# COMPONENTIZE_PY names an installed componentize-py instead.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=0.25.1
tool="${COMPONENTIZE_PY:-$(pwd)/venv/bin/componentize-py}"
if [ "$("$tool" --version 2>/dev/null)" != "componentize-py $VERSION" ]; then
    python3 -m venv venv
    venv/bin/pip install --quiet --disable-pip-version-check "componentize-py==$VERSION"
    tool="$(pwd)/venv/bin/componentize-py"
fi
# Only app.py is bundled: componentize-py packs every file of the
# directories on its Python path, so it runs from a directory of its own.
rm -rf build && mkdir build && cp app.py build/
(cd build && "$tool" -d ../wit -w address-agent componentize app -p . -o ../@NAME@.wasm)
echo "built $(pwd)/@NAME@.wasm ($(stat -c %s @NAME@.wasm) bytes)"

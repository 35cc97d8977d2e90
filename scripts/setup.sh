#!/usr/bin/env bash
# Installs what wasmbeat's build, tests, demo and benchmarks need on a fresh Debian
# machine: the wasm32-wasip2 Rust target, the Debian packages the lab
# uses, and the toolchains of the example agents (Python: python3-venv for
# componentize-py; C: clang, lld, wasi-libc and wasm32 compiler-rt), and a
# C++ compiler for libFuzzer (scripts/fuzz.sh), node and npm for the
# TypeScript example (componentize-js; its npm packages are pinned by
# agents/examples/ts-redis/package-lock.json), and the services the
# TypeScript and Go examples run (redis-server, haproxy), crmsh (the
# migration's output is loaded into it), pacemaker and corosync (the
# three-node Pacemaker lab, host/tests/pacemaker_lab.rs). Idempotent;
# skips what is already there. The example agents' own compilers are
# fetched by their build scripts into target/ and kept there (a no-op on
# the next run): wit-bindgen, wasm-tools and the WASI adapter
# (scripts/install-c-tools.sh), Go 1.27 from trixie-backports and
# wit-bindgen's Go generator (scripts/install-go-tools.sh; a private apt
# configuration, the system's sources and pins are not changed), the npm
# packages of agents/examples/ts-redis/package-lock.json.
set -euo pipefail

want_pkgs=(iproute2 iputils-ping procps tcpdump util-linux heartbeat resource-agents net-tools curl bind9 bind9-dnsutils apache2 nginx-light mariadb-server mariadb-client keepalived ethtool
  lintian man-db systemd prometheus libfaketime
  python3 python3-venv clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
  redis-server haproxy
  crmsh pacemaker corosync
  g++)
missing=()
for p in "${want_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Any node with npm will do (a machine may carry NodeSource's nodejs,
# which bundles npm and conflicts with Debian's npm package); Debian 12's
# node 18 only bootstraps: agents/examples/ts-redis/build.sh fetches a
# pinned node 20 from the npm registry when it finds an older one.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages ${missing[*]}; run as root to install them" >&2
  else
    # Packages' own services must never start outside the lab namespaces.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

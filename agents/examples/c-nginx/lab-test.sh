#!/usr/bin/env bash
# Lab test of the C agent nginx-c against a real nginx (Debian nginx-light),
# inside a network namespace of its own:
#   meta-data, validate, monitor (7), start (0), monitor (0), start again (0),
#   stop (0), monitor (7), stop again (0), plus a broken configuration
#   (start -> 6, not-configured) and a missing one (validate -> 5).
# Usage: lab-test.sh [WASMBEAT] [AGENT.wasm]   (root; needs ip, nginx)
# Defaults: wasmbeat from PATH or target/release, target/examples/c-nginx.wasm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
WB="${1:-$(command -v wasmbeat || echo "$ROOT/target/release/wasmbeat")}"
AGENT="${2:-$ROOT/target/examples/c-nginx.wasm}"
NS="wbh-c-1"
IP=10.77.92.1
PORT=18081
NGINX=/usr/sbin/nginx

[ -x "$WB" ] || { echo "lab-test: wasmbeat binary $WB not found" >&2; exit 2; }
[ -f "$AGENT" ] || { echo "lab-test: $AGENT not built (run agents/examples/c-nginx/build.sh)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "lab-test: $NGINX missing: apt-get install nginx-light" >&2; exit 2; }

T="$(mktemp -d /tmp/c-nginx-lab.XXXXXX)"
chmod 755 "$T" # nginx workers run as nobody and serve $T/www
cleanup() {
    # Any nginx left by a failed step: by its recorded pid, then the netns.
    if [ -s "$T/nginx.pid" ]; then kill -KILL "$(cat "$T/nginx.pid")" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
# A veth pair inside the namespace carries the address (some kernels, e.g.
# sandboxes, have no dummy link type; veth works everywhere).
ip -n "$NS" link add wbc0 type veth peer name wbc1
ip -n "$NS" addr add "$IP/24" dev wbc0
ip -n "$NS" link set wbc0 up
ip -n "$NS" link set wbc1 up

mkdir -p "$T/conf/resource.d" "$T/cache" "$T/www"
# Installed the heartbeat way, as resource.d/NAME.wasm: haresources then
# says nginx-c::..., and the grant section is [agent.nginx-c] (the host keys
# grants of a .wasm agent by its file name, not by its meta-data name).
cp "$AGENT" "$T/conf/resource.d/nginx-c.wasm"
echo "nginx-c lab" >"$T/www/index.html"
# Temp paths set explicitly so nginx touches nothing under /var/lib/nginx;
# no error_log: Debian's nginx logs to stderr, which the host keeps.
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/body;
    proxy_temp_path $T/proxy;
    fastcgi_temp_path $T/fastcgi;
    uwsgi_temp_path $T/uwsgi;
    scgi_temp_path $T/scgi;
    server {
        listen $IP:$PORT;
        root $T/www;
    }
}
EOF
cat >"$T/conf/agents.toml" <<EOF
[agent.nginx-c]
programs = ["$NGINX", "$T/fake-nginx"]
pidfiles = ["$T/nginx.pid"]
probe = ["$IP:$PORT"]
paths = ["$T/nginx.conf", "$T/missing.conf", "$NGINX"]
EOF

TOKEN="nginx-c::$T/nginx.conf::$T/nginx.pid::$IP:$PORT::/"
pass=0
fail=0
# run EXPECTED_RC OP [TOKEN]
run() {
    local want=$1 op=$2 tok=${3:-$TOKEN} rc=0
    ip netns exec "$NS" "$WB" agent "$tok" "$op" --config-dir "$T/conf" --cache-dir "$T/cache" \
        >"$T/out" 2>&1 || rc=$?
    if [ "$rc" = "$want" ]; then
        pass=$((pass + 1))
        echo "ok   $op -> $rc"
    else
        fail=$((fail + 1))
        echo "FAIL $op -> $rc (expected $want)"
        sed 's/^/     /' "$T/out"
    fi
}
# Fails the run unless the nginx in the namespace answers (or not).
http_check() {
    local want=$1 got=0
    ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/$IP/$PORT && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -1 <&3" \
        >"$T/http" 2>/dev/null && grep -q ' 200 ' "$T/http" && got=1
    if [ "$got" = "$want" ]; then pass=$((pass + 1)); echo "ok   http answers=$got"
    else fail=$((fail + 1)); echo "FAIL http answers=$got (expected $want): $(cat "$T/http")"; fi
}

run 0 meta-data
grep -q 'nginx-c' "$T/out" || { fail=$((fail + 1)); echo "FAIL meta-data lacks the agent name"; }
run 0 validate
run 7 monitor
t0=$(date +%s%N)
run 0 start
echo "     start took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
http_check 1
run 0 monitor
pid1=$(cat "$T/nginx.pid")
run 0 start
[ "$(cat "$T/nginx.pid")" = "$pid1" ] && { pass=$((pass + 1)); echo "ok   second start kept pid $pid1"; } ||
    { fail=$((fail + 1)); echo "FAIL second start replaced nginx"; }
run 0 stop
http_check 0
run 7 monitor
run 0 stop

# Alive but not answering (master and worker frozen): monitor says failed
# (OCF 1); stop escalates from SIGQUIT to SIGKILL of the process group.
run 0 start
master=$(cat "$T/nginx.pid")
workers=$(pgrep -P "$master" | tr '\n' ' ')
kill -STOP "$master" $workers
run 1 monitor
t0=$(date +%s)
run 0 stop
echo "     stop of a frozen nginx took $(( $(date +%s) - t0 )) s (SIGQUIT grace 10 s, then SIGKILL)"
for p in $master $workers; do
    if [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status"; then
        fail=$((fail + 1)); echo "FAIL pid $p survived stop"
    fi
done
run 7 monitor

# nginx -t passes but the server dies at once: the start error carries its
# stderr (process.spawned-exit). A stand-in binary plays that nginx.
printf '#!/bin/sh\ncase "$1" in -t) exit 0;; esac\necho "nginx: [emerg] stand-in server failure" >&2\nexit 1\n' \
    >"$T/fake-nginx"
chmod 755 "$T/fake-nginx"
run 1 start "$TOKEN::$T/fake-nginx"
grep -q 'stand-in server failure' "$T/out" || { fail=$((fail + 1)); echo "FAIL start error lacks the server's stderr"; }

# A configuration nginx -t rejects: not-configured (OCF 6), nothing left running.
cp "$T/nginx.conf" "$T/good.conf"
sed -i 's/worker_processes 1;/worker_processes 1; no_such_directive on;/' "$T/nginx.conf"
run 6 start
grep -q 'no_such_directive' "$T/out" || { fail=$((fail + 1)); echo "FAIL start error does not quote nginx -t"; }
run 7 monitor
cp "$T/good.conf" "$T/nginx.conf"
# A configuration file that does not exist: not-installed (OCF 5).
run 5 validate "nginx-c::$T/missing.conf::$T/nginx.pid::$IP:$PORT::/"
# Malformed arguments: invalid-args (OCF 2).
run 2 validate "nginx-c::relative.conf::$T/nginx.pid::$IP:$PORT::/"
run 2 validate "nginx-c::$T/nginx.conf::$T/nginx.pid::$IP::/"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# End-to-end check of the Python tcpservice agent through `wasmbeat agent`,
# inside a network namespace of its own (root needed):
#   agents/examples/python-tcpservice/lab.sh
# Env: WASMBEAT (the wasmbeat binary; default: target/{release,debug}/wasmbeat
# of this repo), KEEP=1 keeps the temp dir, VERBOSE=1 prints every output.
# Builds the component first.
# The server is lab_server.py run by Debian's python3.11; only addresses in
# 10.77.91.0/24 inside the namespace are used.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
[[ $(id -u) == 0 ]] || { echo "lab.sh: needs root (network namespace)" >&2; exit 1; }
wb_bin=${WASMBEAT:-}
if [[ -z "$wb_bin" ]]; then
    for c in "$root/target/release/wasmbeat" "$root/target/debug/wasmbeat"; do
        [[ -x "$c" ]] && { wb_bin=$c; break; }
    done
fi
[[ -x "$wb_bin" ]] || { echo "lab.sh: no wasmbeat binary: set WASMBEAT=/path/to/wasmbeat" >&2; exit 1; }
# The command runs Debian's python3.11 (a granted command names its program
# exactly; the host resolves symlinks when it recognises the server).
py=/usr/bin/python3.11
[[ -x "$py" ]] || { echo "lab.sh: $py missing (Debian: apt-get install python3.11)" >&2; exit 1; }

"$here/build.sh" || exit 1
wasm="$root/target/examples/python-tcpservice.wasm"

ns=wbh-py-1
D=$(mktemp -d /tmp/wbh-py.XXXXXX)
cleanup() {
    # Only processes in our own namespace: the servers this test started.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    if [[ "${KEEP:-0}" == 1 ]]; then echo "lab.sh: kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT INT TERM
ip netns del "$ns" 2>/dev/null
ip netns add "$ns" || exit 1
ip -n "$ns" link set lo up
# A veth pair kept inside the namespace carries the service address (the
# dummy driver is not available everywhere).
ip -n "$ns" link add wbpy0 type veth peer name wbpy1 || exit 1
ip -n "$ns" addr add 10.77.91.1/24 dev wbpy0
ip -n "$ns" link set wbpy0 up
ip -n "$ns" link set wbpy1 up

mkdir -p "$D/cfg" "$D/cache" "$D/run"
cp "$here/lab_server.py" "$D/lab_server.py"
pidf="$D/run/tcpservice.pid"
# [agent.NAME]: NAME is the .wasm file's stem for agents given by path.
# Each server variant is a command line the administrator grants; the
# agent's `command` parameter picks one by name. accept_declared grants
# what the agent declares for the resource (its probe target, pid file).
srv="$D/lab_server.py"
cat > "$D/cfg/agents.toml" <<EOF
[agent.python-tcpservice]
accept_declared = true
commands.server = ["$py", "$srv", "10.77.91.1", "18080", "$pidf"]
commands.crash = ["$py", "$srv", "10.77.91.1", "18080", "$pidf", "fail"]
commands.elsewhere = ["$py", "$srv", "10.77.91.1", "18081", "$pidf"]
commands.other-pid = ["$py", "$srv", "10.77.91.1", "18080", "$D/run/other.pid"]
commands.ignore-term = ["$py", "$srv", "10.77.91.1", "18080", "$pidf", "ignore-term"]
commands.close-after = ["$py", "$srv", "10.77.91.1", "18080", "$pidf", "close-after"]
commands.http = ["$py", "-m", "http.server", "18080", "--bind", "10.77.91.1"]
commands.missing = ["/usr/bin/wbh-py-no-such-server"]
EOF

pass=0 failn=0
out=""
run() { # run TOKEN OP: sets rc, out
    out=$(ip netns exec "$ns" "$wb_bin" agent "$1" "$2" --config-dir "$D/cfg" --cache-dir "$D/cache" 2>&1)
    rc=$?
}
check() { # check NAME WANT_RC TOKEN OP [REGEX]
    local name=$1 want=$2 tok=$3 op=$4 re=${5:-}
    run "$tok" "$op"
    if [[ $rc == "$want" ]] && { [[ -z "$re" ]] || grep -Eq -- "$re" <<<"$out"; }; then
        pass=$((pass + 1)); echo "ok   $name (rc $rc)"
        if [[ "${VERBOSE:-0}" == 1 ]]; then grep -v "^ *<" <<<"$out" | sed "s/^/     | /"; fi
    else
        failn=$((failn + 1)); echo "FAIL $name: rc $rc, want $want${re:+ and /$re/}"; sed 's/^/     | /' <<<"$out" | tail -8
    fi
}
verdict() { # verdict NAME CMD...: pass when CMD succeeds
    local name=$1; shift
    if "$@"; then pass=$((pass + 1)); echo "ok   $name"; else failn=$((failn + 1)); echo "FAIL $name"; fi
}
secs() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(secs)" 'BEGIN { printf "%.3f", b - a }'; }

T="$wasm::10.77.91.1:18080::$pidf"
echo "component: $wasm ($(stat -c %s "$wasm") bytes)"
echo "token: $T"

t=$(secs); check "meta-data (cold cache: compiles)" 0 "$T" meta-data 'name="start_timeout"'
echo "     cold meta-data (compile + run): $(elapsed "$t") s"
run "$T" meta-data
order=$(grep -o 'parameter name="[a-z_]*"' <<<"$out" | sed 's/.*="\(.*\)"/\1/' | tr '\n' ' ')
verdict "meta-data declares the parameters in positional order" \
    test "$order" = "target pidfile start_timeout stop_timeout command "
check "validate" 0 "$T" validate
check "monitor before start: not running" 7 "$T" monitor
t=$(secs); check "start" 0 "$T" start 'started as pid'
echo "     start latency (warm cache): $(elapsed "$t") s"
check "monitor: running" 0 "$T" monitor
verdict "the pidfile names the live server" kill -0 "$(cat "$pidf")"
check "start again: idempotent" 0 "$T" start 'already running'
check "stop" 0 "$T" stop 'stopped in'
check "monitor after stop: not running" 7 "$T" monitor
check "stop again: idempotent" 0 "$T" stop 'not running'
verdict "port closed after stop" ip netns exec "$ns" "$py" -c \
    'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("10.77.91.1",18080))==0)'
t=$(secs); check "start (second, timed)" 0 "$T" start 'started as pid'
echo "     start latency (warm cache, second run): $(elapsed "$t") s"
check "stop (second)" 0 "$T" stop

# A server that dies at once: start fails with its exit status and stderr.
check "start of a crashing program: failed with its stderr" 1 \
    "$T::command=crash" start 'exit code 3.*cannot open /etc/lab_server.conf'
check "monitor after the crash: not running" 7 "$T" monitor

# A server that never opens target: start gives up after start_timeout and
# kills it (nothing of it may remain in the namespace).
check "start of a server listening elsewhere: failed after start_timeout" 1 \
    "$T::start_timeout=1::command=elsewhere" \
    start 'did not accept connections .* within 1 s.*killed it again'
verdict "no process left after the failed start" test -z "$(ip netns pids "$ns")"

# A server writing its pid elsewhere: later operations could not find it.
check "pidfile the program does not write: not configured" 6 \
    "$T::start_timeout=2::command=other-pid" \
    start 'does not name it'
verdict "no process left after it" test -z "$(ip netns pids "$ns")"
check "ungranted pidfile: denied" 4 "$T.x" monitor 'pidfiles'

# A server ignoring SIGTERM: stop escalates to SIGKILL after stop_timeout.
TI="$T::stop_timeout=1::command=ignore-term"
check "start (ignores SIGTERM)" 0 "$TI" start
check "stop escalates to SIGKILL" 0 "$TI" stop 'sending SIGKILL'
check "monitor after SIGKILL: not running" 7 "$TI" monitor

# Alive but deaf: the listener closes, the process stays.
TC="$T::command=close-after"
check "start (closes its port after 1 s)" 0 "$TC" start
sleep 2
check "monitor: failed (process alive, port closed)" 1 "$TC" monitor
check "stop of the deaf server" 0 "$TC" stop 'stopped in'

# Someone else's server on the port (its pid file is not ours).
ip netns exec "$ns" "$py" "$D/lab_server.py" 10.77.91.1 18080 "$D/foreign.pid" &
foreign=$!
for _ in $(seq 50); do [[ -s "$D/foreign.pid" ]] && break; sleep 0.1; done
check "start refuses a foreign listener" 1 "$T" start 'another server'
check "monitor with a foreign listener: not running" 7 "$T" monitor
check "stop with a foreign listener: failed, leaves it alone" 1 "$T" stop "has no process to signal"
verdict "the foreign listener still runs" kill -0 "$foreign"
kill "$foreign" 2>/dev/null; wait "$foreign" 2>/dev/null

# Service address not on this node (the IPaddr resource is not up here).
check "start on a target address not on this node: not configured" 6 \
    "$wasm::10.77.91.2:18080::$pidf" start 'not configured on this node'
check "monitor on it: not running" 7 "$wasm::10.77.91.2:18080::$pidf" monitor

# Without a pidfile: start/monitor work from the port; stop cannot find
# the process and says how to fix it.
TN="$wasm::10.77.91.1:18080::command=http"
check "no pidfile: start" 0 "$TN" start 'started as pid'
check "no pidfile: monitor running" 0 "$TN" monitor
check "no pidfile: start again" 0 "$TN" start 'already answers'
check "no pidfile: stop explains the missing pidfile" 1 "$TN" stop 'set pidfile='
for p in $(ip netns pids "$ns"); do kill "$p"; done
sleep 0.5
check "no pidfile: stop once the server is gone" 0 "$TN" stop

# Argument errors (OCF 2) and a missing program (OCF 5).
check "target without port" 2 "$wasm::10.77.91.1" validate 'not a valid endpoint'
check "start_timeout out of range" 2 "$T::start_timeout=99" validate 'between 1 and 15'
check "start_timeout not a number" 2 "$T::start_timeout=ten" validate 'not a valid integer'
check "wildcard target" 2 "$wasm::0.0.0.0:18080" validate 'not an address a client'
check "missing program at start: not installed" 5 "$T::command=missing" start
check "ungranted command: denied" 4 "$T::command=socat" start 'commands.socat'

echo "$pass passed, $failn failed"
[[ $failn == 0 ]]

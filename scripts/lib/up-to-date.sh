# Sourced by the example agents' build scripts: a build step is skipped
# when its output is newer than every input (make's rule, without make).

# exit_if_up_to_date LABEL OUT INPUT...: exits the calling script with 0,
# saying so, when OUT exists and no INPUT is newer; returns otherwise.
exit_if_up_to_date() {
    local label="$1" out="$2" f
    shift 2
    [ -f "$out" ] || return 0
    for f in "$@"; do
        [ "$f" -nt "$out" ] && return 0
    done
    echo "$label: $out is up to date ($(stat -c %s "$out") bytes)"
    exit 0
}

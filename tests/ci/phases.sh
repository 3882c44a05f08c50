# Timed phases for `make test` and .ci/run. Sourced, never run.
# shellcheck shell=bash
#
# Every phase prints one line "phase <name>: <seconds>s" when it ends and appends
# "<name>\t<seconds>\t<ok|FAILED>" to $SP_PHASES_FILE, so .ci/run can print one table of
# everything (its own installs and make test's phases) and closing notes can quote it.

: "${SP_PHASES_FILE:=${TMPDIR:-/tmp}/securepipe-phases.$$}"
export SP_PHASES_FILE

sp_phase_record() { # NAME SECONDS STATUS
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$SP_PHASES_FILE"
    printf '\033[1mphase %s: %ss%s\033[0m\n' "$1" "$2" "$([ "$3" = ok ] || echo " ($3)")"
}

# sp_phase NAME COMMAND...: runs COMMAND in the foreground, timed.
sp_phase() {
    local name="$1" started=$SECONDS status=0
    shift
    printf '\033[1m==> phase %s\033[0m\n' "$name"
    "$@" || status=$?
    sp_phase_record "$name" "$((SECONDS - started))" "$([ "$status" -eq 0 ] && echo ok || echo FAILED)"
    return "$status"
}

# sp_phase_bg NAME LOG COMMAND...: starts COMMAND in the background, timed, its output in
# LOG; sp_phase_wait NAME collects it. For slow installs that need no Rust build (Go
# builds, venvs) so they overlap with it.
declare -A SP_PHASE_PIDS SP_PHASE_LOGS
sp_phase_bg() {
    local name="$1" log="$2"
    shift 2
    mkdir -p "$(dirname "$log")"
    (
        started=$SECONDS status=0
        "$@" >"$log" 2>&1 </dev/null || status=$?
        sp_phase_record "$name" "$((SECONDS - started))" "$([ "$status" -eq 0 ] && echo ok || echo FAILED)" >/dev/null
        exit "$status"
    ) &
    SP_PHASE_PIDS[$name]=$!
    SP_PHASE_LOGS[$name]=$log
    printf '\033[1m==> phase %s (background, log %s)\033[0m\n' "$name" "$log"
}

sp_phase_wait() { # NAME
    local name="$1" status=0
    wait "${SP_PHASE_PIDS[$name]}" || status=$?
    if [ "$status" -ne 0 ]; then
        printf 'phase %s FAILED (exit %s); last lines of %s:\n' "$name" "$status" "${SP_PHASE_LOGS[$name]}" >&2
        tail -n 60 "${SP_PHASE_LOGS[$name]}" >&2
        return "$status"
    fi
    printf '\033[1mphase %s: %ss (background)\033[0m\n' "$name" \
        "$(awk -F'\t' -v n="$name" '$1 == n {s = $2} END {print s}' "$SP_PHASES_FILE")"
}

# Prints every recorded phase and the wall time since START_SECONDS.
sp_phase_summary() { # START_SECONDS
    local total=$((SECONDS - $1))
    echo "---- phases (wall seconds; background phases overlap the others) ----"
    awk -F'\t' '{printf "%-28s %6ss  %s\n", $1, $2, $3}' "$SP_PHASES_FILE"
    printf '%-28s %6ss\n' total "$total"
}

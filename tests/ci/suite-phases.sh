#!/usr/bin/env bash
# Filter for `cargo test` output: passes every line through and records one phase (see
# phases.sh) per test binary that ran at least one test, with libtest's own "finished in"
# time: `suite stack/retention.rs`, or `suite <crate> unit` for stack tests inside a crate.
set -uo pipefail
# shellcheck source=phases.sh
. "$(dirname "${BASH_SOURCE[0]}")/phases.sh"

# cargo's own line before each test binary; the tests' output (kubectl's "Running" Pods,
# say) must not match it.
cargo_running='^ +Running (unittests )?[^ ]+ \(.*\)$'
suite=""
while IFS= read -r line; do
    printf '%s\n' "$line"
    if [[ "$line" =~ $cargo_running ]]; then
        if [ -n "${BASH_REMATCH[1]}" ]; then
            # "Running unittests src/lib.rs (…/deps/securepipe_cli-0123abcd)": by crate.
            binary="${line##*/}"
            binary="${binary%)}"
            suite="${binary%-*} unit"
        else
            suite="${line#*Running }"
            suite="${suite%% (*}"
        fi
        continue
    fi
    case "$line" in
    "test result: "*)
        read -r passed failed <<<"$(sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' <<<"$line")"
        if [ $((passed + failed)) -gt 0 ]; then
            seconds="${line##*finished in }"
            sp_phase_record "suite $suite" "${seconds%s}" "$([ "$failed" -eq 0 ] && echo ok || echo FAILED)" >/dev/null
        fi
        ;;
    esac
done

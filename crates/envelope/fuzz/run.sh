#!/usr/bin/env bash
# Coverage-guided fuzzing of the envelope message parser: cargo-fuzz (libFuzzer, AddressSanitizer)
# on the `parse_message` target for SECONDS (default 60), starting from the committed seeds
# (valid messages) and the committed corpus (crates/envelope/fuzz/corpus), which the run grows.
# After a long run, minimize and commit it (`cargo +nightly fuzz cmin parse_message
# crates/envelope/fuzz/corpus` from crates/envelope): `make test` replays it as a unit test.
# Needs the nightly toolchain (rustup's `nightly`); installs cargo-fuzz from crates.io into
# ${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/cargo-fuzz-<version>/ on first use.
# Ends with libFuzzer's "Done N runs in S second(s)" line; a crash fails the run and leaves the
# input in crates/envelope/fuzz/artifacts/.
#
# Usage: crates/envelope/fuzz/run.sh [SECONDS]      (make fuzz-envelope FUZZ_SECONDS=3600)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../../tests/env/lib.sh
. "$here/../../../tests/env/lib.sh"
seconds="${1:-60}"
cargo_fuzz_version="0.13.2"

rustup run nightly rustc --version >/dev/null 2>&1 ||
    sp_die "the nightly toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly"
tools="$SP_CACHE/cargo-fuzz-$cargo_fuzz_version"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    sp_lock "$SP_CACHE/.install-cargo-fuzz.lock"
    if [ ! -x "$tools/bin/cargo-fuzz" ]; then
        sp_log "installing cargo-fuzz $cargo_fuzz_version into $tools"
        cargo install --quiet --locked cargo-fuzz --version "$cargo_fuzz_version" --root "$tools" \
            --target-dir "$SP_ROOT/target/cargo-fuzz-build"
    fi
fi
export PATH="$tools/bin:$PATH"

mkdir -p "$here/corpus"
cd "$here/.."
sp_log "fuzzing parse_message for ${seconds}s ($(rustup run nightly rustc --version))"
log="$SP_ROOT/target/fuzz-envelope.log"
mkdir -p "$(dirname "$log")"
status=0
cargo +nightly fuzz run parse_message --target-dir "$SP_ROOT/target/fuzz" \
    "$here/corpus" "$here/seeds" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
grep -E '^(INFO: Seed|#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    sp_die "fuzzing failed (exit $status); full log: $log"
fi
sp_log "fuzzing passed: $(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)s; corpus: $(find "$here/corpus" -type f | wc -l) inputs"

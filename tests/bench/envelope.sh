#!/usr/bin/env bash
# Decrypt throughput, one thread pinned to one CPU, KMS excluded (in-process keyring):
# securepipe (whole-message and streaming decrypt of 4096-byte-frame messages, both suites,
# and aes-gcm alone on one buffer) against OpenSSL's AES-256-GCM through Python
# `cryptography` (AESGCM.decrypt_into), for 1 MiB and 64 MiB, all in this one run.
# Prints a table with each line's ratio to OpenSSL's one-shot decrypt of the same size, and
# says so when the aes-gcm crate is below half of OpenSSL's speed.
#
# Usage: tests/bench/envelope.sh [SIZE_MIB...]   (default: 1 64)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(1 64)
pin=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then pin=(taskset -c 0); fi

venv=$(tests/reference/install.sh)
# Release build (profile.bench) of the envelope crate alone: no AWS SDK.
cargo build --quiet --locked --profile bench -p securepipe-envelope --no-default-features \
    --features test-keyring --bench decrypt --message-format=json-render-diagnostics \
    >"${TMPDIR:-/tmp}/envelope-bench-build.json"
bench=$(grep -o '"executable":"[^"]*decrypt-[^"]*"' "${TMPDIR:-/tmp}/envelope-bench-build.json" |
    tail -1 | cut -d'"' -f4)
[ -x "$bench" ] || { echo "envelope.sh: bench binary not found" >&2; exit 1; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); pinned: ${pin[*]:-no}; AES-NI: $(grep -qw aes /proc/cpuinfo && echo yes || echo no), VAES: $(grep -qw vaes /proc/cpuinfo && echo yes || echo no), VPCLMULQDQ: $(grep -qw vpclmulqdq /proc/cpuinfo && echo yes || echo no)"
for mib in "${sizes[@]}"; do
    "${pin[@]}" "$bench" "$mib" >>"$results"
    "${pin[@]}" "$venv/bin/python" tests/bench/envelope_openssl.py "$mib" >>"$results"
done

"$venv/bin/python" - "$results" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
openssl = {int(r[1]): float(r[2]) for r in rows if r[0].startswith("OpenSSL one-shot")}
name_w = max(len(r[0]) for r in rows)
print(f"{'case':<{name_w}}  {'size':>6}  {'best GB/s':>9}  {'median GB/s':>11}  {'runs':>5}  {'vs OpenSSL':>10}")
for name, size, best, median, runs in rows:
    size = int(size)
    label = f"{size >> 20} MiB"
    ratio = float(best) / openssl[size]
    print(f"{name:<{name_w}}  {label:>6}  {float(best):>9.2f}  {float(median):>11.2f}  {runs:>5}  {ratio:>9.2f}x")
print("(ratios use best times; vs OpenSSL = this line's best / OpenSSL one-shot best at the same size)")
slow = [(int(r[1]), float(r[2]) / openssl[int(r[1])]) for r in rows if r[0].startswith("aes-gcm")]
for size, ratio in slow:
    if ratio < 0.5:
        print(f"NOTE: aes-gcm alone reaches {ratio:.2f}x OpenSSL at {size >> 20} MiB, below half.")
PY

#!/usr/bin/env bash
# Decrypt throughput, one thread pinned to one CPU, KMS excluded (in-process keyring):
# securepipe (whole-message and streaming decrypt of 4096-byte-frame messages, both suites,
# and aes-gcm alone on one buffer) against OpenSSL's AES-256-GCM through Python
# `cryptography` (AESGCM.decrypt_into), for 1 MiB and 64 MiB, all in this one run.
# Prints a table with each line's ratio to OpenSSL's one-shot decrypt of the same size, and
# says so when the aes-gcm crate is below half of OpenSSL's speed.
# Then the primitives of suite 0x0578's signature, each candidate on the same input next to
# OpenSSL: SHA-384 (sha2's AVX2 backend, aws-lc-rs, OpenSSL through hashlib) and one ECDSA
# P-384 verification of a prehashed message (p384, aws-lc-rs, OpenSSL through cryptography),
# and what they cost together for one 10 s, 16 kHz, 16-bit sample (320,044 bytes): the
# numbers behind the choice in crates/envelope/src/signature.rs.
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
primitives=$(mktemp)
trap 'rm -f "$results" "$primitives"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); pinned: ${pin[*]:-no}; AES-NI: $(grep -qw aes /proc/cpuinfo && echo yes || echo no), VAES: $(grep -qw vaes /proc/cpuinfo && echo yes || echo no), VPCLMULQDQ: $(grep -qw vpclmulqdq /proc/cpuinfo && echo yes || echo no)"
for mib in "${sizes[@]}"; do
    "${pin[@]}" "$bench" "$mib" >>"$results"
    "${pin[@]}" "$venv/bin/python" tests/bench/envelope_openssl.py "$mib" >>"$results"
done
"${pin[@]}" "$bench" --primitives "${sizes[@]}" >>"$primitives"
"${pin[@]}" "$venv/bin/python" tests/bench/envelope_openssl.py --primitives "${sizes[@]}" >>"$primitives"

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

echo
echo "suite 0x0578 signature primitives (same input, one thread):"
"$venv/bin/python" - "$primitives" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
hashes = [r for r in rows if r[0].startswith("SHA-384")]
verifies = [r for r in rows if r[0].startswith("ECDSA")]
openssl_hash = {int(r[1]): float(r[2]) for r in hashes if "OpenSSL" in r[0]}
openssl_verify = next(float(r[2]) for r in verifies if "OpenSSL" in r[0])
name_w = max(len(r[0]) for r in rows)
print(f"{'SHA-384':<{name_w}}  {'size':>6}  {'best GB/s':>9}  {'median GB/s':>11}  {'vs OpenSSL':>10}")
for name, size, best, median, _ in hashes:
    size = int(size)
    print(f"{name:<{name_w}}  {size >> 20:>2} MiB  {float(best):>9.2f}  {float(median):>11.2f}  "
          f"{float(best) / openssl_hash[size]:>9.2f}x")
print(f"{'P-384 verify':<{name_w}}  {'':>6}  {'best us':>9}  {'median us':>11}  {'vs OpenSSL':>10}")
for name, _, best, median, _ in verifies:
    print(f"{name:<{name_w}}  {'':>6}  {float(best):>9.1f}  {float(median):>11.1f}  "
          f"{openssl_verify / float(best):>9.2f}x")
# One 10 s 16 kHz PCM16 WAV as a 0x0578 message: hash it (at the largest size's speed) and
# verify one signature.
sample = 320_044
largest = max(int(r[1]) for r in hashes)
def cost(hash_tag, verify_tag):
    gbps = next(float(r[2]) for r in hashes if hash_tag in r[0] and int(r[1]) == largest)
    us = next(float(r[2]) for r in verifies if verify_tag in r[0])
    return sample / gbps / 1e3 + us
for label, h, v in [("sha2 + p384", "sha2", "p384"), ("aws-lc-rs", "aws-lc-rs", "aws-lc-rs"),
                    ("sha2 + aws-lc-rs (securepipe's choice)", "sha2", "aws-lc-rs"),
                    ("OpenSSL", "OpenSSL", "OpenSSL")]:
    print(f"per 10 s sample (320,044 B): hash + verify with {label:<38} {cost(h, v):7.0f} us")
PY

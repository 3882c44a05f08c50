#!/usr/bin/env bash
# Worker benchmark (on demand; needs the local stack: make stack-up, then . target/env/env.sh).
# COUNT (default 500) raw samples of 10 s, 16 kHz, 16-bit mono speech-like audio, encrypted by
# the Python AWS Encryption SDK with its default suite (0x0578), per contender, on LocalStack;
# then, one after the other on the same stack, with PARALLELISM objects in flight (default 4):
#   worker  securepipe worker (release build)
#   peer    boto3 get -> aws-encryption-sdk decrypt -> librosa.feature.mfcc -> put .npy -> delete
#   nowork  the same S3 and KMS calls (get, kms:Decrypt of the data key, put, delete) without
#           decryption or DSP, on kept connections (LocalStack closes each connection
#           unless the request asks to keep it; the worker asks, boto3 does not): the
#           ceiling LocalStack allows on this machine
#   fixed   securepipe worker again, on COUNT samples of FIXED_SECONDS (default 0.2 s): what
#           an object costs before its audio (its 4 requests, the signature check, the
#           runtime), next to the CPU budget the peer's CPU/object / 10 leaves
# Prints objects/s, CPU seconds per object of the client process alone (its rusage via
# /usr/bin/time, not LocalStack's) and peak RSS, and checks the targets: worker CPU/object
# <= 1/10 of the peer's, peak RSS <= 1/5 of the peer's, throughput >= 80% of nowork.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
count=${1:-${COUNT:-500}}
parallelism=${PARALLELISM:-4}
fixed_seconds=${FIXED_SECONDS:-0.2}
: "${AWS_ENDPOINT_URL:?start the local stack (make stack-up) and source target/env/env.sh}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1

# The reference-tools venv: librosa, the Encryption SDK and boto3 in one interpreter.
py="$(tests/reference/install.sh)/bin/python"
bin=${SECUREPIPE_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet -p securepipe-cli
    bin="${CARGO_TARGET_DIR:-target}/release/securepipe"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bucket="sp-bench-worker-$(date +%s)"
arn=$("$py" - "$bucket" <<'PY'
import sys, boto3
boto3.client("s3").create_bucket(Bucket=sys.argv[1])
print(boto3.client("kms").create_key(Description="securepipe worker bench")["KeyMetadata"]["Arn"])
PY
)
echo "bucket $bucket, $count samples per contender, parallelism $parallelism; writing samples..."
started=$SECONDS
"$py" tests/bench/worker/samples.py "$bucket" "$arn" "$count" worker peer nowork
"$py" tests/bench/worker/samples.py --seconds "$fixed_seconds" "$bucket" "$arn" "$count" fixed
echo "samples written in $((SECONDS - started)) s"

# measure NAME COMMAND...: wall s, CPU s (user + sys of the process and its children), peak RSS KiB
measure() {
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
        { echo "$name failed:"; tail -20 "$work/$name.err"; exit 1; }
    read -r wall user sys rss <"$work/$name.time"
    echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss" >>"$work/results"
}
# The machine may be shared: the ratios within this one run are what counts; say the load.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(getconf _NPROCESSORS_ONLN) CPUs"
worker=("$bin" worker --bucket "$bucket" --region "${AWS_REGION:-us-east-1}" --kms-key-arn "$arn"
    --parallelism "$parallelism" --s3-force-path-style --log-json)
measure worker "${worker[@]}" --partition worker
measure peer "$py" tests/bench/worker/peer.py "$bucket" peer "$arn" "$parallelism"
measure nowork "$py" tests/bench/worker/peer.py "$bucket" nowork "$arn" "$parallelism" --no-work
measure fixed "${worker[@]}" --partition fixed
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "worker summary: $(tail -1 "$work/worker.out")"

printf '%-8s %9s %10s %14s %12s\n' client "wall s" objects/s "CPU s/object" "peak RSS MiB"
while read -r name wall cpu rss; do
    awk -v n="$name" -v w="$wall" -v c="$cpu" -v r="$rss" -v k="$count" 'BEGIN {
        printf "%-8s %9.1f %10.1f %14.4f %12.1f\n", n, w, k / w, c / k, r / 1024 }'
done <"$work/results"
awk -v k="$count" -v fixed_seconds="$fixed_seconds" '
    { wall[$1] = $2; cpu[$1] = $3; rss[$1] = $4 }
    END {
        cpu_ratio = cpu["peer"] / cpu["worker"]; rss_ratio = rss["peer"] / rss["worker"]
        ceiling = (k / wall["worker"]) / (k / wall["nowork"])
        printf "worker vs peer: %.1fx less CPU per object (target >= 10), %.1fx less peak RSS (target >= 5); worker throughput %.0f%% of the no-work ceiling (target >= 80%%)\n", cpu_ratio, rss_ratio, 100 * ceiling
        budget = cpu["peer"] / 10 / k
        printf "CPU budget per object (peer / 10): %.4f s; the worker on %s s samples already takes %.4f s (%.0f%% of it) before the audio\n", budget, fixed_seconds, cpu["fixed"] / k, 100 * cpu["fixed"] / k / budget
        exit !(cpu_ratio >= 10 && rss_ratio >= 5 && ceiling >= 0.8)
    }' "$work/results"

#!/usr/bin/env bash
# Single-thread MFCC throughput, securepipe vs librosa 0.11, on the same generated signals
# (chirp + white noise, 16-bit) at 16 kHz and 44.1 kHz, 10 s and 60 s, default parameters.
# Both peers run in this one invocation, one thread each, pinned to one CPU, measured as the
# best on-CPU time of repeated runs (so a busy machine distorts them less; the ratio is what
# counts). Also prints the FFT-bound estimate: x real time if each frame cost only one bare
# 2048-point f32 real FFT (realfft, planned once), and the fraction of it reached.
# Then the end-to-end path on 16 kHz PCM16 files of 10 s and 600 s (read, decode, features,
# .npy written), securepipe vs soundfile + librosa.feature.mfcc + np.save, next to the
# kernel's ratio. A row passes at >= 4x librosa (and the kernel rows at >= 60% of the FFT
# bound); the exit status is 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
    VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1
pin=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then pin=(taskset -c 0); fi

venv=$(tests/reference/install.sh)
cargo build --release --locked --quiet -p securepipe-dsp --example throughput
bench="${CARGO_TARGET_DIR:-target}/release/examples/throughput"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" tests/bench/dsp/make_signals.py "$work" 16000:10 16000:60 44100:10 44100:60 16000:600

fft_ns=$("${pin[@]}" "$bench" --fft 2048)
echo "bare 2048-point f32 real FFT: ${fft_ns} ns; hop 512; pinned: ${pin[*]:-no}"
printf '%-7s %5s %7s %10s %10s %7s %10s %8s\n' rate secs frames securepipe librosa ratio fft-bound "of bound"
status=0
for wav in "$work"/16000_10s.wav "$work"/16000_60s.wav "$work"/44100_10s.wav "$work"/44100_60s.wav; do
    IFS=$'\t' read -r _ rate secs frames ours < <("${pin[@]}" "$bench" "$wav")
    IFS=$'\t' read -r _ _ _ _ theirs < <("${pin[@]}" "$venv/bin/python" tests/bench/dsp/librosa_throughput.py "$wav")
    read -r ratio bound share ok < <(awk -v o="$ours" -v t="$theirs" -v f="$frames" -v s="$secs" -v ns="$fft_ns" 'BEGIN {
        b = s / (f * ns * 1e-9); r = o / t
        verdict = (r < 4 ? "BELOW-4x" : (o < 0.6 * b ? "BELOW-60%-OF-BOUND" : "ok"))
        printf "%.2f %.0f %.0f%% %s\n", r, b, 100 * o / b, verdict }')
    printf '%-7s %5s %7s %9.0fx %9.0fx %6sx %9sx %8s %s\n' "$rate" "$secs" "$frames" "$ours" "$theirs" "$ratio" "$bound" "$share" "$ok"
    [ "$ok" = ok ] || status=1
done
echo
echo "end to end (read + decode + MFCC + .npy write), one thread:"
printf '%-7s %5s %10s %10s %7s %13s %s\n' rate secs securepipe librosa ratio "kernel ratio" ""
for wav in "$work"/16000_10s.wav "$work"/16000_600s.wav; do
    IFS=$'\t' read -r _ rate secs _ ours < <("${pin[@]}" "$bench" --end-to-end "$wav")
    IFS=$'\t' read -r _ _ _ _ theirs < <("${pin[@]}" "$venv/bin/python" tests/bench/dsp/librosa_throughput.py --end-to-end "$wav")
    IFS=$'\t' read -r _ _ _ _ kernel < <("${pin[@]}" "$bench" "$wav")
    IFS=$'\t' read -r _ _ _ _ kernel_theirs < <("${pin[@]}" "$venv/bin/python" tests/bench/dsp/librosa_throughput.py "$wav")
    read -r ratio kratio ok < <(awk -v o="$ours" -v t="$theirs" -v k="$kernel" -v kt="$kernel_theirs" 'BEGIN {
        r = o / t; printf "%.2f %.2f %s\n", r, k / kt, (r < 4 ? "BELOW-4x" : "ok") }')
    printf '%-7s %5s %9.0fx %9.0fx %6sx %12sx %s\n' "$rate" "$secs" "$ours" "$theirs" "$ratio" "$kratio" "$ok"
    [ "$ok" = ok ] || status=1
done
exit "$status"

"""Random rates, lengths, sample formats, channel counts, signals and options: runs
`securepipe features` on each generated WAV and compares every element with librosa 0.11:
within 1e-3 of the float64 reference, and within 1e-3 plus librosa's own float32/float64 gap
of librosa fed soundfile's float32 samples (as users call it).

  python tests/golden/dsp/random_check.py --binary target/release/securepipe [--cases N] [--seed S]

Prints one line per case and a closing 'N passed, N failed'; exits non-zero on any failure.
A failing case prints its seed and options so it can be replayed with --seed and --cases 1.
"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402
import signals  # noqa: E402

TOLERANCE = 1e-3
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
FORMATS = [("int", 8), ("int", 16), ("int", 24), ("int", 32), ("float", 32)]


def random_signal(rng: random.Random, sr: int, loud: bool) -> dict:
    nyquist = sr / 2
    amp = rng.choice([1e-4, 1e-3, 0.05, 0.3, 0.7, 3.0 if loud else 0.9])
    kind = rng.choice(["sine", "sine", "chirp", "noise", "impulses", "dc", "silence", "clip",
                       "mix"])
    if kind == "sine":
        return {"kind": "sine", "freq": rng.uniform(20, nyquist * 0.99), "amp": amp,
                "phase": rng.uniform(0, 6.28)}
    if kind == "chirp":
        return {"kind": "chirp", "f0": rng.uniform(0, nyquist), "f1": rng.uniform(0, nyquist),
                "amp": amp}
    if kind == "noise":
        return {"kind": "noise", "seed": rng.randrange(2**63), "amp": amp}
    if kind == "impulses":
        return {"kind": "impulses", "amp": amp, "period": rng.randrange(50, 5000),
                "offset": rng.randrange(50)}
    if kind == "dc":
        return {"kind": "dc", "level": rng.uniform(-1, 1)}
    if kind == "silence":
        return {"kind": "silence"}
    if kind == "clip":
        return {"kind": "clip", "limit": rng.uniform(0.1, 1.0),
                "of": {"kind": "sine", "freq": rng.uniform(20, nyquist), "amp": 2.0}}
    return {"kind": "sum", "parts": [random_signal(rng, sr, loud) for _ in range(2)]}


def random_options(rng: random.Random, sr: int) -> dict:
    n_fft = rng.choice([256, 400, 512, 1000, 1023, 1024, 2048, 2048, 4096])
    opts = {"kind": rng.choice(["mfcc", "mfcc", "logmel"]), "n_fft": n_fft,
            "hop_length": rng.randrange(32, n_fft + 1)}
    if rng.random() < 0.3:
        opts["win_length"] = rng.randrange(n_fft // 4, n_fft + 1)
    n_mels = rng.choice([20, 40, 64, 80, 128])
    opts["n_mels"] = n_mels
    opts["n_mfcc"] = rng.randrange(1, min(n_mels, 40) + 1)
    if rng.random() < 0.3:
        opts["fmin"] = round(rng.uniform(0, 300), 3)
    if rng.random() < 0.3:
        opts["fmax"] = round(rng.uniform(opts.get("fmin", 0) + 1000, sr / 2), 3)
    opts["htk"] = rng.random() < 0.3
    opts["mel_norm"] = "none" if rng.random() < 0.2 else "slaney"
    opts["center"] = rng.random() < 0.8
    opts["top_db"] = rng.choice([80.0, 80.0, None, 60.0, 30.5])
    opts["lifter"] = rng.choice([0.0, 0.0, 22.0, round(rng.uniform(1, 60), 3)])
    return opts


def run_case(binary: Path, seed: int, tmp: Path) -> tuple[bool, str]:
    rng = random.Random(seed)
    sr = rng.choice(RATES) if rng.random() < 0.8 else rng.randrange(4000, 96001)
    kind, bits = rng.choice(FORMATS)
    fmt = {"kind": kind, "bits": bits}
    channels = rng.choice([1, 1, 1, 2, 2, 3, 6])
    length = rng.choice([rng.randrange(0, 4096), rng.randrange(4096, sr * 3),
                         rng.randrange(sr * 3, sr * 20)])
    recipes = [random_signal(rng, sr, loud=kind == "float") for _ in range(channels)]
    opts = random_options(rng, sr)
    samples = signals.interleaved(recipes, length, sr, fmt)
    wav, npy = tmp / f"{seed}.wav", tmp / f"{seed}.npy"
    signals.write_wav(wav, samples, sr, fmt)
    desc = (f"seed={seed} sr={sr} {kind}{bits} ch={channels} len={length} "
            f"opts={opts}")
    cli = subprocess.run([str(binary), "features", "--input", str(wav), "--output", str(npy),
                          *reference.cli_args(opts)], capture_output=True, text=True)
    y, _ = reference.load(wav)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want64 = reference.features(y.astype(np.float64), sr, opts)
            want32 = reference.features(y, sr, opts)
    except Exception as err:  # librosa rejects it: securepipe must too
        ok = cli.returncode != 0
        return ok, f"{'ok  ' if ok else 'FAIL'} {desc}: librosa: {err}; securepipe: " + (
            cli.stderr.strip().splitlines()[0] if cli.stderr.strip() else "succeeded")
    if cli.returncode != 0:
        return False, f"FAIL {desc}: securepipe failed: {cli.stderr.strip()}"
    got = np.load(npy)
    if got.dtype != np.float32 or got.shape != want64.shape:
        return False, f"FAIL {desc}: got {got.dtype}{got.shape}, want float32{want64.shape}"
    d64 = float(np.abs(got - want64).max(initial=0.0))
    d32 = float(np.abs(got - want32).max(initial=0.0))
    # librosa's float32 path rounds the STFT to complex64 and the power to float32; a large
    # lifter magnifies that, so against it the tolerance grows by librosa's own f32/f64 gap.
    gap = float(np.abs(want32 - want64).max(initial=0.0))
    ok = d64 <= TOLERANCE and d32 <= TOLERANCE + gap
    return ok, (f"{'ok  ' if ok else 'FAIL'} max|diff| {d64:.1e} vs f64, {d32:.1e} vs f32 "
                f"(librosa f32-f64 {gap:.1e}) {desc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"random check: {args.cases} cases from seed {seed}")
    started = time.monotonic()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            ok, line = run_case(args.binary, seed + i, Path(tmp))
            print(line, flush=True)
            passed, failed = passed + ok, failed + (not ok)
    print(f"took {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

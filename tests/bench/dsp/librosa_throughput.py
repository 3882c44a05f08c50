"""Single-thread throughput of librosa.feature.mfcc at its defaults, for dsp-vs-librosa.sh.

  python librosa_throughput.py [--end-to-end] FILE.wav...

Prints, per file, `file<TAB>rate<TAB>seconds<TAB>frames<TAB>x-real-time` (best of repeated
runs), loading each file as `securepipe features` does (soundfile float32, to_mono).
With --end-to-end the timed work is the whole per-file path as such pipelines are written:
soundfile read + to_mono + librosa.feature.mfcc + np.save.
"""

import sys
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden" / "dsp"))
import reference  # noqa: E402

BUDGET_S = 3.0


def best_time(y, sr):
    """Best on-CPU time of this thread (time.thread_time), as the Rust side measures."""
    librosa.feature.mfcc(y=y, sr=sr)  # warm-up: numba compilation, caches
    started, best, runs = time.perf_counter(), float("inf"), 0
    while runs < 5 or time.perf_counter() - started < BUDGET_S:
        t = time.thread_time()
        frames = librosa.feature.mfcc(y=y, sr=sr).shape[-1]
        best = min(best, time.thread_time() - t)
        runs += 1
    return best, frames


def end_to_end(path, out):
    data, sr = soundfile.read(path, dtype="float32", always_2d=True)
    y = librosa.to_mono(data.T)
    features = librosa.feature.mfcc(y=y, sr=sr)
    np.save(out, features)
    return len(y) / sr, features.shape[-1]


def best_end_to_end(path):
    out = f"/tmp/librosa-throughput-{time.time_ns()}.npy"
    end_to_end(path, out)  # warm-up
    started, best, runs = time.perf_counter(), float("inf"), 0
    while runs < 5 or time.perf_counter() - started < BUDGET_S:
        t = time.thread_time()
        seconds, frames = end_to_end(path, out)
        best = min(best, time.thread_time() - t)
        runs += 1
    Path(out).unlink()
    return seconds, frames, best


if sys.argv[1] == "--end-to-end":
    for path in sys.argv[2:]:
        data_sr = soundfile.info(path).samplerate
        seconds, frames, best = best_end_to_end(path)
        print(f"{path}\t{data_sr}\t{seconds:g}\t{frames}\t{seconds / best:.1f}", flush=True)
    sys.exit(0)

for path in sys.argv[1:]:
    y, sr = reference.load(path)
    seconds = len(y) / sr
    best, frames = best_time(y, sr)
    print(f"{path}\t{sr}\t{seconds:g}\t{frames}\t{seconds / best:.1f}", flush=True)

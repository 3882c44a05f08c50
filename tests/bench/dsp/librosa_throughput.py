"""Single-thread throughput of librosa.feature.mfcc at its defaults, for dsp-vs-librosa.sh.

  python librosa_throughput.py FILE.wav...

Prints, per file, `file<TAB>rate<TAB>seconds<TAB>frames<TAB>x-real-time` (best of repeated
runs), loading each file as `securepipe features` does (soundfile float32, to_mono).
"""

import sys
import time
from pathlib import Path

import librosa

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


for path in sys.argv[1:]:
    y, sr = reference.load(path)
    seconds = len(y) / sr
    best, frames = best_time(y, sr)
    print(f"{path}\t{sr}\t{seconds:g}\t{frames}\t{seconds / best:.1f}", flush=True)

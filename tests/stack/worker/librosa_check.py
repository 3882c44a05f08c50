"""Compares the worker's feature files with librosa 0.11 (the stack suite's 1e-3 check).

    librosa_check.py JOBS.json   each job: {"wav", "npy", "kind": "mfcc"|"logmel"}

Default parameters (the CRD's). A value passes within 1e-3 of librosa on float64 samples,
plus librosa's own gap between float32 and float64 input (as tests/golden/dsp does).
Prints one JSON line per job: {"wav", "max_error", "ok"}; exits 1 if any job fails.
"""

import json
import sys

import librosa
import numpy as np
import soundfile

TOLERANCE = 1e-3


def features(y, sr, kind):
    if kind == "mfcc":
        return librosa.feature.mfcc(y=y, sr=sr)
    return librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr))


def check(job):
    data, sr = soundfile.read(job["wav"], dtype="float32", always_2d=True)
    y32 = librosa.to_mono(data.T)
    ref64 = features(y32.astype(np.float64), sr, job["kind"])
    ref32 = features(y32, sr, job["kind"])
    ours = np.load(job["npy"])
    if ours.shape != ref64.shape or ours.dtype != np.float32:
        return {"wav": job["wav"], "ok": False,
                "error": f"shape {ours.shape} {ours.dtype}, librosa {ref64.shape}"}
    error = np.abs(ours.astype(np.float64) - ref64)
    allowed = TOLERANCE + np.abs(ref32.astype(np.float64) - ref64)
    return {"wav": job["wav"], "max_error": float(error.max(initial=0.0)),
            "ok": bool((error <= allowed).all())}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    failed = 0
    for job in jobs:
        result = check(job)
        failed += not result["ok"]
        print(json.dumps(result), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""Writes the benchmark's WAV files: a chirp across the whole band plus white noise, 16-bit.

  python make_signals.py OUT_DIR RATE:SECONDS...
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden" / "dsp"))
import signals  # noqa: E402

out = Path(sys.argv[1])
fmt = {"kind": "int", "bits": 16}
for spec in sys.argv[2:]:
    rate, seconds = (int(v) for v in spec.split(":"))
    recipe = {"kind": "sum", "parts": [
        {"kind": "chirp", "f0": 50.0, "f1": rate / 2 - 100, "amp": 0.4},
        {"kind": "noise", "seed": rate + seconds, "amp": 0.1}]}
    samples = signals.interleaved([recipe], rate * seconds, rate, fmt)
    signals.write_wav(out / f"{rate}_{seconds}s.wav", samples, rate, fmt)

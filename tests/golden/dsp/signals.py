"""Deterministic test signals, computed exactly as crates/dsp/tests/common/signals.rs does.

A channel is a recipe (a dict). Samples are float64 values built from glibc's sin (math.sin,
the same libm Rust's f64::sin uses) and a counter-based SplitMix64, then encoded as integers
(floor(x * 2^(bits-1) + 0.5), clamped to full scale) or float32. Both sides hash the encoded
samples, so a test notices if the two ever disagree by one bit.
"""

import hashlib
import math

import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def splitmix_uniform(seed: int, count: int) -> np.ndarray:
    """Uniform floats in [0, 1): SplitMix64 of seed + (i + 1) * gamma, top 53 bits."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, count + 1, dtype=np.uint64) * GOLDEN_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def render(recipe: dict, length: int, sr: int) -> np.ndarray:
    kind = recipe["kind"]
    if kind == "silence":
        return np.zeros(length)
    if kind == "dc":
        return np.full(length, float(recipe["level"]))
    if kind == "sine":
        amp, phase = recipe["amp"], recipe.get("phase", 0.0)
        c = 2.0 * math.pi * recipe["freq"]
        return np.array([amp * math.sin(c * n / sr + phase) for n in range(length)])
    if kind == "chirp":
        amp, f0, f1 = recipe["amp"], recipe["f0"], recipe["f1"]
        duration = length / sr
        return np.array(
            [
                amp * math.sin(2.0 * math.pi * (f0 * t + (f1 - f0) * t * t / (2.0 * duration)))
                for t in (n / sr for n in range(length))
            ]
        )
    if kind == "noise":
        return recipe["amp"] * (2.0 * splitmix_uniform(recipe["seed"], length) - 1.0)
    if kind == "impulses":
        x = np.zeros(length)
        x[recipe["offset"] :: recipe["period"]] = recipe["amp"]
        return x
    if kind == "sum":
        total = np.zeros(length)
        for part in recipe["parts"]:
            total = total + render(part, length, sr)
        return total
    if kind == "clip":
        limit = recipe["limit"]
        return np.minimum(np.maximum(render(recipe["of"], length, sr), -limit), limit)
    raise ValueError(f"unknown signal kind {kind!r}")


def encode(x: np.ndarray, fmt: dict) -> np.ndarray:
    """int32 sample values for integer formats, float32 for float."""
    if fmt["kind"] == "float":
        return x.astype(np.float32)
    full = 2.0 ** (fmt["bits"] - 1)
    q = np.floor(x * full + 0.5)
    return np.clip(q, -full, full - 1).astype(np.int32)


def interleaved(channels: list, length: int, sr: int, fmt: dict) -> np.ndarray:
    """(length, channels) encoded samples."""
    return np.stack([encode(render(c, length, sr), fmt) for c in channels], axis=1)


def digest(samples: np.ndarray) -> str:
    """sha256 of the interleaved samples as little-endian int32 or float32."""
    dtype = "<f4" if samples.dtype == np.float32 else "<i4"
    return hashlib.sha256(np.ascontiguousarray(samples).astype(dtype).tobytes()).hexdigest()


SUBTYPES = {("int", 8): "PCM_U8", ("int", 16): "PCM_16", ("int", 24): "PCM_24",
            ("int", 32): "PCM_32", ("float", 32): "FLOAT"}


def write_wav(path, samples: np.ndarray, sr: int, fmt: dict) -> None:
    import soundfile as sf

    subtype = SUBTYPES[(fmt["kind"], fmt["bits"])]
    if fmt["kind"] == "int":
        # libsndfile takes int32 at full 32-bit scale and shifts it down to the file's depth.
        samples = samples.astype(np.int32) << (32 - fmt["bits"])
    sf.write(str(path), samples, sr, subtype=subtype, format="WAV")

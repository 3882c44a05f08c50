"""librosa's features for a WAV file and a set of securepipe feature options."""

import librosa
import numpy as np
import soundfile as sf

DEFAULTS = dict(kind="mfcc", n_mfcc=20, n_fft=2048, hop_length=512, win_length=None,
                n_mels=128, fmin=0.0, fmax=None, htk=False, mel_norm="slaney", center=True,
                top_db=80.0, lifter=0.0)


def load(path):
    """What `securepipe features` decodes: soundfile float32, averaged like librosa.to_mono."""
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return librosa.to_mono(y.T), sr


def features(y: np.ndarray, sr: int, opts: dict) -> np.ndarray:
    """librosa's result for `y`: pass float64 for the float64 reference, float32 for what
    `librosa.feature.mfcc(y=soundfile.read(...)[0], ...)` gives."""
    o = {**DEFAULTS, **opts}
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=o["n_fft"], hop_length=o["hop_length"], win_length=o["win_length"],
        center=o["center"], n_mels=o["n_mels"], fmin=o["fmin"], fmax=o["fmax"], htk=o["htk"],
        norm=None if o["mel_norm"] == "none" else o["mel_norm"])
    db = librosa.power_to_db(mel, top_db=o["top_db"])
    if o["kind"] == "logmel":
        return db
    return librosa.feature.mfcc(S=db, n_mfcc=o["n_mfcc"], lifter=o["lifter"])


def cli_args(opts: dict) -> list:
    """`securepipe features` flags for `opts` (only the ones that differ from the defaults)."""
    o = {**DEFAULTS, **opts}
    args = []
    for key in ("kind", "n_mfcc", "n_fft", "hop_length", "win_length", "n_mels", "fmin",
                "fmax", "mel_norm", "lifter"):
        if o[key] != DEFAULTS[key]:
            args += [f"--{key.replace('_', '-')}", str(o[key])]
    if o["htk"]:
        args.append("--htk")
    if not o["center"]:
        args.append("--no-center")
    if o["top_db"] != DEFAULTS["top_db"]:
        args += ["--top-db", "none" if o["top_db"] is None else str(o["top_db"])]
    return args

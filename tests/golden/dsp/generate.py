"""Writes the DSP golden files: librosa 0.11's float64 features for each case in CASES.

Run through `make -C tests/golden/dsp golden` (it sets up the pinned venv). Outputs, all
committed so `cargo test` needs no Python:
  cases.json       each case: signal recipe, format, options, sha256 of the samples, shape
  data/<name>.f32  the expected matrix, little-endian float32, C order (rows, frames)
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import reference
import signals

HERE = Path(__file__).resolve().parent
I16 = {"kind": "int", "bits": 16}


def sine(freq, amp=0.5, phase=0.0):
    return {"kind": "sine", "freq": freq, "amp": amp, "phase": phase}


def chirp(f0, f1, amp=0.5):
    return {"kind": "chirp", "f0": f0, "f1": f1, "amp": amp}


def noise(seed, amp=0.5):
    return {"kind": "noise", "seed": seed, "amp": amp}


def mix(*parts):
    return {"kind": "sum", "parts": list(parts)}


def case(name, sr, seconds_or_len, channels, fmt=I16, **opts):
    length = seconds_or_len if isinstance(seconds_or_len, int) else round(seconds_or_len * sr)
    return dict(name=name, sample_rate=sr, length=length, channels=channels, format=fmt,
                options=opts)


SPEECH = dict(n_fft=512, hop_length=160, win_length=400, n_mels=40, n_mfcc=13)

CASES = [
    # Defaults at every rate, every kind of signal.
    case("sine440_16k_10s", 16000, 10.0, [sine(440.0)]),
    case("silence_16k_1s", 16000, 1.0, [{"kind": "silence"}]),
    case("dc_22k_2s", 22050, 2.0, [{"kind": "dc", "level": 0.5}]),
    case("clipped_44k_3s", 44100, 3.0, [{"kind": "clip", "limit": 1.0, "of": sine(220.0, 4.0)}]),
    case("noise_48k_5s", 48000, 5.0, [noise(1)]),
    case("chirp_22k_60s", 22050, 60.0, [chirp(30.0, 11000.0)]),
    case("impulses_8k_4s", 8000, 4.0,
         [{"kind": "impulses", "amp": 0.9, "period": 1000, "offset": 17}]),
    case("noise_chirp_48k_60s", 48000, 60.0, [mix(chirp(20.0, 20000.0, 0.4), noise(2, 0.05))]),
    case("quiet_sine_16k_3s", 16000, 3.0, [sine(1000.0, 0.001)]),
    # Lengths around one frame.
    case("empty_16k", 16000, 0, [noise(3)]),
    case("short_100_16k", 16000, 100, [noise(4)]),
    case("len2047_16k", 16000, 2047, [noise(5)]),
    case("len2049_44k", 44100, 2049, [sine(3000.0)]),
    # Options.
    case("htk_16k_5s", 16000, 5.0, [chirp(100.0, 7900.0)], htk=True),
    case("fmin_fmax_22k_4s", 22050, 4.0, [mix(sine(500.0), noise(6, 0.1))], fmin=300.0,
         fmax=4000.0),
    case("speech_16k_8s", 16000, 8.0, [mix(chirp(80.0, 4000.0), noise(7, 0.02))], **SPEECH),
    case("mels64_mfcc40_44k_4s", 44100, 4.0, [mix(sine(440.0), sine(5000.0, 0.2))], n_mels=64,
         n_mfcc=40),
    case("winlen_48k_3s", 48000, 3.0, [chirp(200.0, 16000.0)], win_length=1200,
         hop_length=300),
    case("nocenter_22k_3s", 22050, 3.0, [mix(sine(330.0), noise(8, 0.1))], center=False),
    case("nocenter_exact_8k", 8000, 2048 + 5 * 512, [noise(9)], center=False),
    case("odd_hop_22k_3s", 22050, 3.0, [chirp(50.0, 10000.0)], n_fft=1024, hop_length=333),
    case("mel_norm_none_16k_3s", 16000, 3.0, [noise(10)], mel_norm="none"),
    case("lifter_16k_3s", 16000, 3.0, [mix(sine(300.0), noise(11, 0.05))], lifter=22.0),
    case("top_db_60_22k_3s", 22050, 3.0, [mix(sine(700.0), noise(12, 0.001))], top_db=60.0),
    # No top_db: the float64 STFT path, where the noise floor is visible.
    case("no_top_db_sine_16k_5s", 16000, 5.0, [sine(440.0)], top_db=None),
    case("no_top_db_chirp_44k_5s", 44100, 5.0, [chirp(100.0, 20000.0)], top_db=None),
    case("no_top_db_nyquist_16k_2s", 16000, 2.0, [sine(7900.0, 0.9)], top_db=None),
    case("no_top_db_impulses_8k_2s", 8000, 2.0,
         [{"kind": "impulses", "amp": 0.5, "period": 777, "offset": 3}], top_db=None),
    # Log-mel.
    case("logmel_22k_3s", 22050, 3.0, [mix(sine(440.0), noise(13, 0.1))], kind="logmel"),
    case("logmel_no_top_db_16k_2s", 16000, 2.0, [chirp(100.0, 7000.0)], kind="logmel",
         top_db=None),
    case("logmel_speech_8k_3s", 8000, 3.0, [noise(14)], kind="logmel", **SPEECH),
    # Sample formats and channels (downmixed like librosa.to_mono).
    case("stereo_int24_44k_3s", 44100, 3.0, [sine(440.0), noise(15, 0.3)],
         {"kind": "int", "bits": 24}),
    case("uint8_8k_3s", 8000, 3.0, [mix(sine(200.0), noise(16, 0.2))], {"kind": "int", "bits": 8}),
    case("int32_48k_3s", 48000, 3.0, [chirp(100.0, 20000.0, 0.7)], {"kind": "int", "bits": 32}),
    case("float_3ch_16k_3s", 16000, 3.0, [sine(250.0, 0.3), chirp(100.0, 6000.0, 0.3),
                                            noise(17, 0.3)], {"kind": "float", "bits": 32}),
    case("float_loud_22k_2s", 22050, 2.0, [sine(440.0, 4.0)], {"kind": "float", "bits": 32}),
]


def main() -> int:
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            sr, fmt = c["sample_rate"], c["format"]
            samples = signals.interleaved(c["channels"], c["length"], sr, fmt)
            wav = Path(tmp) / f"{c['name']}.wav"
            signals.write_wav(wav, samples, sr, fmt)
            y, file_sr = reference.load(wav)
            assert file_sr == sr
            check_scaling(samples, wav, fmt)
            expected = reference.features(y.astype(np.float64), sr, c["options"])
            literal = reference.features(y, sr, c["options"])
            expected.astype("<f4").tofile(data / f"{c['name']}.f32")
            manifest.append({**c, "sha256": signals.digest(samples),
                             "shape": list(expected.shape), "file": f"data/{c['name']}.f32"})
            print(f"{c['name']:28s} {str(expected.shape):12s} "
                  f"|float32 librosa - float64 librosa| = {np.abs(literal - expected).max():.2e}")
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


def check_scaling(samples, wav, fmt):
    """The decoder's contract: soundfile's float32 is int / 2^(bits-1), float passes through."""
    import soundfile as sf

    raw, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    if fmt["kind"] == "float":
        want = samples
    else:
        want = samples.astype(np.float32) * np.float32(2.0 ** -(fmt["bits"] - 1))
    assert np.array_equal(raw, want), f"{wav.name}: soundfile scaling differs"


if __name__ == "__main__":
    sys.exit(main())

//! Feature extraction for securepipe: MFCC and log-mel spectrograms equal to librosa 0.11's,
//! plus WAV decoding (as soundfile + `librosa.to_mono` do it) and `.npy` output.
//!
//! Pure: no file or network I/O. Decoding takes bytes, writing takes `impl Write`.
//! [`wav_features`] is the whole path from a WAV file's bytes to its features (what
//! `securepipe features` and the worker both run): a file's samples are read from its data
//! chunk a block of frames at a time (several channels averaged as they are read), never
//! decoded into a signal of their own.
//!
//! # Numerics (what "equal to librosa" means)
//! * STFT: periodic Hann window of `win_length`, zero-padded to `n_fft` in the middle; with
//!   `center`, `n_fft / 2` zeros on each side (librosa's default `pad_mode='constant'`).
//! * Power spectrum `|X|^2`; mel filter bank built exactly as `librosa.filters.mel` (Slaney or
//!   HTK scale, `norm='slaney'` or none, float32 weights).
//! * `power_to_db` with `ref=1.0`, `amin=1e-10`, and `top_db` against the global maximum.
//! * MFCC: orthonormal DCT-II of the dB matrix, first `n_mfcc` rows, optional lifter.
//!
//! Every element stays within 1e-3 of librosa's float64 result (checked against generated
//! references in `tests/golden/dsp`). Precision (see [`Precision`]): with `top_db` set, the STFT
//! runs in `f32`, and any frame with a band that survives the clamp but lies too far below the
//! frame's energy for `f32` (about 60 dB, less with a lifter) is recomputed in `f64`; with
//! `top_db` none the `f32` noise floor would show in every quiet band, so the whole STFT runs in
//! `f64`, like librosa's. Everything after the power spectrum is `f32`.
//!
//! Any finite input gives finite output: a signal whose peak exceeds 1 is scaled down by a power
//! of two before the FFT and its dB values are shifted back (exact for peaks up to ~1e13).

mod audio;
mod db;
mod dct;
mod extractor;
mod guard;
mod logmel;
mod mel;
mod npy;
mod params;
mod source;
mod stft;
mod window;

pub use audio::{Audio, DecodeError, decode_wav};
pub use extractor::{
    ExtractError, FeatureExtractor, FeatureKind, FeatureMatrix, WavFeaturesError, wav_features,
};
pub use npy::write_npy;
pub use params::{FeatureParams, MelNorm, MelScale, ParamsError, Precision};

//! The feature extractor: built once per parameter set, reused for every signal.

use crate::audio::{DecodeError, Format, Wav};
use crate::dct::DctMatrix;
use crate::logmel::{Headroom, LogMelFrontend};
use crate::mel::{MelFilterBank, MelSpec};
use crate::params::{FeatureParams, ParamsError, Precision};
use crate::source::{Encoding, Float, FloatLe, I16Le, I24Le, I32Le, Samples, U8, finite_peak};
use crate::stft::Framing;
use crate::window::padded_hann;

/// Which feature to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureKind {
    /// `librosa.feature.mfcc`: `n_mfcc × frames`.
    #[default]
    Mfcc,
    /// `librosa.power_to_db(librosa.feature.melspectrogram(...))`: `n_mels × frames`.
    LogMel,
}

/// A feature matrix in C order: `rows × frames`, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    rows: usize,
    frames: usize,
    data: Vec<f32>,
}

impl FeatureMatrix {
    /// Coefficients or bands.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Frames (time steps).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// One row (a coefficient or band over time).
    pub fn row(&self, row: usize) -> &[f32] {
        &self.data[row * self.frames..(row + 1) * self.frames]
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// A signal the extractor cannot turn into features.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("audio sample {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    #[error("signal of {samples} samples is shorter than one frame of {n_fft} (center is off)")]
    TooShort { samples: usize, n_fft: usize },
}

/// Computes MFCC and log-mel features equal to librosa's (see the crate docs).
///
/// Owns the FFT plan, window, sparse mel filter bank, DCT matrix and all scratch buffers; the
/// per-frame loop allocates nothing. One extractor serves one thread: build one per worker.
pub struct FeatureExtractor {
    params: FeatureParams,
    frontend: LogMelFrontend,
    dct: DctMatrix,
    /// The log-mel matrix behind an MFCC, kept between calls.
    log_mel: Vec<f32>,
}

impl FeatureExtractor {
    /// Plans everything for `params` (validated first).
    pub fn new(params: FeatureParams) -> Result<Self, ParamsError> {
        params.validate()?;
        let framing = Framing {
            n_fft: params.n_fft,
            hop_length: params.hop_length,
            center: params.center,
        };
        let window = padded_hann(params.effective_win_length(), params.n_fft);
        let mel = MelFilterBank::new(&MelSpec {
            sample_rate: f64::from(params.sample_rate),
            n_fft: params.n_fft,
            n_mels: params.n_mels,
            fmin: params.fmin,
            fmax: params.effective_fmax(),
            scale: params.mel_scale,
            norm: params.mel_norm,
        });
        let dct = DctMatrix::new(params.n_mels, params.n_mfcc, params.lifter);
        let frontend = LogMelFrontend::new(framing, &window, mel, params.top_db, dct.max_gain());
        Ok(Self {
            frontend,
            dct,
            log_mel: Vec::new(),
            params,
        })
    }

    pub fn params(&self) -> &FeatureParams {
        &self.params
    }

    /// The STFT precision in use (chosen by [`FeatureParams::precision`]).
    pub fn precision(&self) -> Precision {
        self.params.precision()
    }

    /// Frames for a signal of `samples` samples, or `None` if it is shorter than one frame.
    pub fn frame_count(&self, samples: usize) -> Option<usize> {
        self.frontend.frame_count(samples)
    }

    /// The feature of `kind` for `signal`.
    pub fn extract(
        &mut self,
        kind: FeatureKind,
        signal: &[f32],
    ) -> Result<FeatureMatrix, ExtractError> {
        self.extract_from(kind, Samples::<Float>::mono(signal))
    }

    /// `librosa.power_to_db(librosa.feature.melspectrogram(y=signal, ...), top_db=...)`.
    pub fn log_mel(&mut self, signal: &[f32]) -> Result<FeatureMatrix, ExtractError> {
        self.extract_from(FeatureKind::LogMel, Samples::<Float>::mono(signal))
    }

    /// `librosa.feature.mfcc(y=signal, ...)` (with this extractor's `top_db` and `lifter`).
    pub fn mfcc(&mut self, signal: &[f32]) -> Result<FeatureMatrix, ExtractError> {
        self.extract_from(FeatureKind::Mfcc, Samples::<Float>::mono(signal))
    }

    /// The feature of `kind` for the signal of `wav` (whose rate these parameters are for):
    /// the samples go from its data chunk straight into the frames, several channels
    /// averaged as they are read.
    fn extract_wav(
        &mut self,
        kind: FeatureKind,
        wav: &Wav<'_>,
    ) -> Result<FeatureMatrix, ExtractError> {
        /// Samples stored as `N` little-endian bytes each.
        fn stored<E: Encoding<Raw = [u8; N]>, const N: usize>(
            data: &[u8],
            channels: usize,
        ) -> Samples<'_, E> {
            Samples::interleaved(data.as_chunks().0, channels)
        }
        let (data, channels) = (wav.data(), usize::from(wav.channels()));
        match wav.format() {
            Format::U8 => self.extract_from(kind, Samples::<U8>::interleaved(data, channels)),
            Format::I16 => self.extract_from(kind, stored::<I16Le, 2>(data, channels)),
            Format::I24 => self.extract_from(kind, stored::<I24Le, 3>(data, channels)),
            Format::I32 => self.extract_from(kind, stored::<I32Le, 4>(data, channels)),
            Format::Float => self.extract_from(kind, stored::<FloatLe, 4>(data, channels)),
        }
    }

    fn extract_from<E: Encoding>(
        &mut self,
        kind: FeatureKind,
        signal: Samples<'_, E>,
    ) -> Result<FeatureMatrix, ExtractError> {
        let (headroom, frames) = self.prepare::<E>(signal)?;
        let n_mels = self.frontend.n_mels();
        if kind == FeatureKind::LogMel {
            let mut data = vec![0.0; n_mels * frames];
            self.frontend
                .compute(signal, headroom, frames, &mut data, |_, _, _| {});
            return Ok(FeatureMatrix {
                rows: n_mels,
                frames,
                data,
            });
        }
        let len = n_mels * frames;
        if len > self.log_mel.capacity() {
            // Freshly zeroed memory from the allocator: growing with `resize` would write the
            // zeros a second time (megabytes for a long file). Every value is overwritten.
            self.log_mel = vec![0.0; len];
        } else {
            self.log_mel.resize(len, 0.0);
        }
        let rows = self.params.n_mfcc;
        let mut data = vec![0.0; rows * frames];
        let dct = &mut self.dct;
        self.frontend.compute(
            signal,
            headroom,
            frames,
            &mut self.log_mel,
            |log_mel, first, count| dct.apply_block(log_mel, &mut data, frames, first, count),
        );
        Ok(FeatureMatrix { rows, frames, data })
    }

    /// Checks the signal and sizes the output.
    fn prepare<E: Encoding>(
        &self,
        signal: Samples<'_, E>,
    ) -> Result<(Headroom, usize), ExtractError> {
        let peak = finite_peak(signal).map_err(|index| ExtractError::NonFinite {
            index,
            value: signal.value(index),
        })?;
        let frames = self
            .frame_count(signal.len())
            .ok_or(ExtractError::TooShort {
                samples: signal.len(),
                n_fft: self.params.n_fft,
            })?;
        Ok((Headroom::for_peak(peak), frames))
    }
}

/// Why a WAV file yields no features.
#[derive(Debug, thiserror::Error)]
pub enum WavFeaturesError {
    #[error("not a WAV file securepipe reads")]
    Decode(#[from] DecodeError),
    #[error("the feature parameters do not fit this file")]
    Params(#[from] ParamsError),
    #[error("no features")]
    Extract(#[from] ExtractError),
}

/// The feature of `kind` for a WAV file held in memory, with the parameters `params` gives for
/// its sample rate: what `securepipe features` writes and the worker stores, both through here.
///
/// `extractor` is reused when it was built for the same parameters, else (re)built in place,
/// so a caller that keeps it plans FFTs and filter banks once per parameter set.
pub fn wav_features(
    wav: &[u8],
    kind: FeatureKind,
    params: impl FnOnce(u32) -> FeatureParams,
    extractor: &mut Option<FeatureExtractor>,
) -> Result<FeatureMatrix, WavFeaturesError> {
    let wav = Wav::parse(wav)?;
    let params = params(wav.sample_rate());
    let extractor = match extractor.take() {
        Some(reused) if *reused.params() == params => extractor.insert(reused),
        _ => extractor.insert(FeatureExtractor::new(params)?),
    };
    Ok(extractor.extract_wav(kind, &wav)?)
}

#[cfg(test)]
mod tests {
    use hound::SampleFormat;

    use super::*;

    /// A chirp with noise-like wiggles, as `bits`-bit integers (or floats for 32-bit float).
    fn wav(channels: u16, bits: u16, format: SampleFormat, len: usize) -> Vec<u8> {
        let chirp = (0..len * usize::from(channels)).map(|n| {
            let t = n as f64 / 8_000.0;
            0.7 * (t * (300.0 + 2_000.0 * t)).sin() + 0.2 * ((n * 7_919 % 97) as f64 / 97.0 - 0.5)
        });
        match format {
            SampleFormat::Float => {
                let samples: Vec<f32> = chirp.map(|x| x as f32).collect();
                crate::audio::tests::wav(channels, bits, format, &samples)
            }
            SampleFormat::Int => {
                let full = f64::from(1u32 << (bits - 1)) - 1.0;
                let samples: Vec<i32> = chirp.map(|x| (x * full).round() as i32).collect();
                crate::audio::tests::wav(channels, bits, format, &samples)
            }
        }
    }

    #[test]
    fn wav_features_equal_those_of_the_decoded_signal_bit_for_bit() {
        let formats = [
            (8, SampleFormat::Int),
            (16, SampleFormat::Int),
            (24, SampleFormat::Int),
            (32, SampleFormat::Int),
            (32, SampleFormat::Float),
        ];
        for (bits, format) in formats {
            for channels in [1, 2, 3] {
                let bytes = wav(channels, bits, format, 5_003);
                let signal = crate::decode_wav(&bytes).expect("decode").samples;
                for top_db in [Some(80.0), None] {
                    for kind in [FeatureKind::Mfcc, FeatureKind::LogMel] {
                        let params = |rate| FeatureParams {
                            n_fft: 512,
                            hop_length: 160,
                            n_mels: 40,
                            top_db,
                            ..FeatureParams::new(rate)
                        };
                        let mut slot = None;
                        let ours = wav_features(&bytes, kind, params, &mut slot).expect("wav");
                        let want = FeatureExtractor::new(params(8_000))
                            .expect("params")
                            .extract(kind, &signal)
                            .expect("signal");
                        let bits_of = |m: &FeatureMatrix| -> Vec<u32> {
                            m.as_slice().iter().map(|x| x.to_bits()).collect()
                        };
                        assert_eq!(
                            (ours.rows(), ours.frames(), bits_of(&ours)),
                            (want.rows(), want.frames(), bits_of(&want)),
                            "{bits}-bit {format:?} x{channels} {kind:?} top_db {top_db:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_float_wav_that_is_not_finite_is_refused_at_its_sample() {
        // Mono, and stereo: at the frame (mono sample) that holds it, with the mean's value.
        for (channels, from_end, bad) in [(1, 10, f32::NAN), (2, 19, f32::INFINITY)] {
            let mut bytes = wav(channels, 32, SampleFormat::Float, 4_000);
            let at = bytes.len() - 4 * from_end;
            bytes[at..at + 4].copy_from_slice(&bad.to_le_bytes());
            let err = wav_features(&bytes, FeatureKind::Mfcc, FeatureParams::new, &mut None)
                .expect_err("not finite");
            assert!(
                matches!(
                    err,
                    WavFeaturesError::Extract(ExtractError::NonFinite { index: 3_990, value })
                        if value.to_bits() == bad.to_bits()
                ),
                "x{channels}: {err}"
            );
        }
    }

    #[test]
    fn the_extractor_is_reused_only_for_the_same_parameters() {
        let bytes = wav(1, 16, SampleFormat::Int, 4_000);
        let mut slot = None;
        let first = wav_features(&bytes, FeatureKind::Mfcc, FeatureParams::new, &mut slot);
        let again = wav_features(&bytes, FeatureKind::Mfcc, FeatureParams::new, &mut slot);
        assert_eq!(first.expect("first"), again.expect("again"));
        let other = |rate| FeatureParams {
            n_mfcc: 13,
            ..FeatureParams::new(rate)
        };
        let fewer = wav_features(&bytes, FeatureKind::Mfcc, other, &mut slot).expect("13");
        assert_eq!(fewer.rows(), 13);
        assert_eq!(slot.map(|e| e.params().n_mfcc), Some(13));
        let err = wav_features(
            b"not a wav",
            FeatureKind::Mfcc,
            FeatureParams::new,
            &mut None,
        );
        assert!(matches!(err, Err(WavFeaturesError::Decode(_))));
    }
}

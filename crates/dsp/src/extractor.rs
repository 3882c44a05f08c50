//! The feature extractor: built once per parameter set, reused for every signal.

use crate::dct::DctMatrix;
use crate::logmel::{Headroom, LogMelFrontend};
use crate::mel::{MelFilterBank, MelSpec};
use crate::params::{FeatureParams, ParamsError, Precision};
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
        match kind {
            FeatureKind::Mfcc => self.mfcc(signal),
            FeatureKind::LogMel => self.log_mel(signal),
        }
    }

    /// `librosa.power_to_db(librosa.feature.melspectrogram(y=signal, ...), top_db=...)`.
    pub fn log_mel(&mut self, signal: &[f32]) -> Result<FeatureMatrix, ExtractError> {
        let (headroom, frames) = self.prepare(signal)?;
        let mut data = vec![0.0; self.frontend.n_mels() * frames];
        self.frontend
            .compute(signal, headroom, frames, &mut data, |_, _, _| {});
        Ok(FeatureMatrix {
            rows: self.frontend.n_mels(),
            frames,
            data,
        })
    }

    /// `librosa.feature.mfcc(y=signal, ...)` (with this extractor's `top_db` and `lifter`).
    pub fn mfcc(&mut self, signal: &[f32]) -> Result<FeatureMatrix, ExtractError> {
        let (headroom, frames) = self.prepare(signal)?;
        let len = self.frontend.n_mels() * frames;
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
    fn prepare(&self, signal: &[f32]) -> Result<(Headroom, usize), ExtractError> {
        let peak = finite_peak(signal).map_err(|index| ExtractError::NonFinite {
            index,
            value: signal[index],
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

/// The largest `|x|` of a signal, or the index of its first non-finite sample.
///
/// Branch-free lanes (a non-finite `x` makes `x * 0` NaN, which poisons its lane's sum), so
/// the common all-finite case runs at SIMD speed; the index is searched for only on failure.
fn finite_peak(signal: &[f32]) -> Result<f32, usize> {
    let mut peak = [0f32; 8];
    let mut poison = [0f32; 8];
    let mut chunks = signal.chunks_exact(8);
    for chunk in &mut chunks {
        for ((p, z), &x) in peak.iter_mut().zip(poison.iter_mut()).zip(chunk) {
            *p = p.max(x.abs());
            *z += x * 0.0;
        }
    }
    for &x in chunks.remainder() {
        peak[0] = peak[0].max(x.abs());
        poison[0] += x * 0.0;
    }
    if poison.iter().all(|z| *z == 0.0) {
        Ok(peak.iter().fold(0f32, |m, &p| m.max(p)))
    } else {
        Err(signal.iter().position(|x| !x.is_finite()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_peak_finds_the_loudest_sample_or_the_first_bad_one() {
        let mut signal: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) / 10.0).collect();
        assert_eq!(finite_peak(&signal), Ok(1.8));
        assert_eq!(finite_peak(&[]), Ok(0.0));
        signal[35] = f32::NAN;
        signal[36] = f32::INFINITY;
        assert_eq!(finite_peak(&signal), Err(35));
        signal[35] = 0.0;
        assert_eq!(finite_peak(&signal), Err(36));
    }
}

//! Feature parameters, their librosa defaults and their validation.

/// The formula that maps Hz to mel (librosa's `htk` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MelScale {
    /// Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above (`htk=False`).
    #[default]
    Slaney,
    /// The HTK formula `2595 * log10(1 + f / 700)` (`htk=True`).
    Htk,
}

/// Normalisation of the mel filters (librosa's `norm` argument of `filters.mel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MelNorm {
    /// Divide each triangle by its width in Hz (`norm='slaney'`): constant energy per band.
    #[default]
    Slaney,
    /// Leave the triangles with a peak of 1 (`norm=None`).
    Off,
}

/// The numeric type of the STFT, chosen from the parameters (see [`FeatureParams::precision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `f32` FFT, with frames that have a band too deep for `f32` recomputed in `f64`. Used when
    /// `top_db` clamps: the clamp bounds how deep a surviving band can be, so most frames of
    /// real audio need no recomputation.
    Single,
    /// `f64` FFT for every frame, like librosa: with no clamp, every quiet band down to the
    /// `amin` floor is in the output, and the `f32` noise floor (errors of 0.06–0.23 on sines
    /// and chirps) would show.
    Double,
}

/// Everything that defines a feature matrix. [`FeatureParams::new`] gives librosa's defaults.
///
/// The dB conversion always uses librosa's `ref=1.0` and `amin=1e-10`; the window is always the
/// periodic Hann window and centred frames are always zero-padded (`pad_mode='constant'`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureParams {
    /// Sample rate of the signal in Hz (the file's own rate: nothing is resampled).
    pub sample_rate: u32,
    /// FFT length (`n_fft`, default 2048).
    pub n_fft: usize,
    /// Samples between frames (`hop_length`, default 512).
    pub hop_length: usize,
    /// Window length, at most `n_fft`; `None` means `n_fft`. Shorter windows are centred in the
    /// frame and zero-padded, as librosa does.
    pub win_length: Option<usize>,
    /// Centre frame `t` on sample `t * hop_length`, padding `n_fft / 2` zeros on both sides.
    pub center: bool,
    /// Number of mel bands (`n_mels`, default 128).
    pub n_mels: usize,
    /// Lowest filter frequency in Hz (default 0).
    pub fmin: f64,
    /// Highest filter frequency in Hz; `None` means `sample_rate / 2`.
    pub fmax: Option<f64>,
    /// Mel scale formula (default Slaney).
    pub mel_scale: MelScale,
    /// Filter normalisation (default Slaney).
    pub mel_norm: MelNorm,
    /// Floor of the dB values below the global maximum (default 80); `None` disables it.
    pub top_db: Option<f64>,
    /// Number of cepstral coefficients kept (`n_mfcc`, default 20), at most `n_mels`.
    pub n_mfcc: usize,
    /// Cepstral liftering coefficient (`lifter`, default 0 = none).
    pub lifter: f64,
}

/// A parameter set that librosa would reject or that has no meaningful result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    #[error("sample_rate must be positive")]
    SampleRate,
    #[error("n_fft must be positive")]
    NFft,
    #[error("hop_length must be positive")]
    HopLength,
    #[error("win_length must be between 1 and n_fft ({n_fft}), got {win_length}")]
    WinLength { win_length: usize, n_fft: usize },
    #[error("n_mels must be positive")]
    NMels,
    #[error("fmin must be finite and non-negative, got {0}")]
    Fmin(f64),
    #[error("fmax must be finite and greater than fmin ({fmin}), got {fmax}")]
    Fmax { fmin: f64, fmax: f64 },
    #[error("top_db must be finite and non-negative, got {0}")]
    TopDb(f64),
    #[error("n_mfcc must be between 1 and n_mels ({n_mels}), got {n_mfcc}")]
    NMfcc { n_mfcc: usize, n_mels: usize },
    #[error("lifter must be finite and non-negative, got {0}")]
    Lifter(f64),
}

impl FeatureParams {
    /// librosa's defaults (`feature.mfcc` / `feature.melspectrogram` / `power_to_db`) at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            n_fft: 2048,
            hop_length: 512,
            win_length: None,
            center: true,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            mel_scale: MelScale::Slaney,
            mel_norm: MelNorm::Slaney,
            top_db: Some(80.0),
            n_mfcc: 20,
            lifter: 0.0,
        }
    }

    /// The window length in effect (`win_length`, or `n_fft` when unset).
    pub fn effective_win_length(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    /// The upper filter frequency in effect (`fmax`, or the Nyquist frequency when unset).
    pub fn effective_fmax(&self) -> f64 {
        self.fmax.unwrap_or(f64::from(self.sample_rate) / 2.0)
    }

    /// The STFT precision these parameters need to stay within 1e-3 of librosa's `f64` result:
    /// `Single` (with per-frame `f64` recomputation where needed) when `top_db` is set,
    /// `Double` when it is not.
    pub fn precision(&self) -> Precision {
        match self.top_db {
            Some(_) => Precision::Single,
            None => Precision::Double,
        }
    }

    /// Checks every field; the error names the first one that is out of range.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.sample_rate == 0 {
            return Err(ParamsError::SampleRate);
        }
        if self.n_fft == 0 {
            return Err(ParamsError::NFft);
        }
        if self.hop_length == 0 {
            return Err(ParamsError::HopLength);
        }
        let win_length = self.effective_win_length();
        if win_length == 0 || win_length > self.n_fft {
            return Err(ParamsError::WinLength {
                win_length,
                n_fft: self.n_fft,
            });
        }
        if self.n_mels == 0 {
            return Err(ParamsError::NMels);
        }
        if !(self.fmin.is_finite() && self.fmin >= 0.0) {
            return Err(ParamsError::Fmin(self.fmin));
        }
        let fmax = self.effective_fmax();
        if !(fmax.is_finite() && fmax > self.fmin) {
            return Err(ParamsError::Fmax {
                fmin: self.fmin,
                fmax,
            });
        }
        if let Some(top_db) = self.top_db
            && !(top_db.is_finite() && top_db >= 0.0)
        {
            return Err(ParamsError::TopDb(top_db));
        }
        if self.n_mfcc == 0 || self.n_mfcc > self.n_mels {
            return Err(ParamsError::NMfcc {
                n_mfcc: self.n_mfcc,
                n_mels: self.n_mels,
            });
        }
        if !(self.lifter.is_finite() && self.lifter >= 0.0) {
            return Err(ParamsError::Lifter(self.lifter));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_pick_single_precision() {
        let params = FeatureParams::new(16_000);
        assert_eq!(params.validate(), Ok(()));
        assert_eq!(params.precision(), Precision::Single);
        assert_eq!(params.effective_win_length(), 2048);
        assert_eq!(params.effective_fmax(), 8_000.0);
    }

    #[test]
    fn no_top_db_needs_double_precision() {
        let mut params = FeatureParams::new(16_000);
        params.top_db = None;
        assert_eq!(params.precision(), Precision::Double);
        params.top_db = Some(120.0);
        assert_eq!(params.precision(), Precision::Single);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = FeatureParams::new(22_050);
        let cases: Vec<(FeatureParams, &str)> = vec![
            (
                FeatureParams {
                    sample_rate: 0,
                    ..base.clone()
                },
                "sample_rate",
            ),
            (
                FeatureParams {
                    hop_length: 0,
                    ..base.clone()
                },
                "hop_length",
            ),
            (
                FeatureParams {
                    win_length: Some(4096),
                    ..base.clone()
                },
                "win_length",
            ),
            (
                FeatureParams {
                    fmin: -1.0,
                    ..base.clone()
                },
                "fmin",
            ),
            (
                FeatureParams {
                    fmax: Some(0.0),
                    ..base.clone()
                },
                "fmax",
            ),
            (
                FeatureParams {
                    top_db: Some(-3.0),
                    ..base.clone()
                },
                "top_db",
            ),
            (
                FeatureParams {
                    n_mfcc: 129,
                    ..base.clone()
                },
                "n_mfcc",
            ),
            (
                FeatureParams {
                    lifter: f64::NAN,
                    ..base.clone()
                },
                "lifter",
            ),
        ];
        for (params, field) in cases {
            let err = params.validate().expect_err(field);
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }
}

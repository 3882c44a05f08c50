//! Framing, windowing and the FFT: one power spectrum per frame, computed in `f32` or `f64`
//! (see `Precision`) and handed on as `f32`.
//!
//! An even `n_fft` frame goes through a complex FFT of half its length (even samples as real
//! parts, odd samples as imaginary parts). The two interleaved half-spectra are then separated
//! and joined with twiddle factors, and the power of bins `k` and `n_fft / 2 - k` comes out of
//! that one pass, which the compiler vectorises. This is the textbook real FFT (what realfft
//! does), but its post-processing is fused with the power spectrum and runs on SIMD lanes:
//! realfft's scalar post-processing cost as much as the half-length FFT itself. An odd `n_fft`
//! frame goes through a full-length complex FFT.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::num_traits::Zero;
use rustfft::{Fft, FftNum, FftPlanner};

use crate::params::Precision;

/// The float type an STFT runs in.
pub(crate) trait StftFloat: FftNum {
    fn from_sample(x: f32) -> Self;
    fn from_real(x: f64) -> Self;
    /// A power value, rounded to `f32`.
    fn to_power(self) -> f32;
}

impl StftFloat for f32 {
    fn from_sample(x: f32) -> Self {
        x
    }
    fn from_real(x: f64) -> Self {
        x as f32
    }
    fn to_power(self) -> f32 {
        self
    }
}

impl StftFloat for f64 {
    fn from_sample(x: f32) -> Self {
        f64::from(x)
    }
    fn from_real(x: f64) -> Self {
        x
    }
    fn to_power(self) -> f32 {
        self as f32
    }
}

/// How frames are laid over a signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    pub n_fft: usize,
    pub hop_length: usize,
    pub center: bool,
}

impl Framing {
    /// Zeros added before the signal (and after it) when frames are centred.
    fn pad(&self) -> usize {
        if self.center { self.n_fft / 2 } else { 0 }
    }

    /// Number of frames for a signal of `len` samples, or `None` when the (padded) signal is
    /// shorter than one frame.
    pub(crate) fn frame_count(&self, len: usize) -> Option<usize> {
        let padded = len + 2 * self.pad();
        padded
            .checked_sub(self.n_fft)
            .map(|room| 1 + room / self.hop_length)
    }

    /// The samples of a signal of `len` that frames `frames` (not empty) read.
    pub(crate) fn samples_for(
        &self,
        frames: std::ops::Range<usize>,
        len: usize,
    ) -> std::ops::Range<usize> {
        let (_, start, _) = self.span(frames.start, len);
        let (_, last, count) = self.span(frames.end - 1, len);
        start..last + count
    }

    /// Where frame `t` reads the signal: `(lead, start, count)`: the first `lead` frame samples
    /// are padding, the next `count` are `signal[start..start + count]`, the rest padding.
    fn span(&self, t: usize, len: usize) -> (usize, usize, usize) {
        let begin = t * self.hop_length;
        let pad = self.pad();
        let lead = pad.saturating_sub(begin).min(self.n_fft);
        let start = (begin + lead - pad).min(len);
        let count = (len - start).min(self.n_fft - lead);
        (lead, start, count)
    }
}

/// Samples `origin..origin + samples.len()` of a signal of `len` samples: at least every
/// sample the frames being computed read (see `Framing::samples_for`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Excerpt<'a> {
    pub samples: &'a [f32],
    pub origin: usize,
    pub len: usize,
}

/// One precision's FFT plan, window, twiddles and buffers.
pub(crate) struct PowerStft<T: StftFloat> {
    framing: Framing,
    /// Complex FFT of `n_fft / 2` points (even `n_fft`) or `n_fft` points (odd).
    fft: Arc<dyn Fft<T>>,
    /// Even `n_fft`: `cos` and `sin` of `2 pi k / n_fft` for `k` in `1..=n_fft / 4`.
    twiddle_cos: Vec<T>,
    twiddle_sin: Vec<T>,
    /// The window (halved for even `n_fft`, which makes the separation need no halving).
    window: Vec<T>,
    /// The window times the current signal's gain (see `set_gain`).
    scaled_window: Vec<T>,
    /// A windowed frame that overlaps the padding, before it is packed.
    frame: Vec<T>,
    input: Vec<Complex<T>>,
    spectrum: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
    /// Powers of the upper bins in reverse order, before they are put in place.
    upper: Vec<T>,
}

impl<T: StftFloat> PowerStft<T> {
    fn new(framing: Framing, window: &[f64]) -> Self {
        let n = framing.n_fft;
        let packed = n.is_multiple_of(2);
        let len = if packed { n / 2 } else { n };
        let fft = FftPlanner::<T>::new().plan_fft_forward(len);
        let (twiddle_cos, twiddle_sin) = if packed {
            (1..=n / 4)
                .map(|k| {
                    let angle = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                    (T::from_real(angle.cos()), T::from_real(angle.sin()))
                })
                .unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        let scale = if packed { 0.5 } else { 1.0 };
        let window: Vec<T> = window.iter().map(|&w| T::from_real(w * scale)).collect();
        Self {
            framing,
            twiddle_cos,
            twiddle_sin,
            scaled_window: window.clone(),
            window,
            frame: vec![T::zero(); n],
            input: vec![Complex::zero(); len],
            spectrum: vec![Complex::zero(); len],
            scratch: vec![Complex::zero(); fft.get_outofplace_scratch_len()],
            upper: vec![T::zero(); n / 4],
            fft,
        }
    }

    fn set_gain(&mut self, gain: f32) {
        let gain = T::from_sample(gain);
        for (s, &w) in self.scaled_window.iter_mut().zip(&self.window) {
            *s = w * gain;
        }
    }

    /// Zeroes the buffers that hold the last frame's samples or spectrum (every one is
    /// overwritten before it is read again, so results do not change).
    fn wipe(&mut self) {
        self.frame.fill(T::zero());
        self.input.fill(Complex::zero());
        self.spectrum.fill(Complex::zero());
        self.scratch.fill(Complex::zero());
        self.upper.fill(T::zero());
    }

    fn is_packed(&self) -> bool {
        self.framing.n_fft.is_multiple_of(2)
    }

    /// Windows frame `t` into the FFT input.
    fn load(&mut self, signal: Excerpt<'_>, t: usize) {
        let n = self.framing.n_fft;
        let (lead, start, count) = self.framing.span(t, signal.len);
        let samples = &signal.samples[start - signal.origin..][..count];
        if self.is_packed() && count == n {
            // The common case: the frame lies inside the signal; window and pack in one pass.
            for ((c, w), x) in self
                .input
                .iter_mut()
                .zip(self.scaled_window.chunks_exact(2))
                .zip(samples.chunks_exact(2))
            {
                *c = Complex::new(w[0] * T::from_sample(x[0]), w[1] * T::from_sample(x[1]));
            }
            return;
        }
        let (head, rest) = self.frame.split_at_mut(lead);
        let (body, tail) = rest.split_at_mut(count);
        head.fill(T::zero());
        tail.fill(T::zero());
        for ((f, &w), &x) in body
            .iter_mut()
            .zip(&self.scaled_window[lead..lead + count])
            .zip(samples)
        {
            *f = w * T::from_sample(x);
        }
        if self.is_packed() {
            for (c, pair) in self.input.iter_mut().zip(self.frame.chunks_exact(2)) {
                *c = Complex::new(pair[0], pair[1]);
            }
        } else {
            for (c, &x) in self.input.iter_mut().zip(&self.frame) {
                *c = Complex::new(x, T::zero());
            }
        }
    }

    fn power_frame(&mut self, signal: Excerpt<'_>, t: usize, power: &mut [f32]) {
        self.load(signal, t);
        self.fft.process_outofplace_with_scratch(
            &mut self.input,
            &mut self.spectrum,
            &mut self.scratch,
        );
        if self.is_packed() {
            self.separate(power);
        } else {
            for (p, &c) in power.iter_mut().zip(&self.spectrum) {
                *p = (c.re * c.re + c.im * c.im).to_power();
            }
        }
    }

    /// Turns the half-length spectrum `Z` of the packed frame into the power of each bin of
    /// the real frame's spectrum `X`. With `M = n_fft / 2`, `W = exp(-2 pi i / n_fft)` and the
    /// window halved: `X[k] = S + T` and `X[M - k] = conj(S - T)`, where
    /// `S = Z[k] + conj Z[M - k]` and `T = W^k (Z[k] - conj Z[M - k]) / i`.
    fn separate(&mut self, power: &mut [f32]) {
        let m = self.spectrum.len();
        let z0 = self.spectrum[0];
        let two = T::from_real(2.0);
        let dc = two * (z0.re + z0.im);
        let nyquist = two * (z0.re - z0.im);
        power[0] = (dc * dc).to_power();
        power[m] = (nyquist * nyquist).to_power();
        // Pairs (k, M - k) for k in 1..=M/2; when M is even, k = M/2 pairs with itself and
        // both halves of the formula give its power.
        let pairs = m / 2;
        let lower = self.spectrum[1..=pairs].iter();
        let mirror = self.spectrum[m - pairs..].iter().rev();
        for (((((p, u), &a), &b), &c), &s) in power[1..=pairs]
            .iter_mut()
            .zip(&mut self.upper[..pairs])
            .zip(lower)
            .zip(mirror)
            .zip(&self.twiddle_cos[..pairs])
            .zip(&self.twiddle_sin[..pairs])
        {
            let (sr, si) = (a.re + b.re, a.im - b.im);
            let (dr, di) = (a.re - b.re, a.im + b.im);
            let tr = c * di - s * dr;
            let ti = -(c * dr + s * di);
            let (xr, xi) = (sr + tr, si + ti);
            let (yr, yi) = (sr - tr, si - ti);
            *p = (xr * xr + xi * xi).to_power();
            *u = yr * yr + yi * yi;
        }
        // upper[k - 1] is the power of bin M - k.
        for (p, &u) in power[m - pairs..m]
            .iter_mut()
            .zip(self.upper[..pairs].iter().rev())
        {
            *p = u.to_power();
        }
    }
}

/// A power-spectrum STFT in the precision the parameters need.
pub(crate) enum Stft {
    Single(PowerStft<f32>),
    Double(PowerStft<f64>),
}

impl Stft {
    pub(crate) fn new(framing: Framing, window: &[f64], precision: Precision) -> Self {
        match precision {
            Precision::Single => Self::Single(PowerStft::new(framing, window)),
            Precision::Double => Self::Double(PowerStft::new(framing, window)),
        }
    }

    pub(crate) fn framing(&self) -> Framing {
        match self {
            Self::Single(stft) => stft.framing,
            Self::Double(stft) => stft.framing,
        }
    }

    /// Number of spectrum bins (`n_fft / 2 + 1`).
    pub(crate) fn bins(&self) -> usize {
        self.framing().n_fft / 2 + 1
    }

    /// Multiplies every following frame by `gain` (an exact power of two), so that loud inputs
    /// cannot overflow.
    pub(crate) fn set_gain(&mut self, gain: f32) {
        match self {
            Self::Single(stft) => stft.set_gain(gain),
            Self::Double(stft) => stft.set_gain(gain),
        }
    }

    /// Leaves no samples of the last signal in the buffers (an extractor outlives its inputs).
    pub(crate) fn wipe(&mut self) {
        match self {
            Self::Single(stft) => stft.wipe(),
            Self::Double(stft) => stft.wipe(),
        }
    }

    /// The power spectrum of frame `t` of `signal`, written to `power` (`bins()` long).
    pub(crate) fn power_frame(&mut self, signal: Excerpt<'_>, t: usize, power: &mut [f32]) {
        match self {
            Self::Single(stft) => stft.power_frame(signal, t, power),
            Self::Double(stft) => stft.power_frame(signal, t, power),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_frame_count_is_one_plus_len_over_hop() {
        let framing = Framing {
            n_fft: 2048,
            hop_length: 512,
            center: true,
        };
        for len in [0, 1, 511, 512, 2047, 2048, 16_000] {
            assert_eq!(framing.frame_count(len), Some(1 + len / 512), "len {len}");
        }
    }

    #[test]
    fn uncentred_signal_shorter_than_a_frame_has_no_frames() {
        let framing = Framing {
            n_fft: 400,
            hop_length: 160,
            center: false,
        };
        assert_eq!(framing.frame_count(399), None);
        assert_eq!(framing.frame_count(400), Some(1));
        assert_eq!(framing.frame_count(560), Some(2));
    }

    #[test]
    fn spans_cover_padding_and_signal() {
        let framing = Framing {
            n_fft: 8,
            hop_length: 3,
            center: true,
        };
        // Padded signal: 4 zeros, 10 samples, 4 zeros.
        assert_eq!(framing.span(0, 10), (4, 0, 4));
        assert_eq!(framing.span(1, 10), (1, 0, 7));
        assert_eq!(framing.span(2, 10), (0, 2, 8));
        assert_eq!(framing.span(3, 10), (0, 5, 5));
        // Shorter than the padding itself.
        assert_eq!(framing.span(0, 2), (4, 0, 2));
        assert_eq!(framing.samples_for(0..2, 10), 0..7);
        assert_eq!(framing.samples_for(2..4, 10), 2..10);
        assert_eq!(framing.samples_for(3..4, 10), 5..10);
    }

    fn naive_power(frame: &[f64]) -> Vec<f64> {
        let n = frame.len();
        (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, x) in frame.iter().enumerate() {
                    let angle = -2.0 * std::f64::consts::PI * (k * i) as f64 / n as f64;
                    re += x * angle.cos();
                    im += x * angle.sin();
                }
                re * re + im * im
            })
            .collect()
    }

    #[test]
    fn both_precisions_match_a_naive_dft_of_the_windowed_padded_frame() {
        // 16: packed, even half length; 18: packed, odd half length; 15: full-length FFT.
        for n_fft in [16usize, 18, 15] {
            let framing = Framing {
                n_fft,
                hop_length: 4,
                center: true,
            };
            let window: Vec<f64> = (0..n_fft).map(|i| 0.5 + i as f64 / 40.0).collect();
            let signal: Vec<f32> = (0..41)
                .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
                .collect();
            for precision in [Precision::Single, Precision::Double] {
                let mut stft = Stft::new(framing, &window, precision);
                stft.set_gain(1.0);
                let mut power = vec![f32::NAN; stft.bins()];
                for t in 0..framing.frame_count(signal.len()).expect("frames") {
                    let whole = Excerpt {
                        samples: &signal,
                        origin: 0,
                        len: signal.len(),
                    };
                    stft.power_frame(whole, t, &mut power);
                    let frame: Vec<f64> = (0..n_fft)
                        .map(|i| {
                            let idx = (t * 4 + i) as isize - (n_fft / 2) as isize;
                            let x = usize::try_from(idx)
                                .ok()
                                .and_then(|i| signal.get(i))
                                .map_or(0.0, |&x| f64::from(x));
                            x * window[i]
                        })
                        .collect();
                    let want = naive_power(&frame);
                    assert_eq!(power.len(), want.len());
                    for (k, (p, q)) in power.iter().zip(want).enumerate() {
                        assert!(
                            (f64::from(*p) - q).abs() < 1e-4 * q.max(1.0),
                            "n_fft {n_fft} {precision:?} frame {t} bin {k}: {p} vs {q}"
                        );
                    }
                }
            }
        }
    }
}

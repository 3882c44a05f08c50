//! Framing, windowing and the real FFT: one power spectrum per frame, computed in `f32` or
//! `f64` (see `Precision`) and handed on as `f32`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{FftError, FftNum, RealFftPlanner, RealToComplex};

use crate::params::Precision;

/// The float type an STFT runs in.
pub(crate) trait StftFloat: FftNum {
    fn from_sample(x: f32) -> Self;
    fn from_window(x: f64) -> Self;
    /// `|c|^2`, rounded to `f32`.
    fn power(c: Complex<Self>) -> f32;
}

impl StftFloat for f32 {
    fn from_sample(x: f32) -> Self {
        x
    }
    fn from_window(x: f64) -> Self {
        x as f32
    }
    fn power(c: Complex<Self>) -> f32 {
        c.re * c.re + c.im * c.im
    }
}

impl StftFloat for f64 {
    fn from_sample(x: f32) -> Self {
        f64::from(x)
    }
    fn from_window(x: f64) -> Self {
        x
    }
    fn power(c: Complex<Self>) -> f32 {
        (c.re * c.re + c.im * c.im) as f32
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

/// One precision's FFT plan, window and buffers.
pub(crate) struct PowerStft<T: StftFloat> {
    framing: Framing,
    fft: Arc<dyn RealToComplex<T>>,
    /// The unscaled window.
    window: Vec<T>,
    /// The window times the current signal's gain (see `set_gain`).
    scaled_window: Vec<T>,
    frame: Vec<T>,
    spectrum: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
}

impl<T: StftFloat> PowerStft<T> {
    fn new(framing: Framing, window: &[f64]) -> Self {
        let fft = RealFftPlanner::<T>::new().plan_fft_forward(framing.n_fft);
        let window: Vec<T> = window.iter().map(|&w| T::from_window(w)).collect();
        Self {
            framing,
            scaled_window: window.clone(),
            window,
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        }
    }

    fn set_gain(&mut self, gain: f32) {
        let gain = T::from_sample(gain);
        for (s, &w) in self.scaled_window.iter_mut().zip(&self.window) {
            *s = w * gain;
        }
    }

    fn power_frame(&mut self, signal: &[f32], t: usize, power: &mut [f32]) -> Result<(), FftError> {
        let (lead, start, count) = self.framing.span(t, signal.len());
        let (head, rest) = self.frame.split_at_mut(lead);
        let (body, tail) = rest.split_at_mut(count);
        head.fill(T::zero());
        tail.fill(T::zero());
        for ((f, &w), &x) in body
            .iter_mut()
            .zip(&self.scaled_window[lead..lead + count])
            .zip(&signal[start..start + count])
        {
            *f = w * T::from_sample(x);
        }
        self.fft
            .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)?;
        for (p, &c) in power.iter_mut().zip(&self.spectrum) {
            *p = T::power(c);
        }
        Ok(())
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

    /// The power spectrum of frame `t` of `signal`, written to `power` (`bins()` long).
    pub(crate) fn power_frame(
        &mut self,
        signal: &[f32],
        t: usize,
        power: &mut [f32],
    ) -> Result<(), FftError> {
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
        let framing = Framing {
            n_fft: 16,
            hop_length: 4,
            center: true,
        };
        let window: Vec<f64> = (0..16).map(|i| 0.5 + i as f64 / 40.0).collect();
        let signal: Vec<f32> = (0..21)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
            .collect();
        for precision in [Precision::Single, Precision::Double] {
            let mut stft = Stft::new(framing, &window, precision);
            stft.set_gain(1.0);
            let mut power = vec![0f32; stft.bins()];
            for t in 0..framing.frame_count(signal.len()).expect("frames") {
                stft.power_frame(&signal, t, &mut power).expect("fft");
                let frame: Vec<f64> = (0..16)
                    .map(|i| {
                        let idx = (t * 4 + i) as isize - 8;
                        let x = usize::try_from(idx)
                            .ok()
                            .and_then(|i| signal.get(i))
                            .map_or(0.0, |&x| f64::from(x));
                        x * window[i]
                    })
                    .collect();
                for (k, (p, q)) in power.iter().zip(naive_power(&frame)).enumerate() {
                    assert!(
                        (f64::from(*p) - q).abs() < 1e-4 * q.max(1.0),
                        "{precision:?} frame {t} bin {k}: {p} vs {q}"
                    );
                }
            }
        }
    }
}

//! The mel filter bank, built exactly like `librosa.filters.mel` (float32 weights) and stored
//! sparsely: each band keeps only the range of FFT bins where its triangle is non-zero.

use crate::params::{MelNorm, MelScale};

/// Width of one mel below 1 kHz on the Slaney scale, in Hz.
const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
/// Start of the logarithmic part of the Slaney scale, in Hz.
const SLANEY_MIN_LOG_HZ: f64 = 1000.0;

fn slaney_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

pub(crate) fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney if hz >= SLANEY_MIN_LOG_HZ => {
            SLANEY_MIN_LOG_HZ / SLANEY_HZ_PER_MEL
                + (hz / SLANEY_MIN_LOG_HZ).ln() / slaney_log_step()
        }
        MelScale::Slaney => hz / SLANEY_HZ_PER_MEL,
    }
}

pub(crate) fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    let min_log_mel = SLANEY_MIN_LOG_HZ / SLANEY_HZ_PER_MEL;
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney if mel >= min_log_mel => {
            SLANEY_MIN_LOG_HZ * (slaney_log_step() * (mel - min_log_mel)).exp()
        }
        MelScale::Slaney => SLANEY_HZ_PER_MEL * mel,
    }
}

/// `librosa.mel_frequencies`: `count` points evenly spaced in mel (numpy `linspace` rounding).
fn mel_frequencies(count: usize, fmin: f64, fmax: f64, scale: MelScale) -> Vec<f64> {
    let min_mel = hz_to_mel(fmin, scale);
    let max_mel = hz_to_mel(fmax, scale);
    let step = (max_mel - min_mel) / (count - 1) as f64;
    (0..count)
        .map(|i| {
            let mel = if i + 1 == count {
                max_mel
            } else {
                i as f64 * step + min_mel
            };
            mel_to_hz(mel, scale)
        })
        .collect()
}

/// The centre frequency of each FFT bin (numpy `rfftfreq` rounding).
fn fft_frequencies(sample_rate: f64, n_fft: usize) -> impl Iterator<Item = f64> {
    let spacing = 1.0 / (n_fft as f64 * (1.0 / sample_rate));
    (0..=n_fft / 2).map(move |k| k as f64 * spacing)
}

/// What the filter bank is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MelSpec {
    pub sample_rate: f64,
    pub n_fft: usize,
    pub n_mels: usize,
    pub fmin: f64,
    pub fmax: f64,
    pub scale: MelScale,
    pub norm: MelNorm,
}

/// A mel filter bank with each band stored as (first bin, weights).
#[derive(Debug, Clone)]
pub(crate) struct MelFilterBank {
    /// First FFT bin of each band.
    starts: Vec<usize>,
    /// Offsets of each band's weights in `weights`; `n_mels + 1` entries.
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl MelFilterBank {
    pub(crate) fn new(spec: &MelSpec) -> Self {
        let freqs: Vec<f64> = fft_frequencies(spec.sample_rate, spec.n_fft).collect();
        let mel_f = mel_frequencies(spec.n_mels + 2, spec.fmin, spec.fmax, spec.scale);
        let mut starts = Vec::with_capacity(spec.n_mels);
        let mut offsets = Vec::with_capacity(spec.n_mels + 1);
        let mut weights = Vec::new();
        let mut row = vec![0f32; freqs.len()];
        offsets.push(0);
        for band in 0..spec.n_mels {
            let (left, centre, right) = (mel_f[band], mel_f[band + 1], mel_f[band + 2]);
            let enorm = 2.0 / (right - left);
            // The triangle is zero at and outside (left, right): only bins inside are computed
            // and searched (all of them for a degenerate band); `row` is zero elsewhere.
            let support = if left < centre && centre < right {
                freqs.partition_point(|&f| f <= left)..freqs.partition_point(|&f| f < right)
            } else {
                0..freqs.len()
            };
            let inside = &mut row[support.clone()];
            for (w, &f) in inside.iter_mut().zip(&freqs[support.clone()]) {
                let lower = -(left - f) / (centre - left);
                let upper = (right - f) / (right - centre);
                // librosa stores the triangle as float32, then scales it in float64.
                let triangle = 0f64.max(lower.min(upper)) as f32;
                *w = match spec.norm {
                    MelNorm::Slaney => (f64::from(triangle) * enorm) as f32,
                    MelNorm::Off => triangle,
                };
            }
            let first = inside.iter().position(|&w| w != 0.0);
            let last = inside.iter().rposition(|&w| w != 0.0);
            let (start, end) = match (first, last) {
                (Some(first), Some(last)) => {
                    pad_to_lanes(support.start + first, support.start + last + 1, row.len())
                }
                _ => (0, 0),
            };
            starts.push(start);
            weights.extend_from_slice(&row[start..end]);
            offsets.push(weights.len());
            row[support].fill(0.0);
        }
        Self {
            starts,
            offsets,
            weights,
        }
    }

    pub(crate) fn n_mels(&self) -> usize {
        self.starts.len()
    }

    /// Band `band` as (first bin, weights).
    pub(crate) fn band(&self, band: usize) -> (usize, &[f32]) {
        (
            self.starts[band],
            &self.weights[self.offsets[band]..self.offsets[band + 1]],
        )
    }

    /// Mel energies of one power spectrum: `out[m] = sum_k weights[m][k] * power[k]`.
    #[cfg(test)]
    pub(crate) fn apply(&self, power: &[f32], out: &mut [f32]) {
        self.apply_block(power, power.len(), out, 1, 0);
    }

    /// Mel energies of consecutive frames, written band-major: `power` holds the frames'
    /// spectra one after the other (`bins` each); the energy of band `m` in the `j`-th frame
    /// goes to `out[m * stride + first + j]`. Frames go through four at a time, sharing each
    /// weight load; every frame gets the same rounding either way.
    pub(crate) fn apply_block(
        &self,
        power: &[f32],
        bins: usize,
        out: &mut [f32],
        stride: usize,
        first: usize,
    ) {
        let mut quads = power.chunks_exact(4 * bins);
        let mut column = first;
        for quad in &mut quads {
            self.apply_frames::<4>(quad, bins, out, stride, column);
            column += 4;
        }
        for single in quads.remainder().chunks_exact(bins) {
            self.apply_frames::<1>(single, bins, out, stride, column);
            column += 1;
        }
    }

    /// `apply_block` for exactly `N` frames.
    #[inline(always)]
    fn apply_frames<const N: usize>(
        &self,
        power: &[f32],
        bins: usize,
        out: &mut [f32],
        stride: usize,
        column: usize,
    ) {
        for (band, row) in out.chunks_exact_mut(stride).enumerate() {
            let (start, weights) = self.band(band);
            let len = weights.len();
            let spectra: [&[f32]; N] =
                std::array::from_fn(|f| &power[f * bins + start..f * bins + start + len]);
            let mut lanes = [[0f32; LANES]; N];
            let whole = len - len % LANES;
            for k in (0..whole).step_by(LANES) {
                let w = lanes_at(weights, k);
                for (lane, spectrum) in lanes.iter_mut().zip(&spectra) {
                    let p = lanes_at(spectrum, k);
                    *lane = std::array::from_fn(|i| lane[i] + w[i] * p[i]);
                }
            }
            for ((o, lane), spectrum) in
                row[column..column + N].iter_mut().zip(&lanes).zip(&spectra)
            {
                let tail: f32 = weights[whole..]
                    .iter()
                    .zip(&spectrum[whole..])
                    .map(|(w, p)| w * p)
                    .sum();
                *o = (lane[0] + lane[2]) + (lane[1] + lane[3]) + tail;
            }
        }
    }
}

/// `LANES` values of `values` from `at` (zeros past the end, which callers never reach).
#[inline(always)]
fn lanes_at(values: &[f32], at: usize) -> [f32; LANES] {
    values
        .get(at..at + LANES)
        .and_then(|v| <[f32; LANES]>::try_from(v).ok())
        .unwrap_or([0.0; LANES])
}

/// Lanes of the dot products (SSE2 holds four `f32`).
const LANES: usize = 4;

/// Widens the bin range `start..end` with zero weights to a multiple of `LANES` bins where the
/// spectrum has room, so the dot products run without a scalar tail.
fn pad_to_lanes(start: usize, end: usize, bins: usize) -> (usize, usize) {
    let padded = (end - start).next_multiple_of(LANES);
    if padded > bins {
        return (start, end);
    }
    let start = start.min(bins - padded);
    (start, start + padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scale: MelScale, norm: MelNorm) -> MelSpec {
        MelSpec {
            sample_rate: 22_050.0,
            n_fft: 2048,
            n_mels: 128,
            fmin: 0.0,
            fmax: 11_025.0,
            scale,
            norm,
        }
    }

    #[test]
    fn mel_scales_round_trip() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 440.0, 999.9, 1000.0, 4321.0, 24_000.0] {
                let back = mel_to_hz(hz_to_mel(hz, scale), scale);
                assert!(
                    (back - hz).abs() < 1e-9 * hz.max(1.0),
                    "{scale:?} {hz} -> {back}"
                );
            }
        }
        assert!((hz_to_mel(1000.0, MelScale::Slaney) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn unnormalised_triangles_peak_at_most_one_and_tile_the_spectrum() {
        let bank = MelFilterBank::new(&spec(MelScale::Htk, MelNorm::Off));
        assert_eq!(bank.n_mels(), 128);
        for band in 0..bank.n_mels() {
            let (_, weights) = bank.band(band);
            assert!(
                weights.iter().all(|&w| (0.0..=1.0).contains(&w)),
                "band {band}"
            );
        }
        // Between the centres of the first and last band, neighbouring triangles sum to one.
        let mut total = vec![0f32; 1025];
        for band in 0..bank.n_mels() {
            let (start, weights) = bank.band(band);
            for (k, w) in weights.iter().enumerate() {
                total[start + k] += w;
            }
        }
        for (k, t) in total.iter().enumerate().take(1000).skip(40) {
            assert!((t - 1.0).abs() < 1e-5, "bin {k}: {t}");
        }
    }

    #[test]
    fn slaney_norm_divides_by_the_band_width() {
        let plain = MelFilterBank::new(&spec(MelScale::Slaney, MelNorm::Off));
        let normed = MelFilterBank::new(&spec(MelScale::Slaney, MelNorm::Slaney));
        let mel_f = mel_frequencies(130, 0.0, 11_025.0, MelScale::Slaney);
        for band in [0, 50, 127] {
            let (start_a, a) = plain.band(band);
            let (start_b, b) = normed.band(band);
            assert_eq!(start_a, start_b);
            let enorm = 2.0 / (mel_f[band + 2] - mel_f[band]);
            for (x, y) in a.iter().zip(b) {
                assert!((f64::from(*x) * enorm - f64::from(*y)).abs() <= 1e-7 * f64::from(*y));
            }
        }
    }

    #[test]
    fn sparse_apply_equals_dense_sum() {
        let bank = MelFilterBank::new(&spec(MelScale::Slaney, MelNorm::Slaney));
        let power: Vec<f32> = (0..1025).map(|k| ((k * 37 % 101) as f32).powi(2)).collect();
        let mut out = vec![0f32; 128];
        bank.apply(&power, &mut out);
        for (band, o) in out.iter().enumerate() {
            let (start, weights) = bank.band(band);
            let dense: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, w)| f64::from(*w) * f64::from(power[start + k]))
                .sum();
            assert!(
                (f64::from(*o) - dense).abs() <= 1e-5 * dense.max(1e-30),
                "band {band}"
            );
        }
    }

    #[test]
    fn weights_equal_librosas_formula_at_every_bin() {
        let specs = [
            spec(MelScale::Slaney, MelNorm::Slaney),
            spec(MelScale::Htk, MelNorm::Off),
            MelSpec {
                sample_rate: 16_000.0,
                n_fft: 400,
                n_mels: 80,
                fmin: 20.0,
                fmax: 7_600.0,
                ..spec(MelScale::Htk, MelNorm::Slaney)
            },
        ];
        for spec in specs {
            let bank = MelFilterBank::new(&spec);
            let freqs: Vec<f64> = fft_frequencies(spec.sample_rate, spec.n_fft).collect();
            let mel_f = mel_frequencies(spec.n_mels + 2, spec.fmin, spec.fmax, spec.scale);
            for band in 0..spec.n_mels {
                let (left, centre, right) = (mel_f[band], mel_f[band + 1], mel_f[band + 2]);
                let (start, weights) = bank.band(band);
                for (k, &f) in freqs.iter().enumerate() {
                    let lower = -(left - f) / (centre - left);
                    let upper = (right - f) / (right - centre);
                    let triangle = 0f64.max(lower.min(upper)) as f32;
                    let want = match spec.norm {
                        MelNorm::Slaney => (f64::from(triangle) * (2.0 / (right - left))) as f32,
                        MelNorm::Off => triangle,
                    };
                    let got = k
                        .checked_sub(start)
                        .and_then(|i| weights.get(i))
                        .copied()
                        .unwrap_or(0.0);
                    assert_eq!(got, want, "{spec:?} band {band} bin {k}");
                }
            }
        }
    }
}

//! The analysis window: periodic Hann of `win_length`, centred in `n_fft` with zeros.

use std::f64::consts::PI;

/// librosa's `pad_center(get_window('hann', win_length, fftbins=True), size=n_fft)`.
///
/// Callers guarantee `1 <= win_length <= n_fft` (checked by `FeatureParams::validate`).
pub(crate) fn padded_hann(win_length: usize, n_fft: usize) -> Vec<f64> {
    let mut window = vec![0.0; n_fft];
    let offset = (n_fft - win_length) / 2;
    let period = win_length as f64;
    for (n, w) in window[offset..offset + win_length].iter_mut().enumerate() {
        *w = 0.5 - 0.5 * (2.0 * PI * n as f64 / period).cos();
    }
    window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_hann_starts_at_zero_and_peaks_mid_window() {
        let w = padded_hann(8, 8);
        assert_eq!(w[0], 0.0);
        assert!((w[4] - 1.0).abs() < 1e-15);
        // Periodic, not symmetric: w[n] == w[N - n] for n in 1..N.
        for n in 1..8 {
            assert!((w[n] - w[8 - n]).abs() < 1e-15, "n={n}");
        }
    }

    #[test]
    fn short_window_is_centred_with_zero_padding() {
        let w = padded_hann(4, 10);
        assert_eq!(&w[..3], &[0.0, 0.0, 0.0]);
        assert_eq!(&w[7..], &[0.0, 0.0, 0.0]);
        assert!((w[5] - 1.0).abs() < 1e-15);
    }
}

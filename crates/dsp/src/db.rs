//! Power to decibels (`librosa.power_to_db` with `ref=1.0`, `amin=1e-10`), with a log that the
//! compiler can vectorise.

/// `10 * log10(amin)` for librosa's `amin = 1e-10`: the floor of every dB value.
pub(crate) const AMIN_DB: f32 = -100.0;

const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
/// ln(2) split so that `e * LN2_HI` is exact for any f32 exponent `e`.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 10 / ln(10): natural log to decibels.
const DB_PER_NEPER: f32 = 4.342_944_8;

/// `10 * log10(x)` for a positive normal `x`, accurate to a few f32 ulps.
///
/// Splits `x = 2^e * m` with `m` in `[sqrt(1/2), sqrt(2))` and sums the series of
/// `ln(m) = 2 atanh((m - 1) / (m + 1))` to the 9th power (truncation error below 4e-9).
/// Branch-free integer and float steps only, so loops over slices become SIMD code.
#[inline(always)]
fn db_of_normal(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = (bits.wrapping_sub(SQRT_HALF_BITS) as i32) >> 23;
    let m = f32::from_bits(bits.wrapping_sub((exponent as u32) << 23));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    let e = exponent as f32;
    let ln = e * LN2_HI + (e * LN2_LO + 2.0 * s * series);
    ln * DB_PER_NEPER
}

/// Replaces each power `p * gain^2` by `10 * log10(max(amin, p))`, where `offset_db` is
/// `-20 * log10(gain)`; returns the maximum.
///
/// `gain` scales loud signals into range before the FFT (it is 1 for any signal within
/// [-1, 1]); the amin floor is applied in dB so that it still means `p < 1e-10` however small
/// the scaled power became.
pub(crate) fn to_db(values: &mut [f32], offset_db: f32) -> f32 {
    for v in values.iter_mut() {
        *v = (db_of_normal(v.max(f32::MIN_POSITIVE)) + offset_db).max(AMIN_DB);
    }
    max(values)
}

/// The largest value (NaN-free input), with independent lanes so the loop vectorises.
pub(crate) fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// `max(value, floor)` for every value: the `top_db` clamp.
pub(crate) fn clamp_below(values: &mut [f32], floor: f32) {
    for v in values.iter_mut() {
        *v = v.max(floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_db_matches_f64_log10_across_the_range() {
        let mut worst = 0f64;
        let mut x = f32::MIN_POSITIVE;
        while x < 1e30 {
            for y in [x, x * 1.000_001, x * std::f32::consts::SQRT_2, x * 1.7] {
                let exact = 10.0 * f64::from(y).log10();
                // A few f32 ulps of the result (values near 300 dB have ulps of 3e-5).
                let error = (f64::from(db_of_normal(y)) - exact).abs() / (exact.abs() + 10.0);
                worst = worst.max(error);
            }
            x *= 1.37;
        }
        assert!(worst < 2.5e-7, "worst relative dB error {worst}");
    }

    #[test]
    fn amin_floor_and_maximum() {
        let mut values = [0.0, 1e-12, 1e-10, 1.0, 1e4];
        let max = to_db(&mut values, 0.0);
        assert_eq!(values[0], AMIN_DB);
        assert_eq!(values[1], AMIN_DB);
        assert!((values[2] + 100.0).abs() < 1e-4);
        assert!(values[3].abs() < 1e-6);
        assert!((max - 40.0).abs() < 1e-4);
    }

    #[test]
    fn offset_shifts_values_above_the_floor_only() {
        let mut values = [1e-4, 1e-20];
        to_db(&mut values, 60.0);
        assert!((values[0] - 20.0).abs() < 1e-4);
        // 1e-20 * 10^6 is still below amin: floored.
        assert_eq!(values[1], AMIN_DB);
    }

    #[test]
    fn clamp_raises_values_below_the_floor() {
        let mut values = [-100.0, -10.0, 5.0];
        clamp_below(&mut values, -20.0);
        assert_eq!(values, [-20.0, -10.0, 5.0]);
    }
}

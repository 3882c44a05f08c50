//! The orthonormal DCT-II (scipy `dct(type=2, norm='ortho')`) truncated to `n_mfcc` rows, with
//! librosa's lifter folded into the rows, applied to many frames at once.

use std::f64::consts::PI;

/// Output rows and columns computed together, in registers (4 × 8 `f32` accumulators).
const TILE_ROWS: usize = 4;
const TILE_COLUMNS: usize = 8;

/// An `n_out × n_in` DCT matrix in `f32`, stored in tiles of `TILE_ROWS` rows: for each tile
/// and input `m`, the tile's coefficients for `m` side by side (rows past `n_out` are zero).
#[derive(Debug, Clone)]
pub(crate) struct DctMatrix {
    n_in: usize,
    n_out: usize,
    tiles: Vec<[f32; TILE_ROWS]>,
    /// Row 0's response to a constant input of 1: `sqrt(n_in)` times its lifter factor.
    dc_gain: f64,
    /// Per-column means of the current block.
    means: Vec<f64>,
    /// The largest lifter factor of any row (1 without a lifter).
    max_gain: f64,
}

impl DctMatrix {
    /// The first `n_out` DCT-II basis rows over `n_in` inputs, each row `k` multiplied by
    /// `1 + lifter / 2 * sin(pi * (k + 1) / lifter)` when `lifter > 0`.
    pub(crate) fn new(n_in: usize, n_out: usize, lifter: f64) -> Self {
        let n = n_in as f64;
        let lift = |k: usize| {
            if lifter > 0.0 {
                1.0 + lifter / 2.0 * (PI * (k + 1) as f64 / lifter).sin()
            } else {
                1.0
            }
        };
        let mut rows = Vec::with_capacity(n_in * n_out);
        for k in 0..n_out.next_multiple_of(TILE_ROWS) {
            let scale = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            rows.extend((0..n_in).map(|i| {
                if k >= n_out {
                    return 0.0;
                }
                (lift(k) * scale * (PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n)).cos()) as f32
            }));
        }
        let tiles = rows
            .chunks_exact(TILE_ROWS * n_in)
            .flat_map(|tile| (0..n_in).map(move |m| std::array::from_fn(|r| tile[r * n_in + m])))
            .collect();
        Self {
            n_in,
            n_out,
            tiles,
            dc_gain: n.sqrt() * lift(0),
            means: Vec::new(),
            max_gain: (0..n_out).map(|k| lift(k).abs()).fold(1.0, f64::max),
        }
    }

    /// The largest factor by which the lifter scales a row (1 without a lifter).
    pub(crate) fn max_gain(&self) -> f64 {
        self.max_gain
    }

    /// `output = self × input` for a band-major input of `n_in` rows and `output` of `n_out`
    /// rows; both have `stride` columns per row, of which `columns` are processed, starting at
    /// column `first`. `columns` is small (a block of frames), so a block stays in cache.
    ///
    /// Each column's mean (summed in `f64`) is taken out first and added back to row 0 exactly:
    /// dB columns sit far from zero (-100 for silence), and summing them directly in `f32`
    /// would add up rounding errors past 1e-3. The input columns are left holding deviations.
    pub(crate) fn apply_block(
        &mut self,
        input: &mut [f32],
        output: &mut [f32],
        stride: usize,
        first: usize,
        columns: usize,
    ) {
        let span = first..first + columns;
        self.means.clear();
        self.means.resize(columns, 0.0);
        for row in input.chunks_exact(stride) {
            for (sum, &x) in self.means.iter_mut().zip(&row[span.clone()]) {
                *sum += f64::from(x);
            }
        }
        let n = self.n_in as f64;
        for mean in &mut self.means {
            *mean = f64::from((*mean / n) as f32);
        }
        for row in input.chunks_exact_mut(stride) {
            for (x, &mean) in row[span.clone()].iter_mut().zip(&self.means) {
                *x -= mean as f32;
            }
        }
        for column in span.clone().step_by(TILE_COLUMNS) {
            let width = TILE_COLUMNS.min(span.end - column);
            for (tile_index, tile) in self.tiles.chunks_exact(self.n_in).enumerate() {
                let acc = if width == TILE_COLUMNS {
                    tile_product(
                        tile,
                        input.chunks_exact(stride).map(|row| {
                            <&[f32; TILE_COLUMNS]>::try_from(&row[column..column + TILE_COLUMNS])
                                .map_or([0.0; TILE_COLUMNS], |x| *x)
                        }),
                    )
                } else {
                    tile_product(
                        tile,
                        input.chunks_exact(stride).map(|row| {
                            let mut x = [0f32; TILE_COLUMNS];
                            x[..width].copy_from_slice(&row[column..column + width]);
                            x
                        }),
                    )
                };
                let first_row = tile_index * TILE_ROWS;
                for (acc_row, out_row) in acc
                    .iter()
                    .zip(output.chunks_exact_mut(stride).skip(first_row))
                    .take(self.n_out - first_row.min(self.n_out))
                {
                    out_row[column..column + width].copy_from_slice(&acc_row[..width]);
                }
            }
        }
        if let Some(row0) = output.chunks_exact_mut(stride).next() {
            for (o, &mean) in row0[span].iter_mut().zip(&self.means) {
                *o = (f64::from(*o) + self.dc_gain * mean) as f32;
            }
        }
    }
}

/// One register tile: `TILE_ROWS` output rows × `TILE_COLUMNS` columns, summed over inputs.
#[inline(always)]
fn tile_product(
    tile: &[[f32; TILE_ROWS]],
    columns: impl Iterator<Item = [f32; TILE_COLUMNS]>,
) -> [[f32; TILE_COLUMNS]; TILE_ROWS] {
    let mut acc = [[0f32; TILE_COLUMNS]; TILE_ROWS];
    for (coeffs, x) in tile.iter().zip(columns) {
        for (acc_row, &c) in acc.iter_mut().zip(coeffs) {
            for (a, &v) in acc_row.iter_mut().zip(&x) {
                *a += c * v;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy's definition, straight from its documentation formula.
    fn reference(x: &[f64], k: usize) -> f64 {
        let n = x.len() as f64;
        let sum: f64 = x
            .iter()
            .enumerate()
            .map(|(i, v)| v * (PI * k as f64 * (2.0 * i as f64 + 1.0) / (2.0 * n)).cos())
            .sum();
        let f = if k == 0 {
            (1.0 / (4.0 * n)).sqrt()
        } else {
            (1.0 / (2.0 * n)).sqrt()
        };
        2.0 * f * sum
    }

    #[test]
    fn matches_the_orthonormal_dct_ii_on_each_column() {
        let (n_in, n_out, frames) = (12, 5, 3);
        let input: Vec<f32> = (0..n_in * frames)
            .map(|i| ((i * 31) % 17) as f32 - 8.0)
            .collect();
        let mut output = vec![f32::NAN; n_out * frames];
        DctMatrix::new(n_in, n_out, 0.0).apply_block(
            &mut input.clone(),
            &mut output,
            frames,
            0,
            frames,
        );
        for t in 0..frames {
            let column: Vec<f64> = (0..n_in)
                .map(|m| f64::from(input[m * frames + t]))
                .collect();
            for k in 0..n_out {
                let want = reference(&column, k);
                assert!(
                    (f64::from(output[k * frames + t]) - want).abs() < 1e-4,
                    "k {k} t {t}"
                );
            }
        }
    }

    #[test]
    fn constant_columns_stay_exact() {
        // 128 bands of silence: librosa's c0 is -100 * sqrt(128), every other row 0.
        let mut input = vec![-100f32; 128 * 3];
        let mut output = vec![0f32; 20 * 3];
        DctMatrix::new(128, 20, 0.0).apply_block(&mut input, &mut output, 3, 0, 3);
        let c0 = -100.0 * 128f64.sqrt();
        for &c in &output[..3] {
            assert!((f64::from(c) - c0).abs() < 1e-4, "c0 {c}");
        }
        assert!(output[3..].iter().all(|&c| c.abs() < 1e-4));
    }

    #[test]
    fn lifter_scales_each_row() {
        let input = vec![1.0f32, -2.0, 0.5, 3.0];
        let mut plain = vec![0f32; 4];
        let mut lifted = vec![0f32; 4];
        DctMatrix::new(4, 4, 0.0).apply_block(&mut input.clone(), &mut plain, 1, 0, 1);
        DctMatrix::new(4, 4, 22.0).apply_block(&mut input.clone(), &mut lifted, 1, 0, 1);
        for k in 0..4 {
            let lift = 1.0 + 11.0 * (PI * (k + 1) as f64 / 22.0).sin();
            assert!(
                (f64::from(lifted[k]) - lift * f64::from(plain[k])).abs() < 1e-5,
                "k {k}"
            );
        }
    }

    #[test]
    fn a_block_touches_only_its_columns() {
        let mut input = vec![1f32; 4 * 6];
        let mut output = vec![7f32; 2 * 6];
        DctMatrix::new(4, 2, 0.0).apply_block(&mut input, &mut output, 6, 2, 3);
        assert_eq!(&output[..2], &[7.0, 7.0]);
        assert_eq!(output[5], 7.0);
        assert!((output[2] - 2.0).abs() < 1e-6); // sqrt(1/4) * 4
        assert!(output[8].abs() < 1e-6);
    }
}

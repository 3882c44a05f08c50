//! Finds the frames whose `f32` spectrum is not accurate enough, so they can be redone in `f64`.
//!
//! An `f32` FFT's error is relative to the frame's energy, so a mel band's dB error grows with
//! its *depth*: how far its energy per unit of filter weight lies below the frame's total
//! energy. Measured on sines, clipped sines and chirps at 512–4096-point FFTs, the error stays
//! below `2e-7 * 10^(depth / 20)` dB (about 2e-4 dB at 60 dB deep, 0.2 dB at 120). A frame is
//! redone when any band that can survive the `top_db` clamp is deeper than the limit for the
//! error budget, which shrinks with the lifter's largest gain.

use crate::mel::MelFilterBank;

/// Measured bound of an `f32` band's dB error at depth 0 (see the module docs).
const ERROR_AT_ZERO_DEPTH_DB: f64 = 2e-7;
/// The largest dB error allowed in any band before liftering.
const BAND_ERROR_BUDGET_DB: f64 = 2e-4;
/// Bands this close below the clamp floor may be above it in exact arithmetic.
const FLOOR_MARGIN_DB: f32 = 1.0;

pub(crate) struct DepthGuard {
    /// `10 log10(sum of band weights)` per band (-inf for an empty band).
    band_weight_db: Vec<f32>,
    /// Deepest band an `f32` frame may have above the floor.
    max_depth_db: f32,
    /// `10 log10(frame energy)` of each frame of the current signal.
    energy_db: Vec<f32>,
    risky: Vec<bool>,
}

impl DepthGuard {
    /// `max_gain` is the largest factor the output applies to a band's error (the lifter).
    pub(crate) fn new(mel: &MelFilterBank, max_gain: f64) -> Self {
        let band_weight_db = (0..mel.n_mels())
            .map(|band| {
                let weight: f64 = mel.band(band).1.iter().map(|&w| f64::from(w)).sum();
                (10.0 * weight.log10()) as f32
            })
            .collect();
        let budget = BAND_ERROR_BUDGET_DB / max_gain.max(1.0);
        Self {
            band_weight_db,
            max_depth_db: (20.0 * (budget / ERROR_AT_ZERO_DEPTH_DB).log10()) as f32,
            energy_db: Vec::new(),
            risky: Vec::new(),
        }
    }

    pub(crate) fn start(&mut self, frames: usize) {
        self.energy_db.clear();
        self.energy_db.resize(frames, 0.0);
    }

    /// Notes the energy of frame `t` from its power spectrum (in the same dB units, including
    /// `offset_db`, as the band values).
    pub(crate) fn record(&mut self, t: usize, power: &[f32], offset_db: f32) {
        let mut lanes = [0f32; 8];
        let mut chunks = power.chunks_exact(8);
        for chunk in &mut chunks {
            for (lane, &p) in lanes.iter_mut().zip(chunk) {
                *lane += p;
            }
        }
        let energy = lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
        self.energy_db[t] = 10.0 * energy.max(f32::MIN_POSITIVE).log10() + offset_db;
    }

    /// Which frames in `columns` of `log_mel` (band-major, unclamped dB, `frames` columns)
    /// have a band above `floor_db` that is too deep for `f32` (one flag per column).
    pub(crate) fn risky_frames(
        &mut self,
        log_mel: &[f32],
        frames: usize,
        floor_db: f32,
        columns: std::ops::Range<usize>,
    ) -> &[bool] {
        self.risky.clear();
        self.risky.resize(columns.len(), false);
        let low = floor_db - FLOOR_MARGIN_DB;
        let energy = &self.energy_db[columns.clone()];
        for (row, &weight_db) in log_mel.chunks_exact(frames).zip(&self.band_weight_db) {
            let depth_limit = weight_db - self.max_depth_db;
            for ((risky, &db), &energy_db) in
                self.risky.iter_mut().zip(&row[columns.clone()]).zip(energy)
            {
                *risky |= (db > low) & (db < energy_db + depth_limit);
            }
        }
        &self.risky
    }
}

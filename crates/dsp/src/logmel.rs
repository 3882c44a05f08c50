//! Signal → log-mel matrix (band-major, clamped dB): the part shared by MFCC and log-mel.

use zeroize::Zeroize;

use crate::db;
use crate::guard::DepthGuard;
use crate::mel::MelFilterBank;
use crate::params::Precision;
use crate::source::{Encoding, Samples};
use crate::stft::{Excerpt, Framing, Stft};

/// Frames processed together: their mel energies are converted to dB while they are still in
/// cache.
const BLOCK_FRAMES: usize = 16;
/// Frames whose power spectra go through the mel filter bank together.
const MEL_FRAMES: usize = 4;
/// Columns finished (refined, clamped, handed on to the DCT) together: 128 bands of them
/// fit in L1/L2, so the whole second pass reads the matrix from memory once.
const FINISH_FRAMES: usize = 64;

/// How a signal is brought into range: loud input (peak above 1) is scaled down by a power of
/// two before the FFT and its dB values shifted back, so any finite input gives finite output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headroom {
    gain: f32,
    offset_db: f32,
}

impl Headroom {
    pub(crate) fn for_peak(peak: f32) -> Self {
        if peak <= 1.0 {
            return Self {
                gain: 1.0,
                offset_db: 0.0,
            };
        }
        let shift = f64::from(peak).log2().ceil();
        Self {
            gain: (-shift).exp2() as f32,
            offset_db: (20.0 * shift * 2f64.log10()) as f32,
        }
    }
}

/// STFT, mel filter bank and the per-block buffers.
pub(crate) struct LogMelFrontend {
    stft: Stft,
    /// With an `f32` STFT: the `f64` STFT and guard that redo frames `f32` cannot get right.
    refine: Option<(Stft, DepthGuard)>,
    mel: MelFilterBank,
    top_db: Option<f32>,
    /// The power spectra of up to `MEL_FRAMES` frames, one after the other.
    power: Vec<f32>,
    /// Mel energies, then dB, of one frame that is redone in `f64`.
    column: Vec<f32>,
    /// The samples of the frames in hand, converted to `f32` (unless they are already).
    samples: Vec<f32>,
}

impl LogMelFrontend {
    /// `max_gain`: the largest factor later stages apply to a band's error (the lifter's).
    pub(crate) fn new(
        framing: Framing,
        window: &[f64],
        mel: MelFilterBank,
        top_db: Option<f64>,
        max_gain: f64,
    ) -> Self {
        let (stft, refine) = match top_db {
            Some(_) => (
                Stft::new(framing, window, Precision::Single),
                Some((
                    Stft::new(framing, window, Precision::Double),
                    DepthGuard::new(&mel, max_gain),
                )),
            ),
            None => (Stft::new(framing, window, Precision::Double), None),
        };
        Self {
            power: vec![0.0; MEL_FRAMES * stft.bins()],
            column: vec![0.0; mel.n_mels()],
            samples: Vec::new(),
            stft,
            refine,
            mel,
            top_db: top_db.map(|db| db as f32),
        }
    }

    pub(crate) fn n_mels(&self) -> usize {
        self.mel.n_mels()
    }

    pub(crate) fn frame_count(&self, samples: usize) -> Option<usize> {
        self.stft.framing().frame_count(samples)
    }

    /// Writes the log-mel matrix of `signal` (`n_mels × frames`, row-major) to `out`.
    /// `frames` is `frame_count(signal.len())`; `out` is `n_mels * frames` long.
    ///
    /// The `top_db` floor is known only once every frame is in, so a second pass finishes the
    /// matrix (refines risky frames, clamps) `FINISH_FRAMES` columns at a time and hands each
    /// finished block to `finished(out, first, count)` while it is still in cache.
    pub(crate) fn compute<E: Encoding>(
        &mut self,
        signal: Samples<'_, E>,
        headroom: Headroom,
        frames: usize,
        out: &mut [f32],
        mut finished: impl FnMut(&mut [f32], usize, usize),
    ) {
        let bins = self.stft.bins();
        self.stft.set_gain(headroom.gain);
        if let Some((stft, guard)) = &mut self.refine {
            stft.set_gain(headroom.gain);
            guard.start(frames);
        }
        let framing = self.stft.framing();
        let mut max_db = f32::NEG_INFINITY;
        for first in (0..frames).step_by(BLOCK_FRAMES) {
            let count = BLOCK_FRAMES.min(frames - first);
            // Each sample is converted once per block, not once per frame that reads it.
            let range = framing.samples_for(first..first + count, signal.len());
            let excerpt = Excerpt {
                origin: range.start,
                samples: signal.to_f32(range, &mut self.samples),
                len: signal.len(),
            };
            for group in (first..first + count).step_by(MEL_FRAMES) {
                let spectra = &mut self.power[..MEL_FRAMES.min(first + count - group) * bins];
                for (t, power) in (group..).zip(spectra.chunks_exact_mut(bins)) {
                    self.stft.power_frame(excerpt, t, power);
                    if let Some((_, guard)) = &mut self.refine {
                        guard.record(t, power, headroom.offset_db);
                    }
                }
                self.mel.apply_block(spectra, bins, out, frames, group);
            }
            // The block's columns are still in cache: convert them to dB now.
            for row in out.chunks_exact_mut(frames) {
                max_db = max_db.max(db::to_db(
                    &mut row[first..first + count],
                    headroom.offset_db,
                ));
            }
        }
        let floor = self.top_db.map(|top_db| max_db - top_db);
        for first in (0..frames).step_by(FINISH_FRAMES) {
            let count = FINISH_FRAMES.min(frames - first);
            if let Some(floor) = floor {
                self.refine_block(signal, headroom, out, frames, floor, first..first + count);
                for row in out.chunks_exact_mut(frames) {
                    db::clamp_below(&mut row[first..first + count], floor);
                }
            }
            finished(out, first, count);
        }
        self.wipe();
    }

    /// Zeroes every buffer that held part of the signal or its spectra.
    fn wipe(&mut self) {
        self.stft.wipe();
        if let Some((stft, _)) = &mut self.refine {
            stft.wipe();
        }
        self.power.fill(0.0);
        self.column.fill(0.0);
        // Its capacity may hold an earlier, longer block: zeroize clears all of it.
        self.samples.zeroize();
    }

    /// Recomputes in `f64` the frames in `columns` that the guard finds too deep for `f32`.
    fn refine_block<E: Encoding>(
        &mut self,
        signal: Samples<'_, E>,
        headroom: Headroom,
        out: &mut [f32],
        frames: usize,
        floor: f32,
        columns: std::ops::Range<usize>,
    ) {
        let bins = self.stft.bins();
        let Some((stft, guard)) = &mut self.refine else {
            return;
        };
        let first = columns.start;
        for (offset, _) in guard
            .risky_frames(out, frames, floor, columns)
            .iter()
            .enumerate()
            .filter(|(_, risky)| **risky)
        {
            let t = first + offset;
            let range = stft.framing().samples_for(t..t + 1, signal.len());
            let excerpt = Excerpt {
                origin: range.start,
                samples: signal.to_f32(range, &mut self.samples),
                len: signal.len(),
            };
            let power = &mut self.power[..bins];
            stft.power_frame(excerpt, t, power);
            self.mel.apply_block(power, bins, &mut self.column, 1, 0);
            db::to_db(&mut self.column, headroom.offset_db);
            for (row, &db) in out.chunks_exact_mut(frames).zip(self.column.iter()) {
                row[t] = db;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Float;

    #[test]
    fn quiet_signals_are_left_alone() {
        let headroom = Headroom::for_peak(1.0);
        assert_eq!((headroom.gain, headroom.offset_db), (1.0, 0.0));
    }

    #[test]
    fn loud_signals_are_scaled_into_range_by_a_power_of_two() {
        let headroom = Headroom::for_peak(3.0);
        assert_eq!(headroom.gain, 0.25);
        assert!((headroom.offset_db - 12.041_2).abs() < 1e-3);
        let max = Headroom::for_peak(f32::MAX);
        assert!(max.gain > 0.0 && f32::MAX * max.gain <= 1.0);
    }

    fn frontend(stft: Precision, refine: bool) -> LogMelFrontend {
        let framing = Framing {
            n_fft: 2048,
            hop_length: 512,
            center: true,
        };
        let window = crate::window::padded_hann(2048, 2048);
        let mel = || {
            MelFilterBank::new(&crate::mel::MelSpec {
                sample_rate: 16_000.0,
                n_fft: 2048,
                n_mels: 128,
                fmin: 0.0,
                fmax: 8_000.0,
                scale: crate::params::MelScale::Slaney,
                norm: crate::params::MelNorm::Slaney,
            })
        };
        let mut frontend = LogMelFrontend::new(framing, &window, mel(), Some(80.0), 1.0);
        frontend.stft = Stft::new(framing, &window, stft);
        if !refine {
            frontend.refine = None;
        }
        frontend
    }

    fn log_mel(frontend: &mut LogMelFrontend, signal: &[f32]) -> Vec<f32> {
        let frames = frontend.frame_count(signal.len()).expect("frames");
        let mut out = vec![0.0; 128 * frames];
        frontend.compute(
            Samples::<Float>::mono(signal),
            Headroom::for_peak(1.0),
            frames,
            &mut out,
            |_, _, _| {},
        );
        out
    }

    #[test]
    fn deep_bands_of_a_pure_tone_are_recomputed_in_double_precision() {
        // A softly clipped tone: harmonics at every depth down to the 80 dB floor.
        let signal: Vec<f32> = (0..16_000)
            .map(|n| {
                let x = 0.9 * (2.0 * std::f64::consts::PI * 1234.5 * f64::from(n) / 16e3).sin();
                (x.clamp(-0.6, 0.6) * 32768.0).round() as f32 / 32768.0
            })
            .collect();
        let exact = log_mel(&mut frontend(Precision::Double, false), &signal);
        let diff = |other: &[f32]| {
            other
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        let single_only = diff(&log_mel(&mut frontend(Precision::Single, false), &signal));
        let refined = diff(&log_mel(&mut frontend(Precision::Single, true), &signal));
        assert!(single_only > 1e-3, "f32 alone should miss: {single_only}");
        assert!(refined < 2e-4, "refined: {refined}");
    }
}

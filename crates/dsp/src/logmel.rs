//! Signal → log-mel matrix (band-major, clamped dB): the part shared by MFCC and log-mel.

use realfft::FftError;

use crate::db;
use crate::mel::MelFilterBank;
use crate::stft::Stft;

/// Frames processed together: their mel energies go through the log in one vectorised pass
/// and are written to the band-major output one cache line per band.
const BLOCK_FRAMES: usize = 16;

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
    mel: MelFilterBank,
    top_db: Option<f32>,
    /// One power spectrum.
    power: Vec<f32>,
    /// Mel energies, then dB, of up to `BLOCK_FRAMES` frames, frame-major.
    block: Vec<f32>,
}

impl LogMelFrontend {
    pub(crate) fn new(stft: Stft, mel: MelFilterBank, top_db: Option<f64>) -> Self {
        let power = vec![0.0; stft.bins()];
        let block = vec![0.0; BLOCK_FRAMES * mel.n_mels()];
        Self {
            stft,
            mel,
            top_db: top_db.map(|db| db as f32),
            power,
            block,
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
    pub(crate) fn compute(
        &mut self,
        signal: &[f32],
        headroom: Headroom,
        frames: usize,
        out: &mut [f32],
    ) -> Result<(), FftError> {
        let n_mels = self.n_mels();
        self.stft.set_gain(headroom.gain);
        let mut max_db = f32::NEG_INFINITY;
        for first in (0..frames).step_by(BLOCK_FRAMES) {
            let count = BLOCK_FRAMES.min(frames - first);
            let block = &mut self.block[..count * n_mels];
            for (t, mel) in (first..).zip(block.chunks_exact_mut(n_mels)) {
                self.stft.power_frame(signal, t, &mut self.power)?;
                self.mel.apply(&self.power, mel);
            }
            max_db = max_db.max(db::to_db(block, headroom.offset_db));
            for (band, row) in out.chunks_exact_mut(frames).enumerate() {
                for (o, mel) in row[first..first + count]
                    .iter_mut()
                    .zip(block.chunks_exact(n_mels))
                {
                    *o = mel[band];
                }
            }
        }
        if let Some(top_db) = self.top_db {
            db::clamp_below(out, max_db - top_db);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

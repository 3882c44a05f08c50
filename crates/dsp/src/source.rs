//! How samples are stored: an `f32` signal, or a WAV file's own data chunk (mono, or
//! interleaved channels averaged as they are read), converted a block of frames' worth at a
//! time as the STFT needs them (no decoded copy of a long file is made).
//!
//! Every encoding and the downmix give exactly the `f32` values `decode_wav` gives, so
//! features are the same bit for bit whichever way the samples arrive.

use std::ops::Range;

use zeroize::Zeroize;

/// A sample encoding: how one stored sample becomes the decoder's `f32`.
pub(crate) trait Encoding {
    /// One stored sample.
    type Raw: Copy;
    /// Integer PCM lies in [-1, 1] and is always finite: no scan of the signal is needed.
    const BOUNDED: bool;
    fn value(raw: Self::Raw) -> f32;
    /// The samples themselves when they are `f32` already.
    fn as_f32(_raw: &[Self::Raw]) -> Option<&[f32]> {
        None
    }
}

/// The mean of one frame's channels, summed in channel order in `f32` as numpy's `mean` does
/// for float32 data (`librosa.to_mono`).
#[inline(always)]
fn channel_mean(frame: impl Iterator<Item = f32>, channels: f32) -> f32 {
    frame.fold(0.0f32, |sum, x| sum + x) / channels
}

/// A mono signal as stored: its samples, or interleaved frames whose channels are averaged
/// as they are read. A trailing partial frame is ignored, as the decoder ignores it.
pub(crate) struct Samples<'a, E: Encoding> {
    raw: &'a [E::Raw],
    channels: usize,
}

impl<E: Encoding> Clone for Samples<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: Encoding> Copy for Samples<'_, E> {}

impl<'a, E: Encoding> Samples<'a, E> {
    pub(crate) fn mono(raw: &'a [E::Raw]) -> Self {
        Self { raw, channels: 1 }
    }

    pub(crate) fn interleaved(raw: &'a [E::Raw], channels: usize) -> Self {
        Self {
            raw,
            channels: channels.max(1),
        }
    }

    /// Mono samples (frames).
    pub(crate) fn len(self) -> usize {
        self.raw.len() / self.channels
    }

    /// Mono sample `index`.
    pub(crate) fn value(self, index: usize) -> f32 {
        self.to_f32(index..index + 1, &mut Vec::new())[0]
    }

    /// Mono samples `range` as `f32`: borrowed when they are mono `f32` already, else
    /// converted (and downmixed) into `scratch`.
    pub(crate) fn to_f32<'s>(self, range: Range<usize>, scratch: &'s mut Vec<f32>) -> &'s [f32]
    where
        'a: 's,
    {
        let c = self.channels;
        let raw = &self.raw[range.start * c..range.end * c];
        if c == 1
            && let Some(samples) = E::as_f32(raw)
        {
            return samples;
        }
        scratch.clear();
        match c {
            1 => scratch.extend(raw.iter().map(|&x| E::value(x))),
            // Stereo, the common case, in fixed-size frames the compiler vectorises.
            2 => scratch.extend(
                raw.as_chunks::<2>()
                    .0
                    .iter()
                    .map(|frame| channel_mean(frame.iter().map(|&x| E::value(x)), 2.0)),
            ),
            _ => scratch.extend(
                raw.chunks_exact(c)
                    .map(|frame| channel_mean(frame.iter().map(|&x| E::value(x)), c as f32)),
            ),
        }
        scratch
    }
}

/// An `f32` signal (decoded, downmixed, or from the caller).
pub(crate) struct Float;
/// WAV 32-bit float, little-endian.
pub(crate) struct FloatLe;
/// WAV 8-bit PCM: unsigned, centred on 128.
pub(crate) struct U8;
/// WAV 16-bit PCM, little-endian.
pub(crate) struct I16Le;
/// WAV 24-bit PCM, little-endian.
pub(crate) struct I24Le;
/// WAV 32-bit PCM, little-endian.
pub(crate) struct I32Le;

// libsndfile's factors for integer samples: 2^-(bits - 1).
const SCALE_8: f32 = 1.0 / 128.0;
const SCALE_16: f32 = 1.0 / 32_768.0;
const SCALE_24: f32 = 1.0 / 8_388_608.0;
const SCALE_32: f32 = 1.0 / 2_147_483_648.0;

impl Encoding for Float {
    type Raw = f32;
    const BOUNDED: bool = false;
    #[inline(always)]
    fn value(raw: f32) -> f32 {
        raw
    }
    fn as_f32(raw: &[f32]) -> Option<&[f32]> {
        Some(raw)
    }
}

impl Encoding for FloatLe {
    type Raw = [u8; 4];
    const BOUNDED: bool = false;
    #[inline(always)]
    fn value(raw: [u8; 4]) -> f32 {
        f32::from_le_bytes(raw)
    }
}

impl Encoding for U8 {
    type Raw = u8;
    const BOUNDED: bool = true;
    #[inline(always)]
    fn value(raw: u8) -> f32 {
        (i32::from(raw) - 128) as f32 * SCALE_8
    }
}

impl Encoding for I16Le {
    type Raw = [u8; 2];
    const BOUNDED: bool = true;
    #[inline(always)]
    fn value(raw: [u8; 2]) -> f32 {
        f32::from(i16::from_le_bytes(raw)) * SCALE_16
    }
}

impl Encoding for I24Le {
    type Raw = [u8; 3];
    const BOUNDED: bool = true;
    /// Sign-extends by placing the three bytes high in an `i32` and shifting back.
    #[inline(always)]
    fn value(b: [u8; 3]) -> f32 {
        (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * SCALE_24
    }
}

impl Encoding for I32Le {
    type Raw = [u8; 4];
    const BOUNDED: bool = true;
    /// Rounded to `f32` first, then scaled (as libsndfile does).
    #[inline(always)]
    fn value(raw: [u8; 4]) -> f32 {
        i32::from_le_bytes(raw) as f32 * SCALE_32
    }
}

/// The largest `|x|` of a signal, or the index of its first non-finite sample; `Ok(1.0)`
/// without a look for integer PCM, which cannot exceed 1.
pub(crate) fn finite_peak<E: Encoding>(signal: Samples<'_, E>) -> Result<f32, usize> {
    if E::BOUNDED {
        return Ok(1.0);
    }
    if signal.channels == 1 {
        return mono_finite_peak::<E>(signal.raw);
    }
    // Averaged a block at a time; indices are those of the mono signal.
    const BLOCK: usize = 4096;
    let mut scratch = Vec::with_capacity(BLOCK);
    let peak = (0..signal.len())
        .step_by(BLOCK)
        .try_fold(0f32, |peak, start| {
            let block = signal.to_f32(start..(start + BLOCK).min(signal.len()), &mut scratch);
            let block_peak = mono_finite_peak::<Float>(block).map_err(|at| start + at)?;
            Ok(peak.max(block_peak))
        });
    // The averaged samples are plaintext audio, on failure too.
    scratch.zeroize();
    peak
}

/// [`finite_peak`] of mono samples. Branch-free lanes (a non-finite `x` makes `x * 0` NaN,
/// which poisons its lane's sum), so the common all-finite case runs at SIMD speed; the
/// index is searched for only on failure.
fn mono_finite_peak<E: Encoding>(signal: &[E::Raw]) -> Result<f32, usize> {
    let mut peak = [0f32; 8];
    let mut poison = [0f32; 8];
    let mut chunks = signal.chunks_exact(8);
    for chunk in &mut chunks {
        for ((p, z), &raw) in peak.iter_mut().zip(poison.iter_mut()).zip(chunk) {
            let x = E::value(raw);
            *p = p.max(x.abs());
            *z += x * 0.0;
        }
    }
    for &raw in chunks.remainder() {
        let x = E::value(raw);
        peak[0] = peak[0].max(x.abs());
        poison[0] += x * 0.0;
    }
    if poison.iter().all(|z| *z == 0.0) {
        Ok(peak.iter().fold(0f32, |m, &p| m.max(p)))
    } else {
        Err(signal
            .iter()
            .position(|&raw| !E::value(raw).is_finite())
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_peak_finds_the_loudest_sample_or_the_first_bad_one() {
        let mut signal: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) / 10.0).collect();
        assert_eq!(finite_peak(Samples::<Float>::mono(&signal)), Ok(1.8));
        assert_eq!(finite_peak(Samples::<Float>::mono(&[])), Ok(0.0));
        signal[35] = f32::NAN;
        signal[36] = f32::INFINITY;
        assert_eq!(finite_peak(Samples::<Float>::mono(&signal)), Err(35));
        signal[35] = 0.0;
        assert_eq!(finite_peak(Samples::<Float>::mono(&signal)), Err(36));
        let bytes: Vec<[u8; 4]> = signal.iter().map(|x| x.to_le_bytes()).collect();
        assert_eq!(finite_peak(Samples::<FloatLe>::mono(&bytes)), Err(36));
    }

    #[test]
    fn interleaved_frames_are_averaged_as_they_are_read() {
        // Three channels, 10,001 frames and a partial one: blocks of the peak scan end inside.
        let interleaved: Vec<f32> = (0..30_005)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let signal = Samples::<Float>::interleaved(&interleaved, 3);
        assert_eq!(signal.len(), 10_001);
        let want: Vec<f32> = interleaved
            .chunks_exact(3)
            .map(|f| (f[0] + f[1] + f[2]) / 3.0)
            .collect();
        let mut scratch = Vec::new();
        assert_eq!(signal.to_f32(0..10_001, &mut scratch), &want[..]);
        assert_eq!(signal.to_f32(17..20, &mut scratch), &want[17..20]);
        assert_eq!(signal.value(9_000), want[9_000]);
        let peak = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert_eq!(finite_peak(signal), Ok(peak));
        let mut bad = interleaved.clone();
        bad[3 * 9_000 + 1] = f32::INFINITY;
        assert_eq!(
            finite_peak(Samples::<Float>::interleaved(&bad, 3)),
            Err(9_000)
        );
        // Stereo has a path of its own (fixed-size pairs).
        let stereo = &interleaved[..20_002];
        let want: Vec<f32> = stereo
            .chunks_exact(2)
            .map(|f| (f[0] + f[1]) / 2.0)
            .collect();
        let signal = Samples::<Float>::interleaved(stereo, 2);
        assert_eq!(signal.to_f32(0..10_001, &mut scratch), &want[..]);
    }

    #[test]
    fn the_scale_constants_are_libsndfiles() {
        for (bits, scale) in [(8, SCALE_8), (16, SCALE_16), (24, SCALE_24), (32, SCALE_32)] {
            assert_eq!((-f64::from(bits - 1)).exp2() as f32, scale, "{bits}");
        }
    }

    #[test]
    fn integer_pcm_never_exceeds_one() {
        assert_eq!(U8::value(0), -1.0);
        assert_eq!(I16Le::value(i16::MIN.to_le_bytes()), -1.0);
        assert_eq!(I24Le::value([0, 0, 0x80]), -1.0);
        assert_eq!(I32Le::value(i32::MAX.to_le_bytes()), 1.0);
        assert_eq!(I32Le::value(i32::MIN.to_le_bytes()), -1.0);
    }
}

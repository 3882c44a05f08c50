//! WAV parsing, and decoding to a mono `f32` signal sample for sample what
//! `librosa.to_mono(soundfile.read(f, dtype='float32')[0].T)` gives.

use std::cell::Cell;
use std::io::{ErrorKind, Read};

use hound::{SampleFormat, WavReader};
use zeroize::Zeroize;

use crate::source::{self, Encoding};

/// A decoded recording: mono samples at the file's own rate (nothing is resampled).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second, from the file.
    pub sample_rate: u32,
    /// Channels in the file; `samples` is their average.
    pub channels: u16,
    /// The mono signal, nominally in [-1, 1].
    pub samples: Vec<f32>,
}

/// Why bytes could not be decoded as audio.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a readable WAV file")]
    Wav(#[from] hound::Error),
    #[error(
        "unsupported WAV sample format: {bits}-bit {kind} in {container}-bit containers \
         (supported: 8/16/24/32-bit integer PCM, 32-bit float)"
    )]
    Unsupported {
        kind: &'static str,
        bits: u16,
        container: u16,
    },
}

/// A WAV file held in memory, its header checked: integer PCM of 8, 16, 24 or 32 bits, or
/// 32-bit float, any number of channels. The data chunk is borrowed, not decoded: the
/// extractor reads its samples straight from it (see [`crate::wav_features`]).
pub(crate) struct Wav<'a> {
    layout: Layout,
    /// The whole data chunk.
    data: &'a [u8],
}

/// How a WAV file stores its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    U8,
    I16,
    I24,
    I32,
    Float,
}

impl<'a> Wav<'a> {
    /// Reads the header of `bytes` and finds the data chunk (checked to be as long as declared).
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut rest = bytes;
        let (layout, first) = Layout::read(&mut rest)?;
        // `rest` starts after the first sample, which measured the container.
        let start = bytes.len() - rest.len() - if first { layout.width } else { 0 };
        let data = bytes[start..]
            .get(..layout.count.saturating_mul(layout.width))
            .ok_or_else(short_data)?;
        Ok(Self { layout, data })
    }

    /// Samples per second, from the file.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.layout.spec.sample_rate
    }

    pub(crate) fn channels(&self) -> u16 {
        self.layout.spec.channels
    }

    pub(crate) fn format(&self) -> Format {
        self.layout.format()
    }

    pub(crate) fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The mono `f32` signal, as described on [`decode_wav`].
    pub(crate) fn decode(&self) -> Audio {
        let mut interleaved = Vec::with_capacity(self.layout.count);
        self.layout.convert(self.data, &mut interleaved);
        Audio {
            sample_rate: self.sample_rate(),
            channels: self.channels(),
            samples: downmix(interleaved, usize::from(self.channels())),
        }
    }
}

/// Decodes a WAV file held in memory: integer PCM of 8, 16, 24 or 32 bits, or 32-bit float,
/// any number of channels (averaged to mono like `librosa.to_mono`).
///
/// Integers are scaled as libsndfile does for float output: `x / 2^(bits - 1)`, with 8-bit data
/// (unsigned in WAV) centred first; 32-bit values are rounded to `f32` before scaling.
pub fn decode_wav(bytes: &[u8]) -> Result<Audio, DecodeError> {
    Ok(Wav::parse(bytes)?.decode())
}

fn short_data() -> hound::Error {
    hound::Error::IoError(std::io::Error::new(
        ErrorKind::UnexpectedEof,
        "the data chunk is shorter than its declared length",
    ))
}

/// Counts the bytes read through it (hound does not say where the data chunk starts or how
/// wide its samples are).
struct Counting<'a, R> {
    inner: R,
    read: &'a Cell<usize>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

/// What the header says about the data chunk, checked to be a format this module decodes.
struct Layout {
    spec: hound::WavSpec,
    /// Bytes per sample in the data chunk (its container, which hound does not expose: for
    /// example 32 for WAVE_FORMAT_EXTENSIBLE's left-justified 24-in-32, which hound reads
    /// differently from libsndfile).
    width: usize,
    /// Samples (all channels) in the data chunk.
    count: usize,
}

impl Layout {
    /// Reads the header with hound's parser, then the first sample, which measures the
    /// container; `reader` is left after that sample. Also says whether there was one.
    fn read(reader: &mut impl Read) -> Result<(Self, bool), DecodeError> {
        let read = Cell::new(0);
        let mut wav = WavReader::new(Counting {
            inner: &mut *reader,
            read: &read,
        })?;
        let spec = wav.spec();
        let count = wav.len() as usize;
        let header = read.get();
        let first = match spec.sample_format {
            SampleFormat::Float => wav.samples::<f32>().next().transpose()?.is_some(),
            SampleFormat::Int => wav.samples::<i32>().next().transpose()?.is_some(),
        };
        // An empty data chunk counts as packed.
        let width = if first {
            read.get() - header
        } else {
            usize::from(spec.bits_per_sample / 8)
        };
        let container = u16::try_from(width * 8).unwrap_or(u16::MAX);
        let supported = match spec.sample_format {
            SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
            SampleFormat::Float => spec.bits_per_sample == 32,
        };
        if !supported || container != spec.bits_per_sample {
            return Err(DecodeError::Unsupported {
                kind: match spec.sample_format {
                    SampleFormat::Int => "integer",
                    SampleFormat::Float => "float",
                },
                bits: spec.bits_per_sample,
                container,
            });
        }
        Ok((Self { spec, width, count }, first))
    }

    fn format(&self) -> Format {
        match (self.spec.sample_format, self.width) {
            (SampleFormat::Float, _) => Format::Float,
            (SampleFormat::Int, 1) => Format::U8,
            (SampleFormat::Int, 2) => Format::I16,
            (SampleFormat::Int, 3) => Format::I24,
            (SampleFormat::Int, _) => Format::I32,
        }
    }

    /// Appends the samples of `data` (whole samples) to `out`, scaled as described on
    /// [`decode_wav`]: the same values as hound's `samples::<i32>()` (`<f32>` for float).
    fn convert(&self, data: &[u8], out: &mut Vec<f32>) {
        fn extend<E: Encoding<Raw = [u8; N]>, const N: usize>(data: &[u8], out: &mut Vec<f32>) {
            out.extend(data.as_chunks::<N>().0.iter().map(|&raw| E::value(raw)));
        }
        match self.format() {
            Format::U8 => out.extend(data.iter().map(|&raw| source::U8::value(raw))),
            Format::I16 => extend::<source::I16Le, 2>(data, out),
            Format::I24 => extend::<source::I24Le, 3>(data, out),
            Format::I32 => extend::<source::I32Le, 4>(data, out),
            Format::Float => extend::<source::FloatLe, 4>(data, out),
        }
    }
}

/// The mean over channels of interleaved samples, as the extractor averages them while it
/// reads a file (`source::Samples`).
fn downmix(mut interleaved: Vec<f32>, channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved;
    }
    let signal = source::Samples::<source::Float>::interleaved(&interleaved, channels);
    let mut mono = Vec::with_capacity(signal.len());
    signal.to_f32(0..signal.len(), &mut mono);
    // The interleaved signal may be sensitive (decrypted audio): leave no copy behind.
    interleaved.zeroize();
    mono
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use hound::{WavSpec, WavSpecEx, WavWriter};

    use super::*;

    /// A WAV file at 8 kHz holding `samples` (interleaved when `channels` > 1).
    pub(crate) fn wav<S: hound::Sample + Copy>(
        channels: u16,
        bits: u16,
        format: SampleFormat,
        samples: &[S],
    ) -> Vec<u8> {
        let spec = WavSpec {
            channels,
            sample_rate: 8_000,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = WavWriter::new(&mut cursor, spec).expect("writer");
        for &s in samples {
            writer.write_sample(s).expect("sample");
        }
        writer.finalize().expect("finalize");
        cursor.into_inner()
    }

    #[test]
    fn integer_depths_scale_like_libsndfile() {
        let cases: [(u16, i32, f32); 5] = [
            (8, -128, -1.0),
            (16, 16_384, 0.5),
            (24, -8_388_608, -1.0),
            (24, 1, 1.0 / 8_388_608.0),
            (32, i32::MAX, 1.0),
        ];
        for (bits, value, want) in cases {
            let audio = decode_wav(&wav(1, bits, SampleFormat::Int, &[value])).expect("decode");
            assert_eq!(audio.samples, vec![want], "{bits}-bit {value}");
            assert_eq!((audio.sample_rate, audio.channels), (8_000, 1));
        }
    }

    #[test]
    fn channels_are_averaged() {
        let audio = decode_wav(&wav(
            3,
            16,
            SampleFormat::Int,
            &[16_384i16, 0, -8_192, 3, 3, 3],
        ))
        .expect("decode");
        assert_eq!(audio.channels, 3);
        assert_eq!(audio.samples, vec![0.25 / 3.0, 3.0 / 32_768.0]);
    }

    #[test]
    fn float_samples_pass_through() {
        let audio = decode_wav(&wav(1, 32, SampleFormat::Float, &[0.25f32, -1.5])).expect("decode");
        assert_eq!(audio.samples, vec![0.25, -1.5]);
    }

    #[test]
    fn left_justified_24_in_32_is_refused_by_name() {
        let spec_ex = WavSpecEx {
            spec: WavSpec {
                channels: 1,
                sample_rate: 8_000,
                bits_per_sample: 24,
                sample_format: SampleFormat::Int,
            },
            bytes_per_sample: 4,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = WavWriter::new_with_spec_ex(&mut cursor, spec_ex).expect("writer");
        writer.write_sample(5i32).expect("sample");
        writer.finalize().expect("finalize");
        let err = decode_wav(cursor.get_ref()).expect_err("24-in-32");
        assert!(
            err.to_string()
                .contains("24-bit integer in 32-bit containers"),
            "{err}"
        );
    }

    #[test]
    fn float64_and_garbage_are_errors() {
        let mut float64 = Vec::new();
        float64.extend_from_slice(b"RIFF\x2c\0\0\0WAVEfmt \x10\0\0\0");
        // IEEE float, mono, 8 kHz, 64 kB/s, 8-byte frames, 64 bits.
        float64.extend_from_slice(&[3, 0, 1, 0, 0x40, 0x1f, 0, 0, 0, 0xfa, 0, 0, 8, 0, 64, 0]);
        float64.extend_from_slice(b"data\x08\0\0\0");
        float64.extend_from_slice(&0.5f64.to_le_bytes());
        assert!(matches!(decode_wav(&float64), Err(DecodeError::Wav(_))));
        let err = decode_wav(b"RIFF\x04\0\0\0WAVEjunk").expect_err("junk");
        assert!(err.to_string().contains("not a readable WAV"), "{err}");
    }

    #[test]
    fn bulk_decoding_equals_hounds_sample_by_sample_reading() {
        let values: Vec<i32> = (0..40_001i32)
            .map(|i| i.wrapping_mul(2_654_435_761u32 as i32))
            .collect();
        for (bits, channels) in [(8u16, 1u16), (16, 2), (24, 3), (32, 1)] {
            let shift = 32 - u32::from(bits);
            let samples: Vec<i32> = values.iter().map(|v| v >> shift).collect();
            let bytes = wav(
                channels,
                bits,
                SampleFormat::Int,
                &samples[..samples.len() / usize::from(channels) * usize::from(channels)],
            );
            let scale = (-f64::from(bits - 1)).exp2() as f32;
            let interleaved: Vec<f32> = WavReader::new(&bytes[..])
                .expect("reader")
                .samples::<i32>()
                .map(|x| x.expect("sample") as f32 * scale)
                .collect();
            let expected = downmix(interleaved, usize::from(channels));
            assert_eq!(
                decode_wav(&bytes).expect("decode").samples,
                expected,
                "{bits}-bit"
            );
        }
        let floats: Vec<f32> = values.iter().map(|&v| v as f32 / 3e9).collect();
        let bytes = wav(1, 32, SampleFormat::Float, &floats);
        assert_eq!(decode_wav(&bytes).expect("decode").samples, floats);
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut bytes = wav(1, 16, SampleFormat::Int, &[1i16, 2, 3, 4]);
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(decode_wav(&bytes), Err(DecodeError::Wav(_))));
    }

    #[test]
    fn an_empty_data_chunk_is_an_empty_signal() {
        let audio = decode_wav(&wav::<i16>(2, 16, SampleFormat::Int, &[])).expect("decode");
        assert!(audio.samples.is_empty());
    }
}

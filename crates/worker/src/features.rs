//! Plaintext WAV bytes → `.npy` bytes, through exactly the calls `securepipe features`
//! makes (decode at the file's own rate — `decode_wav`, the in-memory form of the command's
//! `read_wav` —, the extractor with these options, `write_npy`), so the object equals that
//! command's file byte for byte. CPU-bound: run on a blocking thread.
//!
//! Each blocking thread keeps one extractor (FFT plans, window, filter bank, DCT, buffers) and
//! reuses it for every sample with the same parameters: planning per sample cost more than a
//! short sample's FFTs.

use std::cell::RefCell;

use securepipe_dsp::{
    DecodeError, ExtractError, FeatureExtractor, FeatureKind, FeatureParams, ParamsError,
    decode_wav, write_npy,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::settings::FeatureOptions;

/// The features of one sample and the facts the metadata records.
#[derive(Debug)]
pub struct Computed {
    pub npy: Vec<u8>,
    pub sample_rate: u32,
    /// Hex SHA-256 of the plaintext.
    pub plaintext_sha256: String,
}

/// Why a plaintext yields no features (all but `Encode`, which writing to memory never
/// returns, are the sample's fault).
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("not a WAV file securepipe reads")]
    Decode(#[from] DecodeError),
    #[error("the feature parameters do not fit this file")]
    Params(#[from] ParamsError),
    #[error("no features")]
    Extract(#[from] ExtractError),
    #[error("cannot encode the .npy")]
    Encode(#[from] std::io::Error),
}

pub fn compute(
    plaintext: &[u8],
    kind: FeatureKind,
    options: &FeatureOptions,
) -> Result<Computed, FeatureError> {
    let plaintext_sha256 = crate::settings::hex(&Sha256::digest(plaintext));
    let mut audio = decode_wav(plaintext)?;
    let result = extract(&audio.samples, audio.sample_rate, kind, options);
    // The decoded signal is the plaintext in another form.
    audio.samples.zeroize();
    Ok(Computed {
        npy: result?,
        sample_rate: audio.sample_rate,
        plaintext_sha256,
    })
}

thread_local! {
    /// This thread's extractor, for the parameters of the last sample it processed.
    static EXTRACTOR: RefCell<Option<FeatureExtractor>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's extractor for `params`, built only if the parameters changed
/// (another sample rate or a failed build).
fn with_extractor<T>(
    params: FeatureParams,
    f: impl FnOnce(&mut FeatureExtractor) -> Result<T, FeatureError>,
) -> Result<T, FeatureError> {
    EXTRACTOR.with_borrow_mut(|slot| {
        let extractor = match slot.take() {
            Some(reused) if *reused.params() == params => slot.insert(reused),
            _ => slot.insert(FeatureExtractor::new(params)?),
        };
        f(extractor)
    })
}

fn extract(
    samples: &[f32],
    sample_rate: u32,
    kind: FeatureKind,
    options: &FeatureOptions,
) -> Result<Vec<u8>, FeatureError> {
    let features = with_extractor(options.params(sample_rate), |extractor| {
        Ok(extractor.extract(kind, samples)?)
    })?;
    let mut npy = Vec::with_capacity(128 + features.as_slice().len() * 4);
    write_npy(&mut npy, &features)?;
    Ok(npy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + 2 * samples.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(b"\x02\0\x10\0data");
        out.extend_from_slice(&(2 * samples.len() as u32).to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    fn options() -> FeatureOptions {
        FeatureOptions {
            n_mfcc: 13,
            n_fft: 512,
            hop_length: 128,
            n_mels: 40,
            fmin: 0.0,
            fmax: None,
        }
    }

    #[test]
    fn a_wav_becomes_an_npy_at_its_own_rate() {
        let samples: Vec<i16> = (0..8000).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
        let bytes = wav(8000, &samples);
        let out = compute(&bytes, FeatureKind::Mfcc, &options()).unwrap();
        assert_eq!(out.sample_rate, 8000);
        assert_eq!(
            out.plaintext_sha256,
            crate::settings::hex(&Sha256::digest(&bytes))
        );
        let header = String::from_utf8_lossy(&out.npy[10..80]);
        // 1 + 8000 / 128 = 63 centred frames.
        assert!(header.contains("'shape': (13, 63)"), "{header}");
    }

    #[test]
    fn a_reused_extractor_gives_the_same_bytes_and_follows_the_rate() {
        let samples: Vec<i16> = (0..9000).map(|i| ((i * 53) % 3000 - 1500) as i16).collect();
        let first = compute(&wav(8000, &samples), FeatureKind::Mfcc, &options()).unwrap();
        let other = compute(&wav(11025, &samples), FeatureKind::LogMel, &options()).unwrap();
        let again = compute(&wav(8000, &samples), FeatureKind::Mfcc, &options()).unwrap();
        assert_eq!(first.npy, again.npy);
        assert_eq!(other.sample_rate, 11025);
        let fresh = FeatureExtractor::new(options().params(8000))
            .unwrap()
            .mfcc(&decode_wav(&wav(8000, &samples)).unwrap().samples)
            .unwrap();
        let mut npy = Vec::new();
        write_npy(&mut npy, &fresh).unwrap();
        assert_eq!(first.npy, npy);
    }

    #[test]
    fn text_is_not_audio() {
        let err = compute(b"hello, not a wav", FeatureKind::Mfcc, &options()).unwrap_err();
        assert!(matches!(err, FeatureError::Decode(_)), "{err}");
    }
}

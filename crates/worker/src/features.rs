//! Plaintext WAV bytes → `.npy` bytes, through exactly the calls `securepipe features`
//! makes (`wav_features` with these options at the file's own rate, then `write_npy`), so the
//! object equals that command's file byte for byte. CPU-bound: run on a blocking thread.
//!
//! The samples are read from the plaintext a block of frames at a time, several channels
//! averaged as they are read, through a small buffer the extractor zeroizes: no decoded copy
//! of the signal is made.
//!
//! Each blocking thread keeps one extractor (FFT plans, window, filter bank, DCT, buffers) and
//! reuses it for every sample with the same parameters: planning per sample cost more than a
//! short sample's FFTs.

use std::cell::RefCell;

use securepipe_dsp::{FeatureExtractor, FeatureKind, WavFeaturesError, wav_features, write_npy};
use sha2::{Digest, Sha256};

use crate::settings::FeatureOptions;

/// The features of one sample and the facts the metadata records.
#[derive(Debug)]
pub struct Computed {
    pub npy: Vec<u8>,
    pub sample_rate: u32,
    /// Hex SHA-256 of the plaintext.
    pub plaintext_sha256: String,
}

/// Why a plaintext yields no features (`Wav` is the sample's fault; `Encode`, which
/// writing to memory never returns, is not).
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Wav(#[from] WavFeaturesError),
    #[error("cannot encode the .npy")]
    Encode(#[from] std::io::Error),
}

pub fn compute(
    plaintext: &[u8],
    kind: FeatureKind,
    options: &FeatureOptions,
) -> Result<Computed, FeatureError> {
    let plaintext_sha256 = crate::settings::hex(&Sha256::digest(plaintext));
    let mut sample_rate = 0;
    let features = EXTRACTOR.with_borrow_mut(|extractor| {
        let params = |rate| {
            sample_rate = rate;
            options.params(rate)
        };
        wav_features(plaintext, kind, params, extractor)
    })?;
    let mut npy = Vec::with_capacity(128 + features.as_slice().len() * 4);
    write_npy(&mut npy, &features)?;
    Ok(Computed {
        npy,
        sample_rate,
        plaintext_sha256,
    })
}

thread_local! {
    /// This thread's extractor, for the parameters of the last sample it processed.
    static EXTRACTOR: RefCell<Option<FeatureExtractor>> = const { RefCell::new(None) };
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
            .mfcc(
                &securepipe_dsp::decode_wav(&wav(8000, &samples))
                    .unwrap()
                    .samples,
            )
            .unwrap();
        let mut npy = Vec::new();
        write_npy(&mut npy, &fresh).unwrap();
        assert_eq!(first.npy, npy);
    }

    #[test]
    fn text_is_not_audio() {
        let err = compute(b"hello, not a wav", FeatureKind::Mfcc, &options()).unwrap_err();
        assert!(
            matches!(err, FeatureError::Wav(WavFeaturesError::Decode(_))),
            "{err}"
        );
    }
}

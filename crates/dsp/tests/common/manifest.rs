//! tests/golden/dsp/cases.json: the cases generate.py computed with librosa.

use std::path::{Path, PathBuf};

use securepipe_dsp::{FeatureKind, FeatureParams, MelNorm, MelScale};
use serde::Deserialize;

use super::signals::{Format, Recipe};

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub sample_rate: u32,
    pub length: usize,
    pub channels: Vec<Recipe>,
    pub format: Format,
    pub options: Options,
    pub sha256: String,
    pub shape: [usize; 2],
    pub file: String,
}

/// The options a case sets; the others are librosa's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    kind: Option<String>,
    n_mfcc: Option<usize>,
    n_fft: Option<usize>,
    hop_length: Option<usize>,
    win_length: Option<usize>,
    n_mels: Option<usize>,
    fmin: Option<f64>,
    fmax: Option<f64>,
    htk: Option<bool>,
    mel_norm: Option<String>,
    center: Option<bool>,
    /// Present and null means "no top_db".
    #[serde(default, deserialize_with = "present")]
    top_db: Option<Option<f64>>,
    lifter: Option<f64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

impl Options {
    pub fn kind(&self) -> FeatureKind {
        match self.kind.as_deref() {
            Some("logmel") => FeatureKind::LogMel,
            _ => FeatureKind::Mfcc,
        }
    }

    pub fn params(&self, sample_rate: u32) -> FeatureParams {
        let d = FeatureParams::new(sample_rate);
        FeatureParams {
            n_mfcc: self.n_mfcc.unwrap_or(d.n_mfcc),
            n_fft: self.n_fft.unwrap_or(d.n_fft),
            hop_length: self.hop_length.unwrap_or(d.hop_length),
            win_length: self.win_length.or(d.win_length),
            n_mels: self.n_mels.unwrap_or(d.n_mels),
            fmin: self.fmin.unwrap_or(d.fmin),
            fmax: self.fmax.or(d.fmax),
            mel_scale: if self.htk == Some(true) {
                MelScale::Htk
            } else {
                d.mel_scale
            },
            mel_norm: match self.mel_norm.as_deref() {
                Some("none") => MelNorm::Off,
                _ => d.mel_norm,
            },
            center: self.center.unwrap_or(d.center),
            top_db: self.top_db.unwrap_or(d.top_db),
            lifter: self.lifter.unwrap_or(d.lifter),
            ..d
        }
    }
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/dsp")
}

pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(golden_dir().join("cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json parses")
}

impl Case {
    /// librosa's matrix for this case, row-major.
    pub fn expected(&self) -> Vec<f32> {
        let bytes = std::fs::read(golden_dir().join(&self.file)).expect("golden data");
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

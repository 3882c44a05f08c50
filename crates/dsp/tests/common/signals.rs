//! Deterministic test signals, computed exactly as tests/golden/dsp/signals.py does (same
//! operation order, glibc's sin, counter-based SplitMix64), so both sides produce the same bits.

use std::f64::consts::PI;
use std::io::Cursor;

use hound::{SampleFormat, WavSpec, WavWriter};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One channel's recipe (see signals.py).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipe {
    Silence,
    Dc {
        level: f64,
    },
    Sine {
        freq: f64,
        amp: f64,
        #[serde(default)]
        phase: f64,
    },
    Chirp {
        f0: f64,
        f1: f64,
        amp: f64,
    },
    Noise {
        seed: u64,
        amp: f64,
    },
    Impulses {
        amp: f64,
        period: usize,
        offset: usize,
    },
    Sum {
        parts: Vec<Recipe>,
    },
    Clip {
        limit: f64,
        of: Box<Recipe>,
    },
}

/// Sample encoding in the WAV file.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Format {
    pub kind: FormatKind,
    pub bits: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatKind {
    Int,
    Float,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix_uniform(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add((i + 1).wrapping_mul(GOLDEN_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (-53f64).exp2()
}

pub fn render(recipe: &Recipe, length: usize, sr: u32) -> Vec<f64> {
    let sr = f64::from(sr);
    match recipe {
        Recipe::Silence => vec![0.0; length],
        Recipe::Dc { level } => vec![*level; length],
        Recipe::Sine { freq, amp, phase } => {
            let c = 2.0 * PI * freq;
            (0..length)
                .map(|n| amp * (c * n as f64 / sr + phase).sin())
                .collect()
        }
        Recipe::Chirp { f0, f1, amp } => {
            let duration = length as f64 / sr;
            (0..length)
                .map(|n| {
                    let t = n as f64 / sr;
                    amp * (2.0 * PI * (f0 * t + (f1 - f0) * t * t / (2.0 * duration))).sin()
                })
                .collect()
        }
        Recipe::Noise { seed, amp } => (0..length as u64)
            .map(|i| amp * (2.0 * splitmix_uniform(*seed, i) - 1.0))
            .collect(),
        Recipe::Impulses {
            amp,
            period,
            offset,
        } => (0..length)
            .map(|n| if n % period == *offset { *amp } else { 0.0 })
            .collect(),
        Recipe::Sum { parts } => {
            let mut total = vec![0.0; length];
            for part in parts {
                for (t, x) in total.iter_mut().zip(render(part, length, sr as u32)) {
                    *t += x;
                }
            }
            total
        }
        Recipe::Clip { limit, of } => render(of, length, sr as u32)
            .into_iter()
            .map(|x| x.max(-limit).min(*limit))
            .collect(),
    }
}

/// Encoded, interleaved samples of all channels.
pub enum Encoded {
    Int(Vec<i32>),
    Float(Vec<f32>),
}

pub fn encode(channels: &[Recipe], length: usize, sr: u32, format: Format) -> Encoded {
    let rendered: Vec<Vec<f64>> = channels.iter().map(|c| render(c, length, sr)).collect();
    let frame = |n: usize| rendered.iter().map(move |channel| channel[n]);
    match format.kind {
        FormatKind::Float => Encoded::Float(
            (0..length)
                .flat_map(|n| frame(n).map(|x| x as f32))
                .collect(),
        ),
        FormatKind::Int => {
            let full = f64::from(format.bits - 1).exp2();
            Encoded::Int(
                (0..length)
                    .flat_map(|n| {
                        frame(n).map(|x| (x * full + 0.5).floor().clamp(-full, full - 1.0) as i32)
                    })
                    .collect(),
            )
        }
    }
}

impl Encoded {
    /// sha256 of the samples as little-endian int32 or float32, as signals.py's `digest`.
    pub fn sha256(&self) -> String {
        let mut hasher = Sha256::new();
        match self {
            Encoded::Int(samples) => samples.iter().for_each(|s| hasher.update(s.to_le_bytes())),
            Encoded::Float(samples) => samples.iter().for_each(|s| hasher.update(s.to_le_bytes())),
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A WAV file of these samples.
    pub fn wav(&self, channels: u16, sample_rate: u32, bits: u16) -> Vec<u8> {
        let spec = WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: match self {
                Encoded::Int(_) => SampleFormat::Int,
                Encoded::Float(_) => SampleFormat::Float,
            },
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = WavWriter::new(&mut cursor, spec).expect("wav writer");
        match self {
            Encoded::Int(samples) => {
                for &s in samples {
                    writer.write_sample(s).expect("sample");
                }
            }
            Encoded::Float(samples) => {
                for &s in samples {
                    writer.write_sample(s).expect("sample");
                }
            }
        }
        writer.finalize().expect("finalize");
        cursor.into_inner()
    }
}

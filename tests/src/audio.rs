//! Test audio: WAV files of speech-like signals, made in memory, and raw samples encrypted
//! as the ingestion side writes them.

use std::path::Path;

use crate::operator::securepipe_binary;

/// Encrypts the file `plain` into `out` with `securepipe encrypt` under the KMS key `arn`,
/// with the encryption context `securepipe:partition` = `partition` when given.
pub async fn cli_encrypt(arn: &str, partition: Option<&str>, plain: &Path, out: &Path) {
    let mut command = tokio::process::Command::new(securepipe_binary());
    command.args(["encrypt", "--key-id", arn, "--input"]);
    command.arg(plain).arg("--output").arg(out);
    if let Some(p) = partition {
        command.args(["--context", &format!("securepipe:partition={p}")]);
    }
    let output = command.output().await.expect("run securepipe encrypt");
    assert!(
        output.status.success(),
        "securepipe encrypt: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A WAV of speech-like audio: a few harmonics with a syllable-rate envelope plus noise.
pub fn wav(rate: u32, channels: u16, bits: u16, float: bool, seconds: f32, seed: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("wav writer");
    let frames = (rate as f32 * seconds) as u32;
    let mut noise = seed.wrapping_mul(2_654_435_761).max(1);
    let f0 = 110.0 + 20.0 * (seed % 7) as f32;
    for i in 0..frames {
        let t = i as f32 / rate as f32;
        let envelope = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
        let voiced: f32 = (1..6)
            .map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32)
            .sum();
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let white = (noise as f32 / u32::MAX as f32) - 0.5;
        let value = (0.3 * envelope * voiced + 0.02 * white).clamp(-1.0, 1.0);
        for _ in 0..channels {
            if float {
                writer.write_sample(value).expect("sample");
            } else {
                let scale = ((1i64 << (bits - 1)) - 1) as f32;
                writer.write_sample((value * scale) as i32).expect("sample");
            }
        }
    }
    writer.finalize().expect("finalize");
    cursor.into_inner()
}

//! `securepipe features`: MFCC or log-mel features of a WAV file, written as a float32 `.npy`
//! equal to librosa's (`librosa.feature.mfcc(y=soundfile.read(IN, dtype='float32')[0]` downmixed,
//! `sr=<file rate>, ...)`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use securepipe_dsp::{
    DecodeError, ExtractError, FeatureKind, FeatureParams, MelNorm, MelScale, ParamsError,
    WavFeaturesError, wav_features, write_npy,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// `librosa.feature.mfcc`: (n_mfcc, frames).
    Mfcc,
    /// `librosa.power_to_db(librosa.feature.melspectrogram(...))`: (n_mels, frames).
    Logmel,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Norm {
    /// Divide each filter by its width in Hz (librosa's default).
    Slaney,
    /// Unnormalised triangles (`norm=None`).
    None,
}

/// Options mirror librosa's keyword arguments and default to librosa's values.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// WAV file: 8/16/24/32-bit integer PCM or 32-bit float, any channel count (averaged).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the float32 `.npy` matrix (C order).
    #[arg(long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "mfcc")]
    kind: Kind,
    #[arg(long, default_value_t = 20)]
    n_mfcc: usize,
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    #[arg(long, default_value_t = 512)]
    hop_length: usize,
    /// Window length (default: n_fft); shorter windows are zero-padded to n_fft.
    #[arg(long)]
    win_length: Option<usize>,
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    #[arg(long, default_value_t = 0.0)]
    fmin: f64,
    /// Highest mel filter frequency in Hz (default: half the file's sample rate).
    #[arg(long)]
    fmax: Option<f64>,
    /// Use the HTK mel formula instead of Slaney's.
    #[arg(long)]
    htk: bool,
    #[arg(long, value_enum, default_value = "slaney")]
    mel_norm: Norm,
    /// Frames start at t * hop_length instead of being centred (no padding).
    #[arg(long)]
    no_center: bool,
    /// dB floor below the loudest value, or `none`.
    #[arg(long, default_value = "80", value_parser = parse_top_db)]
    top_db: TopDb,
    /// Cepstral liftering coefficient (0 = none).
    #[arg(long, default_value_t = 0.0)]
    lifter: f64,
}

/// `--top-db`: a number of dB or `none`.
#[derive(Debug, Clone, Copy)]
struct TopDb(Option<f64>);

fn parse_top_db(value: &str) -> Result<TopDb, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(TopDb(None));
    }
    value
        .parse()
        .map(|db| TopDb(Some(db)))
        .map_err(|_| format!("expected a number of dB or 'none', got '{value}'"))
}

#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decode {path}")]
    Decode { path: PathBuf, source: DecodeError },
    #[error("invalid feature parameters for {path}")]
    Params { path: PathBuf, source: ParamsError },
    #[error("cannot compute features of {path}")]
    Extract { path: PathBuf, source: ExtractError },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Args {
    fn params(&self, sample_rate: u32) -> FeatureParams {
        FeatureParams {
            n_fft: self.n_fft,
            hop_length: self.hop_length,
            win_length: self.win_length,
            center: !self.no_center,
            n_mels: self.n_mels,
            fmin: self.fmin,
            fmax: self.fmax,
            mel_scale: if self.htk {
                MelScale::Htk
            } else {
                MelScale::Slaney
            },
            mel_norm: match self.mel_norm {
                Norm::Slaney => MelNorm::Slaney,
                Norm::None => MelNorm::Off,
            },
            top_db: self.top_db.0,
            n_mfcc: self.n_mfcc,
            lifter: self.lifter,
            ..FeatureParams::new(sample_rate)
        }
    }
}

pub fn run(args: Args) -> Result<(), FeaturesError> {
    let input = &args.input;
    let wav = std::fs::read(input).map_err(|source| FeaturesError::Read {
        path: input.clone(),
        source,
    })?;
    let kind = match args.kind {
        Kind::Mfcc => FeatureKind::Mfcc,
        Kind::Logmel => FeatureKind::LogMel,
    };
    // The worker's path too (crates/worker/src/features.rs), so both give the same bytes.
    let features =
        wav_features(&wav, kind, |rate| args.params(rate), &mut None).map_err(|err| {
            let path = input.clone();
            match err {
                WavFeaturesError::Decode(source) => FeaturesError::Decode { path, source },
                WavFeaturesError::Params(source) => FeaturesError::Params { path, source },
                WavFeaturesError::Extract(source) => FeaturesError::Extract { path, source },
            }
        })?;
    let write_error = |source| FeaturesError::Write {
        path: args.output.clone(),
        source,
    };
    let mut out = BufWriter::new(File::create(&args.output).map_err(write_error)?);
    write_npy(&mut out, &features).map_err(write_error)?;
    out.flush().map_err(write_error)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> Args {
        let base = ["features", "--input", "in.wav", "--output", "out.npy"];
        Cli::parse_from(base.iter().chain(extra)).args
    }

    #[test]
    fn defaults_are_librosas() {
        assert_eq!(parse(&[]).params(16_000), FeatureParams::new(16_000));
    }

    #[test]
    fn every_option_reaches_the_parameters() {
        let args = parse(&[
            "--n-mfcc",
            "13",
            "--n-fft",
            "1024",
            "--hop-length",
            "256",
            "--win-length",
            "800",
            "--n-mels",
            "40",
            "--fmin",
            "20",
            "--fmax",
            "7600",
            "--htk",
            "--mel-norm",
            "none",
            "--no-center",
            "--top-db",
            "none",
            "--lifter",
            "22",
        ]);
        let params = args.params(16_000);
        assert_eq!(
            params,
            FeatureParams {
                sample_rate: 16_000,
                n_fft: 1024,
                hop_length: 256,
                win_length: Some(800),
                center: false,
                n_mels: 40,
                fmin: 20.0,
                fmax: Some(7600.0),
                mel_scale: MelScale::Htk,
                mel_norm: MelNorm::Off,
                top_db: None,
                n_mfcc: 13,
                lifter: 22.0,
            }
        );
        assert_eq!(parse(&["--top-db", "60"]).params(8_000).top_db, Some(60.0));
        assert!(parse_top_db("loud").is_err());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("securepipe-features-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn writes_an_npy_of_the_expected_shape() {
        let dir = temp_dir("ok");
        let input = dir.join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&input, spec).expect("wav");
        for i in 0..8_000i32 {
            writer
                .write_sample(((i * 37) % 2000 - 1000) as i16)
                .expect("sample");
            writer.write_sample(0i16).expect("sample");
        }
        writer.finalize().expect("finalize");
        let output = dir.join("out.npy");
        let mut args = parse(&["--kind", "logmel", "--n-mels", "40"]);
        args.input = input;
        args.output = output.clone();
        run(args).expect("features");
        let bytes = std::fs::read(&output).expect("npy");
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let header = String::from_utf8_lossy(&bytes[10..10 + header_len]);
        // 8000 samples per channel: 1 + 8000 / 512 = 16 centred frames.
        assert!(header.contains("'shape': (40, 16)"), "{header}");
        assert_eq!(bytes.len(), 10 + header_len + 40 * 16 * 4);
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = temp_dir("err");
        let input = dir.join("not-audio.wav");
        std::fs::write(&input, b"hello").expect("write");
        let mut args = parse(&[]);
        args.input = input.clone();
        let err = run(args).expect_err("not a wav");
        assert!(matches!(err, FeaturesError::Decode { .. }));
        assert!(err.to_string().contains("not-audio.wav"), "{err}");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}

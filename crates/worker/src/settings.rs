//! Validated worker settings: the S3 layout of one partition, the feature parameters, and
//! which keys this shard takes.

use securepipe_dsp::{FeatureKind, FeatureParams};
use sha2::{Digest, Sha256};

use crate::args::{Args, Kind};

/// A flag combination the worker refuses before any AWS call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error(
        "--{flag} `{value}` must be a folder prefix: non-empty, ending in '/', not starting with '/', without '..' or '//'"
    )]
    Prefix { flag: &'static str, value: String },
    #[error("--partition `{0}` must be one path segment (no '/', not '.' or '..', not empty)")]
    Partition(String),
    #[error(
        "--{inner} `{inner_value}` lies inside --{outer} `{outer_value}`: the prefixes must not overlap"
    )]
    Overlap {
        inner: &'static str,
        inner_value: String,
        outer: &'static str,
        outer_value: String,
    },
    #[error("--{flag} must be a positive number, got {value}")]
    NotPositive { flag: &'static str, value: String },
    #[error("shard index {index} is not below the shard count {count}")]
    Shard { index: u32, count: u32 },
    #[error("JOB_COMPLETION_INDEX `{0}` is not a number")]
    CompletionIndex(String),
    #[error("--run-id `{0}` must be 1 to 128 letters, digits, '.', '_' or '-'")]
    RunId(String),
}

/// Everything a run needs to know besides the AWS clients.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bucket: String,
    pub region: String,
    pub partition: String,
    pub kms_key_arns: Vec<String>,
    /// `<raw-prefix><partition>/`
    pub raw_root: String,
    /// `<feature-prefix><partition>/`
    pub feature_root: String,
    /// `<attestation-prefix><partition>/`
    pub attestation_root: String,
    pub kind: FeatureKind,
    pub features: FeatureOptions,
    pub parallelism: usize,
    pub max_object_bytes: u64,
    pub run_id: String,
    pub shard_index: u32,
    pub shard_count: u32,
}

/// The feature flags, turned into DSP parameters once each file's rate is known.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureOptions {
    pub n_mfcc: usize,
    pub n_fft: usize,
    pub hop_length: usize,
    pub n_mels: usize,
    pub fmin: f64,
    pub fmax: Option<f64>,
}

impl FeatureOptions {
    /// The parameters for a file at `sample_rate`: these options, librosa's defaults for
    /// everything else (what `securepipe features` uses with the same flags).
    pub fn params(&self, sample_rate: u32) -> FeatureParams {
        FeatureParams {
            n_fft: self.n_fft,
            hop_length: self.hop_length,
            n_mels: self.n_mels,
            fmin: self.fmin,
            fmax: self.fmax,
            n_mfcc: self.n_mfcc,
            ..FeatureParams::new(sample_rate)
        }
    }
}

impl Settings {
    /// Validates `args`; `completion_index` is `JOB_COMPLETION_INDEX` when set.
    pub fn from_args(args: &Args, completion_index: Option<&str>) -> Result<Self, SettingsError> {
        for (flag, value) in [
            ("raw-prefix", &args.raw_prefix),
            ("feature-prefix", &args.feature_prefix),
            ("attestation-prefix", &args.attestation_prefix),
        ] {
            check_prefix(flag, value)?;
        }
        let p = &args.partition;
        if p.is_empty() || p.contains('/') || p == "." || p == ".." {
            return Err(SettingsError::Partition(p.clone()));
        }
        let prefixes = [
            ("raw-prefix", &args.raw_prefix),
            ("feature-prefix", &args.feature_prefix),
            ("attestation-prefix", &args.attestation_prefix),
        ];
        for (inner, inner_value) in prefixes {
            for (outer, outer_value) in prefixes {
                if inner != outer && inner_value.starts_with(outer_value.as_str()) {
                    return Err(SettingsError::Overlap {
                        inner,
                        inner_value: inner_value.clone(),
                        outer,
                        outer_value: outer_value.clone(),
                    });
                }
            }
        }
        let positive = |flag: &'static str, value: i32| {
            usize::try_from(value)
                .ok()
                .filter(|v| *v > 0)
                .ok_or(SettingsError::NotPositive {
                    flag,
                    value: value.to_string(),
                })
        };
        let shard_index = match (args.shard_index, completion_index) {
            (Some(index), _) => index,
            (None, Some(text)) => text
                .trim()
                .parse()
                .map_err(|_| SettingsError::CompletionIndex(text.to_owned()))?,
            (None, None) => 0,
        };
        if shard_index >= args.shard_count {
            return Err(SettingsError::Shard {
                index: shard_index,
                count: args.shard_count,
            });
        }
        let run_id = match &args.run_id {
            Some(id) => {
                let valid = !id.is_empty()
                    && id.len() <= 128
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                if !valid {
                    return Err(SettingsError::RunId(id.clone()));
                }
                id.clone()
            }
            None => default_run_id(),
        };
        Ok(Self {
            bucket: args.bucket.clone(),
            region: args.region.clone(),
            partition: p.clone(),
            kms_key_arns: args.kms_key_arns.clone(),
            raw_root: format!("{}{p}/", args.raw_prefix),
            feature_root: format!("{}{p}/", args.feature_prefix),
            attestation_root: format!("{}{p}/", args.attestation_prefix),
            kind: match args.kind {
                Kind::Mfcc => FeatureKind::Mfcc,
                Kind::Logmel => FeatureKind::LogMel,
            },
            features: FeatureOptions {
                n_mfcc: positive("n-mfcc", args.n_mfcc)?,
                n_fft: positive("n-fft", args.n_fft)?,
                hop_length: positive("hop-length", args.hop_length)?,
                n_mels: positive("n-mels", args.n_mels)?,
                fmin: args.fmin,
                fmax: args.fmax,
            },
            parallelism: usize::from(args.parallelism),
            max_object_bytes: args.max_object_bytes,
            run_id,
            shard_index,
            shard_count: args.shard_count,
        })
    }

    /// The feature key of a raw key under the partition: the same path below the partition
    /// folder, with the extension (if any) replaced by `.npy`.
    pub fn feature_key(&self, raw_key: &str) -> Option<String> {
        let below = raw_key.strip_prefix(&self.raw_root)?;
        let (dir, name) = match below.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), below),
        };
        let stem = match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => name,
        };
        Some(format!("{}{dir}{stem}.npy", self.feature_root))
    }

    /// `<attestation-prefix><partition>/<run-id>.json` (with the shard when sharded).
    pub fn attestation_key(&self) -> String {
        if self.shard_count > 1 {
            format!(
                "{}{}-shard-{}-of-{}.json",
                self.attestation_root, self.run_id, self.shard_index, self.shard_count
            )
        } else {
            format!("{}{}.json", self.attestation_root, self.run_id)
        }
    }

    /// Whether this shard takes `key`: the first 8 bytes of its SHA-256, mod the count.
    pub fn takes(&self, key: &str) -> bool {
        shard_of(key, self.shard_count) == self.shard_index
    }

    /// A hash of everything that defines the feature values (kind and every parameter).
    pub fn params_sha256(&self) -> String {
        let params = self.features.params(0);
        let canonical = format!(
            "kind={:?};n_fft={};hop_length={};win_length={:?};center={};n_mels={};fmin={};fmax={:?};mel_scale={:?};mel_norm={:?};top_db={:?};n_mfcc={};lifter={}",
            self.kind,
            params.n_fft,
            params.hop_length,
            params.win_length,
            params.center,
            params.n_mels,
            params.fmin,
            params.fmax,
            params.mel_scale,
            params.mel_norm,
            params.top_db,
            params.n_mfcc,
            params.lifter,
        );
        hex(&Sha256::digest(canonical.as_bytes()))
    }
}

fn check_prefix(flag: &'static str, value: &str) -> Result<(), SettingsError> {
    let valid = !value.is_empty()
        && value.ends_with('/')
        && !value.starts_with('/')
        && !value.contains("..")
        && !value.contains("//");
    if valid {
        Ok(())
    } else {
        Err(SettingsError::Prefix {
            flag,
            value: value.to_owned(),
        })
    }
}

pub(crate) fn shard_of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u32::try_from(u64::from_be_bytes(first) % u64::from(count.max(1))).unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `20261130T050102Z-1a2b3c4d`: sortable, unique enough for one partition's runs.
fn default_run_id() -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let mut random = [0u8; 4];
    // Without randomness the time alone still names the run.
    let _ = getrandom::fill(&mut random);
    format!("{now}-{}", hex(&random))
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

    fn settings(extra: &[&str]) -> Result<Settings, SettingsError> {
        let mut argv = vec![
            "worker",
            "--bucket",
            "b",
            "--region",
            "r",
            "--partition",
            "p1",
            "--kms-key-arn",
            "k",
        ];
        argv.extend(extra);
        Settings::from_args(&Cli::try_parse_from(argv).unwrap().args, None)
    }

    #[test]
    fn feature_keys_keep_the_path_below_the_partition() {
        let s = settings(&[]).unwrap();
        for (raw, feature) in [
            (
                "ingestion/raw/p1/a.wav.enc",
                "training/features/p1/a.wav.npy",
            ),
            (
                "ingestion/raw/p1/x/y/z.wav",
                "training/features/p1/x/y/z.npy",
            ),
            ("ingestion/raw/p1/noext", "training/features/p1/noext.npy"),
            (
                "ingestion/raw/p1/d.v2/.hidden",
                "training/features/p1/d.v2/.hidden.npy",
            ),
        ] {
            assert_eq!(s.feature_key(raw).as_deref(), Some(feature), "{raw}");
        }
        assert_eq!(s.feature_key("ingestion/raw/p2/a.wav"), None);
        assert_eq!(s.attestation_key(), format!("audit/p1/{}.json", s.run_id));
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(matches!(
            settings(&["--raw-prefix", "raw"]),
            Err(SettingsError::Prefix { .. })
        ));
        assert!(matches!(
            settings(&["--feature-prefix", "/f/"]),
            Err(SettingsError::Prefix { .. })
        ));
        assert!(matches!(
            settings(&["--attestation-prefix", "training/features/audit/"]),
            Err(SettingsError::Overlap { .. })
        ));
        let mut args = Cli::try_parse_from([
            "worker",
            "--bucket",
            "b",
            "--region",
            "r",
            "--partition",
            "a/b",
            "--kms-key-arn",
            "k",
        ])
        .unwrap()
        .args;
        assert!(matches!(
            Settings::from_args(&args, None),
            Err(SettingsError::Partition(_))
        ));
        args.partition = "..".into();
        assert!(Settings::from_args(&args, None).is_err());
        assert!(matches!(
            settings(&["--n-fft", "0"]),
            Err(SettingsError::NotPositive { .. })
        ));
        assert!(matches!(
            settings(&["--run-id", "a b"]),
            Err(SettingsError::RunId(_))
        ));
        assert!(matches!(
            settings(&["--shard-index", "2", "--shard-count", "2"]),
            Err(SettingsError::Shard { .. })
        ));
    }

    #[test]
    fn shards_split_keys_stably_and_completely() {
        let keys: Vec<String> = (0..300)
            .map(|i| format!("ingestion/raw/p1/{i}.wav"))
            .collect();
        let mut per_shard = [0usize; 3];
        for key in &keys {
            let shard = shard_of(key, 3);
            assert_eq!(shard, shard_of(key, 3));
            per_shard[shard as usize] += 1;
        }
        assert_eq!(per_shard.iter().sum::<usize>(), 300);
        assert!(per_shard.iter().all(|n| *n > 60), "{per_shard:?}");
        let mut cli = Cli::try_parse_from([
            "worker",
            "--bucket",
            "b",
            "--region",
            "r",
            "--partition",
            "p1",
            "--kms-key-arn",
            "k",
            "--shard-count",
            "3",
            "--run-id",
            "run-1",
        ])
        .unwrap()
        .args;
        let from_job = Settings::from_args(&cli, Some("2")).unwrap();
        assert_eq!(from_job.shard_index, 2);
        assert_eq!(
            from_job.attestation_key(),
            "audit/p1/run-1-shard-2-of-3.json"
        );
        cli.shard_index = Some(1);
        assert_eq!(
            Settings::from_args(&cli, Some("2")).unwrap().shard_index,
            1,
            "the flag wins"
        );
        assert!(
            Settings::from_args(&cli, Some("x")).is_ok(),
            "flag set: index unused"
        );
        cli.shard_index = None;
        assert!(matches!(
            Settings::from_args(&cli, Some("x")),
            Err(SettingsError::CompletionIndex(_))
        ));
    }

    #[test]
    fn the_params_hash_changes_with_any_parameter() {
        let base = settings(&[]).unwrap().params_sha256();
        assert_eq!(base, settings(&[]).unwrap().params_sha256());
        for extra in [
            ["--n-mfcc", "13"],
            ["--kind", "logmel"],
            ["--fmax", "4000"],
            ["--hop-length", "256"],
        ] {
            assert_ne!(settings(&extra).unwrap().params_sha256(), base, "{extra:?}");
        }
    }
}

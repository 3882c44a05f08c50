//! `securepipe worker` flags. Every flag also reads `SECUREPIPE_<FLAG>` (names from
//! [`securepipe_api::worker`], which the operator uses to set them on a Job), and the feature
//! defaults are the CRD's [`FeatureSpec`] defaults.

use clap::ValueEnum;
use securepipe_api::training_partition::FeatureSpec;
use securepipe_api::worker as env;

/// Which features to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `librosa.feature.mfcc`: (n_mfcc, frames).
    Mfcc,
    /// `librosa.power_to_db(librosa.feature.melspectrogram(...))`: (n_mels, frames).
    Logmel,
}

/// Extract-and-shred one partition: every raw sample under `<raw-prefix><partition>/`
/// becomes verified features, then every version of it is deleted.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The bucket holding raw samples, features and attestations.
    #[arg(long, env = env::ENV_BUCKET)]
    pub bucket: String,
    /// The bucket's region.
    #[arg(long, env = env::ENV_REGION)]
    pub region: String,
    /// The partition: one path segment below the raw and feature prefixes.
    #[arg(long, env = env::ENV_PARTITION)]
    pub partition: String,
    /// KMS key ARN allowed to unwrap sample data keys (repeatable; comma-separated in the
    /// environment variable).
    #[arg(long = "kms-key-arn", value_name = "ARN", env = env::ENV_KMS_KEY_ARN,
          value_delimiter = ',', required = true)]
    pub kms_key_arns: Vec<String>,
    #[arg(long, env = env::ENV_RAW_PREFIX, default_value = env::DEFAULT_RAW_PREFIX)]
    pub raw_prefix: String,
    #[arg(long, env = env::ENV_FEATURE_PREFIX, default_value = env::DEFAULT_FEATURE_PREFIX)]
    pub feature_prefix: String,
    /// Where the run's attestation goes; must be outside the feature prefix.
    #[arg(long, env = env::ENV_ATTESTATION_PREFIX, default_value = env::DEFAULT_ATTESTATION_PREFIX)]
    pub attestation_prefix: String,
    #[arg(long, value_enum, env = env::ENV_KIND, default_value = "mfcc")]
    pub kind: Kind,
    #[arg(long, env = env::ENV_N_MFCC, default_value_t = FeatureSpec::default().n_mfcc)]
    pub n_mfcc: i32,
    #[arg(long, env = env::ENV_N_FFT, default_value_t = FeatureSpec::default().n_fft)]
    pub n_fft: i32,
    #[arg(long, env = env::ENV_HOP_LENGTH, default_value_t = FeatureSpec::default().hop_length)]
    pub hop_length: i32,
    #[arg(long, env = env::ENV_N_MELS, default_value_t = FeatureSpec::default().n_mels)]
    pub n_mels: i32,
    #[arg(long, env = env::ENV_FMIN, default_value_t = FeatureSpec::default().fmin)]
    pub fmin: f64,
    /// Highest mel frequency in Hz (default: half of each file's sample rate).
    #[arg(long, env = env::ENV_FMAX)]
    pub fmax: Option<f64>,
    /// Objects in flight at once.
    #[arg(long, env = env::ENV_PARALLELISM, default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Larger raw objects are quarantined unread.
    #[arg(long, env = env::ENV_MAX_OBJECT_BYTES, default_value_t = 256 << 20)]
    pub max_object_bytes: u64,
    /// Names the attestation (default: the start time and a random suffix).
    #[arg(long, env = env::ENV_RUN_ID)]
    pub run_id: Option<String>,
    /// This worker takes the keys whose stable hash mod shard-count equals this index
    /// (default: JOB_COMPLETION_INDEX, else 0).
    #[arg(long, env = env::ENV_SHARD_INDEX)]
    pub shard_index: Option<u32>,
    #[arg(long, env = env::ENV_SHARD_COUNT, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_count: u32,
    /// Address S3 buckets by path instead of by virtual host (emulators such as LocalStack).
    #[arg(long, env = env::ENV_S3_FORCE_PATH_STYLE)]
    pub s3_force_path_style: bool,
    /// Log as JSON lines (on stderr; stdout carries only the summary).
    #[arg(long, env = env::ENV_LOG_JSON)]
    pub log_json: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use securepipe_api::training_partition::FeatureKind;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    const REQUIRED: [&str; 9] = [
        "worker",
        "--bucket",
        "b",
        "--region",
        "us-east-1",
        "--partition",
        "p1",
        "--kms-key-arn",
        "arn:aws:kms:us-east-1:000000000000:key/k",
    ];

    #[test]
    fn defaults_are_the_crds() {
        let args = Cli::try_parse_from(REQUIRED).unwrap().args;
        let spec = FeatureSpec::default();
        assert_eq!(args.kind, Kind::Mfcc);
        assert_eq!(
            (
                args.n_mfcc,
                args.n_fft,
                args.hop_length,
                args.n_mels,
                args.fmin,
                args.fmax
            ),
            (
                spec.n_mfcc,
                spec.n_fft,
                spec.hop_length,
                spec.n_mels,
                spec.fmin,
                spec.fmax
            )
        );
        assert_eq!(args.raw_prefix, "ingestion/raw/");
        assert_eq!(args.feature_prefix, "training/features/");
        assert_eq!(args.attestation_prefix, "audit/");
        assert_eq!((args.parallelism, args.shard_count), (4, 1));
    }

    #[test]
    fn the_operators_feature_env_sets_every_flag() {
        let spec = FeatureSpec {
            kind: FeatureKind::LogMel,
            n_mfcc: 13,
            n_fft: 1024,
            hop_length: 256,
            n_mels: 40,
            fmin: 20.5,
            fmax: Some(7600.0),
        };
        // Each variable the operator sets is the `env` of exactly one flag; pass the value
        // through that flag (tests cannot set the process environment safely).
        let command = <Cli as clap::CommandFactory>::command();
        let variables = env::feature_env(&spec);
        let mut argv: Vec<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
        for (name, value) in &variables {
            let flags: Vec<&str> = command
                .get_arguments()
                .filter(|arg| arg.get_env().and_then(|e| e.to_str()) == Some(*name))
                .filter_map(clap::Arg::get_long)
                .collect();
            assert_eq!(flags.len(), 1, "{name} belongs to one flag");
            argv.push(format!("--{}={value}", flags[0]));
        }
        let args = Cli::try_parse_from(argv).unwrap().args;
        assert_eq!(args.kind, Kind::Logmel);
        assert_eq!(
            (
                args.n_mfcc,
                args.n_fft,
                args.hop_length,
                args.n_mels,
                args.fmin,
                args.fmax
            ),
            (13, 1024, 256, 40, 20.5, Some(7600.0))
        );
        assert_eq!(variables.len(), 7, "one variable per FeatureSpec field");
    }

    #[test]
    fn keys_repeat_and_split_at_commas() {
        let mut argv: Vec<&str> = REQUIRED.to_vec();
        argv.extend(["--kms-key-arn", "a,b"]);
        let args = Cli::try_parse_from(argv).unwrap().args;
        assert_eq!(args.kms_key_arns.len(), 3);
        assert!(
            Cli::try_parse_from(&REQUIRED[..7]).is_err(),
            "a key is required"
        );
    }
}

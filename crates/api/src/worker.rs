//! The contract between the operator and `securepipe worker`: the environment variable of
//! every worker flag (`--n-mfcc` ↔ `SECUREPIPE_N_MFCC`) and how a [`FeatureSpec`] becomes
//! those variables. The worker declares its flags with these names and the operator sets
//! them on the Job, so both read one list and the CRD's defaults stay the worker's.

use crate::training_partition::{FeatureKind, FeatureSpec};

pub const ENV_BUCKET: &str = "SECUREPIPE_BUCKET";
pub const ENV_REGION: &str = "SECUREPIPE_REGION";
pub const ENV_PARTITION: &str = "SECUREPIPE_PARTITION";
pub const ENV_KMS_KEY_ARN: &str = "SECUREPIPE_KMS_KEY_ARN";
pub const ENV_RAW_PREFIX: &str = "SECUREPIPE_RAW_PREFIX";
pub const ENV_FEATURE_PREFIX: &str = "SECUREPIPE_FEATURE_PREFIX";
pub const ENV_ATTESTATION_PREFIX: &str = "SECUREPIPE_ATTESTATION_PREFIX";
pub const ENV_KIND: &str = "SECUREPIPE_KIND";
pub const ENV_N_MFCC: &str = "SECUREPIPE_N_MFCC";
pub const ENV_N_FFT: &str = "SECUREPIPE_N_FFT";
pub const ENV_HOP_LENGTH: &str = "SECUREPIPE_HOP_LENGTH";
pub const ENV_N_MELS: &str = "SECUREPIPE_N_MELS";
pub const ENV_FMIN: &str = "SECUREPIPE_FMIN";
pub const ENV_FMAX: &str = "SECUREPIPE_FMAX";
pub const ENV_PARALLELISM: &str = "SECUREPIPE_PARALLELISM";
pub const ENV_MAX_OBJECT_BYTES: &str = "SECUREPIPE_MAX_OBJECT_BYTES";
pub const ENV_RUN_ID: &str = "SECUREPIPE_RUN_ID";
pub const ENV_SHARD_INDEX: &str = "SECUREPIPE_SHARD_INDEX";
pub const ENV_SHARD_COUNT: &str = "SECUREPIPE_SHARD_COUNT";
pub const ENV_S3_FORCE_PATH_STYLE: &str = "SECUREPIPE_S3_FORCE_PATH_STYLE";
pub const ENV_LOG_JSON: &str = "SECUREPIPE_LOG_JSON";
/// Set by Kubernetes in each Pod of an Indexed Job; the shard index when the flag is absent.
pub const ENV_JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// The S3 tag that marks a quarantined raw sample (its value is the reason): the worker
/// sets it, and skips it later; the operator's scan does not count such a sample as pending.
pub const QUARANTINE_TAG: &str = "securepipe.io/quarantine";

/// Every quarantine reason the worker writes (tag values and summary keys): the operator
/// labels metrics only with these, so a summary can never grow a label set.
pub const QUARANTINE_REASONS: [&str; 8] = [
    "too-large",
    "not-encrypted",
    "truncated",
    "authentication-failed",
    "key-not-allowed",
    "partition-missing",
    "partition-mismatch",
    "not-audio",
];

/// The worker's one-line JSON summary as the operator reads it back (from a Pod's
/// termination message). Unknown fields are ignored, missing ones are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryReport {
    pub listed: u64,
    pub shredded: u64,
    pub already_done: u64,
    pub quarantined: std::collections::BTreeMap<String, u64>,
    pub still_quarantined: u64,
    pub failed: u64,
    pub attestation_key: Option<String>,
}

/// Where the raw samples, features and attestations live by default.
pub const DEFAULT_RAW_PREFIX: &str = "ingestion/raw/";
pub const DEFAULT_FEATURE_PREFIX: &str = "training/features/";
pub const DEFAULT_ATTESTATION_PREFIX: &str = "audit/";

/// The value of `--kind` for a feature kind.
pub fn kind_arg(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Mfcc => "mfcc",
        FeatureKind::LogMel => "logmel",
    }
}

/// The worker environment that selects exactly `spec`'s features.
pub fn feature_env(spec: &FeatureSpec) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (ENV_KIND, kind_arg(spec.kind).to_owned()),
        (ENV_N_MFCC, spec.n_mfcc.to_string()),
        (ENV_N_FFT, spec.n_fft.to_string()),
        (ENV_HOP_LENGTH, spec.hop_length.to_string()),
        (ENV_N_MELS, spec.n_mels.to_string()),
        (ENV_FMIN, spec.fmin.to_string()),
    ];
    if let Some(fmax) = spec.fmax {
        env.push((ENV_FMAX, fmax.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_field_becomes_a_variable() {
        let spec = FeatureSpec {
            kind: FeatureKind::LogMel,
            n_mfcc: 13,
            n_fft: 1024,
            hop_length: 256,
            n_mels: 40,
            fmin: 20.5,
            fmax: Some(7600.0),
        };
        assert_eq!(
            feature_env(&spec),
            [
                (ENV_KIND, "logmel".to_owned()),
                (ENV_N_MFCC, "13".into()),
                (ENV_N_FFT, "1024".into()),
                (ENV_HOP_LENGTH, "256".into()),
                (ENV_N_MELS, "40".into()),
                (ENV_FMIN, "20.5".into()),
                (ENV_FMAX, "7600".into()),
            ]
        );
        let defaults = feature_env(&FeatureSpec::default());
        assert!(defaults.iter().all(|(name, _)| *name != ENV_FMAX));
        assert_eq!(defaults[0], (ENV_KIND, "mfcc".to_owned()));
    }
}

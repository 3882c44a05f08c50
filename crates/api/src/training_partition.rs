//! `TrainingPartition`: one team's access to one partition of a bucket, and the
//! extract-and-shred work on that partition's raw samples.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::{
    AwsRegion, BucketName, IamRoleArn, KmsKeyArn, ObjectName, PartitionName, S3Prefix,
};

/// Grants ML workloads short-lived, prefix-scoped AWS credentials for one partition of a
/// bucket, and (optionally) turns the partition's encrypted raw samples into features.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "securepipe.io",
    version = "v1alpha1",
    kind = "TrainingPartition",
    namespaced,
    shortname = "tp",
    category = "securepipe",
    status = "TrainingPartitionStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Bucket","type":"string","jsonPath":".spec.bucket"}"#,
    printcolumn = r#"{"name":"Access","type":"string","jsonPath":".spec.access"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".status.credentials.secretName"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","description":"When the current session expires (UTC)","jsonPath":".status.credentials.expiresAt"}"#,
    printcolumn = r#"{"name":"Pending","type":"integer","priority":1,"jsonPath":".status.extraction.pending"}"#,
    printcolumn = r#"{"name":"Shredded","type":"integer","priority":1,"jsonPath":".status.extraction.shredded"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPartitionSpec {
    /// The S3 bucket that holds the partition.
    pub bucket: BucketName,
    /// The AWS region of the bucket; sessions are restricted to it.
    pub region: AwsRegion,
    /// The IAM role assumed for this partition. The session policy can only narrow this
    /// role's own permissions.
    pub role_arn: IamRoleArn,
    /// The partition's name: one path segment under `featurePrefix` and `rawPrefix`.
    /// Defaults to the resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionName>,
    /// Where features live: the partition's features are under `<featurePrefix><partition>/`.
    #[serde(default = "default_feature_prefix")]
    pub feature_prefix: S3Prefix,
    /// Where encrypted raw samples arrive: `<rawPrefix><partition>/`.
    #[serde(default = "default_raw_prefix")]
    pub raw_prefix: S3Prefix,
    /// What the issued credentials allow on the partition's features: `ReadOnly` (get and
    /// list) or `ReadWrite` (also put).
    #[serde(default)]
    pub access: Access,
    /// The credentials Secret: its name, the session length and renewal.
    #[serde(default)]
    pub credentials: CredentialsSpec,
    /// Extract-and-shred: decrypt raw samples, write their features, then delete the raw
    /// objects. Off unless `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionSpec>,
}

fn default_feature_prefix() -> S3Prefix {
    S3Prefix::from("training/features/")
}

fn default_raw_prefix() -> S3Prefix {
    S3Prefix::from("ingestion/raw/")
}

/// What the issued credentials may do on the partition's features.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    // `s3:GetObject` and `s3:ListBucket` on the partition's feature prefix.
    #[default]
    ReadOnly,
    // `ReadOnly` plus `s3:PutObject` on the partition's feature prefix.
    ReadWrite,
}

/// How credentials are issued and kept fresh.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(format!(
    "!has(self.renewBefore) || !self.duration.matches({re}) || !self.renewBefore.matches({re}) || duration(self.renewBefore) < duration(self.duration)",
    re = GO_DURATION_RE
)).message("must be shorter than duration").field_path(".renewBefore"))]
pub struct CredentialsSpec {
    /// The Secret that receives the credentials. Defaults to `<name>-aws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<ObjectName>,
    /// How long each STS session lasts, from 15m to 12h (Go duration, e.g. `1h`, `90m`).
    /// When the operator itself runs on an assumed role, AWS caps this at 1h.
    #[serde(default = "default_session_duration")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({GO_DURATION_RE})")).message("must be a duration such as 1h or 90m"))]
    #[x_kube(validation = kube::core::Rule::new(format!("!self.matches({GO_DURATION_RE}) || (duration(self) >= duration('15m') && duration(self) <= duration('12h'))")).message("must be between 15m and 12h"))]
    pub duration: Duration,
    /// Renew this long before expiry. Defaults to one third of `duration`; must be shorter
    /// than `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({GO_DURATION_RE})")).message("must be a duration such as 20m"))]
    #[x_kube(validation = kube::core::Rule::new(format!("!self.matches({GO_DURATION_RE}) || duration(self) >= duration('1m')")).message("must be at least 1m"))]
    pub renew_before: Option<Duration>,
    /// Extra session tags (key → value) added to every session, next to the operator's
    /// own `securepipe:*` tags. Keys up to 128 characters, values up to 256.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 47))]
    #[x_kube(validation = kube::core::Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)").message("session tag keys must be 1 to 128 characters"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(k, !k.lowerAscii().startsWith('securepipe:') && !k.lowerAscii().startsWith('aws:'))").message("session tag keys must not start with the reserved prefixes securepipe: or aws: (any letter case)"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(k, size(self[k]) <= 256)").message("session tag values must be at most 256 characters"))]
    pub session_tags: BTreeMap<String, String>,
    /// When the resource is deleted, deny every session issued for it so far (a deny
    /// statement on the role, keyed on the session tags and issue time).
    #[serde(default)]
    pub revoke_on_delete: bool,
}

/// A Go duration string in CEL (RE2) syntax, used to guard `duration()` calls so a
/// malformed value gets our message instead of a CEL evaluation error.
pub const GO_DURATION_RE: &str = r"'^([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$'";

fn default_session_duration() -> Duration {
    Duration::from(std::time::Duration::from_secs(3600))
}

impl Default for CredentialsSpec {
    fn default() -> Self {
        Self {
            secret_name: None,
            duration: default_session_duration(),
            renew_before: None,
            session_tags: BTreeMap::new(),
            revoke_on_delete: false,
        }
    }
}

/// Extract-and-shred settings.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!self.enabled || has(self.kmsKeyArn)").message("is required when extraction is enabled").field_path(".kmsKeyArn"))]
pub struct ExtractionSpec {
    /// Run worker Jobs for pending raw samples. Turning it off starts no new Job (a running
    /// one finishes) and withdraws the worker's credentials Secret.
    #[serde(default)]
    pub enabled: bool,
    /// The KMS key that wraps the raw samples' data keys. Data keys under any other key
    /// are refused, and every Decrypt is bound to this partition by encryption context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<KmsKeyArn>,
    /// Which features to compute, with librosa-compatible parameters.
    #[serde(default)]
    pub features: FeatureSpec,
    /// How often to look for pending raw samples (Go duration, at least 10s).
    #[serde(default = "default_extraction_interval")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({GO_DURATION_RE})")).message("must be a duration such as 5m"))]
    #[x_kube(validation = kube::core::Rule::new(format!("!self.matches({GO_DURATION_RE}) || duration(self) >= duration('10s')")).message("must be at least 10s"))]
    pub interval: Duration,
    /// How many worker Pods run at once. N > 1 makes an Indexed Job of N Pods, each taking
    /// one shard of the raw samples (stable hash of the key mod N).
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1, max = 64))]
    pub parallelism: i32,
    /// The worker image. Defaults to the operator's configured worker image (with the Helm
    /// chart: the operator's own image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
}

fn default_extraction_interval() -> Duration {
    Duration::from(std::time::Duration::from_secs(300))
}

fn default_parallelism() -> i32 {
    1
}

/// Feature extraction parameters. Defaults match `librosa.feature.mfcc`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.nMfcc <= self.nMels").message("must not exceed nMels").field_path(".nMfcc"))]
#[x_kube(validation = kube::core::Rule::new("self.hopLength <= self.nFft").message("must not exceed nFft").field_path(".hopLength"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.fmax) || self.fmax > self.fmin").message("must be greater than fmin").field_path(".fmax"))]
pub struct FeatureSpec {
    /// `Mfcc` (n_mfcc × frames) or `LogMel` (n_mels × frames, in dB).
    #[serde(default)]
    pub kind: FeatureKind,
    /// Number of MFCC coefficients (at most `nMels`).
    #[serde(default = "default_n_mfcc")]
    #[schemars(range(min = 1, max = 128))]
    pub n_mfcc: i32,
    /// FFT length in samples: a power of two from 16 to 65536.
    #[serde(default = "default_n_fft")]
    #[x_kube(validation = kube::core::Rule::new("self in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]").message("must be a power of two from 16 to 65536"))]
    pub n_fft: i32,
    /// Samples between successive frames.
    #[serde(default = "default_hop_length")]
    #[schemars(range(min = 1, max = 65536))]
    pub hop_length: i32,
    /// Number of mel bands.
    #[serde(default = "default_n_mels")]
    #[schemars(range(min = 1, max = 512))]
    pub n_mels: i32,
    /// Lowest frequency of the mel filter bank, in Hz.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub fmin: f64,
    /// Highest frequency of the mel filter bank, in Hz. Defaults to half the sample rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub fmax: Option<f64>,
}

fn default_n_mfcc() -> i32 {
    20
}
fn default_n_fft() -> i32 {
    2048
}
fn default_hop_length() -> i32 {
    512
}
fn default_n_mels() -> i32 {
    128
}

impl Default for FeatureSpec {
    fn default() -> Self {
        Self {
            kind: FeatureKind::default(),
            n_mfcc: default_n_mfcc(),
            n_fft: default_n_fft(),
            hop_length: default_hop_length(),
            n_mels: default_n_mels(),
            fmin: 0.0,
            fmax: None,
        }
    }
}

/// Which features the worker writes.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    // Mel-frequency cepstral coefficients.
    #[default]
    Mfcc,
    // Log-power mel spectrogram in dB.
    LogMel,
}

/// Observed state of a TrainingPartition.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPartitionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `CredentialsIssued`, `Degraded` and `Stalled` (only someone can fix it), each
    /// with a reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The credentials currently in the Secret (never the secret parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStatus>,
    /// Extract-and-shred progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionStatus>,
    /// Every role a session was ever minted on for this TrainingPartition (recorded before
    /// the mint). With `revokeOnDelete`, deletion revokes this object's sessions on each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_role_arns: Vec<String>,
}

/// The public facts of the credentials in the Secret.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// The Secret that holds them.
    pub secret_name: String,
    /// When the session expires.
    pub expires_at: Time,
    /// When the session was issued.
    pub renewed_at: Time,
    /// The STS role session name (visible in CloudTrail).
    pub session_name: String,
    /// The session's access key id (not secret; identifies the session in CloudTrail).
    pub access_key_id: String,
}

/// Extract-and-shred counters, cumulative over the resource's life.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionStatus {
    /// Raw samples waiting under the raw prefix at the last scan (quarantined ones not
    /// counted). The scan lists at most 1000 keys: with `pendingCapped`, at least this many.
    #[serde(default)]
    pub pending: i64,
    /// The last scan stopped at its limit: `pending` is a lower bound ("1000+").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_capped: bool,
    /// Samples whose features were written and verified and whose raw versions were deleted.
    #[serde(default)]
    pub shredded: i64,
    /// Samples that failed authentication and were moved aside, never processed.
    #[serde(default)]
    pub quarantined: i64,
    /// Samples that failed for another reason and will be retried.
    #[serde(default)]
    pub failed: i64,
    /// The worker Job currently running, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// When the raw prefix was last scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_time: Option<Time>,
    /// The last worker Job whose results are counted above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<String>,
}

impl TrainingPartition {
    /// The partition name: `spec.partition`, or the resource's name.
    pub fn partition_name(&self) -> Option<&str> {
        match &self.spec.partition {
            Some(partition) => Some(partition.as_str()),
            None => self.metadata.name.as_deref(),
        }
    }

    /// The extraction worker's credentials Secret: `<name>-worker-aws` (never the ML team's).
    pub fn worker_secret_name(&self) -> Option<String> {
        self.metadata
            .name
            .as_ref()
            .map(|name| format!("{name}-worker-aws"))
    }

    /// The credentials Secret's name: `spec.credentials.secretName`, or `<name>-aws`.
    pub fn secret_name(&self) -> Option<String> {
        match &self.spec.credentials.secret_name {
            Some(name) => Some(name.to_string()),
            None => self
                .metadata
                .name
                .as_ref()
                .map(|name| format!("{name}-aws")),
        }
    }
}

//! `RetentionPolicy`: lifecycle rules on a bucket, owned rule by rule, and an optional
//! check (or enforcement) of the bucket's security posture.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::training_partition::GO_DURATION_RE;
use crate::types::{AwsRegion, BucketName, IamRoleArn, KmsKeyArn, S3Prefix};

/// Lifecycle rules that securepipe owns on a bucket. Rules that other tools own on the
/// same bucket are left untouched; drift on owned rules is corrected every `resyncInterval`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "securepipe.io",
    version = "v1alpha1",
    kind = "RetentionPolicy",
    namespaced,
    shortname = "rp",
    category = "securepipe",
    status = "RetentionPolicyStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Bucket","type":"string","jsonPath":".spec.bucket"}"#,
    printcolumn = r#"{"name":"Drift","type":"integer","description":"Drift corrections so far","jsonPath":".status.driftCorrections"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicySpec {
    /// The bucket whose lifecycle configuration holds these rules. Immutable: the rules
    /// written to a bucket are removed when their policy is deleted, so moving a policy
    /// to another bucket means a new RetentionPolicy.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("bucket is immutable; create a new RetentionPolicy for another bucket"))]
    pub bucket: BucketName,
    /// The bucket's AWS region.
    pub region: AwsRegion,
    /// A role to assume for the bucket's lifecycle calls; the operator's own identity
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<IamRoleArn>,
    /// The lifecycle rules this policy owns. Each is stored in S3 under an ID that marks
    /// it as this policy's.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["id".into()]))]
    pub rules: Vec<LifecycleRule>,
    /// How often to re-read the bucket and correct drift (Go duration, at least 10s).
    #[serde(default = "default_resync_interval")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({GO_DURATION_RE})")).message("must be a duration such as 10m"))]
    #[x_kube(validation = kube::core::Rule::new(format!("!self.matches({GO_DURATION_RE}) || duration(self) >= duration('10s')")).message("must be at least 10s"))]
    pub resync_interval: Duration,
    /// Security settings the bucket should have; checked (Audit) or corrected (Enforce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_posture: Option<BucketPosture>,
}

fn default_resync_interval() -> Duration {
    Duration::from(std::time::Duration::from_secs(600))
}

/// One lifecycle rule, applied to the objects under `prefix`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.transitions) || has(self.expirationDays) || has(self.noncurrentVersionExpirationDays) || has(self.abortIncompleteMultipartUploadDays)").message("a rule needs at least one action: transitions, expirationDays, noncurrentVersionExpirationDays or abortIncompleteMultipartUploadDays"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.expirationDays) || !has(self.transitions) || self.transitions.all(t, self.expirationDays > t.days)").message("must be greater than the days of every transition").field_path(".expirationDays"))]
pub struct LifecycleRule {
    /// The rule's name within this policy: letters, digits, '.', '_' and '-'.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self.matches('^[A-Za-z0-9._-]+$')").message("rule id may contain only letters, digits, '.', '_' and '-'"))]
    pub id: String,
    /// The objects the rule applies to.
    pub prefix: S3Prefix,
    /// Storage-class transitions, in strictly ascending order of days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6))]
    #[x_kube(validation = kube::core::Rule::new("self.map(t, t.days).isSorted() && self.all(t, self.exists_one(u, u.days == t.days))").message("transitions must be in strictly ascending order of days"))]
    pub transitions: Vec<Transition>,
    /// Delete current versions this many days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub expiration_days: Option<i32>,
    /// Delete noncurrent versions this many days after they become noncurrent (needed in
    /// versioned buckets, where a delete only adds a delete marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Abort multipart uploads left incomplete this many days after they started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub abort_incomplete_multipart_upload_days: Option<i32>,
}

/// Move objects to another storage class after a number of days.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(self.storageClass in ['STANDARD_IA', 'ONEZONE_IA']) || self.days >= 30").message("transitions to STANDARD_IA or ONEZONE_IA need days >= 30 (S3 rejects fewer)").field_path(".days"))]
pub struct Transition {
    /// Days after object creation.
    #[schemars(range(min = 0, max = 36500))]
    pub days: i32,
    /// The target storage class.
    pub storage_class: StorageClass,
}

/// The storage classes a lifecycle transition can target.
#[derive(JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types)] // the names are S3's own
pub enum StorageClass {
    STANDARD_IA,
    ONEZONE_IA,
    INTELLIGENT_TIERING,
    GLACIER_IR,
    GLACIER,
    DEEP_ARCHIVE,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::STANDARD_IA => "STANDARD_IA",
            StorageClass::ONEZONE_IA => "ONEZONE_IA",
            StorageClass::INTELLIGENT_TIERING => "INTELLIGENT_TIERING",
            StorageClass::GLACIER_IR => "GLACIER_IR",
            StorageClass::GLACIER => "GLACIER",
            StorageClass::DEEP_ARCHIVE => "DEEP_ARCHIVE",
        }
    }
}

/// The security settings a bucket holding biometric data should have.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketPosture {
    /// Default encryption must be SSE-KMS with this key (and S3 Bucket Keys on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse_kms_key_arn: Option<KmsKeyArn>,
    /// Versioning must be enabled.
    #[serde(default = "yes")]
    pub versioning: bool,
    /// All four public access block settings must be on.
    #[serde(default = "yes")]
    pub block_public_access: bool,
    /// The bucket policy must deny requests without TLS (`aws:SecureTransport = false`).
    #[serde(default = "yes")]
    pub deny_insecure_transport: bool,
    /// `Audit` reports findings in status; `Enforce` also corrects them.
    #[serde(default)]
    pub mode: PostureMode,
}

fn yes() -> bool {
    true
}

/// Whether posture findings are only reported or also corrected.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostureMode {
    // Report findings only.
    #[default]
    Audit,
    // Report and correct.
    Enforce,
}

/// Observed state of a RetentionPolicy.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, `Drifted`, `Conflict`, `Degraded` and `Stalled` (only someone can
    /// fix it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The S3 rule IDs this policy last applied and confirmed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_rules: Vec<String>,
    /// When the bucket was last read and found (or made) as desired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// How many times owned rules were found changed or missing and restored.
    #[serde(default)]
    pub drift_corrections: i64,
    /// Findings of the last posture check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub posture: Vec<PostureFinding>,
}

/// The result of one posture check.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostureFinding {
    /// The check: `Encryption`, `Versioning`, `PublicAccessBlock` or `SecureTransport`.
    pub check: String,
    /// `Compliant`, `NonCompliant` or `Corrected`.
    pub state: String,
    /// What was found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

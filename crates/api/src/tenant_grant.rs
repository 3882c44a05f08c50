//! `TenantGrant`: what the platform team lets a set of namespaces use. Cluster-scoped, so
//! only whoever may write cluster-scoped securepipe objects (the platform team) grants. A
//! TrainingPartition or RetentionPolicy is acted on only when one grant that applies to its
//! namespace allows everything it asks for; anything else is refused before any AWS call.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::training_partition::{Access, GO_DURATION_RE};
use crate::types::{
    BucketName, IamRoleArn, KmsKeyArn, NamespaceName, PartitionPattern, RulePrefix, S3Prefix,
    SessionTagKey,
};

/// Grants the namespaces it names (or selects) the roles, buckets and partitions they may
/// use through securepipe, and the buckets and prefixes whose lifecycle they may manage.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "securepipe.io",
    version = "v1alpha1",
    kind = "TenantGrant",
    shortname = "tg",
    category = "securepipe",
    printcolumn = r#"{"name":"Namespaces","type":"string","jsonPath":".spec.namespaces"}"#,
    printcolumn = r#"{"name":"Buckets","type":"string","jsonPath":".spec.buckets"}"#,
    printcolumn = r#"{"name":"Max Access","type":"string","jsonPath":".spec.maxAccess"}"#,
    printcolumn = r#"{"name":"Max Duration","type":"string","jsonPath":".spec.maxDuration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("(has(self.namespaces) && size(self.namespaces) > 0) || has(self.namespaceSelector)").message("must name namespaces, select them with namespaceSelector, or both"))]
pub struct TenantGrantSpec {
    /// The namespaces this grant applies to, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 256))]
    pub namespaces: Vec<NamespaceName>,
    /// The namespaces this grant applies to, by their labels (in addition to `namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The IAM roles a TrainingPartition may assume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64))]
    pub role_arns: Vec<IamRoleArn>,
    /// The buckets a TrainingPartition may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64))]
    pub buckets: Vec<BucketName>,
    /// The partitions a TrainingPartition may name: exact names or `*` globs, where
    /// `${namespace}` stands for the TrainingPartition's namespace (`${namespace}-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64))]
    pub partitions: Vec<PartitionPattern>,
    /// The widest access granted: `ReadOnly` or `ReadWrite`.
    #[serde(default)]
    pub max_access: Access,
    /// The longest session granted (Go duration, 15m..12h).
    #[serde(default = "default_max_duration")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({GO_DURATION_RE})")).message("must be a duration such as 1h"))]
    #[x_kube(validation = kube::core::Rule::new(format!("!self.matches({GO_DURATION_RE}) || (duration(self) >= duration('15m') && duration(self) <= duration('12h'))")).message("must be between 15m and 12h"))]
    pub max_duration: Duration,
    /// The feature prefixes a TrainingPartition may use. Defaults to `training/features/`.
    #[serde(default = "default_feature_prefixes")]
    #[schemars(extend("maxItems" = 16))]
    pub feature_prefixes: Vec<S3Prefix>,
    /// Extract-and-shred, when granted: the raw prefixes and the KMS keys it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionGrant>,
    /// Session tag keys a TrainingPartition may set (exact keys). None by default; the
    /// reserved prefixes `securepipe:` and `aws:` can never be granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 47))]
    pub session_tag_keys: Vec<SessionTagKey>,
    /// Buckets whose lifecycle rules (and posture) RetentionPolicies may manage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64))]
    pub retention: Vec<RetentionGrant>,
}

/// Extract-and-shred as granted.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionGrant {
    /// The raw prefixes extraction may read and shred. Defaults to `ingestion/raw/`.
    #[serde(default = "default_raw_prefixes")]
    #[schemars(extend("maxItems" = 16))]
    pub raw_prefixes: Vec<S3Prefix>,
    /// The KMS keys raw samples may be wrapped under.
    #[schemars(extend("minItems" = 1, "maxItems" = 16))]
    pub kms_key_arns: Vec<KmsKeyArn>,
}

/// One bucket whose lifecycle RetentionPolicies may manage.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionGrant {
    /// The bucket.
    pub bucket: BucketName,
    /// The prefixes rules may filter on: a rule's prefix must start with one of them.
    /// Empty grants none (a whole-bucket rule needs the prefix `""`, given explicitly).
    #[serde(default)]
    #[schemars(extend("maxItems" = 64))]
    pub prefixes: Vec<RulePrefix>,
    /// Whether a policy may check and enforce the bucket's posture (default encryption,
    /// versioning, public access block, TLS-only policy).
    #[serde(default)]
    pub posture: bool,
}

fn default_max_duration() -> Duration {
    Duration::from(std::time::Duration::from_secs(3600))
}

fn default_feature_prefixes() -> Vec<S3Prefix> {
    vec![S3Prefix::from("training/features/")]
}

fn default_raw_prefixes() -> Vec<S3Prefix> {
    vec![S3Prefix::from("ingestion/raw/")]
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn the_crd_is_cluster_scoped_with_the_short_name_tg() {
        let crd = TenantGrant::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&["tg".to_owned()][..])
        );
    }

    #[test]
    fn the_documented_example_parses_with_defaults() {
        let grant: TenantGrant = serde_yaml::from_str(
            r#"
apiVersion: securepipe.io/v1alpha1
kind: TenantGrant
metadata: {name: voice-ml}
spec:
  namespaces: [voice-ml]
  roleArns: [arn:aws:iam::111122223333:role/securepipe-training]
  buckets: [biometrics-prod]
  partitions: ["${namespace}-*"]
  maxAccess: ReadOnly
  maxDuration: 1h
"#,
        )
        .unwrap();
        let spec = grant.spec;
        assert_eq!(spec.partitions, [PartitionPattern::from("${namespace}-*")]);
        assert_eq!(spec.max_access, Access::ReadOnly);
        assert_eq!(
            std::time::Duration::from(spec.max_duration),
            std::time::Duration::from_secs(3600)
        );
        assert_eq!(
            spec.feature_prefixes,
            [S3Prefix::from("training/features/")]
        );
        assert!(spec.extraction.is_none() && spec.retention.is_empty());
        assert!(spec.session_tag_keys.is_empty());
    }
}

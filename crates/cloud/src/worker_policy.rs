//! The inline session policy of an extract-and-shred worker: exactly the steps the worker
//! takes on one partition (list, read, tag and delete its raw samples; write and verify
//! its features; write its attestation; unwrap data keys bound to the partition), and
//! nothing else.

use serde_json::{Value, json};

use crate::session_policy::{MAX_POLICY_CHARS, PolicyError};
use crate::session_tags;

/// The folders and key of one partition's extraction.
#[derive(Clone, Copy, Debug)]
pub struct WorkerScope<'a> {
    /// The AWS partition of the ARNs (`aws`, `aws-cn`, ...).
    pub aws_partition: &'a str,
    pub bucket: &'a str,
    pub region: &'a str,
    /// The partition name: the value of the `securepipe:partition` encryption context.
    pub partition: &'a str,
    /// `<rawPrefix><partition>/`.
    pub raw: &'a str,
    /// `<featurePrefix><partition>/`.
    pub features: &'a str,
    /// `<attestationPrefix><partition>/`.
    pub attestations: &'a str,
    pub kms_key_arn: &'a str,
}

/// Actions on the raw folder's objects: read (pinned to a version), read and set the
/// quarantine tag, delete every version.
pub const RAW_ACTIONS: [&str; 8] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    // The worker reads and writes the tags of a pinned version, which S3 authorizes
    // under the *Version* actions.
    "s3:GetObjectVersionTagging",
    "s3:PutObjectVersionTagging",
];
/// Actions on the feature folder: write, then read back to verify.
pub const FEATURE_ACTIONS: [&str; 2] = ["s3:PutObject", "s3:GetObject"];
/// Actions on the attestation folder: write, and read back (the operator reads a Job's
/// attestations, as the worker session, when its Pods are gone).
pub const ATTESTATION_ACTIONS: [&str; 2] = ["s3:PutObject", "s3:GetObject"];
/// Actions on the bucket: list the two folders (objects and versions, which S3
/// authorizes separately) and read whether it is versioned.
pub const LIST_ACTIONS: [&str; 2] = ["s3:ListBucket", "s3:ListBucketVersions"];
pub const BUCKET_READ_ACTIONS: [&str; 1] = ["s3:GetBucketVersioning"];

/// Builds the minified worker session policy for `scope`, refused when AWS would refuse it
/// (over 2,048 characters) or when a folder is not a plain prefix.
pub fn build(scope: &WorkerScope<'_>) -> Result<String, PolicyError> {
    for folder in [scope.raw, scope.features, scope.attestations] {
        if !folder.ends_with('/') || folder.contains(['*', '?', '$']) {
            return Err(PolicyError::InvalidPrefix {
                bucket: scope.bucket.to_owned(),
                prefix: folder.to_owned(),
            });
        }
    }
    let bucket_arn = format!("arn:{}:s3:::{}", scope.aws_partition, scope.bucket);
    let objects = |folder: &str| format!("{bucket_arn}/{folder}*");
    let in_region = json!({ "StringEquals": { "aws:RequestedRegion": scope.region } });
    let mut list_condition = in_region.clone();
    list_condition["StringLike"] = json!({
        "s3:prefix": [format!("{}*", scope.raw), format!("{}*", scope.features)]
    });
    let statement = |sid: &str, actions: &[&str], resource: String, condition: &Value| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": resource,
            "Condition": condition,
        })
    };
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            statement("ListFolders", &LIST_ACTIONS, bucket_arn.clone(), &list_condition),
            statement("BucketVersioning", &BUCKET_READ_ACTIONS, bucket_arn.clone(), &in_region),
            statement("RawSamples", &RAW_ACTIONS, objects(scope.raw), &in_region),
            statement("Features", &FEATURE_ACTIONS, objects(scope.features), &in_region),
            statement("Attestations", &ATTESTATION_ACTIONS, objects(scope.attestations), &in_region),
            {
                "Sid": "UnwrapPartitionKeys",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": scope.kms_key_arn,
                "Condition": {
                    "StringEquals": {
                        format!("kms:EncryptionContext:{}", session_tags::PARTITION): scope.partition
                    }
                },
            },
        ]
    });
    let text = policy.to_string();
    let chars = text.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(PolicyError::TooLarge {
            bucket: scope.bucket.to_owned(),
            prefix: scope.raw.to_owned(),
            chars,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1111";

    fn scope() -> WorkerScope<'static> {
        WorkerScope {
            aws_partition: "aws",
            bucket: "biometrics",
            region: "eu-west-1",
            partition: "speech",
            raw: "ingestion/raw/speech/",
            features: "training/features/speech/",
            attestations: "audit/speech/",
            kms_key_arn: KEY,
        }
    }

    fn statements(policy: &str) -> Vec<Value> {
        let parsed: Value = serde_json::from_str(policy).unwrap();
        parsed["Statement"].as_array().unwrap().clone()
    }

    #[test]
    fn each_folder_gets_exactly_its_actions() {
        let all = statements(&build(&scope()).unwrap());
        let by_sid = |sid: &str| all.iter().find(|s| s["Sid"] == sid).unwrap().clone();
        assert_eq!(all.len(), 6);
        assert!(all.iter().all(|s| s["Effect"] == "Allow"));
        let list = by_sid("ListFolders");
        assert_eq!(list["Action"], json!(LIST_ACTIONS));
        assert_eq!(list["Resource"], "arn:aws:s3:::biometrics");
        assert_eq!(
            list["Condition"]["StringLike"]["s3:prefix"],
            json!(["ingestion/raw/speech/*", "training/features/speech/*"])
        );
        let raw = by_sid("RawSamples");
        assert_eq!(raw["Action"], json!(RAW_ACTIONS));
        assert_eq!(
            raw["Resource"],
            "arn:aws:s3:::biometrics/ingestion/raw/speech/*"
        );
        let features = by_sid("Features");
        assert_eq!(features["Action"], json!(["s3:PutObject", "s3:GetObject"]));
        assert_eq!(
            features["Resource"],
            "arn:aws:s3:::biometrics/training/features/speech/*"
        );
        let attestations = by_sid("Attestations");
        assert_eq!(
            attestations["Action"],
            json!(["s3:PutObject", "s3:GetObject"])
        );
        assert_eq!(
            attestations["Resource"],
            "arn:aws:s3:::biometrics/audit/speech/*"
        );
        let kms = by_sid("UnwrapPartitionKeys");
        assert_eq!(kms["Action"], "kms:Decrypt");
        assert_eq!(kms["Resource"], KEY);
        assert_eq!(
            kms["Condition"]["StringEquals"]["kms:EncryptionContext:securepipe:partition"],
            "speech"
        );
        // No delete outside the raw folder, no write outside features and attestations.
        for statement in &all {
            let actions = statement["Action"].to_string();
            if actions.contains("Delete") {
                assert_eq!(statement["Sid"], "RawSamples");
            }
        }
    }

    #[test]
    fn a_policy_over_the_limit_is_refused_before_minting() {
        let long = format!("{}/speech/", "r".repeat(1200));
        let mut big = scope();
        big.raw = &long;
        match build(&big) {
            Err(PolicyError::TooLarge { chars, .. }) => assert!(chars > MAX_POLICY_CHARS),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn wildcards_in_a_folder_are_refused() {
        let mut bad = scope();
        bad.attestations = "audit/*/";
        assert!(matches!(
            build(&bad),
            Err(PolicyError::InvalidPrefix { .. })
        ));
    }
}

//! A bucket's security posture: default encryption, versioning, the public access block
//! and the bucket policy statement that refuses plain HTTP. One read and one correcting
//! write per setting, plus the pure bucket-policy helpers (detecting and merging the deny
//! statement without touching any other statement).

use aws_sdk_s3::types::{
    BucketVersioningStatus, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::failure::{Failure, FailureReason};
use crate::lifecycle::S3Client;

/// The `Sid` of the statement securepipe adds to a bucket policy.
pub const DENY_INSECURE_TRANSPORT_SID: &str = "SecurepipeDenyInsecureTransport";

/// A failed posture call, naming the bucket and the operation.
#[derive(Debug, thiserror::Error)]
pub enum PostureError {
    #[error("{operation} on bucket {bucket} failed ({}): {}", failure.reason, failure.message)]
    Call {
        operation: &'static str,
        bucket: String,
        failure: Failure,
    },
    #[error("the bucket policy of {bucket} is not a JSON object with a Statement list: {detail}")]
    UnreadablePolicy { bucket: String, detail: String },
}

impl PostureError {
    fn call<E, R>(
        operation: &'static str,
        bucket: &str,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self::Call {
            operation,
            bucket: bucket.to_owned(),
            failure: Failure::from_sdk(err),
        }
    }

    fn build(operation: &'static str, bucket: &str, detail: String) -> Self {
        Self::Call {
            operation,
            bucket: bucket.to_owned(),
            failure: Failure {
                reason: FailureReason::InvalidRequest,
                message: detail,
            },
        }
    }

    pub fn reason(&self) -> FailureReason {
        match self {
            Self::Call { failure, .. } => failure.reason,
            Self::UnreadablePolicy { .. } => FailureReason::InvalidRequest,
        }
    }
}

/// The bucket's default encryption (its first rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultEncryption {
    /// `AES256`, `aws:kms`, `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: bool,
}

impl DefaultEncryption {
    /// Whether this is SSE-KMS with `key_arn` and S3 Bucket Keys on. S3 may report the key
    /// by ARN or by bare key ID.
    pub fn is_kms_with(&self, key_arn: &str) -> bool {
        let key_matches = self.kms_key_id.as_deref().is_some_and(|id| {
            id == key_arn
                || key_arn
                    .rsplit_once("key/")
                    .is_some_and(|(_, bare)| bare == id)
        });
        self.algorithm == "aws:kms" && key_matches && self.bucket_key_enabled
    }
}

/// The four public access block settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub fn all_on(&self) -> bool {
        self.block_public_acls
            && self.ignore_public_acls
            && self.block_public_policy
            && self.restrict_public_buckets
    }
}

/// The default encryption, `None` when the bucket has none configured.
pub async fn read_encryption(
    s3: &S3Client,
    bucket: &str,
) -> Result<Option<DefaultEncryption>, PostureError> {
    match s3.0.get_bucket_encryption().bucket(bucket).send().await {
        Ok(output) => Ok(output
            .server_side_encryption_configuration
            .and_then(|config| config.rules.into_iter().next())
            .map(|rule| DefaultEncryption {
                algorithm: rule
                    .apply_server_side_encryption_by_default
                    .as_ref()
                    .map(|d| d.sse_algorithm.as_str().to_owned())
                    .unwrap_or_default(),
                kms_key_id: rule
                    .apply_server_side_encryption_by_default
                    .and_then(|d| d.kms_master_key_id),
                bucket_key_enabled: rule.bucket_key_enabled.unwrap_or(false),
            })),
        Err(err) if err.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            Ok(None)
        }
        Err(err) => Err(PostureError::call("GetBucketEncryption", bucket, &err)),
    }
}

/// Sets default encryption to SSE-KMS with `key_arn` and S3 Bucket Keys on.
pub async fn put_kms_encryption(
    s3: &S3Client,
    bucket: &str,
    key_arn: &str,
) -> Result<(), PostureError> {
    const OPERATION: &str = "PutBucketEncryption";
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key_arn)
        .build()
        .map_err(|err| PostureError::build(OPERATION, bucket, err.to_string()))?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(true)
                .build(),
        )
        .build()
        .map_err(|err| PostureError::build(OPERATION, bucket, err.to_string()))?;
    s3.0.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| PostureError::call(OPERATION, bucket, &err))
}

/// The versioning status as S3 names it (`Enabled`, `Suspended`), `None` when versioning
/// was never configured.
pub async fn read_versioning(s3: &S3Client, bucket: &str) -> Result<Option<String>, PostureError> {
    s3.0.get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map(|output| output.status.map(|s| s.as_str().to_owned()))
        .map_err(|err| PostureError::call("GetBucketVersioning", bucket, &err))
}

pub async fn enable_versioning(s3: &S3Client, bucket: &str) -> Result<(), PostureError> {
    s3.0.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|err| PostureError::call("PutBucketVersioning", bucket, &err))
}

/// The public access block; all off when the bucket has none.
pub async fn read_public_access_block(
    s3: &S3Client,
    bucket: &str,
) -> Result<PublicAccessBlock, PostureError> {
    match s3.0.get_public_access_block().bucket(bucket).send().await {
        Ok(output) => Ok(output
            .public_access_block_configuration
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls.unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                block_public_policy: c.block_public_policy.unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
            })
            .unwrap_or_default()),
        Err(err) if err.code() == Some("NoSuchPublicAccessBlockConfiguration") => {
            Ok(PublicAccessBlock::default())
        }
        Err(err) => Err(PostureError::call("GetPublicAccessBlock", bucket, &err)),
    }
}

pub async fn block_all_public_access(s3: &S3Client, bucket: &str) -> Result<(), PostureError> {
    s3.0.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|err| PostureError::call("PutPublicAccessBlock", bucket, &err))
}

/// The bucket policy JSON, `None` when the bucket has no policy.
pub async fn read_policy(s3: &S3Client, bucket: &str) -> Result<Option<String>, PostureError> {
    match s3.0.get_bucket_policy().bucket(bucket).send().await {
        Ok(output) => Ok(output.policy),
        Err(err) if err.code() == Some("NoSuchBucketPolicy") => Ok(None),
        Err(err) => Err(PostureError::call("GetBucketPolicy", bucket, &err)),
    }
}

pub async fn put_policy(s3: &S3Client, bucket: &str, policy: &str) -> Result<(), PostureError> {
    s3.0.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| PostureError::call("PutBucketPolicy", bucket, &err))
}

/// The ARN partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, ...
pub fn arn_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// `arn:<partition>:s3:::<bucket>`.
pub fn bucket_arn(region: &str, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", arn_partition(region))
}

/// The statement that denies every S3 action on the bucket and its objects over plain HTTP.
pub fn deny_insecure_transport_statement(bucket_arn: &str) -> Value {
    json!({
        "Sid": DENY_INSECURE_TRANSPORT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// A string or a list of strings, as IAM policies allow.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.eq_ignore_ascii_case("false"),
        Value::Array(many) => !many.is_empty() && many.iter().all(is_false),
        _ => false,
    }
}

/// Whether some statement of `policy` (written by anyone) denies all S3 actions on the
/// bucket and its objects, to everyone, when `aws:SecureTransport` is false.
pub fn denies_insecure_transport(policy: &str, bucket_arn: &str) -> bool {
    let Ok(document) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements = match &document["Statement"] {
        Value::Array(many) => many.iter().collect::<Vec<_>>(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    let objects_arn = format!("{bucket_arn}/*");
    statements.into_iter().any(|statement| {
        let everyone = match &statement["Principal"] {
            Value::String(p) => p == "*",
            Value::Object(p) => p.get("AWS").is_some_and(|aws| strings(aws).contains(&"*")),
            _ => false,
        };
        let actions = strings(&statement["Action"]);
        let resources = strings(&statement["Resource"]);
        let covers = |arn: &str| resources.iter().any(|r| *r == arn || *r == "*");
        statement["Effect"] == "Deny"
            && everyone
            && actions.iter().any(|a| *a == "s3:*" || *a == "*")
            && covers(bucket_arn)
            && covers(&objects_arn)
            && is_false(&statement["Condition"]["Bool"]["aws:SecureTransport"])
    })
}

/// `policy` (or a new policy when `None`) with securepipe's deny statement added, or
/// replaced when a statement with its `Sid` exists. Every other statement and field is
/// kept as it was.
pub fn with_deny_statement(
    policy: Option<&str>,
    bucket: &str,
    bucket_arn: &str,
) -> Result<String, PostureError> {
    let unreadable = |detail: String| PostureError::UnreadablePolicy {
        bucket: bucket.to_owned(),
        detail,
    };
    let mut document: Value = match policy {
        Some(text) => serde_json::from_str(text).map_err(|err| unreadable(err.to_string()))?,
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    let object = document
        .as_object_mut()
        .ok_or_else(|| unreadable("not an object".into()))?;
    let statements = object
        .entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    if statements.is_object() {
        *statements = Value::Array(vec![statements.take()]);
    }
    let list = statements
        .as_array_mut()
        .ok_or_else(|| unreadable("Statement is neither a list nor an object".into()))?;
    let ours = deny_insecure_transport_statement(bucket_arn);
    match list
        .iter_mut()
        .find(|s| s["Sid"] == DENY_INSECURE_TRANSPORT_SID)
    {
        Some(existing) => *existing = ours,
        None => list.push(ours),
    }
    Ok(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:s3:::biometrics-prod";

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(bucket_arn("us-east-1", "b"), "arn:aws:s3:::b");
        assert_eq!(bucket_arn("cn-north-1", "b"), "arn:aws-cn:s3:::b");
        assert_eq!(bucket_arn("us-gov-west-1", "b"), "arn:aws-us-gov:s3:::b");
    }

    #[test]
    fn a_new_policy_holds_only_the_deny_statement() {
        let policy = with_deny_statement(None, "biometrics-prod", ARN).unwrap();
        let parsed: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        assert_eq!(parsed["Statement"].as_array().unwrap().len(), 1);
        assert!(denies_insecure_transport(&policy, ARN));
    }

    #[test]
    fn other_statements_and_fields_are_kept() {
        let existing = json!({
            "Version": "2012-10-17",
            "Id": "terraform-managed",
            "Statement": [
                {"Sid": "AllowReader", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::000000000000:role/reader"},
                 "Action": "s3:GetObject", "Resource": format!("{ARN}/*")},
                {"Sid": "DenyOtherAccounts", "Effect": "Deny", "Principal": "*",
                 "Action": "s3:*", "Resource": [ARN, format!("{ARN}/*")],
                 "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "000000000000"}}}
            ]
        });
        let merged = with_deny_statement(Some(&existing.to_string()), "b", ARN).unwrap();
        let parsed: Value = serde_json::from_str(&merged).unwrap();
        let statements = parsed["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0], existing["Statement"][0]);
        assert_eq!(statements[1], existing["Statement"][1]);
        assert_eq!(parsed["Id"], "terraform-managed");
        assert!(denies_insecure_transport(&merged, ARN));
        assert!(!denies_insecure_transport(&existing.to_string(), ARN));
    }

    #[test]
    fn merging_twice_does_not_duplicate() {
        let once = with_deny_statement(None, "b", ARN).unwrap();
        let twice = with_deny_statement(Some(&once), "b", ARN).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn a_single_statement_object_becomes_a_list() {
        let single = json!({"Version": "2012-10-17", "Statement":
            {"Sid": "X", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}});
        let merged = with_deny_statement(Some(&single.to_string()), "b", ARN).unwrap();
        let parsed: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(parsed["Statement"][0]["Sid"], "X");
        assert_eq!(parsed["Statement"][1]["Sid"], DENY_INSECURE_TRANSPORT_SID);
    }

    #[test]
    fn garbage_is_an_error_not_a_replacement() {
        for bad in ["not json", "[1,2]", r#"{"Statement": 3}"#] {
            assert!(
                matches!(
                    with_deny_statement(Some(bad), "b", ARN),
                    Err(PostureError::UnreadablePolicy { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn equivalent_statements_written_by_others_count() {
        let other = json!({"Statement": [{
            "Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": ["s3:*"],
            "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}}]});
        assert!(denies_insecure_transport(&other.to_string(), ARN));
    }

    #[test]
    fn partial_statements_do_not_count() {
        let base = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [ARN, format!("{ARN}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}});
        let mut cases = Vec::new();
        let mut allow = base.clone();
        allow["Effect"] = json!("Allow");
        cases.push(("allow", allow));
        let mut get_only = base.clone();
        get_only["Action"] = json!("s3:GetObject");
        cases.push(("one action", get_only));
        let mut bucket_only = base.clone();
        bucket_only["Resource"] = json!(ARN);
        cases.push(("bucket only", bucket_only));
        let mut true_ = base.clone();
        true_["Condition"]["Bool"]["aws:SecureTransport"] = json!("true");
        cases.push(("secure transport true", true_));
        let mut one_principal = base.clone();
        one_principal["Principal"] = json!({"AWS": "arn:aws:iam::1:root"});
        cases.push(("one principal", one_principal));
        for (what, statement) in cases {
            let policy = json!({ "Statement": [statement] }).to_string();
            assert!(!denies_insecure_transport(&policy, ARN), "{what}");
        }
        let policy = json!({ "Statement": [base] }).to_string();
        assert!(denies_insecure_transport(&policy, ARN));
    }

    #[test]
    fn kms_key_matches_by_arn_or_bare_id() {
        let key = "arn:aws:kms:us-east-1:000000000000:key/0b6a8d4e-3c1f-4f7a-9d2e-5a6b7c8d9e0f";
        let mut enc = DefaultEncryption {
            algorithm: "aws:kms".into(),
            kms_key_id: Some(key.into()),
            bucket_key_enabled: true,
        };
        assert!(enc.is_kms_with(key));
        enc.kms_key_id = Some("0b6a8d4e-3c1f-4f7a-9d2e-5a6b7c8d9e0f".into());
        assert!(enc.is_kms_with(key));
        enc.bucket_key_enabled = false;
        assert!(!enc.is_kms_with(key));
        enc.bucket_key_enabled = true;
        enc.kms_key_id = Some("another".into());
        assert!(!enc.is_kms_with(key));
        enc.kms_key_id = Some(key.into());
        enc.algorithm = "AES256".into();
        assert!(!enc.is_kms_with(key));
    }
}

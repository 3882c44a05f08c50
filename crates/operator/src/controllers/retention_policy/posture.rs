//! The bucket posture check: read each setting the policy asks for, report it, and in
//! `Enforce` mode correct it and read it back. Only the deny statement is merged into the
//! bucket policy; no other statement is touched.

use securepipe_api::retention_policy::{BucketPosture, PostureFinding, PostureMode};
use securepipe_cloud::bucket_posture::{self as cloud, DefaultEncryption, PostureError};
use securepipe_cloud::lifecycle::S3Client;

pub const COMPLIANT: &str = "Compliant";
pub const NON_COMPLIANT: &str = "NonCompliant";
pub const CORRECTED: &str = "Corrected";

/// The four checks, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Encryption,
    Versioning,
    PublicAccessBlock,
    SecureTransport,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encryption => "Encryption",
            Self::Versioning => "Versioning",
            Self::PublicAccessBlock => "PublicAccessBlock",
            Self::SecureTransport => "SecureTransport",
        }
    }
}

/// What a posture pass found and did.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<PostureFinding>,
    /// The checks corrected in this pass (one event each).
    pub corrected: Vec<Check>,
    /// The first call that failed; the checks after it were still attempted.
    pub failure: Option<PostureError>,
}

impl Report {
    /// Checks still not compliant.
    pub fn non_compliant(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.state == NON_COMPLIANT)
            .count()
    }
}

/// The checks `posture` asks for.
pub fn checks(posture: &BucketPosture) -> Vec<Check> {
    let mut checks = Vec::new();
    if posture.sse_kms_key_arn.is_some() {
        checks.push(Check::Encryption);
    }
    if posture.versioning {
        checks.push(Check::Versioning);
    }
    if posture.block_public_access {
        checks.push(Check::PublicAccessBlock);
    }
    if posture.deny_insecure_transport {
        checks.push(Check::SecureTransport);
    }
    checks
}

/// Why the encryption setting is not the wanted one, or `None` when it is.
pub fn encryption_problem(found: Option<&DefaultEncryption>, key_arn: &str) -> Option<String> {
    match found {
        None => Some("no default encryption".to_owned()),
        Some(enc) if enc.is_kms_with(key_arn) => None,
        Some(enc) => Some(format!(
            "default encryption is {} with key {} and bucket key {}; want aws:kms with {key_arn} and bucket key on",
            enc.algorithm,
            enc.kms_key_id.as_deref().unwrap_or("(none)"),
            if enc.bucket_key_enabled { "on" } else { "off" }
        )),
    }
}

/// Reads the current state of `check`: `Ok(None)` when compliant, `Ok(Some(problem))`
/// when not, and the policy text for the SecureTransport correction.
async fn inspect(
    s3: &S3Client,
    bucket: &str,
    bucket_arn: &str,
    posture: &BucketPosture,
    check: Check,
) -> Result<(Option<String>, Option<String>), PostureError> {
    Ok(match check {
        Check::Encryption => {
            let key = posture.sse_kms_key_arn.as_deref().unwrap_or_default();
            let found = cloud::read_encryption(s3, bucket).await?;
            (encryption_problem(found.as_ref(), key), None)
        }
        Check::Versioning => {
            let status = cloud::read_versioning(s3, bucket).await?;
            let problem = (status.as_deref() != Some("Enabled")).then(|| {
                format!(
                    "versioning is {}",
                    status.as_deref().unwrap_or("not configured")
                )
            });
            (problem, None)
        }
        Check::PublicAccessBlock => {
            let block = cloud::read_public_access_block(s3, bucket).await?;
            let problem = (!block.all_on()).then(|| format!("public access block is {block:?}"));
            (problem, None)
        }
        Check::SecureTransport => {
            let policy = cloud::read_policy(s3, bucket).await?;
            let compliant = policy
                .as_deref()
                .is_some_and(|p| cloud::denies_insecure_transport(p, bucket_arn));
            let problem = (!compliant).then(|| {
                "no bucket policy statement denies requests with aws:SecureTransport = false"
                    .to_owned()
            });
            (problem, policy)
        }
    })
}

async fn correct(
    s3: &S3Client,
    bucket: &str,
    bucket_arn: &str,
    posture: &BucketPosture,
    check: Check,
    policy: Option<&str>,
) -> Result<(), PostureError> {
    match check {
        Check::Encryption => {
            let key = posture.sse_kms_key_arn.as_deref().unwrap_or_default();
            cloud::put_kms_encryption(s3, bucket, key).await
        }
        Check::Versioning => cloud::enable_versioning(s3, bucket).await,
        Check::PublicAccessBlock => cloud::block_all_public_access(s3, bucket).await,
        Check::SecureTransport => {
            let merged = cloud::with_deny_statement(policy, bucket, bucket_arn)?;
            cloud::put_policy(s3, bucket, &merged).await
        }
    }
}

/// Checks (and in `Enforce` mode corrects) every setting `posture` asks for.
pub async fn run(s3: &S3Client, bucket: &str, region: &str, posture: &BucketPosture) -> Report {
    let bucket_arn = cloud::bucket_arn(region, bucket);
    let mut report = Report::default();
    for check in checks(posture) {
        let finding = |state: &str, message: String| PostureFinding {
            check: check.as_str().to_owned(),
            state: state.to_owned(),
            message,
        };
        let (problem, policy) = match inspect(s3, bucket, &bucket_arn, posture, check).await {
            Ok(found) => found,
            Err(err) => {
                report
                    .findings
                    .push(finding(NON_COMPLIANT, format!("not checked: {err}")));
                report.failure.get_or_insert(err);
                continue;
            }
        };
        let Some(problem) = problem else {
            report.findings.push(finding(COMPLIANT, String::new()));
            continue;
        };
        if posture.mode == PostureMode::Audit {
            report.findings.push(finding(NON_COMPLIANT, problem));
            continue;
        }
        let corrected =
            match correct(s3, bucket, &bucket_arn, posture, check, policy.as_deref()).await {
                Ok(()) => inspect(s3, bucket, &bucket_arn, posture, check).await,
                Err(err) => Err(err),
            };
        match corrected {
            Ok((None, _)) => {
                report
                    .findings
                    .push(finding(CORRECTED, format!("was: {problem}")));
                report.corrected.push(check);
            }
            Ok((Some(still), _)) => report.findings.push(finding(
                NON_COMPLIANT,
                format!("correction did not take effect: {still}"),
            )),
            Err(err) => {
                report.findings.push(finding(
                    NON_COMPLIANT,
                    format!("{problem}; correction failed: {err}"),
                ));
                report.failure.get_or_insert(err);
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:000000000000:key/0b6a8d4e-3c1f-4f7a-9d2e-5a6b7c8d9e0f";

    fn posture(key: Option<&str>) -> BucketPosture {
        BucketPosture {
            sse_kms_key_arn: key.map(Into::into),
            versioning: true,
            block_public_access: true,
            deny_insecure_transport: true,
            mode: PostureMode::Audit,
        }
    }

    #[test]
    fn checks_follow_the_spec() {
        assert_eq!(
            checks(&posture(Some(KEY))),
            [
                Check::Encryption,
                Check::Versioning,
                Check::PublicAccessBlock,
                Check::SecureTransport
            ]
        );
        let mut some = posture(None);
        some.versioning = false;
        some.deny_insecure_transport = false;
        assert_eq!(checks(&some), [Check::PublicAccessBlock]);
    }

    #[test]
    fn encryption_problems_say_what_was_found() {
        assert_eq!(
            encryption_problem(None, KEY).as_deref(),
            Some("no default encryption")
        );
        let aes = DefaultEncryption {
            algorithm: "AES256".into(),
            kms_key_id: None,
            bucket_key_enabled: false,
        };
        let problem = encryption_problem(Some(&aes), KEY).unwrap();
        assert!(
            problem.contains("AES256") && problem.contains(KEY),
            "{problem}"
        );
        let good = DefaultEncryption {
            algorithm: "aws:kms".into(),
            kms_key_id: Some(KEY.into()),
            bucket_key_enabled: true,
        };
        assert_eq!(encryption_problem(Some(&good), KEY), None);
    }
}

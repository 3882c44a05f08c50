//! Revoking a TrainingPartition's sessions: one inline policy per role,
//! [`POLICY_NAME`], that denies everything to sessions carrying the TrainingPartition's
//! UID tag (set by the operator at every mint, whatever the partition, access or role
//! was then) and issued before a cut-off. Entries older than the longest session are
//! pruned at every write, so the role's inline-policy quota never fills up.
//!
//! A role is written only in an account whose answers can be trusted: the operator's own
//! (from `GetCallerIdentity`) or one with a configured revoker role. Elsewhere IAM would
//! answer `NoSuchEntity` for a role that exists, and that must never read as "role gone".

mod document;

pub use document::{Cutoff, Document, INLINE_POLICY_QUOTA, LONGEST_SESSION, quota_size};

use aws_sdk_sts::config::SharedCredentialsProvider;

use crate::Aws;
use crate::failure::{Failure, FailureReason};

/// The name of the revocation policy on every role securepipe revokes sessions of.
pub const POLICY_NAME: &str = "securepipe-revocations";
/// The session name of the operator's revoker sessions (visible in CloudTrail).
const REVOKER_SESSION_NAME: &str = "securepipe-revoker";

/// The sessions to revoke: those of the TrainingPartition `uid` on `role_arn`.
#[derive(Clone, Debug)]
pub struct Revocation<'a> {
    pub role_arn: &'a str,
    pub uid: &'a str,
    pub cutoff: Cutoff,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("{role_arn} is not an IAM role ARN")]
    NotARoleArn { role_arn: String },
    #[error(
        "role {role_arn} is in AWS account {account}, not in the operator's account {operator_account}, and no revoker role is configured for {account} (operator flag --revoker-role-arn, chart value aws.revokerRoleArns): securepipe could not write the revocation there"
    )]
    NoRevoker {
        role_arn: String,
        account: String,
        operator_account: String,
    },
    #[error("GetCallerIdentity (the operator's own AWS account) failed ({reason}): {message}")]
    CallerIdentity {
        reason: FailureReason,
        message: String,
    },
    #[error(
        "reading the revocation policy {POLICY_NAME} of role {role_arn} failed ({reason}): {message}"
    )]
    GetRolePolicy {
        role_arn: String,
        reason: FailureReason,
        message: String,
    },
    #[error(
        "the revocation policy {POLICY_NAME} of role {role_arn} is not a policy document securepipe can read; it is left as it is"
    )]
    Unreadable { role_arn: String },
    #[error(
        "the revocation policy {POLICY_NAME} of role {role_arn} would be {size} characters, over IAM's {INLINE_POLICY_QUOTA}; entries expire within 12 h"
    )]
    TooLarge { role_arn: String, size: usize },
    #[error(
        "writing the revocation policy {POLICY_NAME} on role {role_arn} failed ({reason}): {message}"
    )]
    PutRolePolicy {
        role_arn: String,
        reason: FailureReason,
        message: String,
    },
}

impl RevocationError {
    /// The condition reason and metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoRevoker { .. } => "RevokerMissing",
            Self::TooLarge { .. } => "RevocationPolicyFull",
            other => other.reason().as_str(),
        }
    }

    /// Whether retrying soon can help.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::NotARoleArn { .. } | Self::Unreadable { .. } => FailureReason::InvalidRequest,
            Self::NoRevoker { .. } => FailureReason::AccessDenied,
            // Pruning makes room as entries age.
            Self::TooLarge { .. } => FailureReason::Throttled,
            Self::CallerIdentity { reason, .. }
            | Self::GetRolePolicy { reason, .. }
            | Self::PutRolePolicy { reason, .. } => *reason,
        }
    }
}

/// What happened to the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The deny covers the sessions (written now, or already there).
    Denied,
    /// The role no longer exists in its account, so no session of it can act.
    RoleGone,
}

/// The role name of a role ARN (`arn:<partition>:iam::<account>:role/<path/>name`).
pub fn role_name(role_arn: &str) -> Option<&str> {
    let resource = role_arn.splitn(6, ':').nth(5)?;
    let path = resource.strip_prefix("role/")?;
    path.rsplit('/').next().filter(|name| !name.is_empty())
}

/// The account of an ARN (its fifth field), when it has one.
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|account| account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `value` names an IAM role with an account (a valid `--revoker-role-arn`).
pub fn is_role_arn(value: &str) -> bool {
    value.starts_with("arn:") && role_name(value).is_some() && account_of(value).is_some()
}

/// The operator's own AWS account (asked of STS once per process).
pub async fn operator_account(aws: &Aws) -> Result<String, RevocationError> {
    aws.shared()
        .operator_account
        .get_or_try_init(|| async {
            let answer = aws
                .sts_home()
                .get_caller_identity()
                .send()
                .await
                .map_err(|err| {
                    let failure = Failure::from_sdk(&err);
                    RevocationError::CallerIdentity {
                        reason: failure.reason,
                        message: failure.message,
                    }
                })?;
            answer
                .account
                .ok_or_else(|| RevocationError::CallerIdentity {
                    reason: FailureReason::Unexpected,
                    message: "the answer names no account".to_owned(),
                })
        })
        .await
        .cloned()
}

/// Checks that securepipe can write revocations on `role_arn` (its account is the
/// operator's, or a revoker role is configured for it), without writing anything.
pub async fn can_revoke(aws: &Aws, role_arn: &str) -> Result<(), RevocationError> {
    revoker_for(aws, role_arn).await.map(|_| ())
}

/// The revoker role to assume for `role_arn` (`None`: the operator's own identity).
async fn revoker_for(aws: &Aws, role_arn: &str) -> Result<Option<String>, RevocationError> {
    let not_a_role = || RevocationError::NotARoleArn {
        role_arn: role_arn.to_owned(),
    };
    role_name(role_arn).ok_or_else(not_a_role)?;
    let account = account_of(role_arn).ok_or_else(not_a_role)?;
    let operator_account = operator_account(aws).await?;
    if account == operator_account {
        return Ok(None);
    }
    aws.settings()
        .revoker_role_arns
        .iter()
        .find(|revoker| account_of(revoker) == Some(account))
        .map(|revoker| Some(revoker.clone()))
        .ok_or_else(|| RevocationError::NoRevoker {
            role_arn: role_arn.to_owned(),
            account: account.to_owned(),
            operator_account,
        })
}

/// An IAM client acting in `role_arn`'s account.
async fn iam_for(aws: &Aws, role_arn: &str) -> Result<aws_sdk_iam::Client, RevocationError> {
    let Some(revoker) = revoker_for(aws, role_arn).await? else {
        return Ok(aws.iam());
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(revoker)
        .session_name(REVOKER_SESSION_NAME)
        .configure(aws.base())
        .build()
        .await;
    let config = aws
        .base()
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build();
    Ok(aws_sdk_iam::Client::new(&config))
}

/// Adds the deny for `revocation.uid` to the role's revocation policy (pruning what has
/// expired) and writes it back; nothing is written when the deny is already there.
pub async fn revoke(
    aws: &Aws,
    revocation: &Revocation<'_>,
    now: jiff::Timestamp,
) -> Result<Revoked, RevocationError> {
    let role_arn = revocation.role_arn;
    let iam = iam_for(aws, role_arn).await?;
    let role_name = role_name(role_arn).ok_or_else(|| RevocationError::NotARoleArn {
        role_arn: role_arn.to_owned(),
    })?;
    let lock = aws.shared().role_lock(role_arn);
    let _one_writer = lock.lock().await;
    let current = iam
        .get_role_policy()
        .role_name(role_name)
        .policy_name(POLICY_NAME)
        .send()
        .await;
    let (current, mut document) = match current {
        Ok(answer) => {
            let document = Document::parse(answer.policy_document()).ok_or_else(|| {
                RevocationError::Unreadable {
                    role_arn: role_arn.to_owned(),
                }
            })?;
            (Some(document.clone()), document)
        }
        Err(err) => {
            let failure = Failure::from_sdk(&err);
            // No policy yet (or no role: the write below tells which).
            if failure.reason != FailureReason::NotFound {
                return Err(RevocationError::GetRolePolicy {
                    role_arn: role_arn.to_owned(),
                    reason: failure.reason,
                    message: failure.message,
                });
            }
            (None, Document::default())
        }
    };
    document.insert(revocation.uid, revocation.cutoff.bound(now));
    document.prune(now);
    if current.as_ref() == Some(&document) {
        return Ok(Revoked::Denied);
    }
    let rendered = document.render();
    let size = quota_size(&rendered);
    if size > INLINE_POLICY_QUOTA {
        return Err(RevocationError::TooLarge {
            role_arn: role_arn.to_owned(),
            size,
        });
    }
    let written = iam
        .put_role_policy()
        .role_name(role_name)
        .policy_name(POLICY_NAME)
        .policy_document(rendered)
        .send()
        .await;
    match written {
        Ok(_) => Ok(Revoked::Denied),
        Err(err) => {
            let failure = Failure::from_sdk(&err);
            // The account is the operator's or the revoker's: NoSuchEntity means the role
            // is gone.
            if failure.reason == FailureReason::NotFound {
                return Ok(Revoked::RoleGone);
            }
            Err(RevocationError::PutRolePolicy {
                role_arn: role_arn.to_owned(),
                reason: failure.reason,
                message: failure.message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_come_from_the_last_path_segment() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/ml/readers/speech"),
            Some("speech")
        );
        assert_eq!(
            role_name("arn:aws-cn:iam::123456789012:role/trainer"),
            Some("trainer")
        );
        assert_eq!(role_name("arn:aws:iam::123456789012:user/alice"), None);
        assert_eq!(role_name("arn:aws:iam::123456789012:role/"), None);
        assert_eq!(role_name("not-an-arn"), None);
    }

    #[test]
    fn accounts_are_twelve_digits_from_the_fifth_field() {
        assert_eq!(
            account_of("arn:aws:iam::123456789012:role/trainer"),
            Some("123456789012")
        );
        assert_eq!(account_of("arn:aws:iam::12345:role/trainer"), None);
        assert_eq!(account_of("arn:aws:iam:::role/trainer"), None);
        assert!(is_role_arn(
            "arn:aws:iam::111122223333:role/securepipe-revoker"
        ));
        assert!(!is_role_arn("arn:aws:iam::111122223333:user/alice"));
        assert!(!is_role_arn("securepipe-revoker"));
    }

    fn aws(revokers: &[&str]) -> Aws {
        let settings = crate::AwsSettings {
            revoker_role_arns: revokers.iter().map(|r| (*r).to_owned()).collect(),
            ..crate::AwsSettings::default()
        };
        let aws = Aws::with_endpoint("http://127.0.0.1:9", "eu-west-1", settings);
        aws.shared()
            .operator_account
            .set("123456789012".to_owned())
            .unwrap();
        aws
    }

    #[tokio::test]
    async fn another_account_needs_a_revoker_role_for_it() {
        let foreign = "arn:aws:iam::111122223333:role/trainer";
        let err = can_revoke(&aws(&[]), foreign).await.unwrap_err();
        assert_eq!(err.label(), "RevokerMissing");
        let message = err.to_string();
        assert!(
            message.contains(foreign) && message.contains("123456789012"),
            "{message}"
        );
        let other_revoker = "arn:aws:iam::444455556666:role/securepipe-revoker";
        assert!(can_revoke(&aws(&[other_revoker]), foreign).await.is_err());
        let revoker = "arn:aws:iam::111122223333:role/securepipe-revoker";
        assert!(can_revoke(&aws(&[revoker]), foreign).await.is_ok());
        assert!(
            can_revoke(&aws(&[]), "arn:aws:iam::123456789012:role/trainer")
                .await
                .is_ok()
        );
    }
}

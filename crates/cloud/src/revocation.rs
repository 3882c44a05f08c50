//! Revoking a partition's sessions: an inline policy on the role that denies everything to
//! sessions tagged with the partition and issued before a cut-off time. Sessions minted
//! later (by a new TrainingPartition of the same name) are unaffected.

use serde_json::json;

use crate::Aws;
use crate::failure::{Failure, FailureReason};
use crate::names;
use crate::session_tags;

/// The sessions to revoke.
#[derive(Clone, Debug)]
pub struct Revocation<'a> {
    pub role_arn: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub partition: &'a str,
    pub issued_before: jiff::Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("{role_arn} is not an IAM role ARN")]
    NotARoleArn { role_arn: String },
    #[error(
        "writing the revocation policy {policy_name} on role {role_name} failed ({reason}): {message}"
    )]
    PutRolePolicy {
        role_name: String,
        policy_name: String,
        reason: FailureReason,
        message: String,
    },
}

impl RevocationError {
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::NotARoleArn { .. } => FailureReason::InvalidRequest,
            Self::PutRolePolicy { reason, .. } => *reason,
        }
    }
}

/// What happened to the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The deny statement is in place.
    Denied,
    /// The role no longer exists, so no session of it can act.
    RoleGone,
}

/// The inline policy's name: one per TrainingPartition, so writing it again replaces it
/// (idempotent) and never touches other partitions' revocations.
pub fn policy_name(namespace: &str, name: &str) -> String {
    // IAM policy names are at most 128 characters of [\w+=,.@-].
    names::bounded(&format!("securepipe-revoke.{namespace}.{name}"), 128)
}

/// The inline policy document denying every action to the partition's earlier sessions.
pub fn policy_document(revocation: &Revocation<'_>) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SecurepipeRevokeSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": session_tags::identifying(
                    revocation.namespace,
                    revocation.name,
                    revocation.partition,
                )
                .into_iter()
                .map(|(key, value)| (session_tags::principal_tag(&key), value.into()))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
                "DateLessThan": {
                    "aws:TokenIssueTime": revocation.issued_before.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                },
            },
        }],
    })
    .to_string()
}

/// The role name of a role ARN (`arn:<partition>:iam::<account>:role/<path/>name`).
pub fn role_name(role_arn: &str) -> Option<&str> {
    let resource = role_arn.splitn(6, ':').nth(5)?;
    let path = resource.strip_prefix("role/")?;
    path.rsplit('/').next().filter(|name| !name.is_empty())
}

/// Writes (or rewrites) the revocation policy on the role.
pub async fn revoke(aws: &Aws, revocation: &Revocation<'_>) -> Result<Revoked, RevocationError> {
    let iam = aws.iam();
    let role_name = role_name(revocation.role_arn).ok_or_else(|| RevocationError::NotARoleArn {
        role_arn: revocation.role_arn.to_owned(),
    })?;
    let policy_name = policy_name(revocation.namespace, revocation.name);
    let written = iam
        .put_role_policy()
        .role_name(role_name)
        .policy_name(&policy_name)
        .policy_document(policy_document(revocation))
        .send()
        .await;
    match written {
        Ok(_) => Ok(Revoked::Denied),
        Err(err) => {
            let failure = Failure::from_sdk(&err);
            if failure.reason == FailureReason::NotFound {
                return Ok(Revoked::RoleGone);
            }
            Err(RevocationError::PutRolePolicy {
                role_name: role_name.to_owned(),
                policy_name,
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
    fn the_document_denies_only_earlier_sessions_of_this_partition() {
        let issued_before: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let document: serde_json::Value = serde_json::from_str(&policy_document(&Revocation {
            role_arn: "arn:aws:iam::123456789012:role/trainer",
            namespace: "ml",
            name: "speech",
            partition: "p1",
            issued_before,
        }))
        .unwrap();
        let statement = &document["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Action"], "*");
        let condition = &statement["Condition"];
        assert_eq!(
            condition["StringEquals"]["aws:PrincipalTag/securepipe:partition"],
            "p1"
        );
        assert_eq!(
            condition["StringEquals"]["aws:PrincipalTag/securepipe:namespace"],
            "ml"
        );
        assert_eq!(
            condition["StringEquals"]["aws:PrincipalTag/securepipe:name"],
            "speech"
        );
        assert_eq!(
            condition["DateLessThan"]["aws:TokenIssueTime"],
            "2026-11-23T10:00:00Z"
        );
    }

    #[test]
    fn policy_names_are_per_partition_and_bounded() {
        assert_eq!(policy_name("ml", "speech"), "securepipe-revoke.ml.speech");
        let long = "m".repeat(253);
        let one = policy_name(&"n".repeat(63), &long);
        let other = policy_name(&"n".repeat(63), &format!("{}x", &long[1..]));
        assert_eq!((one.len(), other.len()), (128, 128));
        assert_ne!(
            one, other,
            "a long partition must not share another's revocation"
        );
    }
}

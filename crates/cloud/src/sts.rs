//! Minting a partition's session with STS `AssumeRole`, and the names STS requires.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sts::types::Tag;
use secrecy::SecretString;

use crate::Aws;
use crate::failure::{Failure, FailureReason};
use crate::names;

/// STS's limit on `RoleSessionName` and `SourceIdentity`.
const MAX_NAME_CHARS: usize = 64;

/// What to ask STS for.
#[derive(Debug)]
pub struct SessionRequest<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub duration: Duration,
    /// The minified inline session policy.
    pub policy: &'a str,
    pub tags: &'a BTreeMap<String, String>,
    pub source_identity: &'a str,
}

/// Temporary credentials. The secret parts never print: `SecretString`'s `Debug` is
/// redacted and its memory is zeroized on drop.
#[derive(Debug)]
pub struct IssuedSession {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub expiration: jiff::Timestamp,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session name>`.
    pub assumed_role_arn: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("AssumeRole on {role_arn} failed ({reason}): {message}")]
    AssumeRole {
        role_arn: String,
        reason: FailureReason,
        message: String,
    },
    #[error("AssumeRole on {role_arn} answered without {missing}")]
    IncompleteAnswer {
        role_arn: String,
        missing: &'static str,
    },
}

impl StsError {
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::AssumeRole { reason, .. } => *reason,
            Self::IncompleteAnswer { .. } => FailureReason::Unexpected,
        }
    }
}

/// Calls `AssumeRole` in `region` and returns the session's credentials.
pub async fn assume_role(
    aws: &Aws,
    region: &str,
    request: &SessionRequest<'_>,
) -> Result<IssuedSession, StsError> {
    let sts = aws.sts(region);
    let tags = request
        .tags
        .iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| StsError::AssumeRole {
            role_arn: request.role_arn.to_owned(),
            reason: FailureReason::InvalidRequest,
            message: err.to_string(),
        })?;
    let duration_seconds = i32::try_from(request.duration.as_secs()).unwrap_or(i32::MAX);
    let output = sts
        .assume_role()
        .role_arn(request.role_arn)
        .role_session_name(request.session_name)
        .duration_seconds(duration_seconds)
        .policy(request.policy)
        .set_tags(Some(tags))
        .source_identity(request.source_identity)
        .send()
        .await
        .map_err(|err| {
            let failure = Failure::from_sdk(&err);
            StsError::AssumeRole {
                role_arn: request.role_arn.to_owned(),
                reason: failure.reason,
                message: failure.message,
            }
        })?;
    let incomplete = |missing| StsError::IncompleteAnswer {
        role_arn: request.role_arn.to_owned(),
        missing,
    };
    let credentials = output
        .credentials
        .ok_or_else(|| incomplete("credentials"))?;
    let assumed_role_arn = output
        .assumed_role_user
        .map(|user| user.arn)
        .ok_or_else(|| incomplete("the assumed role user"))?;
    let expiration = jiff::Timestamp::new(
        credentials.expiration.secs(),
        i32::try_from(credentials.expiration.subsec_nanos()).unwrap_or(0),
    )
    .map_err(|_| incomplete("a valid expiration"))?;
    Ok(IssuedSession {
        access_key_id: credentials.access_key_id,
        secret_access_key: SecretString::from(credentials.secret_access_key),
        session_token: SecretString::from(credentials.session_token),
        expiration,
        assumed_role_arn,
    })
}

/// `RoleSessionName` for a TrainingPartition: `sp-<namespace>@<name>`, reduced to STS's
/// charset (`[\w+=,.@-]`) and at most 64 characters. Kubernetes names never contain `@`,
/// so distinct partitions never share a name (with `-` between them, `a-b`/`c` and
/// `a`/`b-c` did). When it must be shortened, a hash of the full name keeps them distinct.
pub fn session_name(namespace: &str, name: &str) -> String {
    names::bounded(&format!("sp-{namespace}@{name}"), MAX_NAME_CHARS)
}

/// `SourceIdentity` for a TrainingPartition. STS does not allow `/` here, so namespace
/// and name are joined by `@`, which Kubernetes names never contain.
pub fn source_identity(namespace: &str, name: &str) -> String {
    names::bounded(&format!("{namespace}@{name}"), MAX_NAME_CHARS)
}

/// `RoleSessionName` of a TrainingPartition's extraction worker: `spw-<namespace>@<name>`,
/// so CloudTrail tells the worker's calls from the ML team's.
pub fn worker_session_name(namespace: &str, name: &str) -> String {
    names::bounded(&format!("spw-{namespace}@{name}"), MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_sts_name(name: &str) -> bool {
        (2..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    #[test]
    fn short_names_are_kept_readable() {
        assert_eq!(session_name("ml", "speech-en"), "sp-ml@speech-en");
        assert_eq!(source_identity("ml", "speech.en"), "ml@speech.en");
    }

    #[test]
    fn namespace_and_name_never_run_together() {
        assert_ne!(session_name("a-b", "c"), session_name("a", "b-c"));
        assert_ne!(session_name("team", "x.y"), session_name("team-x", "y"));
    }

    #[test]
    fn long_names_are_shortened_but_stay_distinct_and_valid() {
        let long = "a".repeat(63);
        let one = session_name("team", &format!("{long}1"));
        let two = session_name("team", &format!("{long}2"));
        assert_ne!(one, two);
        for name in [&one, &two] {
            assert!(valid_sts_name(name), "{name}");
            assert_eq!(name.len(), 64);
        }
        let identity = source_identity(&"n".repeat(63), &"m".repeat(253));
        assert!(valid_sts_name(&identity), "{identity}");
    }

    #[test]
    fn every_output_is_in_the_sts_charset() {
        for (namespace, name) in [("a", "b"), ("ns", "x/y z"), ("ns", "ünï")] {
            assert!(valid_sts_name(&session_name(namespace, name)));
            assert!(valid_sts_name(&source_identity(namespace, name)));
        }
    }
}

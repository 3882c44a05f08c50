//! Validate and derive, without any I/O: everything a reconcile needs to know about a
//! TrainingPartition before it talks to AWS.

use std::collections::BTreeMap;
use std::time::Duration;

use securepipe_api::TrainingPartition;
use securepipe_api::condition::reasons;
use securepipe_api::training_partition::Access;
use securepipe_cloud::session_policy::{self, PolicyError, Scope};
use securepipe_cloud::{session_tags, sts};
use sha2::{Digest, Sha256};

/// AWS's bounds on `DurationSeconds` as the CRD states them (15m..12h).
const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);

/// The session a TrainingPartition asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub secret_name: String,
    pub partition: String,
    pub region: String,
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: String,
    pub policy: String,
    pub tags: BTreeMap<String, String>,
    pub duration: Duration,
    pub renew_before: Duration,
    /// A digest of every input that shapes the credentials: when it changes, the current
    /// session no longer matches the spec and a new one is minted at once.
    pub inputs_hash: String,
}

/// A spec the controller cannot act on. Admission rejects most of these; an older CRD
/// (or a direct write to etcd) can still let them through.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("spec.credentials.duration {0:?} is outside 15m..12h")]
    DurationOutOfRange(Duration),
    #[error(
        "spec.credentials.renewBefore {renew_before:?} must be shorter than duration {duration:?}"
    )]
    RenewBeforeTooLong {
        renew_before: Duration,
        duration: Duration,
    },
    #[error("spec.roleArn {0} is not an ARN")]
    RoleArn(String),
    #[error(
        "spec.credentials.sessionTags key {0} uses a reserved prefix (securepipe: or aws:, in any letter case)"
    )]
    ReservedTagKey(String),
    #[error("metadata.uid is missing: sessions must carry it, revocation denies by it")]
    MissingUid,
}

impl PlanError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Policy(PolicyError::TooLarge { .. }) => reasons::POLICY_TOO_LARGE,
            _ => reasons::INVALID_SPEC,
        }
    }
}

/// Derives the plan from the resource's namespace, name and spec.
pub fn plan(namespace: &str, name: &str, tp: &TrainingPartition) -> Result<Plan, PlanError> {
    let spec = &tp.spec;
    let partition = tp.partition_name().unwrap_or(name).to_owned();
    let duration: Duration = spec.credentials.duration.into();
    if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
        return Err(PlanError::DurationOutOfRange(duration));
    }
    let renew_before = spec
        .credentials
        .renew_before
        .map_or(duration / 3, Duration::from);
    if renew_before >= duration {
        return Err(PlanError::RenewBeforeTooLong {
            renew_before,
            duration,
        });
    }
    let role_arn = spec.role_arn.as_str().to_owned();
    let aws_partition = role_arn
        .split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| PlanError::RoleArn(role_arn.clone()))?;
    let prefix = format!("{}{partition}/", spec.feature_prefix.as_str());
    let policy = session_policy::build(&Scope {
        aws_partition,
        bucket: spec.bucket.as_str(),
        prefix: &prefix,
        region: spec.region.as_str(),
        access: match spec.access {
            Access::ReadOnly => session_policy::Access::ReadOnly,
            Access::ReadWrite => session_policy::Access::ReadWrite,
        },
    })?;
    // Admission refuses these too; an older CRD may not have.
    if let Some(key) = spec
        .credentials
        .session_tags
        .keys()
        .find(|key| session_tags::is_reserved(key))
    {
        return Err(PlanError::ReservedTagKey(key.clone()));
    }
    let uid = tp
        .metadata
        .uid
        .as_deref()
        .filter(|uid| !uid.is_empty())
        .ok_or(PlanError::MissingUid)?;
    let mut tags = spec.credentials.session_tags.clone();
    tags.extend(session_tags::identifying(namespace, name, uid, &partition));
    let mut plan = Plan {
        secret_name: tp.secret_name().unwrap_or_default(),
        partition,
        region: spec.region.as_str().to_owned(),
        role_arn,
        session_name: sts::session_name(namespace, name),
        source_identity: sts::source_identity(namespace, name),
        policy,
        tags,
        duration,
        renew_before,
        inputs_hash: String::new(),
    };
    plan.inputs_hash = inputs_hash(&plan);
    Ok(plan)
}

fn inputs_hash(plan: &Plan) -> String {
    let mut digest = Sha256::new();
    for field in [
        &plan.role_arn,
        &plan.region,
        &plan.policy,
        &plan.session_name,
        &plan.source_identity,
        &plan.duration.as_secs().to_string(),
    ] {
        digest.update(field.as_bytes());
        digest.update([0]);
    }
    for (key, value) in &plan.tags {
        digest.update(key.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
        digest.update([0]);
    }
    digest.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(yaml: &str) -> TrainingPartition {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = r#"
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: {name: speech, namespace: ml, uid: 0f9e-uid}
spec:
  bucket: biometrics
  region: eu-west-1
  roleArn: arn:aws:iam::123456789012:role/trainer
"#;

    #[test]
    fn defaults_follow_the_api() {
        let plan = plan("ml", "speech", &partition(BASE)).unwrap();
        assert_eq!(plan.partition, "speech");
        assert_eq!(plan.secret_name, "speech-aws");
        assert_eq!(plan.duration, Duration::from_secs(3600));
        assert_eq!(plan.renew_before, Duration::from_secs(1200));
        assert_eq!(plan.session_name, "sp-ml@speech");
        assert_eq!(plan.source_identity, "ml@speech");
        assert!(
            plan.policy
                .contains("arn:aws:s3:::biometrics/training/features/speech/*"),
            "{}",
            plan.policy
        );
        assert_eq!(plan.tags["securepipe:partition"], "speech");
        assert_eq!(plan.tags["securepipe:namespace"], "ml");
        assert_eq!(plan.tags["securepipe:name"], "speech");
        assert_eq!(plan.tags["securepipe:uid"], "0f9e-uid");
    }

    #[test]
    fn every_session_carries_the_uid_or_none_is_minted() {
        let mut tp = partition(BASE);
        tp.metadata.uid = None;
        assert_eq!(plan("ml", "speech", &tp), Err(PlanError::MissingUid));
    }

    #[test]
    fn user_tags_and_names_are_kept() {
        let yaml = format!(
            "{BASE}  partition: p7\n  credentials:\n    secretName: creds\n    duration: 2h\n    renewBefore: 10m\n    sessionTags: {{team: asr}}\n"
        );
        let plan = plan("ml", "speech", &partition(&yaml)).unwrap();
        assert_eq!(plan.partition, "p7");
        assert_eq!(plan.secret_name, "creds");
        assert_eq!(plan.renew_before, Duration::from_secs(600));
        assert_eq!(plan.tags["team"], "asr");
        assert_eq!(plan.tags["securepipe:partition"], "p7");
    }

    #[test]
    fn the_hash_changes_with_any_credential_input_and_only_then() {
        let base = plan("ml", "speech", &partition(BASE)).unwrap();
        assert_eq!(
            base.inputs_hash,
            plan("ml", "speech", &partition(BASE)).unwrap().inputs_hash
        );
        for change in [
            "  access: ReadWrite\n",
            "  partition: other\n",
            "  credentials: {duration: 2h}\n",
            "  credentials: {sessionTags: {team: x}}\n",
        ] {
            let changed = plan("ml", "speech", &partition(&format!("{BASE}{change}"))).unwrap();
            assert_ne!(changed.inputs_hash, base.inputs_hash, "{change}");
        }
        // renewBefore shapes the timing, not the credentials.
        let renew = plan(
            "ml",
            "speech",
            &partition(&format!("{BASE}  credentials: {{renewBefore: 5m}}\n")),
        )
        .unwrap();
        assert_eq!(renew.inputs_hash, base.inputs_hash);
    }

    #[test]
    fn specs_admission_would_reject_are_refused_with_a_reason() {
        let short = partition(&format!("{BASE}  credentials: {{duration: 5m}}\n"));
        assert_eq!(
            plan("ml", "speech", &short).unwrap_err().reason(),
            "InvalidSpec"
        );
        let renew = partition(&format!(
            "{BASE}  credentials: {{duration: 1h, renewBefore: 2h}}\n"
        ));
        assert!(matches!(
            plan("ml", "speech", &renew),
            Err(PlanError::RenewBeforeTooLong { .. })
        ));
    }

    #[test]
    fn reserved_tag_keys_are_refused_in_any_letter_case() {
        for key in [
            "securepipe:namespace",
            "SecurePipe:namespace",
            "AWS:SourceIdentity",
        ] {
            let yaml = format!("{BASE}  credentials: {{sessionTags: {{'{key}': other-team}}}}\n");
            let err = plan("ml", "speech", &partition(&yaml)).unwrap_err();
            assert_eq!(err, PlanError::ReservedTagKey(key.to_owned()));
            assert_eq!(err.reason(), "InvalidSpec");
        }
    }

    #[test]
    fn an_oversized_policy_is_refused_as_policy_too_large() {
        let long_bucket_prefix = format!("{}/", "p".repeat(900));
        let yaml = format!("{BASE}  featurePrefix: {long_bucket_prefix}\n");
        let err = plan("ml", "speech", &partition(&yaml)).unwrap_err();
        assert_eq!(err.reason(), "PolicyTooLarge", "{err}");
    }
}

//! The worker's own session, separate from the ML team's: the TrainingPartition's plan
//! (role, region, duration, the operator's identifying session tags) with the worker
//! session policy, a worker session name and the Secret `<name>-worker-aws`. It is minted
//! and renewed by the same rules as the ML session, and revoked with it (revocation
//! matches the session tags both carry).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use securepipe_api::TrainingPartition;
use securepipe_api::condition::reasons;
use securepipe_api::worker::DEFAULT_ATTESTATION_PREFIX;
use securepipe_cloud::session_policy::PolicyError;
use securepipe_cloud::sts::{self, SessionRequest, StsError};
use securepipe_cloud::worker_policy::{self, WorkerScope};
use sha2::{Digest, Sha256};

use super::super::training_partition::plan::{self, Plan, PlanError};
use super::super::training_partition::renewal::{self, Decision, Held};
use super::super::training_partition::{revoke, secret};
use super::super::{Error, ObjectKey};
use super::KIND;
use crate::{Context, managers};

/// What the worker works on, and the session it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    /// The ML plan with the worker's Secret, session name, policy and inputs hash.
    pub session: Plan,
    pub bucket: String,
    pub kms_key_arn: String,
    pub raw_prefix: String,
    pub feature_prefix: String,
    pub attestation_prefix: String,
    /// `<rawPrefix><partition>/`: what the scan lists.
    pub raw_folder: String,
}

/// Why no worker session can be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkerPlanError {
    /// The credentials controller reports this one; extraction waits for a fix.
    #[error(transparent)]
    Spec(#[from] PlanError),
    #[error("spec.extraction.kmsKeyArn is required when extraction is enabled")]
    NoKmsKey,
    #[error("worker session policy: {0}")]
    Policy(PolicyError),
}

impl WorkerPlanError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Spec(err) => err.reason(),
            Self::NoKmsKey => reasons::INVALID_SPEC,
            Self::Policy(PolicyError::TooLarge { .. }) => reasons::POLICY_TOO_LARGE,
            Self::Policy(_) => reasons::INVALID_SPEC,
        }
    }
}

/// The worker plan of `tp` (pure).
pub fn worker_plan(
    namespace: &str,
    name: &str,
    tp: &TrainingPartition,
) -> Result<WorkerPlan, WorkerPlanError> {
    let mut session = plan::plan(namespace, name, tp)?;
    let extraction = tp.spec.extraction.as_ref();
    let kms_key_arn = extraction
        .and_then(|e| e.kms_key_arn.as_ref())
        .map(|k| k.as_str().to_owned())
        .ok_or(WorkerPlanError::NoKmsKey)?;
    let aws_partition = session
        .role_arn
        .split(':')
        .nth(1)
        .unwrap_or("aws")
        .to_owned();
    let raw_prefix = tp.spec.raw_prefix.as_str().to_owned();
    let feature_prefix = tp.spec.feature_prefix.as_str().to_owned();
    let attestation_prefix = DEFAULT_ATTESTATION_PREFIX.to_owned();
    let partition = session.partition.clone();
    let raw_folder = format!("{raw_prefix}{partition}/");
    let policy = worker_policy::build(&WorkerScope {
        aws_partition: &aws_partition,
        bucket: tp.spec.bucket.as_str(),
        region: &session.region,
        partition: &partition,
        raw: &raw_folder,
        features: &format!("{feature_prefix}{partition}/"),
        attestations: &format!("{attestation_prefix}{partition}/"),
        kms_key_arn: &kms_key_arn,
    })
    .map_err(WorkerPlanError::Policy)?;
    session.secret_name = tp.worker_secret_name().unwrap_or_default();
    session.session_name = sts::worker_session_name(namespace, name);
    session.policy = policy;
    session.inputs_hash = inputs_hash(&session);
    Ok(WorkerPlan {
        session,
        bucket: tp.spec.bucket.as_str().to_owned(),
        kms_key_arn,
        raw_prefix,
        feature_prefix,
        attestation_prefix,
        raw_folder,
    })
}

/// The ML session's inputs hash (role, region, duration, tags, ...) with the worker's
/// policy and session name: a change to any of them mints a new worker session.
fn inputs_hash(session: &Plan) -> String {
    let mut digest = Sha256::new();
    for field in [&session.inputs_hash, &session.policy, &session.session_name] {
        digest.update(field.as_bytes());
        digest.update([0]);
    }
    digest.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What ensuring the worker session found or did.
#[derive(Debug)]
pub enum Session {
    /// The session in the Secret is fresh; renew at `renew_at`.
    Held { held: Held, renew_at: Timestamp },
    /// A new session was minted into the Secret.
    Minted { held: Held, renew_at: Timestamp },
    /// A Secret of that name exists that securepipe did not write for this partition.
    Conflict,
}

#[derive(Debug)]
pub enum SessionError {
    Sts(StsError),
    Kube(&'static str, kube::Error),
    /// The role could not be recorded for revocation: nothing was minted.
    NotRecorded(Error),
}

/// Reads the worker Secret and mints a new session when it is missing, stale or due.
pub async fn ensure(
    ctx: &Context,
    tp: &TrainingPartition,
    plan: &WorkerPlan,
) -> Result<Session, SessionError> {
    let session = &plan.session;
    let namespace = tp.meta().namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets
        .get_opt(&session.secret_name)
        .await
        .map_err(|err| SessionError::Kube("read the worker Secret", err))?;
    if existing.as_ref().is_some_and(|s| !secret::is_ours(s, tp)) {
        return Ok(Session::Conflict);
    }
    let held = existing.as_ref().and_then(|s| secret::held(s, tp));
    let uid = tp.meta().uid.as_deref().unwrap_or_default();
    let jitter = renewal::jitter(uid, session.renew_before, session.duration);
    let now = Timestamp::now();
    if let (Decision::Keep { renew_at }, Some(held)) = (
        renewal::decide(
            held.as_ref(),
            &session.inputs_hash,
            session.renew_before,
            jitter,
            now,
        ),
        held.clone(),
    ) {
        return Ok(Session::Held { held, renew_at });
    }
    // Recorded before the mint, as for the ML session: deletion then revokes the worker
    // sessions on every role they were minted on.
    let object = ObjectKey::of(tp, KIND).map_err(SessionError::NotRecorded)?;
    let partitions: Api<TrainingPartition> = Api::namespaced(ctx.client.clone(), &namespace);
    revoke::record_role(&partitions, tp, &object, &session.role_arn)
        .await
        .map_err(SessionError::NotRecorded)?;
    let held = mint(ctx, tp, &secrets, session, now).await?;
    Ok(Session::Minted {
        renew_at: renewal::renew_at(held.expires_at, session.renew_before, jitter),
        held,
    })
}

async fn mint(
    ctx: &Context,
    tp: &TrainingPartition,
    secrets: &Api<Secret>,
    session: &Plan,
    now: Timestamp,
) -> Result<Held, SessionError> {
    let request = SessionRequest {
        role_arn: &session.role_arn,
        session_name: &session.session_name,
        duration: session.duration,
        policy: &session.policy,
        tags: &session.tags,
        source_identity: &session.source_identity,
    };
    let started = Instant::now();
    let issued = sts::assume_role(&ctx.aws, &session.region, &request).await;
    ctx.metrics
        .assume_role_seconds
        .observe(started.elapsed().as_secs_f64());
    let issued = issued.map_err(SessionError::Sts)?;
    ctx.metrics.credentials_minted.inc();
    let mut built = secret::build(tp, session, &issued, now);
    let applied = secrets
        .patch(
            &session.secret_name,
            &PatchParams::apply(managers::EXTRACTION).force(),
            &Patch::Apply(&built),
        )
        .await;
    secret::wipe(&mut built);
    let mut applied = applied.map_err(|err| SessionError::Kube("write the worker Secret", err))?;
    secret::wipe(&mut applied);
    Ok(Held {
        expires_at: issued.expiration,
        renewed_at: now,
        inputs_hash: session.inputs_hash.clone(),
        session_name: session.session_name.clone(),
        access_key_id: issued.access_key_id.clone(),
    })
}

/// How long a Job started now may run on the held session's credentials (they are in
/// the Pod's environment and do not follow a renewal).
pub fn remaining(held: &Held, now: Timestamp) -> Duration {
    Duration::try_from(held.expires_at.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A partition with extraction enabled; `extra` continues its `extraction` block.
    pub(in crate::controllers::extraction) fn partition(extra: &str) -> TrainingPartition {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: {{name: speech, namespace: ml, uid: 0f9e-uid, generation: 4}}
spec:
  bucket: biometrics
  region: eu-west-1
  roleArn: "arn:aws:iam::123456789012:role/trainer"
  extraction:
    enabled: true
    kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k1"
{extra}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_worker_session_shares_identity_tags_but_not_the_policy_or_the_secret() {
        let tp = partition("");
        let ml = plan::plan("ml", "speech", &tp).unwrap();
        let worker = worker_plan("ml", "speech", &tp).unwrap();
        assert_eq!(worker.session.secret_name, "speech-worker-aws");
        assert_eq!(worker.session.session_name, "spw-ml@speech");
        assert_eq!(worker.session.tags, ml.tags);
        assert_eq!(worker.session.role_arn, ml.role_arn);
        assert_ne!(worker.session.policy, ml.policy);
        assert_ne!(worker.session.inputs_hash, ml.inputs_hash);
        assert!(worker.session.policy.contains("ingestion/raw/speech/*"));
        assert!(worker.session.policy.contains("audit/speech/*"));
        assert_eq!(worker.raw_folder, "ingestion/raw/speech/");
    }

    #[test]
    fn a_new_key_changes_the_session_inputs() {
        let one = worker_plan("ml", "speech", &partition("")).unwrap();
        let mut tp = partition("");
        if let Some(e) = tp.spec.extraction.as_mut() {
            e.kms_key_arn = Some("arn:aws:kms:eu-west-1:123456789012:key/k2".into());
        }
        let two = worker_plan("ml", "speech", &tp).unwrap();
        assert_ne!(one.session.inputs_hash, two.session.inputs_hash);
    }

    #[test]
    fn an_oversized_worker_policy_is_refused_before_minting() {
        let tp = partition(&format!("  rawPrefix: {}/\n", "r".repeat(1500)));
        let err = worker_plan("ml", "speech", &tp).unwrap_err();
        assert_eq!(err.reason(), "PolicyTooLarge", "{err}");
    }
}

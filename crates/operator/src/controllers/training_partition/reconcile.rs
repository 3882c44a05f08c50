//! One TrainingPartition reconcile: fetch → validate → pure build → apply → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_cloud::sts::{self, SessionRequest};
use serde_json::json;

use super::error::Error;
use super::plan::{Plan, plan};
use super::renewal::{self, Decision, Held, MintReason};
use super::status::{self, Outcome};
use super::{CONTROLLER, revoke, secret};
use crate::{Context, field_manager};

/// How soon to retry after a failure that may pass by itself, and after one that needs
/// someone to change something (a spec change triggers a reconcile at once anyway).
const RETRY_TRANSIENT: Duration = Duration::from_secs(5);
const RETRY_PERMANENT: Duration = Duration::from_secs(120);

pub async fn reconcile(tp: Arc<TrainingPartition>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.record_reconcile(CONTROLLER);
    let name = tp.name_any();
    let namespace = tp
        .namespace()
        .ok_or_else(|| Error::NoNamespace { name: name.clone() })?;
    let partitions: Api<TrainingPartition> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = format!("{namespace}/{name}");

    if tp.meta().deletion_timestamp.is_some() {
        ctx.metrics.set_expiring(&key, false);
        return revoke::finish(&partitions, &tp, &namespace, &ctx).await;
    }
    if revoke::sync_finalizer(&partitions, &tp).await? {
        return Ok(Action::await_change());
    }

    let kube_error = |action, source| Error::Kube {
        namespace: namespace.clone(),
        name: name.clone(),
        action,
        source,
    };
    let reconciler = Reconciler {
        tp: &tp,
        ctx: &ctx,
        partitions: &partitions,
        secrets: Api::namespaced(ctx.client.clone(), &namespace),
        namespace: &namespace,
        name: &name,
    };

    let plan = match plan(&namespace, &name, &tp) {
        Ok(plan) => plan,
        Err(err) => {
            ctx.metrics.record_error(CONTROLLER, err.reason());
            let secret_name = tp.status.as_ref().and_then(|s| s.credentials.as_ref());
            let secret_name = secret_name.map_or("", |c| c.secret_name.as_str());
            let outcome = Outcome::Failed {
                reason: err.reason(),
                message: err.to_string(),
                secret_name,
                held: None,
            };
            reconciler.warn_once(err.reason(), &err.to_string()).await;
            reconciler
                .write_status(&outcome)
                .await
                .map_err(|e| kube_error("write status", e))?;
            return Ok(Action::requeue(RETRY_PERMANENT));
        }
    };

    let existing = reconciler
        .secrets
        .get_opt(&plan.secret_name)
        .await
        .map_err(|e| kube_error("read the credentials Secret", e))?;
    let held = existing.as_ref().and_then(|s| secret::held(s, &tp));
    let uid = tp.meta().uid.as_deref().unwrap_or_default();
    let jitter = renewal::jitter(uid, plan.renew_before, plan.duration);
    let now = jiff::Timestamp::now();

    let decision = renewal::decide(
        held.as_ref(),
        &plan.inputs_hash,
        plan.renew_before,
        jitter,
        now,
    );
    if let (Decision::Keep { renew_at }, Some(held)) = (decision, held.as_ref()) {
        ctx.metrics.set_expiring(&key, false);
        reconciler.settle_valid(&plan, held).await?;
        return Ok(Action::requeue(until(renew_at, now)));
    }
    // `decide` keeps only a held session, so anything else is a mint.
    let reason = match decision {
        Decision::Mint(reason) => reason,
        Decision::Keep { .. } => MintReason::Missing,
    };

    // Due or missing and not renewed yet: counted until a renewal succeeds.
    let in_window = held.as_ref().is_some_and(|h| h.expires_at > now);
    ctx.metrics
        .set_expiring(&key, in_window && reason == MintReason::Due);
    match reconciler.mint(&plan, now).await {
        Ok(minted) => {
            ctx.metrics.set_expiring(&key, false);
            let (event_reason, verb) = match reason {
                MintReason::Missing => ("CredentialsIssued", "issued"),
                MintReason::InputsChanged => {
                    ("CredentialsReissued", "reissued after a spec change")
                }
                MintReason::Due => ("CredentialsRenewed", "renewed"),
            };
            ctx.publish(
                &tp.object_ref(&()),
                EventType::Normal,
                event_reason,
                format!(
                    "session {} {verb} into Secret {}, valid until {}",
                    minted.session_name,
                    plan.secret_name,
                    secret::rfc3339(minted.expires_at)
                ),
            )
            .await;
            reconciler.settle_valid(&plan, &minted).await?;
            let renew_at = renewal::renew_at(minted.expires_at, plan.renew_before, jitter);
            Ok(Action::requeue(until(renew_at, jiff::Timestamp::now())))
        }
        Err(MintError::Sts(err)) => {
            let reason = err.reason();
            ctx.metrics.record_error(CONTROLLER, reason.as_str());
            tracing::warn!(%namespace, %name, %reason, error = %err, "minting credentials failed");
            reconciler
                .warn_once(reason.as_str(), &err.to_string())
                .await;
            let outcome = Outcome::Failed {
                reason: reason.as_str(),
                message: err.to_string(),
                secret_name: &plan.secret_name,
                held: held.as_ref(),
            };
            reconciler
                .write_status(&outcome)
                .await
                .map_err(|e| kube_error("write status", e))?;
            let retry = if reason.is_transient() {
                RETRY_TRANSIENT
            } else {
                RETRY_PERMANENT
            };
            Ok(Action::requeue(retry))
        }
        Err(MintError::Kube(source)) => Err(kube_error("write the credentials Secret", source)),
    }
}

pub fn error_policy(tp: Arc<TrainingPartition>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.record_error(CONTROLLER, err.reason());
    tracing::warn!(
        namespace = tp.namespace().unwrap_or_default(),
        name = tp.name_any(),
        error = %err,
        "reconcile failed"
    );
    Action::requeue(RETRY_TRANSIENT)
}

struct Reconciler<'a> {
    tp: &'a TrainingPartition,
    ctx: &'a Context,
    partitions: &'a Api<TrainingPartition>,
    secrets: Api<Secret>,
    namespace: &'a str,
    name: &'a str,
}

enum MintError {
    Sts(sts::StsError),
    Kube(kube::Error),
}

impl Reconciler<'_> {
    /// AssumeRole, then server-side apply the Secret. Returns the session now held.
    async fn mint(&self, plan: &Plan, now: jiff::Timestamp) -> Result<Held, MintError> {
        let request = SessionRequest {
            role_arn: &plan.role_arn,
            session_name: &plan.session_name,
            duration: plan.duration,
            policy: &plan.policy,
            tags: &plan.tags,
            source_identity: &plan.source_identity,
        };
        let started = Instant::now();
        let issued = sts::assume_role(&self.ctx.aws.sts(&plan.region), &request).await;
        self.ctx
            .metrics
            .assume_role_seconds
            .observe(started.elapsed().as_secs_f64());
        let session = issued.map_err(MintError::Sts)?;
        self.ctx.metrics.credentials_minted.inc();

        let mut built = secret::build(self.tp, plan, &session, now);
        let applied = self
            .secrets
            .patch(
                &plan.secret_name,
                &PatchParams::apply(&field_manager("training-partition")).force(),
                &Patch::Apply(&built),
            )
            .await;
        secret::wipe(&mut built);
        let mut applied = applied.map_err(MintError::Kube)?;
        secret::wipe(&mut applied);
        tracing::info!(
            namespace = self.namespace,
            name = self.name,
            session = %plan.session_name,
            expires_at = %session.expiration,
            "credentials written"
        );
        Ok(Held {
            expires_at: session.expiration,
            renewed_at: now,
            inputs_hash: plan.inputs_hash.clone(),
            session_name: plan.session_name.clone(),
            access_key_id: session.access_key_id.clone(),
        })
    }

    /// With valid credentials held: status `Valid`, and the Secret of a previous
    /// `secretName` removed.
    async fn settle_valid(&self, plan: &Plan, held: &Held) -> Result<(), Error> {
        let kube_error = |action, source| Error::Kube {
            namespace: self.namespace.to_owned(),
            name: self.name.to_owned(),
            action,
            source,
        };
        let outcome = Outcome::Valid {
            secret_name: &plan.secret_name,
            held,
        };
        self.write_status(&outcome)
            .await
            .map_err(|e| kube_error("write status", e))?;
        self.delete_previous_secret(plan)
            .await
            .map_err(|e| kube_error("delete the previous Secret", e))
    }

    /// Writes the status when it differs from the current one.
    async fn write_status(&self, outcome: &Outcome<'_>) -> Result<(), kube::Error> {
        let current = self.tp.status.as_ref();
        let next = status::next(
            current,
            self.tp.meta().generation,
            outcome,
            jiff::Timestamp::now(),
        );
        if current == Some(&next) {
            return Ok(());
        }
        let patch = json!({ "status": next });
        self.partitions
            .patch_status(self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Emits a Warning event unless the Degraded condition already reports this reason
    /// (so a failure that persists across retries is one event, not one per retry).
    async fn warn_once(&self, reason: &str, message: &str) {
        let already = self.tp.status.as_ref().is_some_and(|status| {
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == reason)
        });
        if !already {
            self.ctx
                .publish(
                    &self.tp.object_ref(&()),
                    EventType::Warning,
                    reason,
                    message.to_owned(),
                )
                .await;
        }
    }

    /// When `secretName` changed, removes the Secret this partition wrote before.
    async fn delete_previous_secret(&self, plan: &Plan) -> Result<(), kube::Error> {
        let previous = self
            .tp
            .status
            .as_ref()
            .and_then(|s| s.credentials.as_ref())
            .map(|c| c.secret_name.as_str())
            .filter(|previous| !previous.is_empty() && *previous != plan.secret_name);
        let Some(previous) = previous else {
            return Ok(());
        };
        let old = self.secrets.get_opt(previous).await?;
        if old.is_some_and(|old| secret::held(&old, self.tp).is_some()) {
            match self
                .secrets
                .delete(previous, &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// The requeue delay until `at` (at least one second, so a clock at the edge cannot spin).
fn until(at: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

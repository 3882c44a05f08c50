//! One TrainingPartition reconcile, as a list of steps: plan (pure) → read the session
//! held in the Secret → decide (pure) → mint when due. The steps end in an [`Outcome`];
//! [`Run::conclude`] is the one place that turns it into status, Event, metrics and the
//! requeue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer;
use securepipe_api::TrainingPartition;
use securepipe_api::condition::{self, reasons, types};
use securepipe_cloud::revocation::{self, Cutoff, RevocationError};
use securepipe_cloud::sts::{self, SessionRequest, StsError};

use super::super::error::{self, is_not_found};
use super::super::{Error, ObjectKey, events, grants, status_patch};
use super::plan::{Plan, PlanError, plan};
use super::renewal::{self, Decision, Held, MintReason};
use super::status;
use super::{CONTROLLER, KIND, revoke, secret};
use crate::context::ACTION_RECONCILE;
use crate::grant_coverage::Verdict;
use crate::{Context, managers};

/// How soon to retry after a failure that may pass by itself, and after one that needs
/// someone to change something (a spec change triggers a reconcile at once anyway).
const RETRY_TRANSIENT: Duration = Duration::from_secs(5);
const RETRY_PERMANENT: Duration = Duration::from_secs(120);

pub async fn reconcile(tp: Arc<TrainingPartition>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.record_reconcile(CONTROLLER);
    let object = ObjectKey::of(tp.as_ref(), KIND)?;
    let api: Api<TrainingPartition> = Api::namespaced(ctx.client.clone(), &object.namespace);
    if tp.meta().deletion_timestamp.is_some() {
        ctx.metrics.set_expiring(&object.path(), false);
    }
    revoke::finalized(&api, &object, tp, |event| async {
        match event {
            finalizer::Event::Apply(tp) => {
                let run = Run::new(&tp, &ctx, &api, &object);
                let outcome = run.steps().await?;
                run.conclude(outcome).await
            }
            finalizer::Event::Cleanup(tp) => {
                // Only the roles recorded before each mint (each was granted then), and the
                // deny matches this object's UID only: whatever the grants say now, no
                // other team's session can be touched.
                revoke::cleanup(&tp, &ctx, &object).await
            }
        }
    })
    .await
}

pub fn error_policy(_tp: Arc<TrainingPartition>, err: &Error, ctx: Arc<Context>) -> Action {
    error::report(&ctx.metrics, CONTROLLER, err);
    Action::requeue(RETRY_TRANSIENT)
}

/// How the steps ended.
#[derive(Debug)]
enum Outcome {
    /// The spec cannot be acted on.
    Refused(PlanError),
    /// No TenantGrant covers the spec: nothing is minted; a Secret this object held is
    /// removed (and its sessions revoked with `revokeOnDelete`).
    NotGranted { plan: Plan, message: String },
    /// `secretName` names a Secret securepipe did not create for this TrainingPartition:
    /// nothing is minted and the Secret is not touched.
    SecretConflict { plan: Plan },
    /// The operator may not write Secrets in this namespace: nothing is minted.
    NotServed { plan: Plan },
    /// `revokeOnDelete` on a role whose sessions securepipe could not revoke (or cannot
    /// tell yet): nothing is minted, since the promise could not be kept.
    Unrevocable { plan: Plan, error: RevocationError },
    /// The session in the Secret matches the spec and is not due: nothing to do.
    Kept {
        plan: Plan,
        held: Held,
        renew_at: Timestamp,
    },
    /// A new session is in the Secret.
    Minted {
        plan: Plan,
        held: Held,
        reason: MintReason,
        renew_at: Timestamp,
    },
    /// STS refused or failed; `held` is the session still in the Secret.
    MintFailed {
        plan: Plan,
        held: Option<Held>,
        error: StsError,
    },
}

impl Outcome {
    /// The metric label.
    fn label(&self) -> &'static str {
        match self {
            Self::Refused(_) => "Refused",
            Self::NotGranted { .. } => "NotGranted",
            Self::SecretConflict { .. } => "SecretConflict",
            Self::NotServed { .. } => "NotServed",
            Self::Unrevocable { .. } => "Unrevocable",
            Self::Kept { .. } => "Kept",
            Self::Minted { .. } => "Minted",
            Self::MintFailed { .. } => "MintFailed",
        }
    }
}

/// A failure as status reports it.
struct Failure {
    reason: &'static str,
    message: String,
    /// Retrying cannot fix it: the `Stalled` condition.
    stalled: bool,
}

impl Failure {
    /// A failure that needs someone to change something.
    fn stalled(reason: &'static str, message: String) -> Self {
        Self {
            reason,
            message,
            stalled: true,
        }
    }
}

/// The pieces every step needs.
struct Run<'a> {
    tp: &'a TrainingPartition,
    ctx: &'a Context,
    api: &'a Api<TrainingPartition>,
    secrets: Api<Secret>,
    object: &'a ObjectKey,
}

enum MintError {
    Sts(StsError),
    Kube(kube::Error),
    Record(Error),
}

impl<'a> Run<'a> {
    fn new(
        tp: &'a TrainingPartition,
        ctx: &'a Context,
        api: &'a Api<TrainingPartition>,
        object: &'a ObjectKey,
    ) -> Self {
        Self {
            tp,
            ctx,
            api,
            secrets: Api::namespaced(ctx.client.clone(), &object.namespace),
            object,
        }
    }

    async fn steps(&self) -> Result<Outcome, Error> {
        let plan = match plan(&self.object.namespace, &self.object.name, self.tp) {
            Ok(plan) => plan,
            Err(err) => return Ok(Outcome::Refused(err)),
        };
        // Default deny, before anything touches the Secret or AWS.
        let verdict = self.ctx.grants.partition(&self.object.namespace, self.tp);
        if let Verdict::NotGranted { message } = verdict {
            return Ok(Outcome::NotGranted { plan, message });
        }
        if !self.ctx.secrets.allows(&self.object.namespace) {
            return Ok(Outcome::NotServed { plan });
        }
        if self.tp.spec.credentials.revoke_on_delete
            && let Err(error) = revocation::can_revoke(&self.ctx.aws, &plan.role_arn).await
        {
            return Ok(Outcome::Unrevocable { plan, error });
        }
        let existing = self
            .secrets
            .get_opt(&plan.secret_name)
            .await
            .map_err(self.object.kube("read the credentials Secret"))?;
        if existing
            .as_ref()
            .is_some_and(|s| !secret::is_ours(s, self.tp))
        {
            return Ok(Outcome::SecretConflict { plan });
        }
        let held = existing.as_ref().and_then(|s| secret::held(s, self.tp));
        let uid = self.tp.meta().uid.as_deref().unwrap_or_default();
        let jitter = renewal::jitter(uid, plan.renew_before, plan.duration);
        let now = Timestamp::now();
        let decision = renewal::decide(
            held.as_ref(),
            &plan.inputs_hash,
            plan.renew_before,
            jitter,
            now,
        );
        let (reason, held) = match (decision, held) {
            (Decision::Keep { renew_at }, Some(held)) => {
                return Ok(Outcome::Kept {
                    plan,
                    held,
                    renew_at,
                });
            }
            (Decision::Mint(reason), held) => (reason, held),
            // `decide` keeps only a held session.
            (Decision::Keep { .. }, None) => (MintReason::Missing, None),
        };

        // Due and not renewed yet: counted until a renewal succeeds.
        let in_window = held.as_ref().is_some_and(|h| h.expires_at > now);
        self.ctx
            .metrics
            .set_expiring(&self.object.path(), in_window && reason == MintReason::Due);
        match self.mint(&plan, now).await {
            Ok(minted) => Ok(Outcome::Minted {
                renew_at: renewal::renew_at(minted.expires_at, plan.renew_before, jitter),
                plan,
                held: minted,
                reason,
            }),
            Err(MintError::Sts(error)) => Ok(Outcome::MintFailed { plan, held, error }),
            Err(MintError::Kube(source)) => {
                Err(self.object.kube("write the credentials Secret")(source))
            }
            Err(MintError::Record(err)) => Err(err),
        }
    }

    /// AssumeRole, then server-side apply the Secret. Returns the session now held.
    async fn mint(&self, plan: &Plan, now: Timestamp) -> Result<Held, MintError> {
        revoke::record_role(self.api, self.tp, self.object, &plan.role_arn)
            .await
            .map_err(MintError::Record)?;
        let request = SessionRequest {
            role_arn: &plan.role_arn,
            session_name: &plan.session_name,
            duration: plan.duration,
            policy: &plan.policy,
            tags: &plan.tags,
            source_identity: &plan.source_identity,
        };
        let started = Instant::now();
        let issued = sts::assume_role(&self.ctx.aws, &plan.region, &request).await;
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
                &PatchParams::apply(managers::CREDENTIALS).force(),
                &Patch::Apply(&built),
            )
            .await;
        secret::wipe(&mut built);
        let mut applied = applied.map_err(MintError::Kube)?;
        secret::wipe(&mut applied);
        tracing::info!(
            namespace = %self.object.namespace,
            name = %self.object.name,
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

    /// The one place an outcome becomes metrics, an Event, status and the requeue.
    async fn conclude(&self, outcome: Outcome) -> Result<Action, Error> {
        self.ctx.metrics.record_outcome(CONTROLLER, outcome.label());
        match outcome {
            Outcome::Kept {
                plan,
                held,
                renew_at,
            } => {
                self.ctx.metrics.set_expiring(&self.object.path(), false);
                self.settle_valid(&plan, &held).await?;
                Ok(Action::requeue(renewal::until(renew_at, Timestamp::now())))
            }
            Outcome::Minted {
                plan,
                held,
                reason,
                renew_at,
            } => {
                self.ctx.metrics.set_expiring(&self.object.path(), false);
                let (event, verb) = match reason {
                    MintReason::Missing => (events::CREDENTIALS_ISSUED, "issued"),
                    MintReason::InputsChanged => {
                        (events::CREDENTIALS_REISSUED, "reissued after a spec change")
                    }
                    MintReason::Due => (events::CREDENTIALS_RENEWED, "renewed"),
                };
                let note = format!(
                    "session {} {verb} into Secret {}, valid until {}",
                    held.session_name,
                    plan.secret_name,
                    secret::rfc3339(held.expires_at)
                );
                self.publish(EventType::Normal, event, note).await;
                self.settle_valid(&plan, &held).await?;
                Ok(Action::requeue(renewal::until(renew_at, Timestamp::now())))
            }
            Outcome::MintFailed { plan, held, error } => {
                let reason = error.reason();
                let message = error.to_string();
                let failure = Failure {
                    reason: reason.as_str(),
                    message,
                    stalled: !reason.is_transient(),
                };
                self.failed(failure, &plan.secret_name, held.as_ref())
                    .await?;
                Ok(Action::requeue(if reason.is_transient() {
                    RETRY_TRANSIENT
                } else {
                    RETRY_PERMANENT
                }))
            }
            Outcome::NotGranted { plan, message } => {
                self.ctx.metrics.set_expiring(&self.object.path(), false);
                self.withdraw(&plan).await?;
                let message =
                    grants::not_granted(KIND, &self.object.namespace, &self.object.name, &message);
                self.failed(
                    Failure::stalled(reasons::NOT_GRANTED, message),
                    &plan.secret_name,
                    None,
                )
                .await?;
                Ok(Action::requeue(RETRY_PERMANENT))
            }
            Outcome::SecretConflict { plan } => {
                let message = format!(
                    "Secret {} exists and was not created by securepipe for this TrainingPartition; it is left alone. Choose another spec.credentials.secretName, or remove that Secret",
                    plan.secret_name
                );
                self.failed(
                    Failure::stalled(reasons::SECRET_CONFLICT, message),
                    &plan.secret_name,
                    None,
                )
                .await?;
                Ok(Action::requeue(RETRY_PERMANENT))
            }
            Outcome::NotServed { plan } => {
                let message = format!(
                    "the operator may not write Secrets in namespace {}: add it to the chart's rbac.tenantNamespaces (the operator's --secret-namespaces)",
                    self.object.namespace
                );
                self.failed(
                    Failure::stalled(reasons::NAMESPACE_NOT_SERVED, message),
                    &plan.secret_name,
                    None,
                )
                .await?;
                Ok(Action::requeue(RETRY_PERMANENT))
            }
            Outcome::Unrevocable { plan, error } => {
                let transient = error.reason().is_transient();
                let reason = match &error {
                    RevocationError::NoRevoker { .. } => reasons::REVOKER_MISSING,
                    other => other.label(),
                };
                let message = format!(
                    "{KIND} {}: spec.credentials.revokeOnDelete cannot be honoured, nothing is issued: {error}",
                    self.object.path()
                );
                let failure = Failure {
                    reason,
                    message,
                    stalled: !transient,
                };
                self.failed(failure, &plan.secret_name, None).await?;
                Ok(Action::requeue(if transient {
                    RETRY_TRANSIENT
                } else {
                    RETRY_PERMANENT
                }))
            }
            Outcome::Refused(err) => {
                let secret_name = self
                    .tp
                    .status
                    .as_ref()
                    .and_then(|s| s.credentials.as_ref())
                    .map_or("", |c| c.secret_name.as_str());
                self.failed(
                    Failure::stalled(err.reason(), err.to_string()),
                    secret_name,
                    None,
                )
                .await?;
                Ok(Action::requeue(RETRY_PERMANENT))
            }
        }
    }

    /// A failure: counted, logged, announced once (a failure that persists across
    /// retries is one Warning, not one per retry) and reported in status.
    async fn failed(
        &self,
        failure: Failure,
        secret_name: &str,
        held: Option<&Held>,
    ) -> Result<(), Error> {
        let Failure {
            reason,
            message,
            stalled,
        } = failure;
        self.ctx.metrics.record_error(CONTROLLER, reason);
        tracing::warn!(object = %self.object, reason, error = %message, "credentials not issued");
        let announced = self
            .tp
            .status
            .as_ref()
            .is_some_and(|s| condition::is_true_with(&s.conditions, types::DEGRADED, reason));
        if !announced {
            self.publish(EventType::Warning, reason, message.clone())
                .await;
        }
        self.write_status(&status::Outcome::Failed {
            reason,
            message,
            stalled,
            secret_name,
            held,
        })
        .await
    }

    /// No longer granted: the Secret this object holds is deleted (credentials are not
    /// renewed), and with `revokeOnDelete` the sessions it held are revoked. A Secret
    /// that is not ours is left alone; without one there is nothing to do (no AWS call).
    async fn withdraw(&self, plan: &Plan) -> Result<(), Error> {
        // Where the operator may not read Secrets it cannot have written one either.
        if !self.ctx.secrets.allows(&self.object.namespace) {
            return Ok(());
        }
        let existing = self
            .secrets
            .get_opt(&plan.secret_name)
            .await
            .map_err(self.object.kube("read the credentials Secret"))?;
        let Some(existing) = existing.filter(|s| secret::is_ours(s, self.tp)) else {
            return Ok(());
        };
        let held = secret::held(&existing, self.tp).is_some();
        if held && self.tp.spec.credentials.revoke_on_delete {
            // The object lives on: exactly the sessions issued so far, so a session minted
            // after a new grant stays valid.
            let cutoff = Cutoff::IssuedUpTo(Timestamp::now());
            revoke::revoke_all(self.tp, self.ctx, self.object, cutoff, ACTION_RECONCILE).await?;
        }
        match self
            .secrets
            .delete(&plan.secret_name, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(self.object.kube("delete the credentials Secret")(err)),
        }
        tracing::info!(object = %self.object, secret = %plan.secret_name, "not granted: credentials Secret removed");
        Ok(())
    }

    /// With valid credentials held: status `Valid`, and the Secret of a previous
    /// `secretName` removed.
    async fn settle_valid(&self, plan: &Plan, held: &Held) -> Result<(), Error> {
        self.write_status(&status::Outcome::Valid {
            secret_name: &plan.secret_name,
            held,
        })
        .await?;
        self.delete_previous_secret(plan)
            .await
            .map_err(self.object.kube("delete the previous Secret"))
    }

    /// Applies the credentials part of the status when it differs from the current one.
    async fn write_status(&self, outcome: &status::Outcome<'_>) -> Result<(), Error> {
        let current = status::owned(self.tp.status.as_ref());
        // The whole status: `Degraded` also follows the extraction concern's condition.
        let next = status::next(
            self.tp.status.as_ref(),
            self.tp.meta().generation,
            outcome,
            Timestamp::now(),
        );
        if next == current {
            return Ok(());
        }
        status_patch::apply(self.api, &self.object.name, managers::CREDENTIALS, &next)
            .await
            .map_err(self.object.kube("write status"))
    }

    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        self.ctx
            .publish(
                &self.tp.object_ref(&()),
                type_,
                reason,
                note,
                ACTION_RECONCILE,
            )
            .await;
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
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Exact-call tests: each reconcile path's calls to the apiserver (and to IAM, on a
    //! loopback server), in order, and nothing else.

    use secrecy::SecretString;
    use securepipe_cloud::sts::IssuedSession;
    use securepipe_cloud::{Aws, AwsSettings};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::metrics::Metrics;
    use crate::testing::{ApiServer, mock_client};

    const PARTITION: &str = "/apis/securepipe.io/v1alpha1/namespaces/ml/trainingpartitions/speech";
    const SECRET: &str = "/api/v1/namespaces/ml/secrets/speech-aws";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";

    fn partition(extra_spec: &str) -> TrainingPartition {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: {{name: speech, namespace: ml, uid: 0f9e-uid, generation: 1, resourceVersion: "5"}}
spec:
  bucket: biometrics
  region: eu-west-1
  roleArn: "arn:aws:iam::123456789012:role/trainer"
{extra_spec}"#
        ))
        .unwrap()
    }

    /// A context whose AWS endpoint is `aws_endpoint` (nothing listens on port 9: a test
    /// that should not call AWS fails if it does).
    fn context(aws_endpoint: &str) -> (Arc<Context>, ApiServer) {
        context_granted(aws_endpoint, &[GRANT])
    }

    /// What `partition("")` asks for, in namespace `ml`.
    const GRANT: &str = r#"
namespaces: [ml]
roleArns: ["arn:aws:iam::123456789012:role/trainer"]
buckets: [biometrics]
partitions: [speech]
maxAccess: ReadWrite
maxDuration: 12h
"#;

    fn context_granted(aws_endpoint: &str, grants: &[&str]) -> (Arc<Context>, ApiServer) {
        let (client, server) = mock_client();
        let aws = Aws::with_endpoint(aws_endpoint, "eu-west-1", AwsSettings::default());
        let grants = crate::controllers::grants::holding(grants);
        (
            Arc::new(Context::new(client, aws, Arc::new(Metrics::new()), grants)),
            server,
        )
    }

    /// The Secret the operator would have written for `tp`, valid for another hour.
    fn fresh_secret(tp: &TrainingPartition) -> Secret {
        let plan = plan("ml", "speech", tp).unwrap();
        let now = Timestamp::now();
        let session = IssuedSession {
            access_key_id: "ASIAEXAMPLE".to_owned(),
            secret_access_key: SecretString::from("secret"),
            session_token: SecretString::from("token"),
            expiration: now + jiff::SignedDuration::from_hours(1),
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/trainer/sp-ml@speech"
                .to_owned(),
        };
        secret::build(tp, &plan, &session, now)
    }

    fn condition<'v>(status: &'v Value, type_: &str) -> &'v Value {
        status["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == type_))
            .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
    }

    fn outcomes(ctx: &Context, outcome: &'static str) -> u64 {
        ctx.metrics
            .reconcile_outcomes
            .get_or_create(&crate::metrics::OutcomeLabels {
                controller: CONTROLLER,
                outcome,
            })
            .get()
    }

    #[tokio::test]
    async fn a_fresh_session_is_kept_and_only_the_credentials_status_is_applied() {
        let tp = partition("");
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));

        let read = server.expect("GET", SECRET).await;
        let secret = fresh_secret(&tp);
        read.ok(&serde_json::to_value(&secret).unwrap());

        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        assert!(
            apply.uri.contains("fieldManager=securepipe%2Fcredentials")
                && apply.uri.contains("force=true"),
            "{}",
            apply.uri
        );
        assert_eq!(apply.body["apiVersion"], "securepipe.io/v1alpha1");
        assert_eq!(apply.body["kind"], "TrainingPartition");
        let status = &apply.body["status"];
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(condition(status, "Ready")["reason"], "CredentialsValid");
        assert_eq!(condition(status, "Degraded")["status"], "False");
        assert_eq!(status["credentials"]["secretName"], "speech-aws");
        assert!(status.get("extraction").is_none(), "{status}");
        apply.ok(&serde_json::to_value(&tp).unwrap());

        let action = reconciling.await.unwrap().unwrap();
        assert_ne!(action, Action::await_change());
        server.expect_no_more();
        assert_eq!(outcomes(&ctx, "Kept"), 1);
        assert_eq!(ctx.metrics.credentials_minted.get(), 0);
    }

    #[tokio::test]
    async fn an_unchanged_status_is_not_written_again() {
        let mut tp = partition("");
        let secret = fresh_secret(&tp);
        let held = secret::held(&secret, &tp).unwrap();
        tp.status = Some(status::next(
            None,
            Some(1),
            &status::Outcome::Valid {
                secret_name: "speech-aws",
                held: &held,
            },
            Timestamp::now(),
        ));
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp), ctx.clone()));
        server
            .expect("GET", SECRET)
            .await
            .ok(&serde_json::to_value(&secret).unwrap());
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_spec_it_cannot_act_on_is_announced_once_and_reported() {
        let tp = partition("  credentials: {duration: 5m}\n");
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));

        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "InvalidSpec");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        let status = apply.body["status"].clone();
        assert_eq!(condition(&status, "Degraded")["reason"], "InvalidSpec");
        assert_eq!(condition(&status, "Ready")["status"], "False");
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
        assert_eq!(outcomes(&ctx, "Refused"), 1);

        // Again with that status: no second Warning, no write.
        let mut reported = tp;
        reported.status = Some(serde_json::from_value(status).unwrap());
        reconcile(Arc::new(reported), ctx.clone()).await.unwrap();
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_foreign_secret_under_secret_name_is_left_alone() {
        let tp = partition("");
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        // Someone's own Secret: no owner, no securepipe labels.
        let foreign = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "speech-aws", "namespace": "ml", "uid": "f00d"},
            "data": {"password": "aHVudGVyMg=="},
        });
        server.expect("GET", SECRET).await.ok(&foreign);
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "SecretConflict");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        let status = &apply.body["status"];
        assert_eq!(condition(status, "Ready")["reason"], "SecretConflict");
        assert!(status.get("credentials").is_none(), "{status}");
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        // No Secret write, no AWS call (nothing listens on the AWS endpoint).
        server.expect_no_more();
        assert_eq!(outcomes(&ctx, "SecretConflict"), 1);
        assert_eq!(ctx.metrics.credentials_minted.get(), 0);
    }

    #[tokio::test]
    async fn revoke_on_delete_adds_the_finalizer_before_anything_else() {
        let tp = partition("  credentials: {revokeOnDelete: true}\n");
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx));
        let add = server.expect("PATCH", &format!("{PARTITION}?")).await;
        assert!(
            add.body.to_string().contains(revoke::FINALIZER),
            "{}",
            add.body
        );
        let mut finalized = tp;
        finalized.metadata.finalizers = Some(vec![revoke::FINALIZER.to_owned()]);
        add.ok(&serde_json::to_value(&finalized).unwrap());
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_finalizer_the_spec_no_longer_asks_for_is_removed() {
        let mut tp = partition("");
        tp.metadata.finalizers = Some(vec![
            "other.io/keep".to_owned(),
            revoke::FINALIZER.to_owned(),
        ]);
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx));
        let remove = server.expect("PATCH", &format!("{PARTITION}?")).await;
        assert_eq!(
            remove.body,
            json!({"metadata": {"finalizers": ["other.io/keep"], "resourceVersion": "5"}})
        );
        remove.ok(&serde_json::to_value(&tp).unwrap());
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();
    }

    /// Deleted with `revokeOnDelete`, after sessions were minted on `roles`.
    fn deleted(role_arn: &str, roles: &[&str]) -> TrainingPartition {
        let mut tp = partition("  credentials: {revokeOnDelete: true}\n");
        tp.spec.role_arn = role_arn.into();
        tp.metadata.finalizers = Some(vec![revoke::FINALIZER.to_owned()]);
        tp.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-30T05:00:00Z".parse().unwrap(),
            ));
        tp.status = Some(securepipe_api::TrainingPartitionStatus {
            used_role_arns: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        });
        tp
    }

    #[tokio::test]
    async fn a_failed_revocation_keeps_the_finalizer() {
        // Not a role ARN: refused before any AWS call.
        let alice = "arn:aws:iam::123456789012:user/alice";
        let tp = deleted(alice, &[alice]);
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp), ctx));
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "RevocationFailed");
        let body = event.body.clone();
        event.ok(&body);
        let err = reconciling.await.unwrap().unwrap_err();
        assert_eq!(err.reason(), "InvalidRequest");
        server.expect_no_more();
    }

    /// A loopback AWS (STS and IAM, form-encoded queries): answers `requests` requests,
    /// each by its Action, and returns their form bodies in order. The operator's account
    /// is 123456789012; the role has no revocation policy yet.
    async fn aws_server(listener: tokio::net::TcpListener, requests: usize) -> Vec<String> {
        let mut forms = Vec::new();
        for _ in 0..requests {
            let (mut stream, _) = listener.accept().await.unwrap();
            let form = read_request(&mut stream).await;
            let (status, answer) = if form.contains("Action=GetCallerIdentity") {
                (
                    "200 OK",
                    r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:role/securepipe-operator</Arn><UserId>AROA</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#,
                )
            } else if form.contains("Action=GetRolePolicy") {
                (
                    "404 Not Found",
                    r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role policy with name securepipe-revocations cannot be found.</Message></Error><RequestId>2</RequestId></ErrorResponse>"#,
                )
            } else {
                (
                    "200 OK",
                    r#"<PutRolePolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>3</RequestId></ResponseMetadata></PutRolePolicyResponse>"#,
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            forms.push(form);
        }
        forms
    }

    async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
        let mut request = Vec::new();
        let mut chunk = [0_u8; 8192];
        let body_start = loop {
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "AWS request ended early");
            request.extend_from_slice(&chunk[..read]);
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..body_start]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while request.len() < body_start + length {
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "AWS request body ended early");
            request.extend_from_slice(&chunk[..read]);
        }
        let form = String::from_utf8_lossy(&request[body_start..]).into_owned();
        percent_encoding::percent_decode_str(&form.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    }

    async fn loopback_aws(requests: usize) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        (endpoint, tokio::spawn(aws_server(listener, requests)))
    }

    #[tokio::test]
    async fn deletion_denies_the_uid_on_every_role_ever_used_then_releases_the_object() {
        let (endpoint, aws) = loopback_aws(5).await;
        let old_role = "arn:aws:iam::123456789012:role/old-trainer";
        let role = "arn:aws:iam::123456789012:role/trainer";
        let tp = deleted(role, &[old_role, role]);
        let (ctx, mut server) = context(&endpoint);
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx));

        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["reason"], "SessionsRevoked");
        let body = event.body.clone();
        event.ok(&body);
        let release = server.expect("PATCH", &format!("{PARTITION}?")).await;
        assert!(
            release.body.to_string().contains("remove"),
            "{}",
            release.body
        );
        let mut released = tp;
        released.metadata.finalizers = None;
        release.ok(&serde_json::to_value(&released).unwrap());
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();

        let forms = aws.await.unwrap();
        assert!(
            forms[0].contains("Action=GetCallerIdentity"),
            "{}",
            forms[0]
        );
        for (form, role_name) in [(&forms[1], "old-trainer"), (&forms[3], "trainer")] {
            assert!(form.contains("Action=GetRolePolicy"), "{form}");
            assert!(form.contains(&format!("RoleName={role_name}&")), "{form}");
        }
        for (form, role_name) in [(&forms[2], "old-trainer"), (&forms[4], "trainer")] {
            assert!(form.contains("Action=PutRolePolicy"), "{form}");
            assert!(form.contains(&format!("RoleName={role_name}&")), "{form}");
            assert!(form.contains("PolicyName=securepipe-revocations"), "{form}");
            assert!(
                form.contains(r#"{"aws:PrincipalTag/securepipe:uid":["0f9e-uid"]}"#),
                "{form}"
            );
            assert!(!form.contains("securepipe:partition"), "{form}");
        }
    }

    #[tokio::test]
    async fn revoke_on_delete_in_another_account_without_a_revoker_issues_nothing() {
        let (endpoint, aws) = loopback_aws(1).await;
        let foreign = GRANT.replace("123456789012", "111122223333");
        let mut tp = partition("  credentials: {revokeOnDelete: true}\n");
        tp.spec.role_arn = "arn:aws:iam::111122223333:role/trainer".into();
        tp.metadata.finalizers = Some(vec![revoke::FINALIZER.to_owned()]);
        let (ctx, mut server) = context_granted(&endpoint, &[&foreign]);
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["reason"], "RevokerMissing");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        let ready = condition(&apply.body["status"], "Ready").clone();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "RevokerMissing");
        let message = ready["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("TrainingPartition ml/speech")
                && message.contains("111122223333")
                && message.contains("123456789012"),
            "{message}"
        );
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        // No Secret read or write, no AssumeRole: only GetCallerIdentity reached AWS.
        server.expect_no_more();
        let forms = aws.await.unwrap();
        assert!(forms[0].contains("Action=GetCallerIdentity"), "{forms:?}");
        assert_eq!(ctx.metrics.credentials_minted.get(), 0);
    }

    /// A context whose operator may write Secrets in `team-b` only.
    fn context_serving_team_b(grant: &str) -> (Arc<Context>, ApiServer) {
        let (client, server) = mock_client();
        let aws = Aws::with_endpoint("http://127.0.0.1:9", "eu-west-1", AwsSettings::default());
        let grants = crate::controllers::grants::holding(&[grant]);
        let scope = crate::controllers::TenantScope::Namespaces(["team-b".to_owned()].into());
        let ctx = Context::new(client, aws, Arc::new(Metrics::new()), grants);
        (Arc::new(ctx.with_tenant_scope(scope)), server)
    }

    #[tokio::test]
    async fn not_granted_in_a_namespace_without_secret_access_reads_no_secret() {
        let tp = partition("");
        let other_role = GRANT.replace("role/trainer", "role/other-team");
        let (ctx, mut server) = context_serving_team_b(&other_role);
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx));
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["reason"], "NotGranted");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_namespace_without_secret_access_is_refused_before_the_secret_is_read() {
        let tp = partition("");
        let (ctx, mut server) = context_serving_team_b(GRANT);
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["reason"], "NamespaceNotServed");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        assert_eq!(
            condition(&apply.body["status"], "Ready")["reason"],
            "NamespaceNotServed"
        );
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
        assert_eq!(outcomes(&ctx, "NotServed"), 1);
    }

    #[tokio::test]
    async fn without_a_grant_nothing_is_minted_and_the_held_secret_is_removed() {
        let tp = partition("");
        // Granted the bucket and partition but another team's role.
        let other_role = GRANT.replace("role/trainer", "role/other-team");
        let (ctx, mut server) = context_granted("http://127.0.0.1:9", &[&other_role]);
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        // The Secret it held before the grant changed.
        server
            .expect("GET", SECRET)
            .await
            .ok(&serde_json::to_value(fresh_secret(&tp)).unwrap());
        let delete = server.expect("DELETE", SECRET).await;
        delete.ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let event = server.expect("POST", EVENTS).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "NotGranted");
        let note = event.body["note"].as_str().unwrap_or_default().to_owned();
        assert!(
            note.contains("spec.roleArn arn:aws:iam::123456789012:role/trainer"),
            "{note}"
        );
        let body = event.body.clone();
        event.ok(&body);
        let apply = server
            .expect("PATCH", &format!("{PARTITION}/status?"))
            .await;
        let status = &apply.body["status"];
        assert_eq!(condition(status, "Ready")["status"], "False");
        assert_eq!(condition(status, "Ready")["reason"], "NotGranted");
        assert!(status.get("credentials").is_none(), "{status}");
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        // No AWS call (nothing listens on port 9), no mint.
        server.expect_no_more();
        assert_eq!(outcomes(&ctx, "NotGranted"), 1);
        assert_eq!(ctx.metrics.credentials_minted.get(), 0);
    }

    #[tokio::test]
    async fn deleting_an_ungranted_partition_writes_no_deny() {
        // Another team's role: deleting must not let this namespace deny their sessions.
        let tp = deleted("arn:aws:iam::123456789012:role/other-team", &[]);
        let (ctx, mut server) = context("http://127.0.0.1:9");
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx));
        let release = server.expect("PATCH", &format!("{PARTITION}?")).await;
        assert!(
            release.body.to_string().contains("remove"),
            "{}",
            release.body
        );
        let mut released = tp;
        released.metadata.finalizers = None;
        release.ok(&serde_json::to_value(&released).unwrap());
        // No IAM call (nothing listens on port 9), no event.
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();
    }
}

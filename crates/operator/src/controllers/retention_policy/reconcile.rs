//! One reconcile, as a list of steps: validate → read the bucket → check conflicts →
//! merge → write if different and read back → posture. The steps end in an [`Outcome`];
//! [`Run::conclude`] is the one place that turns it into Events, metrics, status and the
//! requeue. Deletion removes only this policy's rules.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use securepipe_api::condition::{self, reasons, types};
use securepipe_api::{RetentionPolicy, RetentionPolicyStatus};
use securepipe_cloud::lifecycle::{
    self, LifecycleError, MAX_RULES, RuleSpec, S3Client, StoredRule,
};

use super::super::error;
use super::super::{Error, ObjectKey, events, grants, status_patch};
use super::conflict::{self, Claim};
use super::merge::{self, Difference};
use super::ownership::{self, Owner};
use super::posture;
use super::state::State;
use super::status;
use super::validate;
use super::{CONTROLLER, FINALIZER, KIND};
use crate::context::{ACTION_CLEANUP, ACTION_RECONCILE};
use crate::grant_coverage::Verdict;
use crate::managers;

/// How often a write is read back before it counts as not taken effect.
const CONFIRM_ATTEMPTS: u32 = 5;
const CONFIRM_PAUSE: Duration = Duration::from_secs(1);

pub async fn reconcile(policy: Arc<RetentionPolicy>, state: Arc<State>) -> Result<Action, Error> {
    state.ctx.metrics.record_reconcile(CONTROLLER);
    let object = ObjectKey::of(policy.as_ref(), KIND)?;
    let api: Api<RetentionPolicy> = Api::namespaced(state.ctx.client.clone(), &object.namespace);
    finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            finalizer::Event::Apply(policy) => apply(&policy, &state, &api, &object).await,
            finalizer::Event::Cleanup(policy) => cleanup(&policy, &state, &object).await,
        }
    })
    .await
    .map_err(|err| Error::Finalizer(Box::new(err)))
}

pub fn error_policy(policy: Arc<RetentionPolicy>, err: &Error, state: Arc<State>) -> Action {
    error::report(&state.ctx.metrics, CONTROLLER, err);
    Action::requeue(state.backoff(&policy, resync_interval(&policy)))
}

/// The policy's resync interval, never below the 10-second floor.
fn resync_interval(policy: &RetentionPolicy) -> Duration {
    if policy.spec.resync_interval.is_negative() {
        return validate::MIN_RESYNC;
    }
    Duration::from(policy.spec.resync_interval).max(validate::MIN_RESYNC)
}

/// How the steps ended.
#[derive(Debug)]
enum Outcome {
    /// The spec breaks S3's (or admission's) rules: nothing was written.
    Invalid { problems: Vec<String> },
    /// The spec is valid, but with the bucket's other rules the document would exceed
    /// S3's limit: nothing was written; retried every resync (other rules may go).
    TooManyRules { problems: Vec<String> },
    /// No TenantGrant covers the bucket, prefixes or posture: no AWS call was made.
    NotGranted { message: String },
    /// Another policy claims the same rules: nothing was written.
    Conflict { conflicts: Vec<String> },
    /// An AWS call failed (or a write did not take effect).
    Failed {
        reason: &'static str,
        message: String,
        /// Retrying cannot fix it (the `Stalled` condition).
        stalled: bool,
    },
    /// The bucket holds the policy's rules.
    Synced {
        /// The S3 IDs of the policy's rules, confirmed in the bucket.
        applied: Vec<String>,
        /// What this reconcile wrote, if anything.
        written: Option<Written>,
        /// The posture pass, when the policy has a `bucketPosture`.
        posture: Option<posture::Report>,
    },
}

impl Outcome {
    /// The metric label.
    fn label(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "Invalid",
            Self::TooManyRules { .. } => "TooManyRules",
            Self::NotGranted { .. } => "NotGranted",
            Self::Conflict { .. } => "Conflict",
            Self::Failed { .. } => "Failed",
            Self::Synced { written: None, .. } => "UpToDate",
            Self::Synced { .. } => "Written",
        }
    }
}

/// A write that took effect.
#[derive(Debug)]
struct Written {
    differences: Vec<Difference>,
    /// The generation was already synced: the write restored drift, not a spec change.
    corrected_drift: bool,
}

fn failure(err: &LifecycleError) -> Outcome {
    let reason = if err.no_such_bucket {
        reasons::NO_SUCH_BUCKET
    } else {
        err.reason().as_str()
    };
    Outcome::Failed {
        reason,
        message: err.to_string(),
        stalled: err.no_such_bucket || !err.reason().is_transient(),
    }
}

async fn apply(
    policy: &RetentionPolicy,
    state: &State,
    api: &Api<RetentionPolicy>,
    object: &ObjectKey,
) -> Result<Action, Error> {
    let owner = Owner::new(&object.namespace, &object.name);
    let mut run = Run {
        policy,
        state,
        api,
        object,
        status: policy.status.clone(),
    };
    let new_generation =
        run.status.as_ref().and_then(|s| s.observed_generation) != run.generation();
    let action = match run.steps(&owner).await {
        Ok(outcome) => run.conclude(outcome).await,
        Err(err) => Err(err),
    };
    if new_generation {
        // This policy's claims changed: the others on the bucket re-check their conflicts.
        state.recheck_others(&policy.spec.bucket, policy);
    }
    action
}

/// The pieces every step needs.
struct Run<'a> {
    policy: &'a RetentionPolicy,
    state: &'a State,
    api: &'a Api<RetentionPolicy>,
    object: &'a ObjectKey,
    /// The status as last written (or read), so identical writes are skipped.
    status: Option<RetentionPolicyStatus>,
}

impl Run<'_> {
    async fn steps(&mut self, owner: &Owner) -> Result<Outcome, Error> {
        let spec = &self.policy.spec;
        let bucket = spec.bucket.as_str();
        let desired = match validate::rules(spec, owner) {
            Ok(desired) => desired,
            Err(problems) => return Ok(Outcome::Invalid { problems }),
        };
        // Default deny, before any AWS call.
        let verdict = self
            .state
            .ctx
            .grants
            .retention(&self.object.namespace, self.policy);
        if let Verdict::NotGranted { message } = verdict {
            return Ok(Outcome::NotGranted { message });
        }

        let s3 =
            lifecycle::client(&self.state.ctx.aws, &spec.region, spec.role_arn.as_deref()).await;
        let _bucket_lock = self.state.lock_bucket(bucket).await;
        let current = match lifecycle::read(&s3, bucket).await {
            Ok(current) => current,
            Err(err) => return Ok(failure(&err)),
        };
        let conflicts = self.conflicts(owner, &desired, &current);
        if !conflicts.is_empty() {
            return Ok(Outcome::Conflict { conflicts });
        }

        let plan = merge::plan(&current, owner, &desired);
        if plan.document.len() > MAX_RULES {
            let problems = vec![format!(
                "spec.rules: the bucket's lifecycle configuration would hold {} rules ({} of them this policy's); S3 accepts at most {MAX_RULES}",
                plan.document.len(),
                desired.len()
            )];
            return Ok(Outcome::TooManyRules { problems });
        }

        let written = if plan.needs_write() {
            let corrected_drift = self.is_drift();
            if corrected_drift {
                let drifting = status::drifting(
                    self.status.as_ref(),
                    self.generation(),
                    &plan.differences,
                    jiff::Timestamp::now(),
                );
                self.write_status(drifting).await?;
            }
            if let Err(failed) = write_confirmed(&s3, bucket, owner, &desired, &plan.document).await
            {
                return Ok(failed);
            }
            Some(Written {
                differences: plan.differences,
                corrected_drift,
            })
        } else {
            None
        };

        let posture = match &spec.bucket_posture {
            Some(wanted) => Some(posture::run(&s3, bucket, &spec.region, wanted).await),
            None => None,
        };
        Ok(Outcome::Synced {
            applied: desired.into_iter().map(|rule| rule.id).collect(),
            written,
            posture,
        })
    }

    /// The one place an outcome becomes Events, metrics, status and the requeue.
    async fn conclude(&mut self, outcome: Outcome) -> Result<Action, Error> {
        self.state
            .ctx
            .metrics
            .record_outcome(CONTROLLER, outcome.label());
        let resync = resync_interval(self.policy);
        match outcome {
            Outcome::Invalid { problems } => {
                if !self.was_invalid() {
                    self.event(
                        EventType::Warning,
                        reasons::INVALID_SPEC,
                        problems.join("; "),
                    )
                    .await;
                }
                self.report(&status::Outcome::Invalid {
                    problems: &problems,
                })
                .await?;
                Ok(Action::await_change())
            }
            Outcome::TooManyRules { problems } => {
                self.report(&status::Outcome::Invalid {
                    problems: &problems,
                })
                .await?;
                Ok(Action::requeue(resync))
            }
            Outcome::NotGranted { message } => {
                let message =
                    grants::not_granted(KIND, &self.object.namespace, &self.object.name, &message);
                tracing::warn!(object = %self.object, %message, "retentionpolicy: not granted");
                self.state
                    .ctx
                    .metrics
                    .record_error(CONTROLLER, reasons::NOT_GRANTED);
                let announced = self.status.as_ref().is_some_and(|s| {
                    condition::is_true_with(&s.conditions, types::DEGRADED, reasons::NOT_GRANTED)
                });
                if !announced {
                    self.event(EventType::Warning, reasons::NOT_GRANTED, message.clone())
                        .await;
                }
                self.report(&status::Outcome::Failed {
                    reason: reasons::NOT_GRANTED,
                    message,
                    stalled: true,
                })
                .await?;
                Ok(Action::requeue(resync))
            }
            Outcome::Conflict { conflicts } => self.in_conflict(&conflicts, resync).await,
            Outcome::Failed {
                reason,
                message,
                stalled,
            } => self.failed(reason, message, stalled, resync).await,
            Outcome::Synced {
                applied,
                written,
                posture,
            } => self.synced(applied, written, posture, resync).await,
        }
    }

    async fn in_conflict(
        &mut self,
        conflicts: &[String],
        resync: Duration,
    ) -> Result<Action, Error> {
        let was_in_conflict = self.was(types::CONFLICT);
        if !was_in_conflict {
            self.event(EventType::Warning, reasons::CONFLICT, conflicts.join("; "))
                .await;
        }
        self.report(&status::Outcome::Conflict { conflicts })
            .await?;
        if !was_in_conflict {
            self.state
                .recheck_others(&self.policy.spec.bucket, self.policy);
        }
        self.state.succeeded(self.policy);
        Ok(Action::requeue(resync))
    }

    /// An AWS failure: logged, counted, announced once, reported; retried with backoff.
    async fn failed(
        &mut self,
        reason: &'static str,
        message: String,
        stalled: bool,
        resync: Duration,
    ) -> Result<Action, Error> {
        tracing::warn!(object = %self.object, reason, %message, "retentionpolicy: AWS call failed");
        self.state.ctx.metrics.record_error(CONTROLLER, reason);
        if !self.was(types::DEGRADED) {
            self.event(EventType::Warning, reason, message.clone())
                .await;
        }
        self.report(&status::Outcome::Failed {
            reason,
            message,
            stalled,
        })
        .await?;
        Ok(Action::requeue(self.state.backoff(self.policy, resync)))
    }

    async fn synced(
        &mut self,
        applied: Vec<String>,
        written: Option<Written>,
        posture: Option<posture::Report>,
        resync: Duration,
    ) -> Result<Action, Error> {
        let policy = self.policy;
        let bucket = policy.spec.bucket.as_str();
        let leaving_conflict = self.was(types::CONFLICT);
        if let Some(written) = &written {
            self.announce(written).await;
        }
        if let Some(report) = &posture {
            for check in &report.corrected {
                self.event(
                    EventType::Normal,
                    events::POSTURE_CORRECTED,
                    format!("bucket {bucket}: corrected {}", check.as_str()),
                )
                .await;
            }
            if let Some(err) = &report.failure {
                self.state
                    .ctx
                    .metrics
                    .record_error(CONTROLLER, err.reason().as_str());
            }
        }
        self.report(&status::Outcome::Synced {
            applied,
            wrote: written.is_some(),
            corrected_drift: written.as_ref().is_some_and(|w| w.corrected_drift),
            posture: posture.as_ref(),
            enforce_posture: policy
                .spec
                .bucket_posture
                .as_ref()
                .is_some_and(|p| p.mode == securepipe_api::retention_policy::PostureMode::Enforce),
        })
        .await?;
        self.state.record_synced(policy);
        if leaving_conflict {
            self.state.recheck_others(bucket, policy);
        }
        if posture.as_ref().is_some_and(|r| r.failure.is_some()) {
            return Ok(Action::requeue(self.state.backoff(policy, resync)));
        }
        self.state.succeeded(policy);
        Ok(Action::requeue(resync))
    }

    fn generation(&self) -> Option<i64> {
        self.policy.metadata.generation
    }

    async fn write_status(&mut self, next: RetentionPolicyStatus) -> Result<(), Error> {
        if self.status.as_ref() == Some(&next) {
            return Ok(());
        }
        status_patch::apply(self.api, &self.object.name, managers::RETENTION, &next)
            .await
            .map_err(self.object.kube("write status"))?;
        self.status = Some(next);
        Ok(())
    }

    async fn report(&mut self, outcome: &status::Outcome<'_>) -> Result<(), Error> {
        let next = status::next(
            self.status.as_ref(),
            self.generation(),
            outcome,
            jiff::Timestamp::now(),
        );
        self.write_status(next).await
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        self.state
            .ctx
            .publish(
                &self.policy.object_ref(&()),
                type_,
                reason,
                note,
                ACTION_RECONCILE,
            )
            .await;
    }

    fn was(&self, type_: &str) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| condition::is_true(&s.conditions, type_))
    }

    fn was_invalid(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            condition::find(&s.conditions, types::READY)
                .is_some_and(|c| c.status == "False" && c.reason == reasons::INVALID_SPEC)
        })
    }

    /// Whether owned rules that differ now are drift: this generation was already synced
    /// (by this process, or, after a restart, as the status says).
    fn is_drift(&self) -> bool {
        let generation = self.generation();
        match self.state.last_synced_generation(self.policy) {
            Some(synced) => Some(synced) == generation,
            None => self.status.as_ref().is_some_and(|s| {
                s.observed_generation == generation
                    && condition::find(&s.conditions, types::SYNCED)
                        .is_some_and(|c| c.status == "True" && c.observed_generation == generation)
            }),
        }
    }

    /// What other policies claim that this one's rules (or posture) contradict.
    fn conflicts(
        &self,
        owner: &Owner,
        desired: &[RuleSpec],
        current: &[StoredRule],
    ) -> Vec<String> {
        let (claims, postures) = claims(self.policy, self.state, owner, current);
        let mut conflicts = conflict::between(desired, &claims);
        if let Some(posture) = &self.policy.spec.bucket_posture {
            conflicts.extend(conflict::posture_between(posture, &postures));
        }
        conflicts
    }

    /// The Event (and, for drift, the metric) of a write that took effect.
    async fn announce(&self, written: &Written) {
        let what = written
            .differences
            .iter()
            .map(Difference::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let bucket = self.policy.spec.bucket.as_str();
        if written.corrected_drift {
            self.state.ctx.metrics.drift_corrections.inc();
            self.event(
                EventType::Normal,
                events::DRIFT_CORRECTED,
                format!("bucket {bucket}: restored {what}"),
            )
            .await;
            tracing::info!(bucket, differences = %what, "lifecycle drift corrected");
        } else {
            self.event(
                EventType::Normal,
                events::RULES_APPLIED,
                format!("bucket {bucket}: {what}"),
            )
            .await;
        }
    }
}

/// Writes `document` and reads the bucket until it shows the policy's rules (S3 applies
/// lifecycle changes eventually); the failure outcome when either does not work.
async fn write_confirmed(
    s3: &S3Client,
    bucket: &str,
    owner: &Owner,
    desired: &[RuleSpec],
    document: &[StoredRule],
) -> Result<(), Outcome> {
    lifecycle::write(s3, bucket, document)
        .await
        .map_err(|err| failure(&err))?;
    for attempt in 0..CONFIRM_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(CONFIRM_PAUSE).await;
        }
        let reread = lifecycle::read(s3, bucket)
            .await
            .map_err(|err| failure(&err))?;
        if !merge::plan(&reread, owner, desired).needs_write() {
            return Ok(());
        }
    }
    Err(Outcome::Failed {
        reason: reasons::NOT_CONFIRMED,
        message: format!(
            "bucket {bucket} did not show the written rules after {CONFIRM_ATTEMPTS} reads"
        ),
        // S3 applies lifecycle changes eventually: the next reconcile looks again.
        stalled: false,
    })
}

/// Removes this policy's rules from the bucket (deleting the configuration when nothing
/// is left). A bucket that no longer exists has nothing to remove.
async fn cleanup(
    policy: &RetentionPolicy,
    state: &State,
    object: &ObjectKey,
) -> Result<Action, Error> {
    let owner = Owner::new(&object.namespace, &object.name);
    let spec = &policy.spec;
    let bucket = spec.bucket.as_str();
    let cleanup_error =
        |err: LifecycleError| object.cleanup(err.reason().as_str(), err.to_string());
    let s3 = lifecycle::client(&state.ctx.aws, &spec.region, spec.role_arn.as_deref()).await;
    let removed = {
        let _bucket_lock = state.lock_bucket(bucket).await;
        let current = rules_unless_gone(&s3, bucket)
            .await
            .map_err(&cleanup_error)?;
        let removed = merge::owned_ids(&current, &owner);
        if let Some(rest) = merge::without_owned(&current, &owner) {
            match lifecycle::write(&s3, bucket, &rest).await {
                Err(err) if !err.no_such_bucket => return Err(cleanup_error(err)),
                _ => {}
            }
            let after = rules_unless_gone(&s3, bucket)
                .await
                .map_err(&cleanup_error)?;
            if !merge::owned_ids(&after, &owner).is_empty() {
                return Err(object.cleanup(
                    reasons::NOT_CONFIRMED,
                    format!("bucket {bucket} still holds its rules after they were removed"),
                ));
            }
        }
        removed
    };
    if !removed.is_empty() {
        state
            .ctx
            .publish(
                &policy.object_ref(&()),
                EventType::Normal,
                events::RULES_REMOVED,
                format!("bucket {bucket}: removed {}", removed.join(", ")),
                ACTION_CLEANUP,
            )
            .await;
    }
    tracing::info!(
        bucket,
        removed = removed.len(),
        "retentionpolicy rules removed"
    );
    state.forget(policy);
    state.recheck_others(bucket, policy);
    Ok(Action::await_change())
}

/// The bucket's rules; none when the bucket itself is gone.
async fn rules_unless_gone(s3: &S3Client, bucket: &str) -> Result<Vec<StoredRule>, LifecycleError> {
    match lifecycle::read(s3, bucket).await {
        Err(err) if err.no_such_bucket => Ok(Vec::new()),
        read => read,
    }
}

/// Other policies' rules on this bucket: from the cache for policies the controller
/// watches (their spec, even before they wrote anything), and from the bucket for the
/// others (other namespaces or clusters). Policies being deleted claim nothing.
fn claims(
    policy: &RetentionPolicy,
    state: &State,
    owner: &Owner,
    current: &[StoredRule],
) -> (
    Vec<Claim>,
    Vec<(String, securepipe_api::retention_policy::BucketPosture)>,
) {
    let mut known = HashSet::new();
    let mut claims = Vec::new();
    let mut postures = Vec::new();
    for other in state.others_on(&policy.spec.bucket, policy) {
        let other_owner = Owner::new(&other.namespace().unwrap_or_default(), &other.name_any());
        known.insert(other_owner.prefix().to_owned());
        if other.metadata.deletion_timestamp.is_some() {
            continue;
        }
        for rule in &other.spec.rules {
            claims.push(Claim {
                owner: other_owner.display().to_owned(),
                rule: validate::rule_spec(rule, &other_owner),
            });
        }
        if let Some(posture) = &other.spec.bucket_posture {
            postures.push((other_owner.display().to_owned(), posture.clone()));
        }
    }
    for rule in current {
        let Some((prefix, _)) = rule.id().and_then(ownership::parse) else {
            continue;
        };
        if prefix == owner.prefix() || known.contains(prefix) {
            continue;
        }
        if let Some(spec) = rule.spec() {
            claims.push(Claim {
                owner: ownership::display_prefix(prefix).to_owned(),
                rule: spec,
            });
        }
    }
    (claims, postures)
}

#[cfg(test)]
mod tests {
    //! Exact-call tests of the paths that need no bucket: the calls to the apiserver, in
    //! order, and nothing else.

    use kube::runtime::reflector;
    use securepipe_cloud::{Aws, AwsSettings};
    use serde_json::json;

    use super::*;
    use crate::Context;
    use crate::metrics::Metrics;
    use crate::testing::{ApiServer, mock_client};

    const POLICY: &str = "/apis/securepipe.io/v1alpha1/namespaces/ml/retentionpolicies/prod";

    fn policy(finalized: bool) -> RetentionPolicy {
        let mut policy: RetentionPolicy = serde_json::from_value(json!({
            "apiVersion": "securepipe.io/v1alpha1",
            "kind": "RetentionPolicy",
            "metadata": {"name": "prod", "namespace": "ml", "uid": "7c1e", "generation": 2, "resourceVersion": "11"},
            "spec": {
                "bucket": "biometrics",
                "region": "eu-west-1",
                // S3 refuses STANDARD_IA before 30 days.
                "rules": [{"id": "raw", "prefix": "raw/", "transitions": [{"days": 10, "storageClass": "STANDARD_IA"}]}],
            },
        }))
        .unwrap();
        if finalized {
            policy.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        }
        policy
    }

    fn state() -> (Arc<State>, ApiServer) {
        state_granted(&["{namespaces: [ml], retention: [{bucket: biometrics, prefixes: [raw/]}]}"])
    }

    fn state_granted(grants: &[&str]) -> (Arc<State>, ApiServer) {
        let (client, server) = mock_client();
        // Nothing listens on port 9: a path that calls AWS fails the test.
        let aws = Aws::with_endpoint("http://127.0.0.1:9", "eu-west-1", AwsSettings::default());
        let ctx = Arc::new(Context::new(
            client,
            aws,
            Arc::new(Metrics::new()),
            crate::controllers::grants::holding(grants),
        ));
        let (store, _writer) = reflector::store();
        let (recheck, _rechecks) = futures::channel::mpsc::unbounded();
        (Arc::new(State::new(ctx, store, recheck)), server)
    }

    #[tokio::test]
    async fn the_finalizer_comes_first() {
        let (state, mut server) = state();
        let reconciling = tokio::spawn(reconcile(Arc::new(policy(false)), state));
        let add = server.expect("PATCH", &format!("{POLICY}?")).await;
        assert!(add.body.to_string().contains(FINALIZER), "{}", add.body);
        add.ok(&serde_json::to_value(policy(true)).unwrap());
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();
    }

    #[tokio::test]
    async fn an_invalid_policy_is_announced_once_and_reported_without_aws() {
        let (state, mut server) = state();
        let reconciling = tokio::spawn(reconcile(Arc::new(policy(true)), state.clone()));
        let event = server
            .expect("POST", "/apis/events.k8s.io/v1/namespaces/ml/events")
            .await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "InvalidSpec");
        assert!(
            event.body["note"]
                .as_str()
                .unwrap_or_default()
                .contains("30"),
            "{}",
            event.body
        );
        let body = event.body.clone();
        event.ok(&body);
        let apply = server.expect("PATCH", &format!("{POLICY}/status?")).await;
        assert!(
            apply
                .uri
                .contains("fieldManager=securepipe%2Fretention-policy")
                && apply.uri.contains("force=true"),
            "{}",
            apply.uri
        );
        assert_eq!(apply.body["kind"], "RetentionPolicy");
        let status = apply.body["status"].clone();
        let ready = status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("InvalidSpec"))
        );
        assert_eq!(status["observedGeneration"], 2);
        apply.ok(&serde_json::to_value(policy(true)).unwrap());
        assert_eq!(reconciling.await.unwrap().unwrap(), Action::await_change());
        server.expect_no_more();

        // Reported already: no second Warning and no write.
        let mut reported = policy(true);
        reported.status = Some(serde_json::from_value(status).unwrap());
        reconcile(Arc::new(reported), state).await.unwrap();
        server.expect_no_more();
    }

    #[tokio::test]
    async fn an_ungranted_bucket_is_refused_without_aws() {
        // Granted another bucket only; the policy itself is valid.
        let (state, mut server) = state_granted(&[
            "{namespaces: [ml], retention: [{bucket: other-team, prefixes: [\"\"]}]}",
        ]);
        let mut valid = policy(true);
        valid.spec.rules[0].transitions[0].days = 30;
        let reconciling = tokio::spawn(reconcile(Arc::new(valid.clone()), state));
        let event = server
            .expect("POST", "/apis/events.k8s.io/v1/namespaces/ml/events")
            .await;
        assert_eq!(event.body["reason"], "NotGranted");
        let note = event.body["note"].as_str().unwrap_or_default().to_owned();
        assert!(note.contains("lifecycle of bucket biometrics"), "{note}");
        let body = event.body.clone();
        event.ok(&body);
        let apply = server.expect("PATCH", &format!("{POLICY}/status?")).await;
        let ready = apply.body["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap();
        assert_eq!(ready["reason"], "NotGranted");
        apply.ok(&serde_json::to_value(&valid).unwrap());
        // Port 9 refuses: reaching AWS would have failed the reconcile differently.
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
    }
}

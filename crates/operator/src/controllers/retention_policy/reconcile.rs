//! One reconcile: validate → read the bucket → check conflicts → merge → write if
//! different → read back and confirm → posture → status. Deletion removes only this
//! policy's rules.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use securepipe_api::condition::{self, types};
use securepipe_api::{RetentionPolicy, RetentionPolicyStatus};
use securepipe_cloud::lifecycle::{
    self, LifecycleError, MAX_RULES, RuleSpec, S3Client, StoredRule,
};

use super::conflict::{self, Claim};
use super::error::Error;
use super::merge::{self, Difference, Plan};
use super::ownership::{self, Owner};
use super::posture;
use super::state::State;
use super::status::{self, Outcome};
use super::validate;
use super::{CONTROLLER, FINALIZER};
use crate::field_manager;

/// How often a write is read back before it counts as not taken effect.
const CONFIRM_ATTEMPTS: u32 = 5;
const CONFIRM_PAUSE: Duration = Duration::from_secs(1);

pub async fn reconcile(policy: Arc<RetentionPolicy>, state: Arc<State>) -> Result<Action, Error> {
    state
        .ctx
        .metrics
        .reconciles
        .get_or_create(&crate::metrics::ControllerLabels {
            controller: CONTROLLER,
        })
        .inc();
    let namespace = policy.namespace().ok_or_else(|| Error::NoNamespace {
        name: policy.name_any(),
    })?;
    let api: Api<RetentionPolicy> = Api::namespaced(state.ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            finalizer::Event::Apply(policy) => apply(&policy, &state, &api).await,
            finalizer::Event::Cleanup(policy) => cleanup(&policy, &state).await,
        }
    })
    .await
    .map_err(|err| Error::Finalizer(Box::new(err)))
}

pub fn error_policy(policy: Arc<RetentionPolicy>, error: &Error, state: Arc<State>) -> Action {
    state
        .ctx
        .metrics
        .reconcile_errors
        .get_or_create(&crate::metrics::ErrorLabels {
            controller: CONTROLLER,
            reason: error.reason(),
        })
        .inc();
    let delay = state.backoff(&policy, resync_interval(&policy));
    tracing::warn!(error = %error, retry_in = ?delay, "retentionpolicy reconcile failed");
    Action::requeue(delay)
}

/// The policy's resync interval, never below the 10-second floor.
fn resync_interval(policy: &RetentionPolicy) -> Duration {
    if policy.spec.resync_interval.is_negative() {
        return validate::MIN_RESYNC;
    }
    Duration::from(policy.spec.resync_interval).max(validate::MIN_RESYNC)
}

/// The pieces of one apply that every step needs.
struct Run<'a> {
    policy: &'a RetentionPolicy,
    state: &'a State,
    api: &'a Api<RetentionPolicy>,
    reference: ObjectReference,
    /// The status as last written (or read), so identical writes are skipped.
    status: Option<RetentionPolicyStatus>,
}

impl Run<'_> {
    fn generation(&self) -> Option<i64> {
        self.policy.metadata.generation
    }

    async fn write_status(&mut self, next: RetentionPolicyStatus) -> Result<(), Error> {
        if self.status.as_ref() == Some(&next) {
            return Ok(());
        }
        let patch = serde_json::json!({
            "apiVersion": "securepipe.io/v1alpha1",
            "kind": "RetentionPolicy",
            "status": next,
        });
        let params = PatchParams::apply(&field_manager("retention-policy")).force();
        self.api
            .patch_status(&self.policy.name_any(), &params, &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::Kube {
                namespace: self.policy.namespace().unwrap_or_default(),
                name: self.policy.name_any(),
                action: "write status",
                source,
            })?;
        self.status = Some(next);
        Ok(())
    }

    async fn report(&mut self, outcome: &Outcome<'_>) -> Result<(), Error> {
        let next = status::next(
            self.status.as_ref(),
            self.generation(),
            outcome,
            jiff::Timestamp::now(),
        );
        self.write_status(next).await
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(err) = self
            .state
            .ctx
            .recorder
            .publish(&event, &self.reference)
            .await
        {
            tracing::warn!(error = %err, reason, "could not record event");
        }
    }

    fn was(&self, type_: &str) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| condition::is_true(&s.conditions, type_))
    }

    /// Reports an AWS failure and schedules a retry with backoff.
    async fn failed(&mut self, reason: &'static str, message: String) -> Result<Action, Error> {
        tracing::warn!(
            policy = %self.policy.name_any(),
            namespace = ?self.policy.namespace(),
            reason,
            %message,
            "retentionpolicy: AWS call failed"
        );
        self.state
            .ctx
            .metrics
            .reconcile_errors
            .get_or_create(&crate::metrics::ErrorLabels {
                controller: CONTROLLER,
                reason,
            })
            .inc();
        if !self.was(types::DEGRADED) {
            self.event(EventType::Warning, reason, message.clone())
                .await;
        }
        self.report(&Outcome::Failed { reason, message }).await?;
        Ok(Action::requeue(
            self.state
                .backoff(self.policy, resync_interval(self.policy)),
        ))
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
}

fn lifecycle_failure(err: &LifecycleError) -> (&'static str, String) {
    let reason = if err.no_such_bucket {
        "NoSuchBucket"
    } else {
        err.reason().as_str()
    };
    (reason, err.to_string())
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

async fn apply(
    policy: &RetentionPolicy,
    state: &State,
    api: &Api<RetentionPolicy>,
) -> Result<Action, Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let owner = Owner::new(&namespace, &policy.name_any());
    let mut run = Run {
        policy,
        state,
        api,
        reference: policy.object_ref(&()),
        status: policy.status.clone(),
    };
    let new_generation =
        run.status.as_ref().and_then(|s| s.observed_generation) != run.generation();
    let action = apply_steps(&mut run, &owner).await;
    if new_generation {
        // This policy's claims changed: the others on the bucket re-check their conflicts.
        state.recheck_others(&policy.spec.bucket, policy);
    }
    action
}

async fn apply_steps(run: &mut Run<'_>, owner: &Owner) -> Result<Action, Error> {
    let policy = run.policy;
    let spec = &policy.spec;
    let bucket = spec.bucket.as_str();
    let resync = resync_interval(policy);

    let desired = match validate::rules(spec, owner) {
        Ok(desired) => desired,
        Err(problems) => {
            if !run.was_invalid() {
                run.event(EventType::Warning, "InvalidSpec", problems.join("; "))
                    .await;
            }
            run.report(&Outcome::Invalid {
                problems: &problems,
            })
            .await?;
            return Ok(Action::await_change());
        }
    };

    let s3 = lifecycle::client(&run.state.ctx.aws, &spec.region, spec.role_arn.as_deref()).await;
    let _bucket_lock = run.state.lock_bucket(bucket).await;
    let current = match lifecycle::read(&s3, bucket).await {
        Ok(current) => current,
        Err(err) => {
            let (reason, message) = lifecycle_failure(&err);
            return run.failed(reason, message).await;
        }
    };

    let (claims, postures) = claims(policy, run.state, owner, &current);
    let mut conflicts = conflict::between(&desired, &claims);
    if let Some(posture) = &spec.bucket_posture {
        conflicts.extend(conflict::posture_between(posture, &postures));
    }
    if !conflicts.is_empty() {
        let was_in_conflict = run.was(types::CONFLICT);
        if !was_in_conflict {
            run.event(EventType::Warning, "Conflict", conflicts.join("; "))
                .await;
        }
        run.report(&Outcome::Conflict {
            conflicts: &conflicts,
        })
        .await?;
        if !was_in_conflict {
            run.state.recheck_others(bucket, policy);
        }
        run.state.succeeded(policy);
        return Ok(Action::requeue(resync));
    }
    let leaving_conflict = run.was(types::CONFLICT);

    let plan = merge::plan(&current, owner, &desired);
    if plan.document.len() > MAX_RULES {
        let problems = [format!(
            "spec.rules: the bucket's lifecycle configuration would hold {} rules ({} of them this policy's); S3 accepts at most {MAX_RULES}",
            plan.document.len(),
            desired.len()
        )];
        run.report(&Outcome::Invalid {
            problems: &problems,
        })
        .await?;
        return Ok(Action::requeue(resync));
    }

    let mut corrected_drift = false;
    if plan.needs_write() {
        corrected_drift = run.is_drift();
        if corrected_drift {
            let drifting = status::drifting(
                run.status.as_ref(),
                run.generation(),
                &plan.differences,
                jiff::Timestamp::now(),
            );
            run.write_status(drifting).await?;
        }
        if let Err(err) = lifecycle::write(&s3, bucket, &plan.document).await {
            let (reason, message) = lifecycle_failure(&err);
            return run.failed(reason, message).await;
        }
        match confirm(&s3, bucket, owner, &desired).await {
            Ok(true) => {}
            Ok(false) => {
                return run
                    .failed(
                        "NotConfirmed",
                        format!(
                            "bucket {bucket} did not show the written rules after {CONFIRM_ATTEMPTS} reads"
                        ),
                    )
                    .await;
            }
            Err(err) => {
                let (reason, message) = lifecycle_failure(&err);
                return run.failed(reason, message).await;
            }
        }
        announce_write(run, &plan, corrected_drift).await;
    }

    let posture_report = match &spec.bucket_posture {
        Some(wanted) => Some(posture::run(&s3, bucket, &spec.region, wanted).await),
        None => None,
    };
    if let Some(report) = &posture_report {
        for check in &report.corrected {
            run.event(
                EventType::Normal,
                "PostureCorrected",
                format!("bucket {bucket}: corrected {}", check.as_str()),
            )
            .await;
        }
        if let Some(err) = &report.failure {
            run.state
                .ctx
                .metrics
                .reconcile_errors
                .get_or_create(&crate::metrics::ErrorLabels {
                    controller: CONTROLLER,
                    reason: err.reason().as_str(),
                })
                .inc();
        }
    }

    let applied: Vec<String> = desired.iter().map(|rule| rule.id.clone()).collect();
    run.report(&Outcome::Synced {
        applied,
        wrote: plan.needs_write(),
        corrected_drift,
        posture: posture_report.as_ref(),
        enforce_posture: spec
            .bucket_posture
            .as_ref()
            .is_some_and(|p| p.mode == securepipe_api::retention_policy::PostureMode::Enforce),
    })
    .await?;
    run.state.record_synced(policy);
    if leaving_conflict {
        run.state.recheck_others(bucket, policy);
    }
    let retry_posture_soon = posture_report.as_ref().is_some_and(|r| r.failure.is_some());
    if retry_posture_soon {
        return Ok(Action::requeue(run.state.backoff(policy, resync)));
    }
    run.state.succeeded(policy);
    Ok(Action::requeue(resync))
}

impl Run<'_> {
    fn was_invalid(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            condition::find(&s.conditions, types::READY)
                .is_some_and(|c| c.status == "False" && c.reason == "InvalidSpec")
        })
    }
}

/// Reads the bucket until it shows the policy's rules (S3 applies lifecycle changes
/// eventually); `false` when it never did.
async fn confirm(
    s3: &S3Client,
    bucket: &str,
    owner: &Owner,
    desired: &[RuleSpec],
) -> Result<bool, LifecycleError> {
    for attempt in 0..CONFIRM_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(CONFIRM_PAUSE).await;
        }
        let reread = lifecycle::read(s3, bucket).await?;
        if !merge::plan(&reread, owner, desired).needs_write() {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn announce_write(run: &Run<'_>, plan: &Plan, corrected_drift: bool) {
    let what = plan
        .differences
        .iter()
        .map(Difference::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let bucket = run.policy.spec.bucket.as_str();
    if corrected_drift {
        run.state.ctx.metrics.drift_corrections.inc();
        run.event(
            EventType::Normal,
            "DriftCorrected",
            format!("bucket {bucket}: restored {what}"),
        )
        .await;
        tracing::info!(bucket, differences = %what, "lifecycle drift corrected");
    } else {
        run.event(
            EventType::Normal,
            "RulesApplied",
            format!("bucket {bucket}: {what}"),
        )
        .await;
    }
}

/// Removes this policy's rules from the bucket (deleting the configuration when nothing
/// is left). A bucket that no longer exists has nothing to remove.
async fn cleanup(policy: &RetentionPolicy, state: &State) -> Result<Action, Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let owner = Owner::new(&namespace, &name);
    let spec = &policy.spec;
    let bucket = spec.bucket.as_str();
    let cleanup_error = |source: LifecycleError| Error::Cleanup {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    let s3 = lifecycle::client(&state.ctx.aws, &spec.region, spec.role_arn.as_deref()).await;
    let removed = {
        let _bucket_lock = state.lock_bucket(bucket).await;
        let current = match lifecycle::read(&s3, bucket).await {
            Ok(current) => current,
            Err(err) if err.no_such_bucket => Vec::new(),
            Err(err) => return Err(cleanup_error(err)),
        };
        let removed = merge::owned_ids(&current, &owner);
        if let Some(rest) = merge::without_owned(&current, &owner) {
            match lifecycle::write(&s3, bucket, &rest).await {
                Ok(()) => {}
                Err(err) if err.no_such_bucket => {}
                Err(err) => return Err(cleanup_error(err)),
            }
            let after = match lifecycle::read(&s3, bucket).await {
                Ok(after) => after,
                Err(err) if err.no_such_bucket => Vec::new(),
                Err(err) => return Err(cleanup_error(err)),
            };
            if !merge::owned_ids(&after, &owner).is_empty() {
                return Err(Error::CleanupNotConfirmed {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    bucket: bucket.to_owned(),
                });
            }
        }
        removed
    };
    if !removed.is_empty() {
        let event = Event {
            type_: EventType::Normal,
            reason: "RulesRemoved".to_owned(),
            note: Some(
                format!("bucket {bucket}: removed {}", removed.join(", "))
                    .chars()
                    .take(1000)
                    .collect(),
            ),
            action: "Cleanup".to_owned(),
            secondary: None,
        };
        if let Err(err) = state
            .ctx
            .recorder
            .publish(&event, &policy.object_ref(&()))
            .await
        {
            tracing::warn!(error = %err, "could not record event");
        }
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

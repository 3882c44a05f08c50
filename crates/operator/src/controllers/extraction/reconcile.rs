//! One extraction reconcile, as a list of steps: count a finished Job's results (once) →
//! keep the worker session fresh → when the interval is up, scan → start a Job when
//! samples wait and none runs. It ends in one status write (only when something changed)
//! and a requeue at the next scan or renewal, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_api::condition::{Status, reasons};
use securepipe_api::training_partition::{ExtractionSpec, ExtractionStatus};

use super::super::error::{self, is_not_found};
use super::super::training_partition::{renewal, secret};
use super::super::{Error, ObjectKey, events, status_patch};
use super::job::{self, JobInputs};
use super::results::{self, JobState, Totals};
use super::scan;
use super::session::{self, Session, SessionError, WorkerPlan};
use super::status;
use super::{CONTROLLER, KIND};
use crate::context::ACTION_RECONCILE;
use crate::grant_coverage::Verdict;
use crate::{Context, managers};
use securepipe_cloud::objects::ObjectStore;

/// Retry soon after a failure that may pass by itself.
const RETRY_TRANSIENT: Duration = Duration::from_secs(10);
/// A Job is never given less than this, however close the session is to its expiry.
const MIN_DEADLINE: Duration = Duration::from_secs(60);

/// An attestation lists every sample of a run: a million-sample shard stays far below.
const MAX_ATTESTATION_BYTES: u64 = 256 * 1024 * 1024;

pub async fn reconcile(tp: Arc<TrainingPartition>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.record_reconcile(CONTROLLER);
    // Deleting: the garbage collector removes Jobs and the worker Secret; the
    // credentials controller's finalizer revokes (the worker session carries the same
    // tags as the ML session).
    if tp.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // Without `spec.extraction` (removed after it ran): off, with every default.
    let Some(extraction) = tp
        .spec
        .extraction
        .clone()
        .or_else(|| serde_json::from_value(serde_json::json!({})).ok())
    else {
        return Ok(Action::await_change());
    };
    if !extraction.enabled
        && tp
            .status
            .as_ref()
            .and_then(|s| s.extraction.as_ref())
            .is_none()
    {
        return Ok(Action::await_change());
    }
    let object = ObjectKey::of(tp.as_ref(), KIND)?;
    if !ctx.secrets.allows(&object.namespace) {
        // Without the tenant role here there are no Jobs or worker Secret to manage; the
        // credentials controller reports NamespaceNotServed.
        return Ok(Action::await_change());
    }
    let run = Run {
        tp: &tp,
        ctx: &ctx,
        object: &object,
        extraction: &extraction,
        jobs: Api::namespaced(ctx.client.clone(), &object.namespace),
    };
    let outcome = run.steps().await?;
    ctx.metrics.record_outcome(CONTROLLER, outcome.label);
    run.conclude(outcome).await
}

pub fn error_policy(_tp: Arc<TrainingPartition>, err: &Error, ctx: Arc<Context>) -> Action {
    error::report(&ctx.metrics, CONTROLLER, err);
    Action::requeue(RETRY_TRANSIENT)
}

/// How the steps ended: the status to write and when to come back.
struct Outcome {
    label: &'static str,
    extraction: ExtractionStatus,
    status: Status,
    reason: &'static str,
    message: String,
    requeue: Duration,
}

struct Run<'a> {
    tp: &'a TrainingPartition,
    ctx: &'a Context,
    object: &'a ObjectKey,
    extraction: &'a ExtractionSpec,
    jobs: Api<Job>,
}

impl Run<'_> {
    async fn steps(&self) -> Result<Outcome, Error> {
        let now = Timestamp::now();
        let mut state = self
            .tp
            .status
            .as_ref()
            .and_then(|s| s.extraction.clone())
            .unwrap_or_default();
        let interval: Duration = self.extraction.interval.into();

        // 1. The Jobs: a finished one is counted once; a running one blocks a new one.
        let jobs = self.owned_jobs().await?;
        let mut failed_job = None;
        let mut succeeded_job = None;
        let active = jobs
            .iter()
            .find(|j| results::state(j) == JobState::Active)
            .map(ResourceExt::name_any);
        let uncounted = state
            .active_job
            .as_ref()
            .and_then(|name| jobs.iter().find(|j| &j.name_any() == name));
        match uncounted.map(|j| (j, results::state(j))) {
            Some((job, JobState::Succeeded)) => {
                self.count(job, &mut state).await?;
                succeeded_job = Some(job.name_any());
            }
            Some((job, JobState::Failed { reason, message })) => {
                self.count(job, &mut state).await?;
                failed_job = Some((job.name_any(), reason, message));
            }
            Some((_, JobState::Active)) => {}
            // Gone before it was counted (deleted by hand): nothing to read.
            None => {}
        }
        state.active_job = active.clone();

        if !self.extraction.enabled {
            // No Job will need the worker session: it does not stay usable from the cluster.
            if active.is_none() {
                self.remove_worker_secret().await?;
            }
            return Ok(Outcome {
                label: "Disabled",
                extraction: state,
                status: Status::False,
                reason: reasons::EXTRACTION_DISABLED,
                message: match &active {
                    Some(job) => format!(
                        "spec.extraction.enabled is false: no new Job starts; Job {job} finishes"
                    ),
                    None => "spec.extraction.enabled is false: no new Job starts".to_owned(),
                },
                requeue: interval,
            });
        }

        // 2. Default deny, before the worker session is touched.
        let verdict = self.ctx.grants.partition(&self.object.namespace, self.tp);
        if let Verdict::NotGranted { message } = verdict {
            self.remove_worker_secret().await?;
            return Ok(self.failed(state, "NotGranted", reasons::NOT_GRANTED, message, interval));
        }
        let plan = match session::worker_plan(&self.object.namespace, &self.object.name, self.tp) {
            Ok(plan) => plan,
            Err(err) => {
                return Ok(self.failed(state, "Refused", err.reason(), err.to_string(), interval));
            }
        };

        // 3. The worker session.
        let (held, renew_at) = match session::ensure(self.ctx, self.tp, &plan).await {
            Ok(Session::Held { held, renew_at }) => (held, renew_at),
            Ok(Session::Minted { held, renew_at }) => {
                self.publish(
                    EventType::Normal,
                    events::WORKER_CREDENTIALS_ISSUED,
                    format!(
                        "worker session {} issued into Secret {}, valid until {}",
                        held.session_name,
                        plan.session.secret_name,
                        secret::rfc3339(held.expires_at)
                    ),
                )
                .await;
                (held, renew_at)
            }
            Ok(Session::Conflict) => {
                let message = format!(
                    "Secret {} exists and was not created by securepipe for this TrainingPartition; it is left alone and no Job starts",
                    plan.session.secret_name
                );
                return Ok(self.failed(
                    state,
                    "SecretConflict",
                    reasons::SECRET_CONFLICT,
                    message,
                    interval,
                ));
            }
            Err(SessionError::Sts(err)) => {
                let reason = err.reason();
                let retry = if reason.is_transient() {
                    RETRY_TRANSIENT
                } else {
                    interval
                };
                return Ok(self.failed(
                    state,
                    "MintFailed",
                    reason.as_str(),
                    err.to_string(),
                    retry,
                ));
            }
            Err(SessionError::Kube(action, err)) => return Err(self.object.kube(action)(err)),
            Err(SessionError::NotRecorded(err)) => return Err(err),
        };
        let until_renewal = renewal::until(renew_at, now);

        // 4. Scan when the interval is up (or never scanned); a running Job waits, and
        // after a failed Job the next one waits a whole interval.
        let after = |at: Timestamp| {
            at.checked_add(jiff::SignedDuration::try_from(interval).unwrap_or_default())
                .unwrap_or(at)
        };
        let last_failure = state
            .last_job
            .as_ref()
            .and_then(|name| jobs.iter().find(|j| &j.name_any() == name))
            .and_then(results::failed_at);
        let scan_due = [
            state.last_scan_time.as_ref().map(|t| after(t.0)),
            last_failure.map(after),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(now);
        if let Some(job) = active {
            return Ok(Outcome {
                label: "Running",
                extraction: state,
                status: Status::True,
                reason: reasons::JOB_RUNNING,
                message: format!("Job {job} is extracting and shredding raw samples"),
                requeue: until_renewal.min(interval),
            });
        }
        let waiting = |state: ExtractionStatus, requeue: Duration| {
            let (status, reason, message) = settled(
                &state,
                failed_job.as_ref(),
                succeeded_job.as_deref(),
                Some(self.tp),
            );
            Outcome {
                label: "Waiting",
                extraction: state,
                status,
                reason,
                message,
                requeue,
            }
        };
        if now < scan_due {
            return Ok(waiting(
                state,
                until_renewal.min(renewal::until(scan_due, now)),
            ));
        }
        let secret = self
            .secrets()
            .get_opt(&plan.session.secret_name)
            .await
            .map_err(self.object.kube("read the worker Secret"))?;
        let pending = match secret {
            Some(secret) => {
                let found = scan::pending(
                    self.ctx,
                    &secret,
                    &plan.session.region,
                    &plan.bucket,
                    &plan.raw_folder,
                )
                .await;
                let mut secret = secret;
                secret::wipe(&mut secret);
                found
            }
            // Deleted since it was read above.
            None => Ok(None),
        };
        let pending = match pending {
            Ok(Some(pending)) => pending,
            // The worker Secret changed under us (deleted or edited since `ensure`): the
            // next reconcile mints a session into it again, then scans.
            Ok(None) => return Ok(waiting(state, RETRY_TRANSIENT)),
            Err(err) => {
                let retry = if err.is_transient() {
                    RETRY_TRANSIENT
                } else {
                    interval
                };
                let reason = err.reason().as_str();
                return Ok(self.failed(state, "ScanFailed", reason, err.to_string(), retry));
            }
        };
        state.pending = pending.count;
        state.pending_capped = pending.capped;
        state.last_scan_time = Some(Time(now));
        let next_scan = interval.min(until_renewal);
        if pending.count == 0 {
            let (status, reason, message) =
                settled(&state, failed_job.as_ref(), succeeded_job.as_deref(), None);
            return Ok(Outcome {
                label: "NothingPending",
                extraction: state,
                status,
                reason,
                message,
                requeue: next_scan,
            });
        }

        // 5. Samples wait and no Job runs: start one.
        let name = job::job_name(self.tp, &now.to_string());
        self.start(&plan, &name, session::remaining(&held, now))
            .await?;
        state.active_job = Some(name.clone());
        self.publish(
            EventType::Normal,
            events::EXTRACTION_STARTED,
            format!(
                "Job {name} started for {}{} pending raw samples ({} Pods)",
                pending.count,
                if pending.capped { "+" } else { "" },
                self.extraction.parallelism.max(1)
            ),
        )
        .await;
        Ok(Outcome {
            label: "JobStarted",
            extraction: state,
            status: Status::True,
            reason: reasons::JOB_RUNNING,
            message: format!("Job {name} is extracting and shredding raw samples"),
            requeue: next_scan,
        })
    }

    fn failed(
        &self,
        extraction: ExtractionStatus,
        label: &'static str,
        reason: &'static str,
        message: String,
        requeue: Duration,
    ) -> Outcome {
        Outcome {
            label,
            extraction,
            status: Status::False,
            reason,
            message,
            requeue,
        }
    }

    /// The worker Jobs this TrainingPartition controls.
    async fn owned_jobs(&self) -> Result<Vec<Job>, Error> {
        let listed = self
            .jobs
            .list(&ListParams::default().labels(&job::selector(self.tp)))
            .await
            .map_err(self.object.kube("list worker Jobs"))?;
        let uid = self.tp.meta().uid.as_ref();
        Ok(listed
            .items
            .into_iter()
            .filter(|j| {
                j.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid && o.controller == Some(true))
            })
            .collect())
    }

    /// Adds a finished Job's results to the counters, metrics and Events.
    async fn count(&self, job: &Job, state: &mut ExtractionStatus) -> Result<(), Error> {
        let name = job.name_any();
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.object.namespace);
        let listed = pods
            .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
            .await
            .map_err(self.object.kube("read the worker Pods"))?;
        let mut totals = results::totals(&listed.items);
        if totals.reports == 0 {
            // No Pod summary left (the Pods were removed): the attestations tell.
            totals = self.attested(job).await;
        }
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        state.shredded = state.shredded.saturating_add(as_i64(totals.shredded));
        state.quarantined = state
            .quarantined
            .saturating_add(as_i64(totals.quarantined_total()));
        state.failed = as_i64(totals.failed);
        state.last_job = Some(name.clone());
        self.ctx.metrics.record_extraction(
            &totals,
            results::duration_seconds(job),
            results::state(job) == JobState::Succeeded,
        );
        self.announce(&name, &totals).await;
        Ok(())
    }

    /// The results in `job`'s attestations, read as the worker session (the operator's
    /// own identity has no access to the bucket). Nothing readable: zero, logged.
    async fn attested(&self, job: &Job) -> Totals {
        let plan = session::worker_plan(&self.object.namespace, &self.object.name, self.tp);
        let secret = match &plan {
            Ok(plan) => self
                .secrets()
                .get_opt(&plan.session.secret_name)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        let (Ok(plan), Some(mut secret)) = (plan, secret) else {
            tracing::warn!(job = %job.name_any(), "no worker session to read the Job's attestations with");
            return Totals::default();
        };
        let aws = scan::session(self.ctx, &secret);
        secret::wipe(&mut secret);
        let Some(aws) = aws else {
            return Totals::default();
        };
        let store = ObjectStore::new(&aws, &plan.session.region, &plan.bucket);
        let root = format!("{}{}/", plan.attestation_prefix, plan.session.partition);
        let shards = job
            .spec
            .as_ref()
            .and_then(|spec| spec.completions)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1);
        let mut documents = Vec::new();
        for key in results::attestation_keys(&root, &job.name_any(), shards) {
            match store.get(&key, MAX_ATTESTATION_BYTES).await {
                Ok(document) => documents.push(document),
                Err(err) => {
                    tracing::warn!(job = %job.name_any(), error = %err, "attestation not read")
                }
            }
        }
        results::totals_from_attestations(&documents)
    }

    async fn announce(&self, job: &str, totals: &Totals) {
        if totals.shredded > 0 {
            self.publish(
                EventType::Normal,
                events::SAMPLES_SHREDDED,
                format!(
                    "Job {job} shredded {} raw samples into features",
                    totals.shredded
                ),
            )
            .await;
        }
        if !totals.quarantined.is_empty() {
            let reasons: Vec<String> = totals
                .quarantined
                .iter()
                .map(|(reason, count)| format!("{reason}: {count}"))
                .collect();
            self.publish(
                EventType::Warning,
                events::SAMPLES_QUARANTINED,
                format!(
                    "Job {job} quarantined {} raw samples (kept, tagged securepipe.io/quarantine): {}",
                    totals.quarantined_total(),
                    reasons.join(", ")
                ),
            )
            .await;
        }
    }

    async fn start(&self, plan: &WorkerPlan, name: &str, remaining: Duration) -> Result<(), Error> {
        let settings = &self.ctx.worker;
        let deadline = settings.active_deadline.min(remaining).max(MIN_DEADLINE);
        let built = job::build(
            self.tp,
            &JobInputs {
                name,
                extraction: self.extraction,
                plan,
                settings,
                deadline,
            },
        );
        match self.jobs.create(&PostParams::default(), &built).await {
            Ok(_) => {}
            // The same name is the same scan's Job: already started.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(self.object.kube("create the worker Job")(err)),
        }
        tracing::info!(object = %self.object, job = name, "worker Job created");
        Ok(())
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.object.namespace)
    }

    /// Deletes the worker Secret (if securepipe wrote it for this partition): without a
    /// grant, or with extraction off, the worker session must not stay usable.
    async fn remove_worker_secret(&self) -> Result<(), Error> {
        let Some(name) = self.tp.worker_secret_name() else {
            return Ok(());
        };
        let existing = self
            .secrets()
            .get_opt(&name)
            .await
            .map_err(self.object.kube("read the worker Secret"))?;
        if !existing.is_some_and(|s| secret::is_ours(&s, self.tp)) {
            return Ok(());
        }
        match self.secrets().delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(self.object.kube("delete the worker Secret")(err)),
        }
    }

    async fn conclude(&self, outcome: Outcome) -> Result<Action, Error> {
        let current = status::owned(self.tp.status.as_ref());
        // A failure is announced once: again only when it says something new.
        let announce_failure = status::is_failure(outcome.reason)
            && status::failure(&current.conditions).is_none_or(|c| c.message != outcome.message);
        if announce_failure {
            self.publish(EventType::Warning, outcome.reason, outcome.message.clone())
                .await;
        }
        let next = status::next(
            Some(&current),
            outcome.extraction,
            status::extracting(outcome.status, outcome.reason, outcome.message),
            self.tp.meta().generation,
            Timestamp::now(),
        );
        if next != current {
            status_patch::apply(
                &Api::<TrainingPartition>::namespaced(
                    self.ctx.client.clone(),
                    &self.object.namespace,
                ),
                &self.object.name,
                managers::EXTRACTION,
                &next,
            )
            .await
            .map_err(self.object.kube("write the extraction status"))?;
        }
        Ok(Action::requeue(outcome.requeue.max(Duration::from_secs(1))))
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
}

/// `Extracting` when no Job runs and none starts: the result of a Job counted just now,
/// else (before a scan, `unscanned`) what was reported, else nothing pending.
fn settled(
    state: &ExtractionStatus,
    failed_job: Option<&(String, String, String)>,
    succeeded_job: Option<&str>,
    unscanned: Option<&TrainingPartition>,
) -> (Status, &'static str, String) {
    if let Some((job, reason, message)) = failed_job {
        return (
            Status::False,
            reasons::JOB_FAILED,
            format!(
                "Job {job} failed ({reason}: {message}); the next interval starts another ({} shredded, {} quarantined so far)",
                state.shredded, state.quarantined
            ),
        );
    }
    if let Some(job) = succeeded_job {
        return (
            Status::False,
            reasons::JOB_SUCCEEDED,
            format!(
                "Job {job} finished: {} shredded, {} quarantined so far",
                state.shredded, state.quarantined
            ),
        );
    }
    // Before the next scan, keep what the previous reconcile reported (a failed Job stays
    // reported until the next scan starts another); a scan that found nothing says so.
    let previous = unscanned.and_then(|tp| tp.status.as_ref()).and_then(|s| {
        securepipe_api::condition::find(&s.conditions, securepipe_api::condition::types::EXTRACTING)
    });
    match previous {
        Some(c) if c.reason == reasons::JOB_FAILED || c.reason == reasons::JOB_SUCCEEDED => (
            Status::False,
            if c.reason == reasons::JOB_FAILED {
                reasons::JOB_FAILED
            } else {
                reasons::JOB_SUCCEEDED
            },
            c.message.clone(),
        ),
        _ => (
            Status::False,
            reasons::NOTHING_PENDING,
            "no raw sample waits under the raw prefix".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! Exact-call tests: the apiserver calls of an extraction reconcile, in order, and
    //! nothing else (no AWS call either: nothing listens on the AWS endpoint).

    use secrecy::SecretString;
    use securepipe_cloud::sts::IssuedSession;
    use securepipe_cloud::{Aws, AwsSettings};
    use serde_json::{Value, json};

    use super::*;
    use crate::metrics::Metrics;
    use crate::testing::{ApiServer, mock_client};

    const JOBS: &str = "/apis/batch/v1/namespaces/ml/jobs?";
    const PODS: &str = "/api/v1/namespaces/ml/pods?";
    const WORKER_SECRET: &str = "/api/v1/namespaces/ml/secrets/speech-worker-aws";
    const STATUS: &str =
        "/apis/securepipe.io/v1alpha1/namespaces/ml/trainingpartitions/speech/status?";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";
    const JOB: &str = "speech-shred-aaaaa";
    const GRANT: &str = r#"
namespaces: [ml]
roleArns: ["arn:aws:iam::123456789012:role/trainer"]
buckets: [biometrics]
partitions: [speech]
maxAccess: ReadWrite
maxDuration: 12h
extraction:
  kmsKeyArns: ["arn:aws:kms:eu-west-1:123456789012:key/k1"]
"#;

    /// A partition whose status names `JOB` as the running Job, last scanned `scanned`.
    fn partition(scanned: &str) -> TrainingPartition {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: {{name: speech, namespace: ml, uid: 0f9e-uid, generation: 2, resourceVersion: "5"}}
spec:
  bucket: biometrics
  region: eu-west-1
  roleArn: "arn:aws:iam::123456789012:role/trainer"
  extraction:
    enabled: true
    kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k1"
    interval: 5m
status:
  extraction: {{pending: 2, shredded: 10, quarantined: 1, failed: 0, activeJob: {JOB}, lastScanTime: "{scanned}"}}
"#
        ))
        .unwrap()
    }

    fn context() -> (Arc<Context>, ApiServer) {
        let (client, server) = mock_client();
        let aws = Aws::with_endpoint("http://127.0.0.1:9", "eu-west-1", AwsSettings::default());
        let grants = crate::controllers::grants::holding(&[GRANT]);
        (
            Arc::new(Context::new(client, aws, Arc::new(Metrics::new()), grants)),
            server,
        )
    }

    /// The worker Secret the operator would have written, valid for another hour.
    fn fresh_worker_secret(tp: &TrainingPartition) -> Value {
        let plan = session::worker_plan("ml", "speech", tp).unwrap();
        let now = Timestamp::now();
        let issued = IssuedSession {
            access_key_id: "ASIAWORKER".to_owned(),
            secret_access_key: SecretString::from("secret"),
            session_token: SecretString::from("token"),
            expiration: now + jiff::SignedDuration::from_hours(1),
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/trainer/spw-ml@speech"
                .to_owned(),
        };
        serde_json::to_value(secret::build(tp, &plan.session, &issued, now)).unwrap()
    }

    fn job_list(conditions: Value) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "JobList", "metadata": {"resourceVersion": "7"},
            "items": [{
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {
                    "name": JOB, "namespace": "ml",
                    "ownerReferences": [{"apiVersion": "securepipe.io/v1alpha1", "kind": "TrainingPartition",
                        "name": "speech", "uid": "0f9e-uid", "controller": true}],
                },
                "status": {"startTime": "2026-11-30T08:00:00Z", "completionTime": "2026-11-30T08:00:30Z",
                    "conditions": conditions},
            }],
        })
    }

    fn condition<'v>(status: &'v Value, type_: &str) -> &'v Value {
        status["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == type_))
            .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
    }

    #[tokio::test]
    async fn a_running_job_blocks_a_new_one_even_when_the_scan_is_due() {
        let tp = partition("2026-11-30T07:00:00Z");
        let (ctx, mut server) = context();
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        let list = server.expect("GET", JOBS).await;
        assert!(
            list.uri.contains("extraction-worker") && list.uri.contains("speech"),
            "{}",
            list.uri
        );
        list.ok(&job_list(json!([])));
        server
            .expect("GET", WORKER_SECRET)
            .await
            .ok(&fresh_worker_secret(&tp));
        let apply = server.expect("PATCH", STATUS).await;
        assert!(
            apply.uri.contains("fieldManager=securepipe%2Fextraction"),
            "{}",
            apply.uri
        );
        let status = &apply.body["status"];
        assert_eq!(condition(status, "Extracting")["status"], "True");
        assert_eq!(condition(status, "Extracting")["reason"], "JobRunning");
        assert_eq!(status["extraction"]["activeJob"], JOB);
        assert!(status.get("credentials").is_none(), "{status}");
        assert!(status.get("observedGeneration").is_none(), "{status}");
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        // No Job created, no scan (nothing listens on the AWS endpoint).
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_finished_job_is_counted_once_into_status_events_and_metrics() {
        let now = Timestamp::now().to_string();
        let tp = partition(&now);
        let (ctx, mut server) = context();
        let reconciling = tokio::spawn(reconcile(Arc::new(tp.clone()), ctx.clone()));
        server
            .expect("GET", JOBS)
            .await
            .ok(&job_list(json!([{"type": "Complete", "status": "True"}])));
        let pods = server.expect("GET", PODS).await;
        assert!(
            pods.uri.contains(&format!("job-name%3D{JOB}")),
            "{}",
            pods.uri
        );
        let summary = r#"{"listed":3,"shredded":2,"alreadyDone":0,"quarantined":{"truncated":1},"stillQuarantined":0,"failed":0,"attestationKey":"audit/speech/x.json"}"#;
        pods.ok(&json!({
            "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "8"},
            "items": [{"metadata": {"name": "p0", "creationTimestamp": "2026-11-30T08:00:01Z"},
                "status": {"containerStatuses": [{"name": "worker", "image": "i", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "message": summary}}}]}}],
        }));
        for (reason, type_) in [
            ("SamplesShredded", "Normal"),
            ("SamplesQuarantined", "Warning"),
        ] {
            let event = server.expect("POST", EVENTS).await;
            assert_eq!(event.body["reason"], reason);
            assert_eq!(event.body["type"], type_);
            let body = event.body.clone();
            event.ok(&body);
        }
        server
            .expect("GET", WORKER_SECRET)
            .await
            .ok(&fresh_worker_secret(&tp));
        let apply = server.expect("PATCH", STATUS).await;
        let status = apply.body["status"].clone();
        assert_eq!(status["extraction"]["shredded"], 12);
        assert_eq!(status["extraction"]["quarantined"], 2);
        assert_eq!(status["extraction"]["lastJob"], JOB);
        assert!(status["extraction"].get("activeJob").is_none(), "{status}");
        assert_eq!(condition(&status, "Extracting")["reason"], "JobSucceeded");
        apply.ok(&serde_json::to_value(&tp).unwrap());
        reconciling.await.unwrap().unwrap();
        server.expect_no_more();
        assert_eq!(ctx.metrics.samples_shredded.get(), 2);
        let text = ctx.metrics.render().unwrap();
        assert!(
            text.contains(r#"securepipe_samples_quarantined_total{reason="truncated"} 1"#),
            "{text}"
        );

        // Reconciled again with that status: the Job is not counted a second time.
        let mut counted = tp.clone();
        counted.status = Some(serde_json::from_value(status).unwrap());
        let again = tokio::spawn(reconcile(Arc::new(counted.clone()), ctx.clone()));
        server
            .expect("GET", JOBS)
            .await
            .ok(&job_list(json!([{"type": "Complete", "status": "True"}])));
        server
            .expect("GET", WORKER_SECRET)
            .await
            .ok(&fresh_worker_secret(&counted));
        again.await.unwrap().unwrap();
        server.expect_no_more();
        assert_eq!(ctx.metrics.samples_shredded.get(), 2);
    }
}

//! What a finished worker Job did: its state from the Job's conditions, and the worker
//! summaries from its Pods' termination messages (or, with the Pods gone, from the
//! attestations the worker wrote), added up (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use securepipe_api::worker::{QUARANTINE_REASONS, SummaryReport};

use super::job::CONTAINER;

/// Where a Job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Succeeded,
    /// The Job controller's reason (`BackoffLimitExceeded`, `DeadlineExceeded`, ...) and
    /// message.
    Failed {
        reason: String,
        message: String,
    },
}

/// The state of `job` from its `Complete`/`Failed` conditions.
pub fn state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    if holds("Complete").is_some() {
        return JobState::Succeeded;
    }
    match holds("Failed") {
        Some(failed) => JobState::Failed {
            reason: failed.reason.clone().unwrap_or_else(|| "Failed".to_owned()),
            message: failed.message.clone().unwrap_or_default(),
        },
        None => JobState::Active,
    }
}

/// When `job` failed, if it did.
pub fn failed_at(job: &Job) -> Option<jiff::Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// How long a finished Job ran, in seconds (start to completion or last transition).
pub fn duration_seconds(job: &Job) -> Option<f64> {
    let status = job.status.as_ref()?;
    let start = status.start_time.as_ref()?.0;
    let end = status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        status
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Failed")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    })?;
    Some(end.duration_since(start).as_secs_f64().max(0.0))
}

/// A Job's results, summed over its Pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub shredded: u64,
    /// Newly quarantined, by reason (reasons outside the worker's fixed set count as
    /// `other`: a summary cannot grow the metric's label set).
    pub quarantined: BTreeMap<&'static str, u64>,
    /// Left for the next run, by the last attempt of each shard.
    pub failed: u64,
    /// Pods whose summary was read.
    pub reports: usize,
}

impl Totals {
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }

    /// Adds one summary's shredded and quarantined samples (not `failed`: the callers
    /// know which attempt is the latest).
    fn add(&mut self, report: &SummaryReport) {
        self.reports += 1;
        self.shredded += report.shredded;
        for (reason, count) in &report.quarantined {
            let label = QUARANTINE_REASONS
                .iter()
                .find(|known| **known == reason.as_str())
                .copied()
                .unwrap_or("other");
            *self.quarantined.entry(label).or_default() += count;
        }
    }
}

/// The attestation keys of Job `run_id` with `shards` Pods, under `root`
/// (`<attestationPrefix><partition>/`): the worker's own naming
/// (`securepipe_worker::Settings::attestation_key`).
pub fn attestation_keys(root: &str, run_id: &str, shards: u32) -> Vec<String> {
    if shards > 1 {
        (0..shards)
            .map(|index| format!("{root}{run_id}-shard-{index}-of-{shards}.json"))
            .collect()
    } else {
        vec![format!("{root}{run_id}.json")]
    }
}

/// Adds up the summaries of attestation documents (one per shard, each its shard's last
/// attempt: a retry rewrites it). Documents that do not parse are skipped.
pub fn totals_from_attestations(documents: &[Vec<u8>]) -> Totals {
    #[derive(serde::Deserialize)]
    struct Attestation {
        summary: SummaryReport,
    }
    let mut totals = Totals::default();
    for document in documents {
        let Ok(attestation) = serde_json::from_slice::<Attestation>(document) else {
            continue;
        };
        totals.add(&attestation.summary);
        totals.failed += attestation.summary.failed;
    }
    totals
}

/// Adds up the summaries in `pods`' termination messages. Shredded and quarantined
/// samples count in every attempt (a failed attempt's deletions are real and a retry does
/// not see those samples again); `failed` only in the latest attempt of each shard.
pub fn totals(pods: &[Pod]) -> Totals {
    let mut totals = Totals::default();
    let mut latest_failed: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for pod in pods {
        let Some(report) = report(pod) else {
            continue;
        };
        totals.add(&report);
        let shard = pod
            .annotations()
            .get("batch.kubernetes.io/job-completion-index")
            .cloned()
            .unwrap_or_default();
        let created = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let entry = latest_failed.entry(shard).or_default();
        if created >= entry.0 {
            *entry = (created, report.failed);
        }
    }
    totals.failed = latest_failed.values().map(|(_, failed)| failed).sum();
    totals
}

/// The worker summary in `pod`'s termination message, if there is one.
fn report(pod: &Pod) -> Option<SummaryReport> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let terminated = statuses
        .iter()
        .find(|s| s.name == CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    let message = terminated.message.as_deref()?;
    // With FallbackToLogsOnError the message may be log lines: the summary is the last
    // line that parses.
    message
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<SummaryReport>(line.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(index: &str, created: &str, message: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("p-{index}-{created}"),
                "creationTimestamp": created,
                "annotations": {"batch.kubernetes.io/job-completion-index": index},
            },
            "status": {"containerStatuses": [{
                "name": "worker", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": message}},
            }]},
        }))
        .unwrap()
    }

    #[test]
    fn summaries_of_every_shard_and_attempt_add_up() {
        let pods = [
            pod(
                "0",
                "2026-11-30T08:00:00Z",
                r#"{"listed":3,"shredded":1,"quarantined":{},"failed":2}"#,
            ),
            pod(
                "0",
                "2026-11-30T08:01:00Z",
                r#"{"listed":2,"shredded":2,"quarantined":{"truncated":1},"failed":0}"#,
            ),
            pod(
                "1",
                "2026-11-30T08:00:00Z",
                "{\"level\":\"INFO\"}\n{\"shredded\":4,\"quarantined\":{\"not-audio\":1,\"made-up\":3},\"failed\":1}",
            ),
            pod("2", "2026-11-30T08:00:00Z", "killed"),
        ];
        let totals = totals(&pods);
        assert_eq!(totals.shredded, 7);
        assert_eq!(
            totals.failed, 1,
            "only the latest attempt of shard 0 counts"
        );
        assert_eq!(totals.quarantined["truncated"], 1);
        assert_eq!(totals.quarantined["not-audio"], 1);
        assert_eq!(totals.quarantined["other"], 3);
        assert_eq!(totals.quarantined_total(), 5);
        assert_eq!(totals.reports, 3);
    }

    #[test]
    fn the_state_follows_the_job_conditions() {
        let job = |conditions: serde_json::Value| -> Job {
            serde_json::from_value(
                json!({"metadata": {"name": "j"}, "status": {"conditions": conditions}}),
            )
            .unwrap()
        };
        assert_eq!(state(&job(json!([]))), JobState::Active);
        assert_eq!(
            state(&job(json!([{"type": "Complete", "status": "True"}]))),
            JobState::Succeeded
        );
        assert_eq!(
            state(&job(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}])
            )),
            JobState::Failed {
                reason: "BackoffLimitExceeded".to_owned(),
                message: "Job has reached the specified backoff limit".to_owned()
            }
        );
    }

    #[test]
    fn attestations_are_found_by_the_workers_names_and_added_up() {
        assert_eq!(
            attestation_keys("audit/p/", "p-shred-1", 1),
            ["audit/p/p-shred-1.json"]
        );
        assert_eq!(
            attestation_keys("audit/p/", "p-shred-1", 2),
            [
                "audit/p/p-shred-1-shard-0-of-2.json",
                "audit/p/p-shred-1-shard-1-of-2.json"
            ]
        );
        let shard = |shredded: u64, failed: u64| {
            json!({"runId": "p-shred-1", "samples": [], "summary": {
                "listed": 5, "shredded": shredded, "alreadyDone": 0,
                "quarantined": {"not-encrypted": 1}, "stillQuarantined": 0,
                "failed": failed, "attestationKey": "k"}})
            .to_string()
            .into_bytes()
        };
        let totals = totals_from_attestations(&[shard(3, 0), shard(2, 1), b"not json".to_vec()]);
        assert_eq!(totals.reports, 2);
        assert_eq!(totals.shredded, 5);
        assert_eq!(totals.failed, 1);
        assert_eq!(totals.quarantined_total(), 2);
    }
}

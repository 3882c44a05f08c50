//! The extraction part of a TrainingPartition's status (field manager
//! `securepipe/extraction`): `status.extraction` and the `Extracting` condition. `Degraded`
//! stays with the credentials concern, which reads [`failure`] from this part, so one
//! writer decides it and the two concerns never overwrite each other.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use securepipe_api::TrainingPartitionStatus;
use securepipe_api::condition::{self, Desired, Status, reasons, types};
use securepipe_api::training_partition::ExtractionStatus;
use securepipe_cloud::FailureReason;

use super::super::conditions::Conditions;

/// `Extracting` reasons that are not a failure.
const HEALTHY: [&str; 4] = [
    reasons::JOB_RUNNING,
    reasons::JOB_SUCCEEDED,
    reasons::NOTHING_PENDING,
    reasons::EXTRACTION_DISABLED,
];

/// Whether an extraction failure waits for someone to change something (the spec, the
/// grant, a foreign Secret, the role's permissions): `Stalled`. A failed Job, a throttled
/// or unreachable AWS are retried every interval instead.
pub fn needs_someone(reason: &str) -> bool {
    match FailureReason::from_condition_reason(reason) {
        Some(aws) => !aws.is_transient(),
        None => [
            reasons::POLICY_TOO_LARGE,
            reasons::INVALID_SPEC,
            reasons::NOT_GRANTED,
            reasons::SECRET_CONFLICT,
        ]
        .contains(&reason),
    }
}

/// Whether an `Extracting` reason reports a failure.
pub fn is_failure(reason: &str) -> bool {
    !HEALTHY.contains(&reason)
}

/// The extraction failure the `Extracting` condition reports, if any: `Degraded` follows it.
pub fn failure(conditions: &[Condition]) -> Option<&Condition> {
    condition::find(conditions, types::EXTRACTING)
        .filter(|c| c.status == Status::False.as_str() && is_failure(&c.reason))
}

/// The part of `current` this concern writes.
pub fn owned(current: Option<&TrainingPartitionStatus>) -> TrainingPartitionStatus {
    let Some(current) = current else {
        return TrainingPartitionStatus::default();
    };
    TrainingPartitionStatus {
        observed_generation: None,
        conditions: current
            .conditions
            .iter()
            .filter(|c| c.type_ == types::EXTRACTING)
            .cloned()
            .collect(),
        credentials: None,
        extraction: current.extraction.clone(),
        used_role_arns: Vec::new(),
    }
}

/// The extraction part after a reconcile: `extraction` as the reconcile left it, and the
/// `Extracting` condition it wants.
pub fn next(
    current: Option<&TrainingPartitionStatus>,
    extraction: ExtractionStatus,
    extracting: Desired<'_>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> TrainingPartitionStatus {
    let mut status = owned(current);
    status.extraction = Some(extraction);
    Conditions::new(&mut status.conditions, generation, Time(now)).set(
        extracting.type_,
        extracting.status,
        extracting.reason,
        extracting.message,
    );
    status
}

/// An `Extracting` condition.
pub fn extracting(status: Status, reason: &str, message: String) -> Desired<'_> {
    Desired {
        type_: types::EXTRACTING,
        status,
        reason,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_failure_reason_degrades() {
        let mut status = next(
            None,
            ExtractionStatus::default(),
            extracting(Status::False, reasons::JOB_SUCCEEDED, String::new()),
            Some(1),
            at("2026-11-30T08:00:00Z"),
        );
        assert!(failure(&status.conditions).is_none());
        status = next(
            Some(&status),
            ExtractionStatus::default(),
            extracting(
                Status::False,
                reasons::JOB_FAILED,
                "BackoffLimitExceeded".into(),
            ),
            Some(1),
            at("2026-11-30T08:01:00Z"),
        );
        assert_eq!(
            failure(&status.conditions).map(|c| c.reason.as_str()),
            Some("JobFailed")
        );
    }

    #[test]
    fn the_credentials_part_is_left_out() {
        let mut full = TrainingPartitionStatus {
            observed_generation: Some(3),
            ..Default::default()
        };
        condition::set(
            &mut full.conditions,
            Desired {
                type_: types::READY,
                status: Status::True,
                reason: reasons::CREDENTIALS_VALID,
                message: String::new(),
            },
            Some(3),
            Time(at("2026-11-30T08:00:00Z")),
        );
        let mine = owned(Some(&full));
        assert_eq!(mine.observed_generation, None);
        assert!(mine.conditions.is_empty());
        assert!(mine.credentials.is_none());
    }
}

//! Standard status conditions: the type and reason names both resources use, and the one
//! function that updates a condition list the way Kubernetes tooling expects.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types. `Ready` is the summary that GitOps tools and printer columns read.
pub mod types {
    pub const READY: &str = "Ready";
    pub const DEGRADED: &str = "Degraded";
    pub const CREDENTIALS_ISSUED: &str = "CredentialsIssued";
    pub const SYNCED: &str = "Synced";
    pub const DRIFTED: &str = "Drifted";
    pub const CONFLICT: &str = "Conflict";
    /// TrainingPartition: whether a worker Job is extracting and shredding raw samples now.
    pub const EXTRACTING: &str = "Extracting";
    /// kstatus' abnormal-true condition: `True` when the operator cannot make progress
    /// until someone changes something (spec, grant, AWS setup); `False` while things work
    /// or a transient failure is being retried. Flux (kstatus) reports `Failed` on it, and
    /// the Argo CD health checks (`gitops/`) report `Degraded`.
    pub const STALLED: &str = "Stalled";
}

/// Condition reasons (CamelCase, machine-readable) that the controllers set. Failures of
/// AWS calls use the cloud crate's `FailureReason` names instead.
pub mod reasons {
    // TrainingPartition
    /// `Ready`: pods hold a session that is valid now.
    pub const CREDENTIALS_VALID: &str = "CredentialsValid";
    /// `CredentialsIssued`: the last mint worked (or the held session matches the spec).
    pub const ISSUED: &str = "Issued";
    /// The spec cannot be acted on (admission would normally have refused it).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The session policy would exceed what STS accepts.
    pub const POLICY_TOO_LARGE: &str = "PolicyTooLarge";
    /// `secretName` names a Secret securepipe did not create for this TrainingPartition.
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    /// `revokeOnDelete` on a role securepipe could not revoke sessions of (another AWS
    /// account without a configured revoker role): nothing is minted.
    pub const REVOKER_MISSING: &str = "RevokerMissing";
    /// The operator may not write Secrets in this namespace (its RBAC, the chart's
    /// `rbac.tenantNamespaces`): nothing is minted.
    pub const NAMESPACE_NOT_SERVED: &str = "NamespaceNotServed";

    // TrainingPartition extraction (`Extracting`, and `Degraded` when a Job fails)
    /// `Extracting` true: a worker Job is running.
    pub const JOB_RUNNING: &str = "JobRunning";
    /// `Extracting` false: the last worker Job finished every sample it found.
    pub const JOB_SUCCEEDED: &str = "JobSucceeded";
    /// `Extracting` false and `Degraded` true: the last worker Job failed; the next
    /// interval starts another.
    pub const JOB_FAILED: &str = "JobFailed";
    /// `Extracting` false: the last scan found no raw sample waiting.
    pub const NOTHING_PENDING: &str = "NothingPending";
    /// `Extracting` false: `spec.extraction.enabled` is off; no new Job starts.
    pub const EXTRACTION_DISABLED: &str = "ExtractionDisabled";

    // Both kinds
    /// No TenantGrant covers what the object asks for (default deny): no AWS call made.
    pub const NOT_GRANTED: &str = "NotGranted";

    // Both kinds
    /// `Degraded` (and `Stalled`) false: nothing needs attention.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// `Stalled` false: a transient failure (throttling, an unreachable endpoint, S3 not
    /// showing a write yet) that the operator retries on its own.
    pub const RETRYING: &str = "Retrying";

    // RetentionPolicy
    /// A condition this outcome did not check yet.
    pub const NOT_CHECKED: &str = "NotChecked";
    /// `Ready`/`Synced` false: another policy claims the same rules.
    pub const CONFLICT: &str = "Conflict";
    /// `Conflict` true.
    pub const RULE_CONFLICT: &str = "RuleConflict";
    /// `Conflict` false.
    pub const NO_CONFLICT: &str = "NoConflict";
    /// The bucket holds the policy's rules (this reconcile wrote them, for `Synced`).
    pub const RULES_APPLIED: &str = "RulesApplied";
    /// `Synced`: the bucket already held the policy's rules.
    pub const UP_TO_DATE: &str = "UpToDate";
    /// `Drifted` true: owned rules changed outside the policy.
    pub const RULES_CHANGED: &str = "RulesChanged";
    /// `Drifted` false after restoring owned rules.
    pub const CORRECTED: &str = "Corrected";
    /// `Drifted` false.
    pub const NO_DRIFT: &str = "NoDrift";
    /// `Ready` false in `Enforce` mode while posture checks are still failing.
    pub const POSTURE_NOT_ENFORCED: &str = "PostureNotEnforced";
    /// The bucket named by the policy does not exist.
    pub const NO_SUCH_BUCKET: &str = "NoSuchBucket";
    /// A lifecycle write did not show up in the bucket within the read-back attempts.
    pub const NOT_CONFIRMED: &str = "NotConfirmed";
}

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

/// What a controller wants a condition to say, without the bookkeeping fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: Status,
    /// CamelCase, machine-readable.
    pub reason: &'a str,
    pub message: String,
}

/// Sets a condition in `conditions`. `lastTransitionTime` moves only when the status
/// flips, so reconciling the same state twice yields an identical list (no status churn).
/// Returns whether anything changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    desired: Desired<'_>,
    observed_generation: Option<i64>,
    now: Time,
) -> bool {
    let status = desired.status.as_str();
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            let before = existing.clone();
            if existing.status != status {
                existing.status = status.to_owned();
                existing.last_transition_time = now;
            }
            existing.reason = desired.reason.to_owned();
            existing.message = desired.message;
            existing.observed_generation = observed_generation;
            *existing != before
        }
        None => {
            conditions.push(Condition {
                type_: desired.type_.to_owned(),
                status: status.to_owned(),
                reason: desired.reason.to_owned(),
                message: desired.message,
                observed_generation,
                last_transition_time: now,
            });
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == Status::True.as_str())
}

/// Whether the condition of the given type is `True` with the given reason (a failure that
/// is already reported, so it is not announced again).
pub fn is_true_with(conditions: &[Condition], type_: &str, reason: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == Status::True.as_str() && c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: Status, reason: &str) -> Desired<'_> {
        Desired {
            type_: types::READY,
            status,
            reason,
            message: format!("{reason} happened"),
        }
    }

    #[test]
    fn adds_a_missing_condition() {
        let mut conditions = Vec::new();
        assert!(set(
            &mut conditions,
            ready(Status::True, "Issued"),
            Some(3),
            at(10)
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].observed_generation, Some(3));
        assert_eq!(conditions[0].last_transition_time, at(10));
    }

    #[test]
    fn same_state_twice_changes_nothing() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            ready(Status::True, "Issued"),
            Some(1),
            at(10),
        );
        let snapshot = conditions.clone();
        assert!(!set(
            &mut conditions,
            ready(Status::True, "Issued"),
            Some(1),
            at(20)
        ));
        assert_eq!(conditions, snapshot);
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            ready(Status::True, "Issued"),
            Some(1),
            at(10),
        );
        assert!(set(
            &mut conditions,
            ready(Status::True, "Renewed"),
            Some(2),
            at(20)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].reason, "Renewed");
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert!(set(
            &mut conditions,
            ready(Status::False, "AccessDenied"),
            Some(2),
            at(30)
        ));
        assert_eq!(conditions[0].last_transition_time, at(30));
        assert!(!is_true(&conditions, types::READY));
    }

    #[test]
    fn conditions_of_other_types_are_untouched() {
        let mut conditions = Vec::new();
        set(&mut conditions, ready(Status::True, "Issued"), None, at(10));
        let degraded = Desired {
            type_: types::DEGRADED,
            status: Status::False,
            reason: "AsExpected",
            message: String::new(),
        };
        set(&mut conditions, degraded, None, at(20));
        assert_eq!(conditions.len(), 2);
        assert!(is_true(&conditions, types::READY));
        assert_eq!(
            find(&conditions, types::DEGRADED).map(|c| c.status.as_str()),
            Some("False")
        );
    }
}

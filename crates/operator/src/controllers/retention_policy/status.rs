//! The status a reconcile reports, computed from what it found and did (pure). `Ready`
//! says whether the bucket holds the policy's rules as specified (and, in `Enforce` mode,
//! the posture); `Synced` whether the last attempt to apply them worked; `Drifted` is true
//! between finding owned rules changed behind the operator's back and restoring them;
//! `Conflict` whether another policy claims the same rules; `Degraded` whether AWS calls
//! are failing; `Stalled` whether it needs someone to act (an invalid spec, a conflict, a
//! failure the operator's own retries cannot fix).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use securepipe_api::RetentionPolicyStatus;
use securepipe_api::condition::{Status, reasons, types};

use super::super::conditions::Conditions;
use super::merge::Difference;
use super::posture;

/// What a reconcile ended with.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The spec breaks S3's (or admission's) rules: nothing was written.
    Invalid { problems: &'a [String] },
    /// Another policy claims the same rules: nothing was written.
    Conflict { conflicts: &'a [String] },
    /// An AWS call failed (or a write did not take effect).
    Failed {
        reason: &'a str,
        message: String,
        /// Retrying cannot fix it.
        stalled: bool,
    },
    /// The bucket holds the policy's rules.
    Synced {
        /// The S3 IDs of the policy's rules, confirmed in the bucket.
        applied: Vec<String>,
        /// Whether this reconcile wrote the lifecycle configuration.
        wrote: bool,
        /// Whether the write corrected drift (not a spec change).
        corrected_drift: bool,
        /// The posture pass, when the policy has a `bucketPosture`.
        posture: Option<&'a posture::Report>,
        enforce_posture: bool,
    },
}

/// The status after a reconcile, keeping what this outcome does not change.
pub fn next(
    current: Option<&RetentionPolicyStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Timestamp,
) -> RetentionPolicyStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let mut synced_at = None;
    let mut c = Conditions::new(&mut status.conditions, generation, Time(now));
    match outcome {
        Outcome::Invalid { problems } => {
            let message = problems.join("; ");
            c.set(
                types::READY,
                Status::False,
                reasons::INVALID_SPEC,
                message.clone(),
            );
            c.set(
                types::SYNCED,
                Status::False,
                reasons::INVALID_SPEC,
                message.clone(),
            );
            c.set(types::STALLED, Status::True, reasons::INVALID_SPEC, message);
            c.keep(types::DRIFTED);
            c.keep(types::CONFLICT);
            c.set(
                types::DEGRADED,
                Status::False,
                reasons::AS_EXPECTED,
                String::new(),
            );
        }
        Outcome::Conflict { conflicts } => {
            let message = conflicts.join("; ");
            c.set(
                types::READY,
                Status::False,
                reasons::CONFLICT,
                message.clone(),
            );
            c.set(
                types::SYNCED,
                Status::False,
                reasons::CONFLICT,
                message.clone(),
            );
            c.set(
                types::STALLED,
                Status::True,
                reasons::CONFLICT,
                message.clone(),
            );
            c.keep(types::DRIFTED);
            c.set(
                types::CONFLICT,
                Status::True,
                reasons::RULE_CONFLICT,
                message,
            );
            c.set(
                types::DEGRADED,
                Status::False,
                reasons::AS_EXPECTED,
                String::new(),
            );
        }
        Outcome::Failed {
            reason,
            message,
            stalled,
        } => {
            c.set(types::READY, Status::False, reason, message.clone());
            c.stalled(*stalled, reason, message.clone());
            c.set(types::SYNCED, Status::False, reason, message.clone());
            // A drift found before the failure stays reported until it is corrected.
            c.keep(types::DRIFTED);
            c.keep(types::CONFLICT);
            c.set(types::DEGRADED, Status::True, reason, message.clone());
        }
        Outcome::Synced {
            applied,
            wrote,
            corrected_drift,
            posture,
            enforce_posture,
        } => {
            let rules = format!("{} rules in the bucket as specified", applied.len());
            let (synced_reason, synced_message) = if *wrote {
                (
                    reasons::RULES_APPLIED,
                    format!("wrote the lifecycle configuration: {rules}"),
                )
            } else {
                (reasons::UP_TO_DATE, rules.clone())
            };
            c.set(types::SYNCED, Status::True, synced_reason, synced_message);
            let (drift_reason, drift_message) = if *corrected_drift {
                (
                    reasons::CORRECTED,
                    "restored owned rules changed outside the policy".to_owned(),
                )
            } else {
                (reasons::NO_DRIFT, String::new())
            };
            c.set(types::DRIFTED, Status::False, drift_reason, drift_message);
            c.set(
                types::CONFLICT,
                Status::False,
                reasons::NO_CONFLICT,
                String::new(),
            );
            c.set(
                types::STALLED,
                Status::False,
                reasons::AS_EXPECTED,
                String::new(),
            );
            let posture_failure = posture.and_then(|p| p.failure.as_ref());
            let unenforced = posture.map_or(0, |p| p.non_compliant());
            match posture_failure {
                Some(err) => c.set(
                    types::DEGRADED,
                    Status::True,
                    err.reason().as_str(),
                    format!("bucket posture: {err}"),
                ),
                None => c.set(
                    types::DEGRADED,
                    Status::False,
                    reasons::AS_EXPECTED,
                    String::new(),
                ),
            }
            if *enforce_posture && unenforced > 0 {
                c.set(
                    types::READY,
                    Status::False,
                    reasons::POSTURE_NOT_ENFORCED,
                    format!("{rules}; {unenforced} posture checks still not compliant"),
                );
            } else if unenforced > 0 {
                c.set(
                    types::READY,
                    Status::True,
                    reasons::RULES_APPLIED,
                    format!("{rules}; posture audit: {unenforced} checks not compliant"),
                );
            } else {
                c.set(types::READY, Status::True, reasons::RULES_APPLIED, rules);
            }
            status.applied_rules = applied.clone();
            if *corrected_drift {
                status.drift_corrections += 1;
            }
            status.posture = posture.map(|p| p.findings.clone()).unwrap_or_default();
            synced_at = Some(Time(now));
        }
    }
    if synced_at.is_some() {
        status.last_sync_time = synced_at;
    }
    status
}

/// The status while drift is being corrected: `Drifted` true, naming what changed.
pub fn drifting(
    current: Option<&RetentionPolicyStatus>,
    generation: Option<i64>,
    differences: &[Difference],
    now: Timestamp,
) -> RetentionPolicyStatus {
    let mut status = current.cloned().unwrap_or_default();
    let message = differences
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Conditions::new(&mut status.conditions, generation, Time(now)).set(
        types::DRIFTED,
        Status::True,
        reasons::RULES_CHANGED,
        message,
    );
    status
}

#[cfg(test)]
mod tests {
    use super::super::super::conditions::MAX_MESSAGE_CHARS;
    use super::*;
    use securepipe_api::condition::find;
    use securepipe_api::retention_policy::PostureFinding;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn cond<'s>(status: &'s RetentionPolicyStatus, type_: &str) -> (&'s str, &'s str) {
        let c = find(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
        (c.status.as_str(), c.reason.as_str())
    }

    fn synced(applied: &[&str], wrote: bool, drift: bool) -> Outcome<'static> {
        Outcome::Synced {
            applied: applied.iter().map(|s| (*s).to_owned()).collect(),
            wrote,
            corrected_drift: drift,
            posture: None,
            enforce_posture: false,
        }
    }

    #[test]
    fn a_first_sync_lists_all_six_conditions() {
        let status = next(None, Some(1), &synced(&["a", "b"], true, false), at(10));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(cond(&status, types::READY), ("True", "RulesApplied"));
        assert_eq!(cond(&status, types::SYNCED), ("True", "RulesApplied"));
        assert_eq!(cond(&status, types::DRIFTED), ("False", "NoDrift"));
        assert_eq!(cond(&status, types::CONFLICT), ("False", "NoConflict"));
        assert_eq!(cond(&status, types::DEGRADED), ("False", "AsExpected"));
        assert_eq!(cond(&status, types::STALLED), ("False", "AsExpected"));
        assert_eq!(status.applied_rules, ["a", "b"]);
        assert_eq!(status.drift_corrections, 0);
        assert_eq!(status.last_sync_time, Some(Time(at(10))));
    }

    #[test]
    fn a_resync_that_finds_nothing_changes_only_the_sync_time() {
        let first = next(None, Some(1), &synced(&["a"], true, false), at(10));
        let second = next(Some(&first), Some(1), &synced(&["a"], false, false), at(20));
        assert_eq!(cond(&second, types::SYNCED), ("True", "UpToDate"));
        let third = next(
            Some(&second),
            Some(1),
            &synced(&["a"], false, false),
            at(20),
        );
        assert_eq!(second, third);
        for c in &third.conditions {
            assert_eq!(c.last_transition_time, Time(at(10)), "{}", c.type_);
        }
    }

    #[test]
    fn drift_is_reported_then_counted_when_corrected() {
        let first = next(None, Some(1), &synced(&["a"], true, false), at(10));
        let drifting = drifting(
            Some(&first),
            Some(1),
            &[Difference::Missing("a".into())],
            at(20),
        );
        assert_eq!(cond(&drifting, types::DRIFTED), ("True", "RulesChanged"));
        assert!(
            find(&drifting.conditions, types::DRIFTED)
                .unwrap()
                .message
                .contains("a missing")
        );
        let corrected = next(
            Some(&drifting),
            Some(1),
            &synced(&["a"], true, true),
            at(21),
        );
        assert_eq!(cond(&corrected, types::DRIFTED), ("False", "Corrected"));
        assert_eq!(corrected.drift_corrections, 1);
        let again = next(
            Some(&corrected),
            Some(1),
            &synced(&["a"], true, true),
            at(30),
        );
        assert_eq!(again.drift_corrections, 2);
    }

    #[test]
    fn a_failure_keeps_what_was_applied_and_the_drift() {
        let first = next(None, Some(1), &synced(&["a"], true, false), at(10));
        let drifting = drifting(
            Some(&first),
            Some(1),
            &[Difference::Changed("a".into())],
            at(20),
        );
        let failed = next(
            Some(&drifting),
            Some(1),
            &Outcome::Failed {
                reason: "EndpointUnavailable",
                message: "connection refused".into(),
                stalled: false,
            },
            at(30),
        );
        assert_eq!(
            cond(&failed, types::READY),
            ("False", "EndpointUnavailable")
        );
        assert_eq!(
            cond(&failed, types::DEGRADED),
            ("True", "EndpointUnavailable")
        );
        assert_eq!(cond(&failed, types::DRIFTED), ("True", "RulesChanged"));
        assert_eq!(cond(&failed, types::STALLED), ("False", "Retrying"));
        assert_eq!(failed.applied_rules, ["a"]);
        assert_eq!(failed.last_sync_time, Some(Time(at(10))));
        let recovered = next(Some(&failed), Some(1), &synced(&["a"], true, true), at(40));
        assert_eq!(cond(&recovered, types::DEGRADED), ("False", "AsExpected"));
        assert_eq!(cond(&recovered, types::READY), ("True", "RulesApplied"));
    }

    #[test]
    fn a_failure_before_any_sync_still_lists_every_condition() {
        let failed = next(
            None,
            Some(1),
            &Outcome::Failed {
                reason: "AccessDenied",
                message: "no".into(),
                stalled: true,
            },
            at(1),
        );
        assert_eq!(cond(&failed, types::DRIFTED), ("Unknown", "NotChecked"));
        assert_eq!(cond(&failed, types::CONFLICT), ("Unknown", "NotChecked"));
        assert_eq!(cond(&failed, types::STALLED), ("True", "AccessDenied"));
        assert!(failed.applied_rules.is_empty());
    }

    #[test]
    fn conflicts_and_invalid_specs_are_not_ready() {
        let conflicts = ["rule id raw is also claimed by RetentionPolicy o/p".to_owned()];
        let status = next(
            None,
            Some(2),
            &Outcome::Conflict {
                conflicts: &conflicts,
            },
            at(1),
        );
        assert_eq!(cond(&status, types::READY), ("False", "Conflict"));
        assert_eq!(cond(&status, types::CONFLICT), ("True", "RuleConflict"));
        assert_eq!(cond(&status, types::STALLED), ("True", "Conflict"));
        assert!(
            find(&status.conditions, types::CONFLICT)
                .unwrap()
                .message
                .contains("o/p")
        );
        let problems = ["spec.rules[0].transitions[0].days: too few".to_owned()];
        let invalid = next(
            Some(&status),
            Some(3),
            &Outcome::Invalid {
                problems: &problems,
            },
            at(2),
        );
        assert_eq!(cond(&invalid, types::READY), ("False", "InvalidSpec"));
        assert_eq!(cond(&invalid, types::STALLED), ("True", "InvalidSpec"));
        assert!(
            find(&invalid.conditions, types::READY)
                .unwrap()
                .message
                .starts_with("spec.rules[0]")
        );
        assert_eq!(invalid.observed_generation, Some(3));
    }

    #[test]
    fn long_messages_are_bounded() {
        let conflicts: Vec<String> = (0..500).map(|i| format!("conflict number {i}")).collect();
        let status = next(
            None,
            Some(1),
            &Outcome::Conflict {
                conflicts: &conflicts,
            },
            at(1),
        );
        let message = &find(&status.conditions, types::CONFLICT).unwrap().message;
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(message.ends_with("..."));
    }

    fn report(states: &[&str]) -> posture::Report {
        posture::Report {
            findings: states
                .iter()
                .map(|state| PostureFinding {
                    check: "Versioning".into(),
                    state: (*state).into(),
                    message: String::new(),
                })
                .collect(),
            corrected: Vec::new(),
            failure: None,
        }
    }

    #[test]
    fn posture_findings_are_reported_and_only_enforce_blocks_ready() {
        let audit = report(&[posture::NON_COMPLIANT, posture::COMPLIANT]);
        let outcome = Outcome::Synced {
            applied: vec!["a".into()],
            wrote: false,
            corrected_drift: false,
            posture: Some(&audit),
            enforce_posture: false,
        };
        let status = next(None, Some(1), &outcome, at(1));
        assert_eq!(status.posture.len(), 2);
        assert_eq!(cond(&status, types::READY), ("True", "RulesApplied"));
        assert!(
            find(&status.conditions, types::READY)
                .unwrap()
                .message
                .contains("1 checks not compliant")
        );
        let outcome = Outcome::Synced {
            applied: vec!["a".into()],
            wrote: false,
            corrected_drift: false,
            posture: Some(&audit),
            enforce_posture: true,
        };
        let status = next(None, Some(1), &outcome, at(1));
        assert_eq!(cond(&status, types::READY), ("False", "PostureNotEnforced"));
        // Removing bucketPosture clears the findings.
        let cleared = next(Some(&status), Some(2), &synced(&["a"], false, false), at(2));
        assert!(cleared.posture.is_empty());
    }
}

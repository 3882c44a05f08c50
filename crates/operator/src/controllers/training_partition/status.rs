//! The status a reconcile reports, computed from what it found and did (pure). The
//! conditions follow one rule: `Ready` says whether pods hold usable credentials now;
//! `CredentialsIssued` says whether the last attempt to mint worked; `Degraded` says
//! whether something needs attention; `Stalled` whether it needs someone to act (a
//! failure the operator's own retries cannot fix).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use securepipe_api::TrainingPartitionStatus;
use securepipe_api::condition::{Status, reasons, types};
use securepipe_api::training_partition::CredentialsStatus;

use super::super::conditions::Conditions;
use super::renewal::Held;

/// What a reconcile ended with.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Valid credentials are in the Secret.
    Valid {
        secret_name: &'a str,
        held: &'a Held,
    },
    /// Minting (or acting on the spec) failed; `held` is the session still in the Secret.
    Failed {
        reason: &'a str,
        message: String,
        /// Retrying cannot help until someone changes something (not a transient failure).
        stalled: bool,
        secret_name: &'a str,
        held: Option<&'a Held>,
    },
}

/// The conditions the credentials concern owns.
const CONDITIONS: [&str; 4] = [
    types::READY,
    types::CREDENTIALS_ISSUED,
    types::DEGRADED,
    types::STALLED,
];

/// The part of a status the credentials concern writes (field manager
/// `securepipe/credentials`): `observedGeneration`, its conditions and `credentials`.
/// Other concerns' fields (extraction counters) are not in it, so applying it leaves them
/// alone.
pub fn owned(current: Option<&TrainingPartitionStatus>) -> TrainingPartitionStatus {
    let Some(current) = current else {
        return TrainingPartitionStatus::default();
    };
    TrainingPartitionStatus {
        observed_generation: current.observed_generation,
        conditions: current
            .conditions
            .iter()
            .filter(|c| CONDITIONS.contains(&c.type_.as_str()))
            .cloned()
            .collect(),
        credentials: current.credentials.clone(),
        extraction: None,
        used_role_arns: Vec::new(),
    }
}

/// The credentials part of the status after `outcome`, from the part as it is.
pub fn next(
    current: Option<&TrainingPartitionStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: jiff::Timestamp,
) -> TrainingPartitionStatus {
    let extraction_failure = current
        .and_then(|c| crate::controllers::extraction::failure(&c.conditions))
        .map(|c| (c.reason.clone(), c.message.clone()));
    let extraction_failure = extraction_failure
        .as_ref()
        .map(|(reason, message)| (reason.as_str(), message.clone()));
    let mut status = owned(current);
    status.observed_generation = generation;
    let mut c = Conditions::new(&mut status.conditions, generation, Time(now));
    match outcome {
        Outcome::Valid { held, .. } => {
            let expires = super::secret::rfc3339(held.expires_at);
            c.set(
                types::READY,
                Status::True,
                reasons::CREDENTIALS_VALID,
                format!("session {} valid until {expires}", held.session_name),
            );
            // The same reason whether this reconcile minted or found the session: a
            // restart must not rewrite the status.
            c.set(
                types::CREDENTIALS_ISSUED,
                Status::True,
                reasons::ISSUED,
                format!("session {} valid until {expires}", held.session_name),
            );
            // Extraction reports its failures in `Extracting`; Degraded and Stalled follow
            // them (one writer for both).
            match extraction_failure {
                Some((reason, message)) => {
                    c.set(types::DEGRADED, Status::True, reason, message.clone());
                    c.stalled(
                        crate::controllers::extraction::needs_someone(reason),
                        reason,
                        message,
                    );
                }
                None => {
                    c.set(
                        types::DEGRADED,
                        Status::False,
                        reasons::AS_EXPECTED,
                        String::new(),
                    );
                    c.set(
                        types::STALLED,
                        Status::False,
                        reasons::AS_EXPECTED,
                        String::new(),
                    );
                }
            }
        }
        Outcome::Failed {
            reason,
            message,
            stalled,
            held,
            ..
        } => {
            match held.filter(|held| held.expires_at > now) {
                Some(held) => c.set(
                    types::READY,
                    Status::True,
                    reasons::CREDENTIALS_VALID,
                    format!(
                        "session {} still valid until {}; renewal failing",
                        held.session_name,
                        super::secret::rfc3339(held.expires_at)
                    ),
                ),
                None => c.set(types::READY, Status::False, reason, message.clone()),
            }
            c.set(
                types::CREDENTIALS_ISSUED,
                Status::False,
                reason,
                message.clone(),
            );
            c.set(types::DEGRADED, Status::True, reason, message.clone());
            c.stalled(*stalled, reason, message.clone());
        }
    }
    let (secret_name, held) = match outcome {
        Outcome::Valid {
            secret_name, held, ..
        } => (*secret_name, Some(*held)),
        Outcome::Failed {
            secret_name, held, ..
        } => (*secret_name, *held),
    };
    status.credentials = held.map(|held| CredentialsStatus {
        secret_name: secret_name.to_owned(),
        expires_at: Time(held.expires_at),
        renewed_at: Time(held.renewed_at),
        session_name: held.session_name.clone(),
        access_key_id: held.access_key_id.clone(),
    });
    status
}

#[cfg(test)]
mod tests {
    use securepipe_api::condition::{self, Desired};

    use super::*;

    fn held() -> Held {
        Held {
            expires_at: "2026-11-23T11:00:00Z".parse().unwrap(),
            renewed_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            inputs_hash: "h".to_owned(),
            session_name: "sp-ml@speech".to_owned(),
            access_key_id: "ASIAEXAMPLE".to_owned(),
        }
    }

    fn condition<'a>(status: &'a TrainingPartitionStatus, type_: &str) -> &'a condition::Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn valid_credentials_make_it_ready() {
        let held = held();
        let outcome = Outcome::Valid {
            secret_name: "speech-aws",
            held: &held,
        };
        let status = next(
            None,
            Some(3),
            &outcome,
            "2026-11-23T10:00:01Z".parse().unwrap(),
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(condition(&status, "Ready").status, "True");
        assert_eq!(condition(&status, "CredentialsIssued").reason, "Issued");
        assert_eq!(condition(&status, "Degraded").status, "False");
        assert_eq!(condition(&status, "Stalled").status, "False");
        let credentials = status.credentials.unwrap();
        assert_eq!(credentials.secret_name, "speech-aws");
        assert_eq!(credentials.access_key_id, "ASIAEXAMPLE");
    }

    #[test]
    fn the_same_state_twice_yields_the_same_status() {
        let held = held();
        let outcome = Outcome::Valid {
            secret_name: "speech-aws",
            held: &held,
        };
        let first = next(
            None,
            Some(1),
            &outcome,
            "2026-11-23T10:00:01Z".parse().unwrap(),
        );
        let second = next(
            Some(&first),
            Some(1),
            &outcome,
            "2026-11-23T10:05:00Z".parse().unwrap(),
        );
        assert_eq!(first, second);
    }

    #[test]
    fn only_the_credentials_part_is_written() {
        let held = held();
        let mut current = next(
            None,
            Some(1),
            &Outcome::Valid {
                secret_name: "speech-aws",
                held: &held,
            },
            "2026-11-23T10:00:01Z".parse().unwrap(),
        );
        current.extraction = Some(securepipe_api::training_partition::ExtractionStatus {
            shredded: 7,
            ..Default::default()
        });
        condition::set(
            &mut current.conditions,
            Desired {
                type_: "Extracted",
                status: Status::True,
                reason: "AllShredded",
                message: String::new(),
            },
            Some(1),
            Time("2026-11-23T10:00:02Z".parse().unwrap()),
        );
        let mine = owned(Some(&current));
        assert_eq!(mine.extraction, None);
        assert_eq!(mine.conditions.len(), 4);
        assert!(condition::find(&mine.conditions, "Extracted").is_none());
        assert_eq!(mine.credentials, current.credentials);
        // Nothing changed for this concern: the same part comes out, so no patch is sent.
        let again = next(
            Some(&current),
            Some(1),
            &Outcome::Valid {
                secret_name: "speech-aws",
                held: &held,
            },
            "2026-11-23T10:05:00Z".parse().unwrap(),
        );
        assert_eq!(again, mine);
    }

    #[test]
    fn degraded_follows_a_failed_extraction_while_the_credentials_are_fine() {
        let held = held();
        let valid = Outcome::Valid {
            secret_name: "speech-aws",
            held: &held,
        };
        let now: jiff::Timestamp = "2026-11-23T10:00:01Z".parse().unwrap();
        let mut current = next(None, Some(1), &valid, now);
        for (reason, degraded) in [("JobFailed", "True"), ("JobRunning", "False")] {
            condition::set(
                &mut current.conditions,
                Desired {
                    type_: types::EXTRACTING,
                    status: if reason == "JobRunning" {
                        Status::True
                    } else {
                        Status::False
                    },
                    reason,
                    message: format!("Job speech-shred-abcde: {reason}"),
                },
                Some(1),
                Time(now),
            );
            let status = next(Some(&current), Some(1), &valid, now);
            let found = condition(&status, "Degraded");
            assert_eq!(found.status, degraded, "{reason}");
            if degraded == "True" {
                assert_eq!(found.reason, "JobFailed");
                assert!(found.message.contains("speech-shred-abcde"));
            }
            assert_eq!(condition(&status, "Ready").status, "True");
        }
    }

    #[test]
    fn a_failed_renewal_degrades_but_keeps_ready_while_the_old_session_lasts() {
        let held = held();
        let failed = |now: &str| {
            next(
                None,
                Some(1),
                &Outcome::Failed {
                    reason: "EndpointUnavailable",
                    message: "connection refused".to_owned(),
                    stalled: false,
                    secret_name: "speech-aws",
                    held: Some(&held),
                },
                now.parse().unwrap(),
            )
        };
        let before_expiry = failed("2026-11-23T10:50:00Z");
        assert_eq!(condition(&before_expiry, "Ready").status, "True");
        assert_eq!(condition(&before_expiry, "Degraded").status, "True");
        assert_eq!(
            condition(&before_expiry, "Degraded").reason,
            "EndpointUnavailable"
        );
        assert_eq!(
            condition(&before_expiry, "CredentialsIssued").status,
            "False"
        );
        assert_eq!(
            (
                condition(&before_expiry, "Stalled").status.as_str(),
                condition(&before_expiry, "Stalled").reason.as_str()
            ),
            ("False", "Retrying")
        );
        let after_expiry = failed("2026-11-23T11:00:01Z");
        assert_eq!(condition(&after_expiry, "Ready").status, "False");
        assert_eq!(
            condition(&after_expiry, "Ready").reason,
            "EndpointUnavailable"
        );
    }

    #[test]
    fn a_failure_only_someone_can_fix_stalls() {
        let status = next(
            None,
            Some(2),
            &Outcome::Failed {
                reason: "NotGranted",
                message: "TenantGrant g does not grant bucket b".to_owned(),
                stalled: true,
                secret_name: "speech-aws",
                held: None,
            },
            "2026-11-23T10:00:00Z".parse().unwrap(),
        );
        let stalled = condition(&status, "Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "NotGranted")
        );
        assert_eq!(stalled.message, "TenantGrant g does not grant bucket b");
        assert_eq!(condition(&status, "Ready").status, "False");
    }
}

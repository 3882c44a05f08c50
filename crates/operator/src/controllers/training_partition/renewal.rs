//! When to mint: a pure decision from the session already in the Secret, the spec and the
//! clock. An operator restart re-reads the Secret and mints nothing while it is fresh.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// The session currently held in the Secret, as its annotations describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub expires_at: Timestamp,
    pub renewed_at: Timestamp,
    pub inputs_hash: String,
    pub session_name: String,
    pub access_key_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintReason {
    /// No Secret (or one securepipe did not write).
    Missing,
    /// The spec changed what the session may do.
    InputsChanged,
    /// The renewal time has come.
    Due,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Keep { renew_at: Timestamp },
    Mint(MintReason),
}

/// The requeue delay until `at` (at least one second, so a clock at the edge cannot spin).
pub fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now))
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

/// The moment to renew a session expiring at `expires_at`: `renew_before` ahead, and a
/// little earlier by `jitter` so that partitions created together do not renew together.
pub fn renew_at(expires_at: Timestamp, renew_before: Duration, jitter: Duration) -> Timestamp {
    let lead = SignedDuration::try_from(renew_before + jitter).unwrap_or(SignedDuration::MAX);
    expires_at.checked_sub(lead).unwrap_or(Timestamp::MIN)
}

/// A stable per-object jitter from the object's UID (the same across restarts, different
/// across objects), below a tenth of both the renewal window and the time a session is
/// kept before renewal, and below 30 s.
pub fn jitter(uid: &str, renew_before: Duration, duration: Duration) -> Duration {
    let kept = duration.saturating_sub(renew_before);
    let span = (renew_before / 10)
        .min(kept / 10)
        .min(Duration::from_secs(30));
    let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
    if span_ms == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(uid.as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % span_ms)
}

pub fn decide(
    held: Option<&Held>,
    inputs_hash: &str,
    renew_before: Duration,
    jitter: Duration,
    now: Timestamp,
) -> Decision {
    let Some(held) = held else {
        return Decision::Mint(MintReason::Missing);
    };
    if held.inputs_hash != inputs_hash {
        return Decision::Mint(MintReason::InputsChanged);
    }
    let renew_at = renew_at(held.expires_at, renew_before, jitter);
    if now >= renew_at {
        Decision::Mint(MintReason::Due)
    } else {
        Decision::Keep { renew_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn held(expires_at: &str) -> Held {
        Held {
            expires_at: at(expires_at),
            renewed_at: at("2026-11-23T10:00:00Z"),
            inputs_hash: "h1".to_owned(),
            session_name: "sp-ml@speech".to_owned(),
            access_key_id: "ASIAEXAMPLE".to_owned(),
        }
    }

    const TWENTY_MIN: Duration = Duration::from_secs(1200);

    #[test]
    fn nothing_held_means_mint() {
        assert_eq!(
            decide(
                None,
                "h1",
                TWENTY_MIN,
                Duration::ZERO,
                at("2026-11-23T10:00:00Z")
            ),
            Decision::Mint(MintReason::Missing)
        );
    }

    #[test]
    fn a_fresh_session_is_kept_until_exactly_its_renewal_time() {
        let held = held("2026-11-23T11:00:00Z");
        let jitter = Duration::from_secs(7);
        assert_eq!(
            decide(
                Some(&held),
                "h1",
                TWENTY_MIN,
                jitter,
                at("2026-11-23T10:30:00Z")
            ),
            Decision::Keep {
                renew_at: at("2026-11-23T10:39:53Z")
            }
        );
        assert_eq!(
            decide(
                Some(&held),
                "h1",
                TWENTY_MIN,
                jitter,
                at("2026-11-23T10:39:53Z")
            ),
            Decision::Mint(MintReason::Due)
        );
    }

    #[test]
    fn a_spec_change_mints_at_once() {
        let held = held("2026-11-23T11:00:00Z");
        assert_eq!(
            decide(
                Some(&held),
                "h2",
                TWENTY_MIN,
                Duration::ZERO,
                at("2026-11-23T10:01:00Z")
            ),
            Decision::Mint(MintReason::InputsChanged)
        );
    }

    #[test]
    fn an_expired_session_is_due() {
        let held = held("2026-11-23T09:00:00Z");
        assert_eq!(
            decide(
                Some(&held),
                "h1",
                TWENTY_MIN,
                Duration::ZERO,
                at("2026-11-23T10:00:00Z")
            ),
            Decision::Mint(MintReason::Due)
        );
    }

    #[test]
    fn jitter_is_stable_small_and_spread() {
        let hour = Duration::from_secs(3600);
        let renew_before = Duration::from_secs(1200);
        let a = jitter("7c1e-uid-a", renew_before, hour);
        assert_eq!(a, jitter("7c1e-uid-a", renew_before, hour));
        assert!(a < Duration::from_secs(30));
        let distinct: std::collections::BTreeSet<_> = (0..100)
            .map(|i| jitter(&format!("uid-{i}"), renew_before, hour))
            .collect();
        assert!(distinct.len() > 50, "{}", distinct.len());
        assert!(jitter("uid", Duration::from_secs(60), hour) < Duration::from_secs(6));
        assert_eq!(jitter("uid", Duration::ZERO, hour), Duration::ZERO);
        // A session kept only 10 s before renewal is never renewed at once.
        let short = jitter("uid", Duration::from_secs(890), Duration::from_secs(900));
        assert!(short < Duration::from_secs(1), "{short:?}");
    }
}

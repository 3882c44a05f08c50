//! Why a raw object is quarantined: a fixed set of reasons, each a tag value. A quarantined
//! object keeps all its bytes and versions; runs skip it while the tag is there.

use securepipe_envelope::keyring::KeyringError;
use securepipe_envelope::{DecryptError, RequiredContextError};

/// The tag that marks a quarantined object; its value is a [`Reason`].
pub use securepipe_api::worker::QUARANTINE_TAG;

/// Why an object is quarantined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Larger than `--max-object-bytes`; never read.
    TooLarge,
    /// Not an AWS Encryption SDK message (or one of an unsupported version or suite).
    NotEncrypted,
    /// The message ends early.
    Truncated,
    /// A header, frame, key commitment or signature does not verify, or KMS refused the
    /// wrapped data key: the message was altered.
    AuthenticationFailed,
    /// No data key is wrapped by an allowed KMS key.
    KeyNotAllowed,
    /// The encryption context has no `securepipe:partition`.
    PartitionMissing,
    /// The encryption context names another partition.
    PartitionMismatch,
    /// The plaintext is not a WAV file `securepipe features` reads, or yields no features.
    NotAudio,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Self::TooLarge,
        Self::NotEncrypted,
        Self::Truncated,
        Self::AuthenticationFailed,
        Self::KeyNotAllowed,
        Self::PartitionMissing,
        Self::PartitionMismatch,
        Self::NotAudio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too-large",
            Self::NotEncrypted => "not-encrypted",
            Self::Truncated => "truncated",
            Self::AuthenticationFailed => "authentication-failed",
            Self::KeyNotAllowed => "key-not-allowed",
            Self::PartitionMissing => "partition-missing",
            Self::PartitionMismatch => "partition-mismatch",
            Self::NotAudio => "not-audio",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The reason a decryption failure is the message's fault, or `None` when it is not
    /// (KMS unreachable or refusing us, a read error): then the object is retried, never
    /// quarantined.
    pub fn of_decrypt_error(err: &DecryptError) -> Option<Self> {
        Some(match err {
            DecryptError::Header(_)
            | DecryptError::HeaderTooLarge { .. }
            | DecryptError::TooManyDataKeys { .. }
            | DecryptError::FrameLengthTooLarge { .. }
            | DecryptError::NonFramedTooLarge { .. }
            | DecryptError::MissingPublicKey(_)
            | DecryptError::UnexpectedPublicKey(_)
            | DecryptError::InvalidPublicKey(_) => Self::NotEncrypted,
            DecryptError::Truncated(_) => Self::Truncated,
            DecryptError::RequiredContext(RequiredContextError::Missing { .. }) => {
                Self::PartitionMissing
            }
            DecryptError::RequiredContext(_) => Self::PartitionMismatch,
            DecryptError::Keyring(keyring) => return Self::of_keyring_error(keyring),
            DecryptError::CommitmentMismatch
            | DecryptError::HeaderAuthentication
            | DecryptError::FrameOutOfOrder { .. }
            | DecryptError::FinalFrameTooLong { .. }
            | DecryptError::TooManyFrames
            | DecryptError::FrameAuthentication { .. }
            | DecryptError::BodyAuthentication
            | DecryptError::Signature
            | DecryptError::TrailingData => Self::AuthenticationFailed,
            _ => return None,
        })
    }

    fn of_keyring_error(err: &KeyringError) -> Option<Self> {
        match err {
            KeyringError::NoAllowedKey { .. } => Some(Self::KeyNotAllowed),
            KeyringError::Provider { source, .. }
                if securepipe_cloud::kms::decrypt_rejected_ciphertext(source.as_ref()) =>
            {
                Some(Self::AuthenticationFailed)
            }
            // Every allowed key was tried: the message is bad only if KMS refused each one.
            KeyringError::AllFailed(errors) => {
                let reasons: Vec<Option<Self>> =
                    errors.iter().map(Self::of_keyring_error).collect();
                if reasons.iter().all(Option::is_some) {
                    reasons.into_iter().next().flatten()
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_are_valid_tag_values() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
            assert!(
                reason
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
        assert_eq!(Reason::parse("other"), None);
    }

    #[test]
    fn message_faults_are_quarantined_and_outages_are_not() {
        let missing = RequiredContextError::Missing {
            key: "securepipe:partition".into(),
            expected: "p1".into(),
        };
        let cases = [
            (DecryptError::Truncated("body"), Some(Reason::Truncated)),
            (DecryptError::Signature, Some(Reason::AuthenticationFailed)),
            (
                DecryptError::FrameAuthentication { sequence: 3 },
                Some(Reason::AuthenticationFailed),
            ),
            (
                DecryptError::RequiredContext(missing),
                Some(Reason::PartitionMissing),
            ),
            (
                DecryptError::Keyring(KeyringError::NoAllowedKey { found: vec![] }),
                Some(Reason::KeyNotAllowed),
            ),
            (
                DecryptError::Keyring(KeyringError::Provider {
                    operation: "kms:Decrypt",
                    key_id: "k".into(),
                    source: Box::new(std::io::Error::other("connection refused")),
                }),
                None,
            ),
            (DecryptError::Read(std::io::Error::other("reset")), None),
        ];
        for (err, want) in cases {
            assert_eq!(Reason::of_decrypt_error(&err), want, "{err}");
        }
    }
}

//! Algorithm suites: the two committing suites of message format version 2.

use std::fmt;

/// An algorithm suite this crate reads and writes.
///
/// Both use AES-256-GCM with a 12-byte IV and a 16-byte tag, derive the message key with
/// HKDF-SHA512 (salt: the 32-byte message ID) and commit to the data key in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlgorithmSuite {
    /// `0x0478`: AES-256-GCM, HKDF-SHA512, key commitment, no signature.
    AesGcm256HkdfSha512Commit,
    /// `0x0578`: as `0x0478`, plus an ECDSA P-384/SHA-384 signature over the whole message.
    AesGcm256HkdfSha512CommitEcdsaP384,
}

impl AlgorithmSuite {
    /// The suite securepipe writes unless told otherwise (the AWS Encryption SDK default).
    pub const DEFAULT: Self = Self::AesGcm256HkdfSha512CommitEcdsaP384;

    /// Length of the data key, the derived key and the commitment, in bytes.
    pub(crate) const KEY_LEN: usize = 32;
    /// Length of every AES-GCM IV, in bytes.
    pub(crate) const IV_LEN: usize = 12;
    /// Length of every AES-GCM authentication tag, in bytes.
    pub(crate) const TAG_LEN: usize = 16;

    /// The two-byte identifier written in the message header.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::AesGcm256HkdfSha512Commit => 0x0478,
            Self::AesGcm256HkdfSha512CommitEcdsaP384 => 0x0578,
        }
    }

    /// The suite with this identifier, if it is one this crate supports.
    #[must_use]
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0478 => Some(Self::AesGcm256HkdfSha512Commit),
            0x0578 => Some(Self::AesGcm256HkdfSha512CommitEcdsaP384),
            _ => None,
        }
    }

    /// Whether messages of this suite end with an ECDSA P-384 signature.
    #[must_use]
    pub const fn is_signed(self) -> bool {
        matches!(self, Self::AesGcm256HkdfSha512CommitEcdsaP384)
    }
}

impl Default for AlgorithmSuite {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::AlgorithmSuite;

    #[test]
    fn ids_round_trip_and_others_are_unknown() {
        for suite in [
            AlgorithmSuite::AesGcm256HkdfSha512Commit,
            AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
        ] {
            assert_eq!(AlgorithmSuite::from_id(suite.id()), Some(suite));
        }
        for other in [0x0014, 0x0078, 0x0178, 0x0378, 0x0346, 0x0479, 0xFFFF] {
            assert_eq!(AlgorithmSuite::from_id(other), None, "{other:#06x}");
        }
    }

    #[test]
    fn default_is_signed_0578_and_displays_as_hex() {
        assert_eq!(AlgorithmSuite::default().id(), 0x0578);
        assert!(AlgorithmSuite::default().is_signed());
        assert!(!AlgorithmSuite::AesGcm256HkdfSha512Commit.is_signed());
        assert_eq!(
            AlgorithmSuite::AesGcm256HkdfSha512Commit.to_string(),
            "0x0478"
        );
    }
}

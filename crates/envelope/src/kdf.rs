//! Key derivation for the committing suites: HKDF-SHA512 over the data key, salted with the
//! message ID, gives the message key (`info = suite id || "DERIVEKEY"`) and the key
//! commitment stored in the header (`info = "COMMITKEY"`).

use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::header::MESSAGE_ID_LEN;
use crate::keyring::DataKey;
use crate::suite::AlgorithmSuite;

const DERIVE_LABEL: &[u8] = b"DERIVEKEY";
const COMMIT_LABEL: &[u8] = b"COMMITKEY";

/// The per-message encryption key. Zeroized on drop.
pub(crate) struct DerivedKey(pub(crate) Zeroizing<[u8; AlgorithmSuite::KEY_LEN]>);

/// The message key and the commitment that binds the data key to the message.
pub(crate) struct KeySchedule {
    pub key: DerivedKey,
    pub commitment: [u8; AlgorithmSuite::KEY_LEN],
}

impl KeySchedule {
    pub(crate) fn derive(
        suite: AlgorithmSuite,
        data_key: &DataKey,
        message_id: &[u8; MESSAGE_ID_LEN],
    ) -> Self {
        let hkdf = Hkdf::<Sha512>::new(Some(message_id), data_key.expose());
        let mut key = Zeroizing::new([0u8; AlgorithmSuite::KEY_LEN]);
        let mut info = [0u8; 2 + DERIVE_LABEL.len()];
        info[..2].copy_from_slice(&suite.id().to_be_bytes());
        info[2..].copy_from_slice(DERIVE_LABEL);
        let mut commitment = [0u8; AlgorithmSuite::KEY_LEN];
        // HKDF-SHA512 can expand up to 255 * 64 bytes; 32 always fits.
        let expanded = hkdf
            .expand(&info, key.as_mut_slice())
            .and_then(|()| hkdf.expand(COMMIT_LABEL, &mut commitment));
        debug_assert!(expanded.is_ok());
        Self {
            key: DerivedKey(key),
            commitment,
        }
    }

    /// Whether `stored` equals the derived commitment, compared in constant time.
    pub(crate) fn commitment_matches(&self, stored: &[u8; AlgorithmSuite::KEY_LEN]) -> bool {
        self.commitment.ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::KeySchedule;
    use crate::keyring::DataKey;
    use crate::suite::AlgorithmSuite;
    use hkdf::Hkdf;
    use sha2::Sha512;

    const SIGNED: AlgorithmSuite = AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384;
    const UNSIGNED: AlgorithmSuite = AlgorithmSuite::AesGcm256HkdfSha512Commit;

    #[test]
    fn matches_rfc5869_hkdf_with_the_sdk_labels() {
        let data_key = DataKey::from_slice(&[0x11; 32]).unwrap();
        let message_id = [0x22; 32];
        let schedule = KeySchedule::derive(SIGNED, &data_key, &message_id);
        let hkdf = Hkdf::<Sha512>::new(Some(&message_id), &[0x11; 32]);
        let mut key = [0u8; 32];
        hkdf.expand(b"\x05\x78DERIVEKEY", &mut key).unwrap();
        let mut commit = [0u8; 32];
        hkdf.expand(b"COMMITKEY", &mut commit).unwrap();
        assert_eq!(*schedule.key.0, key);
        assert_eq!(schedule.commitment, commit);
    }

    #[test]
    fn key_depends_on_suite_but_commitment_does_not() {
        let data_key = DataKey::from_slice(&[0x11; 32]).unwrap();
        let a = KeySchedule::derive(SIGNED, &data_key, &[0; 32]);
        let b = KeySchedule::derive(UNSIGNED, &data_key, &[0; 32]);
        assert_ne!(*a.key.0, *b.key.0);
        assert_eq!(a.commitment, b.commitment);
        let c = KeySchedule::derive(SIGNED, &data_key, &[1; 32]);
        assert_ne!(a.commitment, c.commitment);
    }

    #[test]
    fn commitment_check_accepts_only_the_exact_value() {
        let s = KeySchedule::derive(SIGNED, &DataKey::from_slice(&[7; 32]).unwrap(), &[3; 32]);
        let good = s.commitment;
        assert!(s.commitment_matches(&good));
        for i in 0..32 {
            let mut bad = good;
            bad[i] ^= 0x80;
            assert!(!s.commitment_matches(&bad), "byte {i}");
        }
    }
}

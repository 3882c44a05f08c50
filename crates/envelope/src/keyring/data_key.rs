//! The plaintext data key: zeroized on drop, never formatted.

use std::fmt;

use zeroize::Zeroizing;

use crate::suite::AlgorithmSuite;

/// A 32-byte plaintext data key. Zeroized on drop; `Debug` shows nothing of it.
pub struct DataKey(Zeroizing<[u8; AlgorithmSuite::KEY_LEN]>);

impl DataKey {
    /// Copies a key from `bytes`, or returns `None` if it is not 32 bytes long. The caller
    /// remains responsible for zeroizing `bytes`.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; AlgorithmSuite::KEY_LEN]);
        if bytes.len() != key.len() {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The key bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; AlgorithmSuite::KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::DataKey;

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert!(DataKey::from_slice(&[1; 31]).is_none());
        assert!(DataKey::from_slice(&[1; 33]).is_none());
        assert_eq!(DataKey::from_slice(&[1; 32]).unwrap().expose(), &[1; 32]);
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = DataKey::from_slice(&[0xAB; 32]).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("ab"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }
}

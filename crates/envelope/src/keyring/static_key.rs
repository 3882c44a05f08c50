//! An in-process keyring for tests, fuzzing and benchmarks (feature `test-keyring`).
//! It wraps data keys by XOR with a fixed key: no protection at all, never for real data.

use std::sync::atomic::{AtomicUsize, Ordering};

use zeroize::Zeroizing;

use super::{DataKey, EncryptedDataKey, GeneratedDataKey, Keyring, KeyringError};
use crate::context::EncryptionContext;
use crate::suite::AlgorithmSuite;

/// Provider ID of data keys wrapped by [`StaticKeyring`].
pub const STATIC_PROVIDER_ID: &str = "securepipe-test-static";

/// A keyring holding one fixed wrapping key in memory. **Tests only.**
///
/// It counts its calls, so tests can prove a message was rejected before any key was asked for.
#[derive(Debug, Default)]
pub struct StaticKeyring {
    wrapping_key: [u8; AlgorithmSuite::KEY_LEN],
    generate_calls: AtomicUsize,
    decrypt_calls: AtomicUsize,
}

impl StaticKeyring {
    /// A keyring with this wrapping key.
    #[must_use]
    pub fn new(wrapping_key: [u8; AlgorithmSuite::KEY_LEN]) -> Self {
        Self {
            wrapping_key,
            ..Self::default()
        }
    }

    /// How many times `decrypt_data_key` was called.
    #[must_use]
    pub fn decrypt_calls(&self) -> usize {
        self.decrypt_calls.load(Ordering::SeqCst)
    }

    /// How many times `generate_data_key` was called.
    #[must_use]
    pub fn generate_calls(&self) -> usize {
        self.generate_calls.load(Ordering::SeqCst)
    }

    fn xor(&self, bytes: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            bytes
                .iter()
                .zip(self.wrapping_key.iter())
                .map(|(a, b)| a ^ b)
                .collect(),
        )
    }
}

impl Keyring for StaticKeyring {
    async fn generate_data_key(
        &self,
        _suite: AlgorithmSuite,
        _context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyringError> {
        self.generate_calls.fetch_add(1, Ordering::SeqCst);
        let mut fresh = Zeroizing::new([0u8; AlgorithmSuite::KEY_LEN]);
        getrandom::fill(fresh.as_mut_slice()).map_err(|err| KeyringError::Provider {
            operation: "getrandom",
            key_id: STATIC_PROVIDER_ID.to_owned(),
            source: err.to_string().into(),
        })?;
        let wrapped = self.xor(fresh.as_slice());
        let data_key =
            DataKey::from_slice(fresh.as_slice()).ok_or_else(|| KeyringError::InvalidResponse {
                operation: "generate",
                key_id: STATIC_PROVIDER_ID.to_owned(),
                problem: "wrong key length".to_owned(),
            })?;
        let encrypted = EncryptedDataKey::new(
            STATIC_PROVIDER_ID.to_owned(),
            b"static".to_vec(),
            wrapped.to_vec(),
        );
        Ok(GeneratedDataKey {
            data_key,
            encrypted,
        })
    }

    async fn decrypt_data_key(
        &self,
        _suite: AlgorithmSuite,
        encrypted: &[EncryptedDataKey],
        _context: &EncryptionContext,
    ) -> Result<DataKey, KeyringError> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        encrypted
            .iter()
            .filter(|edk| edk.provider_id() == STATIC_PROVIDER_ID)
            .find_map(|edk| {
                DataKey::from_slice(&self.xor(edk.ciphertext()))
                    .filter(|_| edk.ciphertext().len() == AlgorithmSuite::KEY_LEN)
            })
            .ok_or_else(|| KeyringError::NoAllowedKey {
                found: encrypted.iter().map(EncryptedDataKey::label).collect(),
            })
    }
}

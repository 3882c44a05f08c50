//! Keyrings: where data keys come from. The message format talks to a keyring only through
//! [`Keyring`], so it is tested with an in-process keyring and run with [`KmsKeyring`].

mod arn;
mod data_key;
#[cfg(feature = "kms")]
mod kms;
#[cfg(any(test, feature = "test-keyring"))]
mod static_key;

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;

pub use arn::{KeyArn, KeyArnError};
pub use data_key::DataKey;
#[cfg(feature = "kms")]
pub use kms::{KMS_PROVIDER_ID, KmsKeyring, KmsKeyringError};
#[cfg(any(test, feature = "test-keyring"))]
pub use static_key::StaticKeyring;

use crate::context::EncryptionContext;
use crate::suite::AlgorithmSuite;

/// A data key wrapped by a key provider, as stored in the message header. Not secret.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    provider_id: String,
    provider_info: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl EncryptedDataKey {
    /// A wrapped data key. For AWS KMS the provider ID is `aws-kms` and the provider info is
    /// the UTF-8 key ARN.
    #[must_use]
    pub fn new(provider_id: String, provider_info: Vec<u8>, ciphertext: Vec<u8>) -> Self {
        Self {
            provider_id,
            provider_info,
            ciphertext,
        }
    }

    /// The key provider ID, e.g. `aws-kms`.
    #[must_use]
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// The key provider information, e.g. the KMS key ARN.
    #[must_use]
    pub fn provider_info(&self) -> &[u8] {
        &self.provider_info
    }

    /// The wrapped key.
    #[must_use]
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// `provider-id:provider-info`, with the info shown lossily as UTF-8, for error messages.
    #[must_use]
    pub fn label(&self) -> String {
        format!(
            "{}:{}",
            self.provider_id,
            String::from_utf8_lossy(&self.provider_info)
        )
    }
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field(
                "provider_info",
                &String::from_utf8_lossy(&self.provider_info),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A data key just generated for a new message, with its wrapped form.
#[derive(Debug)]
pub struct GeneratedDataKey {
    /// The plaintext data key (zeroized on drop).
    pub data_key: DataKey,
    /// The same key wrapped by the keyring, for the header.
    pub encrypted: EncryptedDataKey,
}

/// Boxed cause of a keyring failure.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a keyring could not produce a data key. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// None of the message's encrypted data keys is one this keyring may unwrap.
    #[error("no encrypted data key is wrapped by an allowed key (message has: {})", .found.join(", "))]
    NoAllowedKey {
        /// `provider:info` of every encrypted data key in the message.
        found: Vec<String>,
    },
    /// A call to the key provider failed.
    #[error("{operation} with key {key_id} failed")]
    Provider {
        /// The API operation, e.g. `kms:Decrypt`.
        operation: &'static str,
        /// The key the call used.
        key_id: String,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
    /// The provider answered with a different key than the one asked for.
    #[error("{operation} asked for key {expected} but the response names {actual}")]
    KeyMismatch {
        /// The API operation.
        operation: &'static str,
        /// The key asked for.
        expected: String,
        /// The key in the response.
        actual: String,
    },
    /// The provider's response lacks a field or has one of the wrong size.
    #[error("{operation} with key {key_id} returned an invalid response: {problem}")]
    InvalidResponse {
        /// The API operation.
        operation: &'static str,
        /// The key the call used.
        key_id: String,
        /// What is wrong (never the key material).
        problem: String,
    },
    /// Every allowed encrypted data key was tried and failed.
    #[error("all {} allowed encrypted data keys failed: {}", .0.len(), DisplayList(.0))]
    AllFailed(Vec<KeyringError>),
}

struct DisplayList<'a>(&'a [KeyringError]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{err}")?;
            let mut source = err.source();
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

/// A source of data keys.
///
/// Implementations must bind the data key to the whole encryption context they are given
/// (KMS does, through its `EncryptionContext` parameter), and must never log or format the
/// plaintext key.
pub trait Keyring {
    /// Generates and wraps a fresh data key for a message with this suite and context.
    fn generate_data_key(
        &self,
        suite: AlgorithmSuite,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<GeneratedDataKey, KeyringError>> + Send;

    /// Unwraps one of `encrypted` (which this keyring must filter to the keys it allows).
    fn decrypt_data_key(
        &self,
        suite: AlgorithmSuite,
        encrypted: &[EncryptedDataKey],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, KeyringError>> + Send;
}

/// A shared keyring: several encryptors and decryptors can use one client.
impl<K: Keyring + Sync> Keyring for &K {
    fn generate_data_key(
        &self,
        suite: AlgorithmSuite,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<GeneratedDataKey, KeyringError>> + Send {
        (**self).generate_data_key(suite, context)
    }

    fn decrypt_data_key(
        &self,
        suite: AlgorithmSuite,
        encrypted: &[EncryptedDataKey],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, KeyringError>> + Send {
        (**self).decrypt_data_key(suite, encrypted, context)
    }
}

//! Envelope encryption in the **AWS Encryption SDK message format**, version 2, with the two
//! committing suites — 0x0478 (AES-256-GCM, HKDF-SHA512, key commitment) and 0x0578 (the same
//! plus an ECDSA P-384/SHA-384 signature) — and data keys from AWS KMS.
//!
//! Any official AWS Encryption SDK can write what [`Decryptor`] reads, and read what
//! [`Encryptor`] writes. Every other version or suite is rejected with a named error.
//!
//! - [`Decryptor::decrypt_to_vec`]: the whole message into a zeroizing buffer, returned only
//!   when every byte is authenticated. [`Decryptor::start`] streams it frame by frame (see
//!   [`DecryptStream`] for exactly what each chunk guarantees).
//! - [`Decryptor::require`]: pairs the encryption context must carry; checked before any
//!   key provider call.
//! - [`Encryptor`]: suite 0x0578 and 4096-byte frames by default, streaming through
//!   [`EncryptWriter`].
//! - [`KmsKeyring`]: `GenerateDataKey`/`Decrypt` with the full encryption context, only under
//!   an allowed list of key ARNs. Tests use [`Keyring`] implementations of their own.
//!
//! Data keys, derived keys and plaintext buffers are zeroized on drop, and no `Debug`,
//! `Display` or error shows them.

mod cipher;
mod context;
mod decrypt;
mod encrypt;
#[cfg(any(test, feature = "test-keyring"))]
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod kdf;
pub mod keyring;
mod plaintext;
mod signature;
mod suite;
mod wire;

#[cfg(test)]
mod tests;

pub use context::{
    ContextError, EncryptionContext, PUBLIC_KEY_CONTEXT_KEY, RESERVED_PREFIX, RequiredContextError,
};
pub use decrypt::{DecryptError, DecryptStream, Decrypted, Decryptor, Limits, MAX_FRAME_LENGTH};
pub use encrypt::{DEFAULT_FRAME_LENGTH, EncryptError, EncryptWriter, Encryptor};
pub use header::{ContentType, EncodeError, Header, HeaderError, MESSAGE_ID_LEN, MESSAGE_VERSION};
pub use keyring::Keyring;
#[cfg(feature = "kms")]
pub use keyring::KmsKeyring;
pub use plaintext::Plaintext;
pub use signature::InvalidPublicKey;
pub use suite::AlgorithmSuite;

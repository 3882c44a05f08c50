//! Why a message could not be written.

use std::io;

use crate::header::EncodeError;
use crate::keyring::KeyringError;

/// A message could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The caller's context uses the reserved `aws-crypto-` prefix.
    #[error("encryption context key `{key}` uses the reserved prefix `aws-crypto-`")]
    ReservedContextKey {
        /// The key.
        key: String,
    },
    /// Frame length outside 1..=max.
    #[error("frame length {frame_length} is outside 1..={max}")]
    InvalidFrameLength {
        /// The requested length.
        frame_length: u32,
        /// The largest allowed.
        max: u32,
    },
    /// A header field does not fit the format.
    #[error("message header cannot be encoded: {0}")]
    Header(#[from] EncodeError),
    /// No data key.
    #[error("no data key")]
    Keyring(#[from] KeyringError),
    /// The OS random source failed.
    #[error("the OS random source failed: {0}")]
    Random(getrandom::Error),
    /// More frames than sequence numbers (4 GiB frames of the frame length).
    #[error("plaintext needs more frames than sequence numbers")]
    TooManyFrames,
    /// Input beyond AES-GCM's length limits.
    #[error("input exceeds AES-GCM's length limits")]
    GcmLimit,
    /// Signing the message failed.
    #[error("signing the message failed")]
    Signature,
    /// Writing the message failed.
    #[error("writing the message failed")]
    Write(#[source] io::Error),
    /// Reading the plaintext failed.
    #[error("reading the plaintext failed")]
    Read(#[source] io::Error),
}

//! Why a message was rejected. Errors name the field or frame, never key or plaintext bytes.

use std::io;

use crate::context::RequiredContextError;
use crate::header::HeaderError;
use crate::keyring::KeyringError;
use crate::signature::InvalidPublicKey;
use crate::suite::AlgorithmSuite;

/// A message was rejected, or its input or output failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Reading the message failed.
    #[error("reading the message failed")]
    Read(#[source] io::Error),
    /// Writing the plaintext failed.
    #[error("writing the plaintext failed")]
    Write(#[source] io::Error),
    /// The header is malformed or of an unsupported version or suite.
    #[error("invalid message header: {0}")]
    Header(#[from] HeaderError),
    /// The header is longer than [`crate::Limits::max_header_len`].
    #[error("message header exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// The limit.
        max: usize,
    },
    /// More encrypted data keys than [`crate::Limits::max_encrypted_data_keys`].
    #[error("message has {count} encrypted data keys, more than the limit of {max}")]
    TooManyDataKeys {
        /// Keys in the header.
        count: usize,
        /// The limit.
        max: u16,
    },
    /// Frame length above [`crate::Limits::max_frame_length`].
    #[error("frame length {frame_length} exceeds the limit of {max} bytes")]
    FrameLengthTooLarge {
        /// The header's frame length.
        frame_length: u32,
        /// The limit.
        max: u32,
    },
    /// A non-framed body above [`crate::Limits::max_non_framed_len`].
    #[error("non-framed body of {length} bytes exceeds the limit of {max} bytes")]
    NonFramedTooLarge {
        /// The declared length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// The message ends early.
    #[error("message is truncated in the {0}")]
    Truncated(&'static str),
    /// The context lacks or changes a pair the caller requires (checked before any key
    /// provider call).
    #[error(transparent)]
    RequiredContext(#[from] RequiredContextError),
    /// A signed suite without `aws-crypto-public-key` in the context.
    #[error("suite {0} is signed but the encryption context has no `aws-crypto-public-key`")]
    MissingPublicKey(AlgorithmSuite),
    /// An unsigned suite with `aws-crypto-public-key` in the context.
    #[error("suite {0} is unsigned but the encryption context has `aws-crypto-public-key`")]
    UnexpectedPublicKey(AlgorithmSuite),
    /// The verification key is malformed.
    #[error(transparent)]
    InvalidPublicKey(#[from] InvalidPublicKey),
    /// No data key could be obtained.
    #[error("no data key")]
    Keyring(#[from] KeyringError),
    /// The header's key commitment does not match the data key.
    #[error("key commitment in the header does not match the data key")]
    CommitmentMismatch,
    /// The header authentication tag does not verify.
    #[error("header authentication failed")]
    HeaderAuthentication,
    /// A frame has an unexpected sequence number.
    #[error("frame has sequence number {found}, expected {expected}")]
    FrameOutOfOrder {
        /// The expected number.
        expected: u32,
        /// The number in the message.
        found: u32,
    },
    /// The final frame is longer than the frame length.
    #[error(
        "final frame {sequence} holds {length} bytes, more than the frame length {frame_length}"
    )]
    FinalFrameTooLong {
        /// Its sequence number.
        sequence: u32,
        /// Its declared length.
        length: u32,
        /// The header's frame length.
        frame_length: u32,
    },
    /// More frames than sequence numbers.
    #[error("message has more frames than sequence numbers")]
    TooManyFrames,
    /// A frame's authentication tag does not verify.
    #[error("frame {sequence} authentication failed")]
    FrameAuthentication {
        /// Its sequence number.
        sequence: u32,
    },
    /// The non-framed body's authentication tag does not verify.
    #[error("body authentication failed")]
    BodyAuthentication,
    /// The footer signature is malformed or does not verify.
    #[error("message signature verification failed")]
    Signature,
    /// Bytes follow the end of the message.
    #[error("unexpected data after the end of the message")]
    TrailingData,
    /// An earlier call on this stream failed; it cannot continue.
    #[error("decryption already failed")]
    AlreadyFailed,
}

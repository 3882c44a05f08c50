//! The message header (format version 2): parsing and encoding.
//!
//! ```text
//! version (1) = 0x02 | suite id (2) | message id (32) | encryption context (2 + n)
//! | data key count (2) | data keys | content type (1) | frame length (4)
//! | key commitment (32) || header auth tag (16)
//! ```
//! Everything before the tag is the "header body", the AAD of the header tag.

use crate::context::{ContextError, EncryptionContext};
use crate::keyring::EncryptedDataKey;
use crate::suite::AlgorithmSuite;
use crate::wire::{Incomplete, Reader};

/// The only message format version this crate reads and writes.
pub const MESSAGE_VERSION: u8 = 0x02;
/// Length of the message ID in version 2.
pub const MESSAGE_ID_LEN: usize = 32;

/// How the body is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// One IV, one ciphertext, one tag (`0x01`).
    NonFramed,
    /// A sequence of frames of `frame_length` bytes and a final frame (`0x02`).
    Framed,
}

/// A parsed message header. None of its fields is secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    suite: AlgorithmSuite,
    message_id: [u8; MESSAGE_ID_LEN],
    context: EncryptionContext,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    content_type: ContentType,
    frame_length: u32,
    commitment: [u8; AlgorithmSuite::KEY_LEN],
    auth_tag: [u8; AlgorithmSuite::TAG_LEN],
    body_len: usize,
}

/// Why a header is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The input ends inside the header.
    #[error("header is truncated")]
    Truncated,
    /// Not message format version 2.
    #[error("unsupported message format version 0x{0:02X} (only version 2 is supported)")]
    UnsupportedVersion(u8),
    /// Not one of the two committing suites.
    #[error("unsupported algorithm suite 0x{0:04X} (only 0x0478 and 0x0578 are supported)")]
    UnsupportedSuite(u16),
    /// The encryption context field is malformed.
    #[error("header encryption context: {0}")]
    Context(#[from] ContextError),
    /// The header lists no encrypted data key.
    #[error("header has no encrypted data key")]
    NoEncryptedDataKeys,
    /// A key provider ID is not UTF-8.
    #[error("encrypted data key #{index} has a key provider ID that is not UTF-8")]
    ProviderIdNotUtf8 {
        /// Zero-based data key index.
        index: u16,
    },
    /// Content type other than 1 or 2.
    #[error("unknown content type 0x{0:02X}")]
    UnknownContentType(u8),
    /// Frame length inconsistent with the content type.
    #[error("{content_type:?} message has frame length {frame_length}")]
    BadFrameLength {
        /// The declared content type.
        content_type: ContentType,
        /// The declared frame length.
        frame_length: u32,
    },
}

/// Parse failure inside the crate: either more input is needed or the header is invalid.
#[derive(Debug)]
pub(crate) enum ParseError {
    Incomplete,
    Invalid(HeaderError),
}

impl From<Incomplete> for ParseError {
    fn from(Incomplete: Incomplete) -> Self {
        Self::Incomplete
    }
}

impl From<HeaderError> for ParseError {
    fn from(err: HeaderError) -> Self {
        Self::Invalid(err)
    }
}

impl Header {
    /// Parses the header at the start of `message`, returning it and its length in bytes.
    /// This checks the format only: nothing is authenticated until the data key is known.
    ///
    /// # Errors
    /// [`HeaderError`] naming the first invalid field, or `Truncated`.
    pub fn parse(message: &[u8]) -> Result<(Self, usize), HeaderError> {
        match Self::parse_partial(message) {
            Ok(parsed) => Ok(parsed),
            Err(ParseError::Incomplete) => Err(HeaderError::Truncated),
            Err(ParseError::Invalid(err)) => Err(err),
        }
    }

    /// As [`Self::parse`], telling "need more bytes" apart from "invalid".
    pub(crate) fn parse_partial(input: &[u8]) -> Result<(Self, usize), ParseError> {
        let mut r = Reader::new(input);
        let version = r.u8()?;
        if version != MESSAGE_VERSION {
            return Err(HeaderError::UnsupportedVersion(version).into());
        }
        let suite_id = r.u16()?;
        let suite =
            AlgorithmSuite::from_id(suite_id).ok_or(HeaderError::UnsupportedSuite(suite_id))?;
        let message_id = r.array()?;
        let context = EncryptionContext::decode(&mut r)?.map_err(HeaderError::from)?;
        let edk_count = r.u16()?;
        if edk_count == 0 {
            return Err(HeaderError::NoEncryptedDataKeys.into());
        }
        let mut encrypted_data_keys = Vec::with_capacity(usize::from(edk_count));
        for index in 0..edk_count {
            let provider_id = std::str::from_utf8(r.u16_prefixed()?)
                .map_err(|_| HeaderError::ProviderIdNotUtf8 { index })?
                .to_owned();
            let provider_info = r.u16_prefixed()?.to_vec();
            let ciphertext = r.u16_prefixed()?.to_vec();
            encrypted_data_keys.push(EncryptedDataKey::new(
                provider_id,
                provider_info,
                ciphertext,
            ));
        }
        let content_type = match r.u8()? {
            0x01 => ContentType::NonFramed,
            0x02 => ContentType::Framed,
            other => return Err(HeaderError::UnknownContentType(other).into()),
        };
        let frame_length = r.u32()?;
        let frame_length_ok = match content_type {
            ContentType::NonFramed => frame_length == 0,
            ContentType::Framed => frame_length > 0,
        };
        if !frame_length_ok {
            return Err(HeaderError::BadFrameLength {
                content_type,
                frame_length,
            }
            .into());
        }
        let commitment = r.array()?;
        let body_len = r.position();
        let auth_tag = r.array()?;
        let header = Self {
            suite,
            message_id,
            context,
            encrypted_data_keys,
            content_type,
            frame_length,
            commitment,
            auth_tag,
            body_len,
        };
        Ok((header, r.position()))
    }

    /// The algorithm suite.
    #[must_use]
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The 32-byte message ID.
    #[must_use]
    pub fn message_id(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.message_id
    }

    /// The whole encryption context, including `aws-crypto-public-key` for signed suites.
    #[must_use]
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.context
    }

    /// The encrypted data keys, in header order.
    #[must_use]
    pub fn encrypted_data_keys(&self) -> &[EncryptedDataKey] {
        &self.encrypted_data_keys
    }

    /// Framed or non-framed.
    #[must_use]
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// Plaintext bytes per regular frame (0 for non-framed messages).
    #[must_use]
    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    pub(crate) fn commitment(&self) -> &[u8; AlgorithmSuite::KEY_LEN] {
        &self.commitment
    }

    pub(crate) fn auth_tag(&self) -> &[u8; AlgorithmSuite::TAG_LEN] {
        &self.auth_tag
    }

    /// Length of the header body (the bytes the header tag authenticates).
    pub(crate) fn body_len(&self) -> usize {
        self.body_len
    }
}

/// The fields of a header about to be written.
pub(crate) struct NewHeader<'a> {
    pub suite: AlgorithmSuite,
    pub message_id: &'a [u8; MESSAGE_ID_LEN],
    pub context: &'a EncryptionContext,
    pub encrypted_data_keys: &'a [EncryptedDataKey],
    pub content_type: ContentType,
    pub frame_length: u32,
    pub commitment: &'a [u8; AlgorithmSuite::KEY_LEN],
}

/// A header field that does not fit its length prefix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The encryption context does not fit.
    #[error("encryption context cannot be encoded: {0}")]
    Context(#[from] ContextError),
    /// A data key field exceeds 65535 bytes, or there are more than 65535 data keys.
    #[error("encrypted data key {what} exceeds 65535")]
    DataKeyTooLarge {
        /// What overflowed.
        what: &'static str,
    },
}

impl NewHeader<'_> {
    /// The header body: every header byte before the authentication tag.
    pub(crate) fn encode_body(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        out.push(MESSAGE_VERSION);
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(self.message_id);
        self.context.encode_into(&mut out)?;
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| EncodeError::DataKeyTooLarge { what: "count" })?;
        out.extend_from_slice(&count.to_be_bytes());
        for edk in self.encrypted_data_keys {
            for (field, what) in [
                (edk.provider_id().as_bytes(), "provider ID"),
                (edk.provider_info(), "provider info"),
                (edk.ciphertext(), "ciphertext"),
            ] {
                let len = u16::try_from(field.len())
                    .map_err(|_| EncodeError::DataKeyTooLarge { what })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(field);
            }
        }
        out.push(match self.content_type {
            ContentType::NonFramed => 0x01,
            ContentType::Framed => 0x02,
        });
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        out.extend_from_slice(self.commitment);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{ContentType, Header, HeaderError, NewHeader};
    use crate::context::{ContextError, EncryptionContext};
    use crate::keyring::EncryptedDataKey;
    use crate::suite::AlgorithmSuite;

    fn sample(content_type: ContentType, frame_length: u32) -> Vec<u8> {
        let context: EncryptionContext = [("partition", "p1")].into_iter().collect();
        let edks = [EncryptedDataKey::new(
            "aws-kms".into(),
            b"arn".to_vec(),
            vec![7; 5],
        )];
        let mut bytes = NewHeader {
            suite: AlgorithmSuite::AesGcm256HkdfSha512Commit,
            message_id: &[9; 32],
            context: &context,
            encrypted_data_keys: &edks,
            content_type,
            frame_length,
            commitment: &[3; 32],
        }
        .encode_body()
        .unwrap();
        bytes.extend_from_slice(&[5; 16]);
        bytes
    }

    #[test]
    fn encoded_header_parses_back() {
        let bytes = sample(ContentType::Framed, 4096);
        let (header, len) = Header::parse(&bytes).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(header.body_len(), bytes.len() - 16);
        assert_eq!(header.suite(), AlgorithmSuite::AesGcm256HkdfSha512Commit);
        assert_eq!(header.message_id(), &[9; 32]);
        assert_eq!(header.encryption_context().get("partition"), Some("p1"));
        assert_eq!(header.encrypted_data_keys()[0].provider_id(), "aws-kms");
        assert_eq!(header.encrypted_data_keys()[0].provider_info(), b"arn");
        assert_eq!(header.encrypted_data_keys()[0].ciphertext(), &[7; 5]);
        assert_eq!(header.content_type(), ContentType::Framed);
        assert_eq!(header.frame_length(), 4096);
        assert_eq!(header.commitment(), &[3; 32]);
        assert_eq!(header.auth_tag(), &[5; 16]);
    }

    #[test]
    fn every_prefix_is_truncated() {
        let bytes = sample(ContentType::NonFramed, 0);
        for end in 0..bytes.len() {
            assert_eq!(
                Header::parse(&bytes[..end]),
                Err(HeaderError::Truncated),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn invalid_fields_are_named() {
        let good = sample(ContentType::Framed, 4096);
        let edit = |at: usize, value: u8| {
            let mut b = good.clone();
            b[at] = value;
            Header::parse(&b).unwrap_err()
        };
        assert_eq!(edit(0, 1), HeaderError::UnsupportedVersion(1));
        assert_eq!(edit(1, 0x03), HeaderError::UnsupportedSuite(0x0378));
        // AAD length (offset 35) one byte too long: the count then reads past the pairs.
        assert!(matches!(
            edit(36, 22),
            HeaderError::Context(ContextError::LengthMismatch { .. })
        ));
        let edk_count_at = 35 + 2 + 17;
        assert_eq!(edit(edk_count_at + 1, 0), HeaderError::NoEncryptedDataKeys);
        let content_type_at = good.len() - 16 - 32 - 4 - 1;
        assert_eq!(edit(content_type_at, 3), HeaderError::UnknownContentType(3));
        assert_eq!(
            edit(content_type_at, 1),
            HeaderError::BadFrameLength {
                content_type: ContentType::NonFramed,
                frame_length: 4096
            }
        );
        let zero_frame = sample(ContentType::Framed, 0);
        assert_eq!(
            Header::parse(&zero_frame).unwrap_err(),
            HeaderError::BadFrameLength {
                content_type: ContentType::Framed,
                frame_length: 0
            }
        );
    }
}

//! The encryption context: its wire encoding and the caller's required pairs.
//!
//! The context is authenticated metadata, not a secret: it is stored in clear in the header,
//! so it may appear in errors.

use std::collections::BTreeMap;
use std::fmt;

use crate::wire::{Incomplete, Reader};

/// Key under which signed suites store the base64 compressed P-384 verification key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

/// Prefix reserved for the SDK's own context keys; callers may not use it when encrypting.
pub const RESERVED_PREFIX: &str = "aws-crypto-";

/// Key-value pairs bound to a message. Ordered by the keys' UTF-8 bytes, which is the order
/// the wire format requires when writing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

/// Why an encryption context cannot be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    /// The declared length of the context ran past the input.
    #[error("encryption context is truncated")]
    Truncated,
    /// The context field has a length but no pairs.
    #[error("encryption context field is {length} bytes long but holds zero pairs")]
    EmptyPairs {
        /// The declared field length.
        length: u16,
    },
    /// The pairs do not fill the declared length exactly.
    #[error("encryption context pairs use {used} bytes, but the field declares {declared}")]
    LengthMismatch {
        /// The declared field length.
        declared: u16,
        /// Bytes the pairs actually used.
        used: usize,
    },
    /// A key or value is not UTF-8.
    #[error("encryption context {what} #{index} is not valid UTF-8")]
    InvalidUtf8 {
        /// `key` or `value`.
        what: &'static str,
        /// Zero-based pair index.
        index: u16,
    },
    /// The same key appears twice.
    #[error("encryption context has key `{key}` more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A key, a value, the pair count or the whole encoding exceeds a u16 length field.
    #[error("encryption context is too large to encode: {what} exceeds 65535")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
}

impl EncryptionContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a pair.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value stored under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether a pair with this key exists.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The first key that uses the reserved `aws-crypto-` prefix, if any.
    pub(crate) fn reserved_key(&self) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|k| k.starts_with(RESERVED_PREFIX))
    }

    /// Checks that every pair of `required` is present with the same value.
    ///
    /// # Errors
    /// The first required pair that is missing or differs.
    pub fn check_required(&self, required: &EncryptionContext) -> Result<(), RequiredContextError> {
        for (key, expected) in required.iter() {
            match self.get(key) {
                None => {
                    return Err(RequiredContextError::Missing {
                        key: key.to_owned(),
                        expected: expected.to_owned(),
                    });
                }
                Some(actual) if actual != expected => {
                    return Err(RequiredContextError::Mismatch {
                        key: key.to_owned(),
                        expected: expected.to_owned(),
                        actual: actual.to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The map of pairs, as the KMS API takes them.
    #[cfg(feature = "kms")]
    pub(crate) fn to_hash_map(&self) -> std::collections::HashMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Appends the AAD field: u16 length, then (if not empty) u16 count and the sorted pairs.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ContextError> {
        if self.0.is_empty() {
            out.extend_from_slice(&0u16.to_be_bytes());
            return Ok(());
        }
        let mut pairs = Vec::new();
        let count = u16::try_from(self.0.len()).map_err(|_| ContextError::TooLarge {
            what: "the pair count",
        })?;
        pairs.extend_from_slice(&count.to_be_bytes());
        for (key, value) in &self.0 {
            for (field, what) in [(key, "a key"), (value, "a value")] {
                let len =
                    u16::try_from(field.len()).map_err(|_| ContextError::TooLarge { what })?;
                pairs.extend_from_slice(&len.to_be_bytes());
                pairs.extend_from_slice(field.as_bytes());
            }
        }
        let total = u16::try_from(pairs.len()).map_err(|_| ContextError::TooLarge {
            what: "the encoding",
        })?;
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&pairs);
        Ok(())
    }

    /// Reads the AAD field written by [`Self::encode_into`]. Pairs may come in any order (the
    /// raw header bytes are what is authenticated); duplicate keys are rejected.
    pub(crate) fn decode(
        reader: &mut Reader<'_>,
    ) -> Result<Result<Self, ContextError>, Incomplete> {
        let declared = reader.u16()?;
        let field = reader.bytes(usize::from(declared))?;
        Ok(Self::decode_pairs(declared, field))
    }

    fn decode_pairs(declared: u16, field: &[u8]) -> Result<Self, ContextError> {
        let mut map = BTreeMap::new();
        if declared == 0 {
            return Ok(Self(map));
        }
        let mut r = Reader::new(field);
        let count = r.u16().map_err(|Incomplete| ContextError::Truncated)?;
        if count == 0 {
            return Err(ContextError::EmptyPairs { length: declared });
        }
        for index in 0..count {
            let key = r
                .u16_prefixed()
                .map_err(|Incomplete| ContextError::Truncated)?;
            let key = std::str::from_utf8(key)
                .map_err(|_| ContextError::InvalidUtf8 { what: "key", index })?;
            let value = r
                .u16_prefixed()
                .map_err(|Incomplete| ContextError::Truncated)?;
            let value = std::str::from_utf8(value).map_err(|_| ContextError::InvalidUtf8 {
                what: "value",
                index,
            })?;
            if map.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(ContextError::DuplicateKey {
                    key: key.to_owned(),
                });
            }
        }
        if r.position() != field.len() {
            return Err(ContextError::LengthMismatch {
                declared,
                used: r.position(),
            });
        }
        Ok(Self(map))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Display for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str("}")
    }
}

/// A message's context does not carry a pair the caller requires.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequiredContextError {
    /// The key is absent.
    #[error("encryption context lacks required pair `{key}={expected}`")]
    Missing {
        /// The required key.
        key: String,
        /// The required value.
        expected: String,
    },
    /// The key has another value.
    #[error("encryption context has `{key}={actual}`, but `{key}={expected}` is required")]
    Mismatch {
        /// The required key.
        key: String,
        /// The required value.
        expected: String,
        /// The value in the message.
        actual: String,
    },
}

#[cfg(test)]
mod tests {
    use super::{ContextError, EncryptionContext, RequiredContextError};
    use crate::wire::{Incomplete, Reader};

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs.iter().copied().collect()
    }

    fn decode(bytes: &[u8]) -> Result<Result<EncryptionContext, ContextError>, Incomplete> {
        EncryptionContext::decode(&mut Reader::new(bytes))
    }

    #[test]
    fn empty_context_is_a_zero_length() {
        let mut out = Vec::new();
        EncryptionContext::new().encode_into(&mut out).unwrap();
        assert_eq!(out, [0, 0]);
        assert_eq!(decode(&out), Ok(Ok(EncryptionContext::new())));
    }

    #[test]
    fn pairs_are_sorted_by_key_bytes_and_round_trip() {
        let c = ctx(&[("b", "2"), ("a", "1"), ("B", "3")]);
        let mut out = Vec::new();
        c.encode_into(&mut out).unwrap();
        let expected: &[u8] = &[
            0, 20, 0, 3, 0, 1, b'B', 0, 1, b'3', 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2',
        ];
        assert_eq!(out, expected);
        assert_eq!(decode(&out), Ok(Ok(c)));
    }

    #[test]
    fn malformed_encodings_are_named() {
        assert_eq!(
            decode(&[0, 2, 0, 0]),
            Ok(Err(ContextError::EmptyPairs { length: 2 }))
        );
        assert_eq!(decode(&[0, 3, 0, 1, 0]), Ok(Err(ContextError::Truncated)));
        assert_eq!(
            decode(&[0, 9, 0, 1, 0, 1, b'a', 0, 1, b'1', 9]),
            Ok(Err(ContextError::LengthMismatch {
                declared: 9,
                used: 8
            }))
        );
        assert_eq!(
            decode(&[0, 8, 0, 1, 0, 1, 0xFF, 0, 1, b'1']),
            Ok(Err(ContextError::InvalidUtf8 {
                what: "key",
                index: 0
            }))
        );
        assert_eq!(
            decode(&[0, 14, 0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'a', 0, 1, b'2']),
            Ok(Err(ContextError::DuplicateKey { key: "a".into() }))
        );
        assert_eq!(decode(&[0, 8, 0, 1]), Err(Incomplete));
    }

    #[test]
    fn oversized_values_are_refused_when_encoding() {
        let c = ctx(&[("k", &"v".repeat(70_000))]);
        assert_eq!(
            c.encode_into(&mut Vec::new()),
            Err(ContextError::TooLarge { what: "a value" })
        );
    }

    #[test]
    fn required_pairs_must_be_present_and_equal() {
        let message = ctx(&[("partition", "p1"), ("other", "x")]);
        assert_eq!(message.check_required(&ctx(&[("partition", "p1")])), Ok(()));
        assert_eq!(message.check_required(&EncryptionContext::new()), Ok(()));
        assert_eq!(
            message.check_required(&ctx(&[("partition", "p2")])),
            Err(RequiredContextError::Mismatch {
                key: "partition".into(),
                expected: "p2".into(),
                actual: "p1".into()
            })
        );
        assert_eq!(
            message.check_required(&ctx(&[("tenant", "t")])),
            Err(RequiredContextError::Missing {
                key: "tenant".into(),
                expected: "t".into()
            })
        );
    }

    #[test]
    fn reserved_prefix_is_found() {
        assert_eq!(
            ctx(&[("a", "1"), ("aws-crypto-x", "2")]).reserved_key(),
            Some("aws-crypto-x")
        );
        assert_eq!(ctx(&[("aws-cryptox", "1")]).reserved_key(), None);
    }
}

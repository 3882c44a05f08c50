//! AES-256-GCM under the derived message key: the header tag and the body's frames.
//!
//! Body AAD = message ID || content string || sequence number (u32) || plaintext length (u64).

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};

use crate::header::MESSAGE_ID_LEN;
use crate::kdf::DerivedKey;
use crate::suite::AlgorithmSuite;

/// Which kind of body block a ciphertext is; selects the AAD content string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    RegularFrame,
    FinalFrame,
    NonFramed,
}

impl BlockKind {
    fn aad_content(self) -> &'static [u8] {
        match self {
            Self::RegularFrame => b"AWSKMSEncryptionClient Frame",
            Self::FinalFrame => b"AWSKMSEncryptionClient Final Frame",
            Self::NonFramed => b"AWSKMSEncryptionClient Single Block",
        }
    }
}

/// The IV of frame `sequence`: eight zero bytes, then the big-endian sequence number. The
/// non-framed body uses sequence number 1.
pub(crate) fn sequence_iv(sequence: u32) -> [u8; AlgorithmSuite::IV_LEN] {
    let mut iv = [0u8; AlgorithmSuite::IV_LEN];
    iv[8..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// AES-GCM authentication failed (no detail, by design).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuthFailed;

/// The input exceeds AES-GCM's length limits (2^36 - 32 bytes of plaintext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooLong;

/// The message cipher. The AES key schedule is zeroized on drop (`aes-gcm`'s `zeroize`).
pub(crate) struct MessageCipher {
    aead: Aes256Gcm,
    message_id: [u8; MESSAGE_ID_LEN],
}

impl MessageCipher {
    pub(crate) fn new(key: &DerivedKey, message_id: &[u8; MESSAGE_ID_LEN]) -> Self {
        let key_bytes: &[u8; AlgorithmSuite::KEY_LEN] = &key.0;
        let aead = Aes256Gcm::new(key_bytes.into());
        Self {
            aead,
            message_id: *message_id,
        }
    }

    /// The header tag: GCM over an empty plaintext with a zero IV and the header body as AAD.
    pub(crate) fn header_tag(
        &self,
        header_body: &[u8],
    ) -> Result<[u8; AlgorithmSuite::TAG_LEN], TooLong> {
        let nonce = Nonce::from([0u8; AlgorithmSuite::IV_LEN]);
        self.aead
            .encrypt_inout_detached(&nonce, header_body, (&mut [][..]).into())
            .map(Into::into)
            .map_err(|_| TooLong)
    }

    /// Checks the header tag in constant time.
    pub(crate) fn verify_header(
        &self,
        header_body: &[u8],
        tag: &[u8; AlgorithmSuite::TAG_LEN],
    ) -> Result<(), AuthFailed> {
        let nonce = Nonce::from([0u8; AlgorithmSuite::IV_LEN]);
        self.aead
            .decrypt_inout_detached(&nonce, header_body, (&mut [][..]).into(), &Tag::from(*tag))
            .map_err(|_| AuthFailed)
    }

    fn aad(&self, kind: BlockKind, sequence: u32, len: usize) -> Vec<u8> {
        let content = kind.aad_content();
        let mut aad = Vec::with_capacity(MESSAGE_ID_LEN + content.len() + 12);
        aad.extend_from_slice(&self.message_id);
        aad.extend_from_slice(content);
        aad.extend_from_slice(&sequence.to_be_bytes());
        aad.extend_from_slice(&(len as u64).to_be_bytes());
        aad
    }

    /// Encrypts `buffer` in place, returning the tag.
    pub(crate) fn seal(
        &self,
        kind: BlockKind,
        sequence: u32,
        iv: &[u8; AlgorithmSuite::IV_LEN],
        buffer: &mut [u8],
    ) -> Result<[u8; AlgorithmSuite::TAG_LEN], TooLong> {
        let aad = self.aad(kind, sequence, buffer.len());
        self.aead
            .encrypt_inout_detached(&Nonce::from(*iv), &aad, buffer.into())
            .map(Into::into)
            .map_err(|_| TooLong)
    }

    /// Checks the tag, then decrypts `buffer` in place. On failure `buffer` is unchanged.
    pub(crate) fn open(
        &self,
        kind: BlockKind,
        sequence: u32,
        iv: &[u8; AlgorithmSuite::IV_LEN],
        buffer: &mut [u8],
        tag: &[u8; AlgorithmSuite::TAG_LEN],
    ) -> Result<(), AuthFailed> {
        let aad = self.aad(kind, sequence, buffer.len());
        self.aead
            .decrypt_inout_detached(&Nonce::from(*iv), &aad, buffer.into(), &Tag::from(*tag))
            .map_err(|_| AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::{AuthFailed, BlockKind, MessageCipher, sequence_iv};
    use crate::kdf::DerivedKey;
    use zeroize::Zeroizing;

    fn cipher(id: u8) -> MessageCipher {
        MessageCipher::new(&DerivedKey(Zeroizing::new([5; 32])), &[id; 32])
    }

    #[test]
    fn iv_is_zero_padded_sequence_number() {
        assert_eq!(sequence_iv(1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(sequence_iv(0x0102_0304)[8..], [1, 2, 3, 4]);
    }

    #[test]
    fn frames_round_trip_and_aad_binds_kind_sequence_and_message() {
        let c = cipher(1);
        let iv = sequence_iv(3);
        let mut buf = b"hello frame".to_vec();
        let tag = c.seal(BlockKind::RegularFrame, 3, &iv, &mut buf).unwrap();
        assert_ne!(buf, b"hello frame");
        let sealed = buf.clone();
        for (kind, seq, other) in [
            (BlockKind::FinalFrame, 3, cipher(1)),
            (BlockKind::NonFramed, 3, cipher(1)),
            (BlockKind::RegularFrame, 4, cipher(1)),
            (BlockKind::RegularFrame, 3, cipher(2)),
        ] {
            let mut b = sealed.clone();
            assert_eq!(other.open(kind, seq, &iv, &mut b, &tag), Err(AuthFailed));
            assert_eq!(b, sealed, "buffer untouched on failure");
        }
        c.open(BlockKind::RegularFrame, 3, &iv, &mut buf, &tag)
            .unwrap();
        assert_eq!(buf, b"hello frame");
    }

    #[test]
    fn header_tag_verifies_only_the_same_body() {
        let c = cipher(1);
        let tag = c.header_tag(b"header body").unwrap();
        assert_eq!(c.verify_header(b"header body", &tag), Ok(()));
        assert_eq!(c.verify_header(b"header bodz", &tag), Err(AuthFailed));
        let mut bad = tag;
        bad[15] ^= 1;
        assert_eq!(c.verify_header(b"header body", &bad), Err(AuthFailed));
    }
}

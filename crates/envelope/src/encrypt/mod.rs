//! Encryption: [`Encryptor`] writes messages in the same format, frame by frame.

mod error;
mod writer;

pub use error::EncryptError;
pub use writer::EncryptWriter;

use tokio::io::AsyncWrite;

use crate::cipher::MessageCipher;
use crate::context::{EncryptionContext, PUBLIC_KEY_CONTEXT_KEY};
use crate::decrypt::MAX_FRAME_LENGTH;
use crate::header::{ContentType, MESSAGE_ID_LEN, NewHeader};
use crate::kdf::KeySchedule;
use crate::keyring::Keyring;
use crate::signature::{MessageSigner, SignedBytes};
use crate::suite::AlgorithmSuite;

/// Frame length written unless told otherwise (the AWS Encryption SDK default).
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// Encrypts messages with one keyring, suite and frame length.
#[derive(Debug)]
pub struct Encryptor<K> {
    keyring: K,
    suite: AlgorithmSuite,
    frame_length: u32,
}

impl<K: Keyring> Encryptor<K> {
    /// Suite 0x0578, frame length 4096.
    pub fn new(keyring: K) -> Self {
        Self {
            keyring,
            suite: AlgorithmSuite::DEFAULT,
            frame_length: DEFAULT_FRAME_LENGTH,
        }
    }

    /// Selects the algorithm suite.
    #[must_use]
    pub fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = suite;
        self
    }

    /// Sets the frame length, 1 byte to 4 MiB.
    ///
    /// # Errors
    /// `InvalidFrameLength` outside that range.
    pub fn with_frame_length(mut self, frame_length: u32) -> Result<Self, EncryptError> {
        if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
            return Err(EncryptError::InvalidFrameLength {
                frame_length,
                max: MAX_FRAME_LENGTH,
            });
        }
        self.frame_length = frame_length;
        Ok(self)
    }

    /// The keyring.
    pub fn keyring(&self) -> &K {
        &self.keyring
    }

    /// Gets a data key, writes the header to `output`, and returns a writer for the body.
    /// The message is valid only once [`EncryptWriter::finish`] succeeds; an unfinished one
    /// has no final frame and every reader rejects it.
    ///
    /// # Errors
    /// A reserved context key, a context too large to encode, the keyring, the OS random
    /// source, or writing to `output`.
    pub async fn start<W: AsyncWrite + Unpin>(
        &self,
        context: &EncryptionContext,
        output: W,
    ) -> Result<EncryptWriter<W>, EncryptError> {
        if let Some(key) = context.reserved_key() {
            return Err(EncryptError::ReservedContextKey {
                key: key.to_owned(),
            });
        }
        let mut full_context = context.clone();
        let signer = if self.suite.is_signed() {
            let signer = MessageSigner::generate().map_err(EncryptError::Random)?;
            full_context.insert(PUBLIC_KEY_CONTEXT_KEY, signer.public_key_base64());
            Some(signer)
        } else {
            None
        };
        let generated = self
            .keyring
            .generate_data_key(self.suite, &full_context)
            .await?;
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        getrandom::fill(&mut message_id).map_err(EncryptError::Random)?;
        let schedule = KeySchedule::derive(self.suite, &generated.data_key, &message_id);
        drop(generated.data_key);
        let mut header = NewHeader {
            suite: self.suite,
            message_id: &message_id,
            context: &full_context,
            encrypted_data_keys: std::slice::from_ref(&generated.encrypted),
            content_type: ContentType::Framed,
            frame_length: self.frame_length,
            commitment: &schedule.commitment,
        }
        .encode_body()?;
        let cipher = MessageCipher::new(&schedule.key, &message_id);
        drop(schedule);
        let tag = cipher
            .header_tag(&header)
            .map_err(|_| EncryptError::GcmLimit)?;
        header.extend_from_slice(&tag);
        let signer = signer.map(|signer| {
            let mut signed = SignedBytes::default();
            signed.update(&header);
            (signer, signed)
        });
        EncryptWriter::start(output, header, cipher, signer, self.frame_length).await
    }

    /// Encrypts `plaintext` into a new message in memory.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn encrypt_to_vec(
        &self,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        let mut writer = self.start(context, Vec::new()).await?;
        writer.write_all(plaintext).await?;
        writer.finish().await
    }
}

//! Decryption: [`Decryptor`] checks a message's header against the caller's policy, gets the
//! data key, and returns a [`DecryptStream`] that releases the body frame by frame.

mod error;
mod input;
mod open;
mod stream;

pub use error::DecryptError;
pub use stream::DecryptStream;

use tokio::io::AsyncRead;

use crate::context::EncryptionContext;
use crate::header::Header;
use crate::keyring::Keyring;
use crate::plaintext::Plaintext;

/// Upper bounds on what a message may make the decryptor hold in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header accepted, in bytes (default 1 MiB).
    pub max_header_len: usize,
    /// Most encrypted data keys accepted in one header (default 16).
    pub max_encrypted_data_keys: u16,
    /// Largest frame length accepted, in bytes (default 4 MiB); one frame is held at a time.
    pub max_frame_length: u32,
    /// Largest non-framed body accepted, in bytes (default 64 MiB). A non-framed body is
    /// authenticated only as a whole, so it is held in memory in full.
    pub max_non_framed_len: u64,
}

/// Largest frame length written by [`crate::Encryptor`] and accepted by default.
pub const MAX_FRAME_LENGTH: u32 = 4 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_len: 1 << 20,
            max_encrypted_data_keys: 16,
            max_frame_length: MAX_FRAME_LENGTH,
            max_non_framed_len: 64 << 20,
        }
    }
}

/// Decrypts messages with one keyring under one policy (required context and limits).
#[derive(Debug)]
pub struct Decryptor<K> {
    keyring: K,
    required: EncryptionContext,
    limits: Limits,
}

/// A whole decrypted message: every byte authenticated (header, all frames, signature, end).
#[derive(Debug)]
pub struct Decrypted {
    /// The message header (encryption context, suite, data keys).
    pub header: Header,
    /// The plaintext, zeroized on drop.
    pub plaintext: Plaintext,
}

impl<K: Keyring> Decryptor<K> {
    /// A decryptor with no required context and default [`Limits`].
    pub fn new(keyring: K) -> Self {
        Self {
            keyring,
            required: EncryptionContext::new(),
            limits: Limits::default(),
        }
    }

    /// Requires every message to carry `key=value` in its encryption context. A message that
    /// lacks the pair or has another value is rejected before the keyring is called.
    #[must_use]
    pub fn require(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.required.insert(key, value);
        self
    }

    /// Requires every pair of `required` (see [`Self::require`]).
    #[must_use]
    pub fn require_all(mut self, required: &EncryptionContext) -> Self {
        for (key, value) in required.iter() {
            self.required.insert(key, value);
        }
        self
    }

    /// Replaces the default limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &K {
        &self.keyring
    }

    /// Reads and authenticates the header from `input`, checks the required context, gets
    /// the data key, and returns a stream over the body. See [`DecryptStream`] for what is
    /// authenticated when.
    ///
    /// # Errors
    /// Any [`DecryptError`] up to and including header authentication.
    pub async fn start<R: AsyncRead + Unpin>(
        &self,
        input: R,
    ) -> Result<DecryptStream<R>, DecryptError> {
        open::open(&self.keyring, &self.required, &self.limits, input).await
    }

    /// Decrypts a whole message held in memory. The plaintext is returned only if every byte
    /// of the message is authenticated: header, every frame, the signature (0x0578) and the
    /// end of the message (no trailing bytes).
    ///
    /// # Errors
    /// Any [`DecryptError`]; no plaintext is returned then.
    pub async fn decrypt_to_vec(&self, message: &[u8]) -> Result<Decrypted, DecryptError> {
        let stream = self.start(message).await?;
        stream.read_all(message.len()).await
    }
}

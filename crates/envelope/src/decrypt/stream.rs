//! The body, frame by frame.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

use super::input::Input;
use super::{DecryptError, Decrypted, Limits};
use crate::cipher::{BlockKind, MessageCipher};
use crate::header::{ContentType, Header};
use crate::plaintext::Plaintext;
use crate::signature::MessageVerifier;
use crate::suite::AlgorithmSuite;

/// Marks the final frame in place of a sequence number.
const FINAL_FRAME_MARKER: u32 = u32::MAX;
/// Largest plaintext AES-GCM can process under one IV.
const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Frames { next: u32 },
    NonFramed,
    Done,
    Failed,
}

/// The body of a message whose header is authenticated, released frame by frame.
///
/// What each returned chunk guarantees:
/// - Every chunk is AES-GCM-authenticated under this message's key, at its position (the
///   sequence number and frame kind are in the AAD) — nobody without the data key made it.
/// - The **last** chunk is returned only after the whole message is verified: the final frame,
///   the signature over header and body (suite 0x0578) and the end of input (no trailing
///   bytes). [`Self::next_chunk`] returning `Ok(None)` means the message is complete and
///   authentic.
/// - Until then, earlier chunks are **unauthenticated as a message**: the stream may still
///   turn out truncated, and for 0x0578 a holder of the data key (who could forge frames) has
///   not yet been ruled out by the signature. Treat them as provisional — write them to a
///   place you discard on error — until `Ok(None)`, [`Self::read_all`] or [`Self::copy_to`]
///   succeeds.
///
/// Memory: one frame of plaintext (zeroized on drop) plus one read buffer of ciphertext; a
/// non-framed body is held whole (bounded by [`Limits::max_non_framed_len`]).
pub struct DecryptStream<R> {
    input: Input<R>,
    header: Header,
    cipher: MessageCipher,
    verifier: Option<MessageVerifier>,
    plain: Zeroizing<Vec<u8>>,
    max_non_framed_len: u64,
    state: State,
}

impl<R> std::fmt::Debug for DecryptStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptStream")
            .field("suite", &self.header.suite())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> DecryptStream<R> {
    pub(super) fn new(
        input: Input<R>,
        header: Header,
        cipher: MessageCipher,
        verifier: Option<MessageVerifier>,
        limits: &Limits,
    ) -> Self {
        let (state, capacity) = match header.content_type() {
            ContentType::Framed => (State::Frames { next: 1 }, header.frame_length() as usize),
            ContentType::NonFramed => (State::NonFramed, 0),
        };
        Self {
            input,
            header,
            cipher,
            verifier,
            plain: Zeroizing::new(Vec::with_capacity(capacity)),
            max_non_framed_len: limits.max_non_framed_len,
            state,
        }
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next chunk of plaintext, or `None` once the whole message is verified. See the
    /// type's documentation for what a chunk guarantees before `None`.
    ///
    /// # Errors
    /// Any [`DecryptError`] of the body or footer; the stream is then dead
    /// (`AlreadyFailed`) and its plaintext buffer zeroized.
    pub async fn next_chunk(&mut self) -> Result<Option<&[u8]>, DecryptError> {
        match self.advance().await {
            Ok(true) => Ok(Some(&self.plain)),
            Ok(false) => Ok(None),
            Err(err) => {
                self.state = State::Failed;
                self.plain.zeroize();
                Err(err)
            }
        }
    }

    /// Decrypts the rest of the message into memory; returns it only if the whole message
    /// verifies. `capacity` is a size hint (the ciphertext length is an upper bound).
    ///
    /// # Errors
    /// Any [`DecryptError`]; the partial plaintext is zeroized.
    pub async fn read_all(mut self, capacity: usize) -> Result<Decrypted, DecryptError> {
        let mut plaintext = Plaintext::with_capacity(capacity);
        while let Some(chunk) = self.next_chunk().await? {
            plaintext.extend_from_slice(chunk);
        }
        Ok(Decrypted {
            header: self.header,
            plaintext,
        })
    }

    /// Writes the plaintext to `output` as it is released and flushes it; returns the number
    /// of bytes written. On error, `output` holds provisional plaintext and must be discarded.
    ///
    /// # Errors
    /// Any [`DecryptError`], or `Write` if `output` fails.
    pub async fn copy_to<W: AsyncWrite + Unpin>(
        mut self,
        output: &mut W,
    ) -> Result<u64, DecryptError> {
        let mut written = 0u64;
        while let Some(chunk) = self.next_chunk().await? {
            output.write_all(chunk).await.map_err(DecryptError::Write)?;
            written += chunk.len() as u64;
        }
        output.flush().await.map_err(DecryptError::Write)?;
        Ok(written)
    }

    /// Decrypts the next block into `self.plain`; `Ok(true)` if it holds data to release.
    async fn advance(&mut self) -> Result<bool, DecryptError> {
        match self.state {
            State::Done => Ok(false),
            State::Failed => Err(DecryptError::AlreadyFailed),
            State::NonFramed => {
                self.non_framed().await?;
                self.finish().await?;
                Ok(!self.plain.is_empty())
            }
            State::Frames { next } => {
                let marker = self.input.take_u32("frame sequence number").await?;
                if marker == FINAL_FRAME_MARKER {
                    self.final_frame(next).await?;
                    self.finish().await?;
                    Ok(!self.plain.is_empty())
                } else {
                    self.regular_frame(next, marker).await?;
                    // A regular frame can't use the marker value as its sequence number.
                    let after = next.checked_add(1).filter(|&n| n != FINAL_FRAME_MARKER);
                    self.state = State::Frames {
                        next: after.ok_or(DecryptError::TooManyFrames)?,
                    };
                    Ok(true)
                }
            }
        }
    }

    async fn regular_frame(&mut self, expected: u32, found: u32) -> Result<(), DecryptError> {
        if found != expected {
            return Err(DecryptError::FrameOutOfOrder { expected, found });
        }
        let len = self.header.frame_length() as usize;
        self.block(BlockKind::RegularFrame, expected, len, "frame")
            .await
    }

    async fn final_frame(&mut self, expected: u32) -> Result<(), DecryptError> {
        let found = self.input.take_u32("final frame").await?;
        if found != expected {
            return Err(DecryptError::FrameOutOfOrder { expected, found });
        }
        let iv_and_len: [u8; AlgorithmSuite::IV_LEN + 4] =
            self.input.take_array("final frame").await?;
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&iv_and_len[AlgorithmSuite::IV_LEN..]);
        let length = u32::from_be_bytes(len_bytes);
        let frame_length = self.header.frame_length();
        if length > frame_length {
            return Err(DecryptError::FinalFrameTooLong {
                sequence: found,
                length,
                frame_length,
            });
        }
        let mut iv = [0u8; AlgorithmSuite::IV_LEN];
        iv.copy_from_slice(&iv_and_len[..AlgorithmSuite::IV_LEN]);
        self.open_block(
            BlockKind::FinalFrame,
            expected,
            iv,
            length as usize,
            "final frame",
        )
        .await
    }

    async fn non_framed(&mut self) -> Result<(), DecryptError> {
        let iv = self.input.take_array("non-framed body").await?;
        let length = u64::from_be_bytes(self.input.take_array("non-framed body").await?);
        let max = self.max_non_framed_len.min(GCM_MAX_PLAINTEXT);
        let too_large = DecryptError::NonFramedTooLarge { length, max };
        if length > max {
            return Err(too_large);
        }
        let len = usize::try_from(length).map_err(|_| too_large)?;
        self.plain = Zeroizing::new(Vec::with_capacity(len));
        self.open_block(BlockKind::NonFramed, 1, iv, len, "non-framed body")
            .await
    }

    /// A regular frame's IV, ciphertext and tag.
    async fn block(
        &mut self,
        kind: BlockKind,
        sequence: u32,
        len: usize,
        part: &'static str,
    ) -> Result<(), DecryptError> {
        let iv = self.input.take_array(part).await?;
        self.open_block(kind, sequence, iv, len, part).await
    }

    /// Reads `len` ciphertext bytes and the tag, and decrypts into `self.plain`.
    async fn open_block(
        &mut self,
        kind: BlockKind,
        sequence: u32,
        iv: [u8; AlgorithmSuite::IV_LEN],
        len: usize,
        part: &'static str,
    ) -> Result<(), DecryptError> {
        // Move the ciphertext piece by piece so the read buffer never holds a whole block.
        self.plain.clear();
        let mut remaining = len;
        while remaining > 0 {
            if self.input.available().is_empty() && !self.input.fill(1).await? {
                return Err(DecryptError::Truncated(part));
            }
            let piece = remaining.min(self.input.available().len());
            self.plain.extend_from_slice(self.input.consume(piece));
            remaining -= piece;
        }
        let tag = self.input.take_array(part).await?;
        self.cipher
            .open(kind, sequence, &iv, &mut self.plain, &tag)
            .map_err(|_| match kind {
                BlockKind::NonFramed => DecryptError::BodyAuthentication,
                BlockKind::RegularFrame | BlockKind::FinalFrame => {
                    DecryptError::FrameAuthentication { sequence }
                }
            })
    }

    /// After the last block: verify the signature (if any) and the end of input.
    async fn finish(&mut self) -> Result<(), DecryptError> {
        let signed = self.input.signed.take();
        if let Some(verifier) = &self.verifier {
            // `open` turns hashing on whenever there is a verifier.
            let signed = signed.ok_or(DecryptError::Signature)?;
            let len = u16::from_be_bytes(self.input.take_array("footer").await?);
            let signature = self.input.take(usize::from(len), "footer").await?;
            verifier
                .verify(signed, signature)
                .map_err(|_| DecryptError::Signature)?;
        }
        if !self.input.at_end().await? {
            return Err(DecryptError::TrailingData);
        }
        self.state = State::Done;
        Ok(())
    }
}

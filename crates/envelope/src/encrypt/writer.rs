//! The body writer: buffers at most one frame of plaintext, then seals and writes it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::EncryptError;
use crate::cipher::{BlockKind, MessageCipher, sequence_iv};
use crate::signature::{MessageSigner, SignedBytes};

/// Marks the final frame in place of a sequence number.
const FINAL_FRAME_MARKER: u32 = u32::MAX;

/// Writes a message body frame by frame. Full frames are written as soon as they are full;
/// [`Self::finish`] writes the final frame (empty if the plaintext filled the last regular
/// frame, as the AWS Encryption SDK does) and the signature.
pub struct EncryptWriter<W> {
    output: W,
    cipher: MessageCipher,
    signer: Option<(MessageSigner, SignedBytes)>,
    pending: Zeroizing<Vec<u8>>,
    frame_length: usize,
    next_sequence: u32,
    staging: Vec<u8>,
}

impl<W> std::fmt::Debug for EncryptWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptWriter")
            .field("frame_length", &self.frame_length)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl<W: AsyncWrite + Unpin> EncryptWriter<W> {
    pub(super) async fn start(
        mut output: W,
        header: Vec<u8>,
        cipher: MessageCipher,
        signer: Option<(MessageSigner, SignedBytes)>,
        frame_length: u32,
    ) -> Result<Self, EncryptError> {
        output
            .write_all(&header)
            .await
            .map_err(EncryptError::Write)?;
        let frame_length = frame_length as usize;
        Ok(Self {
            output,
            cipher,
            signer,
            pending: Zeroizing::new(Vec::with_capacity(frame_length)),
            frame_length,
            next_sequence: 1,
            staging: Vec::with_capacity(frame_length + 64),
        })
    }

    /// Encrypts `data`, writing every frame it completes.
    ///
    /// # Errors
    /// `Write`, or `TooManyFrames`.
    pub async fn write_all(&mut self, mut data: &[u8]) -> Result<(), EncryptError> {
        while !data.is_empty() {
            let room = self.frame_length - self.pending.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.pending.extend_from_slice(now);
            data = rest;
            if self.pending.len() == self.frame_length {
                self.emit(BlockKind::RegularFrame).await?;
            }
        }
        Ok(())
    }

    /// Encrypts everything `input` yields; returns the number of plaintext bytes.
    ///
    /// # Errors
    /// `Read`, `Write`, or `TooManyFrames`.
    pub async fn copy_from<R: AsyncRead + Unpin>(
        &mut self,
        input: &mut R,
    ) -> Result<u64, EncryptError> {
        let mut chunk = Zeroizing::new(vec![0u8; self.frame_length.clamp(4096, 64 << 10)]);
        let mut total = 0u64;
        loop {
            let read = input.read(&mut chunk).await.map_err(EncryptError::Read)?;
            if read == 0 {
                return Ok(total);
            }
            self.write_all(&chunk[..read]).await?;
            total += read as u64;
        }
    }

    /// Writes the final frame and the signature, flushes, and returns the output.
    ///
    /// # Errors
    /// `Write`, `TooManyFrames` or `Signature`.
    pub async fn finish(mut self) -> Result<W, EncryptError> {
        self.emit(BlockKind::FinalFrame).await?;
        if let Some((signer, signed)) = self.signer.take() {
            let signature = signer.sign(signed).map_err(|_| EncryptError::Signature)?;
            let len = u16::try_from(signature.len()).map_err(|_| EncryptError::Signature)?;
            self.staging.clear();
            self.staging.extend_from_slice(&len.to_be_bytes());
            self.staging.extend_from_slice(&signature);
            self.output
                .write_all(&self.staging)
                .await
                .map_err(EncryptError::Write)?;
        }
        self.output.flush().await.map_err(EncryptError::Write)?;
        Ok(self.output)
    }

    /// Seals `pending` as the next frame and writes it.
    async fn emit(&mut self, kind: BlockKind) -> Result<(), EncryptError> {
        let sequence = self.next_sequence;
        if sequence == FINAL_FRAME_MARKER {
            return Err(EncryptError::TooManyFrames);
        }
        let iv = sequence_iv(sequence);
        let tag = self
            .cipher
            .seal(kind, sequence, &iv, &mut self.pending)
            .map_err(|_| EncryptError::GcmLimit)?;
        // `pending` now holds ciphertext.
        self.staging.clear();
        if kind == BlockKind::FinalFrame {
            self.staging
                .extend_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
        }
        self.staging.extend_from_slice(&sequence.to_be_bytes());
        self.staging.extend_from_slice(&iv);
        if kind == BlockKind::FinalFrame {
            let len = u32::try_from(self.pending.len()).map_err(|_| EncryptError::GcmLimit)?;
            self.staging.extend_from_slice(&len.to_be_bytes());
        }
        self.staging.extend_from_slice(&self.pending);
        self.staging.extend_from_slice(&tag);
        self.pending.clear();
        if let Some((_, signed)) = &mut self.signer {
            signed.update(&self.staging);
        }
        self.output
            .write_all(&self.staging)
            .await
            .map_err(EncryptError::Write)?;
        self.next_sequence = sequence.wrapping_add(1);
        Ok(())
    }
}

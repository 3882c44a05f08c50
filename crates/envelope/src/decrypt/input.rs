//! Buffered reading of the ciphertext, hashing the signed bytes as they are consumed.
//! Holds at most what it is asked for plus one read chunk.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::DecryptError;
use crate::signature::SignedBytes;

/// Bytes requested from the reader at a time, beyond what is needed.
const READ_CHUNK: usize = 64 << 10;

pub(crate) struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    /// SHA-384 of every byte consumed while set (header and body of signed messages).
    pub(crate) signed: Option<SignedBytes>,
}

impl<R: AsyncRead + Unpin> Input<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            pos: 0,
            signed: None,
        }
    }

    /// Buffered, unconsumed bytes.
    pub(crate) fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until at least `n` bytes are buffered. `Ok(false)` if the input ends first.
    pub(crate) async fn fill(&mut self, n: usize) -> Result<bool, DecryptError> {
        while self.buf.len() - self.pos < n {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let missing = n - self.buf.len();
            self.buf.reserve(missing.max(READ_CHUNK));
            let read = self
                .reader
                .read_buf(&mut self.buf)
                .await
                .map_err(DecryptError::Read)?;
            if read == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Consumes `n` buffered bytes (hashing them if signing is on).
    pub(crate) fn consume(&mut self, n: usize) -> &[u8] {
        let end = (self.pos + n).min(self.buf.len());
        let bytes = &self.buf[self.pos..end];
        if let Some(signed) = &mut self.signed {
            signed.update(bytes);
        }
        self.pos = end;
        bytes
    }

    /// Reads and consumes exactly `n` bytes; `Truncated(part)` if the input ends first.
    pub(crate) async fn take(
        &mut self,
        n: usize,
        part: &'static str,
    ) -> Result<&[u8], DecryptError> {
        if !self.fill(n).await? {
            return Err(DecryptError::Truncated(part));
        }
        Ok(self.consume(n))
    }

    pub(crate) async fn take_array<const N: usize>(
        &mut self,
        part: &'static str,
    ) -> Result<[u8; N], DecryptError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, part).await?);
        Ok(out)
    }

    pub(crate) async fn take_u32(&mut self, part: &'static str) -> Result<u32, DecryptError> {
        Ok(u32::from_be_bytes(self.take_array(part).await?))
    }

    /// Whether the input has ended with every byte consumed.
    pub(crate) async fn at_end(&mut self) -> Result<bool, DecryptError> {
        Ok(!self.fill(1).await?)
    }
}

//! A growable plaintext buffer that never leaves a copy behind: growth copies into a new
//! allocation and zeroizes the old one (a plain `Vec` would free it unzeroized).

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

/// Decrypted bytes. Zeroized on drop (including spare capacity); `Debug` shows only the length.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.0.len().saturating_add(bytes.len());
        if needed > self.0.capacity() {
            let capacity = needed.max(self.0.capacity().saturating_mul(2));
            let mut bigger = Zeroizing::new(Vec::with_capacity(capacity));
            bigger.extend_from_slice(&self.0);
            // The old allocation is zeroized when `bigger` replaces it.
            self.0 = bigger;
        }
        self.0.extend_from_slice(bytes);
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying zeroizing vector.
    #[must_use]
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Plaintext;

    #[test]
    fn grows_keeping_content_and_hides_it_from_debug() {
        let mut p = Plaintext::with_capacity(2);
        for chunk in [&b"se"[..], b"cret", b"", b"-bytes"] {
            p.extend_from_slice(chunk);
        }
        assert_eq!(p.as_bytes(), b"secret-bytes");
        assert_eq!(format!("{p:?}"), "Plaintext(12 bytes)");
        assert_eq!(&*p.into_inner(), b"secret-bytes");
    }
}

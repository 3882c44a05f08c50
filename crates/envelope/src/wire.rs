//! Big-endian field reading for the parsers. Running out of input is `Incomplete`, which
//! a streaming caller answers by reading more and a whole-buffer caller reports as
//! truncation.

/// The input ended before the field being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Incomplete;

/// A cursor over bytes that have been read so far.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], Incomplete> {
        let end = self.pos.checked_add(len).ok_or(Incomplete)?;
        let out = self.data.get(self.pos..end).ok_or(Incomplete)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Incomplete> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Incomplete> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Incomplete> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Incomplete> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A field preceded by its u16 length.
    pub(crate) fn u16_prefixed(&mut self) -> Result<&'a [u8], Incomplete> {
        let len = self.u16()?;
        self.bytes(usize::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::{Incomplete, Reader};

    #[test]
    fn reads_big_endian_fields_in_order() {
        let data = [1, 0, 2, 0, 0, 0, 3, 0, 2, b'h', b'i'];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.u16_prefixed(), Ok(&b"hi"[..]));
        assert_eq!(r.position(), data.len());
        assert_eq!(r.u8(), Err(Incomplete));
    }

    #[test]
    fn short_input_is_incomplete() {
        let mut r = Reader::new(&[0, 5, 1, 2]);
        assert_eq!(r.u16_prefixed(), Err(Incomplete));
        assert_eq!(r.bytes(usize::MAX), Err(Incomplete));
        assert_eq!(r.u32(), Err(Incomplete));
    }
}

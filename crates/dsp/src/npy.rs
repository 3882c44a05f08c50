//! `.npy` output (NumPy format version 1.0): a little-endian float32 matrix in C order.

use std::io::{self, Write};

use crate::extractor::FeatureMatrix;

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
/// Magic, version and header length precede the header text; the total is padded to this.
const ALIGN: usize = 64;
/// Values are encoded this many bytes at a time (on the stack; larger than a `BufWriter`'s
/// buffer, so a file gets few large writes).
const CHUNK_BYTES: usize = 65_536;

/// Writes `features` as a `.npy` array of dtype `<f4` and shape `(rows, frames)`, as
/// `numpy.save` would (so `numpy.load` returns an equal array).
pub fn write_npy(mut writer: impl Write, features: &FeatureMatrix) -> io::Result<()> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        features.rows(),
        features.frames()
    );
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header.extend(std::iter::repeat_n(
        ' ',
        unpadded.next_multiple_of(ALIGN) - unpadded,
    ));
    header.push('\n');
    let header_len = u16::try_from(header.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "npy header too long"))?;
    writer.write_all(MAGIC)?;
    writer.write_all(&header_len.to_le_bytes())?;
    writer.write_all(header.as_bytes())?;
    // Encoded through one small buffer: no second copy of the matrix is allocated.
    let mut buffer = [0u8; CHUNK_BYTES];
    for values in features.as_slice().chunks(CHUNK_BYTES / 4) {
        for (bytes, value) in buffer.chunks_exact_mut(4).zip(values) {
            bytes.copy_from_slice(&value.to_le_bytes());
        }
        writer.write_all(&buffer[..values.len() * 4])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureExtractor, FeatureParams};

    #[test]
    fn header_is_aligned_and_data_follows_in_c_order() {
        let mut params = FeatureParams::new(8_000);
        params.n_mfcc = 3;
        let features = FeatureExtractor::new(params)
            .expect("params")
            .mfcc(&[0.5; 1200])
            .expect("mfcc");
        let mut out = Vec::new();
        write_npy(&mut out, &features).expect("write");

        assert_eq!(&out[..8], MAGIC);
        let header_len = usize::from(u16::from_le_bytes([out[8], out[9]]));
        let data_start = 10 + header_len;
        assert_eq!(data_start % ALIGN, 0);
        let header = std::str::from_utf8(&out[10..data_start]).expect("ascii");
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }"));
        assert!(header.ends_with('\n'));
        let values: Vec<f32> = out[data_start..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, features.as_slice());
    }

    #[test]
    fn data_longer_than_one_chunk_is_encoded_whole() {
        let signal: Vec<f32> = (0..1_000_000)
            .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let features = FeatureExtractor::new(FeatureParams::new(8_000))
            .expect("params")
            .mfcc(&signal)
            .expect("mfcc");
        assert!(features.as_slice().len() * 4 > 2 * CHUNK_BYTES);
        let mut out = Vec::new();
        write_npy(&mut out, &features).expect("write");
        let header_len = usize::from(u16::from_le_bytes([out[8], out[9]]));
        let values: Vec<f32> = out[10 + header_len..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, features.as_slice());
    }
}

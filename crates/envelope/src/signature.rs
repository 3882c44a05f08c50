//! The footer signature of suite 0x0578: ECDSA P-384 over the SHA-384 of every header and
//! body byte, DER-encoded; the verification key travels in the encryption context as the
//! base64 of its compressed SEC1 point.
//!
//! Chosen on the numbers of `tests/bench/envelope.sh` (README, "Extract-and-shred"), one core
//! of an AMD EPYC: SHA-384 by `sha2` (its AVX2 backend, ~0.6 GB/s; AWS-LC's is no faster on
//! AMD, where it skips its AVX code), verification by AWS-LC (`aws-lc-rs`, ~190 us against
//! `p384`'s ~830 us; already in the tree through rustls). Decryption pays both for every
//! message; signing (once per message, `securepipe encrypt`) stays with `p384`.

use aws_lc_rs::digest::{Digest as LcDigest, SHA384};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::ecdsa::{Signature, SigningKey};
use p384::elliptic_curve::Generate as _;
use sha2::{Digest, Sha384};

/// Length of a compressed P-384 point.
const COMPRESSED_POINT_LEN: usize = 49;

/// The verification key in the context is not a compressed P-384 point in base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`aws-crypto-public-key` is not a base64 compressed P-384 public key")]
pub struct InvalidPublicKey;

/// The footer signature is malformed or does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadSignature;

/// Running SHA-384 of the signed bytes.
#[derive(Clone, Default)]
pub(crate) struct SignedBytes(Sha384);

impl SignedBytes {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Signs one message. The private key is zeroized on drop (by `p384`).
pub(crate) struct MessageSigner {
    key: SigningKey,
}

impl MessageSigner {
    pub(crate) fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self {
            key: SigningKey::try_generate()?,
        })
    }

    /// The context value for `aws-crypto-public-key`.
    pub(crate) fn public_key_base64(&self) -> String {
        BASE64.encode(self.key.verifying_key().to_sec1_point(true).as_bytes())
    }

    /// The DER signature over everything hashed into `signed`.
    pub(crate) fn sign(&self, signed: SignedBytes) -> Result<Vec<u8>, BadSignature> {
        let digest = signed.0.finalize();
        let signature: Signature = self.key.sign_prehash(&digest).map_err(|_| BadSignature)?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// Verifies one message's footer.
#[derive(Debug)]
pub(crate) struct MessageVerifier {
    key: ParsedPublicKey,
}

impl MessageVerifier {
    pub(crate) fn from_base64(value: &str) -> Result<Self, InvalidPublicKey> {
        let bytes = BASE64.decode(value).map_err(|_| InvalidPublicKey)?;
        if bytes.len() != COMPRESSED_POINT_LEN {
            return Err(InvalidPublicKey);
        }
        // Parsing checks that the point is on the curve.
        let key =
            ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, bytes).map_err(|_| InvalidPublicKey)?;
        Ok(Self { key })
    }

    pub(crate) fn verify(&self, signed: SignedBytes, der: &[u8]) -> Result<(), BadSignature> {
        let digest =
            LcDigest::import_less_safe(&signed.0.finalize(), &SHA384).map_err(|_| BadSignature)?;
        self.key
            .verify_digest_sig(&digest, der)
            .map_err(|_| BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::{BadSignature, InvalidPublicKey, MessageSigner, MessageVerifier, SignedBytes};

    fn hashed(parts: &[&[u8]]) -> SignedBytes {
        let mut s = SignedBytes::default();
        for p in parts {
            s.update(p);
        }
        s
    }

    #[test]
    fn signature_verifies_over_the_same_bytes_however_split() {
        let signer = MessageSigner::generate().unwrap();
        let public = signer.public_key_base64();
        assert_eq!(public.len(), 68, "49 bytes in base64");
        let der = signer.sign(hashed(&[b"header", b"body"])).unwrap();
        let verifier = MessageVerifier::from_base64(&public).unwrap();
        assert_eq!(verifier.verify(hashed(&[b"head", b"erbody"]), &der), Ok(()));
        assert_eq!(
            verifier.verify(hashed(&[b"headerbodz"]), &der),
            Err(BadSignature)
        );
        let mut bad = der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verifier.verify(hashed(&[b"headerbody"]), &bad),
            Err(BadSignature)
        );
        assert_eq!(
            verifier.verify(hashed(&[b"headerbody"]), &der[..10]),
            Err(BadSignature)
        );
    }

    #[test]
    fn another_key_does_not_verify() {
        let der = MessageSigner::generate()
            .unwrap()
            .sign(hashed(&[b"m"]))
            .unwrap();
        let other = MessageSigner::generate().unwrap().public_key_base64();
        let verifier = MessageVerifier::from_base64(&other).unwrap();
        assert_eq!(verifier.verify(hashed(&[b"m"]), &der), Err(BadSignature));
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        let good = MessageSigner::generate().unwrap().public_key_base64();
        assert!(MessageVerifier::from_base64(&good).is_ok());
        for bad in [
            "",
            "not base64!",
            &good[..64],
            "AAAA",
            &format!("{good}AAAA"),
        ] {
            assert_eq!(
                MessageVerifier::from_base64(bad).unwrap_err(),
                InvalidPublicKey,
                "{bad}"
            );
        }
        // A valid base64 49-byte string that is not on the curve.
        let off_curve = format!("Aw{}", "A".repeat(66));
        assert!(MessageVerifier::from_base64(&off_curve).is_err());
    }
}

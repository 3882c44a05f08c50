//! Helpers shared by the whole-message tests.

use crate::keyring::StaticKeyring;
use crate::{AlgorithmSuite, EncryptionContext, Encryptor};

pub(crate) const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::AesGcm256HkdfSha512Commit,
    AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
];

pub(crate) fn keyring() -> StaticKeyring {
    StaticKeyring::new([0x5A; 32])
}

pub(crate) fn context(partition: &str) -> EncryptionContext {
    [("partition", partition), ("purpose", "test")]
        .into_iter()
        .collect()
}

/// Deterministic, non-repeating test plaintext.
pub(crate) fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

pub(crate) fn encrypt(
    suite: AlgorithmSuite,
    frame_length: u32,
    ctx: &EncryptionContext,
    data: &[u8],
) -> Vec<u8> {
    let encryptor = Encryptor::new(keyring())
        .with_suite(suite)
        .with_frame_length(frame_length)
        .expect("frame length");
    block_on(encryptor.encrypt_to_vec(ctx, data)).expect("encrypt")
}

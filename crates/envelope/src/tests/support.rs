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

/// A non-framed message (the encryptor only writes framed ones; the Python SDK writes these
/// with `frame_length=0`). Built from the same parts the encryptor uses.
pub(crate) fn encrypt_non_framed(
    suite: AlgorithmSuite,
    ctx: &EncryptionContext,
    data: &[u8],
) -> Vec<u8> {
    use crate::cipher::{BlockKind, MessageCipher, sequence_iv};
    use crate::context::PUBLIC_KEY_CONTEXT_KEY;
    use crate::header::{ContentType, NewHeader};
    use crate::kdf::KeySchedule;
    use crate::keyring::Keyring;
    use crate::signature::{MessageSigner, SignedBytes};

    let mut full = ctx.clone();
    let signer = suite
        .is_signed()
        .then(|| MessageSigner::generate().unwrap());
    if let Some(signer) = &signer {
        full.insert(PUBLIC_KEY_CONTEXT_KEY, signer.public_key_base64());
    }
    let generated = block_on(keyring().generate_data_key(suite, &full)).unwrap();
    let message_id = [0x42; 32];
    let schedule = KeySchedule::derive(suite, &generated.data_key, &message_id);
    let mut message = NewHeader {
        suite,
        message_id: &message_id,
        context: &full,
        encrypted_data_keys: std::slice::from_ref(&generated.encrypted),
        content_type: ContentType::NonFramed,
        frame_length: 0,
        commitment: &schedule.commitment,
    }
    .encode_body()
    .unwrap();
    let cipher = MessageCipher::new(&schedule.key, &message_id);
    let tag = cipher.header_tag(&message).unwrap();
    message.extend_from_slice(&tag);
    let iv = sequence_iv(1);
    let mut body = data.to_vec();
    let tag = cipher
        .seal(BlockKind::NonFramed, 1, &iv, &mut body)
        .unwrap();
    message.extend_from_slice(&iv);
    message.extend_from_slice(&(data.len() as u64).to_be_bytes());
    message.extend_from_slice(&body);
    message.extend_from_slice(&tag);
    if let Some(signer) = signer {
        let mut signed = SignedBytes::default();
        signed.update(&message);
        let der = signer.sign(signed).unwrap();
        message.extend_from_slice(&(der.len() as u16).to_be_bytes());
        message.extend_from_slice(&der);
    }
    message
}

/// An `AsyncRead` over a slice that returns at most `step` bytes per read.
pub(crate) struct Trickle<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        let (now, rest) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        std::task::Poll::Ready(Ok(()))
    }
}

/// Decrypts `message` with the test keyring; `Ok` holds the plaintext.
pub(crate) fn decrypt(message: &[u8]) -> Result<Vec<u8>, crate::DecryptError> {
    let decryptor = crate::Decryptor::new(keyring());
    block_on(decryptor.decrypt_to_vec(message)).map(|d| d.plaintext.as_bytes().to_vec())
}

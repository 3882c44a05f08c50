//! The body of the `parse_message` fuzz target (crates/envelope/fuzz), shared with the stable
//! random-input test so both exercise the same code. Feature `test-keyring`; not an API.
//!
//! The first input byte picks what the rest is:
//! - even: a whole message, decrypted with [`StaticKeyring`] (header parser, policy, limits,
//!   and for inputs mutated from a valid message, the key schedule and body);
//! - odd: a message body after a fixed, valid, authenticated header, so the frame parser
//!   (sequence numbers, final frame lengths, non-framed lengths, footer, truncation) is
//!   reached even though the fuzzer cannot forge a header tag.
//!
//! Invariants checked: nothing panics; the whole-message and streaming decryptors agree; a
//! message that decrypts re-encrypts and decrypts to the same bytes under the same header
//! shape; nothing is released by the stream after an error.

use std::sync::OnceLock;

use crate::keyring::StaticKeyring;
use crate::{AlgorithmSuite, Decryptor, EncryptionContext, Encryptor, Header, Limits};

/// Wrapping key of the keyring every fuzz message uses.
pub const FUZZ_WRAPPING_KEY: [u8; 32] = [0x5A; 32];

/// Limits small enough that a fuzz input cannot make one execution slow.
const LIMITS: Limits = Limits {
    max_header_len: 64 << 10,
    max_encrypted_data_keys: 4,
    max_frame_length: 1 << 16,
    max_non_framed_len: 1 << 16,
};

/// Headers the odd mode prepends: framed (frame length 16) for both suites, and non-framed.
fn fixed_headers() -> &'static [Vec<u8>] {
    static HEADERS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let context: EncryptionContext = [("partition", "fuzz")].into_iter().collect();
        [
            AlgorithmSuite::AesGcm256HkdfSha512Commit,
            AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
        ]
        .into_iter()
        .filter_map(|suite| {
            let encryptor = Encryptor::new(StaticKeyring::new(FUZZ_WRAPPING_KEY))
                .with_suite(suite)
                .with_frame_length(16)
                .ok()?;
            let message = block_on(encryptor.encrypt_to_vec(&context, b"")).ok()?;
            let (_, len) = Header::parse(&message).ok()?;
            Some(message[..len].to_vec())
        })
        .collect()
    })
}

/// Valid messages to start fuzzing from (also written as the fuzz corpus seed).
#[must_use]
pub fn seed_messages() -> Vec<Vec<u8>> {
    let context: EncryptionContext = [("partition", "fuzz"), ("tenant", "t")]
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for suite in [
        AlgorithmSuite::AesGcm256HkdfSha512Commit,
        AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
    ] {
        for (len, frame) in [(0usize, 16u32), (40, 16), (32, 16), (100, 4096)] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let Ok(encryptor) = Encryptor::new(StaticKeyring::new(FUZZ_WRAPPING_KEY))
                .with_suite(suite)
                .with_frame_length(frame)
            else {
                continue;
            };
            if let Ok(message) = block_on(encryptor.encrypt_to_vec(&context, &data)) {
                let mut input = vec![0u8];
                input.extend_from_slice(&message);
                out.push(input);
            }
        }
    }
    out
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        // One runtime per thread: building one per execution would dominate the fuzz loop.
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            // A current-thread runtime with no drivers enabled cannot fail to build.
            .expect("current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// One fuzz execution. Panics only if an invariant is broken.
pub fn check(input: &[u8]) {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let message = if selector % 2 == 0 {
        rest.to_vec()
    } else {
        let headers = fixed_headers();
        let Some(header) = headers.get(usize::from(selector >> 1) % headers.len().max(1)) else {
            return;
        };
        let mut message = header.clone();
        message.extend_from_slice(rest);
        message
    };
    // The format parser alone must never panic.
    let parsed = Header::parse(&message).ok();
    if let Some((_, len)) = &parsed {
        assert!(*len <= message.len());
    }
    block_on(decrypt_both_ways(&message));
}

async fn decrypt_both_ways(message: &[u8]) {
    let decryptor = Decryptor::new(StaticKeyring::new(FUZZ_WRAPPING_KEY)).with_limits(LIMITS);
    let whole = decryptor.decrypt_to_vec(message).await;

    let mut released = Vec::new();
    let streamed = match decryptor.start(message).await {
        Err(err) => Err(err),
        Ok(mut stream) => loop {
            match stream.next_chunk().await {
                Ok(Some(chunk)) => released.extend_from_slice(chunk),
                Ok(None) => break Ok(()),
                Err(err) => {
                    assert!(matches!(
                        stream.next_chunk().await,
                        Err(crate::DecryptError::AlreadyFailed)
                    ));
                    break Err(err);
                }
            }
        },
    };
    match (&whole, &streamed) {
        (Ok(out), Ok(())) => {
            assert_eq!(out.plaintext.as_bytes(), released.as_slice());
            let header = &out.header;
            // A message that decrypts re-encrypts (same suite, frame length and caller
            // context) into one that decrypts to the same bytes.
            if header.frame_length() > 0 {
                let context: EncryptionContext = header
                    .encryption_context()
                    .iter()
                    .filter(|(k, _)| !k.starts_with(crate::RESERVED_PREFIX))
                    .collect();
                let encryptor = Encryptor::new(StaticKeyring::new(FUZZ_WRAPPING_KEY))
                    .with_suite(header.suite())
                    .with_frame_length(header.frame_length());
                let again = match encryptor {
                    Ok(encryptor) => encryptor.encrypt_to_vec(&context, &out.plaintext).await,
                    Err(err) => panic!("a decrypted frame length is refused: {err}"),
                };
                let again = again.unwrap_or_else(|err| panic!("re-encryption failed: {err}"));
                let back = decryptor.decrypt_to_vec(&again).await;
                assert!(back.is_ok_and(|b| b.plaintext.as_bytes() == released));
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "whole-message and streaming decryption disagree: {:?} vs {:?}",
            whole.as_ref().map(|_| ()),
            streamed
        ),
    }
}

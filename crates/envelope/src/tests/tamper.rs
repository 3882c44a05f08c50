//! Every single-byte flip, truncation and extension of a message is rejected, and no
//! plaintext comes out: the whole-message API returns an error, and the streaming API never
//! reaches its verified end and never releases the final frame.

use super::support::{
    SUITES, Trickle, block_on, context, decrypt, encrypt, encrypt_non_framed, keyring, plaintext,
};
use crate::{AlgorithmSuite, DecryptError, Decryptor};

/// Small messages: every shape (several frames with a non-empty final frame, an empty final
/// frame, non-framed), both suites.
fn small_messages() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for suite in SUITES {
        for (len, frame) in [(150, 64), (128, 64), (0, 64)] {
            let data = plaintext(len);
            out.push((
                format!("{suite} framed {len}/{frame}"),
                encrypt(suite, frame, &context("p"), &data),
                data,
            ));
        }
        let data = plaintext(50);
        out.push((
            format!("{suite} non-framed 50"),
            encrypt_non_framed(suite, &context("p"), &data),
            data,
        ));
    }
    out
}

/// Streams `message`; returns the bytes released and whether the stream reached `Ok(None)`.
fn stream(message: &[u8]) -> (Vec<u8>, Result<(), DecryptError>) {
    block_on(async {
        let decryptor = Decryptor::new(keyring());
        let mut released = Vec::new();
        let mut stream = match decryptor
            .start(Trickle {
                data: message,
                step: 4096,
            })
            .await
        {
            Ok(stream) => stream,
            Err(err) => return (released, Err(err)),
        };
        loop {
            match stream.next_chunk().await {
                Ok(Some(chunk)) => released.extend_from_slice(chunk),
                Ok(None) => return (released, Ok(())),
                Err(err) => return (released, Err(err)),
            }
        }
    })
}

/// The bytes of the final frame (or the whole non-framed body) must never be released from
/// a rejected message; earlier frames may be, as provisional plaintext.
fn assert_rejected(name: &str, what: &str, tampered: &[u8], data: &[u8], frame: usize) {
    assert!(decrypt(tampered).is_err(), "{name}: {what} was accepted");
    let (released, result) = stream(tampered);
    assert!(result.is_err(), "{name}: {what} streamed to the end");
    let provisional = if frame == 0 {
        0
    } else {
        data.len() - data.len() % frame
    };
    let provisional = if provisional == data.len() && frame > 0 {
        data.len()
    } else {
        provisional
    };
    assert!(
        released.len() <= provisional,
        "{name}: {what} released {} bytes",
        released.len()
    );
    assert_eq!(
        released,
        data[..released.len()],
        "{name}: {what} released wrong bytes"
    );
}

fn frame_of(name: &str) -> usize {
    if name.contains("non-framed") { 0 } else { 64 }
}

#[test]
fn every_byte_flip_of_small_messages_is_rejected() {
    for (name, message, data) in small_messages() {
        assert_eq!(decrypt(&message).unwrap(), data, "{name}: untampered");
        for at in 0..message.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut tampered = message.clone();
                tampered[at] ^= mask;
                assert_rejected(
                    &name,
                    &format!("flip {mask:#04x} at {at}"),
                    &tampered,
                    &data,
                    frame_of(&name),
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_small_messages_is_rejected() {
    for (name, message, data) in small_messages() {
        for len in 0..message.len() {
            assert_rejected(
                &name,
                &format!("truncation to {len}"),
                &message[..len],
                &data,
                frame_of(&name),
            );
        }
    }
}

#[test]
fn anything_appended_is_rejected() {
    for (name, message, data) in small_messages() {
        for extra in [&[0u8][..], &[0xFF; 100], &message] {
            let mut longer = message.clone();
            longer.extend_from_slice(extra);
            let err = decrypt(&longer).unwrap_err();
            assert!(
                matches!(err, DecryptError::TrailingData),
                "{name}: +{} bytes: {err}",
                extra.len()
            );
            assert_rejected(
                &name,
                &format!("{} appended bytes", extra.len()),
                &longer,
                &data,
                frame_of(&name),
            );
        }
    }
}

/// splitmix64: a fixed, dependency-free sequence of sample positions.
struct Positions(u64);

impl Iterator for Positions {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Some(z ^ (z >> 31))
    }
}

/// 1 MiB + 1 at frame length 4096: every header byte, the last 512 bytes (final frame,
/// footer), and `samples` further distinct random positions, each flipped; plus
/// `samples / 10` truncations.
fn large_message_rejects_sampled_tampering(suite: AlgorithmSuite, samples: usize) {
    let seed = std::env::var("SECUREPIPE_TAMPER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005E_C04E);
    let data = plaintext((1 << 20) + 1);
    let message = encrypt(suite, 4096, &context("p"), &data);
    assert_eq!(decrypt(&message).unwrap(), data);
    let (header, header_len) = crate::Header::parse(&message).unwrap();
    assert_eq!(header.suite(), suite);
    let len = message.len() as u64;
    let mut positions: Vec<u64> = (0..header_len as u64).chain(len - 512..len).collect();
    // `samples` distinct random positions besides those.
    let mut seen: std::collections::HashSet<u64> = positions.iter().copied().collect();
    positions.extend(
        Positions(seed)
            .map(|r| r % len)
            .filter(|at| seen.insert(*at))
            .take(samples),
    );
    assert_eq!(positions.len(), header_len + 512 + samples);
    for (i, at) in positions.iter().enumerate() {
        let mut tampered = message.clone();
        tampered[*at as usize] ^= 1 << (i % 8);
        assert!(
            decrypt(&tampered).is_err(),
            "{suite}: flip at {at} accepted (seed {seed})"
        );
    }
    for cut in Positions(seed ^ 1).take(samples / 10).map(|r| r % len) {
        assert!(
            decrypt(&message[..cut as usize]).is_err(),
            "{suite}: truncation to {cut} accepted"
        );
    }
}

#[test]
fn large_signed_message_rejects_10000_sampled_flips() {
    large_message_rejects_sampled_tampering(
        AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
        10_000,
    );
}

#[test]
fn large_unsigned_message_rejects_10000_sampled_flips() {
    large_message_rejects_sampled_tampering(AlgorithmSuite::AesGcm256HkdfSha512Commit, 10_000);
}

#[test]
fn signed_final_frame_is_withheld_until_the_signature_verifies() {
    // Re-sign nothing: corrupt only the signature, so every frame authenticates but the
    // message does not. The stream must release the regular frames and not the final one.
    let data = plaintext(150);
    let mut message = encrypt(AlgorithmSuite::DEFAULT, 64, &context("p"), &data);
    let last = message.len() - 1;
    message[last] ^= 0x01;
    let (released, result) = stream(&message);
    assert!(matches!(result, Err(DecryptError::Signature)), "{result:?}");
    assert_eq!(
        released,
        data[..128],
        "two regular frames out, final frame withheld"
    );
}

//! What the decryptor refuses before, or instead of, decrypting.

use super::support::{SUITES, block_on, context, encrypt, encrypt_non_framed, keyring, plaintext};
use crate::cipher::MessageCipher;
use crate::header::{ContentType, NewHeader};
use crate::kdf::KeySchedule;
use crate::keyring::{DataKey, EncryptedDataKey, StaticKeyring};
use crate::{
    AlgorithmSuite, DecryptError, Decryptor, EncryptError, EncryptionContext, Encryptor,
    HeaderError, Limits, RequiredContextError,
};

fn decrypt_with(decryptor: &Decryptor<StaticKeyring>, message: &[u8]) -> DecryptError {
    block_on(decryptor.decrypt_to_vec(message)).unwrap_err()
}

#[test]
fn required_context_is_checked_before_the_keyring_is_called() {
    for suite in SUITES {
        let message = encrypt(suite, 64, &context("p1"), b"data");
        let cases = [
            (
                Decryptor::new(keyring()).require("partition", "p2"),
                "changed",
            ),
            (Decryptor::new(keyring()).require("tenant", "t"), "missing"),
            (
                Decryptor::new(keyring())
                    .require("partition", "p1")
                    .require("tenant", "t"),
                "one of two",
            ),
        ];
        for (decryptor, what) in cases {
            let err = decrypt_with(&decryptor, &message);
            assert!(
                matches!(err, DecryptError::RequiredContext(_)),
                "{what}: {err}"
            );
            assert_eq!(
                decryptor.keyring().decrypt_calls(),
                0,
                "{what}: keyring was called"
            );
        }
        let ok = Decryptor::new(keyring())
            .require("partition", "p1")
            .require("purpose", "test");
        assert!(block_on(ok.decrypt_to_vec(&message)).is_ok());
        assert_eq!(ok.keyring().decrypt_calls(), 1);
    }
}

#[test]
fn required_context_error_names_the_pair() {
    let message = encrypt(AlgorithmSuite::DEFAULT, 64, &context("p1"), b"data");
    let err = decrypt_with(
        &Decryptor::new(keyring()).require("partition", "p2"),
        &message,
    );
    let DecryptError::RequiredContext(RequiredContextError::Mismatch {
        key,
        expected,
        actual,
    }) = &err
    else {
        panic!("{err}");
    };
    assert_eq!(
        (key.as_str(), expected.as_str(), actual.as_str()),
        ("partition", "p2", "p1")
    );
    assert_eq!(
        err.to_string(),
        "encryption context has `partition=p1`, but `partition=p2` is required"
    );
}

/// A framed message with an arbitrary context (bypassing the encryptor's checks) and no body.
fn crafted_header(suite: AlgorithmSuite, ctx: &EncryptionContext, edks: usize) -> Vec<u8> {
    let data_key = DataKey::from_slice(&[0x5A; 32]).unwrap(); // XOR-wraps to zeros
    let id = [1; 32];
    let schedule = KeySchedule::derive(suite, &data_key, &id);
    let edk = EncryptedDataKey::new(
        "securepipe-test-static".into(),
        b"static".to_vec(),
        vec![0; 32],
    );
    let edks = vec![edk; edks];
    let mut bytes = NewHeader {
        suite,
        message_id: &id,
        context: ctx,
        encrypted_data_keys: &edks,
        content_type: ContentType::Framed,
        frame_length: 64,
        commitment: &schedule.commitment,
    }
    .encode_body()
    .unwrap();
    let tag = MessageCipher::new(&schedule.key, &id)
        .header_tag(&bytes)
        .unwrap();
    bytes.extend_from_slice(&tag);
    bytes
}

#[test]
fn public_key_must_match_whether_the_suite_is_signed() {
    let mut with_key = context("p");
    with_key.insert(crate::PUBLIC_KEY_CONTEXT_KEY, "A".repeat(68));
    let cases = [
        (
            crafted_header(AlgorithmSuite::AesGcm256HkdfSha512Commit, &with_key, 1),
            "UnexpectedPublicKey",
        ),
        (
            crafted_header(AlgorithmSuite::DEFAULT, &context("p"), 1),
            "MissingPublicKey",
        ),
        (
            crafted_header(AlgorithmSuite::DEFAULT, &with_key, 1),
            "InvalidPublicKey",
        ),
    ];
    for (message, expected) in cases {
        let decryptor = Decryptor::new(keyring());
        let err = decrypt_with(&decryptor, &message);
        assert!(
            format!("{err:?}").starts_with(expected),
            "{expected}: {err:?}"
        );
        assert_eq!(decryptor.keyring().decrypt_calls(), 0);
    }
    // The crafted header is otherwise valid: the unsigned one without a key reaches the body.
    let plain = crafted_header(AlgorithmSuite::AesGcm256HkdfSha512Commit, &context("p"), 1);
    assert!(matches!(
        decrypt_with(&Decryptor::new(keyring()), &plain),
        DecryptError::Truncated(_)
    ));
}

#[test]
fn other_versions_and_suites_are_rejected_by_name() {
    let mut message = encrypt(AlgorithmSuite::DEFAULT, 64, &context("p"), b"x");
    message[0] = 0x01;
    let err = decrypt_with(&Decryptor::new(keyring()), &message);
    assert!(
        matches!(
            err,
            DecryptError::Header(HeaderError::UnsupportedVersion(1))
        ),
        "{err}"
    );
    for suite in [0x0014u16, 0x0078, 0x0178, 0x0214, 0x0346, 0x0378] {
        message[0] = 0x02;
        message[1..3].copy_from_slice(&suite.to_be_bytes());
        let err = decrypt_with(&Decryptor::new(keyring()), &message);
        assert!(
            matches!(err, DecryptError::Header(HeaderError::UnsupportedSuite(s)) if s == suite),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("0x{suite:04X}")), "{err}");
    }
}

#[test]
fn a_different_wrapping_key_fails_the_key_commitment() {
    let message = encrypt(AlgorithmSuite::DEFAULT, 64, &context("p"), b"x");
    let other = Decryptor::new(StaticKeyring::new([0x11; 32]));
    assert!(matches!(
        decrypt_with(&other, &message),
        DecryptError::CommitmentMismatch
    ));
}

#[test]
fn limits_bound_what_a_message_can_make_us_hold() {
    let framed = encrypt(AlgorithmSuite::DEFAULT, 1000, &context("p"), &plaintext(10));
    let limited = |limits: Limits| Decryptor::new(keyring()).with_limits(limits);
    let d = Limits::default();
    let err = decrypt_with(
        &limited(Limits {
            max_frame_length: 999,
            ..d
        }),
        &framed,
    );
    assert!(
        matches!(
            err,
            DecryptError::FrameLengthTooLarge {
                frame_length: 1000,
                max: 999
            }
        ),
        "{err}"
    );
    let err = decrypt_with(
        &limited(Limits {
            max_header_len: 100,
            ..d
        }),
        &framed,
    );
    assert!(
        matches!(err, DecryptError::HeaderTooLarge { max: 100 }),
        "{err}"
    );
    let non_framed = encrypt_non_framed(AlgorithmSuite::DEFAULT, &context("p"), &plaintext(10));
    let err = decrypt_with(
        &limited(Limits {
            max_non_framed_len: 9,
            ..d
        }),
        &non_framed,
    );
    assert!(
        matches!(err, DecryptError::NonFramedTooLarge { length: 10, max: 9 }),
        "{err}"
    );
    let many = crafted_header(AlgorithmSuite::AesGcm256HkdfSha512Commit, &context("p"), 17);
    let decryptor = Decryptor::new(keyring());
    let err = decrypt_with(&decryptor, &many);
    assert!(
        matches!(err, DecryptError::TooManyDataKeys { count: 17, max: 16 }),
        "{err}"
    );
    assert_eq!(decryptor.keyring().decrypt_calls(), 0);
}

#[test]
fn encryptor_refuses_reserved_keys_and_bad_frame_lengths() {
    let mut ctx = context("p");
    ctx.insert("aws-crypto-public-key", "mine");
    let encryptor = Encryptor::new(keyring());
    let err = block_on(encryptor.encrypt_to_vec(&ctx, b"x")).unwrap_err();
    assert!(
        matches!(&err, EncryptError::ReservedContextKey { key } if key == "aws-crypto-public-key"),
        "{err}"
    );
    assert_eq!(encryptor.keyring().generate_calls(), 0);
    for bad in [0, crate::MAX_FRAME_LENGTH + 1] {
        assert!(matches!(
            Encryptor::new(keyring()).with_frame_length(bad),
            Err(EncryptError::InvalidFrameLength { .. })
        ));
    }
}

//! Round trips through every body shape, whole and streamed.

use super::support::{
    SUITES, Trickle, block_on, context, decrypt, encrypt, encrypt_non_framed, keyring, plaintext,
};
use crate::{ContentType, Decryptor, Encryptor, Header};

#[test]
fn framed_messages_round_trip_at_frame_boundaries() {
    for suite in SUITES {
        for len in [0, 1, 63, 64, 65, 128, 1000] {
            let data = plaintext(len);
            let message = encrypt(suite, 64, &context("p1"), &data);
            let (header, _) = Header::parse(&message).unwrap();
            assert_eq!(header.suite(), suite);
            assert_eq!(header.content_type(), ContentType::Framed);
            assert_eq!(header.frame_length(), 64);
            let decryptor = Decryptor::new(keyring()).require("partition", "p1");
            let out = block_on(decryptor.decrypt_to_vec(&message)).unwrap();
            assert_eq!(out.plaintext.as_bytes(), data, "{suite} len {len}");
            assert_eq!(out.header.encryption_context().get("purpose"), Some("test"));
        }
    }
}

#[test]
fn frame_layout_matches_the_sdk() {
    // Header, then for 128 bytes at frame length 64: two regular frames and an empty final
    // frame (4+12+64+16 each, then 4+4+12+4+0+16), then the footer for 0x0578.
    for suite in SUITES {
        let message = encrypt(suite, 64, &context("p"), &plaintext(128));
        let (_, header_len) = Header::parse(&message).unwrap();
        let body = &message[header_len..];
        assert_eq!(&body[..4], &1u32.to_be_bytes());
        assert_eq!(&body[96..100], &2u32.to_be_bytes());
        assert_eq!(&body[192..200], &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 3]);
        assert_eq!(&body[212..216], &0u32.to_be_bytes(), "empty final frame");
        let footer = &body[232..];
        if suite.is_signed() {
            let len = u16::from_be_bytes([footer[0], footer[1]]) as usize;
            assert_eq!(footer.len(), 2 + len);
        } else {
            assert!(footer.is_empty());
        }
    }
}

#[test]
fn non_framed_messages_round_trip() {
    for suite in SUITES {
        for len in [0, 1, 4097] {
            let data = plaintext(len);
            let message = encrypt_non_framed(suite, &context("p1"), &data);
            assert_eq!(
                Header::parse(&message).unwrap().0.content_type(),
                ContentType::NonFramed
            );
            assert_eq!(decrypt(&message).unwrap(), data, "{suite} len {len}");
        }
    }
}

#[test]
fn streaming_works_with_tiny_reads_and_writes() {
    for suite in SUITES {
        let data = plaintext(10_000);
        let encryptor = Encryptor::new(keyring())
            .with_suite(suite)
            .with_frame_length(100)
            .unwrap();
        let message = block_on(async {
            let mut writer = encryptor.start(&context("p"), Vec::new()).await.unwrap();
            let mut input = Trickle {
                data: &data,
                step: 7,
            };
            assert_eq!(
                writer.copy_from(&mut input).await.unwrap(),
                data.len() as u64
            );
            writer.finish().await.unwrap()
        });
        assert_eq!(decrypt(&message).unwrap(), data);

        let out = block_on(async {
            let decryptor = Decryptor::new(keyring());
            let stream = decryptor
                .start(Trickle {
                    data: &message,
                    step: 3,
                })
                .await
                .unwrap();
            let mut out = Vec::new();
            let written = stream.copy_to(&mut out).await.unwrap();
            assert_eq!(written, data.len() as u64);
            out
        });
        assert_eq!(out, data);
    }
}

#[test]
fn chunks_are_frames_and_none_marks_the_verified_end() {
    let data = plaintext(250);
    let message = encrypt(crate::AlgorithmSuite::DEFAULT, 100, &context("p"), &data);
    block_on(async {
        let decryptor = Decryptor::new(keyring());
        let mut stream = decryptor.start(&message[..]).await.unwrap();
        let mut sizes = Vec::new();
        while let Some(chunk) = stream.next_chunk().await.unwrap() {
            sizes.push(chunk.len());
        }
        assert_eq!(sizes, [100, 100, 50]);
        assert!(
            stream.next_chunk().await.unwrap().is_none(),
            "stays finished"
        );
    });
}

#[test]
fn default_encryptor_writes_signed_4096_byte_frames() {
    let message = block_on(Encryptor::new(keyring()).encrypt_to_vec(&context("p"), b"x")).unwrap();
    let (header, _) = Header::parse(&message).unwrap();
    assert_eq!(header.suite().id(), 0x0578);
    assert_eq!(header.frame_length(), 4096);
    assert!(
        header
            .encryption_context()
            .get(crate::PUBLIC_KEY_CONTEXT_KEY)
            .is_some()
    );
}

#[test]
fn secrets_never_reach_debug_output() {
    let secret = b"TOP-SECRET-PLAINTEXT";
    let message = encrypt(crate::AlgorithmSuite::DEFAULT, 64, &context("p"), secret);
    let decryptor = Decryptor::new(keyring());
    let out = block_on(decryptor.decrypt_to_vec(&message)).unwrap();
    let shown = format!("{out:?} {decryptor:?}");
    assert!(!shown.contains("TOP-SECRET"), "{shown}");
    assert!(shown.contains("Plaintext(20 bytes)"), "{shown}");
    let stream = block_on(decryptor.start(&message[..])).unwrap();
    assert!(!format!("{stream:?}").contains("SECRET"));
}

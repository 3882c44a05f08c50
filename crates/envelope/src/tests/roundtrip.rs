use super::support::{SUITES, block_on, context, encrypt, keyring, plaintext};
use crate::{ContentType, Decryptor, Header};

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
            let out = block_on(
                Decryptor::new(keyring())
                    .require("partition", "p1")
                    .decrypt_to_vec(&message),
            )
            .unwrap();
            assert_eq!(out.plaintext.as_bytes(), data, "{suite} len {len}");
            assert_eq!(out.header.encryption_context().get("purpose"), Some("test"));
        }
    }
}

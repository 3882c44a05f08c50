//! Opening a message: read the header, apply the caller's policy, get the data key, check
//! the key commitment and the header tag. Order matters: everything that can be checked
//! without the key provider is checked before it is called.

use tokio::io::AsyncRead;

use super::input::Input;
use super::stream::DecryptStream;
use super::{DecryptError, Limits};
use crate::cipher::MessageCipher;
use crate::context::{EncryptionContext, PUBLIC_KEY_CONTEXT_KEY};
use crate::header::{ContentType, Header, ParseError};
use crate::kdf::KeySchedule;
use crate::keyring::Keyring;
use crate::signature::{MessageVerifier, SignedBytes};

pub(super) async fn open<K: Keyring, R: AsyncRead + Unpin>(
    keyring: &K,
    required: &EncryptionContext,
    limits: &Limits,
    reader: R,
) -> Result<DecryptStream<R>, DecryptError> {
    let mut input = Input::new(reader);
    let (header, header_len) = read_header(&mut input, limits).await?;
    check_limits(&header, limits)?;
    header.encryption_context().check_required(required)?;
    let verifier = verifier_for(&header)?;

    let data_key = keyring
        .decrypt_data_key(
            header.suite(),
            header.encrypted_data_keys(),
            header.encryption_context(),
        )
        .await?;
    let schedule = KeySchedule::derive(header.suite(), &data_key, header.message_id());
    drop(data_key);
    if !schedule.commitment_matches(header.commitment()) {
        return Err(DecryptError::CommitmentMismatch);
    }
    let cipher = MessageCipher::new(&schedule.key, header.message_id());
    drop(schedule);
    let header_body = &input.available()[..header.body_len()];
    cipher
        .verify_header(header_body, header.auth_tag())
        .map_err(|_| DecryptError::HeaderAuthentication)?;

    if verifier.is_some() {
        input.signed = Some(SignedBytes::default());
    }
    input.consume(header_len);
    Ok(DecryptStream::new(input, header, cipher, verifier, limits))
}

/// Reads until the header parses, without consuming it.
async fn read_header<R: AsyncRead + Unpin>(
    input: &mut Input<R>,
    limits: &Limits,
) -> Result<(Header, usize), DecryptError> {
    loop {
        match Header::parse_partial(input.available()) {
            Ok((_, len)) if len > limits.max_header_len => {
                return Err(DecryptError::HeaderTooLarge {
                    max: limits.max_header_len,
                });
            }
            Ok(parsed) => return Ok(parsed),
            Err(ParseError::Invalid(err)) => return Err(err.into()),
            Err(ParseError::Incomplete) => {
                let have = input.available().len();
                if have >= limits.max_header_len {
                    return Err(DecryptError::HeaderTooLarge {
                        max: limits.max_header_len,
                    });
                }
                if !input.fill(have + 1).await? {
                    return Err(DecryptError::Truncated("header"));
                }
            }
        }
    }
}

fn check_limits(header: &Header, limits: &Limits) -> Result<(), DecryptError> {
    let count = header.encrypted_data_keys().len();
    if count > usize::from(limits.max_encrypted_data_keys) {
        return Err(DecryptError::TooManyDataKeys {
            count,
            max: limits.max_encrypted_data_keys,
        });
    }
    if header.content_type() == ContentType::Framed
        && header.frame_length() > limits.max_frame_length
    {
        return Err(DecryptError::FrameLengthTooLarge {
            frame_length: header.frame_length(),
            max: limits.max_frame_length,
        });
    }
    Ok(())
}

/// The signature verifier a signed suite needs, and refusal of a public key an unsigned one
/// must not carry.
fn verifier_for(header: &Header) -> Result<Option<MessageVerifier>, DecryptError> {
    let suite = header.suite();
    match (
        suite.is_signed(),
        header.encryption_context().get(PUBLIC_KEY_CONTEXT_KEY),
    ) {
        (true, Some(public_key)) => Ok(Some(MessageVerifier::from_base64(public_key)?)),
        (true, None) => Err(DecryptError::MissingPublicKey(suite)),
        (false, Some(_)) => Err(DecryptError::UnexpectedPublicKey(suite)),
        (false, None) => Ok(None),
    }
}

//! Telling a KMS `Decrypt` that refuses the ciphertext (the message's data key or context was
//! altered) apart from a KMS that could not be reached or refused us. The envelope crate
//! boxes the SDK error; this is the one place that looks inside it.

use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Whether `err` (a boxed KMS Decrypt error) says the ciphertext itself is invalid for the
/// key and context: retrying cannot help, the message is bad. `false` for anything else,
/// including errors that are not KMS Decrypt errors.
pub fn decrypt_rejected_ciphertext(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<SdkError<DecryptError, HttpResponse>>()
        .and_then(|err| err.as_service_error())
        .is_some_and(|service| {
            matches!(
                service.code(),
                Some("InvalidCiphertextException" | "IncorrectKeyException")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_are_not_a_rejected_ciphertext() {
        let io = std::io::Error::other("connection reset");
        assert!(!decrypt_rejected_ciphertext(&io));
    }
}

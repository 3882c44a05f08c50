//! The AWS KMS keyring: `GenerateDataKey` to encrypt, `Decrypt` of `aws-kms` data keys under
//! an allowed list of key ARNs to decrypt, both with the message's whole encryption context.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::{
    DataKey, EncryptedDataKey, GeneratedDataKey, KeyArn, KeyArnError, Keyring, KeyringError,
};
use crate::context::EncryptionContext;
use crate::suite::AlgorithmSuite;

/// Key provider ID of data keys wrapped by AWS KMS.
pub const KMS_PROVIDER_ID: &str = "aws-kms";

/// Number of bytes asked of `GenerateDataKey`: the suites' data key length.
const DATA_KEY_BYTES: i32 = 32;

/// A keyring backed by AWS KMS.
///
/// Encrypting uses the first key ARN. Decrypting unwraps only `aws-kms` data keys whose
/// provider info is exactly one of the key ARNs, trying them in header order; every call
/// passes the `KeyId` and the message's full encryption context, and the response must name
/// the same key and carry a 32-byte key.
#[derive(Clone, Debug)]
pub struct KmsKeyring {
    client: Client,
    generator: KeyArn,
    keys: Vec<KeyArn>,
}

/// Why a [`KmsKeyring`] cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KmsKeyringError {
    /// No key ARN was given.
    #[error("a KMS keyring needs at least one key ARN")]
    NoKeys,
    /// A key ARN is malformed.
    #[error(transparent)]
    InvalidArn(#[from] KeyArnError),
}

impl KmsKeyring {
    /// A keyring over `client` and `key_arns` (the first also generates data keys).
    ///
    /// # Errors
    /// No ARN, or one that is not a KMS key ARN.
    pub fn new<I, S>(client: Client, key_arns: I) -> Result<Self, KmsKeyringError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = key_arns
            .into_iter()
            .map(|arn| KeyArn::parse(arn.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let generator = keys.first().cloned().ok_or(KmsKeyringError::NoKeys)?;
        Ok(Self {
            client,
            generator,
            keys,
        })
    }

    /// As [`Self::new`], with a client from the standard AWS configuration chain
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, profiles, IMDS, ...).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub async fn from_env<I, S>(key_arns: I) -> Result<Self, KmsKeyringError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self::new(Client::new(&config), key_arns)
    }

    /// The key ARNs, the generator first.
    #[must_use]
    pub fn key_arns(&self) -> &[KeyArn] {
        &self.keys
    }

    async fn decrypt_one(
        &self,
        edk: &EncryptedDataKey,
        arn: &KeyArn,
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyringError> {
        const OP: &str = "kms:Decrypt";
        let output = self
            .client
            .decrypt()
            .key_id(arn.as_str())
            .ciphertext_blob(Blob::new(edk.ciphertext()))
            .set_encryption_context(Some(context.to_hash_map()))
            .send()
            .await
            .map_err(|err| KeyringError::Provider {
                operation: OP,
                key_id: arn.to_string(),
                source: err.into(),
            })?;
        let actual = output.key_id().unwrap_or_default();
        if actual != arn.as_str() {
            return Err(KeyringError::KeyMismatch {
                operation: OP,
                expected: arn.to_string(),
                actual: actual.to_owned(),
            });
        }
        let plaintext = output
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()));
        key_from_response(OP, arn, plaintext)
    }
}

/// The 32-byte key in a KMS response; the response's copy is zeroized either way.
fn key_from_response(
    operation: &'static str,
    arn: &KeyArn,
    plaintext: Option<Zeroizing<Vec<u8>>>,
) -> Result<DataKey, KeyringError> {
    let invalid = |problem: String| KeyringError::InvalidResponse {
        operation,
        key_id: arn.to_string(),
        problem,
    };
    let plaintext = plaintext.ok_or_else(|| invalid("no Plaintext".to_owned()))?;
    DataKey::from_slice(&plaintext)
        .ok_or_else(|| invalid(format!("Plaintext is {} bytes, not 32", plaintext.len())))
}

impl Keyring for KmsKeyring {
    async fn generate_data_key(
        &self,
        _suite: AlgorithmSuite,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyringError> {
        const OP: &str = "kms:GenerateDataKey";
        let arn = &self.generator;
        let output = self
            .client
            .generate_data_key()
            .key_id(arn.as_str())
            .number_of_bytes(DATA_KEY_BYTES)
            .set_encryption_context(Some(context.to_hash_map()))
            .send()
            .await
            .map_err(|err| KeyringError::Provider {
                operation: OP,
                key_id: arn.to_string(),
                source: err.into(),
            })?;
        let actual = output.key_id().unwrap_or_default();
        if actual != arn.as_str() {
            return Err(KeyringError::KeyMismatch {
                operation: OP,
                expected: arn.to_string(),
                actual: actual.to_owned(),
            });
        }
        let ciphertext = output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| KeyringError::InvalidResponse {
                operation: OP,
                key_id: arn.to_string(),
                problem: "no CiphertextBlob".to_owned(),
            })?;
        let data_key = key_from_response(
            OP,
            arn,
            output
                .plaintext
                .map(|blob| Zeroizing::new(blob.into_inner())),
        )?;
        let encrypted = EncryptedDataKey::new(
            KMS_PROVIDER_ID.to_owned(),
            arn.as_str().as_bytes().to_vec(),
            ciphertext,
        );
        Ok(GeneratedDataKey {
            data_key,
            encrypted,
        })
    }

    async fn decrypt_data_key(
        &self,
        _suite: AlgorithmSuite,
        encrypted: &[EncryptedDataKey],
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyringError> {
        let mut failures = Vec::new();
        for edk in encrypted {
            if edk.provider_id() != KMS_PROVIDER_ID {
                continue;
            }
            let Some(arn) = self
                .keys
                .iter()
                .find(|arn| arn.as_str().as_bytes() == edk.provider_info())
            else {
                continue;
            };
            match self.decrypt_one(edk, arn, context).await {
                Ok(key) => return Ok(key),
                Err(err) => failures.push(err),
            }
        }
        if failures.is_empty() {
            Err(KeyringError::NoAllowedKey {
                found: encrypted.iter().map(EncryptedDataKey::label).collect(),
            })
        } else {
            Err(KeyringError::AllFailed(failures))
        }
    }
}

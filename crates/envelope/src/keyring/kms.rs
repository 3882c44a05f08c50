//! The AWS KMS keyring: `GenerateDataKey` to encrypt, `Decrypt` of `aws-kms` data keys under
//! an allowed list of key ARNs to decrypt, both with the message's whole encryption context.

use aws_sdk_kms::Client;
use aws_sdk_kms::config::Region;
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
/// the same key and carry a 32-byte key. Each call goes to the region in the key's ARN,
/// whatever the client's default region (KMS keys live in one region).
#[derive(Clone, Debug)]
pub struct KmsKeyring {
    generator: RegionalKey,
    keys: Vec<RegionalKey>,
}

/// A key ARN with a client for the ARN's region.
#[derive(Clone, Debug)]
struct RegionalKey {
    arn: KeyArn,
    client: Client,
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
    /// A keyring over `key_arns` (the first also generates data keys), calling KMS with
    /// `client`'s settings in each key's region.
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
            .map(|arn| {
                let arn = KeyArn::parse(arn.as_ref())?;
                let client = in_region(&client, arn.region());
                Ok(RegionalKey { arn, client })
            })
            .collect::<Result<Vec<_>, KeyArnError>>()?;
        let generator = keys.first().cloned().ok_or(KmsKeyringError::NoKeys)?;
        Ok(Self { generator, keys })
    }

    async fn decrypt_one(
        edk: &EncryptedDataKey,
        key: &RegionalKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyringError> {
        const OP: &str = "kms:Decrypt";
        let arn = &key.arn;
        let output = key
            .client
            .decrypt()
            .key_id(arn.as_str())
            .ciphertext_blob(Blob::new(edk.ciphertext()))
            .set_encryption_context(Some(context.to_hash_map()))
            .send()
            .await
            .map_err(provider_error(OP, arn))?;
        answered_by(OP, arn, output.key_id())?;
        let plaintext = output
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()));
        key_from_response(OP, arn, plaintext)
    }
}

/// Wraps the error of a KMS call that failed.
fn provider_error<'a, E>(
    operation: &'static str,
    arn: &'a KeyArn,
) -> impl FnOnce(E) -> KeyringError + 'a
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |err| KeyringError::Provider {
        operation,
        key_id: arn.to_string(),
        source: Box::new(err),
    }
}

/// Checks that KMS answered with the key it was asked to use (a different key id means
/// the request was served by something else than the key the caller trusts).
fn answered_by(
    operation: &'static str,
    arn: &KeyArn,
    actual: Option<&str>,
) -> Result<(), KeyringError> {
    let actual = actual.unwrap_or_default();
    if actual == arn.as_str() {
        return Ok(());
    }
    Err(KeyringError::KeyMismatch {
        operation,
        expected: arn.to_string(),
        actual: actual.to_owned(),
    })
}

/// `client`, or a copy of it that calls `region`.
fn in_region(client: &Client, region: &str) -> Client {
    if client.config().region().map(Region::as_ref) == Some(region) {
        return client.clone();
    }
    let config = client
        .config()
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build();
    Client::from_conf(config)
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
        let arn = &self.generator.arn;
        let output = self
            .generator
            .client
            .generate_data_key()
            .key_id(arn.as_str())
            .number_of_bytes(DATA_KEY_BYTES)
            .set_encryption_context(Some(context.to_hash_map()))
            .send()
            .await
            .map_err(provider_error(OP, arn))?;
        answered_by(OP, arn, output.key_id())?;
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
            let Some(key) = self
                .keys
                .iter()
                .find(|key| key.arn.as_str().as_bytes() == edk.provider_info())
            else {
                continue;
            };
            match Self::decrypt_one(edk, key, context).await {
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

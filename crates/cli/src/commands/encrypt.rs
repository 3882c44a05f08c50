//! `securepipe encrypt`: a file into an AWS Encryption SDK message (format v2), with a data
//! key from KMS `GenerateDataKey`, streamed frame by frame.

use std::path::PathBuf;

use securepipe_cloud::config::{Aws, AwsSettings};
use securepipe_envelope::keyring::KmsKeyringError;
use securepipe_envelope::{AlgorithmSuite, EncryptError, Encryptor, KmsKeyring};

use super::envelope_file::{PendingOutput, context_from, parse_pair};

/// Encrypt a file for any AWS Encryption SDK to read. KMS is reached through the standard AWS
/// settings (AWS_ENDPOINT_URL, AWS_REGION, credentials chain).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ARN of the KMS key that generates and wraps the data key.
    #[arg(long, value_name = "ARN")]
    key_id: String,
    /// A pair bound to the message as encryption context (repeatable), e.g.
    /// `--context partition=p1`.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// Algorithm suite: 0x0578 (AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384
    /// signature) or 0x0478 (the same without the signature).
    #[arg(long, default_value = "0x0578", value_parser = parse_suite)]
    suite: AlgorithmSuite,
    /// Plaintext bytes per frame (1 to 4 MiB).
    #[arg(long, default_value_t = securepipe_envelope::DEFAULT_FRAME_LENGTH)]
    frame_length: u32,
    /// The file to encrypt.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the message; it appears only once complete.
    #[arg(long)]
    output: PathBuf,
}

/// `0x0478`/`0478` or `0x0578`/`0578`.
fn parse_suite(arg: &str) -> Result<AlgorithmSuite, String> {
    let hex = arg
        .strip_prefix("0x")
        .or_else(|| arg.strip_prefix("0X"))
        .unwrap_or(arg);
    u16::from_str_radix(hex, 16)
        .ok()
        .and_then(AlgorithmSuite::from_id)
        .ok_or_else(|| format!("unsupported suite `{arg}` (use 0x0578 or 0x0478)"))
}

#[derive(Debug, thiserror::Error)]
pub enum EncryptCommandError {
    #[error("--context gives the key `{0}` more than once")]
    DuplicateContextKey(String),
    #[error("cannot use KMS key {key_id}")]
    Keyring {
        key_id: String,
        source: KmsKeyringError,
    },
    #[error("invalid encryption settings")]
    Settings(#[source] EncryptError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encrypt {input} into {output}")]
    Encrypt {
        input: PathBuf,
        output: PathBuf,
        source: EncryptError,
    },
    #[error("cannot finish writing {path}")]
    Commit {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: Args) -> Result<(), EncryptCommandError> {
    super::runtime()
        .map_err(EncryptCommandError::Runtime)?
        .block_on(encrypt(args))
}

async fn encrypt(args: Args) -> Result<(), EncryptCommandError> {
    let context = context_from(&args.context).map_err(EncryptCommandError::DuplicateContextKey)?;
    let aws = Aws::from_env(AwsSettings::default()).await;
    let keyring = KmsKeyring::new(aws.kms_home(), [&args.key_id]).map_err(|source| {
        EncryptCommandError::Keyring {
            key_id: args.key_id.clone(),
            source,
        }
    })?;
    let encryptor = Encryptor::new(keyring)
        .with_suite(args.suite)
        .with_frame_length(args.frame_length)
        .map_err(EncryptCommandError::Settings)?;
    let mut input =
        tokio::fs::File::open(&args.input)
            .await
            .map_err(|source| EncryptCommandError::Open {
                path: args.input.clone(),
                source,
            })?;
    let mut output = PendingOutput::create(&args.output, 0o666)
        .await
        .map_err(|source| EncryptCommandError::Create {
            path: args.output.clone(),
            source,
        })?;
    let failed = |source| EncryptCommandError::Encrypt {
        input: args.input.clone(),
        output: args.output.clone(),
        source,
    };
    let mut writer = encryptor
        .start(&context, output.writer())
        .await
        .map_err(failed)?;
    writer.copy_from(&mut input).await.map_err(failed)?;
    writer.finish().await.map_err(failed)?;
    output
        .commit()
        .await
        .map_err(|source| EncryptCommandError::Commit {
            path: args.output.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{AlgorithmSuite, Args, parse_suite};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = [
            "encrypt", "--key-id", "arn", "--input", "i", "--output", "o",
        ];
        Cli::try_parse_from(base.iter().chain(extra)).map(|cli| cli.args)
    }

    #[test]
    fn defaults_are_the_sdk_defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.suite, AlgorithmSuite::DEFAULT);
        assert_eq!(args.frame_length, 4096);
        assert!(args.context.is_empty());
    }

    #[test]
    fn suite_context_and_frame_length_are_read() {
        let args = parse(&[
            "--suite",
            "0x0478",
            "--context",
            "partition=p1",
            "--context",
            "purpose=a=b",
            "--frame-length",
            "65536",
        ])
        .unwrap();
        assert_eq!(args.suite, AlgorithmSuite::AesGcm256HkdfSha512Commit);
        assert_eq!(
            args.context,
            [
                ("partition".to_owned(), "p1".to_owned()),
                ("purpose".into(), "a=b".into())
            ]
        );
        assert_eq!(args.frame_length, 65536);
        assert!(parse(&["--context", "novalue"]).is_err());
    }

    #[test]
    fn only_the_two_committing_suites_parse() {
        assert_eq!(
            parse_suite("0578"),
            Ok(AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384)
        );
        for bad in ["0x0378", "0x0014", "x", ""] {
            assert!(parse_suite(bad).is_err(), "{bad}");
        }
    }
}

//! `securepipe decrypt`: an AWS Encryption SDK message (format v2, suite 0x0478 or 0x0578)
//! back into a file, streamed frame by frame. Only data keys wrapped by the given KMS keys are
//! unwrapped, and only for messages whose encryption context carries every required pair.

use std::path::PathBuf;

use securepipe_cloud::config::{Aws, AwsSettings};
use securepipe_envelope::keyring::KmsKeyringError;
use securepipe_envelope::{DecryptError, Decryptor, KmsKeyring};

use super::envelope_file::{PendingOutput, context_from, parse_pair};

/// Decrypt a message written by securepipe or any AWS Encryption SDK. KMS is reached through
/// the standard AWS settings (AWS_ENDPOINT_URL, AWS_REGION, credentials chain).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ARN of a KMS key allowed to unwrap the data key (repeatable); data keys wrapped by any
    /// other key are ignored.
    #[arg(long = "key-id", value_name = "ARN", required = true)]
    key_ids: Vec<String>,
    /// A pair the message's encryption context must carry (repeatable), e.g.
    /// `--require-context partition=p1`. Checked before KMS is called.
    #[arg(long = "require-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    require_context: Vec<(String, String)>,
    /// The message to decrypt.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the plaintext (mode 0600). It appears only once the whole message is
    /// authenticated; on any failure nothing is left there.
    #[arg(long)]
    output: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DecryptCommandError {
    #[error("--require-context gives the key `{0}` more than once")]
    DuplicateContextKey(String),
    #[error("cannot use the KMS keys {}", .key_ids.join(", "))]
    Keyring {
        key_ids: Vec<String>,
        source: KmsKeyringError,
    },
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
    #[error("cannot decrypt {input}")]
    Decrypt {
        input: PathBuf,
        source: DecryptError,
    },
    #[error("cannot finish writing {path}")]
    Commit {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: Args) -> Result<(), DecryptCommandError> {
    super::runtime()
        .map_err(DecryptCommandError::Runtime)?
        .block_on(decrypt(args))
}

async fn decrypt(args: Args) -> Result<(), DecryptCommandError> {
    let required =
        context_from(&args.require_context).map_err(DecryptCommandError::DuplicateContextKey)?;
    let aws = Aws::from_env(AwsSettings::default()).await;
    let keyring = KmsKeyring::new(aws.kms_home(), &args.key_ids).map_err(|source| {
        DecryptCommandError::Keyring {
            key_ids: args.key_ids.clone(),
            source,
        }
    })?;
    let decryptor = Decryptor::new(keyring).require_all(&required);
    let input =
        tokio::fs::File::open(&args.input)
            .await
            .map_err(|source| DecryptCommandError::Open {
                path: args.input.clone(),
                source,
            })?;
    let failed = |source| DecryptCommandError::Decrypt {
        input: args.input.clone(),
        source,
    };
    // Header, required context, KMS and key commitment are checked before the output exists.
    let stream = decryptor.start(input).await.map_err(failed)?;
    let mut output = PendingOutput::create(&args.output, 0o600)
        .await
        .map_err(|source| DecryptCommandError::Create {
            path: args.output.clone(),
            source,
        })?;
    // On error `output` is dropped, which removes the provisional plaintext.
    stream.copy_to(output.writer()).await.map_err(failed)?;
    output
        .commit()
        .await
        .map_err(|source| DecryptCommandError::Commit {
            path: args.output.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use securepipe_envelope::DecryptError;

    use super::Args;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(["decrypt"].iter().chain(args)).map(|cli| cli.args)
    }

    #[test]
    fn keys_and_required_pairs_repeat() {
        let args = parse(&[
            "--key-id",
            "a",
            "--key-id",
            "b",
            "--require-context",
            "partition=p1",
            "--input",
            "i",
            "--output",
            "o",
        ])
        .unwrap();
        assert_eq!(args.key_ids, ["a", "b"]);
        assert_eq!(
            args.require_context,
            [("partition".to_owned(), "p1".to_owned())]
        );
    }

    #[test]
    fn a_key_is_required() {
        assert!(parse(&["--input", "i", "--output", "o"]).is_err());
        assert!(parse(&["--key-id", "a", "--require-context", "x", "--input", "i"]).is_err());
    }

    #[derive(Debug, Parser)]
    struct EncryptCli {
        #[command(flatten)]
        args: crate::commands::encrypt::Args,
    }

    fn create_kms_key() -> String {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: start the local stack with tests/env/up.sh and source target/env/env.sh (make test does both)"
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let created = aws_sdk_kms::Client::new(&config)
                .create_key()
                .send()
                .await
                .unwrap();
            created.key_metadata().unwrap().arn().unwrap().to_owned()
        })
    }

    /// Both commands against LocalStack's KMS through the standard AWS settings: a round trip
    /// for each suite, and every rejection leaves nothing at the output path.
    #[test]
    #[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
    fn encrypt_and_decrypt_through_kms() {
        use std::os::unix::fs::PermissionsExt;

        let arn = create_kms_key();
        let other_arn = create_kms_key();
        let dir =
            std::env::temp_dir().join(format!("securepipe-cli-envelope-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(path("data"), &data).unwrap();

        for suite in ["0x0478", "0x0578"] {
            let encrypt = EncryptCli::try_parse_from([
                "encrypt",
                "--key-id",
                &arn,
                "--context",
                "partition=p1",
                "--context",
                "purpose=cli-test",
                "--suite",
                suite,
                "--input",
                &path("data"),
                "--output",
                &path("msg"),
            ])
            .unwrap();
            crate::commands::encrypt::run(encrypt.args).unwrap();
            let decrypt = |key: &str, required: &str, output: &str| {
                let args = parse(&[
                    "--key-id",
                    key,
                    "--require-context",
                    required,
                    "--input",
                    &path("msg"),
                    "--output",
                    &path(output),
                ])
                .unwrap();
                super::run(args)
            };
            decrypt(&arn, "partition=p1", "out").unwrap();
            assert!(
                std::fs::read(path("out")).unwrap() == data,
                "{suite}: bytes differ"
            );
            let mode = std::fs::metadata(path("out")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{suite}: plaintext mode {mode:o}");

            let err = decrypt(&arn, "partition=p2", "rejected").unwrap_err();
            assert!(
                matches!(
                    &err,
                    super::DecryptCommandError::Decrypt {
                        source: DecryptError::RequiredContext(_),
                        ..
                    }
                ),
                "{suite}: {err}"
            );
            let err = decrypt(&other_arn, "partition=p1", "rejected").unwrap_err();
            assert!(
                matches!(
                    &err,
                    super::DecryptCommandError::Decrypt {
                        source: DecryptError::Keyring(_),
                        ..
                    }
                ),
                "{suite}: {err}"
            );
            let mut message = std::fs::read(path("msg")).unwrap();
            let at = message.len() - 200;
            message[at] ^= 1;
            std::fs::write(path("msg"), &message).unwrap();
            let err = decrypt(&arn, "partition=p1", "rejected").unwrap_err();
            assert!(
                matches!(&err, super::DecryptCommandError::Decrypt { .. }),
                "{suite}: {err}"
            );
            let mut left: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(
                left,
                ["data", "msg", "out"],
                "{suite}: no rejected or partial output"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

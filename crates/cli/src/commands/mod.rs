//! Subcommands. Each lives in its own module: an `Args` struct (clap) and a `run` function
//! returning that module's own `thiserror` error. This module only dispatches and reports.

use std::error::Error;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crdgen;
mod decrypt;
mod encrypt;
mod envelope_file;
mod features;
mod operator;
mod worker;

#[derive(Debug, Parser)]
#[command(
    name = "securepipe",
    version,
    about = "Secure ML-training data pipeline operator"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the CustomResourceDefinitions (crds/*.yaml).
    Crdgen(crdgen::Args),
    /// Compute MFCC or log-mel features of a WAV file, equal to librosa's, into a .npy file.
    Features(features::Args),
    /// Run the TrainingPartition and RetentionPolicy controllers.
    Operator(operator::Args),
    /// Encrypt a file into an AWS Encryption SDK message with a KMS data key.
    Encrypt(encrypt::Args),
    /// Decrypt an AWS Encryption SDK message, requiring encryption context pairs.
    Decrypt(decrypt::Args),
    /// Extract-and-shred one partition: raw samples into verified features, then delete
    /// every raw version.
    Worker(securepipe_worker::Args),
}

impl Cli {
    pub fn run(self) -> ExitCode {
        let result: Result<(), Box<dyn Error>> = match self.command {
            Command::Crdgen(args) => crdgen::run(args).map_err(Into::into),
            Command::Features(args) => features::run(args).map_err(Into::into),
            Command::Operator(args) => operator::run(args).map_err(Into::into),
            Command::Encrypt(args) => encrypt::run(args).map_err(Into::into),
            Command::Decrypt(args) => decrypt::run(args).map_err(Into::into),
            Command::Worker(args) => worker::run(args).map_err(Into::into),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                report(err.as_ref());
                ExitCode::FAILURE
            }
        }
    }
}

/// Prints an error and its chain of causes, one per line, to stderr.
fn report(err: &dyn Error) {
    eprintln!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

/// A multi-threaded Tokio runtime for the subcommands that talk to servers.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

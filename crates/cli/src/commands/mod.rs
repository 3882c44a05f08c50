//! Subcommands. Each lives in its own module and owns its arguments.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "securepipe", version, about = "Secure ML-training data pipeline operator")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

impl Cli {
    pub fn run(self) -> std::process::ExitCode {
        match self.command {}
    }
}

//! `securepipe`: one binary for the operator, the worker and the tools around them.
#![forbid(unsafe_code)]

mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    commands::Cli::parse().run()
}

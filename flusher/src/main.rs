//! The `ringflush` binary: parses the command line and runs it through
//! [`ringflush::main_with`], which prints any error and picks the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = std::env::args().skip(1).collect();
    ringflush::main_with(ringflush::cli::Cli::parse(), args).into()
}

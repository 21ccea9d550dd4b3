use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ringflush::main_with(ringflush::cli::Cli::parse()).into()
}

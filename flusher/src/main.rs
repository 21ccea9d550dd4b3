//! The `ringflush` binary: parses the command line and runs it through
//! [`ringflush::main_with`], which prints any error and picks the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match ringflush::cli::parse(std::env::args()) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    let args = std::env::args().skip(1).collect();
    ringflush::main_with(cli, args).into()
}

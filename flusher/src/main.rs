use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ringflush::cli::Cli::parse();
    match ringflush::run_cli(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringflush: {e:#}");
            ExitCode::FAILURE
        }
    }
}

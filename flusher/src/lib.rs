//! The `ringflush` flusher: the one process that drains the ring, formats
//! records, writes them and rotates the file. The binary (`main.rs`) is a thin
//! shell over [`main_with`]; the Python package runs the same function.
//!
//! Three rooms, each depending only on the ones before it:
//! - [`output`] (private): the log file, its rotation rules, what happens to
//!   rotated files. It knows nothing of the ring or the command line.
//! - `drain` (private): the loop that drains segments into the output.
//! - `commands` (private): each subcommand, and running the flusher.
//!
//! Around them, the shell: [`cli`] (the command line), `config` (the
//! checked flusher configuration), [`report`] (how the operator is told),
//! `now` (time, passed in).

pub mod cli;
mod commands;
mod config;
mod drain;
mod now;
mod output;
pub mod report;

pub use commands::verify;
pub use commands::{set_self_command, Exit};

/// Run a command line as the binary does: the exit code, with any error
/// printed once (`ringflush: what: why`). `args` are the arguments after the
/// program name, which a flusher publishes in its segment.
pub fn main_with(cli: cli::Cli, args: Vec<String>) -> Exit {
    match commands::run(cli, args) {
        Ok(code) => code,
        Err(e) => {
            report::error(&e);
            Exit::Error
        }
    }
}

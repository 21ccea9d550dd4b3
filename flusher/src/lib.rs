//! The `ringflush` flusher: the one process that drains the ring, formats
//! records, writes them and rotates the file. The binary (`main.rs`) is a thin
//! shell over [`run_cli`].

pub mod batch;
pub mod bench;
pub mod cli;
pub mod compress;
pub mod config;
pub mod demo;
pub mod fault;
pub mod flusher;
pub mod health;
mod idle;
pub mod liveness;
pub mod logdir;
pub mod losses;
pub mod notify;
pub mod now;
pub mod output;
pub mod output_error;
pub mod paths;
pub mod pipe;
pub mod post_rotate;
pub mod recovery;
pub mod report;
pub mod retire;
pub mod rm;
pub mod signals;
pub mod source;
pub mod stat;
pub mod stuck;
mod upkeep;
pub mod verify;
pub mod worker;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use ringflush_rotation::{Timed, When};

use cli::{Cli, Command};
pub use config::flusher_config;
use flusher::Signals;

/// Exit codes of every command, the binary's and `python -m ringflush`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done as asked.
    Ok = 0,
    /// The command ran and found a problem (`demo`: records lost).
    Problem = 1,
    /// The command could not do its job (bad arguments, I/O, a segment in
    /// use): the error has been printed.
    Error = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Print `text` on stdout. A reader that went away (`stat | head`) is not
/// an error: the command has done its job.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Run a command line as the binary does: the exit code, with any error
/// printed once (`ringflush: what: why`). `args` are the arguments after the
/// program name, which a flusher publishes in its segment.
pub fn main_with(cli: Cli, args: Vec<String>) -> Exit {
    match run_cli(cli, args) {
        Ok(code) => code,
        Err(e) => {
            report::error(&e);
            Exit::Error
        }
    }
}

/// Run a parsed command line (`args`: what it was parsed from, after the
/// program name); errors carry their context for `main`.
pub fn run_cli(cli: Cli, args: Vec<String>) -> Result<Exit> {
    match (cli.command, cli.flusher) {
        (Some(Command::Pipe(a)), _) => pipe::run(&a, std::io::stdin().lock()).map(|_| Exit::Ok),
        (Some(Command::Stat(a)), _) => {
            let mut text = stat::run(&a)?;
            if a.json {
                text.push('\n');
            }
            print_stdout(&text).map(|()| Exit::Ok)
        }
        (Some(Command::Rm(a)), _) => rm::run(&a).map(|()| Exit::Ok),
        (Some(Command::Bench(a)), _) => bench::run(&a).map(|_| Exit::Ok),
        (Some(Command::Demo(a)), _) => Ok(if demo::run(&a)? {
            Exit::Ok
        } else {
            Exit::Problem
        }),
        (Some(Command::Worker(a)), _) => worker::run(&a),
        (Some(Command::Rollover(a)), _) => {
            let timed = Timed::new(
                When::parse(&a.when)?,
                a.interval,
                a.at_time.as_deref(),
                a.utc,
            )?;
            let mut text = String::new();
            for &t in &a.from {
                let at = timed.next_rollover(t);
                text += &format!("{t} {at} {}\n", timed.rotated_suffix(at, at));
            }
            print_stdout(&text).map(|()| Exit::Ok)
        }
        (Some(Command::Retention(a)), _) => {
            let timed = Timed::new(When::parse(&a.when)?, 1, None, a.utc)?;
            let dir = logdir::LogDir::open(a.file.parent().unwrap_or("".as_ref()))?;
            let base = a.file.file_name().unwrap_or_default().to_string_lossy();
            let excess = retire::dated_excess(&dir, &base, &timed, a.backup_count)?;
            let text: String = excess
                .iter()
                .map(|n| format!("{}\n", dir.join(n).display()))
                .collect();
            print_stdout(&text).map(|()| Exit::Ok)
        }
        (None, Some(a)) => {
            let mut cfg = flusher_config(&a)?;
            cfg.args = args;
            let signals = Signals::install()?;
            flusher::run(&cfg, &signals)?;
            Ok(Exit::Ok)
        }
        (None, None) => {
            bail!("nothing to do: give --shm NAME to run the flusher, or a subcommand (see --help)")
        }
    }
}

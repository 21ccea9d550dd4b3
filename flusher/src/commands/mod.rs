//! The subcommands, and running the flusher itself: each takes its parsed
//! arguments and returns the [`Exit`] code, printing what it has to say
//! (errors are the caller's to print, once).

mod bench;
mod demo;
mod ls;
mod pipe;
mod rm;
mod rotate;
mod schedule;
mod segments;
mod stat;
pub mod verify;
mod worker;

use std::ffi::OsString;
use std::process::{self, ExitCode};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, Command, FlusherArgs};
use crate::config::flusher_config;
use crate::drain::{self, Signals};

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

/// How this program runs itself (`demo` and `bench` start a flusher and
/// workers), when it is not its own binary: inside Python, the pip-installed
/// command runs as the interpreter, which needs `-m ringflush`.
static SELF_COMMAND: OnceLock<Vec<OsString>> = OnceLock::new();

/// Say how to run this program again (the Python extension: its
/// interpreter, `-m`, `ringflush`); the first call counts.
pub fn set_self_command(argv: Vec<OsString>) {
    let _ = SELF_COMMAND.set(argv);
}

/// A command that runs this program again, to add arguments to.
///
/// # Errors
/// When the running binary cannot be located.
fn self_command() -> Result<process::Command> {
    match SELF_COMMAND.get().and_then(|argv| argv.split_first()) {
        Some((program, args)) => {
            let mut c = process::Command::new(program);
            c.args(args);
            Ok(c)
        }
        None => Ok(process::Command::new(
            std::env::current_exe().context("locating the ringflush binary")?,
        )),
    }
}

/// Run a parsed command line (`args`: what it was parsed from, after the
/// program name); errors carry their context for `main`.
pub fn run(cli: Cli, args: Vec<String>) -> Result<Exit> {
    match (cli.command, cli.flusher) {
        (Some(Command::Pipe(a)), _) => pipe::run(&a, std::io::stdin().lock()),
        (Some(Command::Stat(a)), _) => stat::run(&a),
        (Some(Command::Ls(a)), _) => ls::run(&a),
        (Some(Command::Rm(a)), _) => rm::run(&a),
        (Some(Command::Rotate(a)), _) => rotate::run(&a),
        (Some(Command::Bench(a)), _) => bench::run(&a),
        (Some(Command::Demo(a)), _) => demo::run(&a),
        (Some(Command::Worker(a)), _) => worker::run(&a),
        (Some(Command::Rollover(a)), _) => schedule::rollover(&a),
        (Some(Command::Retention(a)), _) => schedule::retention(&a),
        (None, Some(a)) => flush(&a, args),
        (None, None) => {
            bail!("nothing to do: give --shm NAME to run the flusher, or a subcommand (see --help)")
        }
    }
}

/// Run the flusher until SIGTERM/SIGINT (or, with `--exit-when-idle`, until
/// no producer is left).
fn flush(a: &FlusherArgs, args: Vec<String>) -> Result<Exit> {
    crate::report::timestamp_stderr(a.timestamps);
    let mut cfg = flusher_config(a)?;
    cfg.args = args;
    let signals = Signals::install()?;
    match drain::run(&cfg, &signals) {
        // A flusher an application started (several of its processes may
        // try at once) has nothing to do when another runs: not an error.
        Err(e) if cfg.exit_when_idle && e.is::<drain::AlreadyRunning>() => Ok(Exit::Ok),
        Err(e) => Err(e),
        Ok(_) => Ok(Exit::Ok),
    }
}

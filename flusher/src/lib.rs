//! The `ringflush` flusher: the one process that drains the ring, formats
//! records, writes them and rotates the file. The binary (`main.rs`) is a thin
//! shell over [`run_cli`].

pub mod bench;
pub mod cli;
pub mod demo;
pub mod flusher;
pub mod liveness;
pub mod output;
pub mod pipe;
pub mod recovery;
pub mod retire;
pub mod stat;
pub mod verify;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ringflush_format::FormatSpec;
use ringflush_rotation::{Timed, When};

use cli::{Cli, Command, FlusherArgs};
use flusher::{FlusherConfig, Signals};
use output::RotationConfig;

/// Turn the flusher's arguments into a checked configuration.
pub fn flusher_config(a: &FlusherArgs) -> Result<FlusherConfig> {
    let file = match &a.file {
        Some(f) => f.clone(),
        None => {
            let name = a.shm.trim_start_matches('/');
            if name.is_empty() || name.contains('/') {
                bail!("invalid --shm {:?}: it must look like /applog", a.shm);
            }
            PathBuf::from(format!("{name}.log"))
        }
    };
    let timed = match &a.when {
        Some(w) => Some(Timed::new(
            When::parse(w)?,
            a.interval,
            a.at_time.as_deref(),
            a.utc,
        )?),
        None if a.at_time.is_some() => bail!("--at-time needs --when midnight or W0-W6"),
        None => None,
    };
    if a.max_bytes == Some(0) {
        bail!("--max-bytes must be at least 1");
    }
    if !(a.unblock_timeout > 0.0 && a.unblock_timeout < 86_400.0) {
        bail!("--unblock-timeout must be between 0 and 86400 seconds");
    }
    let gid = a.group.as_deref().map(flusher::group_id).transpose()?;
    Ok(FlusherConfig {
        shm: a.shm.clone(),
        file,
        format: FormatSpec {
            format: a.format.clone(),
            datefmt: a.datefmt.clone(),
            escape: a.escape,
            utc: false,
        },
        size: a.size,
        mode: a.mode,
        gid,
        allow_foreign: a.allow_foreign,
        rotation: RotationConfig {
            timed,
            max_bytes: a.max_bytes,
            backup_count: a.backup_count,
            gzip: match a.compress.as_deref() {
                None | Some("none") => false,
                Some("gzip") => true,
                Some(other) => bail!("invalid --compress {other:?}: use gzip or none"),
            },
            post_rotate: a.post_rotate.clone(),
            file_mode: a.file_mode,
        },
        unblock_timeout: Duration::from_secs_f64(a.unblock_timeout),
    })
}

/// Run a parsed command line; errors carry their context for `main`.
pub fn run_cli(cli: Cli) -> Result<ExitCode> {
    match (cli.command, cli.flusher) {
        (Some(Command::Pipe(a)), _) => {
            pipe::run(&a, std::io::stdin().lock()).map(|_| ExitCode::SUCCESS)
        }
        (Some(Command::Stat(a)), _) => {
            print!("{}", stat::run(&a)?);
            if a.json {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        (Some(Command::Bench(a)), _) => bench::run(&a).map(|_| ExitCode::SUCCESS),
        (Some(Command::Demo(a)), _) => Ok(if demo::run(&a)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        (Some(Command::Worker(a)), _) => worker::run(&a).map(|_| ExitCode::SUCCESS),
        (Some(Command::Rollover(a)), _) => {
            let timed = Timed::new(
                When::parse(&a.when)?,
                a.interval,
                a.at_time.as_deref(),
                a.utc,
            )?;
            for &t in &a.from {
                let (at, suffix) = if a.utc {
                    let at = timed.compute_rollover(&ringflush_rotation::UtcZone, t);
                    (at, timed.suffix_for(&ringflush_rotation::UtcZone, at, at))
                } else {
                    let at = timed.compute_rollover(&ringflush_rotation::LocalZone, t);
                    (at, timed.suffix_for(&ringflush_rotation::LocalZone, at, at))
                };
                println!("{t} {at} {suffix}");
            }
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(a)) => {
            let cfg = flusher_config(&a)?;
            let signals = Signals::install()?;
            flusher::run(&cfg, &signals).with_context(|| format!("flusher for {}", a.shm))?;
            Ok(ExitCode::SUCCESS)
        }
        (None, None) => {
            bail!("nothing to do: give --shm NAME to run the flusher, or a subcommand (see --help)")
        }
    }
}

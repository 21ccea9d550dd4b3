//! `ringflush pipe`: each stdin line becomes one record.

use std::io::{BufRead, Read};

use anyhow::{bail, Context, Result};
use ringflush_producer::{level, Producer, Record};

use super::Exit;
use crate::cli::PipeArgs;

/// Log each line of `input` (without its `\n` or `\r\n`; any bytes) as one
/// record at `--level` from logger `--name`, until end of input. The
/// segment is opened, or created, with the producer's defaults.
///
/// # Errors
/// When `--level` does not parse, the segment cannot be opened, `input`
/// cannot be read, or any line was not logged (ring full, record too large,
/// or abandoned).
pub fn run(args: &PipeArgs, input: impl Read) -> Result<Exit> {
    let lvl = level::parse(&args.level).with_context(|| {
        format!(
            "invalid --level {:?}: use DEBUG, INFO, WARNING, ERROR, CRITICAL, TRACE or a number",
            args.level
        )
    })?;
    let producer = Producer::open(&args.shm)?;
    let mut input = std::io::BufReader::with_capacity(1 << 16, input);
    let mut line = Vec::with_capacity(4096);
    let (mut sent, mut failed) = (0u64, 0u64);
    let thread_id = rustix::thread::gettid().as_raw_nonzero().get() as u64;
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?
            == 0
        {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let rec = Record {
            level: lvl,
            thread_id,
            thread_name: b"MainThread",
            logger: args.name.as_bytes(),
            message: &line,
            ..Record::default()
        };
        match producer.write(&rec) {
            Ok(()) => sent += 1,
            Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        bail!("{failed} of {} lines were not logged (ring full or records abandoned); see the log and `ringflush stat`", sent + failed);
    }
    Ok(Exit::Ok)
}

//! `ringflush worker` (hidden): a Rust producer process writing numbered
//! records `worker=<id> seq=<n>`, used by the demo, the tests and benches.

use std::time::{Duration, Instant};

use anyhow::Result;
use ringflush_producer::{level, Producer, WriteError};

use super::Exit;
use crate::cli::WorkerArgs;

/// Write the records; [`Exit::Problem`] when some were not logged.
pub fn run(args: &WorkerArgs) -> Result<Exit> {
    if args.latency {
        return timed(args).map(|_| Exit::Ok);
    }
    let producer = Producer::open(&args.shm)?;
    let progress = match &args.progress {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    let deadline =
        (args.seconds > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.seconds));
    let logger = format!("worker.{}", args.id);
    let mut msg = String::with_capacity(64);
    let mut failed = 0u64;
    let mut seq = 0u64;
    loop {
        if args.count > 0 && seq >= args.count {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if args.count == 0 && deadline.is_none() {
            break;
        }
        msg.clear();
        use std::fmt::Write;
        let _ = write!(msg, "worker={} seq={seq}", args.id);
        let logged = log_one(
            &producer,
            &logger,
            &msg,
            args.retry_full.then_some(deadline),
        );
        seq += 1;
        if !logged {
            failed += 1;
        } else if let Some(file) = &progress {
            std::os::unix::fs::FileExt::write_all_at(file, &seq.to_le_bytes(), 0)?;
        }
        if args.pause_us > 0 {
            std::thread::sleep(Duration::from_micros(args.pause_us));
        }
    }
    println!("{seq}");
    if failed > 0 {
        let id = args.id;
        crate::report::stderr(format_args!(
            "worker {id}: {failed} of {seq} records were not logged"
        ));
        return Ok(Exit::Problem);
    }
    Ok(Exit::Ok)
}

/// Log one record; with `retry_until` (`--retry-full`), a record the ring
/// had no room for is tried again every millisecond until the deadline.
fn log_one(
    producer: &Producer,
    logger: &str,
    msg: &str,
    retry_until: Option<Option<Instant>>,
) -> bool {
    loop {
        match producer.log(level::INFO, logger, msg) {
            Ok(()) => return true,
            Err(WriteError::Full)
                if retry_until.is_some_and(|d| d.is_none_or(|d| Instant::now() < d)) =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
}

/// Write `--message-bytes` records as fast as possible until `--seconds`,
/// timing each call with the monotonic clock; print the count and
/// percentiles. The clock's own cost (~25 ns) is included.
fn timed(args: &WorkerArgs) -> Result<u64> {
    let producer = Producer::open(&args.shm)?;
    let msg = "m".repeat(args.message_bytes);
    let logger = format!("bench.{}", args.id);
    let end = Instant::now() + Duration::from_secs_f64(args.seconds.max(0.1));
    let mut samples: Vec<u32> = Vec::with_capacity(1 << 22);
    let mut failed = 0u64;
    while samples.len() < (1 << 24) {
        let t = Instant::now();
        if t >= end {
            break;
        }
        if producer.log(level::INFO, &logger, &msg).is_err() {
            failed += 1;
        }
        samples.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    let n = samples.len() as u64;
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "{n} {} {} {} {} {failed}",
        q(0.5),
        q(0.99),
        q(0.999),
        samples[samples.len() - 1]
    );
    Ok(n)
}

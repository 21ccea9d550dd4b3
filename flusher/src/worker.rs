//! `ringflush worker` (hidden): a Rust producer process writing numbered
//! records `worker=<id> seq=<n>`, used by the demo, the tests and benches.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ringflush_producer::{level, Producer};

use crate::cli::WorkerArgs;

pub fn run(args: &WorkerArgs) -> Result<u64> {
    let producer = Producer::open(&args.shm)?;
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
        if producer.log(level::INFO, &logger, &msg).is_err() {
            failed += 1;
        }
        seq += 1;
        if args.pause_us > 0 {
            std::thread::sleep(Duration::from_micros(args.pause_us));
        }
    }
    if failed > 0 {
        bail!(
            "worker {}: {failed} of {seq} records were not logged",
            args.id
        );
    }
    println!("{seq}");
    Ok(seq)
}

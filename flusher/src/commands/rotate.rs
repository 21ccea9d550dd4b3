//! `ringflush rotate --shm NAME`: ask the segment's flusher to roll its
//! file over now, and wait until it has (`ringflush_ring::requests`). The
//! same request `doRollover()` makes from Python; SIGUSR1 to the flusher
//! does it without waiting.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ringflush_ring::{requests, Segment, SegmentOptions};

use super::Exit;
use crate::cli::RotateArgs;

/// How often the request is looked at while waiting.
const POLL: Duration = Duration::from_millis(2);

/// Ask for a rollover and wait for it (see the module docs).
///
/// # Errors
/// When the segment cannot be opened, no flusher runs for it, or it did
/// not roll over within `--timeout`.
pub fn run(args: &RotateArgs) -> Result<Exit> {
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        bail!("invalid --timeout {}: expected seconds >= 0", args.timeout);
    }
    let seg = Segment::open(&args.shm, &SegmentOptions::inspect())?;
    if !seg.flusher_alive() {
        bail!(
            "no flusher is running for segment {}: nothing would roll the file over",
            args.shm
        );
    }
    let request = requests::request_rollover(seg.header());
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    while !requests::rollover_done(seg.header(), request) {
        if !seg.flusher_alive() {
            bail!(
                "the flusher of segment {} exited before rolling over",
                args.shm
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the flusher of segment {} did not roll over within {} s",
                args.shm,
                args.timeout
            );
        }
        std::thread::sleep(POLL);
    }
    Ok(Exit::Ok)
}

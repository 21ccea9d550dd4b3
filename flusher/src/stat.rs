//! `ringflush stat`: what is in a segment and whether its flusher is alive.

use std::sync::atomic::Ordering;

use anyhow::Result;
use ringflush_ring::{Segment, SegmentOptions};
use serde_json::json;

use crate::cli::StatArgs;

/// The report on the existing segment `--shm`: text, or one JSON object
/// with `--json` (without a trailing newline). The segment is not created
/// and its pages are not faulted in.
///
/// # Errors
/// When the segment cannot be opened (see `Segment::open`).
pub fn run(args: &StatArgs) -> Result<String> {
    let seg = Segment::open(
        &args.shm,
        &SegmentOptions {
            create: false,
            prefault: false,
            ..SegmentOptions::default()
        },
    )?;
    let h = seg.header();
    let head = h.head.0.load(Ordering::Acquire);
    let tail = h.tail.0.load(Ordering::Acquire);
    let cap = seg.capacity();
    let used = tail.saturating_sub(head);
    let pid = h.flusher.pid.load(Ordering::Relaxed);
    let heartbeat = h.flusher.heartbeat_ns.load(Ordering::Relaxed);
    let age_ms = ringflush_ring::now_ns().saturating_sub(heartbeat) / 1_000_000;
    // Alive: the lock is held (probing it would race a starting flusher, so
    // look at the pid and a heartbeat younger than 3 s instead).
    let alive = pid != 0
        && heartbeat != 0
        && age_ms < 3000
        && std::path::Path::new(&format!("/proc/{pid}")).exists();
    let c = &h.counters;
    let counters = [
        ("written", c.written.load(Ordering::Relaxed)),
        ("dropped", c.dropped.load(Ordering::Relaxed)),
        ("abandoned", c.abandoned.load(Ordering::Relaxed)),
        ("corrupt", c.corrupt.load(Ordering::Relaxed)),
        ("truncated", c.truncated.load(Ordering::Relaxed)),
        ("late_commits", c.late_commits.load(Ordering::Relaxed)),
    ];
    let write_errno = h.flusher.write_errno.load(Ordering::Relaxed);
    if args.json {
        let mut v = json!({
            "shm": args.shm,
            "capacity": cap,
            "max_record": h.identity.max_record.load(Ordering::Relaxed),
            "used": used,
            "fill": used as f64 / cap as f64,
            "head": head,
            "tail": tail,
            "flusher": {"pid": pid, "alive": alive, "heartbeat_age_ms": if heartbeat == 0 { None } else { Some(age_ms) }, "write_errno": write_errno},
        });
        for (k, n) in counters {
            v[k] = json!(n);
        }
        return Ok(v.to_string());
    }
    let mut s = format!(
        "segment   {}\ncapacity  {} bytes\nused      {} bytes ({:.1}%)\nhead      {}\ntail      {}\nflusher   {}\n",
        args.shm,
        cap,
        used,
        100.0 * used as f64 / cap as f64,
        head,
        tail,
        match (pid, alive) {
            (0, _) => "never ran".to_string(),
            (p, true) => format!("pid {p}, alive (heartbeat {age_ms} ms ago)"),
            (p, false) => format!("pid {p}, dead or stopped"),
        }
    );
    if write_errno != 0 {
        s += &format!(
            "write     failing: {}\n",
            std::io::Error::from_raw_os_error(write_errno as i32)
        );
    }
    for (k, n) in counters {
        s += &format!("{k:<13} {n}\n");
    }
    Ok(s)
}

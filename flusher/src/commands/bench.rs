//! `ringflush bench`: a flusher and N producer processes writing as fast as
//! they can with the blocking policy, in a temp dir; a progress line each
//! second, then records/s end to end (until the flusher has written
//! everything), drops (must be 0) and the producers' per-call latency.

use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringflush_ring::{Segment, SegmentHeader, SegmentOptions};

use super::Exit;
use crate::cli::BenchArgs;

/// Run the benchmark and print its results on stdout. The flusher writes
/// into a temp dir; it is stopped, and the dir and the segment removed,
/// afterwards.
///
/// # Errors
/// When the arguments are not positive, a process cannot be started, the
/// flusher does not announce itself within 10 s, or a producer fails.
pub fn run(args: &BenchArgs) -> Result<Exit> {
    if args.producers == 0 || args.seconds <= 0.0 {
        bail!("--producers and --seconds must be positive");
    }
    let dir = tempfile::Builder::new()
        .prefix("ringflush-bench-")
        .tempdir()?;
    let shm = format!("/ringflush-bench-{}", std::process::id());
    let mut flusher = super::self_command()?
        .args([
            "--shm",
            &shm,
            "--format",
            "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
            "--lanes",
            &args.lanes.to_string(),
            "--file",
        ])
        .arg(dir.path().join("bench.log"))
        .stderr(Stdio::null())
        .spawn()
        .context("starting the flusher")?;
    let result = measure(&shm, args);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(flusher.id() as libc::pid_t, libc::SIGTERM) };
    let _ = flusher.wait();
    let _ = Segment::unlink(&shm);
    result.map(|()| Exit::Ok)
}

/// (name, (VmRSS, RssAnon, RssShmem)) per process.
type Memory = Vec<(String, (u64, u64, u64))>;

fn measure(shm: &str, args: &BenchArgs) -> Result<()> {
    let seg = wait_for_flusher(shm)?;
    let h = seg.header();
    println!(
        "ringflush bench: {} producer processes, {}-byte messages, {:.1} s, blocking policy, {} lanes, {} cores",
        args.producers,
        args.message_bytes,
        args.seconds,
        args.lanes,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let start = Instant::now();
    let workers: Vec<_> = (0..args.producers)
        .map(|id| {
            super::self_command()?
                .args(["worker", "--latency", "--shm", shm, "--id", &id.to_string()])
                .args([
                    "--seconds",
                    &args.seconds.to_string(),
                    "--message-bytes",
                    &args.message_bytes.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a producer")
        })
        .collect::<Result<_>>()?;
    let memory = watch(h, &workers, start, args.seconds);
    let mut committed = 0u64;
    let mut rows = Vec::new();
    for (id, w) in workers.into_iter().enumerate() {
        let out = w.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        if !out.status.success() || v.len() != 6 {
            bail!("producer {id} failed: {text}");
        }
        committed += v[0] - v[5];
        rows.push(v);
    }
    while h.counters.written.load(Ordering::Relaxed) < committed {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let dropped = h.counters.dropped.load(Ordering::Relaxed);
    print_results(&rows, committed, elapsed, dropped, &memory);
    if dropped > 0 {
        bail!("{dropped} records were dropped");
    }
    Ok(())
}

/// The segment, once its flusher has announced itself.
fn wait_for_flusher(shm: &str) -> Result<Segment> {
    let opts = SegmentOptions {
        create: false,
        ..SegmentOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Segment::open(shm, &opts) {
            Ok(s) if s.header().flusher.pid.load(Ordering::Relaxed) != 0 => return Ok(s),
            _ if Instant::now() > deadline => bail!("the flusher did not start"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Print the write rate once a second while the workers run; returns the
/// memory of every process, sampled while all were still running.
fn watch(h: &SegmentHeader, workers: &[Child], start: Instant, seconds: f64) -> Memory {
    let mut last = (0u64, Instant::now());
    let mut memory = Memory::new();
    while start.elapsed().as_secs_f64() < seconds {
        std::thread::sleep(Duration::from_secs(1).min(Duration::from_secs_f64(seconds)));
        let n = h.counters.written.load(Ordering::Relaxed);
        let rate = (n - last.0) as f64 / last.1.elapsed().as_secs_f64();
        println!(
            "  {:>5.1} s  {n:>12} records written  {rate:>12.0} records/s",
            start.elapsed().as_secs_f64()
        );
        last = (n, Instant::now());
        let flusher = h.flusher.pid.load(Ordering::Relaxed);
        memory = std::iter::once(("flusher".to_string(), flusher))
            .chain(
                workers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (format!("producer {i}"), w.id())),
            )
            .filter_map(|(name, pid)| rss(pid).map(|m| (name, m)))
            .collect();
    }
    memory
}

fn print_results(rows: &[Vec<u64>], committed: u64, elapsed: f64, dropped: u64, memory: &Memory) {
    println!("\n| producer | calls | p50 ns | p99 ns | p99.9 ns | max ns |");
    println!("|---|---|---|---|---|---|");
    for (id, v) in rows.iter().enumerate() {
        println!(
            "| {id} | {} | {} | {} | {} | {} |",
            v[0], v[1], v[2], v[3], v[4]
        );
    }
    println!(
        "\n{committed} records in {elapsed:.2} s end to end: {:.0} records/s; dropped: {dropped}",
        committed as f64 / elapsed
    );
    if !memory.is_empty() {
        println!("\n| process | resident KiB | private (anon) KiB | shared ring (shmem) KiB |");
        println!("|---|---|---|---|");
        for (name, (rss, anon, shmem)) in memory {
            println!("| {name} | {rss} | {anon} | {shmem} |");
        }
        println!(
            "(the ring is one shared mapping, counted in every process's resident size; \
             each process's own cost is its private memory)"
        );
    }
}

/// (VmRSS, RssAnon, RssShmem) in KiB from /proc/<pid>/status.
fn rss(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:")?, field("RssShmem:")?))
}

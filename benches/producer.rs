//! Criterion: one producer call (100-byte message) with the real flusher
//! draining, against one O_APPEND write(2) of the same line.
//!
//! Calls are timed in bursts of 1000 with the ring drained between bursts
//! (untimed): what a caller pays while the flusher keeps up. Sustained
//! overload is the end-to-end figure of the `latency` bench instead.
//!
//! `cargo bench --bench producer`

mod common;

use std::fs::OpenOptions;
use std::io::Write;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use ringflush_producer::{level, Producer};

fn producer_call(c: &mut Criterion) {
    let mut bench = common::Bench::new("criterion");
    bench.start_flusher("256M", "%(message)s");
    let producer = Producer::open(&bench.shm).unwrap();
    let msg = common::message_100();
    let mut g = c.benchmark_group("log 100 B");
    let seg = bench.segment().unwrap();
    let ring = seg.ring();
    g.bench_function("ringflush producer", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                while ring.used() > 0 {
                    std::hint::spin_loop();
                }
                let n = left.min(1000);
                let t = Instant::now();
                for _ in 0..n {
                    producer.log(level::INFO, "bench", black_box(&msg)).unwrap();
                }
                total += t.elapsed();
                left -= n;
            }
            total
        })
    });
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(bench.dir.path().join("append.log"))
        .unwrap();
    let line = format!("{msg}\n");
    g.bench_function("write(2) O_APPEND", |b| {
        b.iter(|| file.write_all(line.as_bytes()).unwrap())
    });
    g.finish();
}

/// The benchmarks `main` runs. In a private module: `criterion_group!`
/// defines a `pub fn` it gives no doc comment.
mod group {
    criterion::criterion_group!(benches, super::producer_call);
}

criterion_main!(group::benches);

//! Criterion: one producer call (100-byte message) with the real flusher
//! draining, against one O_APPEND write(2) of the same line; and one
//! `tracing` event with three fields inside a span through `RingLayer`,
//! against tracing's dispatch with a layer that does nothing and tracing's
//! own fmt layer writing into `io::sink`.
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
use ringflush_ring::Segment;

fn producer_call(c: &mut Criterion) {
    let mut bench = common::Bench::new("criterion");
    bench.start_flusher("256M", "%(message)s");
    let producer = Producer::open(&bench.shm).unwrap();
    let msg = common::message_100();
    let mut g = c.benchmark_group("log 100 B");
    let seg = bench.segment().unwrap();
    g.bench_function("ringflush producer", |b| {
        b.iter_custom(|iters| {
            drained_bursts(&seg, iters, || {
                producer.log(level::INFO, "bench", black_box(&msg)).unwrap();
            })
        })
    });
    // The same call on a segment with lanes: the thread writes into a lane
    // of its own, with no CAS (`--lanes`).
    let mut lanes = common::Bench::new("criterion-lanes");
    lanes.start_flusher_with("256M", "%(message)s", &["--lanes", "4"]);
    let lane_producer = Producer::open(&lanes.shm).unwrap();
    let lane_seg = lanes.segment().unwrap();
    g.bench_function("ringflush producer, in a lane", |b| {
        b.iter_custom(|iters| {
            drained_bursts(&lane_seg, iters, || {
                lane_producer
                    .log(level::INFO, "bench", black_box(&msg))
                    .unwrap();
            })
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

/// Time `iters` calls of `event` in bursts of 1000, with the ring drained
/// between bursts (untimed).
fn drained_bursts(seg: &Segment, iters: u64, mut event: impl FnMut()) -> Duration {
    let ring = seg.ring();
    let lanes = seg.lanes();
    let lanes_used = || {
        lanes
            .as_ref()
            .map_or(0, |l| (0..l.count()).map(|i| l.pending(i)).sum())
    };
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        while ring.used() > 0 || lanes_used() > 0 {
            std::hint::spin_loop();
        }
        let n = left.min(1000);
        let t = Instant::now();
        for _ in 0..n {
            event();
        }
        total += t.elapsed();
        left -= n;
    }
    total
}

/// A layer doing what any layer that writes an event's fields and spans
/// must: visit the fields and look up the event's span and its parents.
struct VisitOnly;

impl<S> tracing_subscriber::Layer<S> for VisitOnly
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Count(usize);
        impl tracing::field::Visit for Count {
            fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 += black_box(value as *const dyn std::fmt::Debug).is_null() as usize + 1;
            }
        }
        let mut count = Count(0);
        event.record(&mut count);
        if let Some(span) = ctx.event_span(event) {
            for s in span.scope() {
                count.0 += black_box(s.extensions().get::<u64>().is_some()) as usize;
            }
        }
        black_box(count.0);
    }
}

fn tracing_event(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt;
    let mut bench = common::Bench::new("criterion-tracing");
    bench.start_flusher("256M", "%(message)s");
    let seg = bench.segment().unwrap();
    let msg = common::message_100();
    let dispatches = [
        (
            "layer doing nothing",
            tracing::Dispatch::new(
                tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new()),
            ),
        ),
        (
            "(visiting the fields and looking up the span, nothing more)",
            tracing::Dispatch::new(tracing_subscriber::registry().with(VisitOnly)),
        ),
        (
            "RingLayer",
            tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(ringflush_producer::RingLayer::open(&bench.shm).unwrap()),
            ),
        ),
        (
            "tracing fmt into io::sink",
            tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
            ),
        ),
    ];
    let mut g = c.benchmark_group("tracing event, 3 fields in a span");
    for (name, dispatch) in &dispatches {
        tracing::dispatcher::with_default(dispatch, || {
            let span = tracing::info_span!("request", id = 7);
            let _entered = span.enter();
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    drained_bursts(&seg, iters, || {
                        tracing::info!(user_id = 42, path = "/api/items", ok = true, "{}", msg)
                    })
                })
            });
        });
    }
    // Baselines for what any logging of this event must do: format its
    // message; and the same event through the ring's `log` backend.
    let mut text = String::new();
    g.bench_function("(formatting the message alone)", |b| {
        b.iter(|| {
            text.clear();
            let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{}", black_box(&msg)));
            black_box(&text);
        })
    });
    // What RingLayer's record costs to write once assembled: a record of the
    // same shape (message with the spans and fields, binary entries, the
    // event's file and module) through Producer::write.
    let producer = Producer::open(&bench.shm).unwrap();
    let mut entries = Vec::new();
    {
        let mut span = Vec::new();
        ringflush_ring::fields::Entries::new(&mut span).i64("id", 7);
        let mut e = ringflush_ring::fields::Entries::start(
            &mut entries,
            ringflush_ring::fields::Shown::InMessage,
        );
        e.span("request", &span);
        e.message();
        e.i64("user_id", 42);
        e.str("path", "/api/items");
        e.bool("ok", true);
    }
    let record = ringflush_ring::codec::Record {
        level: level::INFO,
        line: 120,
        thread_id: 1,
        thread_name: b"main",
        logger: b"producer",
        pathname: b"benches/producer.rs",
        module: b"producer",
        extra: &entries,
        message: msg.as_bytes(),
        ..Default::default()
    };
    g.bench_function("(Producer::write of a record that shape)", |b| {
        b.iter_custom(|iters| {
            drained_bursts(&seg, iters, || producer.write(black_box(&record)).unwrap())
        })
    });
    ringflush_producer::init(&bench.shm, log::LevelFilter::Info).unwrap();
    g.bench_function("log::info! through the log backend", |b| {
        b.iter_custom(|iters| {
            drained_bursts(
                &seg,
                iters,
                || log::info!(user_id = 42, path = "/api/items", ok = true; "{}", msg),
            )
        })
    });
    g.finish();
}

/// The benchmarks `main` runs. In a private module: `criterion_group!`
/// defines a `pub fn` it gives no doc comment.
mod group {
    criterion::criterion_group!(benches, super::producer_call, super::tracing_event);
}

criterion_main!(group::benches);

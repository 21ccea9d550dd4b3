//! The Rust producer API as a service uses it: one `Producer` shared by many
//! threads, and `log::info!` through the `log` facade.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{read, wait_until, Scratch};
use ringflush_producer::{level, Producer};

#[test]
fn one_producer_many_threads() {
    let s = Scratch::new("threads");
    let f = s.flusher_ready(&["--format", "%(threadName)s %(message)s"]);
    let p = Arc::new(Producer::open(&s.shm).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let p = p.clone();
            std::thread::Builder::new()
                .name(format!("writer-{t}"))
                .spawn(move || {
                    for i in 0..25_000 {
                        p.log(level::INFO, "t", &format!("worker={t} seq={i}"))
                            .unwrap();
                    }
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(wait_until(Duration::from_secs(30), || read(
        &s.path("app.log")
    )
    .lines()
    .count()
        == 100_000));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let log = read(&s.path("app.log"));
    assert!(log.lines().all(|l| {
        let (name, msg) = l.split_once(' ').unwrap();
        name.strip_prefix("writer-") == msg.strip_prefix("worker=").map(|m| &m[..1])
    }));
    let files = ringflush::verify::log_files(&s.path("app.log")).unwrap();
    let expected = (0..4).map(|t| (t, 25_000)).collect();
    let t = ringflush::verify::check(&files, &expected).unwrap();
    assert!(t.ok(), "{t:?}");
}

#[test]
fn log_facade_records_carry_level_target_file_and_line() {
    let s = Scratch::new("logfacade");
    let f = s.flusher_ready(&[
        "--format",
        "%(levelname)s|%(name)s|%(filename)s|%(module)s|%(lineno)d|%(message)s",
    ]);
    ringflush_producer::init(&s.shm, log::LevelFilter::Debug).unwrap();
    let line = line!() + 1;
    log::warn!(target: "app::db", "slow query took {} ms", 1234);
    log::trace!("filtered out by the level");
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .contains("slow query")));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert_eq!(
        read(&s.path("app.log")),
        format!("WARNING|app::db|producer_api.rs|producer_api|{line}|slow query took 1234 ms\n")
    );
    assert!(matches!(
        ringflush_producer::init(&s.shm, log::LevelFilter::Info),
        Err(ringflush_producer::InitError::AlreadySet)
    ));
}

#[test]
fn try_write_returns_full_at_once_without_counting_a_drop() {
    let s = Scratch::new("trywrite");
    // Blocking policy with a long timeout: only try_write_at may return at once.
    let p = Producer::builder(&s.shm)
        .capacity(1 << 16)
        .full_policy(ringflush_producer::FullPolicy::Block {
            timeout: Duration::from_secs(60),
        })
        .open()
        .unwrap();
    let message = "x".repeat(200);
    let record = ringflush_producer::Record {
        level: level::INFO,
        logger: b"try",
        message: message.as_bytes(),
        ..Default::default()
    };
    let mut written = 0;
    let full = loop {
        match p.try_write_at(&record, 1) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "a 64 KiB ring never filled");
    };
    assert_eq!(full, ringflush_producer::WriteError::Full);
    assert!(written > 100);
    let opts = ringflush_ring::SegmentOptions {
        create: false,
        ..Default::default()
    };
    let seg = ringflush_ring::Segment::open(&s.shm, &opts).unwrap();
    let counters = &seg.header().counters;
    // A record that would be cut finds the ring full: nothing is counted.
    let long = "y".repeat(1 << 20);
    let cut = ringflush_producer::Record {
        message: long.as_bytes(),
        ..record
    };
    assert_eq!(
        p.try_write_at(&cut, 1),
        Err(ringflush_producer::WriteError::Full)
    );
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    assert_eq!(counters.dropped.load(relaxed), 0);
    assert_eq!(counters.truncated.load(relaxed), 0);
    // A flusher drains the ring; the same record then goes in.
    let f = s.flusher(&["--format", "%(message)s"]);
    assert!(wait_until(Duration::from_secs(20), || p
        .try_write_at(&record, 1)
        .is_ok()));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
}

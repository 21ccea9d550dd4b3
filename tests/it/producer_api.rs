//! The Rust producer API as a service uses it: one `Producer` shared by many
//! threads, and `log::info!` through the `log` facade.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{read, wait_until, Scratch};
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

/// The log call's records in a lane leave their thread to the lane (layout
/// 5.0): each line still names its own thread and id, for a name the lane
/// holds, one too long for it (carried by each record), and threads that
/// take a recycled lane one after another (one lane, so they must).
#[test]
fn each_line_names_its_thread_whether_the_lane_or_the_record_holds_it() {
    let s = Scratch::new("lanethread");
    let f = s.flusher_ready(&[
        "--lanes",
        "1",
        "--format",
        "%(thread)d|%(threadName)s|%(message)s",
    ]);
    let p = Arc::new(Producer::open(&s.shm).unwrap());
    let long = format!("long-{}", "n".repeat(60));
    let names = ["first".to_string(), long, "after-recycling".to_string()];
    let mut expected = Vec::new();
    for (t, name) in names.iter().enumerate() {
        let p = p.clone();
        let tid = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                for i in 0..2_000 {
                    p.log(level::INFO, "t", &format!("{t}/{i}")).unwrap();
                }
                rustix::thread::gettid().as_raw_nonzero().get()
            })
            .unwrap()
            .join()
            .unwrap();
        expected.extend((0..2_000).map(|i| format!("{tid}|{name}|{t}/{i}")));
        // The next thread finds the lane recycled, or writes into the
        // shared ring: its lines must name it either way.
        let drained = || read(&s.path("app.log")).lines().count() == expected.len();
        assert!(wait_until(Duration::from_secs(30), drained));
    }
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let log = read(&s.path("app.log"));
    let mut got: Vec<&str> = log.lines().collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
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
        format!(
            "WARNING|app::db|producer_api.rs|it::producer_api|{line}|slow query took 1234 ms\n"
        )
    );
    assert!(matches!(
        ringflush_producer::init(&s.shm, log::LevelFilter::Info),
        Err(ringflush_producer::InitError::AlreadySet)
    ));
}

/// A record whose `extra` alone does not fit in the ring's largest record
/// is written without it, and counted as truncated, not dropped.
#[test]
fn fields_too_large_for_the_ring_are_cut_and_counted() {
    let s = Scratch::new("cutfields");
    // Read back from the shared ring below.
    let p = Producer::builder(&s.shm)
        .capacity(1 << 16)
        .lanes(0)
        .open()
        .unwrap();
    let extra = format!(r#"{{"blob":"{}"}}"#, "z".repeat(1 << 16));
    p.write(&ringflush_producer::Record {
        level: level::INFO,
        extra: extra.as_bytes(),
        message: b"kept",
        ..Default::default()
    })
    .unwrap();
    let seg =
        ringflush_ring::Segment::open(&s.shm, &ringflush_ring::SegmentOptions::inspect()).unwrap();
    let counters = &seg.header().counters;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    assert_eq!(counters.truncated.load(relaxed), 1);
    assert_eq!(counters.dropped.load(relaxed), 0);
    let mut consumer = seg.acquire_consumer().unwrap();
    let mut got = Vec::new();
    consumer.drain(u64::MAX, |r| {
        let rec = ringflush_ring::codec::Record::decode(r.payload).unwrap();
        got.push((rec.message.to_vec(), rec.extra.len()));
        true
    });
    assert_eq!(got, [(b"kept".to_vec(), 0)]);
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

/// Fill a 64 KiB ring the flusher created; returns the producer.
fn full_ring(s: &Scratch, policy: ringflush_producer::FullPolicy) -> Producer {
    let p = Producer::builder(&s.shm)
        .create(false)
        .full_policy(ringflush_producer::FullPolicy::Drop)
        .open()
        .unwrap();
    // Down to the smallest record: not even an empty message fits after.
    for size in [200, 50, 0] {
        while p.log(level::INFO, "fill", &"f".repeat(size)).is_ok() {}
    }
    drop(p);
    Producer::builder(&s.shm)
        .create(false)
        .full_policy(policy)
        .open()
        .unwrap()
}

fn dropped(s: &Scratch) -> u64 {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["dropped"].as_u64().unwrap()
}

/// A live flusher that is slow (here: stopped, its heartbeat still fresh):
/// a blocking log call on a full ring waits its timeout for space, then
/// drops the record and counts it.
#[test]
fn block_policy_waits_its_timeout_for_a_live_but_slow_flusher() {
    let s = Scratch::new("slow");
    // The shared ring filled (with lanes a writer finds room in another
    // lane's share; the lanes' own blocking is in lanes.rs).
    let f = s.flusher_ready(&["--size", "64K", "--lanes", "0"]);
    f.signal(libc::SIGSTOP);
    let timeout = Duration::from_millis(1500);
    let p = full_ring(&s, ringflush_producer::FullPolicy::Block { timeout });
    let before = dropped(&s);
    let started = std::time::Instant::now();
    let result = p.log(level::INFO, "late", "waits");
    let waited = started.elapsed();
    assert_eq!(result, Err(ringflush_producer::WriteError::Full));
    // Only a lower bound: the machine may be slow, never faster than asked.
    assert!(waited >= timeout, "{waited:?}");
    assert_eq!(dropped(&s), before + 1);
    f.signal(libc::SIGCONT);
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
}

/// A flusher that died (its heartbeat left behind, going stale): waiting
/// cannot help, so a blocking log call on a full ring drops at once,
/// counted, instead of stalling the application for its whole timeout.
#[test]
fn block_policy_drops_at_once_when_the_flusher_died() {
    let s = Scratch::new("died");
    let f = s.flusher_ready(&["--size", "64K", "--lanes", "0"]);
    f.signal(libc::SIGKILL);
    let (_, _) = f.wait();
    let stale = wait_until(Duration::from_secs(30), || {
        let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["flusher"]["alive"] == false && v["flusher"]["heartbeat_age_ms"].as_u64() > Some(3000)
    });
    assert!(stale, "the dead flusher's heartbeat went stale");
    let timeout = Duration::from_secs(60);
    let p = full_ring(&s, ringflush_producer::FullPolicy::Block { timeout });
    let before = dropped(&s);
    let started = std::time::Instant::now();
    assert_eq!(
        p.log(level::INFO, "late", "dropped"),
        Err(ringflush_producer::WriteError::Full)
    );
    // A bound on a hang (waiting would take the full minute), not a timing.
    assert!(started.elapsed() < timeout / 2, "{:?}", started.elapsed());
    assert_eq!(dropped(&s), before + 1);
}

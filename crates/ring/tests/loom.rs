//! Loom models of claim / commit / wrap / drain / release.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringflush-ring --test loom --release`.
//! Payload bytes live in loom cells (see `HeapRegion`), so loom fails a model
//! if any payload read or zeroing is not ordered after the write it races with.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringflush_ring::frame::RECORD_HEADER_LEN;
use ringflush_ring::{HeapRegion, Region, Ring, SegmentHeader, Stamp, Stop};

struct Shared {
    header: SegmentHeader,
    region: HeapRegion,
}

fn ring_at(cap: u64, max_record: u64, start: u64) -> Arc<Shared> {
    let header = SegmentHeader::default();
    header
        .identity
        .max_record
        .store(max_record, Ordering::Relaxed);
    header.head.0.store(start, Ordering::Relaxed);
    header.tail.0.store(start, Ordering::Relaxed);
    Arc::new(Shared {
        header,
        region: HeapRegion::new(cap),
    })
}

/// Producer `id` writes records `0..n` of `payload` bytes, spinning while full.
fn produce(ring: &Ring<&SegmentHeader, &HeapRegion>, id: u8, n: u8, payload: usize) {
    let cache = AtomicU64::new(ring.header().head.0.load(Ordering::Relaxed));
    for i in 0..n {
        let claim = loop {
            match ring.try_claim(
                RECORD_HEADER_LEN + payload,
                Stamp {
                    pid: id as u32,
                    flags: 0,
                    timestamp: 0,
                },
                &cache,
            ) {
                Ok(c) => break c,
                Err(_) => thread::yield_now(),
            }
        };
        ring.fill(&claim, |buf| buf.fill(id * 16 + i));
        ring.commit(claim).unwrap();
    }
}

/// Consume `total` records; returns them as (producer, index) pairs.
fn consume(ring: &Ring<&SegmentHeader, &HeapRegion>, total: usize) -> Vec<(u8, u8)> {
    let mut seen = Vec::new();
    // SAFETY: the model has exactly one consumer.
    let mut c = unsafe { ring.consumer() };
    while seen.len() < total {
        let stop = c.drain(u64::MAX, |r| {
            let b = r.payload[0];
            assert!(r.payload.iter().all(|&x| x == b), "torn payload");
            assert_eq!(r.stamp.pid as u8, b / 16);
            seen.push((b / 16, b % 16));
            true
        });
        if let Stop::Corrupt(_) = stop {
            let off = (c.position() % ring.capacity()) as usize;
            let w0 = ring.region().word(off).load(Ordering::Relaxed);
            let w1 = ring.region().word(off + 8).load(Ordering::Relaxed);
            panic!(
                "{stop:?} at {} (head {}): word0 {w0:#x} word1 {w1}",
                c.position(),
                c.head()
            );
        }
        c.release();
        thread::yield_now();
    }
    seen
}

fn in_order_per_producer(seen: &[(u8, u8)], producers: u8) {
    for p in 0..producers {
        let mine: Vec<u8> = seen.iter().filter(|s| s.0 == p).map(|s| s.1).collect();
        assert_eq!(mine, (0..mine.len() as u8).collect::<Vec<_>>());
    }
}

/// Two producers race to claim across the end of the ring (padding record).
#[test]
fn two_producers_wrap() {
    loom::model(|| {
        let shared = ring_at(256, 64, 232);
        let s1 = shared.clone();
        let s2 = shared.clone();
        let t1 = thread::spawn(move || produce(&Ring::new(&s1.header, &s1.region), 1, 1, 8));
        let t2 = thread::spawn(move || produce(&Ring::new(&s2.header, &s2.region), 2, 1, 8));
        let ring = Ring::new(&shared.header, &shared.region);
        let seen = consume(&ring, 2);
        t1.join().unwrap();
        t2.join().unwrap();
        in_order_per_producer(&seen, 3);
    });
}

/// One producer writes more than the ring holds: it must reuse memory the
/// consumer zeroed and released, never racing with the zeroing.
#[test]
fn producer_reuses_released_memory() {
    loom::model(|| {
        let shared = ring_at(256, 64, 128);
        let s1 = shared.clone();
        let t1 = thread::spawn(move || produce(&Ring::new(&s1.header, &s1.region), 1, 5, 32));
        let ring = Ring::new(&shared.header, &shared.region);
        let seen = consume(&ring, 5);
        t1.join().unwrap();
        in_order_per_producer(&seen, 2);
    });
}

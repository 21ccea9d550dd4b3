//! Loom models of claim / commit / wrap / drain / release, of the shared
//! ring and of a lane (chunk reuse, release and recycling).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringflush-ring --test loom --release`.
//! Payload bytes live in loom cells (see `HeapRegion`), so loom fails a model
//! if any payload read or zeroing is not ordered after the write it races with.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringflush_ring::frame::RECORD_HEADER_LEN;
use ringflush_ring::lane::{LaneFull, LaneReader, LaneWriter, Lanes, Owner};
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

/// A segment's lanes for the lane models: one lane per writer over four
/// 256-byte chunks (loom's `MAX_CHUNKS`), the pool from byte 0.
fn lanes_of(lanes: u64) -> Arc<Shared> {
    let header = SegmentHeader::default();
    let id = &header.identity;
    id.chunk_size.store(256, Ordering::Relaxed);
    id.chunk_count.store(4, Ordering::Relaxed);
    id.lanes.store(lanes, Ordering::Relaxed);
    id.max_record.store(1 << 20, Ordering::Relaxed);
    Arc::new(Shared {
        header,
        region: HeapRegion::new(4 * 256),
    })
}

type TestLanes<'a> = Lanes<&'a SegmentHeader, &'a HeapRegion>;

/// Write `n` records of `payload` bytes, each filled with `id * 16 + i`,
/// into `w`'s lane, spinning while the lane is at its share or the pool is
/// empty (the flusher frees chunks as it reads them).
fn write_lane(lanes: &TestLanes<'_>, w: &mut LaneWriter, id: u8, n: u8, payload: usize) {
    for i in 0..n {
        let slot = loop {
            match w.reserve(lanes, RECORD_HEADER_LEN + payload) {
                Ok(slot) => break slot,
                Err(LaneFull::TooLarge) => panic!("a chunk holds the record"),
                Err(_) => thread::yield_now(),
            }
        };
        let stamp = Stamp {
            pid: id as u32,
            flags: 0,
            timestamp: i as u64,
        };
        w.stamp(lanes, &slot, stamp);
        w.fill(lanes, &slot, |buf| buf.fill(id * 16 + i));
        w.publish(lanes, &slot);
    }
}

/// Read `total` records from `r`'s lane, releasing what was read after
/// each pass; returns them as (writer, index) pairs.
fn read_lane(lanes: &TestLanes<'_>, r: &mut LaneReader, total: usize) -> Vec<(u8, u8)> {
    let mut seen = Vec::new();
    while seen.len() < total {
        while let Some(p) = r.peek(lanes).expect("no corruption") {
            let b = r.view(lanes, &p, |payload| {
                let b = payload[0];
                assert!(payload.iter().all(|&x| x == b), "torn payload");
                b
            });
            assert_eq!(p.stamp.pid as u8, b / 16);
            assert_eq!(p.stamp.timestamp, (b % 16) as u64);
            seen.push((b / 16, b % 16));
            r.advance(&p);
        }
        r.release(lanes);
        thread::yield_now();
    }
    seen
}

/// A writer fills its lane across chunk boundaries while the flusher reads
/// it: with a share of three chunks, the fourth record must reuse a chunk
/// the flusher zeroed and freed, never racing with the zeroing (L1-L3);
/// the chunks after the first are spares the flusher's release left, or
/// the pool's, as the schedule has it (L6: with the spare's load Relaxed,
/// loom finds the zeroing racing the writer).
#[test]
fn lane_writer_reuses_freed_chunks() {
    loom::model(|| {
        let shared = lanes_of(1);
        let s1 = shared.clone();
        let t1 = thread::spawn(move || {
            let lanes = Lanes::new(&s1.header, &s1.region);
            let mut w = lanes.claim(1, 1, 1).expect("a free lane");
            // 200-byte payloads: one record per chunk, the rest padding.
            write_lane(&lanes, &mut w, 1, 4, 200);
        });
        let lanes = Lanes::new(&shared.header, &shared.region);
        // SAFETY: the model has exactly one reader of the lane.
        let mut r = unsafe { lanes.reader(0) };
        let seen = read_lane(&lanes, &mut r, 4);
        t1.join().unwrap();
        assert_eq!(seen, [(1, 0), (1, 1), (1, 2), (1, 3)]);
    });
}

/// A writer publishes and releases its lane while the flusher drains it;
/// the flusher recycles it once released, and a new writer that claims it
/// starts clean: nothing of the first writer is lost or read twice (L4).
/// The claimer here runs after the recycling on the flusher's thread; the
/// next model races the two.
#[test]
fn a_released_lane_is_recycled_and_claimed_again() {
    loom::model(|| {
        let shared = lanes_of(1);
        let s1 = shared.clone();
        let t1 = thread::spawn(move || {
            let lanes = Lanes::new(&s1.header, &s1.region);
            let mut w = lanes.claim(1, 1, 1).expect("a free lane");
            write_lane(&lanes, &mut w, 1, 2, 40);
            w.release(&lanes);
        });
        let lanes = Lanes::new(&shared.header, &shared.region);
        // SAFETY: the model has exactly one reader of the lane.
        let mut r = unsafe { lanes.reader(0) };
        let mut seen = Vec::new();
        loop {
            let released = matches!(lanes.owner(0), Owner::Released { .. });
            while let Some(p) = r.peek(&lanes).expect("no corruption") {
                seen.push(r.view(&lanes, &p, |b| (b[0] / 16, b[0] % 16)));
                r.advance(&p);
            }
            r.release(&lanes);
            if released {
                break;
            }
            thread::yield_now();
        }
        // SAFETY: its writer released it.
        assert!(!unsafe { r.recycle(&lanes) }, "nothing half-written");
        t1.join().unwrap();
        assert_eq!(seen, [(1, 0), (1, 1)]);
        assert_eq!(lanes.owner(0), Owner::Free);
        let mut w2 = lanes.claim(2, 2, 2).expect("the recycled lane");
        write_lane(&lanes, &mut w2, 2, 1, 40);
        assert_eq!(read_lane(&lanes, &mut r, 1), [(2, 0)]);
    });
}

/// L5: the flusher recycles a released lane while another writer tries to
/// claim it (once: a spinning claimer takes loom past its branch limit).
/// A claim that succeeds must see the recycled positions, so that its
/// record lands where the flusher reads next; one that fails leaves the
/// lane free.
#[test]
fn a_claim_racing_the_recycling_sees_the_recycled_lane() {
    loom::model(|| {
        let shared = lanes_of(1);
        {
            let lanes = Lanes::new(&shared.header, &shared.region);
            let mut w = lanes.claim(1, 1, 1).expect("a free lane");
            write_lane(&lanes, &mut w, 1, 1, 40);
            w.release(&lanes);
        }
        let s2 = shared.clone();
        let t2 = thread::spawn(move || {
            let lanes = Lanes::new(&s2.header, &s2.region);
            let mut w = lanes.claim(2, 2, 2)?;
            write_lane(&lanes, &mut w, 2, 1, 40);
            Some(())
        });
        let lanes = Lanes::new(&shared.header, &shared.region);
        // SAFETY: the model has exactly one reader of the lane.
        let mut r = unsafe { lanes.reader(0) };
        assert_eq!(read_lane(&lanes, &mut r, 1), [(1, 0)]);
        // SAFETY: its writer released it.
        assert!(!unsafe { r.recycle(&lanes) }, "nothing half-written");
        let claimed = t2.join().unwrap().is_some();
        if claimed {
            // Joined: its record is published; one look must find it.
            let p = r.peek(&lanes).expect("no corruption");
            let p = p.expect("the claimer's record where the flusher reads next");
            assert_eq!(r.view(&lanes, &p, |b| (b[0] / 16, b[0] % 16)), (2, 0));
        } else {
            assert_eq!(lanes.owner(0), Owner::Free);
        }
    });
}

/// `closing.rs` (C1/C1'): an idle flusher raising the closing flag and
/// then looking at the registry, and a producer writing its registry word
/// and then reading the flag, never both miss each other.
#[test]
fn closing_flag_and_a_registration_are_never_both_missed() {
    loom::model(|| {
        let h = Arc::new(SegmentHeader::default());
        let producer = {
            let h = Arc::clone(&h);
            thread::spawn(move || {
                let word = &h.producers.slots[0];
                word.compare_exchange(0, 1 << 32 | 1, Ordering::Relaxed, Ordering::Relaxed)
                    .unwrap();
                ringflush_ring::closing::raised(&h)
            })
        };
        ringflush_ring::closing::begin(&h);
        let flusher_saw_producer = h.producers.slots[0].load(Ordering::Relaxed) != 0;
        let producer_saw_flag = producer.join().unwrap();
        assert!(flusher_saw_producer || producer_saw_flag);
    });
}

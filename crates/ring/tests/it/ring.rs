//! The ring protocol on a heap region, on threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringflush_ring::frame::{self, RECORD_HEADER_LEN};
use ringflush_ring::{ClaimError, HeapRegion, Region, Ring, SegmentHeader, Stamp, Stop};

use crate::fixtures::{header, try_write, STAMP};

fn write(
    ring: &Ring<&SegmentHeader, HeapRegion>,
    cache: &AtomicU64,
    payload: &[u8],
) -> Result<(), ClaimError> {
    try_write(ring, cache, payload, STAMP)
}

fn drain_all(ring: &Ring<&SegmentHeader, HeapRegion>) -> (Vec<Vec<u8>>, Stop) {
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let mut out = Vec::new();
    let stop = c.drain(u64::MAX, |r| {
        assert_eq!(r.stamp, STAMP);
        out.push(r.payload.to_vec());
        true
    });
    c.release();
    (out, stop)
}

#[test]
fn records_come_out_in_order_across_the_wrap() {
    let cap = 1024;
    let h = header(256, cap - 48);
    let ring = Ring::new(&h, HeapRegion::new(cap));
    let cache = AtomicU64::new(cap - 48);
    for i in 0..3u8 {
        write(&ring, &cache, &[i; 20]).unwrap();
    }
    let (out, stop) = drain_all(&ring);
    assert_eq!(stop, Stop::Empty);
    assert_eq!(out, vec![vec![0u8; 20], vec![1; 20], vec![2; 20]]);
    // 48 bytes before the end: record 0 (56 aligned) does not fit -> padding.
    assert_eq!(h.head.0.load(Ordering::Relaxed), cap + 3 * 56);
    assert_eq!(ring.used(), 0);
}

#[test]
fn full_ring_refuses_until_released_and_memory_is_zeroed() {
    let cap = 1024;
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(cap));
    let cache = AtomicU64::new(0);
    let mut n = 0;
    while write(&ring, &cache, &[0xAB; 96]).is_ok() {
        n += 1;
    }
    assert_eq!(n, 1024 / 128);
    assert_eq!(
        ring.try_claim(RECORD_HEADER_LEN + 96, STAMP, &cache)
            .unwrap_err(),
        ClaimError::Full
    );
    // A completely full ring drains in one call and stops at head + capacity
    // (found by loom: beyond it lie consumed, not yet zeroed bytes).
    let (out, stop) = drain_all(&ring);
    assert_eq!(out.len(), n);
    assert_eq!(stop, Stop::Budget);
    // Space is back, and the claimed memory is zero (except what we write).
    let claim = ring
        .try_claim(RECORD_HEADER_LEN + 96, STAMP, &cache)
        .unwrap();
    ring.fill(&claim, |buf| assert!(buf.iter().all(|&b| b == 0)));
    ring.commit(claim).unwrap();
}

#[test]
fn bad_lengths_are_refused() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(0);
    assert_eq!(
        ring.try_claim(8, STAMP, &cache).unwrap_err(),
        ClaimError::BadLength
    );
    assert_eq!(
        ring.try_claim(257, STAMP, &cache).unwrap_err(),
        ClaimError::BadLength
    );
}

#[test]
fn a_commit_after_the_record_was_skipped_fails_and_is_counted() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(0);
    let claim = ring
        .try_claim(64, Stamp { pid: 1, ..STAMP }, &cache)
        .unwrap();
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert!(matches!(
        c.drain(u64::MAX, |_| true),
        Stop::Claimed(Stamp { pid: 1, .. })
    ));
    assert_eq!(c.abandon_claimed(), Some(64));
    c.release();
    // Another producer reuses nothing yet; the late commit still must fail.
    assert!(ring.commit(claim).is_err());
    assert_eq!(h.counters.late_commits.load(Ordering::Relaxed), 1);
}

#[test]
fn garbage_header_is_skipped_to_the_next_valid_record() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[1; 24]).unwrap(); // at 0, 56 bytes
    write(&ring, &cache, &[2; 24]).unwrap(); // at 56
                                             // Clobber the first header's word 0 with a huge length, as a buggy producer would.
    let bogus = frame::encode_word0(0, 1 << 29, frame::State::Committed);
    ring.region().word(0).store(bogus, Ordering::Relaxed);
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let mut seen = Vec::new();
    let stop = c.drain(u64::MAX, |r| {
        seen.push(r.payload[0]);
        true
    });
    assert!(matches!(stop, Stop::Corrupt(_)), "{stop:?}");
    assert_eq!(c.skip_corrupt(), Some(56));
    assert_eq!(
        c.drain(u64::MAX, |r| {
            seen.push(r.payload[0]);
            true
        }),
        Stop::Empty
    );
    assert_eq!(seen, vec![2]);
    c.release();
    assert_eq!(ring.used(), 0);
}

#[test]
fn many_threads_every_record_once_in_per_thread_order() {
    const THREADS: u64 = 4;
    const PER: u64 = 50_000;
    let cap = 64 * 1024;
    let h: &'static SegmentHeader = Box::leak(Box::new(header(1024, 0)));
    let ring = Arc::new(Ring::new(h, HeapRegion::new(cap)));
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let cache = AtomicU64::new(0);
                for i in 0..PER {
                    // Vary the length so records wrap at every alignment.
                    let len = 16 + (i % 13) as usize * 8;
                    let mut payload = vec![0u8; len];
                    payload[..8].copy_from_slice(&t.to_le_bytes());
                    payload[8..16].copy_from_slice(&i.to_le_bytes());
                    while write(&ring, &cache, &payload).is_err() {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let mut next = [0u64; THREADS as usize];
    let mut total = 0;
    // SAFETY: this thread is the only consumer.
    let mut c = unsafe { ring.consumer() };
    while total < THREADS * PER {
        c.drain(8192, |r| {
            let t = u64::from_le_bytes(r.payload[..8].try_into().unwrap()) as usize;
            let i = u64::from_le_bytes(r.payload[8..16].try_into().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(r.payload.len(), 16 + (i % 13) as usize * 8);
            next[t] += 1;
            total += 1;
            true
        });
        c.release();
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!(
        h.tail.0.load(Ordering::Relaxed) > 20 * cap,
        "the ring wrapped many times"
    );
    assert_eq!(h.counters.late_commits.load(Ordering::Relaxed), 0);
}

#[test]
fn a_claim_that_needs_padding_at_the_wrap_counts_the_padding_as_used() {
    let cap = 1024;
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(cap));
    let cache = AtomicU64::new(0);
    // One record of 88 bytes, consumed and released: head = 88.
    write(&ring, &cache, &[0xEE; 56]).unwrap();
    {
        // SAFETY: one consumer at a time in this test.
        let mut c = unsafe { ring.consumer() };
        assert_eq!(c.drain(1, |_| true), Stop::Budget);
        c.release();
    }
    // Unread records up to 48 bytes before the end: 120 + 6 x 128 bytes.
    write(&ring, &cache, &[0; 88]).unwrap();
    for i in 1..=6u8 {
        write(&ring, &cache, &[i; 96]).unwrap();
    }
    assert_eq!(h.tail.0.load(Ordering::Relaxed), cap - 48);
    // 128 more bytes need 48 of padding first: 888 used + 48 + 128 > 1024,
    // although 888 + 128 alone would fit. Claiming them would overwrite the
    // unread record at head (offset 88).
    assert_eq!(
        ring.try_claim(RECORD_HEADER_LEN + 96, STAMP, &cache)
            .unwrap_err(),
        ClaimError::Full
    );
    // What fits before the end, without padding, is still accepted.
    write(&ring, &cache, &[7; 8]).unwrap();
    let (out, stop) = drain_all(&ring);
    assert_eq!(stop, Stop::Empty);
    let expected: Vec<Vec<u8>> = std::iter::once(vec![0; 88])
        .chain((1..=6u8).map(|i| vec![i; 96]))
        .chain(std::iter::once(vec![7; 8]))
        .collect();
    assert_eq!(out, expected, "every unread record intact, in order");
}

#[test]
fn clobbered_control_words_are_repaired_keeping_the_valid_records() {
    for garbage_tail in [0x7fff_ffff_ffff_f000u64, 0, 12] {
        // Two laps in: head and tail at 2048.
        let cap = 1024;
        let h = header(256, 2 * cap);
        let ring = Ring::new(&h, HeapRegion::new(cap));
        let cache = AtomicU64::new(2 * cap);
        for i in 1..=3u8 {
            write(&ring, &cache, &[i; 24]).unwrap();
        }
        h.tail.0.store(garbage_tail, Ordering::Relaxed);
        assert!(ring.control_words_inconsistent());
        // SAFETY: one consumer at a time in this test.
        let mut c = unsafe { ring.consumer() };
        assert!(c.control_words_broken());
        let repair = c.repair();
        assert_eq!(repair.tail_found, garbage_tail);
        assert_eq!(
            repair.tail_set,
            2 * cap + 3 * 56,
            "the valid records are kept"
        );
        assert_eq!(repair.lost_bytes, 0);
        assert!(!c.control_words_broken() && !ring.control_words_inconsistent());
        // Producers carry on from the new tail.
        write(&ring, &cache, &[4; 24]).unwrap();
        let mut seen = Vec::new();
        assert_eq!(
            c.drain(u64::MAX, |r| {
                seen.push(r.payload[0]);
                true
            }),
            Stop::Empty
        );
        c.release();
        assert_eq!(seen, [1, 2, 3, 4], "tail {garbage_tail:#x}");
    }
}

#[test]
fn a_repair_counts_what_lies_beyond_the_valid_records() {
    let cap = 1024;
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(cap));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[1; 24]).unwrap();
    // A writer that took a clobbered tail of 512 wrote a record there.
    h.tail.0.store(512, Ordering::Relaxed);
    write(&ring, &cache, &[2; 24]).unwrap();
    h.tail.0.store(1, Ordering::Relaxed);
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let repair = c.repair();
    assert_eq!(repair.tail_set, 56);
    assert_eq!(repair.lost_bytes, 56, "the stray record's 56 bytes");
    assert!(
        ring.region().word(512).load(Ordering::Relaxed) == 0,
        "zeroed"
    );
}

/// A claim says where its record starts and how many payload bytes it
/// holds: the next claim starts one 8-aligned record length further on.
#[test]
fn claims_report_their_position_and_payload_length() {
    let h = header(256, 64);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(64);
    let first = ring
        .try_claim(RECORD_HEADER_LEN + 20, STAMP, &cache)
        .unwrap();
    let second = ring
        .try_claim(RECORD_HEADER_LEN + 3, STAMP, &cache)
        .unwrap();
    assert_eq!((first.position(), first.payload_len()), (64, 20));
    let aligned = (RECORD_HEADER_LEN + 20 + 7) as u64 & !7;
    assert_eq!((second.position(), second.payload_len()), (64 + aligned, 3));
    ring.commit(first).unwrap();
    ring.commit(second).unwrap();
}

/// The length limits are inclusive: an empty payload (a header alone) and
/// a record of exactly `max_record` bytes are taken, one byte more is not.
#[test]
fn record_lengths_at_both_limits() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[]).unwrap();
    write(&ring, &cache, &[5; 256 - RECORD_HEADER_LEN]).unwrap();
    let err = ring.try_claim(257, STAMP, &cache).unwrap_err();
    assert!(matches!(err, ClaimError::BadLength), "{err:?}");
    let err = ring
        .try_claim(RECORD_HEADER_LEN - 1, STAMP, &cache)
        .unwrap_err();
    assert!(matches!(err, ClaimError::BadLength), "{err:?}");
    let (out, _) = drain_all(&ring);
    assert_eq!(out, vec![vec![], vec![5; 256 - RECORD_HEADER_LEN]]);
}

/// A producer that died between reserving space and writing its header
/// leaves zeros: the consumer skips exactly them, to the next record, and
/// not while a writer may still start on them (a non-zero byte).
#[test]
fn space_reserved_but_never_written_is_skipped_to_the_next_record() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    let cache = AtomicU64::new(0);
    // Dies after the reservation: 48 bytes, header never written.
    let _dead = ring.try_reserve(RECORD_HEADER_LEN + 16, &cache).unwrap();
    write(&ring, &cache, b"after").unwrap();
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let mut seen = Vec::new();
    assert_eq!(c.drain(u64::MAX, |_| true), Stop::Empty);
    assert_eq!(c.abandon_unwritten(), Some(48));
    assert_eq!(c.position(), 48);
    assert_eq!(
        c.drain(u64::MAX, |r| {
            seen.push(r.payload.to_vec());
            true
        }),
        Stop::Empty
    );
    assert_eq!(seen, vec![b"after".to_vec()]);
    // Nothing left to give up at the tail.
    assert_eq!(c.abandon_unwritten(), None);
    c.release();
}

#[test]
fn accessors_describe_the_ring() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(1024));
    assert!(std::ptr::eq(ring.header(), &h));
    assert_eq!((ring.capacity(), ring.max_record()), (1024, 256));
    assert_eq!(ring.region().capacity(), 1024);
    let debug = format!("{ring:?}");
    assert!(
        debug.contains("capacity: 1024") && debug.contains("max_record: 256"),
        "{debug}"
    );
}

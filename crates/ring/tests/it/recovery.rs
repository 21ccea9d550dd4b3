//! The consumer's validation and recovery paths, one at a time, on a heap
//! region: what the flusher does with clobbered headers, dead writers and
//! broken control words, each pinned by a fast test of its own (the
//! flusher's crash tests reach them too, but take minutes).

use std::sync::atomic::{AtomicU64, Ordering};

use ringflush_ring::frame::{self, State, RECORD_HEADER_LEN};
use ringflush_ring::{Corruption, HeapRegion, Region, Ring, SegmentHeader, Stamp, Stop};

use crate::fixtures::{header, try_write, TestRing, STAMP};

const CAP: u64 = 1024;

fn write_stamped(ring: &TestRing<'_>, cache: &AtomicU64, payload: &[u8], stamp: Stamp) {
    try_write(ring, cache, payload, stamp).unwrap();
}

fn write(ring: &TestRing<'_>, cache: &AtomicU64, payload: &[u8]) {
    write_stamped(ring, cache, payload, STAMP);
}

/// The first payload byte of every record drained.
fn drain_firsts(c: &mut ringflush_ring::Consumer<&SegmentHeader, &HeapRegion>) -> (Vec<u8>, Stop) {
    let mut seen = Vec::new();
    let stop = c.drain(u64::MAX, |r| {
        seen.push(r.payload[0]);
        true
    });
    (seen, stop)
}

#[test]
fn control_words_are_inconsistent_exactly_when_an_invariant_breaks() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    for (head, tail, broken) in [
        (0, 0, false),
        (64, 64, false),
        (0, CAP, false), // full
        (8, 0, true),    // tail behind head
        (0, CAP + 8, true),
        (4, 8, true),  // head unaligned
        (0, 12, true), // tail unaligned
    ] {
        h.head.0.store(head, Ordering::Relaxed);
        h.tail.0.store(tail, Ordering::Relaxed);
        assert_eq!(ring.control_words_inconsistent(), broken, "{head} {tail}");
    }
}

#[test]
fn used_ready_at_and_the_stamp_with_its_flags() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    let tsc = Stamp {
        pid: 9,
        flags: frame::FLAG_TSC,
        timestamp: 5,
    };
    let claim = ring.try_claim(RECORD_HEADER_LEN + 20, tsc, &cache).unwrap();
    assert_eq!(ring.used(), 56);
    assert!(!ring.ready_at(0), "claimed is not ready");
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert_eq!(c.drain(u64::MAX, |_| true), Stop::Claimed(tsc));
    ring.commit(claim).unwrap();
    assert!(ring.ready_at(0));
    assert!(
        !ring.ready_at(CAP),
        "the same offset a lap later is another record"
    );
    let mut stamps = Vec::new();
    c.drain(u64::MAX, |r| {
        stamps.push(r.stamp);
        true
    });
    assert_eq!(stamps, vec![tsc]);
    // Consumed but not released: head stays, the read position moved.
    assert_eq!((c.head(), c.position()), (0, 56));
    assert!(format!("{c:?}").contains("pos: 56"));
    c.release();
    assert_eq!((c.head(), ring.used()), (56, 0));
}

#[test]
fn rewind_reads_the_unreleased_records_again_and_skip_passes_one() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    for i in 1..=3 {
        write(&ring, &cache, &[i; 24]);
    }
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert_eq!(drain_firsts(&mut c).0, vec![1, 2, 3]);
    c.rewind();
    assert_eq!(c.position(), 0);
    c.skip(56);
    assert_eq!(c.position(), 56);
    assert_eq!(drain_firsts(&mut c).0, vec![2, 3]);
}

#[test]
fn each_corruption_is_named() {
    let all = [
        Corruption::BadState,
        Corruption::WrongPosition,
        Corruption::BadLength,
        Corruption::CrossesEnd,
        Corruption::BeyondTail,
    ];
    let texts: std::collections::HashSet<String> = all.iter().map(|c| c.to_string()).collect();
    assert_eq!(texts.len(), all.len());
    assert!(texts.iter().all(|t| t.len() > 5), "{texts:?}");
}

#[test]
fn headers_are_checked_for_length_position_and_tail() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[1; 24]); // at 0
    write(&ring, &cache, &[2; 24]); // at 56
    let word0 = ring.region().word(56);
    let good = word0.load(Ordering::Relaxed);
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    for (len, why) in [
        (257, Corruption::BadLength), // above max_record
        (16, Corruption::BadLength),  // below the header
    ] {
        word0.store(
            frame::encode_word0(56, len, State::Committed),
            Ordering::Relaxed,
        );
        c.rewind();
        assert_eq!(drain_firsts(&mut c), (vec![1], Stop::Corrupt(why)), "{len}");
    }
    // Word 1 must repeat the position.
    word0.store(good, Ordering::Relaxed);
    ring.region().word(64).store(57, Ordering::Relaxed);
    c.rewind();
    let stop = drain_firsts(&mut c).1;
    assert_eq!(stop, Stop::Corrupt(Corruption::WrongPosition));
    ring.region().word(64).store(56, Ordering::Relaxed);
    // A record that ends beyond tail (a fresh consumer: one that has seen
    // a later tail trusts it, as tail only grows).
    h.tail.0.store(64, Ordering::Relaxed);
    // SAFETY: the only consumer in use from here on (the first is not
    // used again).
    let mut c = unsafe { ring.consumer() };
    assert_eq!(
        drain_firsts(&mut c),
        (vec![1], Stop::Corrupt(Corruption::BeyondTail))
    );
}

#[test]
fn padding_beyond_the_tail_is_corrupt() {
    let start = CAP - 48;
    let h = header(256, start);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    // Padding to the end of the ring that no claim covers.
    ring.region().word(start as usize).store(
        frame::encode_word0(start, 48, State::Padding),
        Ordering::Relaxed,
    );
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert_eq!(
        c.drain(u64::MAX, |_| true),
        Stop::Corrupt(Corruption::BeyondTail)
    );
}

#[test]
fn a_corrupt_header_after_the_read_position_is_skipped_to_the_next_valid_one() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    for i in 1..=3 {
        write(&ring, &cache, &[i; 24]); // at 0, 56, 112
    }
    ring.region().word(56).store(
        frame::encode_word0(56, 1 << 29, State::Committed),
        Ordering::Relaxed,
    );
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let (seen, stop) = drain_firsts(&mut c);
    assert_eq!(
        (seen, stop),
        (vec![1], Stop::Corrupt(Corruption::BadLength))
    );
    assert_eq!(c.skip_corrupt(), Some(56));
    assert_eq!(c.position(), 112);
    assert_eq!(drain_firsts(&mut c), (vec![3], Stop::Empty));
    assert_eq!(c.skip_corrupt(), None, "nothing valid follows");
}

#[test]
fn a_claim_abandoned_after_a_drained_record() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[1; 24]); // at 0
    let stuck = ring
        .try_claim(RECORD_HEADER_LEN + 24, STAMP, &cache)
        .unwrap(); // at 56
    write(&ring, &cache, &[3; 24]); // at 112
                                    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert_eq!(drain_firsts(&mut c), (vec![1], Stop::Claimed(STAMP)));
    assert_eq!(c.abandon_claimed(), Some(56));
    assert_eq!(c.position(), 112);
    assert_eq!(drain_firsts(&mut c), (vec![3], Stop::Empty));
    assert!(ring.commit(stuck).is_err());
    // A claimed header whose tag is another lap's is not this record.
    h.tail.0.store(CAP + 168, Ordering::Relaxed);
    ring.region().word(168).store(
        frame::encode_word0(168 + CAP, 56, State::Claimed),
        Ordering::Relaxed,
    );
    assert_eq!(c.abandon_claimed(), None);
}

#[test]
fn unwritten_space_after_a_drained_record_and_at_the_tail() {
    let h = header(256, 0);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(0);
    write(&ring, &cache, &[1; 24]); // at 0
    let _dead = ring.try_reserve(RECORD_HEADER_LEN + 16, &cache).unwrap(); // 56..104
                                                                           // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert_eq!(drain_firsts(&mut c), (vec![1], Stop::Empty));
    // Nothing follows: skip to the tail exactly.
    assert_eq!(c.abandon_unwritten(), Some(48));
    assert_eq!(c.position(), 104);
    // A byte written in the gap means a writer has started: keep waiting.
    let _slow = ring.try_reserve(RECORD_HEADER_LEN + 16, &cache).unwrap(); // 104..152
    ring.region().word(120).store(1, Ordering::Relaxed);
    assert_eq!(c.abandon_unwritten(), None);
}

#[test]
fn repair_keeps_the_valid_records_and_zeroes_and_counts_the_rest() {
    // Start near the end so the valid records include a padding record.
    let start = CAP - 48;
    let h = header(256, start);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    let cache = AtomicU64::new(start);
    write(&ring, &cache, &[1; 24]); // padding 48, then at CAP (offset 0)
    write(&ring, &cache, &[2; 24]); // at CAP + 56
    let valid_end = CAP + 112;
    // Garbage further on (a producer writing at a clobbered position), and
    // a clobbered tail.
    for off in [200usize, 208, 512, 960] {
        ring.region().word(off).store(0xdead, Ordering::Relaxed);
    }
    h.tail.0.store(3, Ordering::Relaxed);
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    assert!(c.control_words_broken());
    let repair = c.repair();
    assert_eq!(
        (repair.tail_found, repair.tail_set, repair.lost_bytes),
        (3, valid_end, 32)
    );
    assert_eq!(h.tail.0.load(Ordering::Relaxed), valid_end);
    assert!(!c.control_words_broken());
    for off in (112..start as usize).step_by(8) {
        assert_eq!(ring.region().word(off).load(Ordering::Relaxed), 0, "{off}");
    }
    assert_eq!(drain_firsts(&mut c), (vec![1, 2], Stop::Empty));
}

/// Nothing valid at all, and the range to clear runs across the end of the
/// ring: both pieces are zeroed and counted.
#[test]
fn repair_clears_across_the_end_of_the_ring() {
    let start = CAP - 48;
    let h = header(256, start);
    let ring = Ring::new(&h, HeapRegion::new(CAP));
    for off in [992usize, 1016, 16, 960] {
        ring.region().word(off).store(0xbad, Ordering::Relaxed);
    }
    h.tail.0.store(start + 5, Ordering::Relaxed);
    // SAFETY: one consumer in this test.
    let mut c = unsafe { ring.consumer() };
    let repair = c.repair();
    assert_eq!((repair.tail_set, repair.lost_bytes), (start, 32));
    for off in (0..CAP as usize).step_by(8) {
        assert_eq!(ring.region().word(off).load(Ordering::Relaxed), 0, "{off}");
    }
}

//! What the ring tests share: a header at a chosen start, a ring type, a
//! stamp, and a write that claims, fills and commits.

use std::sync::atomic::{AtomicU64, Ordering};

use ringflush_ring::frame::RECORD_HEADER_LEN;
use ringflush_ring::{ClaimError, HeapRegion, Ring, SegmentHeader, Stamp};

/// The stamp test records carry unless a test needs another.
pub const STAMP: Stamp = Stamp {
    pid: 7,
    flags: 0,
    timestamp: 99,
};

/// A ring on the heap, as the tests build it.
pub type TestRing<'a> = Ring<&'a SegmentHeader, HeapRegion>;

/// A header whose ring starts (head and tail) at `start`.
pub fn header(max_record: u64, start: u64) -> SegmentHeader {
    let h = SegmentHeader::default();
    h.identity.max_record.store(max_record, Ordering::Relaxed);
    h.head.0.store(start, Ordering::Relaxed);
    h.tail.0.store(start, Ordering::Relaxed);
    h
}

/// Claim, fill with `payload` and commit one record stamped `stamp`.
pub fn try_write(
    ring: &TestRing<'_>,
    cache: &AtomicU64,
    payload: &[u8],
    stamp: Stamp,
) -> Result<(), ClaimError> {
    let claim = ring.try_claim(RECORD_HEADER_LEN + payload.len(), stamp, cache)?;
    ring.fill(&claim, |buf| buf.copy_from_slice(payload));
    ring.commit(claim).unwrap();
    Ok(())
}

//! Removing an idle segment without stranding a producer that opens it at
//! that moment.
//!
//! A flusher started with `--exit-when-idle` (the one a Python application
//! starts for itself) exits once no registered producer has lived for a
//! while and nothing is left to read. It then removes the segment's name,
//! so that a test suite making a log per test, or short-lived processes,
//! leave `/dev/shm` as they found it. The race: a producer that has just
//! opened the segment by its name, and has not registered yet, would end
//! up writing into a removed segment that nobody drains.
//!
//! # Algorithm
//! A Dekker handshake (Dijkstra, "Cooperating sequential processes", 1965;
//! the store-then-load pattern of Linux's futex waiter check) between the
//! flusher's [`Producers::closing`] flag and each producer's registry word:
//!
//! - **flusher** ([`begin`] then the check): raise `closing`, then look at
//!   the registry (and the ring). Anyone there: [`cancel`] and stay. No one:
//!   remove the name, and exit once the registry stays empty (the flag
//!   stays raised for good).
//! - **producer** (after registering, [`raised`]): its registry word is
//!   written, then it reads `closing`. Lowered: it writes. Raised: it waits
//!   for the decision; the name gone, it leaves this segment and opens the
//!   name again (creating a fresh segment); the flag lowered, it writes.
//!
//! Either the flusher sees the producer's word, or the producer sees the
//! raised flag (or both): never neither, so a producer never writes into a
//! segment whose flusher decided it had no producers. A producer that waits
//! past its bound (a flusher stopped mid-decision) writes on registered; a
//! flusher that removed the name drains on while anyone is registered, so
//! even then nothing is stranded.
//!
//! # Invariants
//! - `closing` is 0 while a flusher is not deciding, 1 from [`begin`] to
//!   [`cancel`], and 1 for good once the name was removed.
//! - A flusher starting on a segment lowers a flag a killed predecessor
//!   left raised ([`cancel`]): only the segment's one consumer writes it.
//!
//! # Memory-ordering contract
//! - (C1) flusher: `closing = 1`, **SeqCst fence**, then the registry words'
//!   loads (`registry::sweep`);
//! - (C1') producer: its word's CAS (`registry::register`), **SeqCst
//!   fence**, then the load of `closing` in [`raised`].
//!
//! With a SeqCst fence between each side's store and its load, the two
//! loads cannot both miss the other side's store (C++ [atomics.fences]:
//! the fences are ordered in the single total order S). The file-lock
//! syscalls each side makes on the way are not relied on. The loom model
//! (`tests/loom.rs`) checks the pair, and fails it with AcqRel fences.
//!
//! [`Producers::closing`]: crate::layout::Producers::closing

use crate::layout::SegmentHeader;
use crate::sync::{fence, Ordering};

/// The flusher: raise the flag, before it looks at the registry (C1).
pub fn begin(h: &SegmentHeader) {
    h.producers.closing.store(1, Ordering::Relaxed);
    // (C1) SeqCst fence: pairs with the producer's fence in `raised`.
    fence(Ordering::SeqCst);
}

/// The flusher: lower the flag; someone registered, the segment stays.
pub fn cancel(h: &SegmentHeader) {
    h.producers.closing.store(0, Ordering::Relaxed);
}

/// A producer, after its registry word was written: whether a flusher is
/// deciding to remove the segment, or has (C1').
pub fn raised(h: &SegmentHeader) -> bool {
    // (C1') SeqCst fence: pairs with the flusher's fence in `begin`.
    fence(Ordering::SeqCst);
    h.producers.closing.load(Ordering::Relaxed) != 0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_raised_by_begin_and_lowered_by_cancel() {
        let h = SegmentHeader::default();
        assert!(!raised(&h));
        begin(&h);
        assert!(raised(&h));
        cancel(&h);
        assert!(!raised(&h));
    }
}

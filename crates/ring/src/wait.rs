//! Sleeping and waking across processes with futexes on words in the segment
//! (shared futexes: no `FUTEX_PRIVATE_FLAG`). Both wake-ups are conditional,
//! so the common path costs a load, never a syscall.
//!
//! Ordering: each side stores its own flag and then loads the other side's
//! state, all SeqCst, so at least one of them sees the other (a Dekker pair;
//! the tags mark both ends in the code):
//! - (D1) producer: commit CAS on word 0 ([`Ring::commit`]), then load
//!   `flusher.sleeping` ([`wake_flusher`]); flusher: store `sleeping = 1`
//!   ([`flusher_sleep`]), then load word 0 at head ([`Ring::ready_at`]).
//!   Either the producer sees the flag and wakes the flusher, or the flusher
//!   sees the commit and does not sleep.
//! - (D2) flusher: store `head` ([`crate::Consumer::release`]), then load
//!   `space.waiters` ([`wake_space_waiters`]); producer: increment
//!   `space.waiters` ([`register_space_waiter`]), then load `head` (in
//!   [`Ring::try_reserve`], on the re-check). Either the flusher sees the
//!   waiter and bumps `seq`, or the producer's re-check sees the new head.

use std::ops::Deref;
use std::time::Duration;

use rustix::thread::futex;

use crate::layout::SegmentHeader;
use crate::region::Region;
use crate::ring::Ring;
use crate::sync::Ordering;

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// After a commit: wake the flusher if it flagged itself asleep.
#[inline]
pub fn wake_flusher(header: &SegmentHeader) {
    let flag = &header.flusher.sleeping;
    // (D1) producer half: this load follows the commit CAS.
    if flag.load(Ordering::SeqCst) != 0 && flag.swap(0, Ordering::SeqCst) != 0 {
        let _ = futex::wake(flag, futex::Flags::empty(), 1);
    }
}

/// The flusher sleeps until a producer commits at or after `pos`, or `timeout`.
pub fn flusher_sleep<H, R>(ring: &Ring<H, R>, pos: u64, timeout: Duration)
where
    H: Deref<Target = SegmentHeader>,
    R: Region,
{
    let flag = &ring.header().flusher.sleeping;
    // (D1) flusher half: store the flag, then load word 0 in ready_at.
    flag.store(1, Ordering::SeqCst);
    if !ring.ready_at(pos) {
        // Returns at once if a producer already cleared the flag.
        let _ = futex::wait(flag, futex::Flags::empty(), 1, Some(&timespec(timeout)));
    }
    flag.store(0, Ordering::SeqCst);
}

/// A producer that found the ring full registers as a waiter; returns the
/// sequence number to wait on. Re-check for space before [`wait_for_space`].
pub fn register_space_waiter(header: &SegmentHeader) -> u32 {
    let seq = header.space.seq.load(Ordering::SeqCst);
    // (D2) producer half: the caller's re-check loads head after this.
    header.space.waiters.fetch_add(1, Ordering::SeqCst);
    seq
}

/// Sleep until the flusher frees space (the sequence moves on) or `timeout`,
/// then deregister.
pub fn wait_for_space(header: &SegmentHeader, seq: u32, timeout: Duration) {
    let _ = futex::wait(
        &header.space.seq,
        futex::Flags::empty(),
        seq,
        Some(&timespec(timeout)),
    );
    header.space.waiters.fetch_sub(1, Ordering::SeqCst);
}

/// Deregister without sleeping (space was found on the re-check).
pub fn cancel_space_wait(header: &SegmentHeader) {
    header.space.waiters.fetch_sub(1, Ordering::SeqCst);
}

/// After advancing head: wake producers blocked on a full ring, if any.
pub fn wake_space_waiters(header: &SegmentHeader) {
    // (D2) flusher half: this load follows the head store in release().
    if header.space.waiters.load(Ordering::SeqCst) > 0 {
        header.space.seq.fetch_add(1, Ordering::SeqCst);
        let _ = futex::wake(&header.space.seq, futex::Flags::empty(), u32::MAX);
    }
}

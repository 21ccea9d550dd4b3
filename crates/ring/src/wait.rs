//! Sleeping and waking across processes with futexes on words in the segment
//! (shared futexes: no `FUTEX_PRIVATE_FLAG`). Both wake-ups are conditional,
//! so the common path costs a load, never a syscall.
//!
//! Ordering: each side stores its own flag and then loads the other side's
//! state, all SeqCst, so at least one of them sees the other (a Dekker pair):
//! - producer: commit CAS on word 0, then load `flusher.sleeping`;
//!   flusher: store `sleeping = 1`, then load word 0 at head ([`Ring::ready_at`]).
//! - flusher: store `head`, then load `space.waiters`;
//!   producer: increment `space.waiters`, then load `head` (in `try_claim`).

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
    if flag.load(Ordering::SeqCst) != 0 && flag.swap(0, Ordering::SeqCst) != 0 {
        let _ = futex::wake(flag, futex::Flags::empty(), 1);
    }
}

/// The flusher sleeps until a producer commits at or after `pos`, or `timeout`.
pub fn flusher_sleep<R: Region>(ring: &Ring<'_, R>, pos: u64, timeout: Duration) {
    let flag = &ring.header().flusher.sleeping;
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
    if header.space.waiters.load(Ordering::SeqCst) > 0 {
        header.space.seq.fetch_add(1, Ordering::SeqCst);
        let _ = futex::wake(&header.space.seq, futex::Flags::empty(), u32::MAX);
    }
}

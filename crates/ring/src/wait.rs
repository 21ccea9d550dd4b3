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
//!   A lane writer waiting for room takes part the same way, its re-check
//!   loading its lane's `head`.
//! - (D3) asymmetric, for lanes, whose writers must not pay a fence: the
//!   writer stores its lane's `tail` (Release), a compiler fence, then loads
//!   `flusher.sleeping` plainly ([`wake_after_publish`]); the flusher stores
//!   `sleeping = 1` (SeqCst) and then runs `membarrier(MEMBARRIER_CMD_GLOBAL)`
//!   ([`flusher_sleep`]), which makes every thread of the system pass a full
//!   barrier, before it loads the tails. So either the writer's tail store
//!   is visible to the flusher's loads, or the writer's load (after it in
//!   program order) sees the flag. Where `membarrier` is refused (seccomp,
//!   old kernels) the flusher caps its sleep at [`UNFENCED_SLEEP`] instead,
//!   so a missed wake-up costs at most that much latency, never a record.

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

/// Longest flusher sleep where `membarrier` is not available (see (D3)).
pub const UNFENCED_SLEEP: Duration = Duration::from_millis(10);

/// After publishing a lane's tail: wake the flusher if it flagged itself
/// asleep. No fence: see (D3).
#[inline]
pub fn wake_after_publish(header: &SegmentHeader) {
    // (D3) writer half: keep the compiler from moving the load above the
    // tail store; the CPU may, and the flusher's membarrier covers that.
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    if header.flusher.sleeping.load(Ordering::Relaxed) != 0 {
        wake_now(header);
    }
}

#[cold]
fn wake_now(header: &SegmentHeader) {
    let flag = &header.flusher.sleeping;
    if flag.swap(0, Ordering::SeqCst) != 0 {
        let _ = futex::wake(flag, futex::Flags::empty(), 1);
    }
}

/// Run `membarrier(MEMBARRIER_CMD_GLOBAL)`: every running thread of the
/// system passes a full memory barrier before it returns. Whether it ran.
fn global_barrier() -> bool {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes two integer arguments and touches no memory
    // of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0) == 0 }
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

/// The flusher sleeps until a producer commits at or after `pos` in the
/// shared ring or publishes into a lane (`lanes_ready`, which loads the
/// lanes' tails), or `timeout`.
pub fn flusher_sleep<H, R>(
    ring: &Ring<H, R>,
    pos: u64,
    lanes_ready: impl Fn() -> bool,
    timeout: Duration,
) where
    H: Deref<Target = SegmentHeader>,
    R: Region,
{
    let flag = &ring.header().flusher.sleeping;
    // (D1) flusher half: store the flag, then load word 0 in ready_at.
    flag.store(1, Ordering::SeqCst);
    // (D3) flusher half: a barrier in every writer, then load the tails.
    let timeout = if global_barrier() {
        timeout
    } else {
        timeout.min(UNFENCED_SLEEP)
    };
    if !ring.ready_at(pos) && !lanes_ready() {
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

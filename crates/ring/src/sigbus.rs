//! Surviving a segment truncated under a process.
//!
//! A process with write access to a segment can shrink it (`truncate -s
//! 4096 /dev/shm/NAME`); every process touching a page past the new end
//! then gets SIGBUS, whose default action kills it: the application, for a
//! producer. A logging library must not do that, so every process that maps
//! a segment through [`crate::Segment::watch_sigbus`] installs (once) a
//! SIGBUS handler that recognises faults inside a watched mapping and gives
//! the object its size back (`ftruncate`, async-signal-safe), counting a
//! repair in the segment's header: the faulting access then completes on a
//! fresh zero page, and the flusher resynchronises past the lost pages. If
//! that fails, the handler maps private zero pages over the mapping
//! (`MAP_FIXED`) and flags it lost: a producer then refuses every write
//! (`WriteError::SegmentLost`, said once). Faults anywhere else go to the
//! handler installed before (or the default action), as without ringflush.
//!
//! `RINGFLUSH_NO_SIGBUS_HANDLER=1` leaves SIGBUS alone (an application that
//! handles it itself). What remains: the records in the truncated pages are
//! lost (counted in bytes by the flusher), and an application that installs
//! its own SIGBUS handler later without chaining disables this.
//!
//! Only atomics, `ftruncate`, `mmap` and `sigaction` run in the handler.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::layout::SegmentHeader;

/// Producer mappings watched at once in a process.
const SLOTS: usize = 64;

struct Watched {
    base: AtomicUsize,
    len: AtomicUsize,
    /// The object's descriptor and the size it must have.
    fd: AtomicI32,
    size: AtomicU64,
    lost: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Watched = Watched {
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fd: AtomicI32::new(-1),
    size: AtomicU64::new(0),
    lost: AtomicBool::new(false),
};
static WATCHED: [Watched; SLOTS] = [EMPTY; SLOTS];
/// A slot's `base` while it is being filled.
const RESERVED: usize = usize::MAX;
/// The disposition before ours, to pass foreign faults on to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A segment's mapping, watched for SIGBUS while this lives.
///
/// Whoever holds one keeps the mapping and its descriptor alive at least as
/// long (the slot is cleared before they go).
#[derive(Debug)]
pub struct Guard {
    slot: Option<usize>,
    /// The slot's `lost` flag (or one never raised): the write path reads
    /// it with one load.
    lost: &'static AtomicBool,
}

/// The `lost` flag of a guard that watches nothing.
static NEVER_LOST: AtomicBool = AtomicBool::new(false);

impl Guard {
    /// Watch the `len` bytes mapped at `base` from the object `fd`, which
    /// must be `size` bytes long, with the segment header at `base`.
    /// Without a free slot, or with the handler disabled, nothing is
    /// watched.
    ///
    /// # Safety
    /// `base..base + len` stays mapped from `fd`, and `fd` open, until the
    /// guard is dropped.
    pub unsafe fn watch(base: *mut u8, len: usize, fd: RawFd, size: u64) -> Self {
        if std::env::var_os("RINGFLUSH_NO_SIGBUS_HANDLER").is_some() || !install() {
            return Self {
                slot: None,
                lost: &NEVER_LOST,
            };
        }
        // Take a free slot (0) by marking it reserved, fill it, then publish
        // its base: the handler never sees a base with another slot's length.
        let slot = WATCHED.iter().position(|w| {
            w.base
                .compare_exchange(0, RESERVED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = slot {
            let w = &WATCHED[i];
            w.lost.store(false, Ordering::Relaxed);
            w.len.store(len, Ordering::Relaxed);
            w.fd.store(fd, Ordering::Relaxed);
            w.size.store(size, Ordering::Relaxed);
            // Release: pairs with the handler's Acquire load of `base`.
            w.base.store(base as usize, Ordering::Release);
        }
        let lost = slot.map_or(&NEVER_LOST, |i| &WATCHED[i].lost);
        Self { slot, lost }
    }

    /// Whether a fault inside the mapping replaced it with private pages.
    #[inline]
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            WATCHED[i].base.store(0, Ordering::Release);
        }
    }
}

/// Install the handler once; whether it is installed.
fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: zeroed sigaction structs are valid; sigaction gets valid
        // pointers; the handler only does async-signal-safe work.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            // PREVIOUS is set before the handler can run.
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(old);
            libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) == 0
        }
    })
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for w in &WATCHED {
        let base = w.base.load(Ordering::Acquire);
        let len = w.len.load(Ordering::Relaxed);
        if base == 0 || base == RESERVED || addr < base || addr >= base + len {
            continue;
        }
        let (fd, size) = (w.fd.load(Ordering::Relaxed), w.size.load(Ordering::Relaxed));
        // SAFETY: fd is the open object behind this mapping (watch's
        // contract); ftruncate only grows it back to its size.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } == 0 {
            // SAFETY: the header is at the start of the watched mapping, which
            // is backed again now (the header page, if it was cut, is zero).
            let header = unsafe { &*(base as *const SegmentHeader) };
            header.counters.repairs.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: [base, base + len) is a producer's live mapping (its slot
        // is cleared before it is unmapped); replacing it with private zero
        // pages changes what the producer writes into, never memory Rust
        // code holds references to beyond that mapping.
        let p = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            w.lost.store(true, Ordering::Release);
            return;
        }
    }
    pass_on(sig, info, ctx);
}

/// A fault that is not ours: what would have happened without ringflush.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(prev) = PREVIOUS.get() else { return };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Put the old disposition back and return: the instruction faults
        // again and the default action (a core dump) happens as before.
        // SAFETY: prev is a valid sigaction read by sigaction itself.
        unsafe { libc::sigaction(sig, prev, std::ptr::null_mut()) };
        return;
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

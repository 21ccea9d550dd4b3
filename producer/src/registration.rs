//! This process in the segment's producer registry (see
//! `ringflush_ring::registry`): registered when the producer opens the
//! segment, again by a forked child at its first record (one load and a
//! compare on the write path), and deregistered when the producer is dropped
//! in the process that registered it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ringflush_ring::registry::{self, Process};
use ringflush_ring::SegmentHeader;

const NO_SLOT: usize = usize::MAX;

/// Which process is registered, and where.
#[derive(Debug)]
pub struct Registration {
    /// The pid registered last (0: none yet).
    pid: AtomicU32,
    /// Its start time, as the registry holds it.
    start: AtomicU32,
    /// Its slot, or [`NO_SLOT`] when the registry was full.
    slot: AtomicUsize,
}

impl Registration {
    /// Register this process in `h`'s registry.
    pub fn new(h: &SegmentHeader) -> Self {
        let r = Self {
            pid: AtomicU32::new(0),
            start: AtomicU32::new(0),
            slot: AtomicUsize::new(NO_SLOT),
        };
        r.renew(h, crate::identity::pid());
        r
    }

    /// Called with the writer's pid on every record: registers a forked
    /// child at its first one.
    #[inline]
    pub fn check(&self, h: &SegmentHeader, pid: u32) {
        if self.pid.load(Ordering::Relaxed) != pid {
            self.renew(h, pid);
        }
    }

    #[cold]
    #[inline(never)]
    fn renew(&self, h: &SegmentHeader, pid: u32) {
        let old = self.pid.load(Ordering::Relaxed);
        // One thread of the process registers it; the others write on.
        if old == pid
            || self
                .pid
                .compare_exchange(old, pid, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(me) = Process::current() else {
            return;
        };
        let slot = registry::register(h, me).unwrap_or(NO_SLOT);
        self.start.store(me.start, Ordering::Relaxed);
        self.slot.store(slot, Ordering::Relaxed);
    }

    /// Leave the registry, if this process is the one registered (a forked
    /// child that never wrote leaves its parent's slot alone).
    pub fn leave(&self, h: &SegmentHeader) {
        let pid = crate::identity::pid();
        let slot = self.slot.load(Ordering::Relaxed);
        if self.pid.load(Ordering::Relaxed) == pid && slot != NO_SLOT {
            let start = self.start.load(Ordering::Relaxed);
            registry::deregister(h, slot, Process { pid, start });
        }
    }
}

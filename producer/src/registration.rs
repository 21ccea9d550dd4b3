//! This process in the segment's producer registry (see
//! `ringflush_ring::registry`): registered when the producer opens the
//! segment, again by a forked child at its first record (one load and a
//! compare on the write path), and deregistered when the producer is dropped
//! in the process that registered it.
//!
//! While registered, the process holds its slot's lock (see
//! `ringflush_ring::liveness`) through an open file description of its own:
//! the segment's for the process that opened it, a fresh one
//! ([`Segment::reopen`]) for a forked child, which shares its parent's.
//! Each record carries the registration's tag, by which the flusher tells
//! whether a stuck record's writer lives, in any PID namespace.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use ringflush_ring::liveness::pid_namespace;
use ringflush_ring::registry::{self, Registered};
use ringflush_ring::Segment;

/// Which process is registered, where, and the tag its records carry.
#[derive(Debug)]
pub struct Registration {
    /// The pid registered last (0: none yet).
    pid: AtomicU32,
    /// The tag of that registration (0: not registered).
    tag: AtomicU32,
    /// Its registration number's low 32 bits, as the registry holds it.
    number: AtomicU32,
    /// The slot and the description holding its lock; touched only by the
    /// thread that won the pid's CAS, and when the producer is dropped.
    held: Mutex<Option<Held>>,
}

#[derive(Debug)]
struct Held {
    me: Registered,
    /// The description holding the slot's lock; `None`: the segment's own.
    fd: Option<OwnedFd>,
}

impl Registration {
    /// Register this process in `segment`'s registry.
    pub fn new(segment: &Segment) -> Self {
        let r = Self {
            pid: AtomicU32::new(0),
            tag: AtomicU32::new(0),
            number: AtomicU32::new(0),
            held: Mutex::new(None),
        };
        r.renew(segment, crate::identity::pid());
        r
    }

    /// Called with the writer's pid on every record: registers a forked
    /// child at its first one. Returns the tag the record carries.
    #[inline]
    pub fn check(&self, segment: &Segment, pid: u32) -> u16 {
        if self.pid.load(Ordering::Relaxed) != pid {
            self.renew(segment, pid);
        }
        self.tag.load(Ordering::Relaxed) as u16
    }

    /// This process's registration number and tag (after registering a
    /// forked child), or `None` when it is not registered.
    pub fn current(&self, segment: &Segment, pid: u32) -> Option<(u32, u16)> {
        let tag = self.check(segment, pid);
        (tag != 0).then(|| (self.number.load(Ordering::Relaxed), tag))
    }

    #[cold]
    #[inline(never)]
    fn renew(&self, segment: &Segment, pid: u32) {
        let old = self.pid.load(Ordering::Relaxed);
        // One thread of the process registers it; the others write on
        // (untagged meanwhile: their records are only ever given up at the
        // unblock timeout).
        if old == pid
            || self
                .pid
                .compare_exchange(old, pid, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.tag.store(0, Ordering::Relaxed);
        // A lock held across a fork by a thread that did not survive it
        // would never be released: then this child goes unregistered.
        let Ok(mut held) = self.held.try_lock() else {
            return;
        };
        // The parent's registration is the parent's to leave.
        let fd = if old == 0 {
            None
        } else {
            match segment.reopen() {
                Ok(fd) => Some(fd),
                Err(_) => return,
            }
        };
        let lock_fd = fd.as_ref().map_or(segment.fd(), |fd| fd.as_fd());
        let h = segment.header();
        if let Ok(Some(me)) = registry::register(h, lock_fd, pid, pid_namespace()) {
            self.number.store(me.registration, Ordering::Relaxed);
            self.tag.store(me.tag() as u32, Ordering::Relaxed);
            *held = Some(Held { me, fd });
        } else {
            *held = None;
        }
    }

    /// Whether this process registered through the segment's own
    /// description: it opened the segment (rather than inheriting it).
    pub fn opened_here(&self) -> bool {
        self.held.try_lock().is_ok_and(|held| {
            held.as_ref()
                .is_some_and(|h| h.fd.is_none() && h.me.pid == crate::identity::pid())
        })
    }

    /// Leave the registry, if this process is the one registered (a forked
    /// child that never wrote leaves its parent's slot alone).
    pub fn leave(&self, segment: &Segment) {
        let Ok(mut held) = self.held.try_lock() else {
            return;
        };
        match held.take() {
            Some(Held { me, fd }) if me.pid == crate::identity::pid() => {
                let lock_fd = fd.as_ref().map_or(segment.fd(), |fd| fd.as_fd());
                registry::deregister(segment.header(), lock_fd, me);
            }
            other => *held = other,
        }
    }
}

//! The producer registry ([`Producers`]): which processes have a segment
//! open to write, and whether each is alive.
//!
//! A slot holds one process as a single word, `pid << 32 | registration`,
//! where `registration` is the low 32 bits of a number every registration
//! takes anew ([`Producers::registrations`]), so that a later process in the
//! same slot is never taken for an earlier one. Whoever holds a slot holds
//! the lock on its byte of the segment file ([`liveness::producer_byte`]);
//! the kernel drops it when the holder dies, in whatever PID namespace the
//! holder or the one asking lives, so "alive" is "its slot's byte is
//! locked", and the pid is for display.
//!
//! # Protocol
//! - **register**: find a free word (0), take the slot's lock
//!   (non-blocking: a held lock with a free word is a registrant between
//!   its two steps), write the namespace, then CAS the word from 0 to ours.
//!   When no word is free, sweep first.
//! - **deregister**: CAS our word to 0, then release the lock.
//! - **sweep** (the flusher, once a second; a registrant that finds no
//!   free word): a word whose slot's lock is not held belongs to a process
//!   that died; CAS that word to 0. A holder takes its lock before its word
//!   is written and clears its word before it releases the lock, so while a
//!   word is someone's, their lock is held; registration numbers are never
//!   reused, so a stale CAS cannot clear a newer holder's word.
//!
//! When no slot is free the registrant counts itself in `overflow`, and
//! readers know the registry is incomplete.
//!
//! # A record's writer
//! A producer puts the low 16 bits of its registration into each record's
//! header ([`tag`]); [`writer_alive`] finds the slot with that pid and tag
//! and asks its lock. A record of an unregistered writer (tag 0: the
//! registry was full) cannot be told, and is given up only at the unblock
//! timeout.
//!
//! Orderings: Relaxed throughout. The word and the lock are the only state;
//! a reader needs each word's own value, and the lock's state comes from
//! the kernel, which orders it with the CAS of the process that took it.

use std::io;
use std::os::fd::BorrowedFd;

use crate::layout::{Producers, SegmentHeader};
use crate::liveness::{self, producer_byte};
use crate::sync::Ordering;

/// A process as a registry slot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// Its slot.
    pub slot: usize,
    /// Its pid, in its own PID namespace.
    pub pid: u32,
    /// The low 32 bits of its registration number.
    pub registration: u32,
}

impl Registered {
    fn word(&self) -> u64 {
        (self.pid as u64) << 32 | self.registration as u64
    }

    fn from_word(slot: usize, word: u64) -> Option<Self> {
        (word != 0).then_some(Self {
            slot,
            pid: (word >> 32) as u32,
            registration: word as u32,
        })
    }

    /// What this registration's records carry in their header (never 0).
    pub fn tag(&self) -> u16 {
        tag(self.registration)
    }
}

/// The record-header tag of registration `registration`: its low 16 bits,
/// or 1 where they are 0 (0 means "unregistered").
pub fn tag(registration: u32) -> u16 {
    (registration as u16).max(1)
}

/// A registered process, and whether it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    /// Its slot, pid and registration.
    pub who: Registered,
    /// Its PID namespace (0: not known).
    pub pid_namespace: u64,
    /// Whether its slot's lock is held.
    pub alive: bool,
}

fn producers(h: &SegmentHeader) -> &Producers {
    &h.producers
}

/// Register the process `pid` (in PID namespace `pid_namespace`) through
/// `fd`, whose open file description holds the slot's lock until
/// [`deregister`] (or until it is closed, at the latest when the process
/// dies). `fd`'s description must hold no other slot's lock (it cannot see
/// its own). Frees dead holders' slots first when none is free. Returns the
/// slot taken, or `None` when every slot is taken (the overflow is counted).
///
/// # Errors
/// When a lock request fails (no OFD locks in this kernel).
pub fn register(
    h: &SegmentHeader,
    fd: BorrowedFd<'_>,
    pid: u32,
    pid_namespace: u64,
) -> io::Result<Option<Registered>> {
    if let Some(me) = take_free_slot(h, fd, pid, pid_namespace)? {
        return Ok(Some(me));
    }
    sweep(h, fd);
    if let Some(me) = take_free_slot(h, fd, pid, pid_namespace)? {
        return Ok(Some(me));
    }
    producers(h).overflow.fetch_add(1, Ordering::Relaxed);
    Ok(None)
}

/// Take the first free slot whose lock can be had (a held lock with a free
/// word is a registrant between its two steps).
fn take_free_slot(
    h: &SegmentHeader,
    fd: BorrowedFd<'_>,
    pid: u32,
    pid_namespace: u64,
) -> io::Result<Option<Registered>> {
    let p = producers(h);
    for (slot, word) in p.slots.iter().enumerate() {
        if word.load(Ordering::Relaxed) != 0 || !liveness::try_lock(fd, producer_byte(slot))? {
            continue;
        }
        let me = Registered {
            slot,
            pid,
            registration: p.registrations.fetch_add(1, Ordering::Relaxed) as u32 + 1,
        };
        p.namespaces[slot].store(pid_namespace, Ordering::Relaxed);
        if word
            .compare_exchange(0, me.word(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Some(me));
        }
        // Someone else's word without the lock: impossible for a registrant
        // of this layout; leave the slot to the sweep.
        liveness::unlock(fd, producer_byte(slot));
    }
    Ok(None)
}

/// Leave the slot `me` took with [`register`] through `fd`.
pub fn deregister(h: &SegmentHeader, fd: BorrowedFd<'_>, me: Registered) {
    if let Some(s) = producers(h).slots.get(me.slot) {
        let _ = s.compare_exchange(me.word(), 0, Ordering::Relaxed, Ordering::Relaxed);
        liveness::unlock(fd, producer_byte(me.slot));
    }
}

/// The registered processes, live or not, asked through `fd` (a
/// description that holds no producer slot's lock, or only its own).
pub fn registered(h: &SegmentHeader, fd: BorrowedFd<'_>) -> Vec<Producer> {
    let p = producers(h);
    p.slots
        .iter()
        .enumerate()
        .filter_map(|(slot, w)| Registered::from_word(slot, w.load(Ordering::Relaxed)))
        .map(|who| Producer {
            who,
            pid_namespace: p.namespaces[who.slot].load(Ordering::Relaxed),
            // A failed question counts as alive: nothing is given up on it.
            alive: liveness::is_locked(fd, producer_byte(who.slot)).unwrap_or(true),
        })
        .collect()
}

/// Whether producers failed to register (the registry is incomplete).
pub fn overflowed(h: &SegmentHeader) -> bool {
    producers(h).overflow.load(Ordering::Relaxed) > 0
}

/// Free the slots of registered processes that died (the flusher does this
/// once a second). Returns the live ones.
pub fn sweep(h: &SegmentHeader, fd: BorrowedFd<'_>) -> Vec<Producer> {
    let mut live = Vec::new();
    for p in registered(h, fd) {
        if p.alive {
            live.push(p);
        } else {
            let slot = &producers(h).slots[p.who.slot];
            let _ = slot.compare_exchange(p.who.word(), 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    live
}

/// Whether the process registered as `registration` (the low 32 bits of its
/// number, as a slot's word holds it) lives: a slot holds it with its lock
/// held. One whose slot was freed (it died, or deregistered) does not.
pub fn registration_alive(h: &SegmentHeader, fd: BorrowedFd<'_>, registration: u32) -> bool {
    producers(h).slots.iter().enumerate().any(|(slot, w)| {
        Registered::from_word(slot, w.load(Ordering::Relaxed))
            .is_some_and(|r| r.registration == registration)
            && liveness::is_locked(fd, producer_byte(slot)).unwrap_or(true)
    })
}

/// Whether the writer `pid` of a record tagged `tag` lives: `None` when the
/// record carries no tag (its writer was not registered), else whether a
/// slot holds that pid and tag with its lock held. A writer whose slot was
/// freed (it died, or deregistered) is dead.
pub fn writer_alive(h: &SegmentHeader, fd: BorrowedFd<'_>, pid: u32, tag: u16) -> Option<bool> {
    if tag == 0 {
        return None;
    }
    let p = producers(h);
    let alive = p.slots.iter().enumerate().any(|(slot, w)| {
        Registered::from_word(slot, w.load(Ordering::Relaxed))
            .is_some_and(|r| r.pid == pid && r.tag() == tag)
            && liveness::is_locked(fd, producer_byte(slot)).unwrap_or(true)
    });
    Some(alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A file to lock, opened once per "process" (open file description).
    struct Opens {
        path: std::path::PathBuf,
    }

    impl Opens {
        fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("rf-reg-{}-{n}", std::process::id()));
            std::fs::write(&path, b"").unwrap();
            Self { path }
        }
        fn open(&self) -> std::fs::File {
            std::fs::File::options()
                .read(true)
                .write(true)
                .open(&self.path)
                .unwrap()
        }
    }

    impl Drop for Opens {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    #[test]
    fn a_process_registers_is_seen_alive_and_leaves() {
        let h = Box::<SegmentHeader>::default();
        let files = Opens::new();
        let (a, b, flusher) = (files.open(), files.open(), files.open());
        let ra = register(&h, a.as_fd(), 10, 7).unwrap().unwrap();
        let rb = register(&h, b.as_fd(), 11, 8).unwrap().unwrap();
        assert_ne!(ra.slot, rb.slot);
        assert_ne!(ra.registration, rb.registration);
        let seen = registered(&h, flusher.as_fd());
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|p| p.alive));
        assert_eq!(seen[1].pid_namespace, 8);
        assert_eq!(writer_alive(&h, flusher.as_fd(), 10, ra.tag()), Some(true));
        assert_eq!(writer_alive(&h, flusher.as_fd(), 10, rb.tag()), Some(false));
        assert_eq!(writer_alive(&h, flusher.as_fd(), 10, 0), None);
        deregister(&h, a.as_fd(), ra);
        let left: Vec<_> = registered(&h, flusher.as_fd())
            .iter()
            .map(|p| p.who)
            .collect();
        assert_eq!(left, [rb]);
        assert_eq!(writer_alive(&h, flusher.as_fd(), 10, ra.tag()), Some(false));
    }

    #[test]
    fn a_dead_holders_slot_is_swept() {
        let h = Box::<SegmentHeader>::default();
        let files = Opens::new();
        let flusher = files.open();
        let dead = {
            let a = files.open();
            register(&h, a.as_fd(), 10, 7).unwrap().unwrap()
            // `a` closes here: the process "died" with its slot taken.
        };
        let seen = registered(&h, flusher.as_fd());
        assert_eq!(seen.len(), 1);
        assert!(!seen[0].alive);
        assert_eq!(
            writer_alive(&h, flusher.as_fd(), 10, dead.tag()),
            Some(false)
        );
        let b = files.open();
        let rb = register(&h, b.as_fd(), 12, 7).unwrap().unwrap();
        assert_ne!(rb.slot, dead.slot);
        assert_eq!(sweep(&h, flusher.as_fd()).len(), 1);
        assert_eq!(registered(&h, flusher.as_fd()).len(), 1);
        assert_eq!(
            writer_alive(&h, flusher.as_fd(), 10, dead.tag()),
            Some(false)
        );
        drop(b);
        assert!(sweep(&h, flusher.as_fd()).is_empty());
        assert!(registered(&h, flusher.as_fd()).is_empty());
    }

    #[test]
    fn a_full_registry_counts_the_overflow() {
        let h = Box::<SegmentHeader>::default();
        let files = Opens::new();
        let opens: Vec<_> = (0..crate::layout::PRODUCER_SLOTS)
            .map(|_| files.open())
            .collect();
        for (pid, f) in opens.iter().enumerate() {
            register(&h, f.as_fd(), pid as u32 + 1, 0).unwrap().unwrap();
        }
        assert!(!overflowed(&h));
        let late = files.open();
        assert_eq!(register(&h, late.as_fd(), 999, 0).unwrap(), None);
        assert!(overflowed(&h));
        // One leaves (its description closes): the next one finds room.
        drop(opens);
        assert!(register(&h, late.as_fd(), 999, 0).unwrap().is_some());
    }

    #[test]
    fn tags_are_never_zero() {
        assert_eq!(tag(0x1_0000), 1);
        assert_eq!(tag(0x2_0005), 5);
    }
}

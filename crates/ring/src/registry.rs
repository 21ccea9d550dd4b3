//! The producer registry (layout 1.1, [`Producers`]): which processes have a
//! segment open to write.
//!
//! A slot holds one process as a single word, `pid << 32 | start`, `start`
//! being the low 32 bits of its start time in clock ticks since boot, so
//! that a reused pid is never taken for a registered process. Taking a free
//! slot (0 to the word), leaving it (the word to 0) and freeing a dead
//! process's slot (the word it read to 0) are each one CAS, so a slot never
//! holds half of one process and half of another. When no slot is free the
//! registrant counts itself in `overflow`, and readers know the registry is
//! incomplete.
//!
//! Orderings: every access is Relaxed. The registry publishes no other data:
//! a reader needs each word's own value, never an order between words.

use std::fs;

use crate::layout::{Producers, SegmentHeader};
use crate::sync::Ordering;

/// A process as the registry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// The low 32 bits of its start time in clock ticks since boot.
    pub start: u32,
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z`...).
    pub state: char,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Read `/proc/<pid>/stat`; `None` when the process does not exist.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces or parentheses itself.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); starttime is field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

impl Process {
    /// This process, as it registers itself.
    pub fn current() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            pid,
            start: proc_stat(pid)?.start_ticks as u32,
        })
    }

    /// Whether this process still runs: it exists, is not a zombie, and is
    /// the same process (same start time), not a later one with its pid.
    pub fn alive(&self) -> bool {
        proc_stat(self.pid)
            .is_some_and(|st| !matches!(st.state, 'Z' | 'X') && st.start_ticks as u32 == self.start)
    }

    fn word(&self) -> u64 {
        (self.pid as u64) << 32 | self.start as u64
    }

    fn from_word(word: u64) -> Option<Self> {
        (word != 0).then_some(Self {
            pid: (word >> 32) as u32,
            start: word as u32,
        })
    }
}

fn producers(h: &SegmentHeader) -> &Producers {
    &h.producers
}

/// Register `me`; returns its slot, or `None` when every slot is taken (the
/// overflow is counted).
pub fn register(h: &SegmentHeader, me: Process) -> Option<usize> {
    let p = producers(h);
    let word = me.word();
    for (i, slot) in p.slots.iter().enumerate() {
        if slot.load(Ordering::Relaxed) == 0
            && slot
                .compare_exchange(0, word, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(i);
        }
    }
    p.overflow.fetch_add(1, Ordering::Relaxed);
    None
}

/// Leave the slot `me` took with [`register`].
pub fn deregister(h: &SegmentHeader, slot: usize, me: Process) {
    if let Some(s) = producers(h).slots.get(slot) {
        let _ = s.compare_exchange(me.word(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The registered processes, live or not, with their slots.
pub fn registered(h: &SegmentHeader) -> impl Iterator<Item = (usize, Process)> + '_ {
    producers(h)
        .slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Process::from_word(s.load(Ordering::Relaxed)).map(|p| (i, p)))
}

/// Whether producers failed to register (the registry is incomplete).
pub fn overflowed(h: &SegmentHeader) -> bool {
    producers(h).overflow.load(Ordering::Relaxed) > 0
}

/// Free the slots of registered processes that died (the flusher does this
/// once a second). Returns the live ones.
pub fn sweep(h: &SegmentHeader) -> Vec<Process> {
    let mut live = Vec::new();
    for (i, p) in registered(h) {
        if p.alive() {
            live.push(p);
        } else {
            let slot = &producers(h).slots[i];
            let _ = slot.compare_exchange(p.word(), 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_registers_once_per_slot_and_leaves_it() {
        let h = Box::<SegmentHeader>::default();
        let me = Process::current().unwrap();
        assert!(me.alive());
        let a = register(&h, me).unwrap();
        let b = register(&h, me).unwrap();
        assert_ne!(a, b);
        assert_eq!(registered(&h).count(), 2);
        deregister(&h, a, me);
        assert_eq!(registered(&h).map(|(i, _)| i).collect::<Vec<_>>(), [b]);
        // Leaving someone else's slot does nothing.
        deregister(&h, b, Process { pid: 1, start: 0 });
        assert_eq!(registered(&h).count(), 1);
    }

    #[test]
    fn the_sweep_frees_dead_and_reused_pids_only() {
        let h = Box::<SegmentHeader>::default();
        let me = Process::current().unwrap();
        register(&h, me).unwrap();
        // Our pid with another start time: a reused pid, not us.
        register(
            &h,
            Process {
                start: me.start.wrapping_add(1),
                ..me
            },
        )
        .unwrap();
        register(
            &h,
            Process {
                pid: u32::MAX - 1,
                start: 7,
            },
        )
        .unwrap();
        assert_eq!(sweep(&h), [me]);
        assert_eq!(registered(&h).map(|(_, p)| p).collect::<Vec<_>>(), [me]);
    }

    #[test]
    fn a_full_registry_counts_the_overflow() {
        let h = Box::<SegmentHeader>::default();
        let me = Process::current().unwrap();
        for _ in 0..crate::layout::PRODUCER_SLOTS {
            register(&h, me).unwrap();
        }
        assert!(!overflowed(&h));
        assert_eq!(register(&h, me), None);
        assert!(overflowed(&h));
    }
}

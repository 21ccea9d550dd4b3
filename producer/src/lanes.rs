//! Each thread's lane of each producer (`ringflush_ring::lane`): claimed at
//! the thread's first record, kept in the thread's local state, released
//! when the thread exits or the producer is dropped.
//!
//! A thread's entry names the producer by a number no other producer of
//! this process gets, and the process by its pid: after `fork()` the child
//! finds its parent's entry with another pid, leaves the parent's lane
//! alone and claims one of its own (with its own registration). An entry
//! does not keep the segment mapped (a dropped producer's mapping must go,
//! or /dev/shm keeps its pages): it holds a weak handle, with which the
//! thread's exit releases the lane if the producer still lives; if it does
//! not, the producer released every lane it handed out when it was dropped.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ringflush_ring::frame;
use ringflush_ring::lane::{self, LaneWriter};
use ringflush_ring::SharedLanes;

use crate::identity;

/// Producers made in this process so far: each gets the next number.
static PRODUCERS: AtomicU64 = AtomicU64::new(1);
/// Lane claims made in this process so far (see `Lanes::claim`).
static CLAIMS: AtomicU32 = AtomicU32::new(1);

/// A producer's lanes: the segment's, and the ones its threads claimed.
#[derive(Debug)]
pub struct LaneSet {
    id: u64,
    /// The longest payload the log call's fast path writes (see
    /// [`ThreadLane::limit`]).
    fast_limit: usize,
    /// The producer's clock flag (`frame::FLAG_TSC` or 0), for
    /// [`ThreadLane::word2`].
    clock_flags: u32,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    lanes: SharedLanes,
    /// Every lane claimed through this producer, with the claiming pid.
    claimed: Mutex<Vec<(u32, LaneWriter)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pid = identity::pid();
        let claimed = self.claimed.get_mut().map_or(Vec::new(), std::mem::take);
        for (_, writer) in claimed.iter().filter(|(p, _)| *p == pid) {
            writer.release(&self.lanes);
        }
    }
}

/// A thread's lane of one producer.
pub(crate) struct ThreadLane {
    producer: u64,
    /// The process that claimed it, whose pid its records carry.
    pub pid: u32,
    /// The registration tag its records carry.
    pub tag: u16,
    /// Header word 2 of the log call's records (`frame::encode_word2`):
    /// the pid, the clock flag, `FLAG_LANE_THREAD` and the tag, which stay
    /// the same for every record of the lane.
    pub word2: u64,
    /// The longest payload the log call's fast path writes here: the
    /// segment's maximum, or 0 when every record must take the general
    /// path (fault injection, or a thread name too long for the lane to
    /// hold: each record carries it then).
    pub limit: usize,
    pub writer: LaneWriter,
    owner: Weak<Shared>,
}

impl Drop for ThreadLane {
    fn drop(&mut self) {
        if self.pid != identity::pid() {
            return;
        }
        if let Some(shared) = self.owner.upgrade() {
            self.writer.release(&shared.lanes);
        }
    }
}

thread_local! {
    static THREAD_LANES: RefCell<Vec<ThreadLane>> = const { RefCell::new(Vec::new()) };
}

impl LaneSet {
    /// The lanes of a segment, for a new producer whose log call's fast
    /// path writes payloads of up to `fast_limit` bytes.
    /// `clock_flags` say how its records' timestamps are taken
    /// (`frame::FLAG_TSC` or 0).
    pub fn new(lanes: SharedLanes, fast_limit: usize, clock_flags: u32) -> Self {
        Self {
            id: PRODUCERS.fetch_add(1, Ordering::Relaxed),
            fast_limit,
            clock_flags,
            shared: Arc::new(Shared {
                lanes,
                claimed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The segment's lanes.
    pub fn lanes(&self) -> &SharedLanes {
        &self.shared.lanes
    }

    /// The log call's fast path: run `f` with this thread's lane of this
    /// producer, if the thread has claimed one (in this process: `pid`).
    /// `None` when it has not, or `f` gives `None`: the caller takes
    /// [`LaneSet::with_writer`]'s path then, which claims one.
    #[inline]
    pub fn with_own<T>(&self, pid: u32, f: impl FnOnce(&mut ThreadLane) -> Option<T>) -> Option<T> {
        THREAD_LANES
            .try_with(|cell| {
                let mut lanes = cell.try_borrow_mut().ok()?;
                let first = lanes.first_mut()?;
                if first.producer == self.id && first.pid == pid {
                    return f(first);
                }
                Self::to_front(&mut lanes, self.id, pid);
                None
            })
            .ok()
            .flatten()
    }

    /// Move this producer's entry to the front, where the fast path looks.
    #[cold]
    #[inline(never)]
    fn to_front(lanes: &mut [ThreadLane], producer: u64, pid: u32) {
        if let Some(i) = lanes
            .iter()
            .position(|t| t.producer == producer && t.pid == pid)
        {
            lanes.swap(0, i);
        }
    }

    /// Run `f` with this thread's lane writer and the tag its records
    /// carry, claiming a lane first if the thread has none (`registered`
    /// gives this process's registration and tag). `None` when the thread
    /// can have no lane: every lane is taken, the process is not
    /// registered, or the thread is exiting; the caller writes into the
    /// shared ring then.
    #[inline]
    pub fn with_writer<T>(
        &self,
        pid: u32,
        registered: impl FnOnce() -> Option<(u32, u16)>,
        f: impl FnOnce(&mut LaneWriter, u16) -> T,
    ) -> Option<T> {
        THREAD_LANES
            .try_with(|cell| {
                let mut lanes = cell.try_borrow_mut().ok()?;
                let i = match lanes
                    .iter()
                    .position(|t| t.producer == self.id && t.pid == pid)
                {
                    Some(i) => i,
                    None => self.claim(&mut lanes, pid, registered)?,
                };
                let t = &mut lanes[i];
                Some(f(&mut t.writer, t.tag))
            })
            .ok()
            .flatten()
    }

    /// Claim a lane for this thread; also forget entries of producers that
    /// are gone (their lanes were released when they were dropped).
    #[cold]
    #[inline(never)]
    fn claim(
        &self,
        lanes: &mut Vec<ThreadLane>,
        pid: u32,
        registered: impl FnOnce() -> Option<(u32, u16)>,
    ) -> Option<usize> {
        lanes.retain(|t| t.owner.strong_count() > 0);
        let (registration, tag) = registered()?;
        let claim = CLAIMS.fetch_add(1, Ordering::Relaxed);
        let thread = identity::current_thread();
        let writer = self
            .shared
            .lanes
            .claim_named(registration, claim, thread.id, &thread.name)?;
        if let Ok(mut claimed) = self.shared.claimed.lock() {
            claimed.retain(|(_, w)| w.still_owned(&self.shared.lanes));
            claimed.push((pid, writer.clone()));
        }
        // The lane holds the thread's name, or the fast path (which
        // leaves it out) is not for this thread.
        let named = lane::holds_thread_name(&thread.name);
        let flags = self.clock_flags | frame::FLAG_LANE_THREAD;
        lanes.push(ThreadLane {
            producer: self.id,
            pid,
            tag,
            word2: frame::encode_word2(pid, frame::flags_with_tag(flags, tag)),
            limit: if named { self.fast_limit } else { 0 },
            writer,
            owner: Arc::downgrade(&self.shared),
        });
        Some(lanes.len() - 1)
    }
}

//! The drain of a segment with lanes: the shared ring and every lane merged
//! by time, each queue in its own order.
//!
//! Quill's backend orders the records of its threads' queues by timestamp,
//! holding back any newer than a grace period (`BackendOptions::
//! log_timestamp_ordering_grace_period`), so that a record stamped earlier
//! but published a little later on another thread still comes first. The
//! merge here does the same across processes: it takes, among the first
//! record of each queue, the oldest one stamped at or before `until` (now
//! less [`WINDOW`], or everything once the flusher is stopping), and
//! stops when no queue has one. A queue's own records keep their order
//! whatever their stamps: only the queues' first records are compared. On a
//! tie a lane's record goes before the shared ring's (a writer's record too
//! large for its lane goes to the shared ring only once its lane is
//! drained, and must not pass it).
//!
//! A record is ordered by its stamp, or by the time the merge first saw it
//! plus a second ([`FUTURE_NS`]) if that is earlier: one stamped in the
//! future (`Producer::write_at`, Python's `created`, a clock stepped back)
//! waits a second and a window, not until its time comes. (Without the
//! second, records published during a drain, stamped just after its clock
//! reading, would be clamped too, and a writer's record in the shared ring
//! could pass its earlier ones in its lane.)
//!
//! A record that becomes visible only after the merge has written a newer
//! one (its writer stalled between stamping and publishing for longer than
//! the window) is written when it arrives, out of time order, into the file
//! open then, and counted as `late`: never held, never dropped. A stalled
//! writer holds back nobody: its lane simply has nothing to offer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Deref;
use std::time::Duration;

use ringflush_ring::frame::{align, FLAG_LANE_THREAD};
use ringflush_ring::lane::{LaneReader, Lanes, Owner, Peeked};
use ringflush_ring::{Consumer, Corruption, RecordRef, Region, SegmentHeader, Stamp, Stop};

/// How long a record is held for records of other queues stamped before it.
/// The flusher polls every millisecond while records come, so a record is
/// visible within about that of its publication; the window covers a
/// writer descheduled between stamping and publishing for a scheduler tick
/// or two.
pub const WINDOW: Duration = Duration::from_millis(10);

/// How far ahead of the merge's clock a record must be stamped to be held
/// by when it was seen rather than by its stamp. Records published during a
/// drain are routinely stamped a little after the clock reading it started
/// with; clamping those would let one writer's record in the shared ring
/// pass its earlier ones in its lane. A second is far beyond any drain's
/// length and the TSC calibration's error.
const FUTURE_NS: u64 = 1_000_000_000;

/// Damage found in a lane: its tail, chunk table or a frame clobbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneDamage {
    /// The lane.
    pub lane: usize,
    /// What was wrong.
    pub why: Corruption,
    /// Bytes given up (from the read position to the lane's tail).
    pub skipped: u64,
}

/// The merge's state: a reader of each lane, the first record of each (as
/// last peeked), and what the last drain found.
#[derive(Debug)]
pub struct Merge {
    readers: Vec<LaneReader>,
    /// Each lane's first record and its time, once peeked.
    heads: Vec<Option<(Peeked, Timing)>>,
    /// The lanes that have a first record in `heads`, by its key, then
    /// lane (a min-heap: the merge's cost per record grows with the log of
    /// the lanes, not with their number).
    order: BinaryHeap<Reverse<(u64, usize)>>,
    /// The shared ring's first record (its position) and its ordering key,
    /// since it was first seen.
    shared_seen: Option<(u64, u64)>,
    /// The time of the newest record handed out.
    newest: u64,
    /// Whether the last drain left records held back by the window.
    pub held: bool,
    /// Records handed out older than one handed out before (late).
    pub late: u64,
    /// Lanes found damaged (and skipped to their tail) since last taken.
    pub damage: Vec<LaneDamage>,
}

/// A record's time as the merge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    /// Its stamp (realtime ns): the file's period follows it.
    ns: u64,
    /// What it is ordered by: the stamp, or the time the merge first saw
    /// it plus [`FUTURE_NS`] if that is earlier (a record stamped in the
    /// future).
    key: u64,
}

impl Timing {
    fn new(ns: u64, seen: u64) -> Self {
        Self {
            ns,
            key: ns.min(seen.saturating_add(FUTURE_NS)),
        }
    }
}

/// Which queue goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Lane(usize),
    Shared,
}

/// The oldest of the lanes' first records (`lanes`: index and time) and
/// the shared ring's (`shared`), stamped at or before `until`; a lane wins
/// a tie with the shared ring, a lower lane one with a higher.
fn oldest(
    lanes: impl Iterator<Item = (usize, u64)>,
    shared: Option<u64>,
    until: u64,
) -> Option<Pick> {
    let best_lane = lanes
        .filter(|&(_, ns)| ns <= until)
        .min_by_key(|&(i, ns)| (ns, i));
    match (best_lane, shared.filter(|&ns| ns <= until)) {
        (Some((_, lane_ns)), Some(shared_ns)) if shared_ns < lane_ns => Some(Pick::Shared),
        (Some((i, _)), _) => Some(Pick::Lane(i)),
        (None, Some(_)) => Some(Pick::Shared),
        (None, None) => None,
    }
}

impl Merge {
    /// The merge over `readers` (the lanes' readers, from their heads).
    pub fn new(readers: Vec<LaneReader>) -> Self {
        let heads = vec![None; readers.len()];
        Self {
            readers,
            heads,
            order: BinaryHeap::new(),
            shared_seen: None,
            newest: 0,
            held: false,
            late: 0,
            damage: Vec::new(),
        }
    }

    /// The lanes' readers (crash recovery moves them).
    pub fn readers(&mut self) -> &mut [LaneReader] {
        self.forget_heads();
        &mut self.readers
    }

    fn forget_heads(&mut self) {
        self.heads.iter_mut().for_each(|h| *h = None);
        self.order.clear();
        self.shared_seen = None;
    }

    /// The timing of the shared ring's first record, at `pos`, stamped `ns`:
    /// its key is kept from when it was first seen.
    fn shared_timing(&mut self, pos: u64, ns: u64, seen: u64) -> Timing {
        match self.shared_seen {
            Some((at, key)) if at == pos => Timing { ns, key },
            _ => {
                let t = Timing::new(ns, seen);
                self.shared_seen = Some((pos, t.key));
                t
            }
        }
    }

    /// Peek lane `i`'s first record into `heads`; a damaged lane is skipped
    /// to its tail and noted.
    fn peek_lane<H, R>(
        &mut self,
        lanes: &Lanes<H, R>,
        i: usize,
        clock: &impl Fn(&Stamp) -> u64,
        seen: u64,
    ) where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        if let Some(key) = self.peek_head(lanes, i, clock, seen) {
            self.order.push(Reverse((key, i)));
        }
    }

    /// Peek lane `i`'s first record into `heads` (not into `order`): its
    /// key, if it has one.
    fn peek_head<H, R>(
        &mut self,
        lanes: &Lanes<H, R>,
        i: usize,
        clock: &impl Fn(&Stamp) -> u64,
        seen: u64,
    ) -> Option<u64>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let r = &mut self.readers[i];
        self.heads[i] = match r.peek(lanes) {
            Ok(found) => found.map(|p| (p, Timing::new(clock(&p.stamp), seen))),
            Err(why) => {
                let skipped = r.skip_to_tail(lanes);
                self.damage.push(LaneDamage {
                    lane: i,
                    why,
                    skipped,
                });
                None
            }
        };
        self.heads[i].map(|(_, t)| t.key)
    }

    /// Hand records to `visit` oldest first (see the module docs), from the
    /// shared ring's `shared` consumer and the `lanes`, until `budget` bytes
    /// were read, `visit` declines one, or none is left stamped at or
    /// before `until`; `clock` turns a stamp into realtime ns. Returns
    /// the shared ring's [`Stop`] when it is what stopped, else
    /// [`Stop::Empty`] ([`Merge::held`] says whether records wait for the
    /// window).
    pub fn drain<SH, SR, H, R>(
        &mut self,
        shared: &mut Consumer<SH, SR>,
        lanes: &Lanes<H, R>,
        clock: &impl Fn(&Stamp) -> u64,
        budget: u64,
        until: u64,
        mut visit: impl FnMut(RecordRef<'_>, u64) -> bool,
    ) -> Stop
    where
        SH: Deref<Target = SegmentHeader>,
        SR: Region,
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        // Now, as far as the merge knows: `until` is a window before it.
        let seen = until.saturating_add(WINDOW.as_nanos() as u64);
        for i in 0..self.readers.len() {
            if self.heads[i].is_none() {
                self.peek_lane(lanes, i, clock, seen);
            }
        }
        let mut read = 0;
        loop {
            if read >= budget {
                return Stop::Budget;
            }
            let next = shared.peek();
            let shared_t = match &next {
                Ok(n) => Some(self.shared_timing(n.pos, clock(&n.stamp), seen)),
                Err(_) => None,
            };
            let lane_first = self.order.peek().map(|&Reverse((key, i))| (i, key));
            let Some(pick) = oldest(lane_first.into_iter(), shared_t.map(|t| t.key), until) else {
                self.held = shared_t.is_some() || !self.order.is_empty();
                return next.err().unwrap_or(Stop::Empty);
            };
            let (len, t) = match pick {
                Pick::Shared => {
                    let (n, t) = (next.expect("picked"), shared_t.expect("picked"));
                    if !shared.view(&n, |r| visit(r, t.ns)) {
                        return Stop::Visitor;
                    }
                    shared.advance(&n);
                    (n.len, t)
                }
                Pick::Lane(i) => match self.take_lane(lanes, i, clock, seen, &mut visit) {
                    Some(taken) => taken,
                    None => return Stop::Visitor,
                },
            };
            read += align(len);
            self.note(t.key);
        }
    }

    /// Hand lane `i`'s first record (the top of `order`) to `visit` and
    /// peek its next one:
    /// its length and timing, or `None` when `visit` declined it.
    fn take_lane<H, R>(
        &mut self,
        lanes: &Lanes<H, R>,
        i: usize,
        clock: &impl Fn(&Stamp) -> u64,
        seen: u64,
        visit: &mut impl FnMut(RecordRef<'_>, u64) -> bool,
    ) -> Option<(u64, Timing)>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let (p, t) = self.heads[i].take().expect("a first record");
        let r = &mut self.readers[i];
        let lane = r.lane();
        let taken = r.view(lanes, &p, |payload| {
            let record = RecordRef {
                pos: p.pos,
                stamp: p.stamp,
                payload,
                thread: (p.stamp.flags & FLAG_LANE_THREAD != 0).then(|| lanes.thread(lane)),
            };
            visit(record, t.ns)
        });
        if !taken {
            // Still first in `order`.
            self.heads[i] = Some((p, t));
            return None;
        }
        r.advance(&p);
        // The lane's next record takes its place at the top of `order`:
        // one sift down, not a pop and a push.
        match self.peek_head(lanes, i, clock, seen) {
            Some(key) => *self.order.peek_mut().expect("the lane's entry") = Reverse((key, i)),
            None => {
                self.order.pop();
            }
        }
        Some((p.len, t))
    }

    /// A record ordered by `ns` was handed out: late if a newer one was
    /// before.
    fn note(&mut self, ns: u64) {
        if ns < self.newest {
            self.late += 1;
        } else {
            self.newest = ns;
        }
    }

    /// Whether every lane is read to its tail.
    pub fn is_empty<H, R>(&mut self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        self.heads.iter().all(Option::is_none) && self.readers.iter_mut().all(|r| r.is_empty(lanes))
    }

    /// How far the current batch reads in each lane: `(lane, position)` for
    /// every lane read since its last release.
    pub fn consumed(&self) -> Vec<(usize, u64)> {
        self.readers
            .iter()
            .filter(|r| r.position() != r.head())
            .map(|r| (r.lane(), r.position()))
            .collect()
    }

    /// The batch is in the file: free what it read.
    pub fn release<H, R>(&mut self, lanes: &Lanes<H, R>)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        for r in &mut self.readers {
            r.release(lanes);
        }
    }

    /// Free the lanes whose writers are done (released, or their process is
    /// not `alive`), once they are read and released to their tails.
    /// Returns how many of them had a record half-written past the tail.
    pub fn recycle<H, R>(&mut self, lanes: &Lanes<H, R>, alive: impl Fn(u32) -> bool) -> u64
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let mut abandoned = 0;
        for (r, head) in self.readers.iter_mut().zip(&self.heads) {
            let gone = match lanes.owner(r.lane()) {
                Owner::Free => false,
                Owner::Owned { registration } => !alive(registration),
                Owner::Released { .. } => true,
            };
            if gone && head.is_none() && r.is_empty(lanes) && r.position() == r.head() {
                // SAFETY: its writer released the lane or its process died.
                abandoned += u64::from(unsafe { r.recycle(lanes) });
            }
        }
        abandoned
    }

    /// After a flusher was killed mid-release: each lane's head past the
    /// stretches whose chunks it had freed (see `LaneReader::recover_head`).
    pub fn recover_heads<H, R>(&mut self, lanes: &Lanes<H, R>)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        for r in &mut self.readers {
            r.recover_head(lanes);
        }
        self.forget_heads();
    }

    /// Bytes published in the lanes and not yet read.
    pub fn unread<H, R>(&mut self, lanes: &Lanes<H, R>) -> u64
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        self.readers
            .iter_mut()
            .map(|r| r.tail(lanes).saturating_sub(r.position()))
            .sum()
    }

    /// Whether any lane has records published past its read position (the
    /// flusher's check before it sleeps).
    pub fn ready<H, R>(&self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        self.readers
            .iter()
            .any(|r| lanes.tail(r.lane()) != r.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_first_record_at_or_before_until_goes_next() {
        let lanes = || [(0, 30), (1, 10), (2, 20)].into_iter();
        assert_eq!(oldest(lanes(), Some(15), 100), Some(Pick::Lane(1)));
        assert_eq!(oldest(lanes(), Some(5), 100), Some(Pick::Shared));
        // The window holds back what is newer than `until`.
        assert_eq!(oldest(lanes(), Some(5), 4), None);
        assert_eq!(oldest(lanes(), None, 25), Some(Pick::Lane(1)));
        assert_eq!(oldest([(3, 7)].into_iter(), None, 6), None);
        assert_eq!(oldest(std::iter::empty(), Some(6), 6), Some(Pick::Shared));
    }

    #[test]
    fn a_lane_wins_a_tie_with_the_shared_ring_and_a_lower_lane_with_a_higher() {
        let lanes = [(2, 10), (1, 10)].into_iter();
        assert_eq!(oldest(lanes, Some(10), 10), Some(Pick::Lane(1)));
    }

    #[test]
    fn a_record_stamped_in_the_future_is_ordered_by_when_it_was_seen() {
        let seen = 10 * FUTURE_NS;
        assert_eq!(Timing::new(5, seen), Timing { ns: 5, key: 5 });
        // Stamped a little after the clock reading: ordered by its stamp.
        let soon = seen + FUTURE_NS / 2;
        assert_eq!(Timing::new(soon, seen).key, soon);
        let far = seen + 3600 * FUTURE_NS;
        assert_eq!(Timing::new(far, seen).key, seen + FUTURE_NS);
        // The shared ring's first record keeps the key of its first sight,
        // so that the window passes for it; a new first record gets its own.
        let mut m = Merge::new(Vec::new());
        assert_eq!(m.shared_timing(64, far, seen).key, seen + FUTURE_NS);
        assert_eq!(m.shared_timing(64, far, seen + 7).key, seen + FUTURE_NS);
        assert_eq!(
            m.shared_timing(128, far, seen + 7).key,
            seen + 7 + FUTURE_NS
        );
    }

    #[test]
    fn a_record_older_than_one_handed_out_is_late() {
        let mut m = Merge::new(Vec::new());
        for ns in [10, 20, 20, 15, 30, 29] {
            m.note(ns);
        }
        assert_eq!(m.late, 2);
        assert_eq!(m.newest, 30);
    }

    /// Four lanes whose records' stamps interleave (lane k holds k, k + 4,
    /// k + 8, ...), drained in budgets that cut through them: every record
    /// once, in stamp order (the heap's top is replaced as lanes advance).
    #[test]
    fn records_of_many_lanes_come_out_in_stamp_order_once() {
        use ringflush_ring::frame::RECORD_HEADER_LEN;
        use ringflush_ring::{HeapRegion, Ring};
        use std::sync::atomic::Ordering;
        let h = SegmentHeader::default();
        let id = &h.identity;
        id.chunk_size.store(256, Ordering::Relaxed);
        id.chunk_count.store(32, Ordering::Relaxed);
        id.lanes.store(4, Ordering::Relaxed);
        id.max_record.store(256, Ordering::Relaxed);
        let (pool, ring) = (
            HeapRegion::new(32 * 256),
            Ring::new(&h, HeapRegion::new(1024)),
        );
        let lanes = Lanes::new(&h, &pool);
        let mut writers: Vec<_> = (0..4)
            .map(|t| lanes.claim(7, t + 1, t as u64).unwrap())
            .collect();
        for (k, w) in writers.iter_mut().enumerate() {
            for n in 0..12u64 {
                let stamp = Stamp {
                    pid: 1,
                    flags: 0,
                    timestamp: 4 * n + k as u64,
                };
                let slot = w.reserve(&lanes, RECORD_HEADER_LEN + 8).unwrap();
                w.stamp(&lanes, &slot, stamp);
                w.fill(&lanes, &slot, |b| {
                    b.copy_from_slice(&stamp.timestamp.to_le_bytes())
                });
                w.publish(&lanes, &slot);
            }
        }
        // SAFETY: the test is the one consumer of the ring and the lanes.
        let (mut shared, readers) =
            unsafe { (ring.consumer(), (0..4).map(|i| lanes.reader(i)).collect()) };
        let mut merge = Merge::new(readers);
        let mut seen = Vec::new();
        for _ in 0..100 {
            merge.drain(
                &mut shared,
                &lanes,
                &|s: &Stamp| s.timestamp,
                5 * 40,
                1 << 40,
                |r, ns| {
                    assert_eq!(r.payload, ns.to_le_bytes());
                    seen.push(ns);
                    true
                },
            );
        }
        assert_eq!(seen, (0..48).collect::<Vec<_>>());
        assert_eq!(merge.late, 0);
    }
}

//! Lanes: each writer its own part of the segment, so that no writer waits
//! on another and the log call needs no atomic read-modify-write.
//!
//! # Algorithm
//! Per-thread single-producer queues merged by a backend, as in Quill
//! (odygrd/quill: each frontend thread owns an SPSC queue, the backend
//! thread drains them all and orders by timestamp within a grace period)
//! and NanoLog (Yang et al., USENIX ATC '18: per-thread staging buffers).
//! Quill grows a thread's queue by allocating; in a fixed shared-memory
//! segment the storage is instead LTTng-UST's: sub-buffers of one pool
//! (here *chunks*) that a writer takes as it needs them and the consumer
//! gives back once it has written them.
//!
//! - A **lane** is owned by one writer (a thread of a registered process):
//!   it takes a free lane once with a CAS on the lane's `owner` word
//!   ([`Lanes::claim`]), then writes only there.
//! - Lane **positions** grow from 0 and are never reused while the segment
//!   lives. Stretch `p / chunk_size` of positions is stored in the pool
//!   chunk that the lane's table names in entry `stretch % MAX_CHUNKS`; the
//!   byte is `p % chunk_size` of that chunk. A record never crosses a
//!   chunk: a padding frame fills the rest of a chunk a record does not fit
//!   in. Frames are the shared ring's (`frame.rs`), tagged with their lane
//!   position, so the flusher validates them the same way.
//! - **Thread**: the claim stores the writer's thread id and name in the
//!   lane's owner block; the log call's records leave them out
//!   (`frame::FLAG_LANE_THREAD`), so the hot path copies neither. They stay
//!   until the flusher recycles the lane, after its last record.
//! - **Writing** (the hot path): bump the writer's own position inside its
//!   current chunk, store the frame's words and copy the payload with plain
//!   stores, then publish the new `tail` with one Release store. No CAS, no
//!   fence, no line another writer touches. Moving to a new chunk (once per
//!   chunk) takes one of the lane's **spares** if the flusher left one,
//!   with plain loads and a store on the line of the lane's `head` (which
//!   the move reads anyway), else a chunk from the pool with a CAS on its
//!   owner word.
//! - **Spares** (5.1): each time the flusher releases a lane's chunks, it
//!   fills empty spare slots of the lane with chunks it takes from the
//!   pool: twice the chunks it just freed (what the writer went through in
//!   a poll interval) and one, at most [`SPARES`](crate::layout::SPARES),
//!   while the lane's writer owns it and no more than an eighth of the
//!   pool (two chunks of a small one) is held (so spares, which an idle
//!   lane keeps, never stand between a busy writer and its seven-eighths
//!   share). Each slot changes hands like an SPSC queue of one: the flusher writes it only when it reads 0, the
//!   writer only when it reads a chunk, so neither needs a
//!   read-modify-write. This takes the CAS, and the miss on a pool line the
//!   flusher wrote, out of the writer's chunk switch (1 record in 178 of
//!   100 B in an 8 MiB segment), which is what a log call's p99.9 is.
//! - **Draining** (the flusher, the lanes' one consumer): read from its
//!   position up to `tail` (Acquire), and once the records are in the file,
//!   zero and free every chunk wholly below the read position and publish
//!   the new `head`.
//! - **Share**: a lane holds at most seven eighths of the pool
//!   ([`Lanes::share`]), so one busy writer can burst through two thirds of
//!   the segment (the pool is its last three quarters) and still leave room
//!   for the others.
//! - **Recycling**: an owner that is done (its thread exited, its producer
//!   was dropped) marks the lane released; the flusher treats a lane whose
//!   owner's registration has lost its lock (`registry.rs`) the same way.
//!   Either way the flusher drains it to its tail, frees every chunk it
//!   still holds (counting a record half-written beyond the tail), moves
//!   its positions to the next chunk boundary and frees the lane
//!   ([`LaneReader::recycle`]).
//!
//! # Invariants
//! - `head <= tail`, both only grow, and `tail - head` spans at most
//!   [`Lanes::share`] chunks (a hostile `tail` beyond that is corruption).
//! - For every stretch from `head` to the writer's position, the table
//!   names a chunk owned by the lane (`pool.owners[c] == lane + 1`); chunks
//!   of stretches below `head` are back in the pool, zeroed.
//! - Only the owner writes bytes of its chunks, and only at or beyond the
//!   published `tail`; the flusher reads only below it.
//! - A free chunk's bytes are zero.
//! - A lane's spare slot, when not 0, names a zeroed chunk the lane owns
//!   and no table entry at or beyond `head` names (until the writer takes
//!   it); no two slots name the same chunk.
//!
//! # Memory-ordering contract (each Release names its Acquire)
//! - (L1) writer: frame words, payload, table entries (Relaxed or plain),
//!   and, at the claim, the owner block's thread id and name, then `tail`
//!   with **Release** -> (L1') the flusher's **Acquire** load of `tail` in
//!   [`LaneReader::peek`], before it reads the table, a frame or the
//!   thread ([`Lanes::thread`]).
//! - (L2) flusher: zeroing a chunk, then its pool owner word to 0 with
//!   **Release** -> (L2') the writer's CAS of that word from 0 with
//!   **Acquire** ([`Lanes::claim`]'s writer, in `alloc_chunk`), before it
//!   writes into the chunk.
//! - (L3) flusher: `head` with **Release** after freeing the chunks below
//!   it -> (L3') the writer's **Acquire** load of `head` when it checks its
//!   share: table entries of stretches below `head` are no longer read.
//! - (L4) release: the owner's last `tail` store, then `owner` marked
//!   released with **Release** (CAS) -> (L4') the flusher's **Acquire** load
//!   of `owner` before its last load of `tail`.
//! - (L5) recycling: the flusher stores the lane's new `head` and `tail`,
//!   then `owner` = 0 with **Release** -> (L5') the claimer's CAS of `owner`
//!   with **Acquire**, before it reads `tail`.
//! - (L6) spare: the flusher's CAS of the chunk's owner word (Acquire,
//!   after (L2) freed it), then a spare slot of the lane with **Release**
//!   -> (L6') the writer's **Acquire** load of the slot before it writes into
//!   the chunk, so the zeroing happens-before those writes, as with (L2').
//!   The writer's store of 0 back is Relaxed: the flusher only reads that
//!   the slot is empty, nothing the writer wrote.
//! - Waking the flusher (`wait.rs`, (D3)) is an asymmetric Dekker pair: the
//!   writer's `tail` store, a compiler fence, and a plain load of
//!   `flusher.sleeping`, against the flusher's store of `sleeping` and a
//!   `membarrier` before it looks at the tails again, so the hot path has no
//!   fence instruction.

use std::ops::Deref;

use crate::frame::{self, State, RECORD_HEADER_LEN};
use crate::layout::{LaneControl, LaneOwner, SegmentHeader, MAX_CHUNKS, THREAD_NAME_BYTES};
use crate::region::Region;
use crate::ring::{Corruption, Stamp};
use crate::sync::{AtomicU64, Ordering};

/// The state bits of a lane's owner word.
const STATE_SHIFT: u32 = 62;
/// Owned: a writer uses the lane.
const OWNED: u64 = 1 << STATE_SHIFT;
/// Released: its writer is done; the flusher drains and frees it.
const RELEASED: u64 = 2 << STATE_SHIFT;
const STATE_MASK: u64 = 3 << STATE_SHIFT;
/// The claim number's bits (30).
const CLAIM_MASK: u64 = (1 << 30) - 1;

/// A lane's owner, as its owner word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// No writer holds it.
    Free,
    /// A writer of registration `registration` holds it.
    Owned {
        /// The owning process's registration (`registry.rs`).
        registration: u32,
    },
    /// Its writer is done; it waits to be drained and freed.
    Released {
        /// The process's registration.
        registration: u32,
    },
}

impl Owner {
    fn of(word: u64) -> Self {
        let registration = word as u32;
        match word & STATE_MASK {
            0 if word == 0 => Owner::Free,
            OWNED => Owner::Owned { registration },
            // A released word, or a clobbered one: drained and freed either way.
            _ => Owner::Released { registration },
        }
    }
}

/// Why a lane had no room for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneFull {
    /// The record is larger than a chunk: it can only go to the shared ring.
    TooLarge,
    /// The lane holds its share of the pool already; the flusher frees
    /// chunks as it writes them.
    Share,
    /// The pool has no free chunk right now.
    NoChunk,
}

/// Whether a lane's owner block holds a thread named `name` (else the
/// thread's records carry the name themselves).
pub const fn holds_thread_name(name: &[u8]) -> bool {
    name.len() <= THREAD_NAME_BYTES
}

/// Store a claimer's thread name into its lane's owner block: its length,
/// or 0 when it does not fit.
fn store_thread_name(owner: &LaneOwner, name: &[u8]) {
    let held = if holds_thread_name(name) { name } else { &[] };
    let mut bytes = [0; THREAD_NAME_BYTES];
    bytes[..held.len()].copy_from_slice(held);
    for (word, chunk) in owner.thread_name.iter().zip(bytes.chunks_exact(8)) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        word.store(w, Ordering::Relaxed);
    }
    owner
        .thread_name_len
        .store(held.len() as u64, Ordering::Relaxed);
}

/// A lane owner's thread as its claim named it ([`Lanes::thread`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneThread {
    /// Its id (`gettid`).
    pub id: u64,
    len: u8,
    name: [u8; THREAD_NAME_BYTES],
}

impl LaneThread {
    /// Its name.
    pub fn name(&self) -> &[u8] {
        &self.name[..self.len as usize]
    }
}

/// A segment's lanes: their control words in the header, their chunks in
/// `region` (the pool: `chunk_count` chunks of `chunk_size` bytes from byte
/// `base`, after the shared ring).
pub struct Lanes<H, R> {
    header: H,
    region: R,
    base: usize,
    chunk_shift: u32,
    chunk_count: usize,
    lanes: usize,
    max_record: u64,
}

impl<H, R> std::fmt::Debug for Lanes<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &self.lanes)
            .field("chunk_size", &(1u64 << self.chunk_shift))
            .field("chunk_count", &self.chunk_count)
            .finish_non_exhaustive()
    }
}

/// Where a writer's next record goes: from [`LaneWriter::reserve`].
#[derive(Debug, Clone, Copy)]
pub struct LaneSlot {
    pos: u64,
    off: usize,
    len: u64,
}

/// A lane's writer: its position and current chunk. Plain values, no
/// reference into the segment: a thread keeps it (in its thread-local
/// state) next to a handle that keeps the segment mapped.
#[derive(Debug, Clone)]
pub struct LaneWriter {
    lane: usize,
    owner: u64,
    /// Where the next record goes (published up to the last record).
    pos: u64,
    /// Where the current chunk ends (== `pos` before the first chunk).
    chunk_end: u64,
    /// Added (wrapping) to a position in the current chunk, gives its byte
    /// offset in the region: the chunk's offset minus its first position.
    to_offset: u64,
}

impl<H: Deref<Target = SegmentHeader>, R: Region> Lanes<H, R> {
    /// The lanes of a segment whose header is `header`, with its pool in
    /// `region` from the identity's `shared_capacity` on.
    ///
    /// # Panics
    /// If the identity's chunk size, chunk count or lane count do not fit
    /// the region or the layout (a segment's header is validated on open,
    /// so this is a programming error).
    pub fn new(header: H, region: R) -> Self {
        let id = &header.identity;
        let chunk_size = id.chunk_size.load(Ordering::Relaxed);
        let chunk_count = id.chunk_count.load(Ordering::Relaxed) as usize;
        let lanes = id.lanes.load(Ordering::Relaxed) as usize;
        let max_record = id.max_record.load(Ordering::Relaxed);
        let base = id.shared_capacity.load(Ordering::Relaxed);
        assert!(chunk_size.is_power_of_two() && chunk_size >= 64);
        assert!(
            chunk_count <= MAX_CHUNKS
                && base + chunk_count as u64 * chunk_size <= region.capacity()
        );
        assert!(lanes <= crate::layout::LANES && (lanes == 0 || chunk_count > 0));
        Self {
            header,
            region,
            base: base as usize,
            chunk_shift: chunk_size.trailing_zeros(),
            chunk_count,
            lanes,
            max_record,
        }
    }

    /// Lanes in use.
    pub fn count(&self) -> usize {
        self.lanes
    }
    /// Bytes per chunk.
    pub fn chunk_size(&self) -> u64 {
        1 << self.chunk_shift
    }
    /// Chunks in the pool.
    pub fn chunk_count(&self) -> usize {
        self.chunk_count
    }
    /// Chunks one lane may hold at most: seven eighths of the pool (the
    /// other lanes keep the rest).
    pub fn share(&self) -> u64 {
        (self.chunk_count as u64 * 7 / 8).max(1)
    }
    /// The longest record a lane takes (header included): a chunk, or the
    /// segment's maximum record if that is smaller.
    pub fn max_record(&self) -> u64 {
        self.chunk_size().min(self.max_record)
    }
    /// The segment's control words.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    fn control(&self, lane: usize) -> &LaneControl {
        // A lane index is below `LANES` (a power of two): the mask makes
        // the bounds check go away on the write path.
        &self.header.lanes[lane % crate::layout::LANES]
    }
    fn mask(&self) -> u64 {
        self.chunk_size() - 1
    }

    /// The owner of `lane`.
    pub fn owner(&self, lane: usize) -> Owner {
        // (L4') Acquire: pairs with the release of the lane (L4).
        Owner::of(self.control(lane).owner.owner.load(Ordering::Acquire))
    }

    /// The thread that owns (or last owned) `lane`, as it published itself.
    pub fn thread_id(&self, lane: usize) -> u64 {
        self.control(lane).owner.thread_id.load(Ordering::Relaxed)
    }

    /// The thread that owns (or last owned) `lane`, id and name as its
    /// claim stored them: what the lane's records flagged
    /// [`frame::FLAG_LANE_THREAD`] leave out. Read it after the Acquire of
    /// the tail that published such a record (L1'): the claim stored it
    /// before the lane's first record, and nobody changes it until the
    /// flusher recycles the lane, its every record consumed.
    pub fn thread(&self, lane: usize) -> LaneThread {
        let o = &self.control(lane).owner;
        let mut name = [0; THREAD_NAME_BYTES];
        for (bytes, word) in name.chunks_exact_mut(8).zip(&o.thread_name) {
            bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        // A hostile length reads as the whole field, never past it.
        let len = o.thread_name_len.load(Ordering::Relaxed);
        LaneThread {
            id: o.thread_id.load(Ordering::Relaxed),
            len: len.min(THREAD_NAME_BYTES as u64) as u8,
            name,
        }
    }

    /// The published end of `lane`.
    pub fn tail(&self, lane: usize) -> u64 {
        // (L1') Acquire: pairs with the writer's Release (L1).
        self.control(lane).tail.tail.load(Ordering::Acquire)
    }

    /// Bytes published in `lane` and not yet released by the flusher.
    pub fn pending(&self, lane: usize) -> u64 {
        let c = self.control(lane);
        let head = c.head.head.load(Ordering::Acquire);
        c.tail.tail.load(Ordering::Acquire).saturating_sub(head)
    }

    /// Chunks of the pool held by lanes.
    pub fn chunks_held(&self) -> usize {
        let owners = &self.header.pool.owners[..self.chunk_count];
        owners
            .iter()
            .filter(|o| o.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Take a free lane for a thread (`thread_id`, for display) of the
    /// process registered as `registration`; `claim` is a number this
    /// process never gave another claim, so that a stale release of an
    /// earlier owner cannot free the lane under a later one. `None` when no
    /// lane is free (or the process is not registered: `registration` 0).
    /// The lane names no thread ([`Lanes::claim_named`] does).
    pub fn claim(&self, registration: u32, claim: u32, thread_id: u64) -> Option<LaneWriter> {
        self.claim_named(registration, claim, thread_id, &[])
    }

    /// [`Lanes::claim`] for a thread named `thread_name`, which the lane's
    /// owner block holds if it fits ([`holds_thread_name`]): the writer's
    /// records flagged [`frame::FLAG_LANE_THREAD`] then leave their thread
    /// out, and the flusher gives them the lane's ([`Lanes::thread`]).
    pub fn claim_named(
        &self,
        registration: u32,
        claim: u32,
        thread_id: u64,
        thread_name: &[u8],
    ) -> Option<LaneWriter> {
        if registration == 0 {
            return None;
        }
        let word = OWNED | (claim as u64 & CLAIM_MASK) << 32 | registration as u64;
        // Spread the threads over the lanes, so that they rarely race for one.
        let start = (thread_id as usize).wrapping_mul(7) % self.lanes.max(1);
        for k in 0..self.lanes {
            let lane = (start + k) % self.lanes;
            let c = self.control(lane);
            // (L5') Acquire on success: pairs with the recycling's Release (L5).
            if c.owner.owner.load(Ordering::Relaxed) == 0
                && c.owner
                    .owner
                    .compare_exchange(0, word, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Published with the lane's first record (L1).
                c.owner.thread_id.store(thread_id, Ordering::Relaxed);
                store_thread_name(&c.owner, thread_name);
                let pos = c.tail.tail.load(Ordering::Relaxed);
                return Some(LaneWriter {
                    lane,
                    owner: word,
                    pos,
                    chunk_end: pos,
                    to_offset: 0,
                });
            }
        }
        None
    }

    /// Take a free chunk from the pool for `lane`.
    fn alloc_chunk(&self, lane: usize) -> Option<usize> {
        let n = self.chunk_count;
        let start = lane.wrapping_mul(3) % n;
        let me = lane as u32 + 1;
        (0..n).map(|k| (start + k) % n).find(|&c| {
            let o = &self.header.pool.owners[c];
            // (L2') Acquire on success: pairs with the freeing Release (L2),
            // so the chunk's zeroing happens-before our writes into it.
            o.load(Ordering::Relaxed) == 0
                && o.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        })
    }

    /// The writer's side of (L6'): one of the lane's spare chunks, if the
    /// flusher left any; its slot is empty after. A value beyond the pool
    /// (only a hostile process writes one) is left there and never taken.
    #[inline]
    fn take_spare(&self, lane: usize) -> Option<usize> {
        self.control(lane).head.spares.iter().find_map(|slot| {
            // (L6') Acquire: pairs with the flusher's Release (L6).
            let c = (slot.load(Ordering::Acquire) as usize).checked_sub(1)?;
            (c < self.chunk_count).then(|| {
                slot.store(0, Ordering::Relaxed);
                c
            })
        })
    }

    /// The flusher's side of (L6): fill up to `want` empty spare slots of
    /// `lane` with chunks from the pool, for its writer to switch to
    /// without a CAS, while a writer owns the lane and all but an eighth
    /// of the pool stays free. Returns how many it left.
    ///
    /// # Safety
    /// The caller is the lanes' one consumer (the only writer of a non-zero
    /// spare).
    pub unsafe fn offer_spares(&self, lane: usize, want: usize) -> usize {
        if !matches!(self.owner(lane), Owner::Owned { .. }) {
            return 0;
        }
        let slots = &self.control(lane).head.spares;
        let mut empty = slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) == 0)
            .take(want)
            .peekable();
        // A lane whose slots are full (a steady writer) costs no pool scan.
        if empty.peek().is_none() {
            return 0;
        }
        let floor = self.spare_floor();
        let mut free = self.chunk_count - self.chunks_held();
        let mut left = 0;
        for slot in empty {
            if free <= floor {
                break;
            }
            let Some(c) = self.alloc_chunk(lane) else {
                break;
            };
            // (L6) Release: pairs with the writer's Acquire (L6').
            slot.store(c as u32 + 1, Ordering::Release);
            (free, left) = (free - 1, left + 1);
        }
        left
    }

    /// The free chunks the flusher leaves in the pool when it offers
    /// spares: all but an eighth of it (two chunks on a small pool), so
    /// that spares, which an idle lane keeps, never stand between a busy
    /// writer and its [`share`](Self::share).
    fn spare_floor(&self) -> usize {
        self.chunk_count
            .saturating_sub((self.chunk_count / 8).max(2))
    }

    /// The lane's spare chunks (slots holding one).
    pub fn spares(&self, lane: usize) -> usize {
        (self.control(lane).head.spares.iter())
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Zero chunk `c` and give it back to the pool.
    ///
    /// # Safety
    /// The caller is the lanes' one consumer, and no writer writes `c` any
    /// more (it lies below the lane's head, or the lane's writer is gone).
    unsafe fn free_chunk(&self, c: usize) {
        let size = self.chunk_size() as usize;
        // SAFETY: `c < chunk_count`, so the chunk lies inside the region, and
        // nobody writes it any more (the caller's contract).
        unsafe { self.region.zero(self.chunk_at(c), size) };
        // (L2) Release: pairs with the allocator's Acquire (L2').
        self.header.pool.owners[c].store(0, Ordering::Release);
    }

    /// Whether the chunk of `lane`'s stretch of `pos` is the lane's and
    /// holds a frame starting at `pos` (word 0 tagged with it).
    fn holds_frame_at(&self, lane: usize, pos: u64) -> bool {
        self.chunk_of(lane, pos).is_some_and(|c| {
            let word = self
                .region
                .word(self.chunk_at(c) + (pos & self.mask()) as usize);
            frame::decode_word0(word.load(Ordering::Relaxed))
                .is_some_and(|(tag, _, _)| tag == frame::tag(pos))
        })
    }

    /// Byte offset of chunk `c` in the region.
    #[inline]
    fn chunk_at(&self, c: usize) -> usize {
        self.base + (c << self.chunk_shift)
    }

    /// The chunk the table of `lane` names for the stretch of `pos`, if it
    /// is a chunk of the pool that the lane holds.
    fn chunk_of(&self, lane: usize, pos: u64) -> Option<usize> {
        let stretch = (pos >> self.chunk_shift) as usize % MAX_CHUNKS;
        let c = self.control(lane).owner.chunks[stretch].load(Ordering::Relaxed) as usize;
        (c < self.chunk_count
            && self.header.pool.owners[c].load(Ordering::Relaxed) == lane as u32 + 1)
            .then_some(c)
    }

    /// A reader of `lane` from its head, for its one consumer.
    ///
    /// # Safety
    /// At most one reader of a lane exists at a time, across all processes:
    /// the flusher holding the segment's flusher lock.
    pub unsafe fn reader(&self, lane: usize) -> LaneReader {
        let head = self.control(lane).head.head.load(Ordering::Acquire);
        LaneReader {
            lane,
            head,
            pos: head,
            tail: head,
        }
    }
}

impl LaneWriter {
    /// The lane's index.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// Room for a record of `len` bytes (header included) at the writer's
    /// position: in the current chunk (the hot path), else in a new one.
    ///
    /// # Errors
    /// [`LaneFull`] when the record is larger than a chunk, the lane holds
    /// its share of the pool, or the pool has no free chunk. Nothing is
    /// published either way; the writer may try again.
    #[inline]
    pub fn reserve<H, R>(&mut self, lanes: &Lanes<H, R>, len: usize) -> Result<LaneSlot, LaneFull>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let aligned = frame::align(len as u64);
        if self.pos + aligned > self.chunk_end {
            self.next_chunk(lanes, len as u64)?;
        }
        let off = self.pos.wrapping_add(self.to_offset) as usize;
        Ok(LaneSlot {
            pos: self.pos,
            off,
            len: len as u64,
        })
    }

    /// The log call's path in one step: a record of `len` bytes (header
    /// included, at least [`RECORD_HEADER_LEN`]) stamped with header word 2
    /// `word2` (`frame::encode_word2`, which the caller keeps ready) and
    /// `timestamp`, its payload written by `fill`, then published, if it
    /// fits in the current chunk. `false`, with nothing written, when it does not: the caller
    /// takes [`LaneWriter::reserve`]'s path, which moves to a new chunk or
    /// says why it cannot.
    ///
    /// The same stores as `reserve`, `stamp`, `fill` and `publish` in turn,
    /// without the region's range checks: the chunk was checked when it was
    /// taken.
    ///
    /// # Safety
    /// `lanes` are the lanes this writer was claimed from (its chunk and
    /// positions are theirs).
    #[inline(always)]
    pub unsafe fn append<H, R>(
        &mut self,
        lanes: &Lanes<H, R>,
        len: usize,
        (word2, timestamp): (u64, u64),
        fill: impl FnOnce(&mut [u8]),
    ) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        debug_assert!(len >= RECORD_HEADER_LEN);
        let end = self.pos + frame::align(len as u64);
        if end > self.chunk_end {
            return false;
        }
        let off = self.pos.wrapping_add(self.to_offset) as usize;
        let word0 = frame::encode_word0(self.pos, len as u64, State::Committed);
        // SAFETY: [off, off + len) lies in the writer's current chunk (pos to
        // end <= chunk_end), a chunk of these lanes' pool (the caller's
        // contract), which `Lanes::new` checked lies inside the region; and
        // at or beyond the published tail, which only this writer writes.
        unsafe {
            let region = &lanes.region;
            region.store_words_in_range(off + 8, [self.pos, word2, timestamp], Ordering::Relaxed);
            region.fill(off + RECORD_HEADER_LEN, len - RECORD_HEADER_LEN, fill);
            region.store_words_in_range(off, [word0], Ordering::Relaxed);
        }
        self.pos = end;
        // (L1) Release: pairs with the flusher's Acquire (L1').
        lanes
            .control(self.lane)
            .tail
            .tail
            .store(end, Ordering::Release);
        true
    }

    /// Pad the rest of the current chunk, and take a new one for the next
    /// stretch.
    #[cold]
    #[inline(never)]
    fn next_chunk<H, R>(&mut self, lanes: &Lanes<H, R>, len: u64) -> Result<(), LaneFull>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        if len > lanes.max_record() || len < RECORD_HEADER_LEN as u64 {
            return Err(LaneFull::TooLarge);
        }
        // The next stretch starts at the current chunk's end (the writer's
        // position, before its first chunk).
        let next = self.chunk_end;
        let c = lanes.control(self.lane);
        let shift = lanes.chunk_shift;
        // (L3') Acquire: pairs with the flusher's head store (L3).
        let head = c.head.head.load(Ordering::Acquire);
        if (next >> shift) + 1 - (head >> shift) > lanes.share() {
            return Err(LaneFull::Share);
        }
        let chunk = match lanes.take_spare(self.lane) {
            Some(spare) => spare,
            None => lanes.alloc_chunk(self.lane).ok_or(LaneFull::NoChunk)?,
        };
        // Only with the next chunk in hand: a padding frame left past the
        // tail by a writer that then found none (and went on in the shared
        // ring, or exited) would read as a record it left half-written.
        if self.pos < self.chunk_end {
            // A padding frame to the chunk's end (word 0 only), published
            // with the next record.
            let pad = self.chunk_end - self.pos;
            let word = frame::encode_word0(self.pos, pad, State::Padding);
            let off = self.pos.wrapping_add(self.to_offset) as usize;
            lanes.region.word(off).store(word, Ordering::Relaxed);
            self.pos = next;
        }
        let stretch = (self.pos >> shift) as usize % MAX_CHUNKS;
        // Published by the next tail store (L1).
        c.owner.chunks[stretch].store(chunk as u8, Ordering::Relaxed);
        self.to_offset = (lanes.chunk_at(chunk) as u64).wrapping_sub(self.pos);
        self.chunk_end = self.pos + lanes.chunk_size();
        Ok(())
    }

    /// Write the frame of the record reserved as `slot`, stamped `stamp`
    /// (words 1 to 3; word 0 goes last, in [`LaneWriter::publish`]).
    #[inline]
    pub fn stamp<H, R>(&self, lanes: &Lanes<H, R>, slot: &LaneSlot, stamp: Stamp)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let word2 = frame::encode_word2(stamp.pid, stamp.flags);
        let words = [slot.pos, word2, stamp.timestamp];
        lanes
            .region
            .store_words(slot.off + 8, words, Ordering::Relaxed);
    }

    /// Let `fill` write the payload of the record reserved as `slot`.
    #[inline]
    pub fn fill<H, R>(&self, lanes: &Lanes<H, R>, slot: &LaneSlot, fill: impl FnOnce(&mut [u8]))
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let payload = slot.len as usize - RECORD_HEADER_LEN;
        // SAFETY: the slot lies inside the writer's current chunk (reserve
        // checked it fits), at or beyond the published tail, which only this
        // writer writes.
        unsafe {
            lanes
                .region
                .fill(slot.off + RECORD_HEADER_LEN, payload, fill)
        };
    }

    /// Seal the record reserved as `slot` (its word 0) and publish
    /// everything written so far, up to its end.
    #[inline]
    pub fn publish<H, R>(&mut self, lanes: &Lanes<H, R>, slot: &LaneSlot)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let word0 = frame::encode_word0(slot.pos, slot.len, State::Committed);
        lanes.region.word(slot.off).store(word0, Ordering::Relaxed);
        self.pos = slot.pos + frame::align(slot.len);
        // (L1) Release: pairs with the flusher's Acquire (L1').
        lanes
            .control(self.lane)
            .tail
            .tail
            .store(self.pos, Ordering::Release);
    }

    /// Whether the flusher has released everything this writer published
    /// (a record too large for the lane may then go to the shared ring
    /// without overtaking it).
    pub fn drained<H, R>(&self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let head = lanes.control(self.lane).head.head.load(Ordering::Acquire);
        head >= self.published(lanes)
    }

    fn published<H, R>(&self, lanes: &Lanes<H, R>) -> u64
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        lanes.control(self.lane).tail.tail.load(Ordering::Relaxed)
    }

    /// Whether the lane is still this writer's (not released or recycled).
    pub fn still_owned<H, R>(&self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        lanes.control(self.lane).owner.owner.load(Ordering::Relaxed) == self.owner
    }

    /// The writer is done: mark the lane released for the flusher to drain
    /// and free. Nothing if it was freed or given to another writer already.
    pub fn release<H, R>(&self, lanes: &Lanes<H, R>)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let owner = &lanes.control(self.lane).owner.owner;
        let released = (self.owner & !STATE_MASK) | RELEASED;
        // (L4) Release: pairs with the flusher's Acquire (L4').
        let _ = owner.compare_exchange(self.owner, released, Ordering::Release, Ordering::Relaxed);
    }
}

/// A published record of a lane, found by [`LaneReader::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peeked {
    /// Its lane position.
    pub pos: u64,
    /// Its length, header included.
    pub len: u64,
    /// Who wrote it and when.
    pub stamp: Stamp,
    /// Its byte offset in the pool.
    off: usize,
}

/// The flusher's reader of one lane: its released `head`, its read
/// position, and the last `tail` it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneReader {
    lane: usize,
    head: u64,
    pos: u64,
    tail: u64,
}

impl LaneReader {
    /// The lane's index.
    pub fn lane(&self) -> usize {
        self.lane
    }
    /// The released position.
    pub fn head(&self) -> u64 {
        self.head
    }
    /// The read position: everything from the head up to it is read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reload and return the lane's tail.
    pub fn tail<H, R>(&mut self, lanes: &Lanes<H, R>) -> u64
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        // (L1') Acquire: pairs with the writer's Release (L1).
        self.tail = lanes.control(self.lane).tail.tail.load(Ordering::Acquire);
        self.tail
    }

    /// Whether nothing published is left to read. Always loads the tail:
    /// a recycler that has just seen the owner released (L4') must see the
    /// writer's last tail, not one it loaded before.
    pub fn is_empty<H, R>(&mut self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        self.pos == self.tail(lanes)
    }

    /// The next published record, passing padding; `None` when there is
    /// none yet.
    ///
    /// # Errors
    /// [`Corruption`] when the tail, the chunk table or a frame contradict
    /// the invariants (a process with write access clobbered them).
    pub fn peek<H, R>(&mut self, lanes: &Lanes<H, R>) -> Result<Option<Peeked>, Corruption>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        if self.pos == self.tail && self.pos == self.tail(lanes) {
            return Ok(None);
        }
        let span = (lanes.share() + 1) * lanes.chunk_size();
        if self.tail < self.pos || self.tail - self.head > span {
            return Err(Corruption::BeyondTail);
        }
        while self.pos < self.tail {
            let chunk = lanes
                .chunk_of(self.lane, self.pos)
                .ok_or(Corruption::BadChunk)?;
            let in_chunk = self.pos & lanes.mask();
            let off = lanes.chunk_at(chunk) + in_chunk as usize;
            let r = &lanes.region;
            let word = r.word(off).load(Ordering::Relaxed);
            let (tag, len, state) = frame::decode_word0(word).ok_or(Corruption::BadState)?;
            if tag != frame::tag(self.pos) {
                return Err(Corruption::WrongPosition);
            }
            let room = lanes.chunk_size() - in_chunk;
            match state {
                State::Padding if len == room => self.pos += len,
                State::Committed => {
                    if len < RECORD_HEADER_LEN as u64 || len > lanes.max_record() {
                        return Err(Corruption::BadLength);
                    }
                    if frame::align(len) > room {
                        return Err(Corruption::CrossesEnd);
                    }
                    if self.pos + frame::align(len) > self.tail {
                        return Err(Corruption::BeyondTail);
                    }
                    if r.word(off + 8).load(Ordering::Relaxed) != self.pos {
                        return Err(Corruption::WrongPosition);
                    }
                    let stamp = Stamp::from_words(
                        r.word(off + 16).load(Ordering::Relaxed),
                        r.word(off + 24).load(Ordering::Relaxed),
                    );
                    return Ok(Some(Peeked {
                        pos: self.pos,
                        len,
                        stamp,
                        off,
                    }));
                }
                State::Padding => return Err(Corruption::BadLength),
                State::Claimed => return Err(Corruption::BadState),
            }
        }
        if self.pos > self.tail {
            return Err(Corruption::BeyondTail);
        }
        Ok(None)
    }

    /// Let `f` read the payload of `record`, the record [`LaneReader::peek`]
    /// returned last.
    pub fn view<H, R, T>(
        &self,
        lanes: &Lanes<H, R>,
        record: &Peeked,
        f: impl FnOnce(&[u8]) -> T,
    ) -> T
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        debug_assert_eq!(record.pos, self.pos);
        let len = record.len as usize - RECORD_HEADER_LEN;
        // SAFETY: peek validated that the record lies inside a chunk this
        // lane holds and below the tail loaded with Acquire (L1'), so its
        // payload is published and no writer writes it until we release it.
        unsafe { lanes.region.view(record.off + RECORD_HEADER_LEN, len, f) }
    }

    /// Consume `record` (the one [`LaneReader::peek`] returned last).
    pub fn advance(&mut self, record: &Peeked) {
        debug_assert_eq!(record.pos, self.pos);
        self.pos += frame::align(record.len);
    }

    /// Give up everything from the read position to the tail (corrupt);
    /// returns the bytes skipped.
    pub fn skip_to_tail<H, R>(&mut self, lanes: &Lanes<H, R>) -> u64
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let tail = self.tail(lanes).max(self.pos);
        let span = (lanes.share() + 1) * lanes.chunk_size();
        let to = tail.min(self.head + span);
        let skipped = to - self.pos;
        self.pos = to;
        skipped
    }

    /// Forget what was read since the last release, to read it again.
    pub fn rewind(&mut self) {
        self.pos = self.head;
    }

    /// Read up to `pos` (crash recovery: a batch already in the file).
    pub fn skip_to(&mut self, pos: u64) {
        self.pos = pos.max(self.head);
    }

    /// Everything read is in the file: zero and free the chunks wholly
    /// below the read position, then publish the new head.
    pub fn release<H, R>(&mut self, lanes: &Lanes<H, R>)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        if self.pos == self.head {
            return;
        }
        let shift = lanes.chunk_shift;
        let stretches = self.head >> shift..self.pos >> shift;
        let freed = stretches.end - stretches.start;
        for stretch in stretches {
            if let Some(c) = lanes.chunk_of(self.lane, stretch << shift) {
                // SAFETY: the stretch lies below the read position, which is
                // at or past the writer's next chunk: nobody writes it.
                unsafe { lanes.free_chunk(c) };
            }
        }
        // (L3) Release: pairs with the writer's Acquire (L3'). After the
        // chunks: a flusher killed in between finds stretches whose chunks
        // are free (or reused, with other tags) and skips them (see
        // `recover_head`).
        let head = &lanes.control(self.lane).head.head;
        head.store(self.pos, Ordering::Release);
        self.head = self.pos;
        // Twice what the writer went through since the last release, and
        // one more, so that a writer speeding up finds spares too.
        // SAFETY: this reader is the lane's one consumer (`Lanes::reader`).
        unsafe { lanes.offer_spares(self.lane, 2 * freed as usize + 1) };
    }

    /// After a flusher was killed between freeing a lane's chunks and
    /// storing its head: move the head past the leading stretches whose
    /// chunks are no longer the lane's (their records were written). A
    /// freed chunk the lane took again (as its spare, or from the pool) is
    /// the lane's, but holds no frame tagged with the head's position.
    pub fn recover_head<H, R>(&mut self, lanes: &Lanes<H, R>)
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let tail = self.tail(lanes);
        let size = lanes.chunk_size();
        while self.head < tail && !lanes.holds_frame_at(self.lane, self.head) {
            self.head = (self.head | (size - 1)) + 1;
        }
        if self.head > tail {
            self.head = tail;
        }
        self.pos = self.head;
        let head = &lanes.control(self.lane).head.head;
        head.store(self.head, Ordering::Release);
    }

    /// Free a lane whose writer is done (released, or its process died),
    /// drained and released up to its tail: free every chunk it still holds,
    /// move its positions to the next chunk boundary and free the lane.
    /// Returns whether a record was half-written beyond the tail (to be
    /// counted as abandoned).
    ///
    /// # Safety
    /// The lane's writer is gone: it released the lane, or its process died.
    pub unsafe fn recycle<H, R>(&mut self, lanes: &Lanes<H, R>) -> bool
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        let tail = self.tail(lanes);
        debug_assert!(
            self.pos == self.head && self.pos >= tail,
            "drained and released"
        );
        let size = lanes.chunk_size() as usize;
        let current = lanes.chunk_of(self.lane, tail);
        // Before the chunks: a flusher killed in between recycles the lane
        // again, and the owner scan frees the spare.
        for slot in &lanes.control(self.lane).head.spares {
            slot.store(0, Ordering::Relaxed);
        }
        let mut dirty = false;
        for c in 0..lanes.chunk_count {
            if lanes.header.pool.owners[c].load(Ordering::Relaxed) != self.lane as u32 + 1 {
                continue;
            }
            // Bytes below the tail in its chunk are records already written.
            let from = match current {
                Some(cur) if cur == c => (tail & lanes.mask()) as usize,
                _ => 0,
            };
            let at = lanes.chunk_at(c);
            dirty |= (from..size)
                .step_by(8)
                .any(|b| lanes.region.word(at + b).load(Ordering::Relaxed) != 0);
            // SAFETY: the writer is gone (the caller's contract).
            unsafe { lanes.free_chunk(c) };
        }
        let next = tail.max(self.pos).div_ceil(size as u64) * size as u64;
        let c = lanes.control(self.lane);
        c.head.head.store(next, Ordering::Relaxed);
        c.tail.tail.store(next, Ordering::Relaxed);
        self.head = next;
        self.pos = next;
        self.tail = next;
        // (L5) Release: pairs with the next claimer's Acquire (L5').
        c.owner.owner.store(0, Ordering::Release);
        dirty
    }
}

/// A lane's control words, for tests that play a hostile process.
#[doc(hidden)]
pub fn tail_word(h: &SegmentHeader, lane: usize) -> &AtomicU64 {
    &h.lanes[lane].tail.tail
}

#[cfg(all(test, not(loom)))]
mod edges;
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::SPARES;
    use crate::HeapRegion;

    pub(super) const CHUNK: u64 = 256;

    /// A header with `lanes` lanes over `chunks` chunks of 256 bytes.
    pub(super) fn header(lanes: u64, chunks: u64) -> Box<SegmentHeader> {
        let h = Box::<SegmentHeader>::default();
        h.identity.chunk_size.store(CHUNK, Ordering::Relaxed);
        h.identity.chunk_count.store(chunks, Ordering::Relaxed);
        h.identity.lanes.store(lanes, Ordering::Relaxed);
        h.identity.max_record.store(1 << 20, Ordering::Relaxed);
        h
    }

    pub(super) const STAMP: Stamp = Stamp {
        pid: 9,
        flags: 0,
        timestamp: 5,
    };
    /// [`STAMP`] as `append` takes it.
    const STAMPED: (u64, u64) = (frame::encode_word2(STAMP.pid, STAMP.flags), STAMP.timestamp);

    pub(super) fn write(
        w: &mut LaneWriter,
        lanes: &Lanes<&SegmentHeader, &HeapRegion>,
        byte: u8,
        len: usize,
    ) -> Result<(), LaneFull> {
        let slot = w.reserve(lanes, RECORD_HEADER_LEN + len)?;
        w.stamp(lanes, &slot, STAMP);
        w.fill(lanes, &slot, |b| b.fill(byte));
        w.publish(lanes, &slot);
        Ok(())
    }

    /// Every published record's first byte, read and released.
    fn drain(r: &mut LaneReader, lanes: &Lanes<&SegmentHeader, &HeapRegion>) -> Vec<u8> {
        let mut seen = Vec::new();
        while let Some(p) = r.peek(lanes).unwrap() {
            seen.push(r.view(lanes, &p, |b| b[0]));
            assert_eq!(p.stamp, STAMP);
            r.advance(&p);
        }
        r.release(lanes);
        seen
    }

    /// `append` (the log call's one step) stores what reserve, stamp, fill
    /// and publish store, and declines, writing nothing, where the current
    /// chunk ends: at the first record, and when the next one does not fit.
    #[test]
    fn append_writes_as_the_steps_do_and_declines_at_a_chunk_end() {
        let (ha, hb) = (header(2, 8), header(2, 8));
        let (ra, rb) = (HeapRegion::new(8 * CHUNK), HeapRegion::new(8 * CHUNK));
        let (la, lb) = (Lanes::new(&*ha, &ra), Lanes::new(&*hb, &rb));
        let mut wa = la.claim(7, 1, 100).unwrap();
        let mut wb = lb.claim(7, 1, 100).unwrap();
        let fill = |b: &mut [u8]| b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8 + 1);
        // SAFETY: `wb` was claimed from `lb`.
        let first = unsafe { wb.append(&lb, RECORD_HEADER_LEN + 60, STAMPED, fill) };
        assert!(!first, "appended before the lane had a chunk");
        let mut appended = 0;
        for len in [60, 61, 3, 100, 64, 90] {
            let total = RECORD_HEADER_LEN + len;
            let slot = wa.reserve(&la, total).unwrap();
            wa.stamp(&la, &slot, STAMP);
            wa.fill(&la, &slot, fill);
            wa.publish(&la, &slot);
            // SAFETY: as above.
            if !unsafe { wb.append(&lb, total, STAMPED, fill) } {
                // Past the chunk: the steps' path moves to the next one.
                assert!(
                    wb.pos + frame::align(total as u64) > wb.chunk_end,
                    "declined with room"
                );
                let slot = wb.reserve(&lb, total).unwrap();
                wb.stamp(&lb, &slot, STAMP);
                wb.fill(&lb, &slot, fill);
                wb.publish(&lb, &slot);
            } else {
                appended += 1;
            }
            assert_eq!(wa.pos, wb.pos);
        }
        assert!(appended >= 3, "{appended}");
        let view = |r: &HeapRegion| {
            // SAFETY: nothing writes the regions any more.
            unsafe { r.view(0, 8 * CHUNK as usize, |b| b.to_vec()) }
        };
        assert_eq!(view(&ra), view(&rb));
        assert_eq!(la.tail(wa.lane()), lb.tail(wb.lane()));
    }

    #[test]
    fn records_cross_chunks_in_order_and_chunks_go_back_to_the_pool() {
        let h = header(2, 8);
        let region = HeapRegion::new(8 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        assert_eq!(lanes.owner(w.lane()), Owner::Owned { registration: 7 });
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(w.lane()) };
        // 100-byte payloads (136 aligned): one per chunk, the rest padding.
        for i in 0..5 {
            write(&mut w, &lanes, i, 100).unwrap();
        }
        assert_eq!(lanes.chunks_held(), 5);
        assert_eq!(drain(&mut r, &lanes), [0, 1, 2, 3, 4]);
        // The chunk being written stays, and the release left spares: nine
        // wanted for the four chunks it freed, but no more than an eighth of
        // the pool (two chunks of a small one) held: 1. The others are free
        // and zero.
        assert_eq!(lanes.spares(w.lane()), 1);
        assert_eq!(lanes.chunks_held(), 2);
        let first = &h.lanes[w.lane()].head.spares[0];
        let offered = first.load(Ordering::Relaxed);
        assert_ne!(offered, 0);
        assert_eq!(lanes.pending(w.lane()), 0);
        // The next chunk is a spare: no chunk taken from the pool.
        write(&mut w, &lanes, 5, 100).unwrap();
        assert_eq!(first.load(Ordering::Relaxed), 0);
        assert_eq!((lanes.spares(w.lane()), lanes.chunks_held()), (0, 2));
        let stretch = (lanes.tail(w.lane()) / CHUNK) as usize;
        let table = &h.lanes[w.lane()].owner.chunks[stretch];
        assert_eq!(table.load(Ordering::Relaxed) as u32, offered - 1);
        assert_eq!(drain(&mut r, &lanes), [5]);
        // Freed from a head inside a chunk too, and the spare taken made
        // good: one chunk freed, three wanted, one before the floor.
        assert_eq!((lanes.spares(w.lane()), lanes.chunks_held()), (1, 2));
    }

    #[test]
    fn a_lane_holds_at_most_its_spare_slots() {
        // An eighth of 192 chunks is 24, more than the slots.
        let h = header(1, 192);
        let region = HeapRegion::new(256 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        assert_eq!(unsafe { lanes.offer_spares(w.lane(), 40) }, SPARES);
        assert_eq!(lanes.spares(w.lane()), SPARES);
    }

    #[test]
    fn spares_are_left_only_for_an_owner_and_while_an_eighth_of_the_pool_is_held() {
        let h = header(4, 64);
        let region = HeapRegion::new(64 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        // SAFETY: the test is the one consumer.
        unsafe {
            // A free lane gets none.
            assert_eq!(lanes.offer_spares(3, 1), 0);
            let w = lanes.claim(7, 1, 100).unwrap();
            assert_eq!(lanes.offer_spares(w.lane(), 2), 2);
            assert_eq!(lanes.offer_spares(w.lane(), 1), 1);
            // Never past an eighth of the pool (8 of 64).
            assert_eq!(lanes.offer_spares(w.lane(), 20), 5);
            assert_eq!((lanes.spares(w.lane()), lanes.chunks_held()), (8, 8));
            let other = lanes.claim(7, 2, 101).unwrap();
            assert_eq!(lanes.offer_spares(other.lane(), 1), 0);
            // Taken spares are distinct chunks.
            let mut w = w;
            let mut taken = std::collections::BTreeSet::new();
            for i in 0..8 {
                write(&mut w, &lanes, i, 200).unwrap();
                let stretch = (lanes.tail(w.lane()) - 1) / CHUNK;
                taken.insert(
                    h.lanes[w.lane()].owner.chunks[stretch as usize].load(Ordering::Relaxed),
                );
            }
            assert_eq!((taken.len(), lanes.spares(w.lane())), (8, 0));
            assert_eq!(lanes.chunks_held(), 8);
            // A released lane gets none; recycling frees what it holds.
            assert_eq!(
                lanes.offer_spares(w.lane(), 3),
                0,
                "an eighth of the pool is held"
            );
            let mut r = lanes.reader(w.lane());
            // Seven chunks freed: fifteen wanted, seven before the floor.
            drain(&mut r, &lanes);
            assert_eq!(lanes.spares(w.lane()), 7);
            w.release(&lanes);
            assert_eq!(lanes.offer_spares(w.lane(), 3), 0);
            assert!(!r.recycle(&lanes), "spares are no half-written record");
            assert_eq!((lanes.spares(w.lane()), lanes.chunks_held()), (0, 0));
        }
    }

    #[test]
    fn each_release_offers_twice_the_chunks_it_freed_and_one() {
        // An eighth of 192 chunks is 24: the floor does not bind here.
        let h = header(1, 192);
        let region = HeapRegion::new(256 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(w.lane()) };
        // 200-byte payloads: one record per chunk.
        write(&mut w, &lanes, 0, 200).unwrap();
        write(&mut w, &lanes, 1, 200).unwrap();
        assert_eq!(drain(&mut r, &lanes), [0, 1]);
        // The first chunk freed (the writer is in the second): three.
        assert_eq!(lanes.spares(w.lane()), 3);
        write(&mut w, &lanes, 2, 200).unwrap();
        assert_eq!(lanes.spares(w.lane()), 2);
        // The second chunk freed: three more.
        assert_eq!(drain(&mut r, &lanes), [2]);
        assert_eq!(lanes.spares(w.lane()), 5);
    }

    #[test]
    fn an_idle_lanes_spares_leave_a_busy_writer_its_whole_share() {
        let h = header(2, 64);
        let region = HeapRegion::new(64 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let idle = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        assert_eq!(unsafe { lanes.offer_spares(idle.lane(), 40) }, 8);
        let mut busy = lanes.claim(7, 2, 101).unwrap();
        assert_eq!(lanes.share(), 56);
        for i in 0..56 {
            write(&mut busy, &lanes, i, 200).unwrap();
        }
        // The share, not the pool, stops it: all 64 chunks are held.
        assert_eq!(write(&mut busy, &lanes, 9, 200), Err(LaneFull::Share));
        assert_eq!(lanes.chunks_held(), 64);
    }

    #[test]
    fn a_lane_holds_its_share_then_waits_for_the_flusher() {
        let h = header(2, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        assert_eq!(lanes.share(), 3);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(w.lane()) };
        for i in 0..3 {
            write(&mut w, &lanes, i, 200).unwrap();
        }
        assert_eq!(write(&mut w, &lanes, 9, 200), Err(LaneFull::Share));
        // Another lane still finds the last chunk.
        let mut other = lanes.claim(8, 1, 101).unwrap();
        write(&mut other, &lanes, 7, 200).unwrap();
        assert_eq!(drain(&mut r, &lanes), [0, 1, 2]);
        write(&mut w, &lanes, 3, 200).unwrap();
        assert_eq!(drain(&mut r, &lanes), [3]);
        assert_eq!(
            write(&mut w, &lanes, 0, CHUNK as usize),
            Err(LaneFull::TooLarge)
        );
    }

    #[test]
    fn a_released_lane_is_drained_recycled_and_claimed_again() {
        let h = header(1, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        write(&mut w, &lanes, 1, 40).unwrap();
        assert!(lanes.claim(8, 1, 101).is_none(), "one lane, taken");
        w.release(&lanes);
        // A stale release of the same lane by an earlier claim does nothing.
        assert_eq!(lanes.owner(0), Owner::Released { registration: 7 });
        assert_eq!(drain(&mut r, &lanes), [1]);
        // SAFETY: its writer released it.
        assert!(!unsafe { r.recycle(&lanes) });
        assert_eq!(lanes.owner(0), Owner::Free);
        assert_eq!(lanes.chunks_held(), 0);
        let mut w2 = lanes.claim(8, 2, 101).unwrap();
        // The old writer's release cannot free the new owner's lane.
        w.release(&lanes);
        assert_eq!(lanes.owner(0), Owner::Owned { registration: 8 });
        write(&mut w2, &lanes, 2, 40).unwrap();
        assert_eq!(drain(&mut r, &lanes), [2]);
    }

    #[test]
    fn records_published_before_the_release_are_read_before_recycling() {
        let h = header(1, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        write(&mut w, &lanes, 1, 40).unwrap();
        assert_eq!(drain(&mut r, &lanes), [1]);
        // The reader's tail is now the writer's; the writer publishes one
        // more, then releases the lane.
        write(&mut w, &lanes, 2, 40).unwrap();
        w.release(&lanes);
        assert_eq!(lanes.owner(0), Owner::Released { registration: 7 });
        assert!(!r.is_empty(&lanes), "the last record is still to read");
        assert_eq!(drain(&mut r, &lanes), [2]);
        assert!(r.is_empty(&lanes));
    }

    #[test]
    fn a_record_half_written_by_a_dead_writer_is_found_when_recycling() {
        let h = header(1, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        write(&mut w, &lanes, 1, 40).unwrap();
        // Written, never published: the writer "dies" here.
        let slot = w.reserve(&lanes, RECORD_HEADER_LEN + 40).unwrap();
        w.stamp(&lanes, &slot, STAMP);
        w.fill(&lanes, &slot, |b| b.fill(2));
        assert_eq!(drain(&mut r, &lanes), [1]);
        // SAFETY: the writer is gone.
        assert!(unsafe { r.recycle(&lanes) });
        assert_eq!(lanes.chunks_held(), 0);
        // The next owner starts at a fresh chunk boundary.
        let mut w2 = lanes.claim(8, 2, 101).unwrap();
        write(&mut w2, &lanes, 3, 40).unwrap();
        assert_eq!(drain(&mut r, &lanes), [3]);
        assert_eq!(r.head() % CHUNK, 72);
    }

    #[test]
    fn clobbered_lane_words_are_corruption_not_a_crash() {
        let h = header(1, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        write(&mut w, &lanes, 1, 40).unwrap();
        // A tail far beyond anything a lane may hold.
        tail_word(&h, 0).store(1 << 40, Ordering::Relaxed);
        assert_eq!(r.peek(&lanes), Err(Corruption::BeyondTail));
        tail_word(&h, 0).store(72, Ordering::Relaxed);
        r.tail(&lanes);
        // A chunk table entry naming a chunk the lane does not hold.
        h.lanes[0].owner.chunks[0].store(3, Ordering::Relaxed);
        assert_eq!(r.peek(&lanes), Err(Corruption::BadChunk));
        h.lanes[0].owner.chunks[0].store(200, Ordering::Relaxed);
        assert_eq!(r.peek(&lanes), Err(Corruption::BadChunk));
        assert_eq!(r.skip_to_tail(&lanes), 72);
    }

    #[test]
    fn a_head_behind_freed_chunks_is_recovered() {
        let h = header(1, 8);
        let region = HeapRegion::new(8 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        for i in 0..3 {
            write(&mut w, &lanes, i, 200).unwrap();
        }
        // A flusher frees the first two chunks and is killed before the head.
        while let Some(p) = r.peek(&lanes).unwrap() {
            r.advance(&p);
        }
        let old_head = h.lanes[0].head.head.load(Ordering::Relaxed);
        r.release(&lanes);
        h.lanes[0].head.head.store(old_head, Ordering::Relaxed);
        // SAFETY: the test is the one consumer.
        let mut next = unsafe { lanes.reader(0) };
        next.recover_head(&lanes);
        assert_eq!(next.head(), 2 * CHUNK);
        assert_eq!(drain(&mut next, &lanes), [2]);
    }

    #[test]
    fn a_head_behind_a_chunk_the_lane_took_again_is_recovered() {
        let h = header(1, 4);
        let region = HeapRegion::new(4 * CHUNK);
        let lanes = Lanes::new(&*h, &region);
        let mut w = lanes.claim(7, 1, 100).unwrap();
        // SAFETY: the test is the one consumer.
        let mut r = unsafe { lanes.reader(0) };
        for i in 0..2 {
            write(&mut w, &lanes, i, 200).unwrap();
        }
        // A flusher frees the first chunk (and leaves it as the spare) and
        // is killed before the head; the writer takes the chunk again.
        while let Some(p) = r.peek(&lanes).unwrap() {
            r.advance(&p);
        }
        let first = h.lanes[0].owner.chunks[0].load(Ordering::Relaxed);
        r.release(&lanes);
        h.lanes[0].head.head.store(0, Ordering::Relaxed);
        write(&mut w, &lanes, 2, 200).unwrap();
        assert_eq!(h.lanes[0].owner.chunks[2].load(Ordering::Relaxed), first);
        // SAFETY: the test is the one consumer.
        let mut next = unsafe { lanes.reader(0) };
        next.recover_head(&lanes);
        assert_eq!(next.head(), CHUNK);
        assert_eq!(drain(&mut next, &lanes), [1, 2]);
    }
}

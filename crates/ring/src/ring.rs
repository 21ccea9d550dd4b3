//! The many-producer, one-consumer ring protocol.
//!
//! # Algorithm
//! Agrona's `ManyToOneRingBuffer` (real-logic/agrona, `ManyToOneRingBuffer.java`)
//! adapted to shared memory across processes, with a self-identifying header
//! (see `frame.rs`):
//!
//! 1. **claim**: a producer CASes `tail` forward by the record's aligned
//!    length, checked against `head` so it never overwrites unconsumed bytes.
//!    A record that would cross the end of the ring is preceded by a padding
//!    record that fills the rest of the ring.
//! 2. Right after the CAS it writes words 1..3 of its header and then word 0
//!    as `Claimed` (so a stalled or dead writer can be identified), copies the
//!    payload in place, and **commits** by CASing word 0 from `Claimed` to
//!    `Committed`. The CAS (rather than a store) makes a late commit to a
//!    record the flusher has already abandoned fail instead of corrupting
//!    whatever reuses that memory.
//! 3. **drain**: the single consumer reads headers in position order from
//!    `head`, stops at the first one that is not committed, validates every
//!    header against its position, the ring bounds and `tail` before
//!    touching the payload, and hands committed payloads to the caller.
//! 4. **release**: the consumer zeroes everything it consumed and only then
//!    advances `head`, so producers always claim zeroed memory, and a zero
//!    word 0 means "claimed but header not written yet".
//!
//! # Invariants
//! - `head <= tail <= head + capacity`; both only grow.
//! - Bytes in `[tail, head + capacity)` are zero.
//! - A record never crosses the end of the ring; records and padding tile
//!   `[head, tail)` exactly.
//! - Only the producer holding a [`Claim`] writes that record's bytes, until
//!   it commits; only the consumer touches committed bytes afterwards.
//! - A process that can write the segment can break all of this; the
//!   consumer detects clobbered `head`/`tail` ([`Consumer::control_words_broken`])
//!   and restores the invariants ([`Consumer::repair`]), and every scan is
//!   bounded by `head + capacity`, never by `tail` alone.
//!
//! # Memory-ordering contract (each Release names its Acquire)
//! - (R1) producer: words 1..3, then word 0 = `Claimed` with **Release** ->
//!   (A1) consumer's **Acquire** load of word 0 before reading words 1..3.
//! - (R2) producer: payload, then the commit CAS (**SeqCst**, a Release) ->
//!   (A1) the same Acquire load, before the payload is read.
//! - (R3) producer: padding word 0 with **Release** -> (A1).
//! - (R4) consumer: zeroing, then `head` store (**SeqCst**, a Release) ->
//!   (A4) producer's `head` load (**SeqCst**) in `try_reserve`, before it writes
//!   into the freed bytes. A head value passed between threads of one
//!   process through `head_cache` is stored Release and loaded Acquire (A4').
//! - `tail` hands out positions: its CAS needs atomicity, and publishes no
//!   data in normal operation. The consumer's Acquire load of `tail` happens
//!   after (A1), which orders it after the claim of every record it has
//!   seen. One exception: (R5) after repairing clobbered control words, the
//!   consumer zeroes the free space and then stores `tail` (**SeqCst**) ->
//!   (A5) the producer's tail CAS succeeds with **Acquire**, so the zeroing
//!   happens-before its writes there.
//! - Sleep/wake (in `wait.rs`) are Dekker pairs on top, tagged (D1) and (D2)
//!   there: commit CAS (SeqCst) then load `flusher.sleeping` (SeqCst), against
//!   the flusher's store of `sleeping` (SeqCst) then load of word 0 (SeqCst);
//!   and `head` store then load `space.waiters`, against `waiters` increment
//!   then `head` load.
//!
//! # Ownership
//! A [`Ring`] is a handle: `H` is how it holds the [`SegmentHeader`] (a
//! reference, or a handle that keeps a shared mapping alive) and `R` the
//! [`Region`]. Any number of handles may produce. Consuming needs a
//! [`Consumer`], which only `unsafe` constructors here hand out; the safe way
//! is `Segment::acquire_consumer`, which takes the segment's flusher lock.

use std::ops::Deref;

use crate::frame::{self, State, RECORD_HEADER_LEN};
use crate::layout::SegmentHeader;
use crate::region::Region;
use crate::sync::{spin_hint, AtomicU64, Ordering};

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Not enough free space between tail and head + capacity right now.
    Full,
    /// The record is shorter than a header or longer than the segment's
    /// maximum record size.
    BadLength,
}

/// The flusher abandoned the record before it was committed; the commit was
/// refused and counted in `late_commits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateCommit;

/// Space reserved by [`Ring::try_reserve`], header not written yet.
#[derive(Debug)]
pub struct Reserved {
    pos: u64,
    len: u64,
}

/// Ownership of a claimed, uncommitted record. Not `Clone`: exactly one
/// commit per claim.
#[derive(Debug)]
pub struct Claim {
    pos: u64,
    len: u64,
}

impl Claim {
    /// The ring position the record was claimed at (where its header starts).
    pub fn position(&self) -> u64 {
        self.pos
    }
    /// Payload bytes available to the producer.
    pub fn payload_len(&self) -> usize {
        self.len as usize - RECORD_HEADER_LEN
    }
}

/// A ring: the segment's control words plus the data region.
pub struct Ring<H, R> {
    header: H,
    region: R,
    capacity: u64,
    mask: u64,
    max_record: u64,
}

impl<H, R> std::fmt::Debug for Ring<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("max_record", &self.max_record)
            .finish_non_exhaustive()
    }
}

impl<H: Deref<Target = SegmentHeader>, R: Region> Ring<H, R> {
    /// A ring over `region` whose control words are `header`.
    ///
    /// # Panics
    /// If the region's capacity is not a power of two or the header's
    /// `max_record` is outside `[RECORD_HEADER_LEN, capacity / 4]` (a
    /// segment's header is validated on open, so this is a programming error).
    pub fn new(header: H, region: R) -> Self {
        let capacity = region.capacity();
        assert!(capacity.is_power_of_two());
        let max_record = header.identity.max_record.load(Ordering::Relaxed);
        assert!(max_record >= RECORD_HEADER_LEN as u64 && max_record <= capacity / 4);
        Self {
            header,
            region,
            capacity,
            mask: capacity - 1,
            max_record,
        }
    }

    /// The underlying memory (tests use it to play a buggy producer).
    pub fn region(&self) -> &R {
        &self.region
    }
    /// The segment's control words (positions, flusher state, counters).
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }
    /// Bytes in the data ring, a power of two.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
    /// Longest record, header included.
    pub fn max_record(&self) -> u64 {
        self.max_record
    }

    #[inline]
    fn offset(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }

    /// Claim `len` bytes (header included) for a record stamped with `stamp`
    /// (see `frame.rs`): [`Ring::try_reserve`] then [`Ring::stamp`].
    /// `head_cache` is a per-producer cache of `head` that spares the shared
    /// `head` line on most claims.
    ///
    /// # Errors
    /// As [`Ring::try_reserve`].
    #[inline]
    pub fn try_claim(
        &self,
        len: usize,
        stamp: Stamp,
        head_cache: &AtomicU64,
    ) -> Result<Claim, ClaimError> {
        let reserved = self.try_reserve(len, head_cache)?;
        Ok(self.stamp(reserved, stamp))
    }

    /// Reserve `len` bytes (header included): the CAS on `tail`, and the
    /// padding record when the space wraps. Until [`Ring::stamp`], the record's
    /// header is still zero.
    ///
    /// # Errors
    /// [`ClaimError::BadLength`] when `len` is below [`RECORD_HEADER_LEN`] or
    /// above [`Ring::max_record`]; [`ClaimError::Full`] when the free space
    /// (after one refresh of the cached head) cannot hold the record and any
    /// padding it needs. Nothing is counted either way.
    #[inline]
    pub fn try_reserve(&self, len: usize, head_cache: &AtomicU64) -> Result<Reserved, ClaimError> {
        let len = len as u64;
        if len < RECORD_HEADER_LEN as u64 || len > self.max_record {
            return Err(ClaimError::BadLength);
        }
        let aligned = frame::align(len);
        // (A4') pairs with the Release store below by another thread of this process.
        let mut head = head_cache.load(Ordering::Acquire);
        let mut tail = self.header.tail.0.load(Ordering::Relaxed);
        let mut refreshed = false;
        let padding = loop {
            let to_end = self.capacity - (tail & self.mask);
            let padding = if aligned > to_end { to_end } else { 0 };
            // A stale tail may lag a fresher cached head; the CAS then fails.
            if tail.saturating_sub(head) + padding + aligned > self.capacity {
                if refreshed {
                    return Err(ClaimError::Full);
                }
                // (A4) pairs with the consumer's head store (R4): the zeroing of
                // everything below head is visible before we write there. Also
                // the producer half of the space-wait Dekker pair (D2).
                head = self.header.head.0.load(Ordering::SeqCst);
                head_cache.store(head, Ordering::Release);
                refreshed = true;
                continue;
            }
            // (A5) Acquire on success: pairs with the tail store after a
            // repair (R5). Free on x86, where every load is an acquire.
            match self.header.tail.0.compare_exchange_weak(
                tail,
                tail + padding + aligned,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break padding,
                Err(now) => {
                    tail = now;
                    spin_hint();
                }
            }
        };
        if padding > 0 {
            let word = frame::encode_word0(tail, padding, State::Padding);
            // (R3) Release: pairs with the consumer's Acquire (A1).
            self.region
                .word(self.offset(tail))
                .store(word, Ordering::Release);
        }
        let pos = tail + padding;
        // Far enough ahead (a few records) to hide a miss to memory; three
        // lines per claim keep pace with records of up to 192 bytes.
        let next = self.offset(pos) + aligned as usize;
        for ahead in [1024, 1088, 1152] {
            self.region.prefetch_write(next + ahead);
        }
        Ok(Reserved { pos, len })
    }

    /// Write the reserved record's header as claimed by `stamp`.
    #[inline]
    pub fn stamp(&self, reserved: Reserved, stamp: Stamp) -> Claim {
        let Reserved { pos, len } = reserved;
        let off = self.offset(pos);
        self.region.word(off + 8).store(pos, Ordering::Relaxed);
        self.region.word(off + 16).store(
            frame::encode_word2(stamp.pid, stamp.flags),
            Ordering::Relaxed,
        );
        self.region
            .word(off + 24)
            .store(stamp.timestamp, Ordering::Relaxed);
        // (R1) Release: pairs with the consumer's Acquire (A1); words 1..3 first.
        self.region.word(off).store(
            frame::encode_word0(pos, len, State::Claimed),
            Ordering::Release,
        );
        Claim { pos, len }
    }

    /// Write the claimed record's payload in place.
    #[inline]
    pub fn fill(&self, claim: &Claim, f: impl FnOnce(&mut [u8])) {
        let off = self.offset(claim.pos) + RECORD_HEADER_LEN;
        // SAFETY: the Claim proves this producer owns the record's bytes until
        // it commits, and try_claim checked they lie inside the ring.
        unsafe { self.region.fill(off, claim.payload_len(), f) }
    }

    /// Publish a claimed record to the consumer.
    ///
    /// # Errors
    /// [`LateCommit`] when the consumer abandoned the record first (see
    /// [`Consumer::abandon_claimed`]); the refusal is counted in
    /// `late_commits` and the record is lost.
    #[inline]
    pub fn commit(&self, claim: Claim) -> Result<(), LateCommit> {
        let word = self.region.word(self.offset(claim.pos));
        let claimed = frame::encode_word0(claim.pos, claim.len, State::Claimed);
        let committed = frame::encode_word0(claim.pos, claim.len, State::Committed);
        // (R2) SeqCst (includes Release): pairs with the consumer's Acquire (A1),
        // and is the producer half of the flusher-sleep Dekker pair (D1).
        match word.compare_exchange(claimed, committed, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(_) => {
                self.header
                    .counters
                    .late_commits
                    .fetch_add(1, Ordering::Relaxed);
                Err(LateCommit)
            }
        }
    }

    /// Whether `head` and `tail` contradict the invariants (`head <= tail
    /// <= head + capacity`, both 8-aligned): a process that can write the
    /// segment clobbered them. A producer that finds the ring full checks
    /// this and drops at once instead of waiting for space that cannot come
    /// until the flusher has repaired them. Both loads are racy, which is
    /// fine for a hint.
    pub fn control_words_inconsistent(&self) -> bool {
        let head = self.header.head.0.load(Ordering::Relaxed);
        let tail = self.header.tail.0.load(Ordering::Relaxed);
        inconsistent(head, tail, self.capacity)
    }

    /// Bytes claimed but not yet released by the consumer.
    pub fn used(&self) -> u64 {
        let head = self.header.head.0.load(Ordering::Acquire);
        let tail = self.header.tail.0.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Whether the record at `pos` is ready to drain (committed or padding,
    /// with a header valid for `pos`).
    /// SeqCst: the flusher half of the sleep Dekker pair (D1).
    pub fn ready_at(&self, pos: u64) -> bool {
        let word = self.region.word(self.offset(pos)).load(Ordering::SeqCst);
        matches!(
            frame::decode_word0(word),
            Some((tag, _, State::Committed | State::Padding)) if tag == frame::tag(pos)
        )
    }

    /// A consumer that borrows this handle.
    ///
    /// # Safety
    /// At most one consumer may exist for a ring at a time, across all
    /// processes. Across processes, use `Segment::acquire_consumer`, which
    /// enforces it with the segment's flusher lock.
    pub unsafe fn consumer(&self) -> Consumer<&SegmentHeader, &R> {
        let view = Ring {
            header: &*self.header,
            region: &self.region,
            capacity: self.capacity,
            mask: self.mask,
            max_record: self.max_record,
        };
        // SAFETY: the caller guarantees there is no other consumer.
        unsafe { view.into_consumer() }
    }

    /// Turn this handle into the ring's consumer.
    ///
    /// # Safety
    /// As for [`Ring::consumer`]: no other consumer may exist meanwhile.
    pub unsafe fn into_consumer(self) -> Consumer<H, R> {
        let head = self.header.head.0.load(Ordering::Acquire);
        Consumer {
            ring: self,
            head,
            pos: head,
            tail: head,
        }
    }
}

/// Whether a `head` and `tail` pair breaks the invariants.
fn inconsistent(head: u64, tail: u64, capacity: u64) -> bool {
    tail < head || tail - head > capacity || head % frame::ALIGN != 0 || tail % frame::ALIGN != 0
}

/// What [`Consumer::repair`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repair {
    /// The shared `head` found (the consumer's own is the true one).
    pub head_found: u64,
    /// The shared `tail` found.
    pub tail_found: u64,
    /// The new tail: the end of the valid records after the read position.
    pub tail_set: u64,
    /// Non-zero bytes beyond the new tail, given up: records written at
    /// positions the ring cannot account for.
    pub lost_bytes: u64,
}

/// Who wrote a record and when: header words 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Pid of the writing process.
    pub pid: u32,
    /// [`frame::FLAG_TSC`]: `timestamp` is TSC ticks, else realtime ns;
    /// [`frame::FLAG_LANE_THREAD`]: the payload leaves its thread to the
    /// lane; from bit [`frame::TAG_SHIFT`], the writer's registration tag.
    pub flags: u32,
    /// The record's time: realtime ns since the Unix epoch, or raw TSC ticks
    /// when `flags` has [`frame::FLAG_TSC`].
    pub timestamp: u64,
}

impl Stamp {
    /// The writer's registration tag (0: the writer was not registered).
    pub fn writer_tag(&self) -> u16 {
        (self.flags >> frame::TAG_SHIFT) as u16
    }

    pub(crate) fn from_words(word2: u64, word3: u64) -> Self {
        Self {
            pid: word2 as u32,
            flags: (word2 >> 32) as u32,
            timestamp: word3,
        }
    }
}

/// The next committed record of the shared ring, found by
/// [`Consumer::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Its ring position.
    pub pos: u64,
    /// Its length, header included.
    pub len: u64,
    /// Who wrote it and when.
    pub stamp: Stamp,
}

/// A committed record handed to the consumer.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// The ring position of the record's header.
    pub pos: u64,
    /// Who wrote it and when.
    pub stamp: Stamp,
    /// The payload bytes, in place in the ring (header excluded, unpadded).
    pub payload: &'a [u8],
    /// The thread of a lane record flagged [`frame::FLAG_LANE_THREAD`],
    /// whose payload leaves it out: its lane's owner (`None` for every
    /// other record).
    pub thread: Option<crate::lane::LaneThread>,
}

/// Why a header failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// State bits zero but other bits set.
    BadState,
    /// The header's tag does not match its position.
    WrongPosition,
    /// Length outside `[header, max_record]`, or a padding record that does
    /// not run exactly to the end of the ring.
    BadLength,
    /// The record would cross the end of the ring.
    CrossesEnd,
    /// The record extends beyond `tail`.
    BeyondTail,
    /// (lanes) A lane's chunk table names a chunk the lane does not hold.
    BadChunk,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Corruption::BadState => "invalid state bits",
            Corruption::WrongPosition => "header claims another position",
            Corruption::BadLength => "invalid length",
            Corruption::CrossesEnd => "record crosses the end of the ring",
            Corruption::BeyondTail => "record extends beyond the tail",
            Corruption::BadChunk => "lane names a chunk it does not hold",
        })
    }
}

impl std::error::Error for Corruption {}

/// Where a drain stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Word 0 at the position is zero: nothing claimed, or claimed and its
    /// header not written yet (`tail` tells which).
    Empty,
    /// A claimed record whose writer has not committed yet.
    Claimed(Stamp),
    /// The byte budget was reached.
    Budget,
    /// The header at the position failed validation.
    Corrupt(Corruption),
    /// The visitor declined the record at the position.
    Visitor,
}

/// The single consumer. Reads from `pos`, releases up to `pos`.
pub struct Consumer<H, R> {
    ring: Ring<H, R>,
    /// Released position (mirror of the shared head).
    head: u64,
    /// Read position: everything in `[head, pos)` has been consumed.
    pos: u64,
    /// Last tail value seen.
    tail: u64,
}

impl<H, R> std::fmt::Debug for Consumer<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("ring", &self.ring)
            .field("head", &self.head)
            .field("pos", &self.pos)
            .field("tail", &self.tail)
            .finish()
    }
}

impl<H: Deref<Target = SegmentHeader>, R: Region> Consumer<H, R> {
    /// The ring this consumer drains.
    pub fn ring(&self) -> &Ring<H, R> {
        &self.ring
    }
    /// The read position: everything from [`Consumer::head`] up to it has
    /// been drained or skipped but not yet released.
    pub fn position(&self) -> u64 {
        self.pos
    }
    /// The released position: the shared head, which only this consumer
    /// moves (see [`Consumer::release`]).
    pub fn head(&self) -> u64 {
        self.head
    }
    /// Reload and return the shared tail.
    pub fn tail(&mut self) -> u64 {
        self.tail = self.ring.header.tail.0.load(Ordering::Acquire);
        self.tail
    }

    fn within_tail(&mut self, end: u64) -> bool {
        end <= self.tail || end <= self.tail()
    }

    /// Validate the header at `pos`: `Ok((len, state))` or why not.
    fn check(&mut self, pos: u64) -> Result<Option<(u64, State)>, Corruption> {
        let off = self.ring.offset(pos);
        // (A1) Acquire: pairs with the producer's Release stores (R1, R3) and
        // commit (R2), making header words and payload visible.
        let word = self.ring.region.word(off).load(Ordering::Acquire);
        if word == 0 {
            return Ok(None);
        }
        let (tag, len, state) = frame::decode_word0(word).ok_or(Corruption::BadState)?;
        if tag != frame::tag(pos) {
            return Err(Corruption::WrongPosition);
        }
        let cap = self.ring.capacity;
        let end = match state {
            State::Padding => {
                if len != cap - off as u64 {
                    return Err(Corruption::BadLength);
                }
                pos + len
            }
            State::Claimed | State::Committed => {
                if len < RECORD_HEADER_LEN as u64 || len > self.ring.max_record {
                    return Err(Corruption::BadLength);
                }
                if off as u64 + frame::align(len) > cap {
                    return Err(Corruption::CrossesEnd);
                }
                if self.ring.region.word(off + 8).load(Ordering::Relaxed) != pos {
                    return Err(Corruption::WrongPosition);
                }
                pos + frame::align(len)
            }
        };
        if !self.within_tail(end) {
            return Err(Corruption::BeyondTail);
        }
        Ok(Some((len, state)))
    }

    /// The next committed record at the read position, passing padding, or
    /// why there is none: the next position is not committed
    /// ([`Stop::Empty`], [`Stop::Claimed`]), fails validation
    /// ([`Stop::Corrupt`]), or lies a whole capacity past the released head
    /// ([`Stop::Budget`]). Nothing is consumed but padding: take the record
    /// with [`Consumer::view`] and [`Consumer::advance`].
    #[inline]
    pub fn peek(&mut self) -> Result<Next, Stop> {
        loop {
            // Bytes in [head, pos) are consumed but not yet zeroed; their
            // offsets alias the positions a capacity further on.
            if self.pos - self.head >= self.ring.capacity {
                return Err(Stop::Budget);
            }
            let pos = self.pos;
            let off = self.ring.offset(pos);
            // Records were written on another core: start pulling the lines
            // of the records after this one.
            self.ring.region.prefetch_read(off + 2048);
            self.ring.region.prefetch_read(off + 2112);
            self.ring.region.prefetch_read(off + 2176);
            let (len, state) = match self.check(pos) {
                Ok(Some(found)) => found,
                Ok(None) => return Err(Stop::Empty),
                Err(why) => return Err(Stop::Corrupt(why)),
            };
            let region = &self.ring.region;
            let stamp = || {
                Stamp::from_words(
                    region.word(off + 16).load(Ordering::Relaxed),
                    region.word(off + 24).load(Ordering::Relaxed),
                )
            };
            match state {
                State::Padding => self.pos += len,
                State::Claimed => return Err(Stop::Claimed(stamp())),
                State::Committed => {
                    return Ok(Next {
                        pos,
                        len,
                        stamp: stamp(),
                    })
                }
            }
        }
    }

    /// Let `f` read the payload of `next`, the record [`Consumer::peek`]
    /// returned last.
    #[inline]
    pub fn view<T>(&self, next: &Next, f: impl FnOnce(RecordRef<'_>) -> T) -> T {
        debug_assert_eq!(next.pos, self.pos);
        let off = self.ring.offset(next.pos) + RECORD_HEADER_LEN;
        let len = next.len as usize - RECORD_HEADER_LEN;
        // SAFETY: peek validated that the record lies inside the ring, and
        // the Acquire in check made its committed payload visible; producers
        // do not write it again until we release it.
        unsafe {
            self.ring.region.view(off, len, |payload| {
                f(RecordRef {
                    pos: next.pos,
                    stamp: next.stamp,
                    payload,
                    thread: None,
                })
            })
        }
    }

    /// Consume `next`, the record [`Consumer::peek`] returned last.
    #[inline]
    pub fn advance(&mut self, next: &Next) {
        debug_assert_eq!(next.pos, self.pos);
        self.pos += frame::align(next.len);
    }

    /// Hand committed records to `visit` in position order, starting at the
    /// read position, until one is not committed, `budget` bytes were read,
    /// or `visit` returns false (that record stays unconsumed: [`Stop::Visitor`]).
    /// Nothing is released: call [`Consumer::release`] once they are written.
    pub fn drain(&mut self, budget: u64, mut visit: impl FnMut(RecordRef<'_>) -> bool) -> Stop {
        let start = self.pos;
        loop {
            if self.pos - start >= budget {
                return Stop::Budget;
            }
            let next = match self.peek() {
                Ok(next) => next,
                Err(stop) => return stop,
            };
            if !self.view(&next, &mut visit) {
                return Stop::Visitor;
            }
            self.advance(&next);
        }
    }

    /// After [`Stop::Corrupt`]: skip to the next position below `tail` that
    /// holds a header valid for that position. Returns the bytes skipped, or
    /// `None` when no valid header follows yet (the caller retries later).
    /// The skipped bytes are zeroed by the next release.
    pub fn skip_corrupt(&mut self) -> Option<u64> {
        // Never past head + capacity, whatever `tail` says: a clobbered tail
        // must not make this scan 2^60 positions.
        let tail = self.tail().min(self.head + self.ring.capacity);
        let mut q = self.pos + frame::ALIGN;
        while q < tail {
            if matches!(self.check(q), Ok(Some(_))) {
                let skipped = q - self.pos;
                self.pos = q;
                return Some(skipped);
            }
            q += frame::ALIGN;
        }
        None
    }

    /// Skip `len` bytes at the read position.
    pub fn skip(&mut self, len: u64) {
        self.pos += len;
    }

    /// Give up the claimed record at the read position (its writer is dead or
    /// stuck): clear its word 0 with a CAS, so that a late commit fails
    /// instead of publishing, and skip it. Returns the bytes skipped, or
    /// `None` when the record is no longer in the claimed state (it was just
    /// committed: drain it instead).
    pub fn abandon_claimed(&mut self) -> Option<u64> {
        let word = self.ring.region.word(self.ring.offset(self.pos));
        let seen = word.load(Ordering::Acquire);
        match frame::decode_word0(seen) {
            Some((tag, len, State::Claimed)) if tag == frame::tag(self.pos) => {
                // AcqRel: orders against the producer's SeqCst commit CAS on the
                // same word; exactly one of the two CASes wins.
                word.compare_exchange(seen, 0, Ordering::AcqRel, Ordering::Acquire)
                    .ok()?;
                let skipped = frame::align(len);
                self.pos += skipped;
                Some(skipped)
            }
            _ => None,
        }
    }

    /// Give up a claim whose header was never written (word 0 still zero),
    /// as Agrona's `unblock()` does: find the next valid header below `tail`,
    /// or `tail` itself, and skip there if every byte in between is still
    /// zero (so no writer has started on it). Returns the bytes skipped.
    pub fn abandon_unwritten(&mut self) -> Option<u64> {
        let tail = self.tail().min(self.head + self.ring.capacity);
        if tail <= self.pos {
            return None;
        }
        let mut q = self.pos;
        while q < tail {
            if q > self.pos && matches!(self.check(q), Ok(Some(_))) {
                break;
            }
            let off = self.ring.offset(q);
            if self.ring.region.word(off).load(Ordering::Acquire) != 0 {
                return None;
            }
            q += frame::ALIGN;
        }
        let skipped = q - self.pos;
        self.pos = q;
        Some(skipped)
    }

    /// Whether the shared control words contradict this consumer's own
    /// head or the ring's invariants (see [`Ring::control_words_inconsistent`]).
    pub fn control_words_broken(&self) -> bool {
        let shared_head = self.ring.header.head.0.load(Ordering::Relaxed);
        let tail = self.ring.header.tail.0.load(Ordering::Relaxed);
        shared_head != self.head || inconsistent(self.head, tail, self.ring.capacity)
    }

    /// Repair clobbered control words: put this consumer's head back, fence
    /// producers off (a tail of head + 2 x capacity makes every claim fail
    /// as full, and producers drop at once on inconsistent words), find the
    /// end of the valid records from the read position, zero everything
    /// beyond it, and set the tail there. Records already valid are kept
    /// and drained as usual; what lay beyond is counted in bytes.
    ///
    /// A producer that claimed space at a clobbered position before the
    /// fence may still write into the zeroed range; its commit then fails
    /// (counted as a late commit).
    pub fn repair(&mut self) -> Repair {
        let cap = self.ring.capacity;
        let head_found = self.ring.header.head.0.load(Ordering::Relaxed);
        // (R4 again) the true head, so producers compute free space from it.
        self.ring.header.head.0.store(self.head, Ordering::SeqCst);
        let fence = self.head + 2 * cap;
        let tail_found = self.ring.header.tail.0.swap(fence, Ordering::SeqCst);
        self.tail = fence;
        let valid_end = self.valid_end();
        let mut lost_bytes = 0;
        let mut q = valid_end;
        while q < self.head + cap {
            let off = self.ring.offset(q);
            let n = (self.head + cap - q).min(cap - off as u64);
            for w in (off..off + n as usize).step_by(8) {
                if self.ring.region.word(w).load(Ordering::Relaxed) != 0 {
                    lost_bytes += 8;
                }
            }
            // SAFETY: [valid_end, head + capacity) lies beyond every record
            // this consumer will read, and producers are fenced off from it.
            unsafe { self.ring.region.zero(off, n as usize) };
            q += n;
        }
        // (R5) SeqCst (includes Release): pairs with the Acquire of the
        // producers' tail CAS (A5); the zeroing happens-before their writes.
        self.ring.header.tail.0.store(valid_end, Ordering::SeqCst);
        self.tail = valid_end;
        Repair {
            head_found,
            tail_found,
            tail_set: valid_end,
            lost_bytes,
        }
    }

    /// The position after the last record that validates, walking from the
    /// read position without going past head + capacity.
    fn valid_end(&mut self) -> u64 {
        let limit = self.head + self.ring.capacity;
        let mut q = self.pos;
        while q < limit {
            match self.check(q) {
                Ok(Some((len, State::Padding))) => q += len,
                Ok(Some((len, _))) => q += frame::align(len),
                Ok(None) | Err(_) => break,
            }
        }
        q.min(limit)
    }

    /// Forget what was read since the last release, to read it again.
    pub fn rewind(&mut self) {
        self.pos = self.head;
    }

    /// Zero everything consumed and advance the shared head to the read
    /// position, handing the space back to producers.
    pub fn release(&mut self) {
        if self.pos == self.head {
            return;
        }
        let cap = self.ring.capacity;
        let mut from = self.head;
        while from < self.pos {
            let off = self.ring.offset(from);
            let n = (self.pos - from).min(cap - off as u64);
            // SAFETY: [head, pos) was consumed by us and is not yet released,
            // so no producer may write it; n keeps the range inside the ring.
            unsafe { self.ring.region.zero(off, n as usize) };
            from += n;
        }
        // (R4) SeqCst (includes Release): pairs with the producers' head load
        // (A4); zeroing above happens-before their writes to these bytes.
        // Also the flusher half of the space-wait Dekker pair (D2).
        self.ring.header.head.0.store(self.pos, Ordering::SeqCst);
        self.head = self.pos;
    }
}

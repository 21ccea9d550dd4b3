//! [`Producer`]: open a segment and write records into its ring.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringflush_ring::closing;
use ringflush_ring::codec::{Basic, Record};
use ringflush_ring::frame::{self, FLAG_TSC, RECORD_HEADER_LEN};
use ringflush_ring::lane::{LaneFull, LaneSlot, LaneWriter};
use ringflush_ring::{
    tsc, wait, ClaimError, OpenError, Reserved, Segment, SegmentOptions, SharedLanes, SharedRing,
    SigbusGuard, Stamp,
};

use crate::fault::{Fault, Point};
use crate::identity;
use crate::lanes::{LaneSet, ThreadLane};
use crate::registration::Registration;
#[cfg(doc)]
use crate::OpenErrorKind;

/// What a producer does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Wait for the flusher to free space, up to `timeout`, then drop. With
    /// no flusher running (none holds the segment's flusher lock, or its
    /// heartbeat is 3 s old: it is stopped) drop at once rather than
    /// stall every log call.
    Block {
        /// Longest wait for space, per record.
        timeout: Duration,
    },
    /// Drop the record at once.
    Drop,
}

impl Default for FullPolicy {
    fn default() -> Self {
        FullPolicy::Block {
            timeout: Duration::from_secs(1),
        }
    }
}

/// Why a record was not written. Every such record is counted in the segment
/// (`dropped` or `late_commits`) and reported by the flusher, except a
/// [`WriteError::Full`] from [`Producer::try_write`] or
/// [`Producer::try_write_at`], which counts nothing (the caller retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The ring stayed full (no flusher, or it cannot keep up); dropped.
    Full,
    /// Even with its message cut to nothing and its optional fields (`extra`,
    /// `pathname`, `func`, `module`) left out, the record exceeds the
    /// segment's maximum record size; dropped.
    TooLarge,
    /// The writer stalled so long (`--unblock-timeout`) that the flusher gave
    /// the record up before it was committed; counted in `late_commits`.
    Abandoned,
    /// The segment was truncated under this process (by a process with
    /// write access to it), which would have killed it with SIGBUS: the
    /// producer writes nothing more (said once on stderr); open a new one.
    SegmentLost,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteError::Full => "ring full: record dropped",
            WriteError::TooLarge => "record fields exceed the maximum record size: record dropped",
            WriteError::Abandoned => "record abandoned by the flusher before it was committed",
            WriteError::SegmentLost => {
                "the segment was truncated under this process: open the producer again"
            }
        })
    }
}

impl std::error::Error for WriteError {}

/// Options for [`Producer`], from [`Producer::builder`]; [`Builder::open`]
/// opens the producer.
///
/// ```no_run
/// use std::time::Duration;
/// use ringflush_producer::{FullPolicy, Producer};
/// let log = Producer::builder("/applog")
///     .full_policy(FullPolicy::Block { timeout: Duration::from_millis(100) })
///     .capacity(16 << 20)
///     .open()?;
/// # Ok::<(), ringflush_producer::OpenError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `open` is called"]
pub struct Builder {
    name: String,
    policy: FullPolicy,
    segment: SegmentOptions,
}

impl Builder {
    /// What to do when the ring is full (default: block up to 1 s, then drop).
    pub fn full_policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Ring capacity in bytes if this producer is the one that creates the
    /// segment (default 8 MiB): a power of two from 64 KiB to 1 GiB. An
    /// existing segment keeps its own, but the value is checked either way.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.segment.capacity = bytes;
        self
    }
    /// Per-writer lanes if this producer creates the segment (default: 64,
    /// fewer on a small ring, see `ringflush_ring::layout::default_lanes`).
    /// Each thread takes a lane of its own on its first record and writes
    /// there with no atomic read-modify-write; a stalled thread holds up
    /// only its own records; threads beyond the lanes share the ring with a
    /// CAS. 0: every thread shares the ring. At most 64; an existing
    /// segment keeps its own.
    pub fn lanes(mut self, lanes: u64) -> Self {
        self.segment.lanes = Some(lanes);
        self
    }
    /// Permission bits of a segment this producer creates, and the most an
    /// existing one may allow (default `0o600`): a segment writable by group
    /// or others beyond them is refused, as the flusher's `--mode` does.
    /// Shared setups (workers under several users in one group) pass
    /// `0o660`, with [`Builder::allow_foreign`].
    pub fn mode(mut self, mode: u32) -> Self {
        self.segment.mode = mode;
        self
    }
    /// Accept a segment owned by another user (default `false`: another
    /// local user could create the name first to read the logs), as the
    /// flusher's `--allow-foreign` does.
    pub fn allow_foreign(mut self, allow: bool) -> Self {
        self.segment.allow_foreign = allow;
        self
    }
    /// Whether to create the segment when it does not exist (default
    /// `true`); with `false`, [`Builder::open`] fails instead.
    pub fn create(mut self, create: bool) -> Self {
        self.segment.create = create;
        self
    }
    /// How long to wait for a segment another process is still creating
    /// (default 2 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.segment.ready_timeout = timeout;
        self
    }

    /// Open (or create) the segment and map it: the producer is ready to
    /// write, with no flusher needed yet.
    ///
    /// # Errors
    /// The [`OpenError`] of [`Segment::open`], whose
    /// [`kind`](OpenError::kind) is mainly:
    /// - [`OpenErrorKind::InvalidName`]: the name is not like `/applog`;
    /// - [`OpenErrorKind::InvalidOption`]: [`Builder::capacity`] is out of range;
    /// - [`OpenErrorKind::NotFound`]: no such segment with [`Builder::create`]`(false)`;
    /// - [`OpenErrorKind::Io`]: a system call failed (e.g. `/dev/shm` is full,
    ///   or the segment belongs to another user);
    /// - [`OpenErrorKind::NoRoom`]: `/dev/shm` has no room for a new segment;
    /// - [`OpenErrorKind::NotInitialised`]: its creator did not finish within
    ///   [`Builder::ready_timeout`];
    /// - [`OpenErrorKind::NotASegment`], [`OpenErrorKind::Truncated`],
    ///   [`OpenErrorKind::IncompatibleVersion`], [`OpenErrorKind::BadHeader`]: the
    ///   name holds something other than a segment this build can use.
    pub fn open(self) -> Result<Producer, OpenError> {
        // A segment its idle flusher removes as we open it is left for the
        // one the name leads to next (`ringflush_ring::closing`).
        for _ in 0..MAX_REOPENS {
            let producer = self.clone().open_once()?;
            if producer.settle() == Settled::Ready {
                return Ok(producer);
            }
        }
        self.open_once()
    }

    fn open_once(self) -> Result<Producer, OpenError> {
        let segment = Segment::open(&self.name, &self.segment)?;
        let ring = segment.shared_ring();
        let sigbus = segment.watch_sigbus();
        let head = ring.header().head.0.load(Ordering::Acquire);
        crate::fault::pause_before_register();
        let registration = Registration::new(&segment);
        let fault = Fault::from_env();
        // Fault injection takes the general path, where its points are.
        let fast_limit = match fault {
            Some(_) => 0,
            None => ring.max_record() as usize - RECORD_HEADER_LEN,
        };
        let tsc = tsc::tsc_usable();
        let clock_flags = if tsc { FLAG_TSC } else { 0 };
        let lanes = segment
            .shared_lanes()
            .map(|l| LaneSet::new(l, fast_limit, clock_flags));
        Ok(Producer {
            segment,
            ring,
            lanes,
            head_cache: AtomicU64::new(head),
            registration,
            sigbus,
            name: self.name,
            policy: self.policy,
            tsc,
            fault,
        })
    }
}

/// A handle on a segment's ring, shared by all threads of a process.
#[derive(Debug)]
pub struct Producer {
    /// The segment: its descriptor holds this process's registry lock, and
    /// asks whether a flusher runs.
    segment: Segment,
    /// Keeps the segment mapped for as long as the producer lives.
    ring: SharedRing,
    /// The segment's lanes, if it has any: each thread writes its own.
    lanes: Option<LaneSet>,
    head_cache: AtomicU64,
    policy: FullPolicy,
    /// Stamp records with TSC ticks (see `ringflush_ring::tsc`).
    tsc: bool,
    /// Test-only fault injection (`RINGFLUSH_FAULT`), normally `None`.
    fault: Option<Fault>,
    /// This process in the segment's producer registry.
    registration: Registration,
    /// Watches the mapping for SIGBUS (a truncated segment).
    sigbus: SigbusGuard,
    /// The segment's name, for messages.
    name: String,
}

/// How often [`Builder::open`] follows a segment removed as it opened it.
const MAX_REOPENS: usize = 8;
/// How long a producer that found the closing flag raised waits for its
/// flusher's decision (microseconds, unless the flusher is stopped).
const CLOSING_WAIT: Duration = Duration::from_secs(1);

/// Where a just-opened producer stands with its segment's idle flusher.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// Write here: no flusher is removing the segment, or it has seen us.
    Ready,
    /// The segment was removed: open the name again.
    Removed,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.registration.leave(&self.segment);
    }
}

impl Producer {
    /// Registered: wait out an idle flusher's decision to remove the
    /// segment (the producer side of `ringflush_ring::closing`). Past
    /// [`CLOSING_WAIT`] it writes on, registered: a flusher that removed
    /// the name drains on while anyone is registered.
    fn settle(&self) -> Settled {
        let h = self.segment.header();
        if !closing::raised(h) {
            return Settled::Ready;
        }
        let deadline = Instant::now() + CLOSING_WAIT;
        while Instant::now() < deadline {
            if !self.segment.still_named().unwrap_or(true) {
                return Settled::Removed;
            }
            if !closing::raised(h) {
                return Settled::Ready;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Settled::Ready
    }

    /// Done with the segment, in the process that opened it: remove it if
    /// no flusher holds it, no other producer lives and nothing is left to
    /// write (`Segment::remove_if_unused`), so that a segment no flusher
    /// ever took (nothing was logged) does not stay in /dev/shm. A process
    /// that forked children which may still write must not call this: they
    /// share its registration until they log.
    pub fn remove_segment_if_unused(&self) -> bool {
        self.registration.opened_here() && self.segment.remove_if_unused().unwrap_or(false)
    }

    /// Open (or create) the segment `name`, e.g. `/applog`, with defaults
    /// (see [`Producer::builder`]).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use ringflush_producer::{level, Producer};
    /// // One producer per process, shared by its threads.
    /// let log = Arc::new(Producer::open("/applog")?);
    /// let worker = {
    ///     let log = Arc::clone(&log);
    ///     std::thread::spawn(move || log.log(level::INFO, "app.worker", "started"))
    /// };
    /// worker.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Builder::open`].
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// Options for opening the segment `name`, starting from the defaults:
    /// create it if missing (8 MiB ring, mode 0600), wait up to 2 s for
    /// another creator, block up to 1 s on a full ring.
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.into(),
            policy: FullPolicy::default(),
            segment: SegmentOptions::default(),
        }
    }

    /// Log `message` at `level` (see [`crate::level`]) as logger `logger`,
    /// stamped with this thread's id and name. A message too long for the
    /// segment's maximum record size is cut and marked (see
    /// [`Producer::max_record`]).
    ///
    /// ```no_run
    /// use ringflush_producer::{level, Producer};
    /// let log = Producer::open("/applog")?;
    /// log.log(level::WARNING, "app.db", "query took 2.3 s")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// - [`WriteError::Full`]: the ring stayed full: at once under
    ///   [`FullPolicy::Drop`] or when no flusher has shown a heartbeat for
    ///   3 s, else after the [`FullPolicy::Block`] timeout.
    /// - [`WriteError::TooLarge`]: the logger and thread names alone exceed
    ///   the segment's maximum record size.
    /// - [`WriteError::Abandoned`]: this thread stalled between claiming and
    ///   committing the record for so long that the flusher gave it up.
    ///
    /// The record is lost in each case, counted in the segment and reported
    /// by the flusher: most callers ignore the error.
    #[inline]
    pub fn log(&self, level: u8, logger: &str, message: &str) -> Result<(), WriteError> {
        let Some(lanes) = &self.lanes else {
            return self.log_general(level, logger, message);
        };
        let pid = identity::pid();
        // The clock first: fewer values are live across its call. Its flag
        // is in the lane's ready-made header word (`LaneSet::new`).
        let (timestamp, _) = self.now();
        let fast = lanes.with_own(pid, |t| {
            self.log_in_lane(lanes, t, timestamp, level, logger, message)
        });
        match fast {
            Some(written) => written,
            None => self.log_general(level, logger, message),
        }
    }

    /// [`Producer::log`]'s common case, in a lane the thread holds: `None`
    /// when anything is out of the ordinary (a long record, a new chunk
    /// needed, fault injection), for [`Producer::log_general`] to handle.
    #[inline(always)]
    fn log_in_lane(
        &self,
        lanes: &LaneSet,
        t: &mut ThreadLane,
        timestamp: u64,
        level: u8,
        logger: &str,
        message: &str,
    ) -> Option<Result<(), WriteError>> {
        // The thread is the lane's (`FLAG_LANE_THREAD` in `t.word2`): the
        // flusher gives it to the record.
        let basic = Basic {
            level,
            thread_id: 0,
            thread_name: &[],
            logger: logger.as_bytes(),
            message: message.as_bytes(),
        };
        let len = basic.encoded_len()?;
        if len > t.limit {
            return None;
        }
        let l = lanes.lanes();
        let stamp = (t.word2, timestamp);
        // SAFETY: the thread's entry of this producer (`with_own` matched
        // it) holds a writer claimed from this producer's lanes.
        let appended = unsafe {
            t.writer
                .append(l, RECORD_HEADER_LEN + len, stamp, |buf| basic.encode(buf))
        };
        if !appended {
            return self.log_in_next_chunk(lanes, t, timestamp, level, logger, message);
        }
        wait::wake_after_publish(l.header());
        Some(self.check_segment())
    }

    /// [`Producer::log_in_lane`] of a record that ends the lane's chunk:
    /// the lane takes its next chunk here rather than on the general path,
    /// so that the call pays the pool's CAS and little more. Out of line:
    /// the common case keeps its values in registers.
    #[cold]
    #[inline(never)]
    fn log_in_next_chunk(
        &self,
        lanes: &LaneSet,
        t: &mut ThreadLane,
        timestamp: u64,
        level: u8,
        logger: &str,
        message: &str,
    ) -> Option<Result<(), WriteError>> {
        let basic = Basic {
            level,
            thread_id: 0,
            thread_name: &[],
            logger: logger.as_bytes(),
            message: message.as_bytes(),
        };
        let len = RECORD_HEADER_LEN + basic.encoded_len()?;
        let l = lanes.lanes();
        // Moves the writer to a new chunk and writes nothing (a padding
        // frame, if any, goes out with the record); `None` when the lane
        // can take none: the general path says why.
        t.writer.reserve(l, len).ok()?;
        // SAFETY: as in `log_in_lane`.
        let appended = unsafe {
            t.writer
                .append(l, len, (t.word2, timestamp), |buf| basic.encode(buf))
        };
        if !appended {
            return None;
        }
        wait::wake_after_publish(l.header());
        Some(self.check_segment())
    }

    /// The general path of [`Producer::log`]: claims a lane first if the
    /// thread has none, cuts a long message.
    #[inline(never)]
    fn log_general(&self, level: u8, logger: &str, message: &str) -> Result<(), WriteError> {
        let thread = identity::current_thread();
        let basic = Basic {
            level,
            thread_id: thread.id,
            thread_name: &thread.name,
            logger: logger.as_bytes(),
            message: message.as_bytes(),
        };
        match basic.encoded_len() {
            Some(len) if len <= self.max_payload() => {
                let (timestamp, flags) = self.now();
                let encode = |buf: &mut [u8]| basic.encode(buf);
                self.write_encoded(len, false, encode, timestamp, flags, Wait::Policy)
            }
            // Too long: the general path cuts it.
            _ => self.write(&basic.record()),
        }
    }

    /// Write a fully described record (thread fields as given), stamped now.
    /// A message too long for the segment's maximum record size is cut and
    /// marked; if the other fields leave no room for even the marker, the
    /// optional ones (`extra`, `pathname`, `func`, `module`) are left out.
    ///
    /// ```no_run
    /// use ringflush_producer::{level, Producer, Record};
    /// let log = Producer::open("/applog")?;
    /// log.write(&Record {
    ///     level: level::ERROR,
    ///     logger: b"app.http",
    ///     pathname: b"src/http.rs",
    ///     line: 42,
    ///     extra: br#"{"status": 503}"#,
    ///     message: b"upstream unavailable",
    ///     ..Record::default()
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A record too large for the ring loses the end of its message first
    /// (with a marker), then, if that is not enough, its optional fields
    /// (`extra`, file, function, module); either is counted in the
    /// segment's `truncated` and reported by the flusher.
    ///
    /// # Errors
    /// As [`Producer::log`]; [`WriteError::TooLarge`] when even without
    /// its message and optional fields the record does not fit.
    #[inline]
    pub fn write(&self, record: &Record<'_>) -> Result<(), WriteError> {
        let (timestamp, flags) = self.now();
        self.write_stamped(record, timestamp, flags, Wait::Policy)
    }

    /// A timestamp for now and its header flags.
    #[inline]
    fn now(&self) -> (u64, u32) {
        if self.tsc {
            (tsc::read_tsc(), FLAG_TSC)
        } else {
            (ringflush_ring::now_ns(), 0)
        }
    }

    /// Write a record with an explicit timestamp (realtime ns since the Unix
    /// epoch) instead of now.
    ///
    /// # Errors
    /// As [`Producer::write`].
    pub fn write_at(&self, record: &Record<'_>, timestamp_ns: u64) -> Result<(), WriteError> {
        self.write_stamped(record, timestamp_ns, 0, Wait::Policy)
    }

    /// [`Producer::write`] that never waits: see [`Producer::try_write_at`].
    ///
    /// # Errors
    /// As [`Producer::try_write_at`].
    pub fn try_write(&self, record: &Record<'_>) -> Result<(), WriteError> {
        let (timestamp, flags) = self.now();
        self.write_stamped(record, timestamp, flags, Wait::Never)
    }

    /// [`Producer::write_at`] that never waits: on a full ring it returns
    /// `Err(WriteError::Full)` at once and counts nothing, so that the caller
    /// can release what it holds (Python's GIL) before waiting in `write_at`.
    ///
    /// # Errors
    /// [`WriteError::Full`] at once on a full ring, whatever the
    /// [`FullPolicy`], counting nothing; [`WriteError::TooLarge`] and
    /// [`WriteError::Abandoned`] as for [`Producer::write`] (counted).
    pub fn try_write_at(&self, record: &Record<'_>, timestamp_ns: u64) -> Result<(), WriteError> {
        self.write_stamped(record, timestamp_ns, 0, Wait::Never)
    }

    #[inline]
    fn write_stamped(
        &self,
        record: &Record<'_>,
        timestamp: u64,
        flags: u32,
        wait: Wait,
    ) -> Result<(), WriteError> {
        let max_payload = self.max_payload();
        // By reference: a Record is 200 bytes, and moving it around cost more
        // than encoding it.
        let bare;
        let (record, enc, cut_fields) = match record.fit(max_payload) {
            Some(enc) => (record, enc, false),
            None => {
                bare = without_optional_fields(record);
                let enc = bare
                    .fit(max_payload)
                    .ok_or_else(|| self.drop_record(WriteError::TooLarge))?;
                (&bare, enc, true)
            }
        };
        let encode = |buf: &mut [u8]| record.encode(&enc, buf);
        // Losing the optional fields is a cut like the message's: counted.
        let truncated = cut_fields || enc.truncated();
        self.write_encoded(enc.len, truncated, encode, timestamp, flags, wait)
    }

    /// Write a record whose payload of `len` bytes `encode` fills: into this
    /// thread's lane when the segment has lanes and the thread can have one,
    /// else into the shared ring.
    #[inline]
    fn write_encoded(
        &self,
        len: usize,
        truncated: bool,
        encode: impl FnOnce(&mut [u8]),
        timestamp: u64,
        flags: u32,
        wait: Wait,
    ) -> Result<(), WriteError> {
        let pid = identity::pid();
        let record = Pending {
            len,
            truncated,
            timestamp,
            flags,
            wait,
        };
        let mut encode = Some(encode);
        if let Some(lanes) = &self.lanes {
            let registered = || self.registration.current(&self.segment, pid);
            let written = lanes.with_writer(pid, registered, |w, tag| {
                self.write_lane(lanes, w, pid, tag, &record, &mut encode)
            });
            if let Some(Some(result)) = written {
                return result;
            }
        }
        let Some(encode) = encode.take() else {
            return Ok(());
        };
        self.write_shared(pid, &record, encode)
    }

    /// Write into this thread's lane: `None` when the record must go to the
    /// shared ring instead (it is larger than a chunk, or no chunk is free;
    /// the lane is drained first, so that it does not overtake the writer's
    /// earlier records).
    #[inline]
    fn write_lane<E: FnOnce(&mut [u8])>(
        &self,
        lanes: &LaneSet,
        w: &mut LaneWriter,
        pid: u32,
        tag: u16,
        record: &Pending,
        encode: &mut Option<E>,
    ) -> Option<Result<(), WriteError>> {
        let l = lanes.lanes();
        let total = RECORD_HEADER_LEN + record.len;
        let slot = match w.reserve(l, total) {
            Ok(slot) => slot,
            // Larger than a chunk, or no chunk free (the other lanes hold
            // them: a quiet thread keeps the one it last wrote in): the
            // shared ring takes it, once the lane's records are written.
            Err(LaneFull::TooLarge | LaneFull::NoChunk) => {
                self.wait_lane_drained(l, w, record.wait);
                return None;
            }
            Err(_) => match self.wait_for_lane(l, w, total, record.wait) {
                Ok(slot) => slot,
                Err(e) => return Some(Err(e)),
            },
        };
        if record.truncated {
            self.count_truncated();
        }
        let stamp = Stamp {
            pid,
            flags: frame::flags_with_tag(record.flags, tag),
            timestamp: record.timestamp,
        };
        let encode = encode.take()?;
        if let Some(f) = &self.fault {
            return Some(self.write_lane_faulty(l, w, &slot, stamp, encode, f));
        }
        Some(self.commit_lane(l, w, &slot, stamp, encode))
    }

    /// Write the record reserved as `slot` in a lane and publish it.
    #[inline(always)]
    fn commit_lane(
        &self,
        l: &SharedLanes,
        w: &mut LaneWriter,
        slot: &LaneSlot,
        stamp: Stamp,
        encode: impl FnOnce(&mut [u8]),
    ) -> Result<(), WriteError> {
        w.stamp(l, slot, stamp);
        w.fill(l, slot, encode);
        w.publish(l, slot);
        wait::wake_after_publish(l.header());
        self.check_segment()
    }

    /// [`Producer::write_lane`]'s steps with the fault injection points.
    #[cold]
    fn write_lane_faulty(
        &self,
        l: &SharedLanes,
        w: &mut LaneWriter,
        slot: &LaneSlot,
        stamp: Stamp,
        encode: impl FnOnce(&mut [u8]),
        f: &Fault,
    ) -> Result<(), WriteError> {
        f.at(Point::AfterReserve);
        w.stamp(l, slot, stamp);
        f.at(Point::AfterHeader);
        w.fill(l, slot, |buf| {
            encode(buf);
            fault_mid_payload(f, buf);
        });
        f.at(Point::BeforeCommit);
        w.publish(l, slot);
        wait::wake_after_publish(l.header());
        self.check_segment()
    }

    /// Whether the segment is still there under this process (see
    /// [`WriteError::SegmentLost`]).
    #[inline]
    fn check_segment(&self) -> Result<(), WriteError> {
        if self.sigbus.lost() {
            return Err(self.segment_lost());
        }
        Ok(())
    }

    #[cold]
    fn count_truncated(&self) {
        let counters = &self.ring.header().counters;
        counters.truncated.fetch_add(1, Ordering::Relaxed);
    }

    /// Claim room in the shared ring, let `encode` fill it, commit.
    // Inlined into `write_encoded`, with `encode`: called out of line, the
    // shared path costs 70 instructions more per record (callgrind).
    #[inline(always)]
    fn write_shared(
        &self,
        pid: u32,
        record: &Pending,
        encode: impl FnOnce(&mut [u8]),
    ) -> Result<(), WriteError> {
        let header = self.ring.header();
        let tag = self.registration.check(&self.segment, pid);
        let stamp = Stamp {
            pid,
            flags: frame::flags_with_tag(record.flags, tag),
            timestamp: record.timestamp,
        };
        let claim = self.claim(RECORD_HEADER_LEN + record.len, stamp, record.wait)?;
        // Counted once the record has its place: a try_write that finds the
        // ring full, then a retry, must not count it twice.
        if record.truncated {
            self.count_truncated();
        }
        self.ring.fill(&claim, |buf| {
            encode(buf);
            if let Some(f) = &self.fault {
                fault_mid_payload(f, buf);
            }
        });
        if let Some(f) = &self.fault {
            f.at(Point::BeforeCommit);
        }
        self.ring.commit(claim).map_err(|_| WriteError::Abandoned)?;
        self.check_segment()?;
        wait::wake_flusher(header);
        Ok(())
    }

    /// Longest payload a record may have.
    #[inline]
    fn max_payload(&self) -> usize {
        self.ring.max_record() as usize - RECORD_HEADER_LEN
    }

    fn claim(
        &self,
        len: usize,
        stamp: Stamp,
        wait: Wait,
    ) -> Result<ringflush_ring::Claim, WriteError> {
        let reserved = self.reserve(len, wait)?;
        if let Some(f) = &self.fault {
            f.at(Point::AfterReserve);
        }
        let claim = self.ring.stamp(reserved, stamp);
        if let Some(f) = &self.fault {
            f.at(Point::AfterHeader);
        }
        Ok(claim)
    }

    /// Reserve space in the shared ring, applying the full-ring policy.
    fn reserve(&self, len: usize, wait: Wait) -> Result<Reserved, WriteError> {
        match self.ring.try_reserve(len, &self.head_cache) {
            Ok(r) => Ok(r),
            Err(ClaimError::BadLength) => Err(self.drop_record(WriteError::TooLarge)),
            Err(ClaimError::Full) => {
                self.block(wait, || self.ring.try_reserve(len, &self.head_cache).ok())
            }
        }
    }

    /// Room in this thread's lane once it had none, applying the full-ring
    /// policy (the flusher frees chunks as it writes them).
    #[cold]
    fn wait_for_lane(
        &self,
        l: &SharedLanes,
        w: &mut LaneWriter,
        len: usize,
        wait: Wait,
    ) -> Result<LaneSlot, WriteError> {
        self.block(wait, || w.reserve(l, len).ok())
    }

    /// Before a record too large for the lane goes to the shared ring: wait
    /// (as the full-ring policy allows) until the flusher has written what
    /// the lane holds, so that the record does not overtake it.
    #[cold]
    fn wait_lane_drained(&self, l: &SharedLanes, w: &LaneWriter, wait: Wait) {
        let FullPolicy::Block { timeout } = self.policy else {
            return;
        };
        let deadline = Instant::now() + timeout;
        while wait == Wait::Policy
            && !w.drained(l)
            && Instant::now() < deadline
            && self.segment.flusher_running()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The full-ring policy, once `attempt` found no room: `Full` at once
    /// for [`Wait::Never`] (counting nothing); else drop (counted) unless
    /// the policy blocks and a flusher runs, in which case wait for it to
    /// free space, trying `attempt` again, up to the timeout.
    #[cold]
    fn block<T>(
        &self,
        wait: Wait,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> Result<T, WriteError> {
        if wait == Wait::Never {
            return Err(WriteError::Full);
        }
        let FullPolicy::Block { timeout } = self.policy else {
            return Err(self.drop_record(WriteError::Full));
        };
        let header = self.ring.header();
        // Waiting only helps while a flusher drains: with none running, a
        // full ring stays full, and blocking every log call for the whole
        // timeout would stall the application. Drop (counted) instead; the
        // same while the control words are clobbered, until the flusher has
        // repaired them.
        if !self.segment.flusher_running() || self.ring.control_words_inconsistent() {
            return Err(self.drop_record(WriteError::Full));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let seq = wait::register_space_waiter(header);
            if let Some(found) = attempt() {
                wait::cancel_space_wait(header);
                return Ok(found);
            }
            let now = Instant::now();
            if now >= deadline {
                wait::cancel_space_wait(header);
                return Err(self.drop_record(WriteError::Full));
            }
            // Wake up now and then even without a flusher's wake-up, so a
            // deadline is never overslept by much.
            let nap = (deadline - now).min(Duration::from_millis(50));
            wait::wait_for_space(header, seq, nap);
        }
    }

    /// The mapping was replaced after a SIGBUS: say so once.
    #[cold]
    fn segment_lost(&self) -> WriteError {
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!(
                "ringflush: segment {} was truncated under this process (pid {}); its records are no longer written: open the producer again",
                self.name,
                std::process::id()
            );
        }
        WriteError::SegmentLost
    }

    fn drop_record(&self, why: WriteError) -> WriteError {
        self.ring
            .header()
            .counters
            .dropped
            .fetch_add(1, Ordering::Relaxed);
        why
    }

    /// Whether this producer created the segment (no process had it open:
    /// the first of a run), rather than joining one.
    pub fn created_segment(&self) -> bool {
        self.segment.created()
    }

    /// Longest record the segment accepts, its 32-byte header included;
    /// longer messages are truncated to fit.
    pub fn max_record(&self) -> u64 {
        self.ring.max_record()
    }
}

/// A record on its way, as the write paths pass it on.
struct Pending {
    /// Payload bytes.
    len: usize,
    /// It was cut to fit (counted once it has its place).
    truncated: bool,
    timestamp: u64,
    flags: u32,
    wait: Wait,
}

/// The fault injection point in the middle of a payload: half of it zeroed
/// (a writer killed while copying), then the fault.
fn fault_mid_payload(f: &Fault, buf: &mut [u8]) {
    if f.is_at(Point::MidPayload) {
        let half = buf.len() / 2;
        buf[half..].fill(0);
    }
    f.at(Point::MidPayload);
}

/// Whether a write on a full ring follows the producer's [`FullPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Policy,
    /// Return `Full` at once, counting nothing: the caller retries.
    Never,
}

/// The record without its optional fields (extra, location), for when the
/// others alone leave no room for the message. Rare: kept out of line.
#[cold]
#[inline(never)]
fn without_optional_fields<'a>(record: &Record<'a>) -> Record<'a> {
    Record {
        extra: b"",
        pathname: b"",
        func: b"",
        module: b"",
        ..*record
    }
}

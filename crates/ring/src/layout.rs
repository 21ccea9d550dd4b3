//! Shared-memory layout of a ringflush segment, layout version 5.1.
//!
//! A segment is one POSIX shared-memory object: a [`HEADER_SIZE`]-byte
//! [`SegmentHeader`] followed by `capacity` data bytes (a power of two): the
//! shared ring (all of it, or its first quarter when the segment has
//! lanes), then the lanes' chunk pool (see `lane.rs`). Every field
//! is an atomic because other processes read and write it concurrently; a
//! zero-filled page is a valid, "not yet initialised" header.
//!
//! Hot fields (`tail`, written by every producer; `head`, written by the
//! flusher; the flusher's sleep word) each own a 128-byte block so that they
//! never share a cache line (128 covers the adjacent-line prefetcher on x86).
//!
//! Versioning: `version` holds `major << 32 | minor` and is written last, with
//! Release, by the creator (Acquire on open, see `segment.rs`). A reader
//! accepts an equal major and any minor: minor versions only give meaning to
//! bytes that are zero in older segments.
//!
//! - 1.0: identity, tail, head, flusher, space, counters, batch.
//! - 1.1: the loss counters `repairs`, `lost_bytes` and `at_risk`; what the
//!   flusher has reported so far (`reported`), so that a restarted flusher
//!   tells each loss once; the producer registry (`producers`); and the
//!   running flusher's arguments (`flusher_args`).
//! - 2.0: the header as in 1.1; a record's `extra` may hold binary field
//!   entries ([`crate::fields::binary`], from the tracing layer) instead of
//!   a JSON object. A 1.x flusher would write them as an opaque string, so
//!   the major changes: each side refuses the other's segments.
//! - 3.0: liveness by lock, not by pid (`liveness.rs`): the flusher lock is
//!   an OFD lock on a byte of the segment file instead of an `flock`, each
//!   registered producer holds one on its slot's byte, a slot's word is
//!   `pid << 32 | registration` and its PID namespace is recorded
//!   ([`Producers::namespaces`]), and a record's header carries its writer's
//!   registration tag. A 2.x process would take a 3.0 flusher for absent
//!   (and start a second one) and judge writers by pid, so the major
//!   changes; the header is 8192 bytes.
//! - 4.0: lanes (`lane.rs`): per-writer SPSC lanes over a pool of chunks in
//!   the last three quarters of the data area, their control blocks
//!   ([`SegmentHeader::lanes`]) and the pool's owners
//!   ([`SegmentHeader::pool`]); the identity gains the shared ring's size,
//!   the chunk size and count and the lane count; a pending batch names its
//!   lanes ([`PendingBatch::lanes`]); `late` counts records the merge
//!   window could not order. A 3.x process would read the first quarter as
//!   the whole ring, so the major changes.
//! - 4.1: rollover requests (`Producers::rollover_requests`, `rollovers_done`,
//!   `rollover_done_ns`) in bytes 4.0 left zero: a 4.0 flusher ignores them
//!   (a request then times out), so the minor changes.
//! - 4.2: `Producers::closing`, the flag an idle flusher raises before it
//!   removes the segment (`closing.rs`), in bytes 4.1 left zero: a 4.1
//!   flusher never raises it, and a 4.1 producer that ignores it can only
//!   lose the race `closing.rs` closes, so the minor changes; and
//!   [`SegmentHeader::log_file`], after the pool, in bytes 4.1 left zero.
//! - 5.0: a lane's owner names its thread once ([`LaneOwner::thread_name`],
//!   in the control block's padding), and the log call's records in that
//!   lane leave thread id and name out, flagged `frame::FLAG_LANE_THREAD`.
//!   A 4.x flusher would write them without a thread, so the major changes.
//! - 5.1: a lane's spare chunks ([`LaneHead::spares`], in the head block's
//!   padding), which the flusher takes from the pool for a writer ahead of
//!   its chunk switches, so that a switch needs no CAS. A 5.0 writer never
//!   takes them (it takes chunks from the pool as before) and a 5.0
//!   flusher never offers any, so the minor changes; a 5.0 flusher that
//!   takes over a 5.1 segment leaves the spares offered before it held
//!   until a 5.1 flusher recycles the lane (they never hold more than an
//!   eighth of the pool: see `lane.rs`).

use crate::sync::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// `b"RNGFLUSH"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RNGFLUSH");
/// Layout major version: a segment with another major is refused on open
/// ([`crate::OpenErrorKind::IncompatibleVersion`]).
pub const VERSION_MAJOR: u32 = 5;
/// Layout minor version: any minor of the same major is accepted, since a
/// minor only gives meaning to bytes that older segments leave zero.
pub const VERSION_MINOR: u32 = 1;
/// The packed version as stored in [`Identity::version`].
pub const VERSION: u64 = (VERSION_MAJOR as u64) << 32 | VERSION_MINOR as u64;
/// Bytes before the data ring; the ring therefore starts page-aligned.
pub const HEADER_SIZE: usize = 40960;
/// Smallest ring capacity in bytes (64 KiB).
pub const MIN_CAPACITY: u64 = 64 * 1024;
/// Record lengths are 30-bit fields (see `frame.rs`), so a padding record,
/// always shorter than the ring, must fit in 30 bits.
pub const MAX_CAPACITY: u64 = 1 << 30;
/// Ring capacity in bytes when none is given (8 MiB): several segments, one
/// per log file, fit in a container's default 64 MiB `/dev/shm`, and at
/// ~100-byte records it holds ~60,000 records, a few milliseconds of the
/// flusher's work.
pub const DEFAULT_CAPACITY: u64 = 8 << 20;
/// Longest record in bytes, header included, when none is given (1 MiB),
/// lowered to a quarter of the capacity for smaller rings.
pub const DEFAULT_MAX_RECORD: u64 = 1 << 20;

/// Lanes a segment gets when none is asked for, at most: every lane there
/// is, fewer on a small ring ([`default_lanes`]).
pub const DEFAULT_LANES: u64 = LANES as u64;

/// Lanes a segment of `capacity` bytes gets when none is asked for: up to
/// [`DEFAULT_LANES`], and no more than half its chunks, since a lane whose
/// thread is quiet keeps the chunk it last wrote in (the other half stays
/// for the busy ones). 64 for the default 8 MiB (192 chunks), 6 for the
/// smallest ring of 64 KiB (12 chunks).
pub fn default_lanes(capacity: u64) -> u64 {
    let chunks = Geometry::new(capacity, 1).chunk_count;
    (chunks / 2).clamp(1, DEFAULT_LANES)
}
/// The smallest chunk of the lanes' pool.
pub const MIN_CHUNK: u64 = 4096;

/// (4.0) How a segment's data area is laid out: the shared ring first, then
/// (with lanes) the pool of chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of data in all.
    pub capacity: u64,
    /// Bytes of the shared ring: all of it without lanes, else a quarter.
    pub shared: u64,
    /// Bytes per chunk (0 without lanes).
    pub chunk_size: u64,
    /// Chunks in the pool.
    pub chunk_count: u64,
    /// Lanes.
    pub lanes: u64,
}

impl Geometry {
    /// The layout of `capacity` data bytes (a power of two) with `lanes`
    /// lanes (at most [`LANES`]): the shared ring takes the first quarter,
    /// and the pool the rest in chunks of `capacity / 256` bytes (at least
    /// [`MIN_CHUNK`], at most [`MAX_CHUNKS`] of them); no lanes, no pool.
    pub fn new(capacity: u64, lanes: u64) -> Self {
        if lanes == 0 {
            return Self {
                capacity,
                shared: capacity,
                chunk_size: 0,
                chunk_count: 0,
                lanes: 0,
            };
        }
        let chunk_size = (capacity / 256).max(MIN_CHUNK);
        let shared = capacity / 4;
        Self {
            capacity,
            shared,
            chunk_size,
            chunk_count: ((capacity - shared) / chunk_size).min(MAX_CHUNKS as u64),
            lanes: lanes.min(LANES as u64),
        }
    }

    /// The layout a segment's identity records.
    pub fn read(id: &Identity) -> Self {
        Self {
            capacity: id.capacity.load(Ordering::Relaxed),
            shared: id.shared_capacity.load(Ordering::Relaxed),
            chunk_size: id.chunk_size.load(Ordering::Relaxed),
            chunk_count: id.chunk_count.load(Ordering::Relaxed),
            lanes: id.lanes.load(Ordering::Relaxed),
        }
    }

    /// Record it in a segment's identity (its creator does).
    pub fn write(&self, id: &Identity) {
        id.capacity.store(self.capacity, Ordering::Relaxed);
        id.shared_capacity.store(self.shared, Ordering::Relaxed);
        id.chunk_size.store(self.chunk_size, Ordering::Relaxed);
        id.chunk_count.store(self.chunk_count, Ordering::Relaxed);
        id.lanes.store(self.lanes, Ordering::Relaxed);
    }

    /// Whether a layout read from a segment is one [`Geometry::new`] makes
    /// (anything else was clobbered, or made by another build).
    pub fn is_valid(&self) -> bool {
        self.capacity.is_power_of_two()
            && self.lanes <= LANES as u64
            && *self == Self::new(self.capacity, self.lanes)
    }
}

/// Written once by the creator; read-only afterwards.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Identity {
    /// [`MAGIC`]; any other non-zero value means the object is not a
    /// ringflush segment.
    pub magic: AtomicU64,
    /// `major << 32 | minor`; 0 until the creator has finished (written last).
    pub version: AtomicU64,
    /// Bytes in the data ring, a power of two.
    pub capacity: AtomicU64,
    /// Longest record (header included) a producer may claim; <= capacity / 4.
    pub max_record: AtomicU64,
    /// Realtime ns since the Unix epoch at which the segment was created.
    pub created_ns: AtomicU64,
    /// Pid of the process that created the segment.
    pub creator_pid: AtomicU64,
    /// (4.0) Bytes of the shared ring (a power of two): `capacity` without
    /// lanes, else a quarter of it; the pool follows it.
    pub shared_capacity: AtomicU64,
    /// (4.0) Bytes per pool chunk (a power of two), 0 without lanes.
    pub chunk_size: AtomicU64,
    /// (4.0) Chunks in the pool, at most [`MAX_CHUNKS`].
    pub chunk_count: AtomicU64,
    /// (4.0) Lanes in use, at most [`LANES`] (0: every writer shares the ring).
    pub lanes: AtomicU64,
}

/// A monotonically increasing 64-bit byte position on its own cache lines.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Position(pub AtomicU64);

/// What the running flusher publishes about itself.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct FlusherState {
    /// Futex word: 1 while the flusher is (about to go) asleep. Producers read
    /// it after each commit and wake the flusher only when it is 1.
    pub sleeping: AtomicU32,
    /// Pid of the flusher that last ran (0: never ran).
    pub pid: AtomicU32,
    /// Realtime ns of the flusher's last loop; stale means dead or stuck.
    pub heartbeat_ns: AtomicU64,
    /// Realtime ns since the Unix epoch at which that flusher started.
    pub started_ns: AtomicU64,
    /// Last write error (errno) of the flusher, 0 when writing works.
    pub write_errno: AtomicU32,
    /// Reserved: zero in layout 1.0 (a later minor version may use it).
    pub _reserved: AtomicU32,
    /// (3.0) The flusher's PID namespace (`liveness::pid_namespace`): its
    /// pid means something only there.
    pub pid_namespace: AtomicU64,
}

/// Producers blocked on a full ring sleep on `seq`; the flusher bumps it and
/// wakes them after advancing head, but only when `waiters` is non-zero.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct SpaceWait {
    /// Futex word the waiting producers sleep on; it wraps.
    pub seq: AtomicU32,
    /// Producers registered as waiting for space right now.
    pub waiters: AtomicU32,
}

/// Event counters, all monotonically increasing.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Counters {
    /// Records the flusher has written to the log file.
    pub written: AtomicU64,
    /// Records producers dropped because the ring stayed full.
    pub dropped: AtomicU64,
    /// Claimed records the flusher skipped because their writer died or stalled.
    pub abandoned: AtomicU64,
    /// Regions of the ring whose headers or payloads failed validation.
    pub corrupt: AtomicU64,
    /// Records whose message was cut to the segment's maximum record size.
    pub truncated: AtomicU64,
    /// Commits that came after the flusher had already abandoned the record.
    pub late_commits: AtomicU64,
    /// (1.1) Times the flusher repaired the segment: inconsistent control
    /// words reset, or a truncated object restored to its size.
    pub repairs: AtomicU64,
    /// (1.1) Ring bytes given up by those repairs, whose records could not
    /// be told apart and counted one by one.
    pub lost_bytes: AtomicU64,
    /// (1.1) Records written into a log file that had been moved away while
    /// they were being written (logrotate without `delaycompress` may delete
    /// it before they are read).
    pub at_risk: AtomicU64,
    /// (4.0) Records that became visible after the merge window had passed
    /// their time and later records were written: written when they
    /// arrived, out of time order (or into the file of a later period).
    /// Not a loss.
    pub late: AtomicU64,
}

impl Counters {
    /// The loss counters by name, in report order, with their values.
    pub fn losses(&self) -> [(&'static str, &AtomicU64); 8] {
        [
            ("dropped", &self.dropped),
            ("truncated", &self.truncated),
            ("abandoned", &self.abandoned),
            ("corrupt", &self.corrupt),
            ("late_commits", &self.late_commits),
            ("repairs", &self.repairs),
            ("lost_bytes", &self.lost_bytes),
            ("at_risk", &self.at_risk),
        ]
    }
}

/// Slots in the producer registry.
#[cfg(not(loom))]
pub const PRODUCER_SLOTS: usize = 256;
/// Slots in the producer registry (few under loom, which models every atomic).
#[cfg(loom)]
pub const PRODUCER_SLOTS: usize = 2;

/// (1.1) The processes that have the segment open to write: the flusher
/// keeps a segment that was removed or replaced until none is left, tells
/// whether a stuck record's writer lives, and `stat` lists them. A producer
/// registers when it opens the segment and in a forked child at its first
/// record, and deregisters when dropped; while registered it holds its
/// slot's lock (`liveness.rs`), which the kernel drops when it dies, and the
/// flusher frees the slots of those whose lock is gone. See `registry.rs`.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct Producers {
    /// Producers that found no free slot (the registry is then incomplete).
    pub overflow: AtomicU64,
    /// (3.0) Registrations so far: each takes the next number, the low 32
    /// bits of which go into its slot's word.
    pub registrations: AtomicU64,
    /// (4.1) Rollovers asked for (`doRollover()`, `ringflush rotate`):
    /// each request adds one and waits for [`Producers::rollovers_done`]
    /// to reach its number.
    pub rollover_requests: AtomicU64,
    /// (4.1) The request count the flusher's last requested rollover
    /// served (stored with Release once the new file is open): requests
    /// made before it rolled are all served by that one rollover.
    pub rollovers_done: AtomicU64,
    /// (4.1) When that rollover was made (realtime ns).
    pub rollover_done_ns: AtomicU64,
    /// (4.2) 1 while an idle flusher is deciding to remove the segment, and
    /// for good once it has (see `closing.rs`): a producer that registered
    /// and then reads 1 waits for the decision before it writes.
    pub closing: AtomicU64,
    /// Reserved: zero.
    pub _reserved: [AtomicU64; 10],
    /// (3.0) One process each: `pid << 32 | registration`, 0 when free;
    /// the pid is for display (it means something only in the PID
    /// namespace beside it), the registration tells this process from a
    /// later one in the same slot. One word, so that taking, leaving and
    /// freeing a slot are each a single CAS.
    pub slots: [AtomicU64; PRODUCER_SLOTS],
    /// (3.0) Each slot's PID namespace (`liveness::pid_namespace`), written
    /// before its word.
    pub namespaces: [AtomicU64; PRODUCER_SLOTS],
}

impl Default for Producers {
    fn default() -> Self {
        Self {
            overflow: AtomicU64::default(),
            registrations: AtomicU64::default(),
            rollover_requests: AtomicU64::default(),
            rollovers_done: AtomicU64::default(),
            rollover_done_ns: AtomicU64::default(),
            closing: AtomicU64::default(),
            _reserved: Default::default(),
            slots: std::array::from_fn(|_| AtomicU64::default()),
            namespaces: std::array::from_fn(|_| AtomicU64::default()),
        }
    }
}

/// The flusher's in-flight batch, for crash recovery (positions, file identity).
///
/// Written before the batch's first write(2) and cleared once its ring
/// range and its lanes' records are released, so that the next flusher can
/// tell how much of it reached the file.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct PendingBatch {
    /// Shared-ring position of the batch's first record (the head it was
    /// drained from).
    pub start: AtomicU64,
    /// Shared-ring position just past the batch's last record (`start`
    /// when it has none from the shared ring).
    pub end: AtomicU64,
    /// Device number (`st_dev`) of the log file the batch is written to.
    pub file_dev: AtomicU64,
    /// Inode number (`st_ino`) of that log file.
    pub file_ino: AtomicU64,
    /// Size in bytes of the log file before the batch's first write.
    pub file_size: AtomicU64,
    /// Length in bytes of the batch's formatted text.
    pub bytes: AtomicU64,
    /// (4.0) The lanes the batch has records of, one bit each; each such
    /// lane's `batch_end` says how far.
    pub lanes: AtomicU64,
    /// (4.0) 1 while a batch is pending, 0 otherwise. Stored last, with
    /// Release: 1 makes the other fields (and the lanes' `batch_end`) valid.
    pub pending: AtomicU64,
}

/// Bytes of the running flusher's arguments kept in the segment.
pub const FLUSHER_ARGS_BYTES: usize = 760;

/// (1.1) The running flusher's command-line arguments (after the program
/// name), joined by NUL bytes and cut to [`FLUSHER_ARGS_BYTES`]: a process
/// that would start a flusher for the same segment compares its own
/// arguments with them, and says so when they differ.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct FlusherArgs {
    /// Bytes used in `text`; 0 while it is being written or never was.
    pub len: AtomicU64,
    /// The text, 8 bytes a word, little-endian.
    pub text: [AtomicU64; FLUSHER_ARGS_BYTES / 8],
}

impl Default for FlusherArgs {
    fn default() -> Self {
        Self {
            len: AtomicU64::default(),
            text: std::array::from_fn(|_| AtomicU64::default()),
        }
    }
}

impl FlusherArgs {
    /// Store `args` joined by NUL bytes, cut to [`FLUSHER_ARGS_BYTES`]. Only
    /// the flusher that holds the segment's lock calls this.
    pub fn store<S: AsRef<str>>(&self, args: &[S]) {
        let mut text = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                text.push(0);
            }
            text.extend_from_slice(a.as_ref().as_bytes());
        }
        text.truncate(FLUSHER_ARGS_BYTES);
        self.len.store(0, Ordering::Relaxed);
        for (word, chunk) in self.text.iter().zip(text.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        // Release: pairs with the Acquire in `load`; the words come first.
        self.len.store(text.len() as u64, Ordering::Release);
    }

    /// The arguments as stored (empty when none were).
    pub fn load(&self) -> Vec<String> {
        // Acquire: pairs with the Release in `store`.
        let len = (self.len.load(Ordering::Acquire) as usize).min(FLUSHER_ARGS_BYTES);
        let mut text: Vec<u8> = self
            .text
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .collect();
        text.truncate(len);
        if text.is_empty() {
            return Vec::new();
        }
        text.split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }
}

/// Lanes in a segment at most: a pending batch names its lanes in a `u64`.
#[cfg(not(loom))]
pub const LANES: usize = 64;
/// Lanes in a segment at most (few under loom).
#[cfg(loom)]
pub const LANES: usize = 2;

/// Chunks in the pool at most, and entries in a lane's chunk table.
#[cfg(not(loom))]
pub const MAX_CHUNKS: usize = 192;
/// Chunks in the pool at most (few under loom).
#[cfg(loom)]
pub const MAX_CHUNKS: usize = 4;

/// (4.0) The end of a lane its writer stores: written by its owner only.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct LaneTail {
    /// Lane position just past the last published record (see `lane.rs`).
    pub tail: AtomicU64,
}

/// (4.0) The end of a lane the flusher stores: written by the flusher only.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct LaneHead {
    /// Everything below it is written and its chunks are back in the pool.
    pub head: AtomicU64,
    /// Lane position just past the pending batch's last record of this lane
    /// (valid while the lane's bit is set in [`PendingBatch::lanes`]).
    pub batch_end: AtomicU64,
    /// (5.1) Each 0, or a chunk of the pool plus one that the flusher took
    /// for the lane's writer, which takes it at a chunk switch and stores 0
    /// (see `lane.rs`, (L6)).
    pub spares: [AtomicU32; SPARES],
}

/// (5.1) Spare chunks a lane holds at most: enough for a writer of 150 MB/s
/// through 32 KiB chunks (5 a millisecond) for three polls of a busy
/// flusher (1 ms apart).
#[cfg(not(loom))]
pub const SPARES: usize = 16;
/// Spare chunks a lane holds at most (few under loom).
#[cfg(loom)]
pub const SPARES: usize = 2;

/// (4.0) Who owns a lane, and the chunks its positions map to.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct LaneOwner {
    /// 0 when free; else `state << 62 | claim << 32 | registration` (see
    /// `lane.rs`).
    pub owner: AtomicU64,
    /// The owning thread's id (`gettid`), for `stat`.
    pub thread_id: AtomicU64,
    /// The pool chunk of each chunk-sized stretch of lane positions:
    /// entry `(position / chunk_size) % MAX_CHUNKS`.
    pub chunks: [AtomicU8; MAX_CHUNKS],
    /// (5.0) The length of the owning thread's name in `thread_name`: at
    /// most [`THREAD_NAME_BYTES`], or 0 when the name is longer (its
    /// records then carry it themselves).
    pub thread_name_len: AtomicU64,
    /// (5.0) The owning thread's name, little-endian bytes, written with
    /// the claim before the lane's first record (so (L1) publishes it).
    pub thread_name: [AtomicU64; THREAD_NAME_BYTES / 8],
}

/// (5.0) Bytes of a thread name a lane's owner block holds.
pub const THREAD_NAME_BYTES: usize = 40;

impl Default for LaneOwner {
    fn default() -> Self {
        Self {
            owner: AtomicU64::default(),
            thread_id: AtomicU64::default(),
            chunks: std::array::from_fn(|_| AtomicU8::default()),
            thread_name_len: AtomicU64::default(),
            thread_name: std::array::from_fn(|_| AtomicU64::default()),
        }
    }
}

/// (4.0) One lane's control words, each writer's on lines of their own.
#[repr(C)]
#[derive(Debug, Default)]
pub struct LaneControl {
    /// Its writer's end.
    pub tail: LaneTail,
    /// The flusher's end.
    pub head: LaneHead,
    /// Its owner and chunk table.
    pub owner: LaneOwner,
}

/// (4.0) The chunk pool: who holds each chunk.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct Pool {
    /// 0 when free, else the holding lane's index plus one.
    pub owners: [AtomicU32; MAX_CHUNKS],
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            owners: std::array::from_fn(|_| AtomicU32::default()),
        }
    }
}

/// The first [`HEADER_SIZE`] bytes of a segment.
#[repr(C)]
#[derive(Debug)]
pub struct SegmentHeader {
    /// What the segment is; written once by its creator.
    pub identity: Identity,
    /// Next position to claim. Producers CAS it forward.
    pub tail: Position,
    /// Everything below head is consumed and zeroed. Only the flusher stores it.
    pub head: Position,
    /// What the running (or last) flusher publishes about itself.
    pub flusher: FlusherState,
    /// Where producers wait for space on a full ring.
    pub space: SpaceWait,
    /// Loss and progress counters.
    pub counters: Counters,
    /// The flusher's batch in flight, for crash recovery.
    pub batch: PendingBatch,
    /// (1.1) The loss counters' values the flushers have reported so far.
    pub reported: Counters,
    /// (1.1) The processes registered as producers.
    pub producers: Producers,
    /// (1.1) The running flusher's arguments.
    pub flusher_args: FlusherArgs,
    /// (4.0) The lanes' control blocks.
    pub lanes: [LaneControl; LANES],
    /// (4.0) The chunk pool.
    pub pool: Pool,
    /// (4.2) The absolute path of the log file the last flusher wrote (one
    /// "argument", cut to [`FLUSHER_ARGS_BYTES`]): `stat` and `ls` name it.
    pub log_file: FlusherArgs,
}

impl Default for SegmentHeader {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            tail: Position::default(),
            head: Position::default(),
            flusher: FlusherState::default(),
            space: SpaceWait::default(),
            counters: Counters::default(),
            batch: PendingBatch::default(),
            reported: Counters::default(),
            producers: Producers::default(),
            flusher_args: FlusherArgs::default(),
            lanes: std::array::from_fn(|_| LaneControl::default()),
            pool: Pool::default(),
            log_file: FlusherArgs::default(),
        }
    }
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<AtomicU64>() == 8 && align_of::<AtomicU64>() == 8);
    assert!(size_of::<SegmentHeader>() <= HEADER_SIZE);
    assert!(size_of::<Counters>() == 128);
    assert!(size_of::<FlusherArgs>() == 768);
    assert!(size_of::<LaneControl>() == 512);
    assert!(size_of::<Pool>() == MAX_CHUNKS * 4);
    assert!(MAX_CHUNKS <= u8::MAX as usize);
    assert!(
        size_of::<SegmentHeader>()
            == 8 * 128 + 128 + 2 * PRODUCER_SLOTS * 8 + 768 + LANES * 512 + MAX_CHUNKS * 4 + 768
    );
    assert!(offset_of!(SegmentHeader, lanes) == 8 * 128 + 128 + 2 * PRODUCER_SLOTS * 8 + 768);
    assert!(offset_of!(LaneControl, head) == 128);
    assert!(size_of::<LaneHead>() == 128 && offset_of!(LaneHead, spares) == 16);
    assert!(offset_of!(LaneControl, owner) == 256);
    assert!(offset_of!(LaneOwner, chunks) == 16);
    assert!(offset_of!(LaneOwner, thread_name) == 16 + MAX_CHUNKS + 8);
    assert!(size_of::<LaneOwner>() == 256);
    assert!(offset_of!(Identity, lanes) == 72);
    assert!(offset_of!(PendingBatch, pending) == 56);
    assert!(offset_of!(Counters, late) == 72);
    assert!(align_of::<SegmentHeader>() == 128);
    assert!(offset_of!(SegmentHeader, identity) == 0);
    assert!(
        offset_of!(SegmentHeader, log_file) == offset_of!(SegmentHeader, pool) + MAX_CHUNKS * 4
    );
    assert!(offset_of!(Identity, version) == 8);
    assert!(offset_of!(Identity, capacity) == 16);
    assert!(offset_of!(SegmentHeader, tail) == 128);
    assert!(offset_of!(SegmentHeader, head) == 256);
    assert!(offset_of!(SegmentHeader, flusher) == 384);
    assert!(offset_of!(FlusherState, heartbeat_ns) == 8);
    assert!(offset_of!(FlusherState, pid_namespace) == 32);
    assert!(offset_of!(SegmentHeader, space) == 512);
    assert!(offset_of!(SegmentHeader, counters) == 640);
    assert!(offset_of!(SegmentHeader, batch) == 768);
    assert!(offset_of!(Counters, late_commits) == 40);
    assert!(offset_of!(Counters, at_risk) == 64);
    assert!(offset_of!(SegmentHeader, reported) == 896);
    assert!(offset_of!(SegmentHeader, producers) == 1024);
    assert!(offset_of!(Producers, registrations) == 8);
    assert!(offset_of!(Producers, rollover_requests) == 16);
    assert!(offset_of!(Producers, rollovers_done) == 24);
    assert!(offset_of!(Producers, rollover_done_ns) == 32);
    assert!(offset_of!(Producers, closing) == 40);
    assert!(offset_of!(Producers, slots) == 128);
    assert!(offset_of!(Producers, namespaces) == 128 + PRODUCER_SLOTS * 8);
    assert!(HEADER_SIZE % 4096 == 0);
    assert!(MAX_CAPACITY <= 1 << 30);
};

//! Shared-memory layout of a ringflush segment, layout version 3.0.
//!
//! A segment is one POSIX shared-memory object: an 8192-byte [`SegmentHeader`]
//! followed by the data ring of `capacity` bytes (a power of two). Every field
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

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// `b"RNGFLUSH"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RNGFLUSH");
/// Layout major version: a segment with another major is refused on open
/// ([`crate::OpenErrorKind::IncompatibleVersion`]).
pub const VERSION_MAJOR: u32 = 3;
/// Layout minor version: any minor of the same major is accepted, since a
/// minor only gives meaning to bytes that older segments leave zero.
pub const VERSION_MINOR: u32 = 0;
/// The packed version as stored in [`Identity::version`].
pub const VERSION: u64 = (VERSION_MAJOR as u64) << 32 | VERSION_MINOR as u64;
/// Bytes before the data ring; the ring therefore starts page-aligned.
pub const HEADER_SIZE: usize = 8192;
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
    /// Reserved: zero.
    pub _reserved: [AtomicU64; 14],
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
            _reserved: Default::default(),
            slots: std::array::from_fn(|_| AtomicU64::default()),
            namespaces: std::array::from_fn(|_| AtomicU64::default()),
        }
    }
}

/// The flusher's in-flight batch, for crash recovery (positions, file identity).
///
/// Written before the batch's first write(2) and cleared once its ring
/// range is released, so that the next flusher can tell how much of it
/// reached the file.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct PendingBatch {
    /// Ring position of the batch's first record (the head it was drained
    /// from).
    pub start: AtomicU64,
    /// Ring position just past the batch's last record; 0 when no batch is
    /// pending. Stored last, with Release: a non-zero `end` makes the other
    /// fields valid.
    pub end: AtomicU64,
    /// Device number (`st_dev`) of the log file the batch is written to.
    pub file_dev: AtomicU64,
    /// Inode number (`st_ino`) of that log file.
    pub file_ino: AtomicU64,
    /// Size in bytes of the log file before the batch's first write.
    pub file_size: AtomicU64,
    /// Length in bytes of the batch's formatted text.
    pub bytes: AtomicU64,
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

/// The first [`HEADER_SIZE`] bytes of a segment.
#[repr(C)]
#[derive(Debug, Default)]
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
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<AtomicU64>() == 8 && align_of::<AtomicU64>() == 8);
    assert!(size_of::<SegmentHeader>() <= HEADER_SIZE);
    assert!(size_of::<Counters>() == 128);
    assert!(size_of::<FlusherArgs>() == 768);
    assert!(size_of::<SegmentHeader>() == 8 * 128 + 128 + 2 * PRODUCER_SLOTS * 8 + 768);
    assert!(align_of::<SegmentHeader>() == 128);
    assert!(offset_of!(SegmentHeader, identity) == 0);
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
    assert!(offset_of!(Producers, slots) == 128);
    assert!(offset_of!(Producers, namespaces) == 128 + PRODUCER_SLOTS * 8);
    assert!(HEADER_SIZE % 4096 == 0);
    assert!(MAX_CAPACITY <= 1 << 30);
};

//! POSIX shared-memory segments: create or open by name, validate, map.
//!
//! Creation follows Aeron's rule: the creator (whoever wins `O_CREAT |
//! O_EXCL`) sizes the object, fills the header and writes `version` last with
//! Release; everyone else maps it and waits, bounded, for that Acquire to see
//! a non-zero version. Nothing beyond the size reported by `fstat` is ever
//! mapped and the header is validated before the ring is touched, so a wrong
//! or truncated object is an [`OpenError`], never SIGBUS or a panic. (A
//! process that shrinks the object after it was mapped can still cause SIGBUS;
//! that needs write access to the segment, which is 0600 by default.)

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::Mode;
use rustix::shm;

use crate::lane::{LaneReader, Lanes};
use crate::layout::{self, Geometry, SegmentHeader, HEADER_SIZE};
use crate::liveness::{self, FLUSHER_BYTE};
use crate::region::{RawRegion, Region};
use crate::ring::{Consumer, Ring};
use crate::sigbus;
use crate::sync::Ordering;

mod error;
mod unused;
pub use error::{LockError, OpenError, OpenErrorKind};

/// How to open or create a segment.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Create the segment when it does not exist.
    pub create: bool,
    /// Data bytes for a segment this call creates (power of two): the
    /// shared ring and, with lanes, the lanes' pool (see [`Geometry`]).
    pub capacity: u64,
    /// Lanes for a segment this call creates (at most [`layout::LANES`];
    /// 0: every writer shares the ring); `None`:
    /// [`layout::default_lanes`] of its capacity.
    pub lanes: Option<u64>,
    /// When set, an existing segment must have exactly this capacity.
    pub require_capacity: bool,
    /// Longest record, header included; defaults to min(1 MiB, a quarter
    /// of the shared ring).
    pub max_record: Option<u64>,
    /// Permission bits of a segment this call creates, and the most an
    /// existing one may allow: one writable by group or others beyond these
    /// bits is refused ([`OpenErrorKind::TooWritable`]), since whoever can write
    /// the ring can read every record and forge any.
    pub mode: u32,
    /// Accept an existing segment owned by another user (a shared setup);
    /// refused by default ([`OpenErrorKind::ForeignOwner`]): another local user
    /// could create the name first to read the application's logs.
    pub allow_foreign: bool,
    /// How long to wait for another process to finish creating the segment.
    pub ready_timeout: Duration,
    /// Fault in the whole mapping now (producers and the flusher, so no log
    /// call pays a page fault); inspectors such as `stat` turn it off.
    pub prefault: bool,
    /// Open as the flusher: a segment this call creates has its flusher lock
    /// taken and a heartbeat published before it is, so that producers that
    /// open it at once see a flusher running (then call
    /// [`Segment::acquire_consumer`], which takes the same lock).
    pub flusher: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            create: true,
            capacity: layout::DEFAULT_CAPACITY,
            lanes: None,
            require_capacity: false,
            max_record: None,
            mode: 0o600,
            allow_foreign: false,
            ready_timeout: Duration::from_secs(2),
            prefault: true,
            flusher: false,
        }
    }
}

impl SegmentOptions {
    /// Options for looking at any existing segment (`stat`, `rm`): no
    /// creation, no prefault, no owner or mode rule.
    pub fn inspect() -> Self {
        Self {
            create: false,
            mode: 0o777,
            allow_foreign: true,
            prefault: false,
            ..Self::default()
        }
    }
}

/// A flusher whose heartbeat is older than this is taken for stopped (it
/// beats at least every 250 ms while it runs).
pub const FLUSHER_STALLED_AFTER: Duration = Duration::from_secs(3);

/// Where Linux keeps a POSIX shared-memory object.
pub fn shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

fn check_name(name: &str) -> Result<(), OpenErrorKind> {
    let ok = name.len() > 1
        && name.len() <= 255
        && name.starts_with('/')
        && !name[1..].contains('/')
        && !name.contains('\0')
        && name != "/."
        && name != "/..";
    if ok {
        Ok(())
    } else {
        Err(OpenErrorKind::InvalidName)
    }
}

/// Check a capacity, a lane count and a maximum record size; returns the
/// layout and the maximum record size (`max_record`, or by default
/// min([`layout::DEFAULT_MAX_RECORD`], a quarter of the shared ring)).
///
/// # Errors
/// [`OpenErrorKind::InvalidOption`] when `capacity` is not a power of two in
/// [`layout::MIN_CAPACITY`]`..=`[`layout::MAX_CAPACITY`], `lanes` is above
/// [`layout::LANES`], or the maximum record size is below 256 bytes or
/// above a quarter of the shared ring.
pub fn check_sizes(
    capacity: u64,
    lanes: u64,
    max_record: Option<u64>,
) -> Result<(Geometry, u64), OpenErrorKind> {
    if !capacity.is_power_of_two()
        || !(layout::MIN_CAPACITY..=layout::MAX_CAPACITY).contains(&capacity)
    {
        return Err(OpenErrorKind::InvalidOption {
            reason: format!(
                "ring size {capacity} must be a power of two between {} and {} bytes",
                layout::MIN_CAPACITY,
                layout::MAX_CAPACITY
            ),
        });
    }
    if lanes > layout::LANES as u64 {
        return Err(OpenErrorKind::InvalidOption {
            reason: format!("{lanes} lanes: at most {} are possible", layout::LANES),
        });
    }
    let geometry = Geometry::new(capacity, lanes);
    let quarter = geometry.shared / 4;
    let max = max_record.unwrap_or(layout::DEFAULT_MAX_RECORD.min(quarter));
    if max < 256 || max > quarter {
        return Err(OpenErrorKind::InvalidOption {
            reason: format!(
                "maximum record size {max} must be between 256 bytes and a quarter of the shared ring ({quarter})"
            ),
        });
    }
    Ok((geometry, max))
}

/// A segment's descriptor and mapping, shared by the [`Segment`] and every
/// ring handle made from it, so a handle never outlives its memory.
struct Mapping {
    fd: OwnedFd,
    map: MmapRaw,
    /// Whether a [`SegmentConsumer`] of this mapping exists: the flusher lock
    /// is per open file, so a second one in this process would get it again.
    consumer_taken: AtomicBool,
}

impl Mapping {
    fn header(&self) -> NonNull<SegmentHeader> {
        NonNull::new(self.map.as_mut_ptr().cast()).expect("a mapping is never at address 0")
    }
}

/// An open, validated, mapped segment.
pub struct Segment {
    name: String,
    mapping: Arc<Mapping>,
    geometry: Geometry,
    created: bool,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("geometry", &self.geometry)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Segment {
    /// Open the segment `name` (e.g. `/applog`), creating it when allowed.
    ///
    /// Whoever creates the segment sizes it (`opts.capacity`,
    /// `opts.max_record`, `opts.mode`); anyone else waits up to
    /// `opts.ready_timeout` for the creator to finish, then validates the
    /// header against the object's size before mapping the ring.
    ///
    /// # Errors
    /// - [`OpenErrorKind::InvalidName`]: `name` is not like `/applog`.
    /// - [`OpenErrorKind::InvalidOption`]: `opts.capacity` or `opts.max_record`
    ///   is out of range (see [`check_sizes`]); checked even when the
    ///   segment already exists.
    /// - [`OpenErrorKind::NotFound`]: the segment does not exist and
    ///   `opts.create` is false.
    /// - [`OpenErrorKind::Io`]: `shm_open`, `fchmod`, `ftruncate`, `fallocate`
    ///   (e.g. `/dev/shm` is full), `fstat` or `mmap` failed; a segment this
    ///   call was creating is unlinked again.
    /// - [`OpenErrorKind::NotInitialised`]: the segment exists but its creator
    ///   did not finish within `opts.ready_timeout`.
    /// - [`OpenErrorKind::Truncated`], [`OpenErrorKind::NotASegment`],
    ///   [`OpenErrorKind::IncompatibleVersion`], [`OpenErrorKind::BadHeader`]: the
    ///   object is not a valid segment of this layout.
    /// - [`OpenErrorKind::CapacityMismatch`]: `opts.require_capacity` is set and
    ///   the existing segment's capacity differs.
    pub fn open(name: &str, opts: &SegmentOptions) -> Result<Self, OpenError> {
        Self::open_kind(name, opts).map_err(|kind| kind.of(name))
    }

    fn open_kind(name: &str, opts: &SegmentOptions) -> Result<Self, OpenErrorKind> {
        check_name(name)?;
        let (geometry, max_record) = check_sizes(
            opts.capacity,
            opts.lanes
                .unwrap_or_else(|| layout::default_lanes(opts.capacity)),
            opts.max_record,
        )?;
        let io_err = |op, source: rustix::io::Errno| OpenErrorKind::Io {
            op,
            source: source.into(),
        };
        // A segment unlinked between our two opens is simply created again.
        for _ in 0..100 {
            if opts.create {
                match shm::open(
                    name,
                    shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
                    Mode::from_raw_mode(opts.mode),
                ) {
                    Ok(fd) => return Self::create(name, fd, opts, geometry, max_record),
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(io_err("shm_open", e)),
                }
            }
            match shm::open(name, shm::OFlags::RDWR, Mode::empty()) {
                Ok(fd) => return Self::attach(name, fd, opts),
                Err(rustix::io::Errno::NOENT) if opts.create => continue,
                Err(rustix::io::Errno::NOENT) => return Err(OpenErrorKind::NotFound),
                Err(e) => return Err(io_err("shm_open", e)),
            }
        }
        Err(io_err("shm_open", rustix::io::Errno::AGAIN))
    }

    fn create(
        name: &str,
        fd: OwnedFd,
        opts: &SegmentOptions,
        geometry: Geometry,
        max_record: u64,
    ) -> Result<Self, OpenErrorKind> {
        let fail = |op, source: io::Error| {
            let _ = shm::unlink(name);
            OpenErrorKind::Io { op, source }
        };
        // The umask applied to shm_open's mode; set exactly what was asked.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(opts.mode))
            .map_err(|e| fail("fchmod", e.into()))?;
        let size = HEADER_SIZE as u64 + opts.capacity;
        rustix::fs::ftruncate(&fd, size).map_err(|e| fail("ftruncate", e.into()))?;
        // Allocate every page now: a full /dev/shm is an error here instead
        // of SIGBUS in a producer later.
        match rustix::fs::fallocate(&fd, rustix::fs::FallocateFlags::empty(), 0, size) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOSPC) => {
                let _ = shm::unlink(name);
                let free = rustix::fs::statvfs("/dev/shm")
                    .map(|v| v.f_bavail * v.f_frsize)
                    .unwrap_or(0);
                return Err(OpenErrorKind::NoRoom { needed: size, free });
            }
            Err(e) => return Err(fail("fallocate", e.into())),
        }
        let map = map(&fd, size).map_err(|e| fail("mmap", e))?;
        if opts.prefault {
            prefault(&map);
        }
        let seg = Segment::new(name, fd, map, geometry, true);
        if opts.flusher {
            match liveness::try_lock(seg.fd(), FLUSHER_BYTE) {
                Ok(true) => seg.announce_flusher(),
                Ok(false) => {}
                Err(e) => return Err(fail("fcntl(F_OFD_SETLK)", e)),
            }
        }
        let id = &seg.header().identity;
        id.magic.store(layout::MAGIC, Ordering::Relaxed);
        geometry.write(id);
        id.max_record.store(max_record, Ordering::Relaxed);
        id.created_ns.store(crate::now_ns(), Ordering::Relaxed);
        id.creator_pid
            .store(std::process::id() as u64, Ordering::Relaxed);
        // Release: pairs with the Acquire in `attach`; the header fields above
        // are visible to whoever sees the version.
        id.version.store(layout::VERSION, Ordering::Release);
        Ok(seg)
    }

    fn attach(name: &str, fd: OwnedFd, opts: &SegmentOptions) -> Result<Self, OpenErrorKind> {
        let deadline = Instant::now() + opts.ready_timeout;
        let io_err = |op, source: io::Error| OpenErrorKind::Io { op, source };
        check_trust(&fd, opts)?;
        loop {
            let size = rustix::fs::fstat(&fd)
                .map_err(|e| io_err("fstat", e.into()))?
                .st_size as u64;
            if size > 0 && size < HEADER_SIZE as u64 {
                return Err(OpenErrorKind::Truncated {
                    size,
                    expected: HEADER_SIZE as u64,
                });
            }
            if size > 0 {
                // Map only what fstat reported, so reading the header cannot fault.
                let map = map(&fd, size).map_err(|e| io_err("mmap", e))?;
                // SAFETY: the mapping is page-aligned and at least HEADER_SIZE
                // bytes; an all-zero or arbitrary header is a valid value of
                // this all-atomics type.
                let header = unsafe { &*(map.as_ptr() as *const SegmentHeader) };
                // Acquire: pairs with the creator's Release store of `version`.
                let version = header.identity.version.load(Ordering::Acquire);
                let magic = header.identity.magic.load(Ordering::Relaxed);
                if magic != 0 && magic != layout::MAGIC {
                    return Err(OpenErrorKind::NotASegment);
                }
                if version != 0 {
                    if magic != layout::MAGIC {
                        return Err(OpenErrorKind::NotASegment);
                    }
                    let geometry = validate(header, size)?;
                    if opts.require_capacity && geometry.capacity != opts.capacity {
                        return Err(OpenErrorKind::CapacityMismatch {
                            existing: geometry.capacity,
                            requested: opts.capacity,
                        });
                    }
                    if opts.prefault {
                        prefault(&map);
                    }
                    return Ok(Segment::new(name, fd, map, geometry, false));
                }
            }
            if Instant::now() >= deadline {
                return Err(OpenErrorKind::NotInitialised {
                    waited: opts.ready_timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn new(name: &str, fd: OwnedFd, map: MmapRaw, geometry: Geometry, created: bool) -> Self {
        let mapping = Mapping {
            fd,
            map,
            consumer_taken: AtomicBool::new(false),
        };
        Segment {
            name: name.into(),
            mapping: Arc::new(mapping),
            geometry,
            created,
        }
    }

    /// The name it was opened by, e.g. `/applog`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Data bytes: the shared ring and, with lanes, their pool.
    pub fn capacity(&self) -> u64 {
        self.geometry.capacity
    }
    /// How the data area is laid out.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }
    /// Whether this call created the segment.
    pub fn created(&self) -> bool {
        self.created
    }
    /// The shared-memory object's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.mapping.fd.as_fd()
    }

    /// Watch this segment's mapping for SIGBUS (see [`crate::sigbus`]): a
    /// truncation of the object under this process is repaired instead of
    /// killing it. The guard keeps the mapping alive.
    pub fn watch_sigbus(&self) -> SigbusGuard {
        let map = &self.mapping.map;
        let fd = self.mapping.fd.as_raw_fd();
        // SAFETY: the guard holds the mapping (and its descriptor) and drops
        // its slot before it.
        let guard =
            unsafe { sigbus::Guard::watch(map.as_mut_ptr(), map.len(), fd, self.expected_size()) };
        SigbusGuard {
            guard,
            _mapping: self.mapping.clone(),
        }
    }

    /// The segment's control words.
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: the mapping is page-aligned, at least HEADER_SIZE bytes and
        // lives as long as self; every field is an atomic, valid for any bytes.
        unsafe { self.mapping.header().as_ref() }
    }

    /// A handle on the shared ring borrowing this segment.
    pub fn ring(&self) -> Ring<&SegmentHeader, RawRegion> {
        Ring::new(self.header(), self.raw_region(0, self.geometry.shared))
    }

    /// A handle on the shared ring that keeps the mapping alive by itself
    /// (a producer's).
    pub fn shared_ring(&self) -> SharedRing {
        let region = self.mapped_region(0, self.geometry.shared);
        Ring::new(self.mapped_header(), region)
    }

    /// The segment's lanes (`lane.rs`), if it has any, borrowing it.
    pub fn lanes(&self) -> Option<Lanes<&SegmentHeader, RawRegion>> {
        let (at, len) = self.pool_range()?;
        Some(Lanes::new(self.header(), self.raw_region(at, len)))
    }

    /// Bytes of records published and not yet written by a flusher: the
    /// shared ring's and every lane's.
    pub fn unwritten_bytes(&self) -> u64 {
        let h = self.header();
        let head = h.head.0.load(Ordering::Acquire);
        let shared = h.tail.0.load(Ordering::Acquire).saturating_sub(head);
        let lanes = self
            .lanes()
            .map_or(0, |l| (0..l.count()).map(|i| l.pending(i)).sum());
        shared + lanes
    }

    /// The segment's lanes, keeping the mapping alive by themselves.
    pub fn shared_lanes(&self) -> Option<SharedLanes> {
        let (at, len) = self.pool_range()?;
        Some(Lanes::new(
            self.mapped_header(),
            self.mapped_region(at, len),
        ))
    }

    /// The region the lanes address: the whole data area (a power of two),
    /// their pool starting after the shared ring (see [`Geometry`]).
    fn pool_range(&self) -> Option<(u64, u64)> {
        let g = self.geometry;
        (g.lanes > 0).then_some((0, g.capacity))
    }

    fn raw_region(&self, at: u64, len: u64) -> RawRegion {
        debug_assert!(at + len <= self.geometry.capacity);
        // SAFETY: the mapping holds HEADER_SIZE + capacity bytes (validated on
        // open) and starts page-aligned; [at, at + len) is the shared ring at
        // the data area's start, or the whole data area (both powers of two);
        // it lives as long as `self.mapping`, which every
        // user of the region keeps (borrowed or by an Arc).
        unsafe {
            RawRegion::new(
                self.mapping.map.as_mut_ptr().add(HEADER_SIZE + at as usize),
                len,
            )
        }
    }

    fn mapped_header(&self) -> MappedHeader {
        MappedHeader {
            header: self.mapping.header(),
            _mapping: self.mapping.clone(),
        }
    }

    fn mapped_region(&self, at: u64, len: u64) -> MappedRegion {
        MappedRegion {
            raw: self.raw_region(at, len),
            _mapping: self.mapping.clone(),
        }
    }

    /// Become the segment's one consumer: take its flusher lock (an OFD lock
    /// on [`FLUSHER_BYTE`] of the segment file, which the kernel drops when
    /// this process dies, so a crashed flusher never blocks the next, and
    /// which every other process sees, in any PID namespace: see
    /// `liveness.rs`), announce this process as the flusher (pid, PID
    /// namespace, a first heartbeat), and return the consumer, which holds
    /// the lock until it is dropped.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process (or another consumer of this
    /// segment in this one) has it, [`LockError::Io`] when `fcntl` fails.
    pub fn acquire_consumer(&self) -> Result<SegmentConsumer, LockError> {
        let mapping = &self.mapping;
        if mapping.consumer_taken.swap(true, Ordering::AcqRel) {
            return Err(LockError::Held {
                pid: std::process::id(),
            });
        }
        let lock = ConsumerLock {
            mapping: mapping.clone(),
        };
        match liveness::try_lock(self.fd(), FLUSHER_BYTE) {
            Ok(true) => {}
            Ok(false) => {
                return Err(LockError::Held {
                    pid: self.header().flusher.pid.load(Ordering::Relaxed),
                })
            }
            Err(e) => return Err(LockError::Io(e)),
        }
        self.announce_flusher();
        // SAFETY: the lock excludes consumers of other open file descriptions
        // (other processes, other opens in this one) and `consumer_taken`
        // those of this one, until `lock` is dropped with the consumer.
        let consumer = unsafe { self.shared_ring().into_consumer() };
        let lanes = self.shared_lanes();
        Ok(SegmentConsumer {
            consumer,
            lanes,
            lock,
        })
    }

    /// Publish this process as the flusher: its pid and PID namespace, and a
    /// heartbeat now (a stale one of a dead flusher would say it stopped).
    fn announce_flusher(&self) {
        let f = &self.header().flusher;
        f.pid.store(std::process::id(), Ordering::Relaxed);
        f.pid_namespace
            .store(liveness::pid_namespace(), Ordering::Relaxed);
        f.heartbeat_ns.store(crate::now_ns(), Ordering::Relaxed);
    }

    /// Whether a flusher holds the segment's flusher lock (through another
    /// open file description than this one's): it is alive, in whatever PID
    /// namespace. A failed question counts as yes.
    pub fn flusher_alive(&self) -> bool {
        liveness::is_locked(self.fd(), FLUSHER_BYTE).unwrap_or(true)
    }

    /// Whether a flusher runs and drains: it is alive
    /// ([`Segment::flusher_alive`]) and its heartbeat is younger than
    /// [`FLUSHER_STALLED_AFTER`] (a stopped or frozen flusher holds its lock
    /// but drains nothing, and producers must not wait for it).
    pub fn flusher_running(&self) -> bool {
        let beat = self.header().flusher.heartbeat_ns.load(Ordering::Relaxed);
        let fresh = beat != 0
            && crate::now_ns().saturating_sub(beat) < FLUSHER_STALLED_AFTER.as_nanos() as u64;
        fresh && self.flusher_alive()
    }

    /// A new open file description of this same object (its own locks, see
    /// `liveness.rs`), for a forked child that must not hold its parent's:
    /// through `/proc/self/fd`, else by the segment's name if that still
    /// leads to this object.
    ///
    /// # Errors
    /// When neither way leads to this object.
    pub fn reopen(&self) -> io::Result<OwnedFd> {
        let mine = rustix::fs::fstat(&self.mapping.fd)?;
        let same = |fd: &OwnedFd| {
            rustix::fs::fstat(fd)
                .is_ok_and(|st| st.st_dev == mine.st_dev && st.st_ino == mine.st_ino)
        };
        let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC;
        let by_proc = format!("/proc/self/fd/{}", self.mapping.fd.as_raw_fd());
        if let Ok(fd) = rustix::fs::open(by_proc.as_str(), flags, Mode::empty()) {
            if same(&fd) {
                return Ok(fd);
            }
        }
        match shm::open(self.name.as_str(), shm::OFlags::RDWR, Mode::empty()) {
            Ok(fd) if same(&fd) => Ok(fd),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("segment {} was replaced", self.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Owner uid and permission bits of the shared-memory object.
    ///
    /// # Errors
    /// When `fstat` fails.
    pub fn owner_and_mode(&self) -> io::Result<(u32, u32)> {
        let st = rustix::fs::fstat(&self.mapping.fd)?;
        Ok((st.st_uid, st.st_mode & 0o7777))
    }

    /// Set the permission bits and, optionally, the group of the segment.
    ///
    /// # Errors
    /// When `fchown` (changing the group) or `fchmod` fails, e.g. because
    /// this process does not own the segment.
    pub fn set_permissions(&self, mode: u32, gid: Option<u32>) -> io::Result<()> {
        if let Some(gid) = gid {
            let gid = rustix::fs::Gid::from_raw(gid);
            rustix::fs::fchown(&self.mapping.fd, None, Some(gid))?;
        }
        rustix::fs::fchmod(&self.mapping.fd, Mode::from_raw_mode(mode))?;
        Ok(())
    }

    /// Remove the name (mappings stay valid until unmapped).
    ///
    /// # Errors
    /// When `shm_unlink` fails, e.g. `NotFound` when no segment has the name.
    pub fn unlink(name: &str) -> io::Result<()> {
        Ok(shm::unlink(name)?)
    }

    /// Whether the segment's name still leads to this object: `false` once
    /// it was removed (`rm /dev/shm/NAME`, systemd's RemoveIPC, a tmp
    /// cleaner) or replaced by another object of that name.
    ///
    /// # Errors
    /// When `stat` fails for another reason than a missing name.
    pub fn still_named(&self) -> io::Result<bool> {
        let mine = rustix::fs::fstat(&self.mapping.fd)?;
        match rustix::fs::stat(shm_path(&self.name).as_str()) {
            Ok(st) => Ok(st.st_dev == mine.st_dev && st.st_ino == mine.st_ino),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The object's size in bytes now, as `fstat` reports it.
    ///
    /// # Errors
    /// When `fstat` fails.
    pub fn size(&self) -> io::Result<u64> {
        Ok(rustix::fs::fstat(&self.mapping.fd)?.st_size as u64)
    }

    /// The size the object must have: the header and the ring.
    pub fn expected_size(&self) -> u64 {
        HEADER_SIZE as u64 + self.geometry.capacity
    }

    /// Give a truncated object its size back (the lost pages come back as
    /// zeros), so that touching the mapping no longer raises SIGBUS.
    ///
    /// # Errors
    /// When `ftruncate` or `fallocate` fails (no room in /dev/shm).
    pub fn restore_size(&self) -> io::Result<()> {
        let size = self.expected_size();
        rustix::fs::ftruncate(&self.mapping.fd, size)?;
        rustix::fs::fallocate(
            &self.mapping.fd,
            rustix::fs::FallocateFlags::empty(),
            0,
            size,
        )?;
        Ok(())
    }
}

/// A segment's mapping watched for SIGBUS; see [`Segment::watch_sigbus`].
pub struct SigbusGuard {
    // Declared first: dropped (its slot cleared) before the mapping goes.
    guard: sigbus::Guard,
    _mapping: Arc<Mapping>,
}

impl std::fmt::Debug for SigbusGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigbusGuard")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl SigbusGuard {
    /// Whether a fault replaced the mapping with private pages (the size
    /// could not be restored): writes through it reach no one.
    #[inline]
    pub fn lost(&self) -> bool {
        self.guard.lost()
    }
}

/// A ring handle that owns a share of its segment's mapping.
pub type SharedRing = Ring<MappedHeader, MappedRegion>;

/// The lanes a producer holds: they keep the mapping alive by themselves.
pub type SharedLanes = Lanes<MappedHeader, MappedRegion>;

/// A segment's header, kept mapped by this handle.
pub struct MappedHeader {
    header: NonNull<SegmentHeader>,
    _mapping: Arc<Mapping>,
}

// SAFETY: the header is all atomics in shared memory, made for concurrent
// access from any thread; the Arc keeps it mapped.
unsafe impl Send for MappedHeader {}
// SAFETY: as above.
unsafe impl Sync for MappedHeader {}

impl Deref for MappedHeader {
    type Target = SegmentHeader;
    fn deref(&self) -> &SegmentHeader {
        // SAFETY: `header` points at the start of the mapping `_mapping`
        // keeps alive; any bytes are a valid all-atomics header.
        unsafe { self.header.as_ref() }
    }
}

impl std::fmt::Debug for MappedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedHeader").finish_non_exhaustive()
    }
}

/// A segment's data ring, kept mapped by this handle.
pub struct MappedRegion {
    raw: RawRegion,
    _mapping: Arc<Mapping>,
}

impl std::fmt::Debug for MappedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRegion")
            .field("capacity", &self.raw.capacity())
            .finish_non_exhaustive()
    }
}

// SAFETY: forwards to a RawRegion whose memory `_mapping` keeps mapped.
unsafe impl Region for MappedRegion {
    #[inline]
    fn capacity(&self) -> u64 {
        self.raw.capacity()
    }
    #[inline]
    fn word(&self, offset: usize) -> &crate::sync::AtomicU64 {
        self.raw.word(offset)
    }
    #[inline]
    fn store_words<const N: usize>(
        &self,
        offset: usize,
        words: [u64; N],
        order: crate::sync::Ordering,
    ) {
        self.raw.store_words(offset, words, order)
    }
    #[inline]
    unsafe fn store_words_in_range<const N: usize>(
        &self,
        offset: usize,
        words: [u64; N],
        order: crate::sync::Ordering,
    ) {
        // SAFETY: the caller upholds the contract for us.
        unsafe { self.raw.store_words_in_range(offset, words, order) }
    }
    #[inline]
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8])) {
        // SAFETY: the caller upholds fill's contract for us.
        unsafe { self.raw.fill(offset, len, f) }
    }
    #[inline]
    unsafe fn view<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        // SAFETY: the caller upholds view's contract for us.
        unsafe { self.raw.view(offset, len, f) }
    }
    #[inline]
    fn prefetch_write(&self, offset: usize) {
        self.raw.prefetch_write(offset)
    }
    #[inline]
    fn prefetch_read(&self, offset: usize) {
        self.raw.prefetch_read(offset)
    }
    #[inline]
    unsafe fn zero(&self, offset: usize, len: usize) {
        // SAFETY: the caller upholds zero's contract for us.
        unsafe { self.raw.zero(offset, len) }
    }
}

/// The flusher lock of one segment, held while its consumer lives.
struct ConsumerLock {
    mapping: Arc<Mapping>,
}

impl Drop for ConsumerLock {
    fn drop(&mut self) {
        // Unlocking a lock this description may not hold (a failed acquire)
        // is harmless; the kernel drops it anyway when it closes.
        liveness::unlock(self.mapping.fd.as_fd(), FLUSHER_BYTE);
        self.mapping.consumer_taken.store(false, Ordering::Release);
    }
}

/// The one consumer of a segment, holding its flusher lock (see
/// [`Segment::acquire_consumer`]); dereferences to the ring's [`Consumer`].
pub struct SegmentConsumer {
    consumer: Consumer<MappedHeader, MappedRegion>,
    lanes: Option<SharedLanes>,
    lock: ConsumerLock,
}

impl SegmentConsumer {
    /// The shared ring's consumer and the lanes, apart (the merge reads both).
    pub fn split(
        &mut self,
    ) -> (
        &mut Consumer<MappedHeader, MappedRegion>,
        Option<&SharedLanes>,
    ) {
        (&mut self.consumer, self.lanes.as_ref())
    }

    /// The segment's lanes, if it has any.
    pub fn lanes(&self) -> Option<&SharedLanes> {
        self.lanes.as_ref()
    }

    /// A reader of every lane, from its head: the lanes' one consumer is
    /// this segment's (it holds the flusher lock).
    pub fn lane_readers(&self) -> Vec<LaneReader> {
        let Some(lanes) = &self.lanes else {
            return Vec::new();
        };
        // SAFETY: this consumer holds the flusher lock and `consumer_taken`,
        // so no other reader of these lanes exists; the readers are this
        // consumer's (one set per consumer, the flusher's).
        (0..lanes.count())
            .map(|i| unsafe { lanes.reader(i) })
            .collect()
    }
}

impl Deref for SegmentConsumer {
    type Target = Consumer<MappedHeader, MappedRegion>;
    fn deref(&self) -> &Self::Target {
        &self.consumer
    }
}

impl DerefMut for SegmentConsumer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.consumer
    }
}

impl std::fmt::Debug for SegmentConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentConsumer")
            .field("locked", &self.lock.mapping.consumer_taken)
            .finish_non_exhaustive()
    }
}

/// Fault in this process's page tables for the whole mapping now, so that no
/// producer call later pays a page fault. Best effort (Linux >= 5.14).
fn prefault(map: &MmapRaw) {
    // SAFETY: the range is exactly our live mapping; MADV_POPULATE_WRITE only
    // faults pages in and does not change their contents.
    let _ = unsafe {
        rustix::mm::madvise(
            map.as_mut_ptr().cast(),
            map.len(),
            rustix::mm::Advice::LinuxPopulateWrite,
        )
    };
}

fn map(fd: &OwnedFd, size: u64) -> io::Result<MmapRaw> {
    MmapOptions::new().len(size as usize).map_raw(fd)
}

/// The owner and mode rules of [`SegmentOptions`], before anything of the
/// segment is read or written.
fn check_trust(fd: &OwnedFd, opts: &SegmentOptions) -> Result<(), OpenErrorKind> {
    let st = rustix::fs::fstat(fd).map_err(|e| OpenErrorKind::Io {
        op: "fstat",
        source: e.into(),
    })?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me && !opts.allow_foreign {
        return Err(OpenErrorKind::ForeignOwner {
            owner: st.st_uid,
            owner_name: user_name(st.st_uid),
            me,
        });
    }
    let mode = st.st_mode & 0o777;
    if mode & 0o022 & !opts.mode != 0 {
        return Err(OpenErrorKind::TooWritable {
            mode,
            allowed: opts.mode,
        });
    }
    Ok(())
}

/// The user name of `uid`, from the password database.
fn user_name(uid: u32) -> Option<String> {
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Validate an initialised header against the object's size; returns its
/// layout.
fn validate(header: &SegmentHeader, size: u64) -> Result<Geometry, OpenErrorKind> {
    let version = header.identity.version.load(Ordering::Relaxed);
    let (major, minor) = ((version >> 32) as u32, version as u32);
    if major != layout::VERSION_MAJOR {
        return Err(OpenErrorKind::IncompatibleVersion { major, minor });
    }
    let bad = |reason: String| OpenErrorKind::BadHeader { reason };
    let geometry = Geometry::read(&header.identity);
    if !geometry.is_valid() {
        return Err(bad(format!("inconsistent layout {geometry:?}")));
    }
    let capacity = geometry.capacity;
    let max_record = header.identity.max_record.load(Ordering::Relaxed);
    check_sizes(capacity, geometry.lanes, Some(max_record)).map_err(|e| match e {
        OpenErrorKind::InvalidOption { reason } => bad(reason),
        other => other,
    })?;
    let expected = HEADER_SIZE as u64 + capacity;
    if size < expected {
        return Err(OpenErrorKind::Truncated { size, expected });
    }
    if size > expected {
        return Err(bad(format!(
            "object is {size} bytes, its capacity says {expected}"
        )));
    }
    // Inconsistent head and tail are not refused: the flusher repairs them
    // (Consumer::repair), and producers drop at once meanwhile.
    Ok(geometry)
}

//! Why a segment could not be opened ([`OpenError`]) or its flusher lock
//! taken ([`LockError`]). Each message names the segment and says what to
//! do; an OS error is the `source()`, never repeated in the message.

use std::io;
use std::time::Duration;

use super::shm_path;
use crate::layout;

/// Why a segment could not be opened or created: which segment, and what
/// went wrong ([`OpenError::kind`]).
#[derive(Debug)]
pub struct OpenError {
    /// The segment's name, as given.
    pub name: String,
    /// What went wrong.
    pub kind: OpenErrorKind,
}

/// What went wrong opening a segment.
#[derive(Debug)]
pub enum OpenErrorKind {
    /// The name is not `/something` of at most 255 bytes: one leading
    /// slash and no other, no NUL, not `/.` or `/..`.
    InvalidName,
    /// The requested capacity or maximum record size is out of range.
    InvalidOption {
        /// Which value, and the range it must be in.
        reason: String,
    },
    /// No such segment, and creation was not asked for.
    NotFound,
    /// A system call failed.
    Io {
        /// The call that failed, e.g. `"shm_open"` or `"fallocate"`.
        op: &'static str,
        /// The error it returned.
        source: io::Error,
    },
    /// The segment exists but its creator never finished initialising it.
    NotInitialised {
        /// How long this open waited for it (the `ready_timeout`).
        waited: Duration,
    },
    /// The object is smaller than its header says (or than a header).
    Truncated {
        /// The object's size in bytes.
        size: u64,
        /// The size in bytes it must have at least.
        expected: u64,
    },
    /// The object does not start with ringflush's magic number.
    NotASegment,
    /// The layout's major version differs from ours.
    IncompatibleVersion {
        /// The segment's layout major version.
        major: u32,
        /// The segment's layout minor version.
        minor: u32,
    },
    /// A header field is out of range.
    BadHeader {
        /// Which field, and why it is wrong.
        reason: String,
    },
    /// `/dev/shm` has not enough room left for a new segment.
    NoRoom {
        /// Bytes it needs (header and ring).
        needed: u64,
        /// Bytes free in `/dev/shm`.
        free: u64,
    },
    /// The segment belongs to another user (see
    /// [`SegmentOptions::allow_foreign`](super::SegmentOptions::allow_foreign)).
    ForeignOwner {
        /// Its owner's uid.
        owner: u32,
        /// The owner's user name, when known.
        owner_name: Option<String>,
        /// This process's effective uid.
        me: u32,
    },
    /// The segment is writable by group or others beyond what is allowed
    /// (see [`SegmentOptions::mode`](super::SegmentOptions::mode)).
    TooWritable {
        /// Its permission bits.
        mode: u32,
        /// The bits allowed.
        allowed: u32,
    },
    /// The segment exists with another capacity than required.
    CapacityMismatch {
        /// The existing segment's capacity in bytes.
        existing: u64,
        /// The capacity in bytes that was required.
        requested: u64,
    },
}

impl OpenErrorKind {
    /// The error for segment `name`.
    pub fn of(self, name: &str) -> OpenError {
        OpenError {
            name: name.into(),
            kind: self,
        }
    }
}

impl OpenError {
    /// What went wrong.
    pub fn kind(&self) -> &OpenErrorKind {
        &self.kind
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = &self.name;
        let path = shm_path(name);
        match &self.kind {
            OpenErrorKind::InvalidName => write!(
                f,
                "invalid shared-memory name {name:?}: it must look like /applog (one leading slash, no other, at most 255 bytes)"
            ),
            OpenErrorKind::InvalidOption { reason } => f.write_str(reason),
            OpenErrorKind::NotFound => write!(
                f,
                "no segment {name} (none was created, or it was removed)"
            ),
            // The cause is the source(): printed once by `{:#}` or a chain walk.
            OpenErrorKind::Io { op, .. } => write!(f, "segment {name}: {op}"),
            OpenErrorKind::NotInitialised { waited } => write!(
                f,
                "segment {name} was not initialised within {waited:?} (its creator may have died); remove {path}"
            ),
            OpenErrorKind::Truncated { size, expected } => write!(
                f,
                "segment {name} is truncated: {size} bytes, expected {expected}; remove {path}"
            ),
            OpenErrorKind::NotASegment => write!(
                f,
                "{path} is not a ringflush segment (bad magic number); remove it or pick another --shm name"
            ),
            OpenErrorKind::IncompatibleVersion { major, minor } => write!(
                f,
                "segment {name} has layout version {major}.{minor}, this build speaks {}.{}; stop its users and remove {path}",
                layout::VERSION_MAJOR,
                layout::VERSION_MINOR,
            ),
            OpenErrorKind::BadHeader { reason } => {
                write!(f, "segment {name} has a corrupt header: {reason}")
            }
            OpenErrorKind::NoRoom { needed, free } => write!(
                f,
                "not enough room in /dev/shm for segment {name}: it needs {needed} bytes and {free} are free; use a smaller ring (the flusher's --size, e.g. --size 4M; a producer's capacity) or give /dev/shm more room (docker run --shm-size)"
            ),
            OpenErrorKind::ForeignOwner {
                owner,
                owner_name,
                me,
            } => {
                let who = owner_name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                write!(
                    f,
                    "segment {name} is owned by uid {owner}{who}, not by this user (uid {me}): another user may have created it to read or forge these logs; remove {path} if so, or allow it explicitly (the flusher's --allow-foreign, a producer's allow_foreign)"
                )
            }
            OpenErrorKind::TooWritable { mode, allowed } => write!(
                f,
                "segment {name} is writable by group or others (mode {mode:o}) beyond {allowed:o}: whoever can write it can read and forge these logs; remove {path}, or allow it explicitly (the flusher's --mode {mode:o}, a producer's mode)"
            ),
            OpenErrorKind::CapacityMismatch {
                existing,
                requested,
            } => write!(
                f,
                "segment {name} exists with capacity {existing} bytes, but {requested} was asked for; remove {path} or drop the size option"
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            OpenErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why the flusher lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone holds it already.
    Held {
        /// The flusher pid published in the segment when the lock is held
        /// through another open of the segment, normally by another process
        /// (0 if no flusher has published one yet); this process's pid when
        /// a consumer of this same [`Segment`](super::Segment) exists.
        pid: u32,
    },
    /// The lock request itself failed (the cause is the [`source`](std::error::Error::source)).
    Io(io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { pid } => write!(f, "the flusher lock is held by pid {pid}"),
            LockError::Io(_) => f.write_str("locking the segment (fcntl F_OFD_SETLK)"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io(e) => Some(e),
            LockError::Held { .. } => None,
        }
    }
}

//! Shared code of ringflush's producers and flusher: the segment layout
//! ([`layout`]), the lock-free ring protocol ([`ring`]), the record codec
//! ([`codec`]) and, outside loom, shared-memory segments ([`segment`]) and
//! futex sleep/wake ([`wait`]).

pub mod closing;
pub mod codec;
pub mod fields;
pub mod frame;
pub mod lane;
pub mod layout;
#[cfg(not(loom))]
pub mod liveness;
pub mod region;
#[cfg(not(loom))]
pub mod registry;
pub mod requests;
pub mod ring;
#[cfg(not(loom))]
pub mod segment;
#[cfg(not(loom))]
pub mod sigbus;
pub mod sync;
pub mod tsc;
#[cfg(not(loom))]
pub mod wait;

pub use layout::SegmentHeader;
pub use region::{HeapRegion, RawRegion, Region};
pub use ring::{
    Claim, ClaimError, Consumer, Corruption, LateCommit, Next, RecordRef, Repair, Reserved, Ring,
    Stamp, Stop,
};
#[cfg(not(loom))]
pub use segment::{
    check_sizes, LockError, MappedHeader, MappedRegion, OpenError, OpenErrorKind, Segment,
    SegmentConsumer, SegmentOptions, SharedLanes, SharedRing, SigbusGuard,
};

/// Realtime clock in ns since the Unix epoch (glibc's vDSO path, no syscall;
/// glibc rather than rustix so that it also runs under valgrind).
#[inline]
pub fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

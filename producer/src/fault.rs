//! Fault injection for tests that kill producers at every step of a write.
//!
//! `RINGFLUSH_FAULT=<point>:<n>` makes this process SIGKILL itself at
//! `point` of its n-th record (`stop_before_commit` SIGSTOPs it instead, to
//! play a stalled writer). Points: `after_reserve` (space claimed, header
//! still zero), `after_header` (header says claimed), `mid_payload` (half the
//! payload copied), `before_commit`. Read once when a producer opens; when
//! unset it costs one predictable branch per point.
//!
//! `RINGFLUSH_FAULT=pause_before_register:<ms>` instead makes opening a
//! producer sleep between mapping the segment and registering with it (the
//! race window of `ringflush_ring::closing`, made wide).

use std::sync::atomic::{AtomicU64, Ordering};

/// Sleep as `pause_before_register:<ms>` asks (see the module docs).
pub fn pause_before_register() {
    let Ok(spec) = std::env::var("RINGFLUSH_FAULT") else {
        return;
    };
    if let Some(("pause_before_register", ms)) = spec.split_once(':') {
        let ms = ms.parse().unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    AfterReserve,
    AfterHeader,
    MidPayload,
    BeforeCommit,
}

#[derive(Debug)]
pub struct Fault {
    point: Point,
    stop: bool,
    nth: u64,
    seen: AtomicU64,
}

impl Fault {
    pub fn from_env() -> Option<Self> {
        let spec = std::env::var("RINGFLUSH_FAULT").ok()?;
        let (name, n) = spec.split_once(':')?;
        let (point, stop) = match name {
            "after_reserve" => (Point::AfterReserve, false),
            "after_header" => (Point::AfterHeader, false),
            "mid_payload" => (Point::MidPayload, false),
            "before_commit" => (Point::BeforeCommit, false),
            "stop_before_commit" => (Point::BeforeCommit, true),
            _ => return None,
        };
        Some(Self {
            point,
            stop,
            nth: n.parse().ok()?,
            seen: AtomicU64::new(0),
        })
    }

    /// Called at each point of each record, `AfterReserve` first.
    #[inline]
    pub fn at(&self, point: Point) {
        let n = if point == Point::AfterReserve {
            self.seen.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.seen.load(Ordering::Relaxed)
        };
        if point == self.point && n == self.nth {
            self.trigger();
        }
    }

    /// Whether `point` of the current record is where this fault strikes.
    pub fn is_at(&self, point: Point) -> bool {
        point == self.point && self.seen.load(Ordering::Relaxed) == self.nth
    }

    #[cold]
    fn trigger(&self) {
        let sig = if self.stop {
            libc::SIGSTOP
        } else {
            libc::SIGKILL
        };
        // SAFETY: signalling ourselves has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
}

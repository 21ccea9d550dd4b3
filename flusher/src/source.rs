//! What the flusher drains: one segment, held as its only consumer, with the
//! clock that turns its records' stamps into realtime and the heartbeat the
//! flusher publishes there. The loop is given a [`Source`], so draining a
//! second segment later is a second value, not a second loop.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringflush_ring::clock::TscCalibration;
use ringflush_ring::layout::{SegmentHeader, DEFAULT_CAPACITY};
use ringflush_ring::record::FLAG_TSC;
use ringflush_ring::{
    wait, LockError, RecordRef, Segment, SegmentConsumer, SegmentOptions, Stamp, Stop,
};

use crate::batch::Drain;
use crate::config::FlusherConfig;
use crate::now::Interval;

/// The heartbeat is stored at most this often: it shares a cache line with
/// the `sleeping` word that every commit reads, and a store per loop would
/// make each of those reads a miss.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(50);

/// A segment being drained.
pub struct Source {
    consumer: SegmentConsumer,
    segment: Segment,
    tsc: TscCalibration,
    heartbeat: Interval,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Open (or create) the configured segment, check who may write it,
    /// become its consumer and announce this flusher in its header.
    pub fn open(cfg: &FlusherConfig) -> Result<Self> {
        let opts = SegmentOptions {
            create: true,
            capacity: cfg.size.unwrap_or(DEFAULT_CAPACITY),
            require_capacity: cfg.size.is_some(),
            mode: cfg.mode,
            ..SegmentOptions::default()
        };
        let segment = Segment::open(&cfg.shm, &opts)?;
        check_owner(&segment, cfg)?;
        let consumer = match segment.acquire_consumer() {
            Ok(c) => c,
            Err(LockError::Held { pid }) => {
                bail!("a flusher is already running for {} (pid {pid})", cfg.shm)
            }
            Err(e) => return Err(e).context(format!("segment {}", cfg.shm)),
        };
        if cfg.gid.is_some() || segment.created() || cfg.mode != 0o600 {
            segment
                .set_permissions(cfg.mode, cfg.gid)
                .with_context(|| format!("setting mode {:o} on segment {}", cfg.mode, cfg.shm))?;
        }
        // Before announcing ourselves: it takes 20 ms.
        let tsc = TscCalibration::new(Duration::from_millis(20));
        let source = Self {
            consumer,
            segment,
            tsc,
            heartbeat: Interval::new(HEARTBEAT_EVERY),
        };
        let flusher = &source.header().flusher;
        let now = ringflush_ring::now_ns();
        flusher.pid.store(std::process::id(), Ordering::Relaxed);
        flusher.started_ns.store(now, Ordering::Relaxed);
        flusher.heartbeat_ns.store(now, Ordering::Relaxed);
        Ok(source)
    }

    /// The segment's name, e.g. `/applog`.
    pub fn name(&self) -> &str {
        self.segment.name()
    }
    /// Bytes in the segment's ring.
    pub fn capacity(&self) -> u64 {
        self.segment.capacity()
    }
    /// The segment's control words.
    pub fn header(&self) -> &SegmentHeader {
        self.segment.header()
    }
    /// The segment's one consumer, which this source holds.
    pub fn consumer(&mut self) -> &mut SegmentConsumer {
        &mut self.consumer
    }

    /// A record's time as realtime ns.
    pub fn realtime_ns(&self, stamp: &Stamp) -> u64 {
        realtime_ns(&self.tsc, stamp)
    }

    /// Publish that this flusher is alive, at most every 50 ms.
    pub fn beat(&mut self, now: Instant, now_ns: u64) {
        if self.heartbeat.due(now) {
            let heartbeat = &self.header().flusher.heartbeat_ns;
            heartbeat.store(now_ns, Ordering::Relaxed);
        }
    }

    /// Follow the TSC's drift against the realtime clock.
    pub fn refresh_clock(&mut self) {
        self.tsc.refresh();
    }

    /// Sleep until a producer commits at the read position, or `timeout`.
    pub fn sleep(&self, timeout: Duration) {
        wait::flusher_sleep(self.consumer.ring(), self.consumer.position(), timeout);
    }
}

/// Announce that no flusher runs any more, however the flusher ends (a clean
/// stop or an error): producers then drop at once on a full ring instead of
/// waiting for a flusher that is gone.
impl Drop for Source {
    fn drop(&mut self) {
        let heartbeat = &self.header().flusher.heartbeat_ns;
        heartbeat.store(0, Ordering::Relaxed);
    }
}

impl Drain for Source {
    #[inline]
    fn drain(&mut self, budget: u64, mut visit: impl FnMut(RecordRef<'_>, u64) -> bool) -> Stop {
        let tsc = &self.tsc;
        self.consumer
            .drain(budget, |r| visit(r, realtime_ns(tsc, &r.stamp)))
    }

    fn unreleased(&self) -> std::ops::Range<u64> {
        self.consumer.head()..self.consumer.position()
    }
}

/// A record's time as realtime ns, converting TSC stamps.
#[inline]
fn realtime_ns(tsc: &TscCalibration, stamp: &Stamp) -> u64 {
    if stamp.flags & FLAG_TSC != 0 {
        tsc.to_ns(stamp.timestamp)
    } else {
        stamp.timestamp
    }
}

/// Refuse a segment another user owns (unless --allow-foreign) or one that
/// is more writable than --mode allows: whoever can write the ring can forge
/// any log line.
fn check_owner(seg: &Segment, cfg: &FlusherConfig) -> Result<()> {
    let (uid, mode) = seg
        .owner_and_mode()
        .with_context(|| format!("fstat segment {}", cfg.shm))?;
    let me = rustix::process::geteuid().as_raw();
    if uid != me && !cfg.allow_foreign {
        bail!(
            "segment {} is owned by uid {uid}, not by this user (uid {me}); pass --allow-foreign if that is intended",
            cfg.shm
        );
    }
    let extra = mode & 0o022 & !cfg.mode;
    if extra != 0 {
        bail!(
            "segment {} is group- or world-writable (mode {mode:o}) beyond --mode {:o}; pass --mode {mode:o} if that is intended",
            cfg.shm,
            cfg.mode
        );
    }
    Ok(())
}

//! What the flusher drains: one segment, held as its only consumer, with the
//! clock that turns its records' stamps into realtime and the heartbeat the
//! flusher publishes there. The loop is given a [`Source`], so draining a
//! second segment later is a second value, not a second loop.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ringflush_ring::frame::FLAG_TSC;
use ringflush_ring::layout::{self, SegmentHeader, DEFAULT_CAPACITY};
use ringflush_ring::tsc::TscCalibration;
use ringflush_ring::{
    liveness, registry, wait, LockError, RecordRef, Repair, Segment, SegmentConsumer,
    SegmentOptions, SigbusGuard, Stamp, Stop,
};

use super::batch::Drain;

/// Another flusher holds the segment (see [`Source::open`]).
#[derive(Debug)]
pub struct AlreadyRunning(String);

impl std::fmt::Display for AlreadyRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlreadyRunning {}
use super::merge::{LaneDamage, Merge};
use super::recovery::{self, Consumed, Recovered};
use super::stuck::StuckTracker;
use crate::config::FlusherConfig;
use crate::now::Interval;
use crate::output::{Output, OutputError};

/// The heartbeat is stored at most this often: it shares a cache line with
/// the `sleeping` word that every commit reads, and a store per loop would
/// make each of those reads a miss.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(50);

/// A segment being drained.
pub struct Source {
    consumer: SegmentConsumer,
    /// The merge of the shared ring and the lanes (`None`: no lanes).
    merge: Option<Merge>,
    segment: Segment,
    tsc: TscCalibration,
    heartbeat: Interval,
    /// Where its read position is stuck, if it is.
    pub stuck: StuckTracker,
    /// Set once its name led elsewhere (see [`Source::retire`]).
    retired: Option<Retired>,
    /// A truncation under this process is repaired instead of killing it.
    _sigbus: SigbusGuard,
    /// The segment's `repairs` counter as last seen: when another process's
    /// SIGBUS handler restores a truncated segment, it counts one there.
    repairs_seen: u64,
}

/// A segment whose name was removed or replaced: drained until its
/// producers are gone.
#[derive(Debug)]
struct Retired {
    /// Its tail when last looked at, and when that changed.
    tail: u64,
    tail_moved: Instant,
}

/// With an incomplete producer registry, a retired segment is given up
/// once nothing was written to it for this long.
const RETIRED_QUIET: Duration = Duration::from_secs(60);

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
        Self::open_with(cfg, cfg.size.is_some())
    }

    /// Open the segment the configured name leads to now, taking whatever
    /// capacity it has (a producer may have created it), after the old one
    /// was removed or replaced.
    pub fn open_replacement(cfg: &FlusherConfig) -> Result<Self> {
        Self::open_with(cfg, false)
    }

    fn open_with(cfg: &FlusherConfig, require_capacity: bool) -> Result<Self> {
        let opts = SegmentOptions {
            create: true,
            capacity: cfg.size.unwrap_or(DEFAULT_CAPACITY),
            lanes: cfg.lanes,
            require_capacity,
            mode: cfg.mode,
            allow_foreign: cfg.allow_foreign,
            flusher: true,
            ..SegmentOptions::default()
        };
        let segment = Segment::open(&cfg.shm, &opts)?;
        let consumer = match segment.acquire_consumer() {
            Ok(c) => c,
            Err(LockError::Held { pid }) => {
                // Its pid means little from another PID namespace (a
                // sidecar's flusher may well be pid 1): say which.
                let ns = segment
                    .header()
                    .flusher
                    .pid_namespace
                    .load(Ordering::Relaxed);
                let pid = if ns == 0 || ns == liveness::pid_namespace() {
                    format!("pid {pid}")
                } else {
                    format!("pid {pid} in pid namespace {ns}")
                };
                return Err(AlreadyRunning(format!(
                    "a flusher is already running for {} ({pid})",
                    cfg.shm
                ))
                .into());
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
        let sigbus = segment.watch_sigbus();
        let repairs_seen = segment.header().counters.repairs.load(Ordering::Relaxed);
        let merge = consumer
            .lanes()
            .map(|_| Merge::new(consumer.lane_readers()));
        let source = Self {
            consumer,
            merge,
            segment,
            tsc,
            heartbeat: Interval::new(HEARTBEAT_EVERY),
            stuck: StuckTracker::default(),
            retired: None,
            _sigbus: sigbus,
            repairs_seen,
        };
        // Taking the lock announced us (pid, namespace, heartbeat); what this
        // flusher runs with is for a process that would start one.
        source.header().flusher_args.store(&cfg.args);
        let file = std::path::absolute(&cfg.file).unwrap_or_else(|_| cfg.file.clone());
        source.header().log_file.store(&[file.to_string_lossy()]);
        let started = &source.header().flusher.started_ns;
        started.store(ringflush_ring::now_ns(), Ordering::Relaxed);
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

    /// Whether nothing is left to read, in the shared ring or any lane.
    pub fn is_empty(&mut self) -> bool {
        self.shared_is_empty()
            && match (&mut self.merge, self.consumer.lanes()) {
                (Some(m), Some(lanes)) => m.is_empty(lanes),
                _ => true,
            }
    }

    /// Whether nothing is left to read in the shared ring (the tail is at
    /// the read position).
    pub fn shared_is_empty(&mut self) -> bool {
        let pos = self.consumer.position();
        self.consumer.tail() == pos
    }

    /// Whether the last drain held records back for the merge window.
    pub fn held(&self) -> bool {
        self.merge.as_ref().is_some_and(|m| m.held)
    }

    /// Undo or skip what a killed flusher left half done, in the shared
    /// ring and the lanes (see `recovery.rs`).
    pub fn recover(&mut self, out: &mut Output) -> Result<Recovered, OutputError> {
        let (consumer, lanes) = self.consumer.split();
        let side = match (&mut self.merge, lanes) {
            (Some(m), Some(lanes)) => {
                m.recover_heads(lanes);
                Some((lanes, m.readers()))
            }
            _ => None,
        };
        recovery::recover(consumer, side, out)
    }

    /// What the reads since the last release consume.
    pub fn consumed_now(&self) -> Consumed {
        Consumed {
            shared: self.consumer.head()..self.consumer.position(),
            lanes: self.merge.as_ref().map_or(Vec::new(), Merge::consumed),
        }
    }

    /// Everything read is in the file: hand the shared ring's range and the
    /// lanes' chunks back to producers, waking any waiting for room.
    pub fn release(&mut self) {
        self.consumer.release();
        if let (Some(m), Some(lanes)) = (&mut self.merge, self.consumer.lanes()) {
            m.release(lanes);
        }
        wait::wake_space_waiters(self.header());
    }

    /// Free the lanes whose writers are done (once a second, with the
    /// registry sweep); counts a record a dead writer left half-written as
    /// abandoned. Returns how many there were.
    pub fn recycle_lanes(&mut self) -> u64 {
        let (Some(m), Some(lanes)) = (&mut self.merge, self.consumer.lanes()) else {
            return 0;
        };
        let (h, fd) = (self.segment.header(), self.segment.fd());
        let abandoned = m.recycle(lanes, |reg| registry::registration_alive(h, fd, reg));
        if abandoned > 0 {
            let counters = &self.segment.header().counters;
            counters.abandoned.fetch_add(abandoned, Ordering::Relaxed);
        }
        abandoned
    }

    /// What the drains found in the lanes since the last call: damage (each
    /// counted as corrupt, its bytes as lost) and how many records came
    /// late (counted).
    pub fn take_lane_news(&mut self) -> (Vec<LaneDamage>, u64) {
        let Some(m) = &mut self.merge else {
            return (Vec::new(), 0);
        };
        let damage = std::mem::take(&mut m.damage);
        let late = std::mem::take(&mut m.late);
        let counters = &self.segment.header().counters;
        for d in &damage {
            counters.corrupt.fetch_add(1, Ordering::Relaxed);
            counters.lost_bytes.fetch_add(d.skipped, Ordering::Relaxed);
        }
        if late > 0 {
            counters.late.fetch_add(late, Ordering::Relaxed);
        }
        (damage, late)
    }

    /// Bytes published and not yet read, in the shared ring and the lanes.
    pub fn unread(&mut self) -> u64 {
        let shared = self.consumer.tail() - self.consumer.position();
        shared
            + match (&mut self.merge, self.consumer.lanes()) {
                (Some(m), Some(lanes)) => m.unread(lanes),
                _ => 0,
            }
    }

    /// Whether the segment's name still leads to this segment (an error
    /// looking counts as yes: nothing is given up on a guess).
    pub fn still_named(&self) -> bool {
        self.segment.still_named().unwrap_or(true)
    }

    /// Its name led elsewhere: from now on it is drained until its
    /// producers are gone ([`Source::finished`]).
    pub fn retire(&mut self, now: Instant) {
        let tail = self.consumer.tail();
        self.retired = Some(Retired {
            tail,
            tail_moved: now,
        });
    }

    /// Whether it was retired.
    pub fn is_retired(&self) -> bool {
        self.retired.is_some()
    }

    /// Free the registry slots of producers that died; the live ones.
    pub fn sweep_producers(&self) -> Vec<registry::Producer> {
        registry::sweep(self.header(), self.segment.fd())
    }

    /// Whether the writer of a record stamped `stamp` lives (see
    /// `registry::writer_alive`); one that was not registered cannot be
    /// told, and counts as alive (its record is given up at the unblock
    /// timeout).
    pub fn writer_alive(&self, stamp: &Stamp) -> bool {
        let (h, fd) = (self.header(), self.segment.fd());
        registry::writer_alive(h, fd, stamp.pid, stamp.writer_tag()).unwrap_or(true)
    }

    /// A retired segment is finished once it is empty and no producer that
    /// registered with it lives; with an incomplete registry (a full one),
    /// once it is empty and nothing was written for a minute.
    pub fn finished(&mut self, now: Instant) -> bool {
        let empty = self.is_empty();
        let tail = self.consumer.tail();
        let Some(r) = &mut self.retired else {
            return false;
        };
        if tail != r.tail {
            r.tail = tail;
            r.tail_moved = now;
        }
        let quiet = now - r.tail_moved >= RETIRED_QUIET;
        let h = self.segment.header();
        let known = !registry::overflowed(h);
        empty
            && if known {
                registry::sweep(h, self.segment.fd()).is_empty()
            } else {
                quiet
            }
    }

    /// Look for damage done from outside, every turn (an `fstat` and two
    /// loads): an object truncated under the mapping is given its size back
    /// at once, so that producers stop faulting, and its header rewritten if
    /// it was lost; clobbered control words are repaired. Returns what was
    /// found, to be counted and reported.
    pub fn guard(&mut self) -> Option<Damage> {
        let size = self.segment.size().unwrap_or(self.segment.expected_size());
        let truncated = size < self.segment.expected_size();
        if truncated {
            if let Err(error) = self.segment.restore_size() {
                return Some(Damage::NotRestored { size, error });
            }
            self.rewrite_identity();
        }
        let repairs = self.header().counters.repairs.load(Ordering::Relaxed);
        let restored_elsewhere = repairs != self.repairs_seen;
        self.repairs_seen = repairs;
        if !truncated && !restored_elsewhere && !self.consumer.control_words_broken() {
            return None;
        }
        let repair = self.consumer.repair();
        Some(if truncated {
            Damage::Truncated { size, repair }
        } else if restored_elsewhere {
            Damage::Restored(repair)
        } else {
            Damage::ControlWords(repair)
        })
    }

    /// Count a repair in the segment (seen here, so not taken for one done
    /// by another process).
    pub fn count_repair(&mut self, lost_bytes: u64) {
        let counters = &self.header().counters;
        counters.lost_bytes.fetch_add(lost_bytes, Ordering::Relaxed);
        self.repairs_seen = counters.repairs.fetch_add(1, Ordering::Relaxed) + 1;
    }

    /// After a truncation that took the header: what it said of the ring.
    fn rewrite_identity(&self) {
        let id = &self.header().identity;
        if id.magic.load(Ordering::Relaxed) == layout::MAGIC {
            return;
        }
        let ring = self.consumer.ring();
        id.magic.store(layout::MAGIC, Ordering::Relaxed);
        id.capacity.store(ring.capacity(), Ordering::Relaxed);
        id.max_record.store(ring.max_record(), Ordering::Relaxed);
        id.version.store(layout::VERSION, Ordering::Release);
        let flusher = &self.header().flusher;
        flusher.pid.store(std::process::id(), Ordering::Relaxed);
    }

    /// Sleep until a producer commits at the read position or publishes
    /// into a lane, or `timeout`.
    pub fn sleep(&self, timeout: Duration) {
        let lanes_ready = || match (&self.merge, self.consumer.lanes()) {
            (Some(m), Some(lanes)) => m.ready(lanes),
            _ => false,
        };
        let pos = self.consumer.position();
        wait::flusher_sleep(self.consumer.ring(), pos, lanes_ready, timeout);
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
    fn drain(
        &mut self,
        budget: u64,
        until: u64,
        mut visit: impl FnMut(RecordRef<'_>, u64) -> bool,
    ) -> Stop {
        let tsc = &self.tsc;
        let clock = |stamp: &Stamp| realtime_ns(tsc, stamp);
        let (consumer, lanes) = self.consumer.split();
        match (&mut self.merge, lanes) {
            (Some(m), Some(lanes)) => m.drain(consumer, lanes, &clock, budget, until, visit),
            _ => consumer.drain(budget, |r| visit(r, clock(&r.stamp))),
        }
    }

    fn consumed(&self) -> Consumed {
        self.consumed_now()
    }
}

/// Damage [`Source::guard`] found and mended.
#[derive(Debug)]
pub enum Damage {
    /// The object was cut to `size` bytes and given its size back; the
    /// pages beyond were lost.
    Truncated {
        /// Its size when found.
        size: u64,
        /// The control words' repair that followed the restore.
        repair: Repair,
    },
    /// The object was cut to `size` bytes, and restoring its size failed
    /// (then nothing else was done).
    NotRestored {
        /// Its size when found.
        size: u64,
        /// Why the size could not be restored.
        error: std::io::Error,
    },
    /// `head` or `tail` was clobbered.
    ControlWords(Repair),
    /// The object was truncated, and a process that touched a lost page
    /// (its SIGBUS handler) gave it its size back.
    Restored(Repair),
}

impl Damage {
    /// Ring bytes lost, as far as they can be told.
    pub fn lost_bytes(&self) -> u64 {
        match self {
            Damage::ControlWords(r) | Damage::Restored(r) => r.lost_bytes,
            // What lay between the valid records and the old tail.
            Damage::Truncated { repair: r, .. } => r
                .lost_bytes
                .max(r.tail_found.saturating_sub(r.tail_set).min(u64::MAX / 2)),
            Damage::NotRestored { .. } => 0,
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lost = self.lost_bytes();
        match self {
            Damage::NotRestored { size, error: e } => write!(
                f,
                "was truncated to {size} bytes (by a process with write access to it), and restoring its size failed: {e}; producers touching it get SIGBUS"
            ),
            Damage::Truncated { size, .. } => write!(
                f,
                "was truncated to {size} bytes (by a process with write access to it); its size is restored, and {lost} bytes of records in the lost pages are gone"
            ),
            Damage::Restored(r) => write!(
                f,
                "was truncated (by a process with write access to it) and given its size back by a process that touched the lost pages; kept the valid records up to {}, gave up {lost} bytes beyond",
                r.tail_set
            ),
            Damage::ControlWords(r) => write!(
                f,
                "had inconsistent control words (head {}, tail {}); kept the valid records up to {}, reset the tail there, and gave up {lost} bytes beyond",
                r.head_found, r.tail_found, r.tail_set
            ),
        }
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

//! The flusher loop: drain the ring in batches, format, write with one
//! write(2) per batch, release, rotate; sleep on the futex when idle; give up
//! records whose writers died; report every loss in the log and on stderr.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringflush_format::{Entry, FormatSpec, Formatter};
use ringflush_ring::clock::TscCalibration;
use ringflush_ring::codec::{level, Record};
use ringflush_ring::layout::{SegmentHeader, DEFAULT_CAPACITY};
use ringflush_ring::record::FLAG_TSC;
use ringflush_ring::{wait, LockError, Segment, SegmentOptions, Stamp, Stop};

use crate::liveness::writer_alive;
use crate::output::{unix_now, Due, Output, RotationConfig};
use crate::recovery::{self, Recovered};

/// Ring bytes read per batch.
const BATCH_BYTES: u64 = 1 << 20;
/// Sleep while stuck on a record, between checks of its writer.
const IDLE_SLEEP: Duration = Duration::from_millis(10);
/// While records came recently, poll this often instead of asking producers
/// for a wake-up: no producer call pays a futex syscall during busy periods,
/// and a record still reaches write(2) within a few milliseconds. The flusher
/// does not spin: reading the lines producers are writing would pull them
/// away from the producers' core, costing each log call a cache-line transfer.
const POLL: Duration = Duration::from_millis(1);
/// The heartbeat is stored at most this often: it shares a cache line with
/// the `sleeping` word that every commit reads, and a store per loop would
/// make each of those reads a miss.
const HEARTBEAT_EVERY: u64 = 50_000_000;
/// After this long without records, sleep until a producer wakes us.
const DEEP_IDLE_AFTER: Duration = Duration::from_secs(1);
/// Longest deep sleep: heartbeat and reports still run.
const DEEP_SLEEP: Duration = Duration::from_millis(250);
/// How often losses are reported and the file is checked for moves.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// A stuck record is checked for a dead writer after this long.
const DEAD_CHECK_AFTER: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct FlusherConfig {
    pub shm: String,
    pub file: PathBuf,
    pub format: FormatSpec,
    pub size: Option<u64>,
    pub mode: u32,
    pub gid: Option<u32>,
    pub allow_foreign: bool,
    pub rotation: RotationConfig,
    pub unblock_timeout: Duration,
}

/// Flags set by signal handlers.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub terminate: Arc<AtomicBool>,
    pub reopen: Arc<AtomicBool>,
}

impl Signals {
    /// SIGTERM/SIGINT: drain and exit; SIGHUP: reopen the file.
    pub fn install() -> Result<Self> {
        let s = Signals::default();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.terminate.clone())
                .context("installing signal handlers")?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, s.reopen.clone())
            .context("installing signal handlers")?;
        Ok(s)
    }
}

/// Counter values last reported, to report only what changed.
#[derive(Default)]
struct Reported {
    dropped: u64,
    truncated: u64,
    abandoned: u64,
    corrupt: u64,
    late_commits: u64,
}

impl Reported {
    /// Lines describing losses since the last call.
    fn news(&mut self, h: &SegmentHeader) -> Vec<String> {
        let c = &h.counters;
        let mut lines = Vec::new();
        let mut check = |last: &mut u64, now: u64, what: &str| {
            if now > *last {
                lines.push(format!("{} {what}", now - *last));
                *last = now;
            }
        };
        check(
            &mut self.dropped,
            c.dropped.load(Ordering::Relaxed),
            "records dropped by producers (ring full)",
        );
        check(
            &mut self.truncated,
            c.truncated.load(Ordering::Relaxed),
            "records truncated to the maximum record size",
        );
        check(
            &mut self.abandoned,
            c.abandoned.load(Ordering::Relaxed),
            "records abandoned (writer died or stalled before committing)",
        );
        check(
            &mut self.corrupt,
            c.corrupt.load(Ordering::Relaxed),
            "corrupt ring regions skipped",
        );
        check(
            &mut self.late_commits,
            c.late_commits.load(Ordering::Relaxed),
            "late commits refused (record already abandoned)",
        );
        lines
    }
}

/// Where the read position has been stuck since.
struct Stuck {
    pos: u64,
    since: Instant,
    last_dead_check: Instant,
}

/// Resolve `--group` (a name or a gid).
pub fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).context("group name contains NUL")?;
    let mut grp: libc::group = unsafe_zeroed_group();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("unknown group {group:?}");
    }
    Ok(grp.gr_gid)
}

fn unsafe_zeroed_group() -> libc::group {
    // SAFETY: an all-zero `group` (null pointers, gid 0) is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Test-only fault injection: `RINGFLUSH_FLUSHER_FAULT=after_write:N` makes
/// the flusher SIGKILL itself after writing its N-th batch but before
/// releasing it; `mid_write:N` after writing half of it; `eio:N` makes its
/// first N write attempts fail with EIO (a failing disk). Unset: no effect.
#[derive(Debug, Default)]
struct FlusherFault {
    mid_write: bool,
    nth: u64,
    batches: std::cell::Cell<u64>,
    failing_writes: std::cell::Cell<u64>,
}

impl FlusherFault {
    fn from_env() -> Self {
        let spec = std::env::var("RINGFLUSH_FLUSHER_FAULT").unwrap_or_default();
        match spec.split_once(':') {
            Some((point @ ("after_write" | "mid_write"), n)) => Self {
                mid_write: point == "mid_write",
                nth: n.parse().unwrap_or(0),
                ..Self::default()
            },
            Some(("eio", n)) => Self {
                failing_writes: std::cell::Cell::new(n.parse().unwrap_or(0)),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }

    /// An injected write error, while any are left.
    fn write_error(&self) -> Option<std::io::Error> {
        let left = self.failing_writes.get();
        (left > 0).then(|| {
            self.failing_writes.set(left - 1);
            std::io::Error::from_raw_os_error(libc::EIO)
        })
    }

    /// How much of `buf[from..len]` to write now: all, unless this is the
    /// batch where a mid-write fault strikes.
    fn limit(&self, from: usize, len: usize) -> usize {
        if self.nth > 0 && from == 0 {
            self.batches.set(self.batches.get() + 1);
            if self.mid_write && self.batches.get() == self.nth {
                return len / 2;
            }
        }
        len
    }

    /// After a write(2) that left `written` of `len` bytes written.
    fn after_partial_write(&self, written: usize, len: usize) {
        if self.mid_write && self.nth > 0 && self.batches.get() == self.nth && written < len {
            // SAFETY: signalling ourselves has no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }

    fn after_write(&self) {
        if !self.mid_write && self.nth > 0 && self.batches.get() >= self.nth {
            // SAFETY: signalling ourselves has no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
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

/// Wait for the next record at `pos`: poll while records came recently, then
/// sleep until a producer wakes us.
fn idle<R: ringflush_ring::Region>(
    ring: &ringflush_ring::Ring<'_, R>,
    pos: u64,
    quiet_for: Duration,
) {
    if quiet_for < DEEP_IDLE_AFTER {
        std::thread::sleep(POLL);
    } else {
        wait::flusher_sleep(ring, pos, DEEP_SLEEP);
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

/// Run the flusher until SIGTERM/SIGINT. Returns the records written.
pub fn run(cfg: &FlusherConfig, signals: &Signals) -> Result<u64> {
    let opts = SegmentOptions {
        create: true,
        capacity: cfg.size.unwrap_or(DEFAULT_CAPACITY),
        require_capacity: cfg.size.is_some(),
        mode: cfg.mode,
        ..SegmentOptions::default()
    };
    let seg = Segment::open(&cfg.shm, &opts)?;
    check_owner(&seg, cfg)?;
    match seg.try_lock_flusher() {
        Ok(()) => {}
        Err(LockError::Held { pid }) => {
            bail!("a flusher is already running for {} (pid {pid})", cfg.shm)
        }
        Err(e) => return Err(e).context(format!("locking segment {}", cfg.shm)),
    }
    if cfg.gid.is_some() || seg.created() || cfg.mode != 0o600 {
        seg.set_permissions(cfg.mode, cfg.gid)
            .with_context(|| format!("setting mode {:o} on segment {}", cfg.mode, cfg.shm))?;
    }
    let header = seg.header();
    // Before announcing ourselves: it takes 20 ms.
    let mut tsc = TscCalibration::new(Duration::from_millis(20));
    let start_ns = ringflush_ring::now_ns();
    header
        .flusher
        .pid
        .store(std::process::id(), Ordering::Relaxed);
    header.flusher.started_ns.store(start_ns, Ordering::Relaxed);
    header
        .flusher
        .heartbeat_ns
        .store(start_ns, Ordering::Relaxed);

    let mut formatter = Formatter::new(&cfg.format, start_ns)?;
    let mut out = Output::open(&cfg.file, cfg.rotation.clone(), unix_now())?;
    eprintln!(
        "ringflush: flushing {} ({} MiB ring) to {}",
        cfg.shm,
        seg.capacity() >> 20,
        cfg.file.display()
    );

    let ring = seg.ring();
    // SAFETY: we hold the segment's flusher lock, so no other consumer exists.
    let mut consumer = unsafe { ring.consumer() };
    match recovery::recover(header, &mut consumer, &mut out)
        .with_context(|| format!("recovering the last batch in {}", out.path().display()))?
    {
        Recovered::Nothing | Recovered::Unwritten => {}
        Recovered::Skipped { bytes } => eprintln!(
            "ringflush: the previous flusher died after writing its last batch ({bytes} bytes); not writing it again"
        ),
        Recovered::Truncated { removed } => eprintln!(
            "ringflush: the previous flusher died mid-batch; removed its {removed} partial bytes and writing the batch again"
        ),
        Recovered::FileChanged => eprintln!(
            "ringflush: the previous flusher died mid-batch and {} has changed since; its last batch may appear twice",
            out.path().display()
        ),
    }
    let mut buf: Vec<u8> = Vec::with_capacity(4 << 20);
    let mut written_of_buf = 0usize;
    let mut batch_records = 0u64;
    let mut total = 0u64;
    let mut reported = Reported::default();
    let mut last_report = Instant::now();
    let mut stuck: Option<Stuck> = None;
    let mut write_failing_since: Option<Instant> = None;
    let mut last_write_error = Instant::now() - REPORT_EVERY;
    let mut backoff = Duration::from_millis(1);
    let mut last_record = Instant::now();
    let fault = FlusherFault::from_env();

    let mut last_beat = start_ns;
    loop {
        let now_ns = ringflush_ring::now_ns();
        if now_ns.wrapping_sub(last_beat) >= HEARTBEAT_EVERY {
            header.flusher.heartbeat_ns.store(now_ns, Ordering::Relaxed);
            last_beat = now_ns;
        }
        let terminating = signals.terminate.load(Ordering::Relaxed);
        if signals.reopen.swap(false, Ordering::Relaxed) {
            out.reopen()?;
        }
        if last_report.elapsed() >= REPORT_EVERY && buf.is_empty() {
            last_report = Instant::now();
            tsc.refresh();
            for line in reported.news(header) {
                eprintln!("ringflush: {line}");
                formatter.notice(
                    now_ns,
                    level::WARNING,
                    &format!("ringflush: {line}"),
                    &mut buf,
                );
            }
            if out.moved() {
                out.reopen()?;
            }
        }

        // 1. Format a batch, stopping early at a due rollover.
        let mut rotate = None;
        let mut stop = Stop::Budget;
        if written_of_buf == 0 && batch_records == 0 {
            let mut bad_payloads = 0u64;
            stop = consumer.drain(BATCH_BYTES, |r| {
                let created_ns = realtime_ns(&tsc, &r.stamp);
                if out.rollover_due((created_ns / 1_000_000_000) as i64) {
                    rotate = Some(Due::Time);
                    return false;
                }
                let before = buf.len();
                match Record::decode(r.payload) {
                    Ok(record) => formatter.format(
                        &Entry {
                            created_ns,
                            pid: r.stamp.pid,
                            record,
                        },
                        &mut buf,
                    ),
                    Err(_) => bad_payloads += 1,
                }
                // A record is never split: roll before one that would pass
                // --max-bytes, and format it again into the new file.
                if out.size_due(before as u64, (buf.len() - before) as u64) {
                    buf.truncate(before);
                    rotate = Some(Due::Size);
                    return false;
                }
                batch_records += 1;
                true
            });
            if bad_payloads > 0 {
                header
                    .counters
                    .corrupt
                    .fetch_add(bad_payloads, Ordering::Relaxed);
                eprintln!("ringflush: {bad_payloads} records with undecodable payloads skipped");
            }
        }

        // 2. Write it; release the ring only once every byte is in the file.
        let mut progressed = false;
        if written_of_buf == 0 && !buf.is_empty() && consumer.position() != consumer.head() {
            recovery::begin(
                header,
                consumer.head(),
                consumer.position(),
                &out,
                buf.len() as u64,
            );
        }
        if written_of_buf < buf.len() {
            let end = fault.limit(written_of_buf, buf.len());
            let result = match fault.write_error() {
                Some(e) => Err(e),
                None => out.write(&buf[written_of_buf..end]),
            };
            match result {
                Ok(n) => {
                    written_of_buf += n;
                    fault.after_partial_write(written_of_buf, buf.len());
                    backoff = Duration::from_millis(1);
                    if write_failing_since.take().is_some() {
                        header.flusher.write_errno.store(0, Ordering::Relaxed);
                        eprintln!("ringflush: writing to {} works again", out.path().display());
                    }
                }
                Err(e) => {
                    header
                        .flusher
                        .write_errno
                        .store(e.raw_os_error().unwrap_or(-1) as u32, Ordering::Relaxed);
                    let since = *write_failing_since.get_or_insert_with(Instant::now);
                    if last_write_error.elapsed() >= REPORT_EVERY {
                        last_write_error = Instant::now();
                        eprintln!(
                            "ringflush: writing to {} failed: {e}; records stay in the ring, retrying",
                            out.path().display()
                        );
                    }
                    if terminating && since.elapsed() > Duration::from_secs(5) {
                        bail!(
                            "writing to {} keeps failing ({e}); stopping with records left in the ring for the next flusher",
                            out.path().display()
                        );
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        if written_of_buf == buf.len() && consumer.position() != consumer.head() {
            fault.after_write();
            consumer.release();
            recovery::done(header);
            header
                .counters
                .written
                .fetch_add(batch_records, Ordering::Relaxed);
            wait::wake_space_waiters(header);
            total += batch_records;
            progressed = true;
        }
        if written_of_buf == buf.len() {
            buf.clear();
            written_of_buf = 0;
            batch_records = 0;
        }
        // Rotate only once the batch before the due record is all written.
        if let (Some(due), true) = (rotate, buf.is_empty()) {
            match out.rotate(unix_now(), due) {
                Ok(_) => {}
                Err(e) => {
                    eprintln!("ringflush: rotation failed: {e}; will retry at the next rollover")
                }
            }
        }
        if rotate.is_some() {
            continue;
        }
        if progressed || matches!(stop, Stop::Budget) {
            stuck = None;
            last_record = Instant::now();
            continue;
        }

        // 3. Nothing to do: a stuck or corrupt record, or an empty ring.
        let pos = consumer.position();
        let tail = consumer.tail();
        if tail == pos {
            stuck = None;
            if terminating {
                break;
            }
            idle(&ring, pos, last_record.elapsed());
            continue;
        }
        let st = match &mut stuck {
            Some(s) if s.pos == pos => s,
            _ => stuck.insert(Stuck {
                pos,
                since: Instant::now(),
                last_dead_check: Instant::now(),
            }),
        };
        let waited = st.since.elapsed();
        let timed_out = waited >= cfg.unblock_timeout;
        let skipped = match stop {
            Stop::Claimed(stamp) => {
                let pid = stamp.pid;
                let dead = waited >= DEAD_CHECK_AFTER
                    && st.last_dead_check.elapsed() >= DEAD_CHECK_AFTER
                    && {
                        st.last_dead_check = Instant::now();
                        !writer_alive(pid, realtime_ns(&tsc, &stamp))
                    };
                if dead || timed_out {
                    consumer.abandon_claimed().inspect(|n| {
                        header.counters.abandoned.fetch_add(1, Ordering::Relaxed);
                        let why = if dead { "its writer died" } else { "its writer stalled" };
                        eprintln!("ringflush: abandoned the record of pid {pid} at position {pos} ({n} bytes): {why}");
                    })
                } else {
                    None
                }
            }
            Stop::Empty if timed_out => consumer.abandon_unwritten().inspect(|n| {
                header.counters.abandoned.fetch_add(1, Ordering::Relaxed);
                eprintln!("ringflush: abandoned {n} claimed bytes at position {pos} whose header was never written");
            }),
            Stop::Corrupt(why) => {
                let found = consumer.skip_corrupt().or_else(|| {
                    timed_out.then(|| {
                        let n = tail - pos;
                        consumer.skip(n);
                        n
                    })
                });
                if let Some(n) = found {
                    header.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    eprintln!("ringflush: corrupt record at position {pos} ({why}); skipped {n} bytes");
                }
                found
            }
            _ => None,
        };
        if skipped.is_some() {
            stuck = None;
            continue;
        }
        if terminating {
            eprintln!(
                "ringflush: stopping with an uncommitted record at position {pos}; it stays in the ring"
            );
            break;
        }
        wait::flusher_sleep(&ring, pos, IDLE_SLEEP);
    }

    out.sync()
        .with_context(|| format!("fsync {}", out.path().display()))?;
    for line in reported.news(header) {
        eprintln!("ringflush: {line}");
    }
    header.flusher.heartbeat_ns.store(0, Ordering::Relaxed);
    eprintln!("ringflush: stopped after writing {total} records");
    Ok(total)
}

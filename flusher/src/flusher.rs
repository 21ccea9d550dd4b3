//! The flusher loop: drain the ring in batches, format, write with one
//! write(2) per batch, release, rotate; sleep on the futex when idle; give up
//! records whose writers died; report every loss in the log and on stderr.
//!
//! [`run`] sets up a `Flusher` and turns its loop; each step is a method
//! that takes the time it runs at ([`Now`]), and the state that travels
//! together lives in its own type: the batch in flight ([`Batch`]), write
//! health ([`WriteHealth`]), the stuck-record tracker ([`StuckTracker`]), the
//! loss reporter ([`LossReport`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ringflush_format::Formatter;
use ringflush_ring::{wait, Stop};

use crate::batch::{Batch, Filled};
use crate::config::FlusherConfig;
use crate::fault::Faults;
use crate::health::WriteHealth;
use crate::liveness::writer_alive;
use crate::losses::LossReport;
use crate::now::{Interval, Now};
use crate::output::{Due, Output};
use crate::recovery::{self, Recovered};
use crate::report::{Audience, Reporter};
pub use crate::signals::Signals;
use crate::source::Source;
use crate::stuck::{verdict, StuckTracker, Verdict};

/// Sleep while stuck on a record, between checks of its writer.
const IDLE_SLEEP: Duration = Duration::from_millis(10);
/// While records came recently, poll this often instead of asking producers
/// for a wake-up: no producer call pays a futex syscall during busy periods,
/// and a record still reaches write(2) within a few milliseconds. The flusher
/// does not spin: reading the lines producers are writing would pull them
/// away from the producers' core, costing each log call a cache-line transfer.
const POLL: Duration = Duration::from_millis(1);
/// After this long without records, sleep until a producer wakes us.
const DEEP_IDLE_AFTER: Duration = Duration::from_secs(1);
/// Longest deep sleep: heartbeat and reports still run.
const DEEP_SLEEP: Duration = Duration::from_millis(250);
/// How often losses are reported and the file is checked for moves.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// On SIGTERM, give up a write that keeps failing after this long.
const GIVE_UP_WRITING_AFTER: Duration = Duration::from_secs(5);

/// Run the flusher until SIGTERM/SIGINT. Returns the records written.
pub fn run(cfg: &FlusherConfig, signals: &Signals) -> Result<u64> {
    let source = Source::open(cfg)?;
    Flusher::start(cfg, signals, source)?.run()
}

/// What the loop does after writing.
enum Write {
    /// Nothing left unwritten, or the write went through.
    Done,
    /// The write failed: try again after this long.
    Retry(Duration),
}

/// Whether the loop goes on.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Stop,
}

struct Flusher<'a> {
    signals: &'a Signals,
    unblock_timeout: Duration,
    source: Source,
    out: Output,
    formatter: Formatter,
    batch: Batch,
    health: WriteHealth,
    stuck: StuckTracker,
    losses: LossReport,
    reporter: Reporter,
    reports: Interval,
    /// When the last records were drained: polling gives way to sleeping.
    last_record: std::time::Instant,
    fault: Faults,
    total: u64,
}

impl<'a> Flusher<'a> {
    /// Open the log file and finish or undo the batch a killed flusher left.
    fn start(cfg: &FlusherConfig, signals: &'a Signals, source: Source) -> Result<Self> {
        let now = Now::read();
        let mut reporter = Reporter::default();
        let formatter = Formatter::new(&cfg.format, now.unix_ns)?;
        let out = Output::open(&cfg.file, cfg.rotation.clone(), now.unix_secs())?;
        reporter.say(
            Audience::Operator,
            format_args!(
                "flushing {} ({} MiB ring) to {}",
                source.name(),
                source.capacity() >> 20,
                cfg.file.display()
            ),
        );
        let mut f = Flusher {
            signals,
            unblock_timeout: cfg.unblock_timeout,
            source,
            out,
            formatter,
            batch: Batch::default(),
            health: WriteHealth::default(),
            stuck: StuckTracker::default(),
            losses: LossReport::default(),
            reporter,
            reports: Interval::new(REPORT_EVERY),
            last_record: now.mono,
            fault: Faults::from_env(),
            total: 0,
        };
        f.recover()?;
        Ok(f)
    }

    /// The loop, until SIGTERM/SIGINT with everything committed written.
    fn run(mut self) -> Result<u64> {
        loop {
            let now = Now::read();
            let terminating = self.signals.terminate.load(Ordering::Relaxed);
            self.housekeeping(now)?;
            let filled = self.fill_batch(now);
            if let Write::Retry(backoff) = self.write_batch(now, terminating)? {
                std::thread::sleep(backoff);
                continue;
            }
            let released = self.release_batch();
            if let Some(due) = filled.rotate {
                self.rotate_if_written(due, now);
                continue;
            }
            if released || filled.stop == Stop::Budget || !self.batch.fully_written() {
                self.stuck.clear();
                self.last_record = now.mono;
                continue;
            }
            if self.unstick_or_idle(filled.stop, now, terminating) == Next::Stop {
                break;
            }
        }
        self.finish()
    }

    /// Undo or skip what a killed flusher left half done (see `recovery.rs`).
    fn recover(&mut self) -> Result<()> {
        let found =
            recovery::recover(self.source.consumer(), &mut self.out).with_context(|| {
                format!("recovering the last batch in {}", self.out.path().display())
            })?;
        let message = match found {
            Recovered::Nothing | Recovered::Unwritten => return Ok(()),
            Recovered::Skipped { bytes } => format!(
                "the previous flusher died after writing its last batch ({bytes} bytes); not writing it again"
            ),
            Recovered::Truncated { removed } => format!(
                "the previous flusher died mid-batch; removed its {removed} partial bytes and writing the batch again"
            ),
            Recovered::FileChanged => format!(
                "the previous flusher died mid-batch and {} has changed since; its last batch may appear twice",
                self.out.path().display()
            ),
        };
        self.reporter.say(Audience::Operator, message);
        Ok(())
    }

    /// Every turn: the heartbeat and SIGHUP. Once a second, between
    /// batches: the clock calibration, the loss report (into the log, ahead
    /// of the next records) and whether the file was moved away.
    fn housekeeping(&mut self, now: Now) -> Result<()> {
        self.source.beat(now.mono, now.unix_ns);
        if self.signals.reopen.swap(false, Ordering::Relaxed) {
            self.out.reopen()?;
            let path = self.out.path().display();
            let message = format_args!("reopened {path} (SIGHUP)");
            self.reporter.say(Audience::Operator, message);
        }
        if !self.batch.is_empty() || !self.reports.due(now.mono) {
            return Ok(());
        }
        self.source.refresh_clock();
        for line in self.losses.news(&self.source.header().counters) {
            self.reporter.say(Audience::Log, line);
        }
        for line in self.reporter.take_for_log() {
            self.batch
                .push_notice(&mut self.formatter, now.unix_ns, &line);
        }
        if self.out.moved() {
            self.out.reopen()?;
            let path = self.out.path().display();
            let message = format_args!("reopened {path}: it was moved or deleted");
            self.reporter.say(Audience::Operator, message);
        }
        Ok(())
    }

    /// Drain formatted records into the batch, stopping early where a
    /// rotation is due (see [`Batch::fill`]).
    fn fill_batch(&mut self, now: Now) -> Filled {
        let filled = self
            .batch
            .fill(&mut self.source, &mut self.formatter, &self.out, now.mono);
        if filled.undecodable > 0 {
            let counters = &self.source.header().counters;
            counters
                .corrupt
                .fetch_add(filled.undecodable, Ordering::Relaxed);
            let n = filled.undecodable;
            let message = format_args!("{n} records with undecodable payloads skipped");
            self.reporter.say(Audience::Operator, message);
        }
        filled
    }

    /// Write what is left of the batch. Before its first byte, the batch is
    /// recorded in the segment for crash recovery. A failed write keeps the
    /// records in the ring and is retried with back-off; on SIGTERM, after
    /// [`GIVE_UP_WRITING_AFTER`] of failures, the flusher stops.
    fn write_batch(&mut self, now: Now, terminating: bool) -> Result<Write> {
        let (written, len) = self.batch.progress();
        if written == len {
            return Ok(Write::Done);
        }
        let range = self.batch.range();
        if written == 0 && !range.is_empty() {
            recovery::begin(self.source.header(), range, &self.out, len as u64);
        }
        let pending = self.batch.unwritten();
        let result = match self.fault.before_write(written, pending.len()) {
            Ok(n) => self.out.write(&pending[..n]),
            Err(e) => Err(e),
        };
        let flusher = &self.source.header().flusher;
        match result {
            Ok(n) => {
                self.batch.wrote(n);
                self.fault.after_write(written + n, len);
                if self.health.succeeded() {
                    flusher.write_errno.store(0, Ordering::Relaxed);
                    let path = self.out.path().display();
                    self.reporter.say(
                        Audience::Operator,
                        format_args!("writing to {path} works again"),
                    );
                }
                Ok(Write::Done)
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(-1) as u32;
                flusher.write_errno.store(errno, Ordering::Relaxed);
                let failure = self.health.failed(now.mono);
                let path = self.out.path().display();
                if failure.report {
                    self.reporter.say(
                        Audience::Operator,
                        format_args!(
                            "writing to {path} failed: {e}; records stay in the ring, retrying"
                        ),
                    );
                }
                if terminating && failure.failing_for > GIVE_UP_WRITING_AFTER {
                    bail!("writing to {path} keeps failing ({e}); stopping with records left in the ring for the next flusher");
                }
                Ok(Write::Retry(failure.backoff))
            }
        }
    }

    /// Once every byte of the batch is in the file: hand its ring range back
    /// to producers and count its records. Returns whether a range was
    /// released.
    fn release_batch(&mut self) -> bool {
        if !self.batch.fully_written() {
            return false;
        }
        let released = !self.batch.range().is_empty();
        if released {
            self.fault.before_release();
            self.source.consumer().release();
            let header = self.source.header();
            recovery::done(header);
            let records = self.batch.records();
            header
                .counters
                .written
                .fetch_add(records, Ordering::Relaxed);
            wait::wake_space_waiters(header);
            self.total += records;
        }
        self.batch.clear();
        released
    }

    /// Rotate for `due` once the records before it are all written (else
    /// the next turn finds it due again). A failure is reported; the file
    /// stays open and the schedule moves on.
    fn rotate_if_written(&mut self, due: Due, now: Now) {
        if !self.batch.is_empty() {
            return;
        }
        if let Err(e) = self.out.rotate(now, due) {
            let message = format_args!("rotation failed: {e}; will retry at the next rollover");
            self.reporter.say(Audience::Operator, message);
        }
    }

    /// Nothing was drained. With the ring empty: stop if asked to, else
    /// wait for records. Else a record blocks the read position: give it up
    /// if [`verdict`] says so, else wait for its writer (or stop, leaving it
    /// in the ring, if asked to).
    fn unstick_or_idle(&mut self, stop: Stop, now: Now, terminating: bool) -> Next {
        let consumer = self.source.consumer();
        let pos = consumer.position();
        if consumer.tail() == pos {
            self.stuck.clear();
            if terminating {
                return Next::Stop;
            }
            self.idle(now);
            return Next::Continue;
        }
        let stall = self.stuck.observe(pos, now.mono);
        let source = &self.source;
        let alive =
            |stamp: &ringflush_ring::Stamp| writer_alive(stamp.pid, source.realtime_ns(stamp));
        let verdict = verdict(stop, stall, self.unblock_timeout, alive);
        if self.give_up(verdict, pos) {
            self.stuck.clear();
            return Next::Continue;
        }
        if terminating {
            let message = format_args!(
                "stopping with an uncommitted record at position {pos}; it stays in the ring"
            );
            self.reporter.say(Audience::Operator, message);
            return Next::Stop;
        }
        self.source.sleep(IDLE_SLEEP);
        Next::Continue
    }

    /// Carry out `verdict` on the record at `pos`, counting and reporting
    /// what it gave up. Returns whether the read position moved.
    fn give_up(&mut self, verdict: Verdict, pos: u64) -> bool {
        let Some(message) = verdict.apply(self.source.consumer(), pos) else {
            return false;
        };
        let counters = &self.source.header().counters;
        match verdict {
            Verdict::SkipCorrupt { .. } => counters.corrupt.fetch_add(1, Ordering::Relaxed),
            _ => counters.abandoned.fetch_add(1, Ordering::Relaxed),
        };
        self.reporter.say(Audience::Operator, message);
        true
    }

    /// Wait for the next record: poll while records came recently, then
    /// sleep until a producer wakes us.
    fn idle(&self, now: Now) {
        if now.mono - self.last_record < DEEP_IDLE_AFTER {
            std::thread::sleep(POLL);
        } else {
            self.source.sleep(DEEP_SLEEP);
        }
    }

    /// After the loop: the file synced, the last losses told, the heartbeat
    /// cleared so producers know no flusher runs.
    fn finish(mut self) -> Result<u64> {
        self.out
            .sync()
            .with_context(|| format!("fsync {}", self.out.path().display()))?;
        for line in self.losses.news(&self.source.header().counters) {
            self.reporter.say(Audience::Operator, line);
        }
        let total = self.total;
        let message = format_args!("stopped after writing {total} records");
        self.reporter.say(Audience::Operator, message);
        Ok(total)
    }
}

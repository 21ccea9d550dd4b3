//! The drain: the flusher loop that drains the ring in batches, formats,
//! writes with one write(2) per batch, releases, rotates; sleeps on the
//! futex when idle; gives up records whose writers died; reports every loss
//! in the log and on stderr. It writes through the `output` room and never
//! parses the command line: it is given a checked [`FlusherConfig`].
//!
//! The `Flusher`'s fields are private to this room: its steps live in the
//! child modules (`idle.rs`, `upkeep.rs`), the state they share in types of
//! their own.
//!
//! [`run`] sets up a `Flusher` and turns its loop; each step is a method
//! that takes the time it runs at ([`Now`]), and the state that travels
//! together lives in its own type: the batch in flight ([`Batch`]), write
//! health ([`WriteHealth`]), each segment's stuck-record tracker (in
//! [`Source`]). Upkeep between batches (heartbeats, signals, reports, a
//! moved file, a removed segment, a damaged one) is in `upkeep.rs`.
//!
//! The loop drains one or more sources: the segment the configured name
//! leads to, and any segment that name led to before it was removed or
//! replaced, until that one's producers are gone. Each batch comes from one
//! source; sources take turns.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringflush_format::Formatter;
use ringflush_ring::{requests, Stop};

mod batch;
mod fault;
mod health;
mod idle;
mod idle_exit;
mod losses;
mod merge;
mod notify;
mod recovery;
mod signals;
mod source;
mod stuck;
mod upkeep;

use batch::{Batch, Filled};
use fault::Faults;
use health::WriteHealth;
use notify::Notifier;
pub use signals::Signals;
pub use source::AlreadyRunning;
use source::Source;

use crate::config::FlusherConfig;
use crate::now::{Interval, Now};
use crate::output::{Due, Output};
use crate::report::{chain, Audience, Reporter};

/// How often losses are reported and the file is checked for moves.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// On SIGTERM, give up a write that keeps failing after this long.
const GIVE_UP_WRITING_AFTER: Duration = Duration::from_secs(5);

/// Run the flusher until SIGTERM/SIGINT. Returns the records written.
///
/// The format and the log file are checked before the segment is opened,
/// so a bad `--format`, `--datefmt` or `--file` leaves no segment behind.
pub fn run(cfg: &FlusherConfig, signals: &Signals) -> Result<u64> {
    let now = Now::read();
    let formatter = Formatter::new(&cfg.format, now.unix_ns)?;
    let existed = cfg.file.symlink_metadata().is_ok();
    let out = Output::open(&cfg.file, cfg.output.clone(), now.unix_secs())?;
    let source = match Source::open(cfg) {
        Ok(source) => source,
        Err(e) => {
            // Nor an empty log file, if this run created it.
            if !existed && out.size() == 0 {
                let _ = std::fs::remove_file(&cfg.file);
            }
            return Err(e);
        }
    };
    Flusher::start(cfg, signals, source, out, formatter)?.run()
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
    /// Turn again.
    Continue,
    /// Leave the loop.
    Stop,
}

struct Flusher<'a> {
    cfg: &'a FlusherConfig,
    signals: &'a Signals,
    /// The segment the name leads to first, then retired ones.
    sources: Vec<Source>,
    /// The source whose turn it is, and whose records the batch holds.
    turn: usize,
    out: Output,
    formatter: Formatter,
    batch: Batch,
    health: WriteHealth,
    reporter: Reporter,
    reports: Interval,
    /// When the last records were drained: polling gives way to sleeping.
    last_record: Instant,
    fault: Faults,
    total: u64,
    notifier: Notifier,
    /// Whether STOPPING=1 was sent.
    stopping_said: bool,
    /// When it started, and since when no producer lived (`--exit-when-idle`).
    started: Instant,
    idle_since: Option<Instant>,
    /// Set by `--exit-when-idle`: stop as on SIGTERM.
    idle_exit: bool,
    /// `--exit-when-idle` removed the segment's name (`idle_exit.rs`).
    removed_name: bool,
}

impl<'a> Flusher<'a> {
    /// Finish or undo the batch a killed flusher left.
    fn start(
        cfg: &'a FlusherConfig,
        signals: &'a Signals,
        source: Source,
        out: Output,
        formatter: Formatter,
    ) -> Result<Self> {
        let now = Now::read();
        let mut reporter = Reporter::default();
        let name = source.name().to_string();
        let capacity = source.capacity();
        let size = if capacity >= 1 << 20 {
            format!("{} MiB", capacity >> 20)
        } else {
            format!("{} KiB", capacity >> 10)
        };
        let file = cfg.file.display().to_string();
        reporter.say(
            Audience::Operator,
            format_args!("flushing {name} ({size} ring) to {file}"),
        );
        let mut f = Flusher {
            cfg,
            signals,
            sources: vec![source],
            turn: 0,
            out,
            formatter,
            batch: Batch::default(),
            health: WriteHealth::default(),
            reporter,
            reports: Interval::new(REPORT_EVERY),
            last_record: now.mono,
            fault: Faults::from_env(),
            total: 0,
            notifier: Notifier::from_env(),
            stopping_said: false,
            started: now.mono,
            idle_since: None,
            idle_exit: false,
            removed_name: false,
        };
        // A flusher killed while deciding to remove the segment left the
        // flag raised; this one is the segment's consumer now.
        ringflush_ring::closing::cancel(f.sources[0].header());
        f.recover()?;
        f.out.resume_unfinished()?;
        let status = format!("flushing {name} to {file}");
        f.notifier.ready(&status);
        Ok(f)
    }

    /// The loop, until SIGTERM/SIGINT with everything committed written.
    fn run(mut self) -> Result<u64> {
        loop {
            let now = Now::read();
            let terminating = self.signals.terminate.load(Ordering::Relaxed) || self.idle_exit;
            if terminating && !self.stopping_said {
                self.notifier.stopping();
                self.stopping_said = true;
            }
            self.upkeep(now);
            let filled = self.fill_batch(now, terminating);
            if let Write::Retry(backoff) = self.write_batch(now, terminating)? {
                std::thread::sleep(backoff);
                continue;
            }
            let released = self.release_batch();
            if self.batch.is_empty() && self.serve_rollover_requests(now) {
                continue;
            }
            if let Some(due) = filled.rotate {
                self.rotate_if_written(due, now);
                continue;
            }
            if released || filled.stop == Stop::Budget || !self.batch.fully_written() {
                self.source().stuck.clear();
                self.last_record = now.mono;
                continue;
            }
            if self.unstick_or_idle(filled.stop, now, terminating) == Next::Stop {
                break;
            }
        }
        self.finish()
    }

    /// The source whose turn it is.
    fn source(&mut self) -> &mut Source {
        &mut self.sources[self.turn]
    }

    /// Undo or skip what a killed flusher left half done (see `recovery.rs`).
    fn recover(&mut self) -> Result<()> {
        let found = self.sources[0].recover(&mut self.out).with_context(|| {
            format!("recovering the last batch in {}", self.out.path().display())
        })?;
        if let Some(message) = found.message(self.out.path()) {
            self.reporter.say(Audience::Log, message);
        }
        Ok(())
    }

    /// Drain formatted records into the batch from the source whose turn it
    /// is (the next one, when the batch is empty and there are several),
    /// stopping early where a rotation is due (see [`Batch::fill`]).
    fn fill_batch(&mut self, now: Now, terminating: bool) -> Filled {
        if self.batch.is_empty() && self.sources.len() > 1 {
            self.turn = (self.turn + 1) % self.sources.len();
        }
        // Records newer than the merge window wait for older ones of other
        // lanes; stopping, everything goes.
        let until = if terminating {
            u64::MAX
        } else {
            now.unix_ns.saturating_sub(merge::WINDOW.as_nanos() as u64)
        };
        let source = &mut self.sources[self.turn];
        let filled = self
            .batch
            .fill(source, &mut self.formatter, &self.out, now, until);
        if filled.undecodable > 0 {
            let counters = &source.header().counters;
            counters
                .corrupt
                .fetch_add(filled.undecodable, Ordering::Relaxed);
            let n = filled.undecodable;
            let message = format_args!("{n} records with undecodable payloads skipped");
            self.reporter.say(Audience::Operator, message);
        }
        filled
    }

    /// Write what is left of the batch. Before its first byte the batch is
    /// recorded in the segment for crash recovery, and the path is checked
    /// for a move (so a rotated-away file gets at most one batch). A failed
    /// write (or open) keeps the records in the ring and is retried with
    /// back-off; on SIGTERM, after [`GIVE_UP_WRITING_AFTER`] of failures, the
    /// flusher stops.
    fn write_batch(&mut self, now: Now, terminating: bool) -> Result<Write> {
        let (written, len) = self.batch.progress();
        if written == len {
            return Ok(Write::Done);
        }
        if written == 0 {
            self.follow_moved_file();
            let consumed = self.batch.consumed();
            if !consumed.is_empty() {
                let header = self.sources[self.turn].header();
                recovery::begin(header, consumed, &self.out, len as u64);
            }
        }
        let pending = self.batch.unwritten();
        let result = match self.fault.before_write(written, pending.len()) {
            Ok(n) => self
                .out
                .write(&pending[..n])
                .map_err(|e| (e.errno(), chain(&e))),
            Err(e) => Err((e.raw_os_error().unwrap_or(-1), e.to_string())),
        };
        let flusher = &self.sources[self.turn].header().flusher;
        let path = self.out.path().display();
        match result {
            Ok(n) => {
                self.batch.wrote(n);
                self.fault.after_write(written + n, len);
                if self.health.succeeded() {
                    flusher.write_errno.store(0, Ordering::Relaxed);
                    let message = format_args!("writing to {path} works again");
                    self.reporter.say(Audience::Operator, message);
                }
                Ok(Write::Done)
            }
            Err((errno, e)) => {
                flusher.write_errno.store(errno as u32, Ordering::Relaxed);
                let failure = self.health.failed(now.mono);
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
    /// released. If the file was moved away meanwhile, the batch went into
    /// the moved file: its records are counted at risk.
    fn release_batch(&mut self) -> bool {
        if !self.batch.fully_written() {
            return false;
        }
        let released = !self.batch.consumed().is_empty();
        if released {
            self.fault.before_release();
            let records = self.batch.records();
            let source = &mut self.sources[self.turn];
            source.release();
            let header = source.header();
            recovery::done(header);
            header
                .counters
                .written
                .fetch_add(records, Ordering::Relaxed);
            self.total += records;
            self.check_batch_landed(records);
        }
        self.batch.clear();
        released
    }

    /// Rotate for `due` once the records before it are all written (else
    /// the next turn finds it due again). A failure is reported; the file
    /// stays open and the schedule moves on. An empty file is not rotated
    /// for time (no empty backups; CPython 3.13 skips the rollover when the
    /// name is taken, as it is after a `doRollover()` in the same period):
    /// only the schedule moves on.
    fn rotate_if_written(&mut self, due: Due, now: Now) {
        if !self.batch.is_empty() {
            return;
        }
        if due == Due::Time && self.out.size() == 0 {
            self.out.skip_rotation(due, now);
            return;
        }
        if let Err(e) = self.out.rotate(now, due) {
            let e = chain(&e);
            let message = format_args!("rotation failed: {e}; will retry at the next rollover");
            self.reporter.say(Audience::Operator, message);
        }
    }

    /// Roll the file over if a process asked for it (`doRollover()`,
    /// `ringflush rotate`: see `ringflush_ring::requests`) or SIGUSR1 came,
    /// between batches; every request waiting is served by this one
    /// rollover, even a failed one (the failure is reported: the askers
    /// must not wait for ever). Returns whether it rolled.
    fn serve_rollover_requests(&mut self, now: Now) -> bool {
        let signalled = self.signals.rotate.swap(false, Ordering::Relaxed);
        let waiting: Vec<(usize, u64)> = (0..self.sources.len())
            .filter_map(|i| requests::waiting_rollover(self.sources[i].header()).map(|r| (i, r)))
            .collect();
        if !signalled && waiting.is_empty() {
            return false;
        }
        let why = if signalled {
            "SIGUSR1"
        } else {
            "a process asked"
        };
        match self.out.rotate(now, Due::Requested) {
            Ok(rotated) => {
                let rotated = rotated.display();
                let message =
                    format_args!("rolled over on request ({why}): the old file is {rotated}");
                self.reporter.say(Audience::Operator, message);
            }
            Err(e) => {
                let e = chain(&e);
                let message = format_args!("rollover on request ({why}) failed: {e}");
                self.reporter.say(Audience::Operator, message);
            }
        }
        for (i, requests) in waiting {
            requests::rolled_over(self.sources[i].header(), requests, now.unix_ns);
        }
        true
    }

    /// After the loop: the file synced, the last losses told (records left
    /// in a removed segment are lost with it). The heartbeats are cleared
    /// as the sources drop, so producers know no flusher runs.
    fn finish(mut self) -> Result<u64> {
        self.out
            .sync()
            .with_context(|| format!("fsync {}", self.out.path().display()))?;
        for i in 0..self.sources.len() {
            let source = &mut self.sources[i];
            if source.is_retired() && !source.is_empty() {
                let left = source.unread();
                let counters = &source.header().counters;
                counters.lost_bytes.fetch_add(left, Ordering::Relaxed);
            }
            for line in losses::news(self.sources[i].header()) {
                let prefix = self.source_prefix(i);
                self.reporter
                    .say(Audience::Operator, format_args!("{prefix}{line}"));
            }
        }
        let total = self.total;
        let message = format_args!("stopped after writing {total} records");
        self.reporter.say(Audience::Operator, message);
        Ok(total)
    }
}

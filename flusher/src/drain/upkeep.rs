//! The flusher's upkeep between batches: heartbeats, SIGHUP, damage to a
//! segment (every turn), and once a second the loss reports, the producer
//! registry, `--exit-when-idle` (`idle_exit.rs`), a log file moved away
//! and a segment whose name now leads elsewhere. Nothing here stops the flusher: what fails is reported and
//! tried again.

use std::sync::atomic::Ordering;

use super::source::{Damage, Source};
use super::Flusher;
use crate::now::Now;
use crate::report::{chain, Audience};

impl Flusher<'_> {
    /// Every turn: heartbeats, damage, SIGHUP. Once a second, between
    /// batches: clock calibrations, loss reports (into the log, ahead of the
    /// next records), the producer registries, the segment's name and the
    /// log file's.
    pub(super) fn upkeep(&mut self, now: Now) {
        for source in &mut self.sources {
            source.beat(now.mono, now.unix_ns);
        }
        self.notifier.watchdog(now.mono);
        for i in 0..self.sources.len() {
            if let Some(damage) = self.sources[i].guard() {
                self.count_damage(i, damage);
            }
        }
        if self.signals.reopen.swap(false, Ordering::Relaxed) {
            self.reopen("SIGHUP");
        }
        if !self.batch.is_empty() || !self.reports.due(now.mono) {
            return;
        }
        for source in &mut self.sources {
            source.refresh_clock();
            source.sweep_producers();
            source.recycle_lanes();
        }
        self.report_lanes();
        self.check_idle_exit(now);
        self.report_losses(now);
        if !self.removed_name {
            self.follow_segment_name(now);
        }
        self.follow_moved_file();
    }

    /// Report the damage the drains found in lanes (counted as they were
    /// taken) and the records that came late.
    fn report_lanes(&mut self) {
        for i in 0..self.sources.len() {
            let (damage, late) = self.sources[i].take_lane_news();
            let prefix = self.source_prefix(i);
            for d in damage {
                let (lane, why, n) = (d.lane, d.why, d.skipped);
                self.reporter.say(
                    Audience::Operator,
                    format_args!(
                        "{prefix}lane {lane} is damaged ({why}); skipped {n} bytes to its tail"
                    ),
                );
            }
            if late > 0 {
                let what = if late == 1 { "record" } else { "records" };
                self.reporter.say(Audience::Operator, format_args!(
                    "{prefix}{late} {what} became visible more than {} ms after newer ones of other writers were written (a writer descheduled or stopped between stamping and publishing a record; on a busy machine this is normal): written out of time order across writers, each writer's own order kept",
                    super::merge::WINDOW.as_millis()
                ));
            }
        }
    }

    /// Count and report damage [`Source::guard`] (or a drain) found.
    pub(super) fn count_damage(&mut self, i: usize, damage: Damage) {
        // A restore by another process counted its repair already.
        let lost = damage.lost_bytes();
        if let Damage::Restored(_) = damage {
            let counters = &self.sources[i].header().counters;
            counters.lost_bytes.fetch_add(lost, Ordering::Relaxed);
        } else {
            self.sources[i].count_repair(lost);
        }
        let name = self.sources[i].name().to_string();
        let message = format_args!("segment {name} {damage}");
        self.reporter.say(Audience::Operator, message);
    }

    /// `old segment /x: ` for a retired source, nothing for the current one.
    pub(super) fn source_prefix(&self, i: usize) -> String {
        let source = &self.sources[i];
        if source.is_retired() {
            format!("old segment {}: ", source.name())
        } else {
            String::new()
        }
    }

    /// Report every source's new losses, into the log ahead of the next
    /// records.
    fn report_losses(&mut self, now: Now) {
        for i in 0..self.sources.len() {
            let prefix = self.source_prefix(i);
            for line in super::losses::news(self.sources[i].header()) {
                self.reporter
                    .say(Audience::Log, format_args!("{prefix}{line}"));
            }
        }
        for line in self.reporter.take_for_log() {
            self.batch
                .push_notice(&mut self.formatter, now.unix_ns, &line);
        }
    }

    /// Open the log file's path again; a failure leaves it closed for the
    /// next write to retry, and is reported there.
    fn reopen(&mut self, why: &str) {
        let path = self.out.path().display().to_string();
        match self.out.reopen() {
            Ok(()) => self
                .reporter
                .say(Audience::Operator, format_args!("reopened {path} ({why})")),
            Err(e) => {
                let e = chain(&e);
                let message = format_args!("reopening {path} ({why}) failed: {e}; retrying");
                self.reporter.say(Audience::Operator, message);
            }
        }
    }

    /// If the path no longer leads to the open file, open it again: called
    /// before each batch, so a file moved away gets at most one batch more.
    pub(super) fn follow_moved_file(&mut self) {
        if self.out.moved() {
            self.reopen("it was moved or deleted");
        }
    }

    /// After a batch of `records` was written: if the file was moved away
    /// meanwhile, the batch went into the moved file, which logrotate may
    /// compress and delete before it is read to the end. Count them at risk.
    pub(super) fn check_batch_landed(&mut self, records: u64) {
        if !self.out.moved() {
            return;
        }
        let counters = &self.sources[self.turn].header().counters;
        counters.at_risk.fetch_add(records, Ordering::Relaxed);
        let path = self.out.path().display().to_string();
        self.reporter.say(Audience::Operator, format_args!(
            "{records} records were written to {path} as it was moved away; they are lost if it was compressed and deleted at once (logrotate: use delaycompress, or postrotate with a SIGHUP)"
        ));
        self.reopen("it was moved or deleted");
    }

    /// If the segment's name no longer leads to the current segment (it was
    /// removed, or replaced by one producers created), take over the one it
    /// leads to now (creating it if none), and keep draining the old one
    /// until its producers are gone; release retired ones that are done.
    fn follow_segment_name(&mut self, now: Now) {
        if !self.sources[0].still_named() {
            let name = self.sources[0].name().to_string();
            match Source::open_replacement(self.cfg) {
                Ok(new) => {
                    self.sources[0].retire(now.mono);
                    self.sources.insert(0, new);
                    self.turn = 0;
                    self.reporter.say(Audience::Log, format_args!(
                        "segment {name} was removed or replaced (by an operator, a tmp cleaner, systemd's RemoveIPC?); flushing the segment that name leads to now, and the old one until its producers are gone"
                    ));
                }
                Err(e) => self.reporter.say(Audience::Operator, format_args!(
                    "segment {name} was removed or replaced, and taking over the one that name leads to now failed: {e:#}; retrying"
                )),
            }
        }
        let mut i = 1;
        while i < self.sources.len() {
            if self.sources[i].finished(now.mono) {
                let old = self.sources.remove(i);
                let name = old.name().to_string();
                let message = format_args!(
                    "the old segment {name} is drained and its producers are gone: released"
                );
                self.reporter.say(Audience::Operator, message);
            } else {
                i += 1;
            }
        }
        self.turn = self.turn.min(self.sources.len() - 1);
    }
}

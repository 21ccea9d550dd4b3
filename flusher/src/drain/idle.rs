//! The flusher's loop when nothing was drained: the ring is empty (wait for
//! records, or stop), or a record blocks the read position (give it up by
//! the rule in `stuck.rs`, or wait for its writer).

use std::sync::atomic::Ordering;

use ringflush_ring::{Corruption, Stamp, Stop};

use std::time::Duration;

use super::source::Damage;
use super::stuck::{verdict, Verdict};
use super::{Flusher, Next};
use crate::now::Now;
use crate::report::Audience;

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

impl Flusher<'_> {
    /// Nothing was drained. With every source empty: stop if asked to, else
    /// wait for records. With records held for the merge window (or left in
    /// lanes while the shared ring is empty), poll for them. Else a record
    /// blocks the shared ring's read position: give it up if [`verdict`]
    /// says so, else wait for its writer (or stop, leaving it in the ring,
    /// if asked to).
    pub(super) fn unstick_or_idle(&mut self, stop: Stop, now: Now, terminating: bool) -> Next {
        let source = &mut self.sources[self.turn];
        if source.is_empty() {
            source.stuck.clear();
            if self.sources.iter_mut().any(|s| !s.is_empty()) {
                return Next::Continue;
            }
            if terminating {
                return Next::Stop;
            }
            self.idle(now);
            return Next::Continue;
        }
        if source.shared_is_empty()
            || (source.held() && !matches!(stop, Stop::Claimed(_) | Stop::Corrupt(_)))
        {
            source.stuck.clear();
            std::thread::sleep(POLL);
            return Next::Continue;
        }
        let pos = source.consumer().position();
        if stop == Stop::Corrupt(Corruption::BeyondTail) {
            // Valid records beyond the tail: the tail was moved back.
            let damage = Damage::ControlWords(source.consumer().repair());
            self.count_damage(self.turn, damage);
            return Next::Continue;
        }
        let stall = source.stuck.observe(pos, now.mono);
        let alive = |stamp: &Stamp| source.writer_alive(stamp);
        let verdict = verdict(stop, stall, self.cfg.unblock_timeout, alive);
        if self.give_up(verdict, pos) {
            self.source().stuck.clear();
            return Next::Continue;
        }
        if terminating {
            let message = format_args!(
                "stopping with an uncommitted record at position {pos}; it stays in the ring"
            );
            self.reporter.say(Audience::Operator, message);
            return Next::Stop;
        }
        if self.sources.len() > 1 {
            std::thread::sleep(POLL);
        } else {
            self.source().sleep(IDLE_SLEEP);
        }
        Next::Continue
    }

    /// Carry out `verdict` on the record at `pos`, counting and reporting
    /// what it gave up. Returns whether the read position moved.
    fn give_up(&mut self, verdict: Verdict, pos: u64) -> bool {
        let source = self.source();
        let Some(message) = verdict.apply(source.consumer(), pos) else {
            return false;
        };
        let counters = &source.header().counters;
        match verdict {
            Verdict::SkipCorrupt { .. } => counters.corrupt.fetch_add(1, Ordering::Relaxed),
            _ => counters.abandoned.fetch_add(1, Ordering::Relaxed),
        };
        self.reporter.say(Audience::Operator, message);
        true
    }

    /// Wait for the next record: poll while records came recently (or while
    /// several segments are drained: a futex waits on one), then sleep
    /// until a producer wakes us.
    fn idle(&mut self, now: Now) {
        if now.mono - self.last_record < DEEP_IDLE_AFTER || self.sources.len() > 1 {
            std::thread::sleep(POLL);
        } else {
            self.source().sleep(DEEP_SLEEP);
        }
    }
}

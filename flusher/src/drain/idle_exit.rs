//! `--exit-when-idle`: the flusher an application starts for itself exits
//! once no producer of its segment is left, and removes the segment on the
//! way out, race-free against a producer opening it at that moment (the
//! handshake of `ringflush_ring::closing`).

use std::time::Duration;

use ringflush_ring::{closing, Segment};

use super::Flusher;
use crate::now::Now;
use crate::report::Audience;

/// How long no producer must be alive before `--exit-when-idle` exits.
const IDLE_EXIT_AFTER: Duration = Duration::from_secs(2);

impl Flusher<'_> {
    /// Called once a second between batches. Once no registered producer
    /// has lived for [`IDLE_EXIT_AFTER`] (and not in the first seconds,
    /// before the first producer may have registered): decide, under the
    /// closing flag, to remove the segment's name; once the name is gone
    /// and the registry stays empty, stop as on SIGTERM (drain, write,
    /// exit).
    pub(super) fn check_idle_exit(&mut self, now: Now) {
        if !self.cfg.exit_when_idle || self.idle_exit {
            return;
        }
        if !self.nobody_left() {
            self.idle_since = None;
            return;
        }
        if self.removed_name {
            // A producer that registered after the decision (a forked child
            // at its first record) had a second to show itself.
            self.idle_exit = true;
            self.reporter.say(
                Audience::Operator,
                "no producer of the segment is left: draining and exiting (--exit-when-idle)",
            );
            return;
        }
        let since = *self.idle_since.get_or_insert(now.mono);
        if now.mono - since >= IDLE_EXIT_AFTER && now.mono - self.started >= IDLE_EXIT_AFTER {
            self.remove_segment_name();
        }
    }

    /// One segment, a complete registry, no live producer, nothing unread.
    fn nobody_left(&mut self) -> bool {
        if self.sources.len() != 1 {
            return false;
        }
        let source = &mut self.sources[0];
        !ringflush_ring::registry::overflowed(source.header())
            && source.sweep_producers().is_empty()
            && source.is_empty()
    }

    /// Raise the closing flag, look again, and remove the name if still
    /// nobody is there; else lower the flag and carry on.
    fn remove_segment_name(&mut self) {
        closing::begin(self.sources[0].header());
        self.fault.while_closing();
        if !self.nobody_left() {
            closing::cancel(self.sources[0].header());
            self.idle_since = None;
            return;
        }
        self.removed_name = true;
        let source = &self.sources[0];
        let name = source.name().to_string();
        if !source.still_named() {
            return;
        }
        if let Err(e) = Segment::unlink(&name) {
            let message = format_args!("removing the idle segment {name} failed: {e}; it stays");
            self.reporter.say(Audience::Operator, message);
        }
    }
}

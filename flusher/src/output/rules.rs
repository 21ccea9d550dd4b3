//! When the log file rolls over: every rotation rule in one place.
//!
//! [`Rules`] is what the operator asked for (`--when` and friends,
//! `--max-bytes`); [`Schedule`] applies them to the file being written, with
//! the state they need (the next timed rollover, a hold after a failed size
//! rotation). The drain asks [`Schedule::due`] once per record, with the
//! record already formatted ([`Next`]); every decision that depends on
//! *why* a rotation happens is an exhaustive `match` on [`Due`] here, so a
//! new rule is a new variant and the compiler points at each place that
//! must handle it (see docs/ARCHITECTURE.md, "Adding a rotation criterion").

use std::time::{Duration, Instant};

use ringflush_rotation::Timed;

use crate::now::Now;

/// How long a failed size rotation waits before the next try, writing on
/// past `--max-bytes` meanwhile (instead of retrying before every record).
const SIZE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The rotation rules the flusher was given; none means the file never rolls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Timed rotation (`--when`), which also names rotated files by date;
    /// without it they are numbered.
    pub timed: Option<Timed>,
    /// Roll when the next record would take the file to this size
    /// (`--max-bytes`, RotatingFileHandler's `maxBytes`).
    pub max_bytes: Option<u64>,
}

/// Why a rotation is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The next record's time reached the timed rollover.
    Time,
    /// The next record would take the file to `--max-bytes`.
    Size,
    /// Asked for: `doRollover()`, `ringflush rotate`, SIGUSR1. Never found
    /// by [`Schedule::due`]; the drain rotates for it between batches.
    Requested,
}

impl Due {
    /// Every rule a record can make due, in the order they are asked: when
    /// two are due at once, the first names the rotation.
    pub const ALL: [Due; 2] = [Due::Time, Due::Size];

    /// The first `.N` index a dated name gets for this rotation: a timed
    /// rollover takes the plain dated name when it is free, size rolls
    /// within a period are numbered from 1.
    pub fn first_index(self) -> u64 {
        match self {
            Due::Time | Due::Requested => 0,
            Due::Size => 1,
        }
    }
}

/// The record the drain is about to add to the file, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Next {
    /// Its time, in Unix seconds.
    pub created_secs: i64,
    /// Bytes the file will hold before it: written, plus pending in the batch.
    pub file_bytes: u64,
    /// Its formatted length.
    pub len: u64,
    /// The flusher's clock.
    pub now: Instant,
    /// The flusher's clock in Unix seconds.
    pub now_secs: i64,
}

/// The rules applied to the file being written.
#[derive(Debug, Clone)]
pub struct Schedule {
    rules: Rules,
    /// Unix second of the next timed rollover.
    rollover_at: Option<i64>,
    /// After a failed size rotation, write on (past `--max-bytes`) until then.
    size_hold_until: Option<Instant>,
}

impl Schedule {
    /// The schedule of a file whose period started at `since` (Unix
    /// seconds: its mtime, as CPython takes it, or now for a new file).
    pub fn new(rules: Rules, since: i64) -> Self {
        Self {
            rollover_at: rules.timed.map(|t| t.next_rollover(since)),
            rules,
            size_hold_until: None,
        }
    }

    /// The rules it applies.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Unix second of the next timed rollover, if the file rolls by time.
    pub fn rollover_at(&self) -> Option<i64> {
        self.rollover_at
    }

    /// Whether the file must roll before `next` goes in, and why.
    #[inline]
    pub fn due(&self, next: &Next) -> Option<Due> {
        Due::ALL.into_iter().find(|&due| self.fires(due, next))
    }

    #[inline]
    fn fires(&self, due: Due, next: &Next) -> bool {
        match due {
            Due::Time => self.rollover_at.is_some_and(|at| {
                next.created_secs >= at
                    && (next.now_secs >= at || self.within_next_period(at, next.created_secs))
            }),
            // RotatingFileHandler's rule: roll when the file is not empty and
            // would reach max_bytes, unless a failed rotation put it on hold.
            Due::Size => self.rules.max_bytes.is_some_and(|max| {
                next.file_bytes > 0
                    && next.file_bytes + next.len >= max
                    && self.size_hold_until.is_none_or(|t| next.now >= t)
            }),
            Due::Requested => false,
        }
    }

    /// Whether a record stamped `created`, at or after the rollover `at`
    /// that the flusher's clock has not reached, falls in the period that
    /// starts there. A record stamped before the rollover by the clock
    /// rolls the file into its period (its file); one stamped further ahead
    /// (a stepped clock, `makeLogRecord(created=...)`) goes into the file
    /// open now. Rolling for it would not help: the next rollover counts
    /// from now, it would be due again at once, and the flusher would roll
    /// on and on without writing it.
    fn within_next_period(&self, at: i64, created: i64) -> bool {
        self.rules
            .timed
            .is_some_and(|t| created < t.next_rollover(at))
    }

    /// The file was rotated for `due` at `now`.
    pub fn rotated(&mut self, due: Due, now: Now) {
        match due {
            // As CPython's doRollover: the next rollover counts from now.
            Due::Time | Due::Requested => self.rollover_at = self.next_rollover(now),
            Due::Size => {}
        }
        self.size_hold_until = None;
    }

    /// Rotating for `due` at `now` failed. A timed schedule moves on anyway,
    /// so the rotation is retried at the next rollover, not once per record;
    /// a size rotation is retried after [`SIZE_RETRY_AFTER`].
    pub fn failed(&mut self, due: Due, now: Now) {
        match due {
            Due::Time => self.rollover_at = self.next_rollover(now),
            Due::Size => self.size_hold_until = Some(now.mono + SIZE_RETRY_AFTER),
            // The asker is told it failed; the schedule stays.
            Due::Requested => {}
        }
    }

    fn next_rollover(&self, now: Now) -> Option<i64> {
        Some(self.rules.timed?.next_rollover(now.unix_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_rotation::{Clock, When};

    /// 2024-03-06 10:00:00 UTC.
    const T: i64 = 1_709_719_200;

    /// A record as the rules see it, the flusher's clock past any rollover.
    fn next(created_secs: i64, file_bytes: u64, len: u64, now: Instant) -> Next {
        Next {
            now_secs: i64::MAX,
            created_secs,
            file_bytes,
            len,
            now,
        }
    }

    #[test]
    fn every_rule_is_asked() {
        // Adding a variant without listing it in ALL (or here, as one no
        // record makes due) fails here.
        for due in Due::ALL {
            match due {
                Due::Time | Due::Size => {}
                Due::Requested => panic!("no record makes a requested rollover due"),
            }
        }
        assert_eq!(Due::ALL.len(), 2);
    }

    #[test]
    fn size_rule_is_rotating_file_handlers() {
        let rules = Rules {
            max_bytes: Some(100),
            ..Rules::default()
        };
        let s = Schedule::new(rules, T);
        let now = Instant::now();
        // An empty file takes even an oversized record.
        assert_eq!(s.due(&next(T, 0, 500, now)), None);
        assert_eq!(s.due(&next(T, 60, 39, now)), None);
        assert_eq!(s.due(&next(T, 60, 40, now)), Some(Due::Size));
        assert_eq!(s.due(&next(T, 100, 0, now)), Some(Due::Size));
    }

    #[test]
    fn a_record_stamped_beyond_the_next_period_does_not_roll_the_file() {
        let rules = Rules {
            timed: Some(Timed::new(When::Second, 2, None, Clock::Utc).unwrap()),
            max_bytes: None,
        };
        let mut s = Schedule::new(rules, T);
        let at = s.rollover_at().unwrap();
        let ahead = |created: i64, now_secs: i64| Next {
            now_secs,
            ..next(created, 0, 10, Instant::now())
        };
        // The flusher's clock before the rollover: a record of the next
        // period rolls the file, one stamped further ahead does not.
        assert_eq!(s.due(&ahead(at, T)), Some(Due::Time));
        assert_eq!(s.due(&ahead(at + 1, T)), Some(Due::Time));
        assert_eq!(s.due(&ahead(at + 2, T)), None);
        assert_eq!(s.due(&ahead(T + 3600, T)), None);
        // Once the clock is there, it rolls as any; after that rotation the
        // same record is beyond the next period again: written, no loop.
        assert_eq!(s.due(&ahead(T + 3600, at)), Some(Due::Time));
        s.rotated(Due::Time, Now::at(at));
        assert_eq!(s.due(&ahead(T + 3600, at)), None);
    }

    #[test]
    fn time_comes_first_and_the_schedule_moves_on_after_a_rotation_or_a_failure() {
        let rules = Rules {
            timed: Some(Timed::new(When::Midnight, 1, None, Clock::Utc).unwrap()),
            max_bytes: Some(100),
        };
        let mut s = Schedule::new(rules, T);
        let midnight = T + 14 * 3600;
        let now = Now::at(midnight);
        assert_eq!(s.due(&next(midnight - 1, 0, 10, now.mono)), None);
        assert_eq!(s.due(&next(midnight, 99, 10, now.mono)), Some(Due::Time));
        s.rotated(Due::Time, now);
        assert_eq!(s.rollover_at(), Some(midnight + 86_400));
        s.failed(Due::Time, Now::at(midnight + 86_400));
        assert_eq!(s.rollover_at(), Some(midnight + 2 * 86_400));
    }

    /// A size rotation that failed is not retried on every record, but
    /// after a second: the hold ends exactly then, and a success lifts it.
    #[test]
    fn a_failed_size_rotation_holds_for_a_second() {
        let rules = Rules {
            max_bytes: Some(100),
            ..Rules::default()
        };
        let mut s = Schedule::new(rules, T);
        let now = Now::at(T);
        s.failed(Due::Size, now);
        let at = |d: Duration| s.due(&next(T, 60, 40, now.mono + d));
        assert_eq!(at(Duration::ZERO), None);
        assert_eq!(at(SIZE_RETRY_AFTER - Duration::from_millis(1)), None);
        assert_eq!(at(SIZE_RETRY_AFTER), Some(Due::Size));
        s.failed(Due::Size, now);
        s.rotated(Due::Time, now);
        assert_eq!(s.due(&next(T, 60, 40, now.mono)), Some(Due::Size));
    }

    #[test]
    fn a_file_without_rules_never_rolls() {
        let s = Schedule::new(Rules::default(), T);
        assert_eq!(
            s.due(&next(i64::MAX, u64::MAX / 2, 1 << 20, Instant::now())),
            None
        );
        assert_eq!(Due::Time.first_index(), 0);
        assert_eq!(Due::Size.first_index(), 1);
    }
}

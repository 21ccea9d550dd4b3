//! Whether writing to the log file works, and how to retry when it does not:
//! a failing write is retried with exponential back-off (1 ms doubling to
//! 1 s) and reported at most once a second, while its records stay in the
//! ring; the first success after a failure says so.

use std::time::{Duration, Instant};

use crate::now::Interval;

const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The state of writing. Invariant: `failing_since` is set exactly while the
/// last write failed, and `backoff` is `FIRST_BACKOFF` (1 ms) while writes work.
#[derive(Debug)]
pub struct WriteHealth {
    failing_since: Option<Instant>,
    backoff: Duration,
    reports: Interval,
}

/// What to do after a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Tell the operator now (at most once per second).
    pub report: bool,
    /// Wait this long before the next attempt.
    pub backoff: Duration,
    /// How long writes have been failing, this one included.
    pub failing_for: Duration,
}

impl Default for WriteHealth {
    fn default() -> Self {
        Self {
            failing_since: None,
            backoff: FIRST_BACKOFF,
            reports: Interval::new(REPORT_EVERY),
        }
    }
}

impl WriteHealth {
    /// A write succeeded. Returns whether writes were failing until now.
    pub fn succeeded(&mut self) -> bool {
        self.backoff = FIRST_BACKOFF;
        self.failing_since.take().is_some()
    }

    /// A write failed at `now`.
    pub fn failed(&mut self, now: Instant) -> Failure {
        let since = *self.failing_since.get_or_insert(now);
        let backoff = self.backoff;
        self.backoff = (backoff * 2).min(MAX_BACKOFF);
        Failure {
            report: self.reports.due(now),
            backoff,
            failing_for: now - since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_a_second_and_resets_on_success() {
        let t0 = Instant::now();
        let mut h = WriteHealth::default();
        let waits: Vec<u64> = (0..13)
            .map(|i| h.failed(t0 + Duration::from_millis(i)).backoff.as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000]
        );
        assert!(h.succeeded(), "it was failing");
        assert!(!h.succeeded(), "and now it is not");
        assert_eq!(h.failed(t0).backoff, FIRST_BACKOFF);
    }

    #[test]
    fn failures_are_reported_once_a_second_and_timed_from_the_first() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut h = WriteHealth::default();
        let first = h.failed(at(0));
        assert!(first.report);
        assert_eq!(first.failing_for, Duration::ZERO);
        assert!(!h.failed(at(500)).report);
        let later = h.failed(at(1200));
        assert!(later.report);
        assert_eq!(later.failing_for, Duration::from_millis(1200));
        h.succeeded();
        assert_eq!(h.failed(at(1300)).failing_for, Duration::ZERO);
    }
}

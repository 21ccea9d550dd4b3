//! The flusher's clock. The loop reads it once per turn and passes the value
//! down, so every timing rule (back-off, report intervals, dead-writer
//! checks, rollovers) is a function of the [`Now`] it is given, and unit
//! tests drive a fake one instead of sleeping.

use std::time::{Duration, Instant};

/// One reading of both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For intervals: back-off, reports, how long a record is stuck.
    pub mono: Instant,
    /// Realtime ns since the Unix epoch: heartbeats and rollovers.
    pub unix_ns: u64,
}

impl Now {
    /// The clocks now.
    pub fn read() -> Self {
        Self {
            mono: Instant::now(),
            unix_ns: ringflush_ring::now_ns(),
        }
    }

    /// A fake reading at `unix_secs` (tests).
    #[cfg(test)]
    pub fn at(unix_secs: i64) -> Self {
        Self {
            mono: Instant::now(),
            unix_ns: unix_secs as u64 * 1_000_000_000,
        }
    }

    /// Unix seconds.
    pub fn unix_secs(&self) -> i64 {
        (self.unix_ns / 1_000_000_000) as i64
    }

    /// Both clocks moved on by `d` (tests).
    #[cfg(test)]
    pub fn after(self, d: Duration) -> Self {
        Self {
            mono: self.mono + d,
            unix_ns: self.unix_ns + d.as_nanos() as u64,
        }
    }
}

/// Something done at most once per `every`: reports, heartbeats.
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    every: Duration,
    last: Option<Instant>,
}

impl Interval {
    /// Due at the first call, then `every` after the last time it was due.
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// Whether it is due at `now`; if so, the next is `every` later.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self.last.is_none_or(|last| now >= last + self.every);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_due_at_once_then_once_per_period() {
        let t0 = Instant::now();
        let mut every = Interval::new(Duration::from_secs(1));
        assert!(every.due(t0));
        assert!(!every.due(t0 + Duration::from_millis(999)));
        assert!(every.due(t0 + Duration::from_millis(1000)));
        assert!(!every.due(t0 + Duration::from_millis(1500)));
        assert!(every.due(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn a_fake_reading_moves_both_clocks() {
        let t = Now::at(1_700_000_000);
        assert_eq!(t.unix_secs(), 1_700_000_000);
        let later = t.after(Duration::from_millis(1500));
        assert_eq!(later.unix_secs(), 1_700_000_001);
        assert_eq!(later.mono - t.mono, Duration::from_millis(1500));
    }
}

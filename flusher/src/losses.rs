//! The segment's loss counters as report lines: what changed since the last
//! report, so each loss is told once by this flusher.

use std::sync::atomic::Ordering;

use ringflush_ring::layout::Counters;

/// Counter values last reported.
#[derive(Debug, Default)]
pub struct LossReport {
    dropped: u64,
    truncated: u64,
    abandoned: u64,
    corrupt: u64,
    late_commits: u64,
}

impl LossReport {
    /// Lines describing losses since the last call, in a fixed order.
    pub fn news(&mut self, c: &Counters) -> Vec<String> {
        let mut lines = Vec::new();
        let mut check = |last: &mut u64, now: u64, what: &str| {
            if now > *last {
                lines.push(format!("{} {what}", now - *last));
                *last = now;
            }
        };
        let load = |counter: &ringflush_ring::sync::AtomicU64| counter.load(Ordering::Relaxed);
        check(
            &mut self.dropped,
            load(&c.dropped),
            "records dropped by producers (ring full)",
        );
        check(
            &mut self.truncated,
            load(&c.truncated),
            "records truncated to the maximum record size",
        );
        check(
            &mut self.abandoned,
            load(&c.abandoned),
            "records abandoned (writer died or stalled before committing)",
        );
        check(
            &mut self.corrupt,
            load(&c.corrupt),
            "corrupt ring regions skipped",
        );
        check(
            &mut self.late_commits,
            load(&c.late_commits),
            "late commits refused (record already abandoned)",
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loss_is_reported_once_as_the_difference() {
        let c = Counters::default();
        let mut report = LossReport::default();
        assert!(report.news(&c).is_empty());
        c.dropped.store(5, Ordering::Relaxed);
        c.corrupt.store(1, Ordering::Relaxed);
        assert_eq!(
            report.news(&c),
            [
                "5 records dropped by producers (ring full)",
                "1 corrupt ring regions skipped"
            ]
        );
        assert!(report.news(&c).is_empty());
        c.dropped.store(7, Ordering::Relaxed);
        assert_eq!(
            report.news(&c),
            ["2 records dropped by producers (ring full)"]
        );
    }
}

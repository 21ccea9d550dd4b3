//! The segment's loss counters as report lines: what changed since the last
//! report. What has been reported is kept in the segment itself
//! (`SegmentHeader::reported`), so a restarted flusher tells each loss once,
//! and a loss counted while no flusher ran is told by the next one.

use std::sync::atomic::Ordering;

use ringflush_ring::SegmentHeader;

/// What each loss counter counts, as a report line says it after the
/// number `n` (singular for one).
fn describe(counter: &str, n: u64) -> String {
    let (one, many, rest) = match counter {
        "dropped" => ("record", "records", " dropped by producers (ring full)"),
        "truncated" => ("record", "records", " truncated to the maximum record size"),
        "abandoned" => (
            "record",
            "records",
            " abandoned (writer died or stalled before committing)",
        ),
        "corrupt" => ("corrupt ring region", "corrupt ring regions", " skipped"),
        "late_commits" => (
            "late commit",
            "late commits",
            " refused (record already abandoned)",
        ),
        "repairs" => (
            "repair",
            "repairs",
            " of the segment (control words reset or its size restored)",
        ),
        "lost_bytes" => ("ring byte", "ring bytes", " lost in those repairs"),
        "at_risk" => (
            "record",
            "records",
            " written as the log file was moved away (lost if it was compressed and deleted at once: use delaycompress, or a postrotate SIGHUP)",
        ),
        _ => ("other loss", "other losses", ""),
    };
    format!("{n} {}{rest}", if n == 1 { one } else { many })
}

/// Lines describing the losses counted since the last report, in a fixed
/// order; marks them reported.
pub fn news(h: &SegmentHeader) -> Vec<String> {
    let mut lines = Vec::new();
    for ((name, counter), (_, reported)) in h.counters.losses().into_iter().zip(h.reported.losses())
    {
        let now = counter.load(Ordering::Relaxed);
        let last = reported.load(Ordering::Relaxed);
        if now > last {
            lines.push(describe(name, now - last));
        }
        // A counter below what was reported: the segment was damaged and
        // its counters lost; count on from there.
        if now != last {
            reported.store(now, Ordering::Relaxed);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loss_is_reported_once_as_the_difference_even_across_flushers() {
        let h = Box::<SegmentHeader>::default();
        assert!(news(&h).is_empty());
        h.counters.dropped.store(5, Ordering::Relaxed);
        h.counters.corrupt.store(1, Ordering::Relaxed);
        assert_eq!(
            news(&h),
            [
                "5 records dropped by producers (ring full)",
                "1 corrupt ring region skipped"
            ]
        );
        // What was reported lives in the segment: a new flusher does not
        // report it again.
        assert!(news(&h).is_empty());
        h.counters.dropped.store(7, Ordering::Relaxed);
        assert_eq!(news(&h), ["2 records dropped by producers (ring full)"]);
        h.counters.at_risk.store(3, Ordering::Relaxed);
        assert!(news(&h)[0].starts_with("3 records written as the log file was moved away"));
    }
}

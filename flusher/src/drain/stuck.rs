//! A read position that does not move, and what to do about it.
//!
//! The drain stops at the first record that is not committed. If its writer
//! is alive and merely slow, wait; if it died (checked in /proc at most every
//! [`DEAD_CHECK_AFTER`]), give the record up at once; if it is alive but has
//! not committed within `--unblock-timeout`, give it up too. A claim whose
//! header was never written, and a corrupt region, are skipped the same way.
//! Every record given up is counted in the segment.

use std::time::{Duration, Instant};

use std::ops::Deref;

use ringflush_ring::{Consumer, Corruption, Region, SegmentHeader, Stamp, Stop};

/// A stuck record is checked for a dead writer after this long, and at most
/// this often.
pub const DEAD_CHECK_AFTER: Duration = Duration::from_millis(200);

/// Where the read position has been stuck since.
#[derive(Debug, Default)]
pub struct StuckTracker {
    at: Option<Stuck>,
}

#[derive(Debug)]
struct Stuck {
    pos: u64,
    since: Instant,
    last_dead_check: Instant,
}

/// How long the position has been stuck, and whether to look for its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Time since the drain first stopped at this position.
    pub waited: Duration,
    /// Whether to look for the record's writer now: true once the stall is
    /// [`DEAD_CHECK_AFTER`] old, then at most once per that interval.
    pub check_writer: bool,
}

impl StuckTracker {
    /// The position moved (or nothing is pending): forget the timer.
    pub fn clear(&mut self) {
        self.at = None;
    }

    /// The drain stopped at `pos` again at `now`.
    pub fn observe(&mut self, pos: u64, now: Instant) -> Stall {
        let st = match &mut self.at {
            Some(s) if s.pos == pos => s,
            _ => self.at.insert(Stuck {
                pos,
                since: now,
                last_dead_check: now,
            }),
        };
        let waited = now - st.since;
        let check_writer =
            waited >= DEAD_CHECK_AFTER && now - st.last_dead_check >= DEAD_CHECK_AFTER;
        if check_writer {
            st.last_dead_check = now;
        }
        Stall {
            waited,
            check_writer,
        }
    }
}

/// What to do with the record the drain stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its writer may still commit it.
    Wait,
    /// Give up the claimed record of `pid`.
    AbandonClaimed {
        /// The writer's pid, from the record's header.
        pid: u32,
        /// The writer is gone (else it stalled past `--unblock-timeout`).
        writer_died: bool,
    },
    /// Give up a claim whose header was never written.
    AbandonUnwritten,
    /// Skip to the next valid header; with `or_to_tail`, to the tail if
    /// there is none.
    SkipCorrupt {
        /// What is wrong with the header at the position.
        why: Corruption,
        /// The position has been stuck for `--unblock-timeout`: skip to the
        /// tail when no valid header follows.
        or_to_tail: bool,
    },
}

impl Verdict {
    /// Carry it out on the record at the read position `pos`: the line to
    /// report when the position moved, `None` when it did not (waiting, or
    /// the record was committed meanwhile, or no valid header follows yet).
    pub fn apply<H, R>(self, consumer: &mut Consumer<H, R>, pos: u64) -> Option<String>
    where
        H: Deref<Target = SegmentHeader>,
        R: Region,
    {
        match self {
            Verdict::Wait => None,
            Verdict::AbandonClaimed { pid, writer_died } => {
                let n = consumer.abandon_claimed()?;
                let why = if writer_died {
                    "its writer died"
                } else {
                    "its writer stalled"
                };
                Some(format!(
                    "abandoned the record of pid {pid} at position {pos} ({n} bytes): {why}"
                ))
            }
            Verdict::AbandonUnwritten => {
                let n = consumer.abandon_unwritten()?;
                Some(format!(
                    "abandoned {n} claimed bytes at position {pos} whose header was never written"
                ))
            }
            Verdict::SkipCorrupt { why, or_to_tail } => {
                let n = consumer.skip_corrupt().or_else(|| {
                    or_to_tail.then(|| {
                        let n = consumer.tail() - pos;
                        consumer.skip(n);
                        n
                    })
                })?;
                Some(format!(
                    "corrupt record at position {pos} ({why}); skipped {n} bytes"
                ))
            }
        }
    }
}

/// The rule. `writer_alive` is asked only when `stall.check_writer` says so.
pub fn verdict(
    stop: Stop,
    stall: Stall,
    unblock_timeout: Duration,
    writer_alive: impl FnOnce(&Stamp) -> bool,
) -> Verdict {
    let timed_out = stall.waited >= unblock_timeout;
    match stop {
        Stop::Claimed(stamp) => {
            let writer_died = stall.check_writer && !writer_alive(&stamp);
            if writer_died || timed_out {
                Verdict::AbandonClaimed {
                    pid: stamp.pid,
                    writer_died,
                }
            } else {
                Verdict::Wait
            }
        }
        Stop::Empty if timed_out => Verdict::AbandonUnwritten,
        Stop::Corrupt(why) => Verdict::SkipCorrupt {
            why,
            or_to_tail: timed_out,
        },
        Stop::Empty | Stop::Budget | Stop::Visitor => Verdict::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_ring::{HeapRegion, Ring};
    use std::sync::atomic::{AtomicU64, Ordering};

    const STAMP: Stamp = Stamp {
        pid: 42,
        flags: 0,
        timestamp: 0,
    };
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_writer_is_checked_after_200_ms_then_every_200_ms() {
        let t0 = Instant::now();
        let mut t = StuckTracker::default();
        let checks: Vec<bool> = [0, 100, 199, 200, 250, 399, 400, 401]
            .map(|m| t.observe(8, t0 + ms(m)).check_writer)
            .to_vec();
        assert_eq!(
            checks,
            [false, false, false, true, false, false, true, false]
        );
        assert_eq!(t.observe(8, t0 + ms(450)).waited, ms(450));
        // A new position starts a new timer.
        assert_eq!(t.observe(16, t0 + ms(500)).waited, Duration::ZERO);
        t.clear();
        assert_eq!(t.observe(16, t0 + ms(600)).waited, Duration::ZERO);
    }

    #[test]
    fn a_dead_writers_record_is_given_up_at_the_check_a_live_ones_at_the_timeout() {
        let stall = |waited, check_writer| Stall {
            waited,
            check_writer,
        };
        let claimed = Stop::Claimed(STAMP);
        let dead = |_: &Stamp| false;
        let alive = |_: &Stamp| true;
        assert_eq!(
            verdict(claimed, stall(ms(100), false), TIMEOUT, dead),
            Verdict::Wait
        );
        assert_eq!(
            verdict(claimed, stall(ms(200), true), TIMEOUT, dead),
            Verdict::AbandonClaimed {
                pid: 42,
                writer_died: true
            }
        );
        assert_eq!(
            verdict(claimed, stall(ms(9_999), true), TIMEOUT, alive),
            Verdict::Wait
        );
        assert_eq!(
            verdict(claimed, stall(TIMEOUT, false), TIMEOUT, alive),
            Verdict::AbandonClaimed {
                pid: 42,
                writer_died: false
            }
        );
    }

    #[test]
    fn unwritten_claims_wait_for_the_timeout_and_corruption_is_skipped() {
        let stall = |waited| Stall {
            waited,
            check_writer: false,
        };
        let never = |_: &Stamp| -> bool { panic!("no writer to check") };
        assert_eq!(
            verdict(Stop::Empty, stall(ms(9_999)), TIMEOUT, never),
            Verdict::Wait
        );
        assert_eq!(
            verdict(Stop::Empty, stall(TIMEOUT), TIMEOUT, never),
            Verdict::AbandonUnwritten
        );
        let corrupt = Stop::Corrupt(Corruption::BadLength);
        assert_eq!(
            verdict(corrupt, stall(ms(0)), TIMEOUT, never),
            Verdict::SkipCorrupt {
                why: Corruption::BadLength,
                or_to_tail: false
            }
        );
        assert_eq!(
            verdict(corrupt, stall(TIMEOUT), TIMEOUT, never),
            Verdict::SkipCorrupt {
                why: Corruption::BadLength,
                or_to_tail: true
            }
        );
    }

    /// A ring whose first record (48 bytes) is committed and read, and whose
    /// second (64 bytes, at 48) is left as `second` says.
    fn ring_stuck_at_48<'a>(
        region: &'a HeapRegion,
        second: &str,
    ) -> Ring<Box<SegmentHeader>, &'a HeapRegion> {
        let h = Box::<SegmentHeader>::default();
        h.identity.max_record.store(256, Ordering::Relaxed);
        let ring = Ring::new(h, region);
        let cache = AtomicU64::new(0);
        let first = ring.try_claim(48, STAMP, &cache).unwrap();
        ring.commit(first).unwrap();
        let reserved = ring.try_reserve(64, &cache).unwrap();
        match second {
            // The writer stops before its commit, or before its header.
            "claimed" => {
                ring.stamp(reserved, STAMP);
            }
            "unwritten" => {}
            _ => {
                let claim = ring.stamp(reserved, STAMP);
                ring.commit(claim).unwrap();
                // A length no record has.
                let word = region.word(48).load(Ordering::Relaxed);
                region.word(48).store(word | 1 << 28, Ordering::Relaxed);
            }
        }
        ring
    }

    /// Each verdict moves the read position past the record, and says so.
    #[test]
    fn applying_a_verdict_gives_the_record_up_and_reports_it() {
        let cases = [
            (
                "claimed",
                Verdict::AbandonClaimed {
                    pid: 42,
                    writer_died: true,
                },
                "abandoned the record of pid 42 at position 48 (64 bytes): its writer died",
            ),
            (
                "claimed",
                Verdict::AbandonClaimed {
                    pid: 42,
                    writer_died: false,
                },
                "abandoned the record of pid 42 at position 48 (64 bytes): its writer stalled",
            ),
            (
                "unwritten",
                Verdict::AbandonUnwritten,
                "abandoned 64 claimed bytes at position 48 whose header was never written",
            ),
            (
                "corrupt",
                Verdict::SkipCorrupt {
                    why: Corruption::BadLength,
                    or_to_tail: true,
                },
                "corrupt record at position 48 (invalid length); skipped 64 bytes",
            ),
        ];
        for (second, verdict, line) in cases {
            let region = HeapRegion::new(1024);
            let ring = ring_stuck_at_48(&region, second);
            // SAFETY: the test is the one consumer.
            let mut c = unsafe { ring.consumer() };
            let stop = c.drain(1 << 20, |_| true);
            assert_ne!(stop, Stop::Budget, "{second}");
            assert_eq!(c.position(), 48);
            assert_eq!(Verdict::Wait.apply(&mut c, 48), None);
            assert_eq!(verdict.apply(&mut c, 48).as_deref(), Some(line), "{second}");
            assert_eq!(c.position(), 112, "{second}");
        }
    }
}

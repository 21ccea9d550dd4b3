//! The batch in flight: records drained from the ring, formatted into one
//! buffer, written with as few write(2) calls as the kernel allows, and only
//! then released to producers.
//!
//! Invariants: `bytes[..written]` is in the file; `bytes` holds notices
//! (the flusher's own lines) followed by exactly the `records` records the
//! source's reads since its last release hold (`consumed`), in the order the
//! source handed them out; they are released only once `written ==
//! bytes.len()`; records are added only while nothing of the batch is
//! written, so a batch is never extended under a write.

use crate::now::Now;

use ringflush_format::{Entry, Formatter};
use ringflush_ring::codec::{level, Record};
use ringflush_ring::{Consumer, RecordRef, Region, SegmentHeader, Stop};

use super::recovery::Consumed;
use crate::output::{Due, Next, Output};

/// Ring bytes read per batch.
pub const BATCH_BYTES: u64 = 1 << 20;

/// Where a batch's records come from: a segment's shared ring and lanes,
/// with each record's time as realtime ns.
pub trait Drain {
    /// As [`Consumer::drain`], with the record's realtime ns; records
    /// stamped after `until` may be held back (the merge of lanes).
    fn drain(
        &mut self,
        budget: u64,
        until: u64,
        visit: impl FnMut(RecordRef<'_>, u64) -> bool,
    ) -> Stop;
    /// What was read but not yet released.
    fn consumed(&self) -> Consumed;
}

/// A bare consumer's stamps are realtime ns already (tests).
impl<H: std::ops::Deref<Target = SegmentHeader>, R: Region> Drain for Consumer<H, R> {
    fn drain(
        &mut self,
        budget: u64,
        _until: u64,
        mut visit: impl FnMut(RecordRef<'_>, u64) -> bool,
    ) -> Stop {
        Consumer::drain(self, budget, |r| visit(r, r.stamp.timestamp))
    }
    fn consumed(&self) -> Consumed {
        Consumed {
            shared: self.head()..self.position(),
            lanes: Vec::new(),
        }
    }
}

/// What filling the batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    /// Where the drain stopped.
    pub stop: Stop,
    /// A rotation is due before the record at the read position.
    pub rotate: Option<Due>,
    /// Records whose payload did not decode (skipped, to be counted corrupt).
    pub undecodable: u64,
}

/// The batch in flight: formatted lines, how much of them is in the file,
/// and what they consume of the segment (see the module docs for the
/// invariants).
#[derive(Debug)]
pub struct Batch {
    bytes: Vec<u8>,
    written: usize,
    records: u64,
    consumed: Consumed,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            bytes: Vec::with_capacity(4 << 20),
            written: 0,
            records: 0,
            consumed: Consumed::default(),
        }
    }
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The bytes not yet in the file.
    pub fn unwritten(&self) -> &[u8] {
        &self.bytes[self.written..]
    }
    /// How many bytes are in the file already, and how many in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.written, self.bytes.len())
    }
    /// What the batch's records consume in the segment.
    pub fn consumed(&self) -> &Consumed {
        &self.consumed
    }
    /// Records in the batch.
    pub fn records(&self) -> u64 {
        self.records
    }
    /// Whether every byte of the batch is in the file (also true when empty).
    pub fn fully_written(&self) -> bool {
        self.written == self.bytes.len()
    }

    /// Add a line of the flusher's own (a loss report) at `now_ns`, before
    /// any record; only into an empty batch.
    pub fn push_notice(&mut self, formatter: &mut Formatter, now_ns: u64, line: &str) {
        debug_assert!(self.written == 0 && self.records == 0);
        formatter.notice(now_ns, level::WARNING, line, &mut self.bytes);
    }

    /// Format records from `source` until a budget of ring bytes, a record
    /// not ready, or one that must go into the next file (its time is past
    /// the rollover, or it would take the file past `--max-bytes`): that one
    /// stays in the ring, and `rotate` says why. Does nothing while part of
    /// the batch is written.
    pub fn fill(
        &mut self,
        source: &mut impl Drain,
        formatter: &mut Formatter,
        out: &Output,
        now: Now,
        until: u64,
    ) -> Filled {
        let mut filled = Filled {
            stop: Stop::Budget,
            rotate: None,
            undecodable: 0,
        };
        if self.written > 0 || self.records > 0 {
            return filled;
        }
        let Self { bytes, records, .. } = self;
        filled.stop = source.drain(BATCH_BYTES, until, |r, created_ns| {
            let before = bytes.len();
            let decoded = Record::decode(r.payload);
            if let Ok(mut record) = decoded {
                // A lane record of the log call's path: its thread is the lane's.
                if let Some(thread) = &r.thread {
                    record.thread_id = thread.id;
                    record.thread_name = thread.name();
                }
                let pid = r.stamp.pid;
                formatter.format(
                    &Entry {
                        created_ns,
                        pid,
                        record,
                    },
                    bytes,
                );
            }
            // A record is never split: roll before one that is due for the
            // next file, and format it again there.
            let next = Next {
                created_secs: (created_ns / 1_000_000_000) as i64,
                file_bytes: out.size() + before as u64,
                len: (bytes.len() - before) as u64,
                now: now.mono,
                now_secs: now.unix_secs(),
            };
            if let Some(due) = out.due(&next) {
                bytes.truncate(before);
                filled.rotate = Some(due);
                return false;
            }
            if decoded.is_err() {
                filled.undecodable += 1;
            }
            *records += 1;
            true
        });
        self.consumed = source.consumed();
        filled
    }

    /// `n` more bytes are in the file.
    pub fn wrote(&mut self, n: usize) {
        self.written += n;
        debug_assert!(self.written <= self.bytes.len());
    }

    /// Start over empty (the batch is written and its range released).
    pub fn clear(&mut self) {
        debug_assert!(self.fully_written());
        self.bytes.clear();
        self.written = 0;
        self.records = 0;
        self.consumed = Consumed::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{OutputConfig, Rules};
    use ringflush_format::FormatSpec;
    use ringflush_ring::frame::RECORD_HEADER_LEN;
    use ringflush_ring::{HeapRegion, Ring, Stamp};
    use ringflush_rotation::{Clock, Timed, When};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// 2024-03-06 10:00:00 UTC.
    const T: i64 = 1_709_719_200;

    type TestRing = Ring<Box<SegmentHeader>, HeapRegion>;

    fn ring() -> TestRing {
        let h = Box::<SegmentHeader>::default();
        h.identity.max_record.store(1024, Ordering::Relaxed);
        Ring::new(h, HeapRegion::new(4096))
    }

    /// Commit a record with `message` (or, with `None`, a payload that does
    /// not decode), stamped `secs`.
    fn put(ring: &TestRing, message: Option<&str>, secs: i64) {
        let record = message.map(|m| Record {
            message: m.as_bytes(),
            ..Record::default()
        });
        let payload = match &record {
            Some(r) => r.fit(1 << 20).unwrap().len,
            None => 8,
        };
        let stamp = Stamp {
            pid: 1,
            flags: 0,
            timestamp: secs as u64 * 1_000_000_000,
        };
        let cache = AtomicU64::new(0);
        let claim = ring
            .try_claim(RECORD_HEADER_LEN + payload, stamp, &cache)
            .unwrap();
        ring.fill(&claim, |buf| match &record {
            Some(r) => r.encode(&r.fit(1 << 20).unwrap(), buf),
            None => buf.fill(0xff),
        });
        ring.commit(claim).unwrap();
    }

    fn formatter() -> Formatter {
        let spec = FormatSpec {
            format: Some("%(message)s".into()),
            ..FormatSpec::default()
        };
        Formatter::new(&spec, 0).unwrap()
    }

    fn output(dir: &std::path::Path, rules: Rules) -> Output {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = OutputConfig {
            rules,
            file_mode: 0o640,
            ..OutputConfig::default()
        };
        Output::open(&dir.join("app.log"), cfg, T).unwrap()
    }

    #[test]
    fn a_batch_formats_in_order_is_written_in_steps_and_starts_over_empty() {
        let dir = tempfile::tempdir().unwrap();
        let out = output(dir.path(), Rules::default());
        let ring = ring();
        for m in [Some("a"), None, Some("bb"), Some("ccc")] {
            put(&ring, m, T);
        }
        // SAFETY: the test is the one consumer.
        let mut c = unsafe { ring.consumer() };
        let (mut f, mut batch) = (formatter(), Batch::default());
        assert!(batch.is_empty() && batch.fully_written());
        let filled = batch.fill(&mut c, &mut f, &out, Now::at(T), u64::MAX);
        assert_eq!(
            (filled.stop, filled.rotate, filled.undecodable),
            (Stop::Empty, None, 1)
        );
        assert_eq!(batch.unwritten(), b"a\nbb\nccc\n");
        assert_eq!((batch.records(), batch.progress()), (4, (0, 9)));
        assert_eq!(batch.consumed().shared, 0..c.position());
        assert!(c.position() > 0 && !batch.is_empty());
        // Nothing more goes in while the batch holds records: a record
        // committed meanwhile stays in the ring.
        put(&ring, Some("late"), T);
        let position = c.position();
        batch.fill(&mut c, &mut f, &out, Now::at(T), u64::MAX);
        assert_eq!((batch.records(), c.position()), (4, position));
        batch.wrote(5);
        assert_eq!(
            (batch.unwritten(), batch.progress()),
            (&b"ccc\n"[..], (5, 9))
        );
        assert!(!batch.fully_written());
        batch.wrote(4);
        assert!(batch.fully_written());
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!((batch.records(), batch.progress()), (0, (0, 0)));
        assert_eq!(batch.consumed().shared, 0..0);
    }

    #[test]
    fn a_notice_partly_written_keeps_records_out() {
        let dir = tempfile::tempdir().unwrap();
        let out = output(dir.path(), Rules::default());
        let ring = ring();
        put(&ring, Some("a"), T);
        // SAFETY: the test is the one consumer.
        let mut c = unsafe { ring.consumer() };
        let (mut f, mut batch) = (formatter(), Batch::default());
        batch.push_notice(&mut f, T as u64 * 1_000_000_000, "lost 3 records");
        let notice = batch.progress().1;
        assert!(String::from_utf8_lossy(batch.unwritten()).contains("lost 3 records"));
        batch.wrote(3);
        batch.fill(&mut c, &mut f, &out, Now::at(T), u64::MAX);
        assert_eq!((batch.records(), batch.progress()), (0, (3, notice)));
        assert_eq!(c.position(), 0);
    }

    /// A record that would take the file past `--max-bytes`, or is stamped
    /// in the next period, ends the batch before it, and stays in the ring.
    #[test]
    fn a_record_due_for_the_next_file_stays_in_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let rules = Rules {
            max_bytes: Some(10),
            timed: None,
        };
        let mut sized = output(&dir.path().join("s"), rules);
        let ring = ring();
        for m in ["abc", "def", "ghi"] {
            put(&ring, Some(m), T);
        }
        // SAFETY: the test is the one consumer.
        let mut c = unsafe { ring.consumer() };
        let (mut f, mut batch) = (formatter(), Batch::default());
        let filled = batch.fill(&mut c, &mut f, &sized, Now::at(T), u64::MAX);
        assert!(filled.rotate.is_some());
        assert_eq!(
            (batch.unwritten(), batch.records()),
            (&b"abc\ndef\n"[..], 2)
        );
        // With 4 bytes in the file already, only one fits.
        let ring = ring_with(&["abc", "def"]);
        sized.write(b"xyz\n").unwrap();
        // SAFETY: as above.
        let mut c = unsafe { ring.consumer() };
        let mut batch = Batch::default();
        batch.fill(&mut c, &mut f, &sized, Now::at(T), u64::MAX);
        assert_eq!(batch.unwritten(), b"abc\n");

        let daily = Rules {
            max_bytes: None,
            timed: Some(Timed::new(When::Day, 1, None, Clock::Utc).unwrap()),
        };
        let timed = output(&dir.path().join("t"), daily);
        let ring = ring_with(&[]);
        put(&ring, Some("today"), T);
        put(&ring, Some("tomorrow"), T + 86_400);
        // SAFETY: as above.
        let mut c = unsafe { ring.consumer() };
        let mut batch = Batch::default();
        let filled = batch.fill(&mut c, &mut f, &timed, Now::at(T + 86_400), u64::MAX);
        assert!(filled.rotate.is_some());
        assert_eq!((batch.unwritten(), batch.records()), (&b"today\n"[..], 1));
    }

    fn ring_with(messages: &[&str]) -> TestRing {
        let ring = ring();
        for m in messages {
            put(&ring, Some(m), T);
        }
        ring
    }
}

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
            if let Ok(record) = decoded {
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

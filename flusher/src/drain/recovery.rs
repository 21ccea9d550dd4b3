//! Exactly-once across flusher crashes.
//!
//! Before the first write(2) of a batch the flusher records in the segment
//! what it is about to do: the shared-ring positions `[start, end)` the
//! batch consumes and how far in each lane it reads (each lane's
//! `batch_end`, the lanes named in a mask), the log file's identity (dev,
//! ino), its size before the batch, and the batch's length; `pending` is
//! stored last and marks the record valid. After the heads have advanced
//! past the batch the record is cleared. A flusher
//! killed at any point in between leaves the record behind, and the next one
//! compares it with the file:
//!
//! - the file grew by the whole batch: it was written; skip those records;
//! - it did not grow: nothing was written; drain them normally;
//! - it grew by part of the batch: truncate the tail back and drain them.
//!
//! So no committed record is lost and none is written twice. Two cases
//! cannot be told apart from the file, and are said rather than guessed:
//! the file moved away between the crash and the restart (logrotate), or it
//! shrank below its size before the batch (logrotate's `copytruncate`). The
//! batch is then written again, nothing is cut, and the flusher says that
//! it may appear twice.

use std::ops::{Deref, Range};
use std::sync::atomic::Ordering;

use ringflush_ring::lane::LaneReader;
use ringflush_ring::{Consumer, Region, SegmentHeader, SharedLanes};

use crate::output::{Output, OutputError};

/// What a batch consumes: a range of the shared ring, and how far in each
/// lane it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumed {
    /// The shared ring's range (empty when the batch has none of its records).
    pub shared: Range<u64>,
    /// `(lane, end)` for every lane the batch has records of.
    pub lanes: Vec<(usize, u64)>,
}

impl Consumed {
    /// Whether the batch consumes nothing of the segment.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.lanes.is_empty()
    }
}

/// Record the batch about to be written: it consumes `consumed` and is
/// `bytes` long.
pub fn begin(h: &SegmentHeader, consumed: &Consumed, out: &Output, bytes: u64) {
    let b = &h.batch;
    let (dev, ino) = out.identity();
    b.start.store(consumed.shared.start, Ordering::Relaxed);
    b.end.store(consumed.shared.end, Ordering::Relaxed);
    let mut mask = 0u64;
    for &(lane, end) in &consumed.lanes {
        h.lanes[lane].head.batch_end.store(end, Ordering::Relaxed);
        mask |= 1 << lane;
    }
    b.lanes.store(mask, Ordering::Relaxed);
    b.file_dev.store(dev, Ordering::Relaxed);
    b.file_ino.store(ino, Ordering::Relaxed);
    b.file_size.store(out.size(), Ordering::Relaxed);
    b.bytes.store(bytes, Ordering::Relaxed);
    // Release: a flusher that sees `pending` sees the fields above.
    b.pending.store(1, Ordering::Release);
}

/// The batch is written and released.
pub fn done(h: &SegmentHeader) {
    h.batch.pending.store(0, Ordering::Release);
}

/// What recovery found.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovered {
    /// No batch was pending (or not one for the current head).
    Nothing,
    /// The batch had been written: its records were skipped.
    Skipped {
        /// The batch's length in the file, in bytes.
        bytes: u64,
    },
    /// Part of the batch had been written: the file was cut back.
    Truncated {
        /// Bytes cut from the end of the file.
        removed: u64,
    },
    /// The batch had not been written.
    Unwritten,
    /// The file changed identity since: the batch is written again.
    FileChanged,
    /// The file is smaller than before the batch (truncated in place, as
    /// `copytruncate` does): the batch is written again, nothing is cut.
    FileShrank {
        /// Its size before the batch.
        before: u64,
        /// Its size now.
        now: u64,
    },
}

impl Recovered {
    /// What to tell the operator and the log's readers, if anything.
    pub fn message(&self, path: &std::path::Path) -> Option<String> {
        let path = path.display();
        Some(match self {
            Recovered::Nothing | Recovered::Unwritten => return None,
            Recovered::Skipped { bytes } => format!(
                "the previous flusher died after writing its last batch ({bytes} bytes); not writing it again"
            ),
            Recovered::Truncated { removed } => format!(
                "the previous flusher died mid-batch; removed its {removed} partial bytes and writing the batch again"
            ),
            Recovered::FileChanged => format!(
                "the previous flusher died mid-batch and {path} has changed since; its last batch may appear twice"
            ),
            Recovered::FileShrank { before, now } => format!(
                "the previous flusher died mid-batch and {path} shrank from {before} to {now} bytes since (copytruncate?); its last batch is written again and may appear twice"
            ),
        })
    }
}

/// The batch record a killed flusher left, as read from the segment.
struct Pending {
    range: Range<u64>,
    /// The lanes of the batch, one bit each.
    lanes: u64,
    file: (u64, u64),
    size_before: u64,
    bytes: u64,
}

impl Pending {
    /// The record, if one is valid for a consumer whose head is `head`.
    fn read(h: &SegmentHeader, head: u64) -> Option<Self> {
        let b = &h.batch;
        // Acquire: pairs with the Release in `begin`.
        let pending = b.pending.load(Ordering::Acquire);
        let start = b.start.load(Ordering::Relaxed);
        let end = b.end.load(Ordering::Relaxed);
        if pending != 1 || head != start || end < start {
            return None;
        }
        Some(Self {
            range: start..end,
            lanes: b.lanes.load(Ordering::Relaxed),
            file: (
                b.file_dev.load(Ordering::Relaxed),
                b.file_ino.load(Ordering::Relaxed),
            ),
            size_before: b.file_size.load(Ordering::Relaxed),
            bytes: b.bytes.load(Ordering::Relaxed),
        })
    }
}

/// The lanes of a segment and the flusher's readers of them.
pub type LaneSide<'a> = Option<(&'a SharedLanes, &'a mut [LaneReader])>;

/// Finish or undo a batch a killed flusher left behind: from the shared
/// ring's `consumer`, and the lanes' readers in `lanes`.
pub fn recover<H, R>(
    consumer: &mut Consumer<H, R>,
    lanes: LaneSide<'_>,
    out: &mut Output,
) -> Result<Recovered, OutputError>
where
    H: Deref<Target = SegmentHeader>,
    R: Region,
{
    let pending = Pending::read(consumer.ring().header(), consumer.head());
    let found = match pending {
        None => Recovered::Nothing,
        Some(p) if out.identity() != p.file => Recovered::FileChanged,
        Some(p) if out.size() < p.size_before => Recovered::FileShrank {
            before: p.size_before,
            now: out.size(),
        },
        Some(p) if out.size() >= p.size_before + p.bytes => {
            consumer.skip(p.range.end - p.range.start);
            consumer.release();
            if let Some((handle, readers)) = lanes {
                skip_lanes(consumer.ring().header(), handle, readers, p.lanes);
            }
            Recovered::Skipped { bytes: p.bytes }
        }
        Some(p) if out.size() > p.size_before => {
            let removed = out.size() - p.size_before;
            out.truncate(p.size_before)?;
            Recovered::Truncated { removed }
        }
        Some(_) => Recovered::Unwritten,
    };
    done(consumer.ring().header());
    Ok(found)
}

/// The batch is in the file: read each of its lanes up to where it read.
fn skip_lanes(h: &SegmentHeader, lanes: &SharedLanes, readers: &mut [LaneReader], mask: u64) {
    for r in readers.iter_mut().filter(|r| mask & 1 << r.lane() != 0) {
        r.skip_to(h.lanes[r.lane()].head.batch_end.load(Ordering::Relaxed));
        r.release(lanes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputConfig;
    use ringflush_ring::{HeapRegion, Ring, Stamp};
    use std::path::Path;
    use std::sync::atomic::AtomicU64;

    /// A batch of shared-ring records only.
    fn shared(range: Range<u64>) -> Consumed {
        Consumed {
            shared: range,
            lanes: Vec::new(),
        }
    }

    /// Two records of 56 bytes from 56: the range starts past 0 so that a
    /// length computed from its ends is tested.
    const BATCH: Range<u64> = 56..168;

    /// A ring holding two committed records (the batch), and a file.
    fn setup(dir: &Path, before: &[u8]) -> (SegmentHeader, Output) {
        let h = SegmentHeader::default();
        h.identity.max_record.store(256, Ordering::Relaxed);
        h.head.0.store(BATCH.start, Ordering::Relaxed);
        h.tail.0.store(BATCH.start, Ordering::Relaxed);
        let path = dir.join("app.log");
        std::fs::write(&path, before).unwrap();
        let out = Output::open(&path, OutputConfig::default(), 0).unwrap();
        (h, out)
    }

    fn fill(ring: &Ring<&SegmentHeader, HeapRegion>) {
        let cache = AtomicU64::new(BATCH.start);
        let stamp = Stamp {
            pid: 1,
            flags: 0,
            timestamp: 0,
        };
        for _ in 0..2 {
            let c = ring.try_claim(56, stamp, &cache).unwrap();
            ring.commit(c).unwrap();
        }
    }

    /// A flusher killed during a 10-byte batch that began when the file
    /// held `before`; the next one finds it holding `now` (`same_file`:
    /// at the same inode).
    fn recover_after(before: &[u8], now: &[u8], same_file: bool) -> (Recovered, Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let (h, out) = setup(dir.path(), before);
        let ring = Ring::new(&h, HeapRegion::new(1024));
        fill(&ring);
        begin(&h, &shared(BATCH), &out, 10);
        if !same_file {
            h.batch
                .file_ino
                .store(out.identity().1 + 1, Ordering::Relaxed);
        }
        std::fs::write(out.path(), now).unwrap();
        // The next flusher opens the file as it finds it.
        let mut out = Output::open(out.path(), OutputConfig::default(), 0).unwrap();
        // SAFETY: one consumer in this test.
        let mut c = unsafe { ring.consumer() };
        let found = recover(&mut c, None, &mut out).unwrap();
        assert_eq!(
            h.batch.pending.load(Ordering::Relaxed),
            0,
            "the record is cleared"
        );
        let file = std::fs::read(out.path()).unwrap();
        (found, file, c.head())
    }

    #[test]
    fn a_whole_batch_written_is_skipped() {
        let (found, file, head) = recover_after(b"old\n", b"old\n0123456789", true);
        assert_eq!(found, Recovered::Skipped { bytes: 10 });
        assert_eq!((file.len(), head), (14, BATCH.end));
        // More than the batch (another writer appended): still skipped.
        let (found, _, _) = recover_after(b"old\n", b"old\n0123456789xx", true);
        assert_eq!(found, Recovered::Skipped { bytes: 10 });
    }

    #[test]
    fn a_partial_batch_is_cut_back_and_written_again() {
        let (found, file, head) = recover_after(b"old\n", b"old\n0123", true);
        assert_eq!(found, Recovered::Truncated { removed: 4 });
        assert_eq!((file, head), (b"old\n".to_vec(), BATCH.start));
        // One byte short of the whole batch.
        let (found, _, _) = recover_after(b"old\n", b"old\n012345678", true);
        assert_eq!(found, Recovered::Truncated { removed: 9 });
    }

    #[test]
    fn an_unwritten_batch_is_drained_normally() {
        let (found, file, head) = recover_after(b"old\n", b"old\n", true);
        assert_eq!(found, Recovered::Unwritten);
        assert_eq!((file, head), (b"old\n".to_vec(), BATCH.start));
        assert_eq!(found.message(Path::new("app.log")), None);
    }

    #[test]
    fn a_changed_or_shrunk_file_is_said_and_nothing_is_cut() {
        let (found, file, head) = recover_after(b"old\n", b"old\n01", false);
        assert_eq!(found, Recovered::FileChanged);
        assert_eq!((file, head), (b"old\n01".to_vec(), BATCH.start));
        let (found, file, _) = recover_after(b"old\n", b"ol", true);
        assert_eq!(found, Recovered::FileShrank { before: 4, now: 2 });
        assert_eq!(file, b"ol".to_vec());
        let said = found.message(Path::new("app.log")).unwrap();
        assert!(said.contains("shrank from 4 to 2 bytes"), "{said}");
        let said = Recovered::FileChanged
            .message(Path::new("app.log"))
            .unwrap();
        assert!(said.contains("app.log has changed"), "{said}");
    }

    #[test]
    fn a_record_for_another_head_is_ignored_and_one_of_lanes_only_is_judged() {
        let dir = tempfile::tempdir().unwrap();
        let (h, mut out) = setup(dir.path(), b"");
        let ring = Ring::new(&h, HeapRegion::new(1024));
        fill(&ring);
        // SAFETY: one consumer in this test.
        let mut c = unsafe { ring.consumer() };
        begin(&h, &shared(112..168), &out, 10);
        assert_eq!(recover(&mut c, None, &mut out).unwrap(), Recovered::Nothing);
        done(&h);
        assert_eq!(recover(&mut c, None, &mut out).unwrap(), Recovered::Nothing);
        // No shared records (a batch of lanes only): judged by the file.
        begin(&h, &shared(56..56), &out, 10);
        assert_eq!(
            recover(&mut c, None, &mut out).unwrap(),
            Recovered::Unwritten
        );
        let said = Recovered::Skipped { bytes: 3 }.message(Path::new("x"));
        assert!(said.unwrap().contains("(3 bytes)"));
        let said = Recovered::Truncated { removed: 2 }.message(Path::new("x"));
        assert!(said.unwrap().contains("its 2 partial bytes"));
    }
}

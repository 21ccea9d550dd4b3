//! What a process asks of the flusher through the segment header, and how
//! it learns that it was done: "tell me when what was committed so far is
//! in the file" ([`WrittenMark`]: `Handler.flush()`) and "roll the file
//! over now" ([`request_rollover`]: `doRollover()`, `ringflush rotate`).
//! Neither needs a syscall from the asker beyond the wait itself.
//!
//! # Written marks
//! Positions in the shared ring and in each lane only grow (`ring.rs`,
//! `lane.rs`), and the flusher publishes a `head` only once everything
//! below it is in the file (`batch.rs` releases after the write). So a
//! snapshot of every tail is a mark: once each head has reached the tail
//! it had, every record committed before the snapshot has been written.
//! A claim that was never committed (its writer died or stopped) holds the
//! head back until the flusher gives it up; callers bound their wait.
//!
//! # Rollover requests
//! A request adds one to `rollover_requests` and waits for `rollovers_done`
//! to reach the number it got. The flusher, between batches, reads the
//! request count, rolls the file over once, and stores that count as done:
//! requests made while it was rolling (every worker of a deploy asking at
//! boot) are served by the one rollover. [`join_rollover`] goes further for
//! `doRollover()`: a request waiting is joined rather than added to, and a
//! rollover made since the asker looked serves it, so that processes asking
//! at once never roll a file twice.
//!
//! # Memory-ordering contract
//! - (Q1) flusher: the file write, then `head` (SeqCst for the shared
//!   ring, Release for a lane) -> (Q1') the asker's **Acquire** loads of
//!   the heads in [`WrittenMark::reached`].
//! - (Q2) flusher: the new file open, then `rollovers_done` with
//!   **Release** -> (Q2') the asker's **Acquire** load in
//!   [`rollover_done`]: once it sees its number, writes it makes next go
//!   to the new file (they are drained after the rollover).

use crate::layout::{SegmentHeader, LANES};
use crate::sync::Ordering;

/// The tails of a segment's shared ring and lanes at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenMark {
    shared: u64,
    lanes: Vec<u64>,
}

impl WrittenMark {
    /// Every tail of `header` now.
    pub fn now(header: &SegmentHeader) -> Self {
        let lanes = lane_count(header);
        Self {
            shared: header.tail.0.load(Ordering::Acquire),
            lanes: header.lanes[..lanes]
                .iter()
                .map(|l| l.tail.tail.load(Ordering::Acquire))
                .collect(),
        }
    }

    /// Whether everything committed before the mark is in the file.
    pub fn reached(&self, header: &SegmentHeader) -> bool {
        // (Q1') Acquire: pairs with the flusher's head stores (Q1).
        header.head.0.load(Ordering::Acquire) >= self.shared
            && self
                .lanes
                .iter()
                .zip(&header.lanes)
                .all(|(&tail, l)| l.head.head.load(Ordering::Acquire) >= tail)
    }
}

fn lane_count(header: &SegmentHeader) -> usize {
    (header.identity.lanes.load(Ordering::Relaxed) as usize).min(LANES)
}

/// Ask for a rollover; returns the request's number, to pass to
/// [`rollover_done`].
pub fn request_rollover(header: &SegmentHeader) -> u64 {
    let requests = &header.producers.rollover_requests;
    requests.fetch_add(1, Ordering::Relaxed) + 1
}

/// Ask for a rollover unless one serves already: `None` when a rollover
/// was made since the asker saw `seen_done` rollovers done; the number of
/// a request that waits, if one does; else a new request's.
pub fn join_rollover(header: &SegmentHeader, seen_done: u64) -> Option<u64> {
    let p = &header.producers;
    loop {
        let requests = p.rollover_requests.load(Ordering::Relaxed);
        if p.rollovers_done.load(Ordering::Acquire) > seen_done {
            return None;
        }
        if requests > seen_done {
            return Some(requests);
        }
        let next = requests + 1;
        let swapped = p.rollover_requests.compare_exchange(
            requests,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if swapped.is_ok() {
            return Some(next);
        }
    }
}

/// Whether the rollover asked for as `request` has been made.
pub fn rollover_done(header: &SegmentHeader, request: u64) -> bool {
    // (Q2') Acquire: pairs with the flusher's store in `rolled_over` (Q2).
    header.producers.rollovers_done.load(Ordering::Acquire) >= request
}

/// When the last requested rollover was made (realtime ns; 0: never).
pub fn last_rollover_ns(header: &SegmentHeader) -> u64 {
    header.producers.rollover_done_ns.load(Ordering::Relaxed)
}

/// (flusher) The request count to serve, when requests are waiting.
pub fn waiting_rollover(header: &SegmentHeader) -> Option<u64> {
    let p = &header.producers;
    let requests = p.rollover_requests.load(Ordering::Relaxed);
    (requests > p.rollovers_done.load(Ordering::Relaxed)).then_some(requests)
}

/// (flusher) The rollover serving requests up to `requests` is made, at
/// `now_ns`.
pub fn rolled_over(header: &SegmentHeader, requests: u64, now_ns: u64) {
    let p = &header.producers;
    p.rollover_done_ns.store(now_ns, Ordering::Relaxed);
    // (Q2) Release: after the new file is open.
    p.rollovers_done.store(requests, Ordering::Release);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_reached_once_every_head_passes_its_tail() {
        let h = SegmentHeader::default();
        h.identity.lanes.store(2, Ordering::Relaxed);
        h.tail.0.store(100, Ordering::Relaxed);
        h.lanes[1].tail.tail.store(40, Ordering::Relaxed);
        let mark = WrittenMark::now(&h);
        assert!(!mark.reached(&h));
        h.head.0.store(100, Ordering::Relaxed);
        assert!(!mark.reached(&h), "lane 1 is not written yet");
        h.lanes[1].head.head.store(40, Ordering::Relaxed);
        assert!(mark.reached(&h));
        // Later records do not move an earlier mark.
        h.tail.0.store(500, Ordering::Relaxed);
        assert!(mark.reached(&h));
    }

    #[test]
    fn requests_made_before_a_rollover_are_served_by_it() {
        let h = SegmentHeader::default();
        assert_eq!(waiting_rollover(&h), None);
        let (a, b) = (request_rollover(&h), request_rollover(&h));
        assert_eq!((a, b), (1, 2));
        let serving = waiting_rollover(&h).unwrap();
        assert_eq!(serving, 2);
        let c = request_rollover(&h); // while it rolls
        rolled_over(&h, serving, 7);
        assert!(rollover_done(&h, a) && rollover_done(&h, b));
        assert!(!rollover_done(&h, c));
        assert_eq!(waiting_rollover(&h), Some(3));
        assert_eq!(last_rollover_ns(&h), 7);
    }

    #[test]
    fn joining_never_adds_a_second_rollover() {
        let h = SegmentHeader::default();
        // Two askers that both saw 0 done: the second joins the first.
        assert_eq!(join_rollover(&h, 0), Some(1));
        assert_eq!(join_rollover(&h, 0), Some(1));
        rolled_over(&h, 1, 5);
        // One that looked before that rollover is served by it.
        assert_eq!(join_rollover(&h, 0), None);
        // One that looked after asks anew.
        assert_eq!(join_rollover(&h, 1), Some(2));
    }
}

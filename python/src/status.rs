//! `ringflush._native.SegmentStatus`: what a process that may have to start
//! a flusher needs to know about a segment, read from its header without
//! prefaulting it: does a flusher hold its lock (in any PID namespace), with
//! which arguments, and are records waiting; and the two requests a handler
//! makes of the flusher (`ringflush_ring::requests`): a mark to wait on
//! until what was committed is written (`flush()`), and a rollover
//! (`doRollover()`).

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use ringflush_ring::requests::{self, WrittenMark};
use ringflush_ring::{Segment, SegmentOptions};

use crate::RingflushError;

/// A look at one segment's header.
#[pyclass(frozen, module = "ringflush._native")]
pub struct SegmentStatus {
    segment: Segment,
}

#[pymethods]
impl SegmentStatus {
    #[new]
    fn new(shm: &str) -> PyResult<Self> {
        let segment = Segment::open(shm, &SegmentOptions::inspect())
            .map_err(|e| RingflushError::new_err(ringflush::report::chain(&e)))?;
        Ok(Self { segment })
    }

    /// Whether a flusher holds the segment's lock (it lives, in this PID
    /// namespace or another: a sidecar's counts).
    fn flusher_alive(&self) -> bool {
        self.segment.flusher_alive()
    }

    /// The running flusher's pid as it published it (in its own PID
    /// namespace: for messages only), or 0 when none holds the lock.
    fn flusher_pid(&self) -> u32 {
        if self.segment.flusher_alive() {
            self.segment.header().flusher.pid.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether the running flusher lives in this process's PID namespace
    /// (its published pid then names it here).
    fn flusher_here(&self) -> bool {
        let f = &self.segment.header().flusher;
        self.segment.flusher_alive()
            && f.pid_namespace.load(Ordering::Relaxed) == ringflush_ring::liveness::pid_namespace()
    }

    /// The arguments the running (or last) flusher was started with.
    fn flusher_args(&self) -> Vec<String> {
        self.segment.header().flusher_args.load()
    }

    /// The segment's tails now: everything committed so far.
    fn mark(&self) -> Mark {
        Mark(WrittenMark::now(self.segment.header()))
    }

    /// Whether the flusher has written everything committed before `mark`.
    fn reached(&self, mark: &Mark) -> bool {
        mark.0.reached(self.segment.header())
    }

    /// Ask the flusher for a rollover; returns the request's number.
    fn request_rollover(&self) -> u64 {
        requests::request_rollover(self.segment.header())
    }

    /// Ask for a rollover unless one serves already (see
    /// `requests::join_rollover`): None when one was made since
    /// `seen_done`, else the request's number.
    fn join_rollover(&self, seen_done: u64) -> Option<u64> {
        requests::join_rollover(self.segment.header(), seen_done)
    }

    /// Whether the rollover asked for as `request` is made.
    fn rollover_done(&self, request: u64) -> bool {
        requests::rollover_done(self.segment.header(), request)
    }

    /// The request count the last requested rollover served, and when it
    /// was made (realtime ns, 0: never).
    fn last_rollover(&self) -> (u64, u64) {
        let h = self.segment.header();
        let done = h.producers.rollovers_done.load(Ordering::Acquire);
        (done, requests::last_rollover_ns(h))
    }

    /// Bytes published in the ring or its lanes and not yet written by a
    /// flusher.
    fn pending_bytes(&self) -> u64 {
        self.segment.unwritten_bytes()
    }
}

/// A [`WrittenMark`]: what [`SegmentStatus::reached`] waits for.
#[pyclass(frozen, module = "ringflush._native")]
pub struct Mark(WrittenMark);

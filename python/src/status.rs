//! `ringflush._native.SegmentStatus`: what a process that may have to start
//! a flusher needs to know about a segment, read from its header without
//! prefaulting it: does a flusher hold its lock (in any PID namespace), with
//! which arguments, and are records waiting.

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
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

    /// The arguments the running (or last) flusher was started with.
    fn flusher_args(&self) -> Vec<String> {
        self.segment.header().flusher_args.load()
    }

    /// Bytes claimed in the ring and not yet written by a flusher.
    fn pending_bytes(&self) -> u64 {
        let h = self.segment.header();
        let head = h.head.0.load(Ordering::Acquire);
        h.tail.0.load(Ordering::Acquire).saturating_sub(head)
    }
}

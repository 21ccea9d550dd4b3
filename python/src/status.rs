//! `ringflush._native.SegmentStatus`: what a process that may have to start
//! a flusher needs to know about a segment, read from its header without
//! prefaulting it: is a flusher running (its pid, alive, heartbeat fresh),
//! with which arguments, and are records waiting.

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

    /// The running flusher's pid, or 0: a pid that is published, alive
    /// and whose heartbeat is younger than 3 s.
    fn flusher_pid(&self) -> u32 {
        let f = &self.segment.header().flusher;
        let pid = f.pid.load(Ordering::Relaxed);
        let beat = f.heartbeat_ns.load(Ordering::Relaxed);
        let fresh = beat != 0 && ringflush_ring::now_ns().saturating_sub(beat) < 3_000_000_000;
        let exists = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if pid != 0 && fresh && exists {
            pid
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

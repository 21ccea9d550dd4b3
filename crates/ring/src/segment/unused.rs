//! Removing a segment nobody uses and that holds nothing: by `ringflush rm
//! --stale`, and by a process leaving a segment no flusher ever took (a
//! handler that logged nothing), so that such segments do not pile up in
//! /dev/shm. Decided as an idle flusher decides (`closing.rs`), holding the
//! segment's flusher lock so that no flusher starts meanwhile: a producer
//! opening the segment at that moment either is seen (it stays) or sees the
//! closing flag and opens the name again.

use std::io;

use super::Segment;
use crate::closing;
use crate::liveness::{self, FLUSHER_BYTE};
use crate::registry;
use crate::requests::WrittenMark;

impl Segment {
    /// Remove the segment's name if no flusher holds it, no registered
    /// producer lives (other than through this process's own description,
    /// which it cannot see: call this once this process is done with it)
    /// and nothing is left to write. Returns whether it was removed.
    ///
    /// # Errors
    /// When a lock request or `shm_unlink` fails.
    pub fn remove_if_unused(&self) -> io::Result<bool> {
        if !liveness::try_lock(self.fd(), FLUSHER_BYTE)? {
            return Ok(false);
        }
        let h = self.header();
        let unused = || {
            !registry::overflowed(h)
                && registry::registered(h, self.fd()).iter().all(|p| !p.alive)
                && WrittenMark::now(h).reached(h)
        };
        let decided = unused() && {
            closing::begin(h);
            unused() || {
                closing::cancel(h);
                false
            }
        };
        let removed = decided && self.still_named()? && {
            Segment::unlink(self.name())?;
            true
        };
        // The flag stays raised on a removed segment: a producer that maps
        // it still leaves it for the name's next segment.
        liveness::unlock(self.fd(), FLUSHER_BYTE);
        Ok(removed)
    }
}

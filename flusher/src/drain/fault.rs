//! Test-only fault injection in the flusher, one hook per point of a batch's
//! life. `RINGFLUSH_FLUSHER_FAULT`:
//! - `after_write:N`: SIGKILL after writing the N-th batch, before releasing it;
//! - `mid_write:N`: write half of the N-th batch, then SIGKILL;
//! - `eio:N`: the first N write attempts fail with EIO (a failing disk);
//! - `closing_pause:MS`: an idle flusher that raised its segment's closing
//!   flag waits MS ms before it looks at the registry (the race window of
//!   `ringflush_ring::closing`, made wide).
//!
//! Unset, every hook is a branch on a constant.

use std::cell::Cell;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    KillAfterWrite,
    KillMidWrite,
    FailWrites,
    PauseClosing,
}

/// The fault to inject, from `RINGFLUSH_FLUSHER_FAULT` (see the module
/// docs), and how far the flusher has got towards it.
#[derive(Debug)]
pub struct Faults {
    kind: Kind,
    /// The batch (1-based) a kill strikes, or the write attempts left to fail.
    n: Cell<u64>,
    /// Batches started so far.
    batches: Cell<u64>,
}

impl Faults {
    /// From `RINGFLUSH_FLUSHER_FAULT`; anything else means none.
    pub fn from_env() -> Self {
        Self::parse(&std::env::var("RINGFLUSH_FLUSHER_FAULT").unwrap_or_default())
    }

    fn parse(spec: &str) -> Self {
        let (kind, n) = match spec.split_once(':') {
            Some(("after_write", n)) => (Kind::KillAfterWrite, n),
            Some(("mid_write", n)) => (Kind::KillMidWrite, n),
            Some(("eio", n)) => (Kind::FailWrites, n),
            Some(("closing_pause", n)) => (Kind::PauseClosing, n),
            _ => (Kind::None, "0"),
        };
        let n = n.parse().unwrap_or(0);
        Self {
            kind: if n == 0 { Kind::None } else { kind },
            n: Cell::new(n),
            batches: Cell::new(0),
        }
    }

    /// Point 1, before a write(2) of `len` pending bytes, `from` bytes into
    /// the batch: how many to write, or the error the write fails with.
    pub fn before_write(&self, from: usize, len: usize) -> io::Result<usize> {
        match self.kind {
            Kind::None => Ok(len),
            Kind::FailWrites => {
                let left = self.n.get();
                if left == 0 {
                    return Ok(len);
                }
                self.n.set(left - 1);
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
            Kind::PauseClosing => Ok(len),
            Kind::KillAfterWrite | Kind::KillMidWrite => {
                if from == 0 {
                    self.batches.set(self.batches.get() + 1);
                }
                let strikes = self.kind == Kind::KillMidWrite
                    && from == 0
                    && self.batches.get() == self.n.get();
                Ok(if strikes { len / 2 } else { len })
            }
        }
    }

    /// Point 2, after a write(2) left `written` of the batch's `len` bytes
    /// in the file.
    pub fn after_write(&self, written: usize, len: usize) {
        if self.kind == Kind::KillMidWrite && self.batches.get() == self.n.get() && written < len {
            kill_self();
        }
    }

    /// Point 3, with the whole batch in the file, before its release.
    pub fn before_release(&self) {
        if self.kind == Kind::KillAfterWrite && self.batches.get() >= self.n.get() {
            kill_self();
        }
    }
}

impl Faults {
    /// Between raising the closing flag and looking at the registry.
    pub fn while_closing(&self) {
        if self.kind == Kind::PauseClosing {
            std::thread::sleep(std::time::Duration::from_millis(self.n.get()));
        }
    }
}

fn kill_self() {
    // SAFETY: signalling ourselves has no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fault_writes_everything_and_eio_fails_n_times() {
        let none = Faults::parse("");
        assert_eq!(none.before_write(0, 100).unwrap(), 100);
        let eio = Faults::parse("eio:2");
        assert!(eio.before_write(0, 100).is_err());
        assert!(eio.before_write(0, 100).is_err());
        assert_eq!(eio.before_write(0, 100).unwrap(), 100);
    }

    #[test]
    fn mid_write_halves_only_its_batch() {
        let f = Faults::parse("mid_write:2");
        assert_eq!(f.before_write(0, 100).unwrap(), 100);
        assert_eq!(f.before_write(0, 100).unwrap(), 50);
        assert_eq!(f.before_write(50, 50).unwrap(), 50);
        assert_eq!(f.before_write(0, 100).unwrap(), 100);
    }
}

//! Atomics shim: `std` atomics normally, `loom` atomics under `--cfg loom`, so
//! the ring protocol in [`crate::ring`] can be model-checked on threads with
//! exactly the code that runs across processes.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Back-off inside a spin loop (lets loom schedule the other threads).
#[inline]
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

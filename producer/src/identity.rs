//! Who is writing: pid and thread, cached so the hot path makes no syscall.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static AT_FORK: Once = Once::new();

extern "C" fn refresh_pid_in_child() {
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// This process's pid, correct in forked children too (refreshed by a
/// `pthread_atfork` child handler registered on first use).
#[inline]
pub fn pid() -> u32 {
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a plain function that only stores an atomic;
        // it is async-signal-safe as pthread_atfork child handlers must be.
        unsafe { libc::pthread_atfork(None, None, Some(refresh_pid_in_child)) };
    });
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

struct ThreadInfo {
    pid: u32,
    tid: u64,
    name: Box<[u8]>,
}

thread_local! {
    static THREAD: RefCell<Option<ThreadInfo>> = const { RefCell::new(None) };
}

/// Call `f` with this thread's id (`gettid`) and name, cached per thread (and
/// refreshed after a fork, where the surviving thread gets a new id).
#[inline]
pub fn with_thread<T>(f: impl FnOnce(u64, &[u8]) -> T) -> T {
    let pid = pid();
    THREAD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|t| t.pid != pid) {
            let current = std::thread::current();
            let name = current.name().unwrap_or("unnamed").as_bytes().into();
            *slot = Some(ThreadInfo {
                pid,
                tid: rustix::thread::gettid().as_raw_nonzero().get() as u64,
                name,
            });
        }
        let info = slot.as_ref().expect("filled above");
        f(info.tid, &info.name)
    })
}

//! Who is alive: every process that uses a segment holds a lock on a byte
//! of the segment's file, and anyone asks the kernel whether that byte is
//! locked. A pid is for display only.
//!
//! # Why locks, not pids
//! A pid means something only in its own PID namespace: a flusher running
//! as a sidecar (`docker run --ipc=container:app`, a Kubernetes pod sharing
//! an `emptyDir` at /dev/shm) or under `unshare --pid` looks for another
//! namespace's pid in its own `/proc` and finds nothing, or someone else.
//! The segment file itself is shared by everyone who maps it, and so are
//! the locks on it: Linux's open file description locks (`F_OFD_SETLK`,
//! Linux >= 3.15) belong to the open file description that took them, are
//! released by the kernel when its last descriptor closes (so at process
//! death, however it dies), conflict between any two descriptions (two
//! opens in one process included), and `F_OFD_GETLK` from any namespace
//! that can open the file tells whether a byte is locked, without taking
//! or disturbing the lock. iceoryx2 keeps its liveness in lock files the
//! same way (`iceoryx2-cal`'s `monitoring::file_lock`: a process holds a lock on
//! a file, and its crash is seen as the lock's release).
//!
//! # The bytes
//! - [`FLUSHER_BYTE`]: the flusher's lock. Taking it (write lock,
//!   non-blocking) is what makes a process the segment's one consumer
//!   (`Segment::acquire_consumer`); holding it is what "a flusher runs"
//!   means to producers, `stat` and the Python handlers.
//! - [`producer_byte`]`(slot)`: the lock of whoever holds that slot of the
//!   producer registry (`registry.rs`), taken before the slot's word is
//!   written and released after it is cleared.
//!
//! The bytes lie far beyond the end of the object (locks may cover any
//! offset), so they never touch its contents. OFD locks and `flock` locks
//! do not interact.
//!
//! # Limits
//! A forked child shares its parent's open file descriptions, and with them
//! the parent's locks: a lock stays held while the parent or any such child
//! lives. A child that writes registers in a slot of its own through a
//! description of its own (`registry.rs`), so it is never taken for its
//! parent; a parent that died before its forked children keeps looking
//! alive until they exit (its records are then given up at the unblock
//! timeout instead of at once).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Where the lock bytes start: far past any segment's end.
const BASE: i64 = 1 << 40;

/// The flusher's lock byte.
pub const FLUSHER_BYTE: i64 = BASE;

/// The lock byte of producer registry slot `slot`.
pub const fn producer_byte(slot: usize) -> i64 {
    BASE + 1 + slot as i64
}

fn request(kind: libc::c_short, byte: i64) -> libc::flock {
    // SAFETY: an all-zero flock is a valid value (l_pid must be 0 for OFD
    // requests); the fields that matter are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

fn fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor for the call, and `fl` a
    // valid flock the kernel reads (and, for GETLK, writes).
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Take the write lock on `byte` through `fd`'s open file description,
/// without waiting. Returns `false` when another description holds it.
/// Taking a lock this description already holds succeeds.
///
/// # Errors
/// When `fcntl` fails otherwise (`EINVAL` on a kernel without OFD locks).
pub fn try_lock(fd: BorrowedFd<'_>, byte: i64) -> io::Result<bool> {
    let mut fl = request(libc::F_WRLCK as libc::c_short, byte);
    match fcntl(fd, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Release the lock on `byte` held through `fd`'s description (nothing if
/// it holds none).
pub fn unlock(fd: BorrowedFd<'_>, byte: i64) {
    let mut fl = request(libc::F_UNLCK as libc::c_short, byte);
    let _ = fcntl(fd, libc::F_OFD_SETLK, &mut fl);
}

/// Whether another open file description than `fd`'s holds a lock on
/// `byte`: its holder is alive (or, see the module docs, a forked child of
/// it is).
///
/// # Errors
/// When `fcntl` fails.
pub fn is_locked(fd: BorrowedFd<'_>, byte: i64) -> io::Result<bool> {
    let mut fl = request(libc::F_WRLCK as libc::c_short, byte);
    fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// This process's PID namespace, as the inode number of
/// `/proc/self/ns/pid` (what `ls -l /proc/PID/ns/pid` shows as
/// `pid:[N]`); 0 when it cannot be read. Two processes with the same
/// number see the same pids.
pub fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A scratch file, removed on drop, opened twice.
    struct Scratch(std::path::PathBuf, std::fs::File);

    impl Scratch {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
        fn as_file(&self) -> &std::fs::File {
            &self.1
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn two_opens() -> (Scratch, std::fs::File) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rf-lock-{}-{n}", std::process::id()));
        let a = std::fs::File::create(&path).unwrap();
        let b = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (Scratch(path, a), b)
    }

    #[test]
    fn a_lock_is_seen_from_another_description_and_gone_when_released() {
        let (a, b) = two_opens();
        let (fa, fb) = (a.as_file().as_fd(), b.as_fd());
        assert!(!is_locked(fb, FLUSHER_BYTE).unwrap());
        assert!(try_lock(fa, FLUSHER_BYTE).unwrap());
        // Again through the same description: still ours.
        assert!(try_lock(fa, FLUSHER_BYTE).unwrap());
        assert!(is_locked(fb, FLUSHER_BYTE).unwrap());
        // The holder does not see its own lock.
        assert!(!is_locked(fa, FLUSHER_BYTE).unwrap());
        assert!(!try_lock(fb, FLUSHER_BYTE).unwrap());
        // Other bytes are free.
        assert!(try_lock(fb, producer_byte(0)).unwrap());
        unlock(fa, FLUSHER_BYTE);
        assert!(!is_locked(fb, FLUSHER_BYTE).unwrap());
        assert!(is_locked(fa, producer_byte(0)).unwrap());
    }

    #[test]
    fn closing_the_description_releases_its_locks() {
        let (a, b) = two_opens();
        let c = std::fs::File::options().write(true).open(a.path()).unwrap();
        assert!(try_lock(c.as_fd(), producer_byte(3)).unwrap());
        assert!(is_locked(b.as_fd(), producer_byte(3)).unwrap());
        drop(c);
        assert!(!is_locked(b.as_fd(), producer_byte(3)).unwrap());
    }

    #[test]
    fn this_process_has_a_pid_namespace() {
        assert_ne!(pid_namespace(), 0);
    }
}

//! Is the writer of a stuck record still alive? A pid alone can be reused,
//! so a process counts as the writer only if it started before the record's
//! timestamp (start time from `/proc/<pid>/stat`, in clock ticks since boot).

use std::fs;

use ringflush_ring::registry::proc_stat;

/// Whether `pid` is a live (non-zombie) process that started no later than
/// `record_ns` (realtime ns).
pub fn writer_alive(pid: u32, record_ns: u64) -> bool {
    if fs::metadata(format!("/proc/{pid}")).is_err() {
        return false;
    }
    // It exists: when its stat cannot be read or parsed, assume it lives
    // (the record is then given up at the unblock timeout instead).
    let Some(st) = proc_stat(pid) else {
        return true;
    };
    if matches!(st.state, 'Z' | 'X') {
        return false;
    }
    let Some(boot) = boot_time_secs() else {
        return true;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let started_ns = boot * 1_000_000_000 + st.start_ticks * (1_000_000_000 / hz);
    // btime has one-second resolution: allow that much slack.
    started_ns <= record_ns + 1_000_000_000
}

fn boot_time_secs() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let now = ringflush_ring::now_ns();
        assert!(writer_alive(std::process::id(), now));
        // A record older than this process cannot be ours.
        assert!(!writer_alive(std::process::id(), 1_000_000_000));
        assert!(!writer_alive(u32::MAX - 1, now));
    }
}

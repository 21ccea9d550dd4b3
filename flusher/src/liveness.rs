//! Is the writer of a stuck record still alive? A pid alone can be reused,
//! so a process counts as the writer only if it started before the record's
//! timestamp (start time from `/proc/<pid>/stat`, in clock ticks since boot).

use std::fs;

/// Whether `pid` is a live (non-zombie) process that started no later than
/// `record_ns` (realtime ns).
pub fn writer_alive(pid: u32, record_ns: u64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return false;
    }
    // starttime is field 22 of stat; fields[0] is field 3.
    let (Some(start_ticks), Some(boot)) = (
        fields.get(19).and_then(|s| s.parse::<u64>().ok()),
        boot_time_secs(),
    ) else {
        return true;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let started_ns = boot * 1_000_000_000 + start_ticks * (1_000_000_000 / hz);
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

//! Internal commands that print what the rotation schedule decides, for the
//! differential tests against CPython (`tests/py/rotation_diff.py`).

use anyhow::Result;
use ringflush_rotation::{Timed, When};

use super::Exit;
use crate::cli::{clock, RetentionArgs, RolloverArgs};
use crate::output::{dated_excess, LogDir};
use crate::report;

/// `ringflush rollover`: for each `--from` time, the next rollover instant
/// and the suffix the file rotated then gets.
pub fn rollover(a: &RolloverArgs) -> Result<Exit> {
    let timed = Timed::new(
        When::parse(&a.when)?,
        a.interval,
        a.at_time.as_deref(),
        clock(a.utc),
    )?;
    let mut text = String::new();
    for &t in &a.from {
        let at = timed.next_rollover(t);
        text += &format!("{t} {at} {}\n", timed.rotated_suffix(at, at));
    }
    report::stdout(&text)?;
    Ok(Exit::Ok)
}

/// `ringflush retention`: the rotated files of `--file` that retention
/// deletes, oldest first.
pub fn retention(a: &RetentionArgs) -> Result<Exit> {
    let timed = Timed::new(When::parse(&a.when)?, 1, None, clock(a.utc))?;
    let dir = LogDir::open(a.file.parent().unwrap_or("".as_ref()))?;
    let base = a.file.file_name().unwrap_or_default().to_string_lossy();
    let excess = dated_excess(&dir, &base, &timed, a.backup_count)?;
    let text: String = excess
        .iter()
        .map(|n| format!("{}\n", dir.join(n).display()))
        .collect();
    report::stdout(&text)?;
    Ok(Exit::Ok)
}

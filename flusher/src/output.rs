//! The log file the flusher owns: open, append, rotate, reopen.
//!
//! Only this process writes or renames the file. Rotation is one rename on
//! the drain path, then a reopen; compression, shifting numbered backups,
//! retention and the post-rotate command run in the background
//! (`retire.rs`). A dated name that already exists gets `.1`, `.2`, ...
//! instead of deleting or overwriting anything, and rotation never stops.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::config::RotationConfig;
use crate::logdir::LogDir;
use crate::now::Now;
pub use crate::output_error::OutputError;
use crate::output_error::{io_err, open_append};
use crate::paths::{free_name, name_with, numbered, sibling_prefix};
use crate::retire::{Job, Naming, RetireConfig, Retirer, POST_ROTATE_GRACE};

/// Why a rotation is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A record's time reached the timed rollover.
    Time,
    /// The next record would take the file to `max_bytes`.
    Size,
}

/// The log file, open for appending, and what decides its rotation.
///
/// After the first open, a failure to open it again (a rotation's reopen,
/// SIGHUP, a moved file: no inodes left, a symlink put in its place) is not
/// fatal: the file stays closed, the next write tries to open it again and
/// fails with that error, and the flusher retries with back-off, keeping
/// the records in the ring.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    /// The directory, held open: every file operation goes through it.
    dir: LogDir,
    /// The file's name in it.
    name: String,
    /// `None` after a failed reopen, until a write opens it again.
    file: Option<File>,
    dev: u64,
    ino: u64,
    size: u64,
    rotation: RotationConfig,
    /// Unix second of the next timed rollover.
    rollover_at: Option<i64>,
    /// After a failed size rotation, write on (past --max-bytes) until then
    /// instead of retrying before every record.
    size_hold_until: Option<Instant>,
    retirer: Retirer,
}

impl Output {
    /// Open (creating parent directories) and schedule the first rollover
    /// from the file's mtime, as CPython does, so that a restart keeps the
    /// schedule and a restart after a missed rollover rotates at once.
    /// `now` is in Unix seconds. See [`Output::resume_unfinished`] for what
    /// a crashed flusher left half done.
    ///
    /// # Errors
    /// [`OutputError::NotAFile`] when the path is a symlink, a directory or
    /// another non-regular file; [`OutputError::Io`] when creating the
    /// directories, opening, `fstat` or listing the directory fails.
    ///
    /// # Panics
    /// If the background thread for rotated files cannot be spawned.
    pub fn open(path: &Path, rotation: RotationConfig, now: i64) -> Result<Self, OutputError> {
        let dir_path = path.parent().unwrap_or(Path::new(""));
        let dir = LogDir::open(dir_path).map_err(io_err(dir_path, "open directory"))?;
        let name = path
            .file_name()
            .ok_or_else(|| OutputError::NotAFile(path.into()))?
            .to_string_lossy()
            .into_owned();
        let (file, info) = open_append(&dir, &name, path, rotation.file_mode)?;
        let naming = match rotation.timed {
            Some(t) => Naming::Dated(t),
            None => Naming::Numbered,
        };
        let retirer = Retirer::start(RetireConfig {
            dir: dir.clone(),
            base: name.clone(),
            naming,
            backup_count: rotation.backup_count,
            gzip: rotation.gzip,
            compress_delay: rotation.compress_delay,
            post_rotate: rotation.post_rotate.clone(),
            post_rotate_grace: POST_ROTATE_GRACE,
        });
        let mut out = Output {
            path: path.into(),
            dir,
            name,
            dev: info.dev,
            ino: info.ino,
            size: info.size,
            file: Some(file),
            rollover_at: None,
            size_hold_until: None,
            rotation,
            retirer,
        };
        let since = if info.size > 0 { info.mtime } else { now };
        out.rollover_at = out.next_rollover(since);
        Ok(out)
    }

    /// Queue what a crashed flusher left half done: staged numbered
    /// rotations first, then the tidy-up (half-written archives, backups
    /// left uncompressed). Only once this flusher owns its segment: a
    /// second flusher started by mistake must not touch the files.
    ///
    /// # Errors
    /// When the directory cannot be listed.
    pub fn resume_unfinished(&mut self) -> Result<(), OutputError> {
        let prefix = sibling_prefix(&self.name);
        let names = self
            .dir
            .list()
            .map_err(io_err(&self.path, "list the directory of"))?;
        let mut staged: Vec<String> = names
            .into_iter()
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|r| r.starts_with("rotating-"))
            })
            .collect();
        staged.sort();
        for s in staged {
            self.retirer.send(Job::Rotated(s));
        }
        self.retirer.send(Job::Tidy);
        Ok(())
    }

    fn next_rollover(&self, from: i64) -> Option<i64> {
        Some(self.rotation.timed?.next_rollover(from))
    }

    /// The log file's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (dev, ino) of the open file.
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Cut the file back to `len` bytes (crash recovery).
    ///
    /// # Errors
    /// When the file is not open or `ftruncate` fails.
    pub fn truncate(&mut self, len: u64) -> Result<(), OutputError> {
        let file = self.file()?;
        file.set_len(len).map_err(io_err(&self.path, "truncate"))?;
        self.size = len;
        Ok(())
    }

    /// The open file, opening the path first if a reopen had failed.
    fn file(&mut self) -> Result<&mut File, OutputError> {
        if self.file.is_none() {
            let (file, info) =
                open_append(&self.dir, &self.name, &self.path, self.rotation.file_mode)?;
            self.dev = info.dev;
            self.ino = info.ino;
            self.size = info.size;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Bytes in the file (as this process wrote or found them).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether a record stamped `secs` belongs after the next rollover.
    #[inline]
    pub fn rollover_due(&self, secs: i64) -> bool {
        self.rollover_at.is_some_and(|at| secs >= at)
    }

    /// RotatingFileHandler's rule: roll before a record of `len` bytes when
    /// the file (with `pending` bytes still to write) is not empty and would
    /// reach `max_bytes`, unless a failed rotation put it on hold.
    #[inline]
    pub fn size_due(&self, pending: u64, len: u64, now: Instant) -> bool {
        self.rotation.max_bytes.is_some_and(|max| {
            self.size + pending > 0
                && self.size + pending + len >= max
                && self.size_hold_until.is_none_or(|t| now >= t)
        })
    }

    /// Append `buf` (one write(2) unless the kernel writes less), opening
    /// the file first if a reopen had failed.
    ///
    /// # Errors
    /// When opening or writing fails (the caller retries).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, OutputError> {
        let file = self.file()?;
        let n = file.write(buf).map_err(io_err(&self.path, "write"))?;
        self.size += n as u64;
        Ok(n)
    }

    /// Flush the file's data to disk (`fdatasync`); nothing when it is
    /// closed after a failed reopen.
    ///
    /// # Errors
    /// When `fdatasync` fails.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.sync_data())
    }

    /// Whether the path no longer names the open file (logrotate, cron or
    /// an operator moved or deleted it). A closed file has not moved: the
    /// next write opens the path anyway.
    pub fn moved(&self) -> bool {
        self.file.is_some() && !self.is_ours()
    }

    /// Whether the name leads to the open file itself (not a symlink, not
    /// another file).
    fn is_ours(&self) -> bool {
        matches!(self.dir.stat(&self.name), Ok(Some(i)) if i.regular && (i.dev, i.ino) == (self.dev, self.ino))
    }

    /// Open the path again (after SIGHUP or an external move).
    ///
    /// # Errors
    /// As for [`Output::open`]; the file is then closed, and the next write
    /// tries again.
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        self.file = None;
        self.file().map(drop)
    }

    /// Rotate now, for `due`. Returns the rotated file's name: its dated
    /// name, or `base.1` for numbered backups (it is renamed to a staging
    /// name that the background worker moves there).
    /// A timed schedule moves on even when the rename fails, so a failing
    /// rotation is retried at the next rollover, not once per record; a
    /// failed size rotation is retried after a second.
    ///
    /// # Errors
    /// When the rename fails. Reopening the path is left to the next write,
    /// which retries until it works.
    pub fn rotate(&mut self, now: Now, due: Due) -> Result<PathBuf, OutputError> {
        let secs = now.unix_secs();
        let target = match self.rotation.timed {
            Some(timed) => {
                let at = self.rollover_at.unwrap_or(secs);
                let suffix = timed.rotated_suffix(at, secs);
                if due == Due::Time {
                    self.rollover_at = self.next_rollover(secs);
                }
                // Size rolls within a period are numbered from 1.
                let first = if due == Due::Size { 1 } else { 0 };
                free_name(&self.dir, &self.name, &suffix, first)
            }
            None => name_with(&self.name, &format!(".rotating-{:020}", now.unix_ns)),
        };
        // Rename only the file being written: a symlink or another file put
        // in its place is left alone (and the next write reports it).
        if !self.is_ours() {
            self.file = None;
            return Err(OutputError::NotAFile(self.path.clone()));
        }
        if let Err(e) = self.dir.rename(&self.name, &target) {
            if due == Due::Size {
                self.size_hold_until = Some(now.mono + Duration::from_secs(1));
            }
            return Err(io_err(&self.path, "rename")(e));
        }
        self.size_hold_until = None;
        self.retirer.send(Job::Rotated(target.clone()));
        // Best now, else at the next write, which retries until it works.
        let _ = self.reopen();
        Ok(self.dir.join(&match self.rotation.timed {
            Some(_) => target,
            None => numbered(&self.name, 1),
        }))
    }

    /// Wait for compression and retention of every rotated file.
    pub fn finish(&mut self) {
        self.retirer.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_rotation::{Timed, When};
    use std::fs;
    use std::time::SystemTime;

    fn daily(backup_count: usize) -> RotationConfig {
        RotationConfig {
            timed: Some(Timed::new(When::Day, 1, None, true).unwrap()),
            backup_count,
            file_mode: 0o640,
            ..RotationConfig::default()
        }
    }

    /// 2024-03-06 10:00:00 UTC.
    const T: i64 = 1_709_719_200;

    #[test]
    fn schedule_survives_a_restart_and_a_missed_rollover_rotates_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(&path, "old\n").unwrap();
        // The file was last written two days before "now".
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs((T - 2 * 86_400) as u64);
        File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mut out = Output::open(&path, daily(0), T).unwrap();
        // Scheduled from the mtime (one day after it), which has passed.
        assert!(out.rollover_due(T));
        let rotated = out.rotate(Now::at(T), Due::Time).unwrap();
        // Named for the period the old file covered, as CPython would.
        assert_eq!(rotated.file_name().unwrap(), "app.log.2024-03-04");
        assert!(!out.rollover_due(T + 86_399));
        assert!(out.rollover_due(T + 86_400));
        out.finish();
    }

    #[test]
    fn a_taken_name_gets_an_index_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(dir.path().join("app.log.2024-03-06"), "precious\n").unwrap();
        fs::write(dir.path().join("app.log.2024-03-06.1.gz"), "precious too\n").unwrap();
        let mut out = Output::open(&path, daily(0), T).unwrap();
        out.write(b"new\n").unwrap();
        let rotated = out.rotate(Now::at(T + 86_400), Due::Time).unwrap();
        assert_eq!(rotated.file_name().unwrap(), "app.log.2024-03-06.2");
        assert_eq!(
            fs::read_to_string(dir.path().join("app.log.2024-03-06")).unwrap(),
            "precious\n"
        );
        assert_eq!(fs::read_to_string(&rotated).unwrap(), "new\n");
        // And rotation goes on at the next rollover.
        assert!(out.rollover_due(T + 2 * 86_400));
        out.finish();
    }

    /// `app.log` in `dir`, rolling by size at 100 bytes.
    fn rolling_at_100_bytes(dir: &Path) -> Output {
        let cfg = RotationConfig {
            max_bytes: Some(100),
            file_mode: 0o640,
            ..RotationConfig::default()
        };
        Output::open(&dir.join("app.log"), cfg, T).unwrap()
    }

    #[test]
    fn size_rule_is_rotating_file_handlers() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = rolling_at_100_bytes(dir.path());
        let now = Instant::now();
        // An empty file takes even an oversized record.
        assert!(!out.size_due(0, 500, now));
        out.write(&[b'x'; 60]).unwrap();
        assert!(!out.size_due(0, 39, now));
        assert!(out.size_due(0, 40, now));
        assert!(out.size_due(40, 0, now));
        out.finish();
    }

    /// A size rotation whose rename fails is not retried on every record,
    /// but after a second: the hold ends exactly then.
    #[test]
    fn a_failed_size_rotation_holds_for_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = rolling_at_100_bytes(dir.path());
        out.write(&[b'x'; 60]).unwrap();
        let now = Now {
            mono: Instant::now(),
            unix_ns: T as u64 * 1_000_000_000,
        };
        // The staging name is taken by a directory: the rename fails (even
        // for root).
        let staging = format!("app.log.rotating-{:020}", now.unix_ns);
        fs::create_dir(dir.path().join(&staging)).unwrap();
        fs::write(dir.path().join(&staging).join("x"), "").unwrap();
        assert!(out.rotate(now, Due::Size).is_err());
        assert!(!out.size_due(0, 40, now.mono));
        let second = Duration::from_secs(1);
        assert!(!out.size_due(0, 40, now.mono + second - Duration::from_millis(1)));
        assert!(out.size_due(0, 40, now.mono + second));
        // A failed timed rotation puts no size hold.
        out.size_hold_until = None;
        assert!(out.rotate(now, Due::Time).is_err());
        assert!(out.size_due(0, 40, now.mono));
        out.finish();
    }

    #[test]
    fn new_files_get_the_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = RotationConfig {
            file_mode: 0o600,
            ..RotationConfig::default()
        };
        let path = dir.path().join("sub/dir/app.log");
        let mut out = Output::open(&path, cfg, T).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        out.finish();
    }
}

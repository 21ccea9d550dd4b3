//! The log file the flusher owns: open, append, rotate, reopen; and what
//! happens to it after rotation. This room knows nothing of the ring or the
//! command line: the drain hands it bytes and asks it when to roll.
//!
//! Only this process writes or renames the file. When to roll is decided in
//! `rules.rs`; rotation is one rename on the drain path, then a reopen;
//! compression, shifting numbered backups, retention and the post-rotate
//! command run in the background (`retire.rs`). A dated name that already
//! exists gets `.1`, `.2`, ... instead of deleting or overwriting anything,
//! and rotation never stops.

mod compress;
mod error;
mod logdir;
mod naming;
mod post_rotate;
mod retire;
mod rules;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use error::OutputError;
use error::{io_err, open_append};
pub use logdir::LogDir;
pub use naming::dated_excess;
use naming::{free_name, name_with, numbered, sibling_prefix, Naming};
use retire::{Job, RetireConfig, Retirer, POST_ROTATE_GRACE};
use rules::Schedule;
pub use rules::{Due, Next, Rules};

use crate::now::Now;

/// How the log file is written and what happens to rotated files.
#[derive(Debug, Clone, Default)]
pub struct OutputConfig {
    /// When the file rolls over.
    pub rules: Rules,
    /// Rotated files to keep; 0 keeps all.
    pub backup_count: usize,
    /// Gzip rotated files in the background.
    pub gzip: bool,
    /// The newest rotated files left uncompressed.
    pub compress_delay: usize,
    /// Shell command run after each rotation with the rotated file as `$1`.
    pub post_rotate: Option<String>,
    /// Permission bits of new log files.
    pub file_mode: u32,
    /// Rotated files are left under a pending name for the application
    /// (`--rotated-by-app`; see [`pending_name`]).
    pub rotated_by_app: bool,
}

/// The name a rotated file is left under with `--rotated-by-app`:
/// `app.log.ringflush-pending.<unix ns, 20 digits>.<the next scheduled
/// rollover, Unix seconds; 0 without one>`. The application (the Python
/// handler's `_rotated.py`) names it from these (CPython's doRollover takes
/// the period from the rollover instant) and applies its namer and rotator,
/// oldest first; the digits keep the names unique and sorted.
pub fn pending_name(base: &str, unix_ns: u64, rollover_at: Option<i64>) -> String {
    format!(
        "{base}.ringflush-pending.{unix_ns:020}.{}",
        rollover_at.unwrap_or(0)
    )
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
    file_mode: u32,
    rotated_by_app: bool,
    /// When it rolls over.
    schedule: Schedule,
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
    pub fn open(path: &Path, cfg: OutputConfig, now: i64) -> Result<Self, OutputError> {
        let dir_path = path.parent().unwrap_or(Path::new(""));
        let dir = LogDir::open(dir_path).map_err(io_err(dir_path, "open directory"))?;
        let name = path
            .file_name()
            .ok_or_else(|| OutputError::NotAFile(path.into()))?
            .to_string_lossy()
            .into_owned();
        let (file, info) = open_append(&dir, &name, path, cfg.file_mode)?;
        let naming = match cfg.rules.timed {
            Some(t) => Naming::Dated(t),
            None => Naming::Numbered,
        };
        let retirer = Retirer::start(RetireConfig {
            dir: dir.clone(),
            base: name.clone(),
            naming,
            // The application prunes and compresses what it rotates.
            backup_count: if cfg.rotated_by_app {
                0
            } else {
                cfg.backup_count
            },
            gzip: cfg.gzip && !cfg.rotated_by_app,
            compress_delay: cfg.compress_delay,
            post_rotate: cfg.post_rotate,
            post_rotate_grace: POST_ROTATE_GRACE,
        });
        let since = if info.size > 0 { info.mtime } else { now };
        Ok(Output {
            path: path.into(),
            dir,
            name,
            dev: info.dev,
            ino: info.ino,
            size: info.size,
            file: Some(file),
            file_mode: cfg.file_mode,
            rotated_by_app: cfg.rotated_by_app,
            schedule: Schedule::new(cfg.rules, since),
            retirer,
        })
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
            let (file, info) = open_append(&self.dir, &self.name, &self.path, self.file_mode)?;
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

    /// Whether the file must roll before `next` goes in, and why (see
    /// `rules.rs`).
    #[inline]
    pub fn due(&self, next: &Next) -> Option<Due> {
        self.schedule.due(next)
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
    /// name that the background worker moves there). The schedule moves on
    /// as the rules say, whether the rename works or not (`rules.rs`).
    ///
    /// # Errors
    /// When the rename fails. Reopening the path is left to the next write,
    /// which retries until it works.
    pub fn rotate(&mut self, now: Now, due: Due) -> Result<PathBuf, OutputError> {
        let result = self.rename_away(now, due);
        match &result {
            Ok(_) => self.schedule.rotated(due, now),
            Err(_) => self.schedule.failed(due, now),
        }
        result
    }

    /// Move the schedule on as a rotation for `due` at `now` would, without
    /// rotating (an empty file).
    pub fn skip_rotation(&mut self, due: Due, now: Now) {
        self.schedule.rotated(due, now);
    }

    /// The rename of [`Output::rotate`], then the hand-over to the
    /// background worker and the reopen.
    fn rename_away(&mut self, now: Now, due: Due) -> Result<PathBuf, OutputError> {
        let secs = now.unix_secs();
        let timed = self.schedule.rules().timed;
        let target = match timed {
            _ if self.rotated_by_app => {
                pending_name(&self.name, now.unix_ns, self.schedule.rollover_at())
            }
            Some(timed) => {
                let at = self.schedule.rollover_at().unwrap_or(secs);
                let suffix = timed.rotated_suffix(at, secs);
                free_name(&self.dir, &self.name, &suffix, due.first_index())
            }
            None => name_with(&self.name, &format!(".rotating-{:020}", now.unix_ns)),
        };
        // Rename only the file being written: a symlink or another file put
        // in its place is left alone (and the next write reports it).
        if !self.is_ours() {
            self.file = None;
            return Err(OutputError::NotAFile(self.path.clone()));
        }
        self.dir
            .rename(&self.name, &target)
            .map_err(io_err(&self.path, "rename"))?;
        if !self.rotated_by_app {
            self.retirer.send(Job::Rotated(target.clone()));
        }
        // Best now, else at the next write, which retries until it works.
        let _ = self.reopen();
        Ok(self.dir.join(&match timed {
            Some(_) => target,
            None if self.rotated_by_app => target,
            None => numbered(&self.name, 1),
        }))
    }

    /// Wait for compression and retention of every rotated file (tests:
    /// dropping the output does the same).
    #[cfg(test)]
    pub fn finish(&mut self) {
        self.retirer.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_rotation::{Clock, Timed, When};
    use std::fs;
    use std::time::{Duration, Instant, SystemTime};

    fn daily(backup_count: usize) -> OutputConfig {
        OutputConfig {
            rules: Rules {
                timed: Some(Timed::new(When::Day, 1, None, Clock::Utc).unwrap()),
                max_bytes: None,
            },
            backup_count,
            file_mode: 0o640,
            ..OutputConfig::default()
        }
    }

    /// Whether a record of `len` bytes stamped `secs`, with `pending` bytes
    /// before it in the batch, must go into the next file.
    fn due(out: &Output, secs: i64, pending: u64, len: u64, now: Instant) -> Option<Due> {
        out.due(&Next {
            created_secs: secs,
            file_bytes: out.size() + pending,
            len,
            now,
            now_secs: i64::MAX,
        })
    }

    fn time_due(out: &Output, secs: i64) -> bool {
        due(out, secs, 0, 0, Instant::now()) == Some(Due::Time)
    }

    fn size_due(out: &Output, pending: u64, len: u64, now: Instant) -> bool {
        due(out, 0, pending, len, now) == Some(Due::Size)
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
        assert!(time_due(&out, T));
        let rotated = out.rotate(Now::at(T), Due::Time).unwrap();
        // Named for the period the old file covered, as CPython would.
        assert_eq!(rotated.file_name().unwrap(), "app.log.2024-03-04");
        assert!(!time_due(&out, T + 86_399));
        assert!(time_due(&out, T + 86_400));
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
        assert!(time_due(&out, T + 2 * 86_400));
        out.finish();
    }

    /// `app.log` in `dir`, rolling by size at 100 bytes.
    fn rolling_at_100_bytes(dir: &Path) -> Output {
        let cfg = OutputConfig {
            rules: Rules {
                max_bytes: Some(100),
                timed: None,
            },
            file_mode: 0o640,
            ..OutputConfig::default()
        };
        Output::open(&dir.join("app.log"), cfg, T).unwrap()
    }

    #[test]
    fn size_rule_is_rotating_file_handlers() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = rolling_at_100_bytes(dir.path());
        let now = Instant::now();
        // An empty file takes even an oversized record.
        assert!(!size_due(&out, 0, 500, now));
        out.write(&[b'x'; 60]).unwrap();
        assert!(!size_due(&out, 0, 39, now));
        assert!(size_due(&out, 0, 40, now));
        assert!(size_due(&out, 40, 0, now));
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
        assert!(!size_due(&out, 0, 40, now.mono));
        let second = Duration::from_secs(1);
        assert!(!size_due(
            &out,
            0,
            40,
            now.mono + second - Duration::from_millis(1)
        ));
        assert!(size_due(&out, 0, 40, now.mono + second));
        // A failed timed rotation puts no size hold.
        out.schedule = Schedule::new(out.schedule.rules().to_owned(), T);
        assert!(out.rotate(now, Due::Time).is_err());
        assert!(size_due(&out, 0, 40, now.mono));
        out.finish();
    }

    #[test]
    fn new_files_get_the_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = OutputConfig {
            file_mode: 0o600,
            ..OutputConfig::default()
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

//! The log file the flusher owns: open, append, rotate, retain, reopen.
//!
//! Only this process writes or renames the file. Rotation renames the live
//! file to `base.<suffix>` (CPython's name) and opens a new one; when that
//! name already exists it takes `base.<suffix>.1`, `.2`, ... instead of
//! deleting or overwriting anything, and it never stops rotating.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ringflush_rotation::{LocalZone, Timed, UtcZone};

/// Why the log file could not be opened or written.
#[derive(Debug)]
pub enum OutputError {
    /// The path exists and is not a regular file (a directory, a symlink...).
    NotAFile(PathBuf),
    /// A system call on `path` failed.
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::NotAFile(p) => write!(
                f,
                "log file {} exists and is not a regular file (symlinks are not followed)",
                p.display()
            ),
            OutputError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutputError::Io { source, .. } => Some(source),
            OutputError::NotAFile(_) => None,
        }
    }
}

/// A rotated file: its sort key (date suffix, index) and path.
pub type Backup = ((String, u64), PathBuf);

/// Rotation settings.
#[derive(Debug, Clone)]
pub struct RotationConfig {
    pub timed: Option<Timed>,
    /// Rotated files to keep; 0 keeps all.
    pub backup_count: usize,
}

pub struct Output {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    size: u64,
    rotation: RotationConfig,
    /// Unix second of the next timed rollover.
    rollover_at: Option<i64>,
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn open_append(path: &Path) -> Result<File, OutputError> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            return Err(OutputError::NotAFile(path.into()));
        }
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => OutputError::NotAFile(path.into()),
            _ => OutputError::Io {
                path: path.into(),
                op: "open",
                source: e,
            },
        })
}

impl Output {
    /// Open (creating parent directories) and schedule the first rollover
    /// from the file's mtime, as CPython does, so that a restart keeps the
    /// schedule and a restart after a missed rollover rotates at once.
    pub fn open(path: &Path, rotation: RotationConfig, now: i64) -> Result<Self, OutputError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        }
        let file = open_append(path)?;
        let meta = file.metadata().map_err(io_err(path, "stat"))?;
        let mut out = Output {
            path: path.into(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            file,
            rollover_at: None,
            rotation,
        };
        let since = if meta.len() > 0 { meta.mtime() } else { now };
        out.rollover_at = out.next_rollover(since);
        Ok(out)
    }

    fn next_rollover(&self, from: i64) -> Option<i64> {
        let timed = self.rotation.timed.as_ref()?;
        Some(if timed.utc {
            timed.compute_rollover(&UtcZone, from)
        } else {
            timed.compute_rollover(&LocalZone, from)
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a record stamped `secs` belongs after the next rollover.
    #[inline]
    pub fn rollover_due(&self, secs: i64) -> bool {
        self.rollover_at.is_some_and(|at| secs >= at)
    }

    /// Append `buf` (one write(2) unless the kernel writes less).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Whether the path still names the file we write (it was not moved or
    /// deleted by logrotate, cron or an operator).
    pub fn moved(&self) -> bool {
        match fs::symlink_metadata(&self.path) {
            Ok(m) => m.dev() != self.dev || m.ino() != self.ino,
            Err(_) => true,
        }
    }

    /// Open the path again (after SIGHUP or an external move).
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        let file = open_append(&self.path)?;
        let meta = file.metadata().map_err(io_err(&self.path, "stat"))?;
        self.file = file;
        self.dev = meta.dev();
        self.ino = meta.ino();
        self.size = meta.len();
        Ok(())
    }

    /// Rotate for the rollover that is due at `now`; returns the rotated
    /// file's path. The schedule moves on even when the rename fails, so a
    /// failing rotation is retried at the next rollover, not per record.
    pub fn rotate(&mut self, now: i64) -> Result<PathBuf, OutputError> {
        let timed = self.rotation.timed.expect("rotate() needs a timed policy");
        let at = self.rollover_at.unwrap_or(now);
        let suffix = if timed.utc {
            timed.suffix_for(&UtcZone, at, now)
        } else {
            timed.suffix_for(&LocalZone, at, now)
        };
        self.rollover_at = self.next_rollover(now);
        let target = self.free_name(&suffix);
        fs::rename(&self.path, &target).map_err(io_err(&self.path, "rename"))?;
        self.reopen()?;
        self.prune(&timed)?;
        Ok(target)
    }

    /// `base.suffix`, or the first `base.suffix.N` that does not exist.
    fn free_name(&self, suffix: &str) -> PathBuf {
        let base = self.path.as_os_str().to_string_lossy();
        let plain = PathBuf::from(format!("{base}.{suffix}"));
        let taken = |p: &Path| {
            fs::symlink_metadata(p).is_ok()
                || ["gz", "zst"]
                    .iter()
                    .any(|e| fs::symlink_metadata(format!("{}.{e}", p.display())).is_ok())
        };
        if !taken(&plain) {
            return plain;
        }
        (1..)
            .map(|n| PathBuf::from(format!("{base}.{suffix}.{n}")))
            .find(|p| !taken(p))
            .expect("an unused index exists")
    }

    /// Delete all but the newest `backup_count` rotated files.
    fn prune(&self, timed: &Timed) -> Result<(), OutputError> {
        if self.rotation.backup_count == 0 {
            return Ok(());
        }
        let mut backups = self.backups(timed)?;
        if backups.len() <= self.rotation.backup_count {
            return Ok(());
        }
        backups.sort();
        let excess = backups.len() - self.rotation.backup_count;
        for (_, path) in backups.into_iter().take(excess) {
            fs::remove_file(&path).map_err(io_err(&path, "remove old backup"))?;
        }
        Ok(())
    }

    /// Rotated files of this log with their sort keys (oldest first).
    pub fn backups(&self, timed: &Timed) -> Result<Vec<Backup>, OutputError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{base}.");
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir, "list directory"))? {
            let entry = entry.map_err(io_err(&dir, "list directory"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(key) = name.strip_prefix(&prefix).and_then(|s| timed.matches(s)) {
                found.push((key, entry.path()));
            }
        }
        Ok(found)
    }
}

/// Unix seconds of a zone-independent "now" for callers that need one.
pub fn unix_now() -> i64 {
    (ringflush_ring::now_ns() / 1_000_000_000) as i64
}

//! Why the log file could not be opened or written, and the opening that
//! says so.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::logdir::{FileInfo, LogDir};

/// Why the log file could not be opened or written.
#[derive(Debug)]
pub enum OutputError {
    /// The path exists and is not a regular file (a directory, a symlink...).
    NotAFile(PathBuf),
    /// A system call on `path` failed.
    Io {
        /// The file or directory it was about.
        path: PathBuf,
        /// What was being done, e.g. `"open"` or `"rename"`.
        op: &'static str,
        /// The error it returned.
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
            // The cause is the source(): printed once by `{:#}`.
            OutputError::Io { path, op, .. } => write!(f, "{op} {}", path.display()),
        }
    }
}

impl OutputError {
    /// The OS error number, for `stat` (-1 when there is none).
    pub fn errno(&self) -> i32 {
        match self {
            OutputError::NotAFile(_) => libc::ELOOP,
            OutputError::Io { source, .. } => source.raw_os_error().unwrap_or(-1),
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

/// An [`OutputError::Io`] maker for `op` on `path`, for `map_err`.
pub fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Open the log file `name` in `dir` to append (never through a symlink),
/// creating it with exactly `mode`.
pub fn open_append(
    dir: &LogDir,
    name: &str,
    path: &Path,
    mode: u32,
) -> Result<(File, FileInfo), OutputError> {
    dir.open_append(name, mode)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::EISDIR) => OutputError::NotAFile(path.into()),
            _ => OutputError::Io {
                path: path.into(),
                op: "open",
                source: e,
            },
        })
}

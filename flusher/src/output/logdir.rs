//! The directory the log file lives in, held open. Every file operation of
//! the flusher (open, stat, rename, compress, delete, list) goes through this
//! descriptor with the `*at` calls and `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`:
//! a symlink put in place of the log file or of a rotated file is never
//! followed, and one put in place of the directory after start does not
//! redirect the flusher (the descriptor pins the directory it opened).
//! Only regular files are read or written.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// A file's identity, size and ownership, from `fstat`/`fstatat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Device number.
    pub dev: u64,
    /// Inode number: with `dev`, the file's identity.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// A regular file (not a symlink, directory, fifo...).
    pub regular: bool,
}

impl FileInfo {
    fn of(st: &rustix::fs::Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
            regular: FileType::from_raw_mode(st.st_mode) == FileType::RegularFile,
        }
    }

    /// The info of an open file.
    pub fn of_file(file: &File) -> io::Result<Self> {
        Ok(Self::of(&rustix::fs::fstat(file)?))
    }
}

/// A file that is not a regular one where one was expected.
fn not_regular() -> io::Error {
    io::Error::from_raw_os_error(libc::ELOOP)
}

/// The log file's directory, open.
#[derive(Debug, Clone)]
pub struct LogDir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

impl LogDir {
    /// Open `path` (created with its parents if missing; an empty path is
    /// the current directory, and names then print bare) as a directory.
    ///
    /// # Errors
    /// When it cannot be created or opened, or is not a directory.
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
            // mkdir of a component that is a file: EEXIST, which reads as
            // if the directory were there. It is a file in the way.
            io::ErrorKind::AlreadyExists => io::Error::from_raw_os_error(libc::ENOTDIR),
            _ => e,
        })?;
        let fd = rustix::fs::open(
            dir,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    /// `name` in this directory, for messages and commands.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following a symlink; `None` when missing.
    pub fn stat(&self, name: &str) -> io::Result<Option<FileInfo>> {
        match rustix::fs::statat(self.fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileInfo::of(&st))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `name` exists (as anything, a symlink too).
    pub fn exists(&self, name: &str) -> bool {
        !matches!(self.stat(name), Ok(None))
    }

    /// Open the regular file `name` to append, creating it with exactly
    /// `mode` (not cut by the umask) when missing. A symlink, a directory or
    /// anything else not a regular file is refused (`ELOOP`).
    pub fn open_append(&self, name: &str, mode: u32) -> io::Result<(File, FileInfo)> {
        let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let created = rustix::fs::openat(
            self.fd.as_fd(),
            name,
            flags | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(mode),
        );
        let fd = match created {
            Ok(fd) => {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
                fd
            }
            Err(rustix::io::Errno::EXIST) => {
                rustix::fs::openat(self.fd.as_fd(), name, flags, Mode::empty())?
            }
            Err(e) => return Err(e.into()),
        };
        let file = File::from(fd);
        let info = FileInfo::of_file(&file)?;
        if !info.regular {
            return Err(not_regular());
        }
        Ok((file, info))
    }

    /// Open the regular file `name` to read; a symlink or anything else is
    /// refused (`ELOOP`).
    pub fn open_read(&self, name: &str) -> io::Result<(File, FileInfo)> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(self.fd.as_fd(), name, flags, Mode::empty())?;
        let file = File::from(fd);
        let info = FileInfo::of_file(&file)?;
        if !info.regular {
            return Err(not_regular());
        }
        Ok((file, info))
    }

    /// Create the new file `name` (it must not exist) with exactly `mode`,
    /// owned by `uid`:`gid` (when this process may give it away; otherwise
    /// its own).
    pub fn create_like(&self, name: &str, mode: u32, uid: u32, gid: u32) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(self.fd.as_fd(), name, flags, Mode::from_raw_mode(0o600))?;
        let owner = (
            rustix::fs::Uid::from_raw(uid),
            rustix::fs::Gid::from_raw(gid),
        );
        // Root keeps the owner; anyone else can only keep their own.
        let _ = rustix::fs::fchown(&fd, Some(owner.0), Some(owner.1));
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Rename `from` to `to` within the directory (a symlink is renamed as
    /// itself, never followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(
            self.fd.as_fd(),
            from,
            self.fd.as_fd(),
            to,
        )?)
    }

    /// Remove `name` (a symlink is removed as itself).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            self.fd.as_fd(),
            name,
            AtFlags::empty(),
        )?)
    }

    /// The names in the directory.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut dir = rustix::fs::Dir::read_from(self.fd.as_fd())?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let name = OsString::from_vec(entry?.file_name().to_bytes().to_vec());
            let name = name.to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn symlinks_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("target"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("target"), tmp.path().join("app.log")).unwrap();
        assert_eq!(
            dir.open_append("app.log", 0o600)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            dir.open_read("app.log").unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert!(!dir.stat("app.log").unwrap().unwrap().regular);
        dir.remove("app.log").unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("target")).unwrap(),
            "secret"
        );
    }

    #[test]
    fn created_files_get_exactly_their_mode_not_cut_by_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        // Group and other write bits: a umask (022 here) would cut them.
        let (_, info) = dir.open_append("app.log", 0o666).unwrap();
        drop(dir.create_like("copy", 0o662, info.uid, info.gid).unwrap());
        let mode = |n: &str| {
            let meta = std::fs::metadata(tmp.path().join(n)).unwrap();
            meta.permissions().mode() & 0o777
        };
        assert_eq!((mode("app.log"), mode("copy")), (0o666, 0o662));
        let mut names = dir.list().unwrap();
        names.sort();
        assert_eq!(names, ["app.log", "copy"]);
    }
}

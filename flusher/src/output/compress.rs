//! Compression of rotated files: gzip to `X.gz.tmp`, synced, then renamed
//! to `X.gz`, so a half-written archive never looks complete; the original
//! is removed only after that. The archive gets the original's mode and
//! owner, and a symlink is never read or written through.

use std::io::{self, BufWriter};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::logdir::LogDir;
use super::naming::{name_with, Backup};

/// Compress `name` to `name.gz` through `name.gz.tmp`; remove `name`.
/// Returns the archive's name.
///
/// # Errors
/// When reading, writing, syncing or renaming fails (then no `.gz.tmp` is
/// left behind and the original stays), or `name` is not a regular file.
pub fn gzip(dir: &LogDir, name: &str) -> io::Result<String> {
    let tmp = name_with(name, ".gz.tmp");
    let done = name_with(name, ".gz");
    let result = (|| {
        let (mut input, info) = dir.open_read(name)?;
        let out = dir.create_like(&tmp, info.mode, info.uid, info.gid)?;
        let mut enc = GzEncoder::new(BufWriter::new(out), Compression::default());
        io::copy(&mut input, &mut enc)?;
        let out = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        dir.rename(&tmp, &done)?;
        dir.remove(name)
    })();
    if let Err(e) = result {
        let _ = dir.remove(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("compressing {}: {e}", dir.join(name).display()),
        ));
    }
    Ok(done)
}

/// Compress every backup in `newest_first` but the first `delay`; remove a
/// plain file whose archive exists (complete: archives are renamed into
/// place only once written). Returns the archives made.
///
/// # Errors
/// The first compression or removal that fails.
pub fn compress_due(
    dir: &LogDir,
    newest_first: Vec<Backup>,
    delay: usize,
) -> io::Result<Vec<String>> {
    let mut made = Vec::new();
    for Backup { plain, gz } in newest_first.into_iter().skip(delay) {
        if !dir.exists(&plain) {
            continue;
        }
        if dir.exists(&gz) {
            dir.remove(&plain)?;
        } else {
            made.push(gzip(dir, &plain)?);
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_failed_compression_leaves_no_partial_archive_and_keeps_the_original() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("app.log.1"), "precious\n".repeat(1000)).unwrap();
        // The final name is taken by a directory: the rename fails after
        // the whole `.gz.tmp` was written.
        fs::create_dir(tmp.path().join("app.log.1.gz")).unwrap();
        assert!(gzip(&dir, "app.log.1").is_err());
        assert!(!tmp.path().join("app.log.1.gz.tmp").exists());
        assert_eq!(
            fs::read_to_string(tmp.path().join("app.log.1")).unwrap(),
            "precious\n".repeat(1000)
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        let e = gzip(&dir, "app.log.gone").unwrap_err();
        assert!(e.to_string().contains("app.log.gone"), "{e}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_archive_keeps_the_mode_and_a_symlink_is_not_compressed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        let rotated = tmp.path().join("app.log.1");
        fs::write(&rotated, "x\n").unwrap();
        fs::set_permissions(&rotated, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(gzip(&dir, "app.log.1").unwrap(), "app.log.1.gz");
        let meta = fs::metadata(tmp.path().join("app.log.1.gz")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        fs::write(tmp.path().join("secret"), "secret\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), tmp.path().join("app.log.2"))
            .unwrap();
        assert!(gzip(&dir, "app.log.2").is_err());
        assert!(!tmp.path().join("app.log.2.gz").exists());
    }
}

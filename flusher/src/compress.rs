//! Compression of rotated files: gzip to `X.gz.tmp`, synced, then renamed
//! to `X.gz`, so a half-written archive never looks complete; the original
//! is removed only after that.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::paths::name_with;

/// Compress `path` to `path.gz` through `path.gz.tmp`; remove `path`.
pub fn gzip(path: &Path) -> io::Result<PathBuf> {
    let tmp = name_with(path, ".gz.tmp");
    let done = name_with(path, ".gz");
    let result = (|| {
        let mut input = File::open(path)?;
        let out = File::create(&tmp)?;
        let mut enc = GzEncoder::new(BufWriter::new(out), Compression::default());
        io::copy(&mut input, &mut enc)?;
        let out = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fs::rename(&tmp, &done)?;
        fs::remove_file(path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("compressing {}: {e}", path.display()),
        ));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_compression_leaves_no_partial_archive_and_keeps_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let rotated = dir.path().join("app.log.1");
        fs::write(&rotated, "precious\n".repeat(1000)).unwrap();
        // The final name is taken by a directory: the rename fails after
        // the whole `.gz.tmp` was written.
        fs::create_dir(dir.path().join("app.log.1.gz")).unwrap();
        assert!(gzip(&rotated).is_err());
        assert!(!dir.path().join("app.log.1.gz.tmp").exists());
        assert_eq!(
            fs::read_to_string(&rotated).unwrap(),
            "precious\n".repeat(1000)
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = gzip(&dir.path().join("app.log.gone")).unwrap_err();
        assert!(e.to_string().contains("app.log.gone"), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

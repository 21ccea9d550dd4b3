//! Names of a log file's rotated siblings: `app.log.1`, `app.log.<date>`,
//! `app.log.<date>.2.gz`, `app.log.rotating-<ns>`. One place, so the live
//! side (`output.rs`) and the background side (`retire.rs`) never disagree.

use std::fs;
use std::path::{Path, PathBuf};

/// `path` with `ext` appended to its last component (`app.log` + `.1`).
pub fn name_with(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// `base.N` (RotatingFileHandler's numbered backups).
pub fn numbered(base: &Path, n: u64) -> PathBuf {
    name_with(base, &format!(".{n}"))
}

/// The directory the log file lives in (`.` for a bare file name).
pub fn dir_of(base: &Path) -> PathBuf {
    match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `app.log.`: what every rotated sibling's file name starts with.
pub fn sibling_prefix(base: &Path) -> String {
    format!(
        "{}.",
        base.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// `base.suffix` (when `first` is 0 and it is free), else the first free
/// `base.suffix.N` with N >= max(first, 1). A name counts as taken when it
/// or its compressed form exists, so nothing is ever overwritten.
pub fn free_name(base: &Path, suffix: &str, first: u64) -> PathBuf {
    let plain = name_with(base, &format!(".{suffix}"));
    let taken = |p: &Path| {
        fs::symlink_metadata(p).is_ok() || fs::symlink_metadata(name_with(p, ".gz")).is_ok()
    };
    if first == 0 && !taken(&plain) {
        return plain;
    }
    (first.max(1)..)
        .map(|n| name_with(&plain, &format!(".{n}")))
        .find(|p| !taken(p))
        .expect("an unused index exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_are_named_after_the_base() {
        let base = Path::new("logs/app.log");
        assert_eq!(numbered(base, 3), Path::new("logs/app.log.3"));
        assert_eq!(name_with(base, ".gz"), Path::new("logs/app.log.gz"));
        assert_eq!(dir_of(base), Path::new("logs"));
        assert_eq!(dir_of(Path::new("app.log")), Path::new("."));
        assert_eq!(sibling_prefix(base), "app.log.");
    }
}

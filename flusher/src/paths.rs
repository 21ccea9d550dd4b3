//! Names of a log file's rotated siblings: `app.log.1`, `app.log.<date>`,
//! `app.log.<date>.2.gz`, `app.log.rotating-<ns>`. One place, so the live
//! side (`output.rs`) and the background side (`retire.rs`) never disagree.
//! Names, not paths: every file operation goes through the [`LogDir`].

use crate::logdir::LogDir;

/// `name` with `ext` appended (`app.log` + `.1`).
pub fn name_with(name: &str, ext: &str) -> String {
    format!("{name}{ext}")
}

/// `base.N` (RotatingFileHandler's numbered backups).
pub fn numbered(base: &str, n: u64) -> String {
    format!("{base}.{n}")
}

/// `app.log.`: what every rotated sibling's name starts with.
pub fn sibling_prefix(base: &str) -> String {
    format!("{base}.")
}

/// `base.suffix` (when `first` is 0 and it is free), else the first free
/// `base.suffix.N` with N >= max(first, 1). A name counts as taken when it
/// or its compressed form exists, so nothing is ever overwritten.
pub fn free_name(dir: &LogDir, base: &str, suffix: &str, first: u64) -> String {
    let plain = format!("{base}.{suffix}");
    let taken = |n: &str| dir.exists(n) || dir.exists(&name_with(n, ".gz"));
    if first == 0 && !taken(&plain) {
        return plain;
    }
    (first.max(1)..)
        .map(|n| format!("{plain}.{n}"))
        .find(|n| !taken(n))
        .expect("an unused index exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_are_named_after_the_base() {
        assert_eq!(numbered("app.log", 3), "app.log.3");
        assert_eq!(name_with("app.log", ".gz"), "app.log.gz");
        assert_eq!(sibling_prefix("app.log"), "app.log.");
    }

    #[test]
    fn a_taken_name_or_its_archive_gets_the_next_index() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::open(tmp.path()).unwrap();
        assert_eq!(
            free_name(&dir, "app.log", "2024-03-06", 0),
            "app.log.2024-03-06"
        );
        std::fs::write(tmp.path().join("app.log.2024-03-06"), "").unwrap();
        std::fs::write(tmp.path().join("app.log.2024-03-06.1.gz"), "").unwrap();
        assert_eq!(
            free_name(&dir, "app.log", "2024-03-06", 0),
            "app.log.2024-03-06.2"
        );
        assert_eq!(
            free_name(&dir, "app.log", "2024-03-07", 1),
            "app.log.2024-03-07.1"
        );
    }
}

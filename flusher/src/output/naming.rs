//! Names of a log file's rotated siblings: `app.log.1`, `app.log.<date>`,
//! `app.log.<date>.2.gz`, `app.log.rotating-<ns>`, and which of them are its
//! backups. One place, so the live side (`mod.rs`), compression and the
//! background side (`retire.rs`) never disagree. Names, not paths: every
//! file operation goes through the [`LogDir`].

use std::io;

use ringflush_rotation::Timed;

use super::logdir::LogDir;

/// How rotated files are named.
#[derive(Debug, Clone, Copy)]
pub enum Naming {
    /// `base.<date suffix>[.N]` (TimedRotatingFileHandler, plus size rolls
    /// within a period).
    Dated(Timed),
    /// `base.1` newest ... `base.N` (RotatingFileHandler).
    Numbered,
}

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

/// A dated backup: its sort key (date suffix, index) and its files' names
/// (the plain and the compressed one count as one backup).
pub type DatedBackup = ((String, u64), Vec<String>);

/// Rotated files of `base` in `dir` under a dated policy, oldest first.
///
/// # Errors
/// When the directory cannot be listed.
pub fn dated_backups(dir: &LogDir, base: &str, timed: &Timed) -> io::Result<Vec<DatedBackup>> {
    let prefix = sibling_prefix(base);
    let mut found: Vec<DatedBackup> = Vec::new();
    for name in dir.list()? {
        let Some(key) = name.strip_prefix(&prefix).and_then(|s| timed.matches(s)) else {
            continue;
        };
        match found.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => found.push((key, vec![name])),
        }
    }
    found.sort();
    Ok(found)
}

/// The files of the dated backups beyond the newest `backup_count`, oldest
/// first: what retention deletes (nothing when `backup_count` is 0).
///
/// # Errors
/// When the directory cannot be listed.
pub fn dated_excess(
    dir: &LogDir,
    base: &str,
    timed: &Timed,
    backup_count: usize,
) -> io::Result<Vec<String>> {
    if backup_count == 0 {
        return Ok(Vec::new());
    }
    let backups = dated_backups(dir, base, timed)?;
    let excess = backups.len().saturating_sub(backup_count);
    Ok(backups
        .into_iter()
        .take(excess)
        .flat_map(|(_, paths)| paths)
        .collect())
}

/// A backup by its plain name and its compressed name (either may exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// `app.log.1`, `app.log.2024-03-06`.
    pub plain: String,
    /// The same with `.gz`.
    pub gz: String,
}

impl Backup {
    fn of(plain: String) -> Self {
        let gz = name_with(&plain, ".gz");
        Self { plain, gz }
    }
}

/// The backups of `base` in `dir`, newest first.
///
/// # Errors
/// When the directory cannot be listed.
pub fn backups_newest_first(dir: &LogDir, base: &str, naming: Naming) -> io::Result<Vec<Backup>> {
    Ok(match naming {
        Naming::Numbered => (1..)
            .map(|n| Backup::of(numbered(base, n)))
            .take_while(|b| dir.exists(&b.plain) || dir.exists(&b.gz))
            .collect(),
        Naming::Dated(timed) => {
            let mut all = dated_backups(dir, base, &timed)?;
            all.reverse();
            all.into_iter()
                .map(|(_, names)| {
                    let plain = names.iter().find(|n| !n.ends_with(".gz"));
                    let plain = plain
                        .cloned()
                        .unwrap_or_else(|| names[0].trim_end_matches(".gz").to_string());
                    Backup::of(plain)
                })
                .collect()
        }
    })
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

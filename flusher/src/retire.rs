//! What happens to a log file after rotation, off the drain path: one worker
//! thread, processing jobs in order, compresses (gzip to `X.gz.tmp`, then a
//! rename, so a half-written archive never looks complete), shifts numbered
//! backups, applies retention and runs the post-rotate command. Doing all of
//! it in one ordered place means no two steps ever race on a name.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;
use ringflush_rotation::Timed;

/// How rotated files are named.
#[derive(Debug, Clone, Copy)]
pub enum Naming {
    /// `base.<date suffix>[.N]` (TimedRotatingFileHandler, plus size rolls
    /// within a period).
    Dated(Timed),
    /// `base.1` newest ... `base.N` (RotatingFileHandler).
    Numbered,
}

#[derive(Debug, Clone)]
pub struct RetireConfig {
    pub base: PathBuf,
    pub naming: Naming,
    /// Rotated files to keep; 0 keeps all.
    pub backup_count: usize,
    pub gzip: bool,
    /// Shell command run with the rotated file as `$1`.
    pub post_rotate: Option<String>,
}

#[derive(Debug)]
pub enum Job {
    /// A backup already renamed to its final dated name.
    Dated(PathBuf),
    /// The live file renamed to a staging name, to become `base.1`.
    Numbered(PathBuf),
}

/// The background worker; dropping the sender ends it.
pub struct Retirer {
    jobs: Option<Sender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl Retirer {
    pub fn start(cfg: RetireConfig) -> Self {
        let (tx, rx) = channel::<Job>();
        let worker = std::thread::Builder::new()
            .name("ringflush-retire".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    if let Err(e) = retire(&cfg, job) {
                        eprintln!("ringflush: after rotation: {e}");
                    }
                }
            })
            .expect("spawning the rotation worker");
        Self {
            jobs: Some(tx),
            worker: Some(worker),
        }
    }

    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
    }

    /// Finish every queued job.
    pub fn finish(&mut self) {
        self.jobs.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Retirer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Compression must never take CPU from the drain (2-core machines): this
/// thread runs as SCHED_IDLE, or at least at nice 19.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread with a valid parameter.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
        }
    }
}

fn name_with(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// `base.N` (and `base.N.gz`).
pub fn numbered(base: &Path, n: u64) -> PathBuf {
    name_with(base, &format!(".{n}"))
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn retire(cfg: &RetireConfig, job: Job) -> io::Result<()> {
    let done = match job {
        Job::Dated(path) => {
            let done = if cfg.gzip { gzip(&path)? } else { path };
            if let Naming::Dated(timed) = cfg.naming {
                prune_dated(cfg, &timed)?;
            }
            done
        }
        Job::Numbered(staging) => {
            shift_numbered(cfg)?;
            let first = numbered(&cfg.base, 1);
            fs::rename(&staging, &first)?;
            if cfg.gzip {
                gzip(&first)?
            } else {
                first
            }
        }
    };
    if let Some(cmd) = &cfg.post_rotate {
        post_rotate(cmd, &done);
    }
    Ok(())
}

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

/// Make room for a new `base.1`: `base.N` -> `base.N+1` from the top down
/// (compressed or not), deleting what falls past the backup count.
fn shift_numbered(cfg: &RetireConfig) -> io::Result<()> {
    let mut top = 0;
    while exists(&numbered(&cfg.base, top + 1))
        || exists(&name_with(&numbered(&cfg.base, top + 1), ".gz"))
    {
        top += 1;
    }
    for n in (1..=top).rev() {
        for ext in ["", ".gz"] {
            let from = name_with(&numbered(&cfg.base, n), ext);
            if !exists(&from) {
                continue;
            }
            if cfg.backup_count > 0 && n as usize >= cfg.backup_count {
                fs::remove_file(&from)?;
            } else {
                fs::rename(&from, name_with(&numbered(&cfg.base, n + 1), ext))?;
            }
        }
    }
    Ok(())
}

/// A dated backup: its sort key (date suffix, index) and its files (the
/// plain and the compressed one count as one backup).
pub type DatedBackup = ((String, u64), Vec<PathBuf>);

/// Rotated files of `base` under a dated policy, oldest first.
pub fn dated_backups(base: &Path, timed: &Timed) -> io::Result<Vec<DatedBackup>> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.",
        base.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found: Vec<DatedBackup> = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_prefix(&prefix).and_then(|s| timed.matches(s)) else {
            continue;
        };
        match found.iter_mut().find(|(k, _)| *k == key) {
            Some((_, paths)) => paths.push(entry.path()),
            None => found.push((key, vec![entry.path()])),
        }
    }
    found.sort();
    Ok(found)
}

/// Keep the newest `backup_count` backups (a file and its compressed copy
/// count once).
fn prune_dated(cfg: &RetireConfig, timed: &Timed) -> io::Result<()> {
    if cfg.backup_count == 0 {
        return Ok(());
    }
    let backups = dated_backups(&cfg.base, timed)?;
    let excess = backups.len().saturating_sub(cfg.backup_count);
    for (_, paths) in backups.into_iter().take(excess) {
        for p in paths {
            fs::remove_file(&p)?;
        }
    }
    Ok(())
}

fn post_rotate(cmd: &str, path: &Path) {
    match Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .arg("ringflush-post-rotate")
        .arg(path)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "ringflush: --post-rotate {cmd:?} for {} failed: {s}",
            path.display()
        ),
        Err(e) => eprintln!("ringflush: --post-rotate {cmd:?} could not run: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_rotation::When;

    fn cfg(dir: &Path, naming: Naming, backup_count: usize, gzip: bool) -> RetireConfig {
        RetireConfig {
            base: dir.join("app.log"),
            naming,
            backup_count,
            gzip,
            post_rotate: None,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn numbered_backups_shift_compress_and_retain() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), Naming::Numbered, 3, true);
        for i in 0..5 {
            let staging = dir.path().join(format!("app.log.rotating-{i}"));
            fs::write(&staging, format!("generation {i}\n")).unwrap();
            retire(&c, Job::Numbered(staging)).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            ["app.log.1.gz", "app.log.2.gz", "app.log.3.gz"]
        );
        let newest = fs::read(dir.path().join("app.log.1.gz")).unwrap();
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&newest[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "generation 4\n");
    }

    #[test]
    fn dated_retention_counts_compressed_files_once_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        let timed = Timed::new(When::Day, 1, None, true).unwrap();
        for name in [
            "app.log.2024-03-01.gz",
            "app.log.2024-03-02",
            "app.log.2024-03-03.1.gz",
            "app.log.2024-03-03.2",
            "app.log.notes",
            "other.log.2024-03-01",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        let c = cfg(dir.path(), Naming::Dated(timed), 2, false);
        let newest = dir.path().join("app.log.2024-03-04");
        fs::write(&newest, "x").unwrap();
        retire(&c, Job::Dated(newest)).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "app.log.2024-03-03.2",
                "app.log.2024-03-04",
                "app.log.notes",
                "other.log.2024-03-01"
            ]
        );
    }

    #[test]
    fn gzip_leaves_no_partial_archive_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("app.log.gone");
        assert!(gzip(&missing).is_err());
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn post_rotate_gets_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(
            dir.path(),
            Naming::Dated(Timed::new(When::Day, 1, None, true).unwrap()),
            0,
            false,
        );
        let marker = dir.path().join("ran");
        c.post_rotate = Some(format!("echo \"$1\" > {}", marker.display()));
        let p = dir.path().join("app.log.2024-03-04");
        fs::write(&p, "x").unwrap();
        retire(&c, Job::Dated(p.clone())).unwrap();
        assert_eq!(
            fs::read_to_string(marker).unwrap().trim(),
            p.display().to_string()
        );
    }
}

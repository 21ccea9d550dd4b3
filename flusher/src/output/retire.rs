//! What happens to a log file after rotation, off the drain path: one worker
//! thread, processing jobs in order, shifts numbered backups, compresses
//! (gzip to `X.gz.tmp`, then a rename, so a half-written archive never looks
//! complete), applies retention and runs the post-rotate command. Doing all
//! of it in one ordered place means no two steps ever race on a name.
//!
//! Compression follows one rule, applied after every rotation and once at
//! start: every backup but the newest `compress_delay` ones is compressed,
//! and a plain file whose archive is already complete is removed. So a
//! crash between any two steps (before compressing, between the archive's
//! rename and the original's removal) is finished at the next start, and
//! never leaves a record in two files.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ringflush_rotation::Timed;

use super::compress::compress_due;
use super::logdir::LogDir;
use super::naming::{
    backups_newest_first, dated_excess, name_with, numbered, sibling_prefix, Naming,
};
use super::post_rotate::post_rotate;
use crate::report;

/// How long a `--post-rotate` command may still run once the flusher is
/// stopping, before it is killed so that it cannot hold up the exit.
pub const POST_ROTATE_GRACE: Duration = Duration::from_secs(5);

/// What the background worker does with rotated files.
#[derive(Debug, Clone)]
pub struct RetireConfig {
    /// The log file's directory, where every file operation happens.
    pub dir: LogDir,
    /// The live log file's name; backups are its siblings.
    pub base: String,
    /// How backups are named.
    pub naming: Naming,
    /// Rotated files to keep; 0 keeps all.
    pub backup_count: usize,
    /// Gzip rotated files (to `<name>.gz`).
    pub gzip: bool,
    /// The newest backups left uncompressed (logrotate's `delaycompress`:
    /// a log shipper may still be reading the one just rotated).
    pub compress_delay: usize,
    /// Shell command run with the rotated file as `$1`.
    pub post_rotate: Option<String>,
    /// See [`POST_ROTATE_GRACE`].
    pub post_rotate_grace: Duration,
}

/// Work for the background thread.
#[derive(Debug)]
pub enum Job {
    /// The live file, just renamed: under [`Naming::Dated`] to its final
    /// name, under [`Naming::Numbered`] to a staging name that becomes
    /// `base.1`.
    Rotated(String),
    /// At start: remove half-written archives and apply the compression
    /// rule and retention to what a crashed flusher left.
    Tidy,
}

/// The background worker; [`Retirer::finish`] (or dropping it) ends it.
pub struct Retirer {
    jobs: Option<Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    /// Set when the flusher stops: a post-rotate command still running then
    /// gets [`RetireConfig::post_rotate_grace`] more, then is killed.
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for Retirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retirer")
            .field("running", &self.worker.is_some())
            .finish_non_exhaustive()
    }
}

impl Retirer {
    /// Start the worker thread (named `ringflush-retire`, at idle priority).
    ///
    /// # Panics
    /// If the thread cannot be spawned.
    pub fn start(cfg: RetireConfig) -> Self {
        let (tx, rx) = channel::<Job>();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let worker = std::thread::Builder::new()
            .name("ringflush-retire".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    if let Err(e) = retire(&cfg, job, &stop) {
                        report::stderr(format_args!("after rotation: {e}"));
                    }
                }
            })
            .expect("spawning the rotation worker");
        Self {
            jobs: Some(tx),
            worker: Some(worker),
            stopping,
        }
    }

    /// Queue `job`; jobs run in the order sent. Ignored after
    /// [`Retirer::finish`].
    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
    }

    /// Finish every queued job: compression and retention run to the end,
    /// a post-rotate command is killed if it outlives the grace period.
    pub fn finish(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
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

fn retire(cfg: &RetireConfig, job: Job, stopping: &AtomicBool) -> io::Result<()> {
    let rotated = match (job, cfg.naming) {
        (Job::Rotated(staging), Naming::Numbered) => {
            shift_numbered(cfg)?;
            let first = numbered(&cfg.base, 1);
            cfg.dir.rename(&staging, &first)?;
            Some(first)
        }
        (Job::Rotated(name), Naming::Dated(_)) => Some(name),
        (Job::Tidy, _) => {
            let prefix = sibling_prefix(&cfg.base);
            for name in cfg.dir.list()? {
                if name.starts_with(&prefix) && name.ends_with(".gz.tmp") {
                    cfg.dir.remove(&name)?;
                }
            }
            None
        }
    };
    let compressed = if cfg.gzip {
        let backups = backups_newest_first(&cfg.dir, &cfg.base, cfg.naming)?;
        compress_due(&cfg.dir, backups, cfg.compress_delay)?
    } else {
        Vec::new()
    };
    if let Naming::Dated(timed) = cfg.naming {
        prune_dated(cfg, &timed)?;
    }
    if let (Some(cmd), Some(name)) = (&cfg.post_rotate, rotated) {
        // The rotated file by the name it has now.
        let gz = name_with(&name, ".gz");
        let now = if compressed.contains(&gz) { gz } else { name };
        post_rotate(cmd, &cfg.dir.join(&now), stopping, cfg.post_rotate_grace);
    }
    Ok(())
}

/// Make room for a new `base.1`: `base.N` -> `base.N+1` from the top down
/// (compressed or not), deleting what falls past the backup count.
fn shift_numbered(cfg: &RetireConfig) -> io::Result<()> {
    let dir = &cfg.dir;
    let exists = |n: u64, ext: &str| dir.exists(&name_with(&numbered(&cfg.base, n), ext));
    let mut top = 0;
    while exists(top + 1, "") || exists(top + 1, ".gz") {
        top += 1;
    }
    for n in (1..=top).rev() {
        for ext in ["", ".gz"] {
            let from = name_with(&numbered(&cfg.base, n), ext);
            if !dir.exists(&from) {
                continue;
            }
            if cfg.backup_count > 0 && n as usize >= cfg.backup_count {
                dir.remove(&from)?;
            } else {
                dir.rename(&from, &name_with(&numbered(&cfg.base, n + 1), ext))?;
            }
        }
    }
    Ok(())
}

/// Keep the newest `backup_count` backups (a file and its compressed copy
/// count once).
fn prune_dated(cfg: &RetireConfig, timed: &Timed) -> io::Result<()> {
    for name in dated_excess(&cfg.dir, &cfg.base, timed, cfg.backup_count)? {
        cfg.dir.remove(&name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_rotation::{Clock, When};
    use std::fs;
    use std::path::Path;

    fn cfg(dir: &Path, naming: Naming, backup_count: usize, gzip: bool) -> RetireConfig {
        RetireConfig {
            dir: LogDir::open(dir).unwrap(),
            base: "app.log".into(),
            naming,
            backup_count,
            gzip,
            compress_delay: 0,
            post_rotate: None,
            post_rotate_grace: POST_ROTATE_GRACE,
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
            let staging = format!("app.log.rotating-{i}");
            fs::write(dir.path().join(&staging), format!("generation {i}\n")).unwrap();
            retire(&c, Job::Rotated(staging), &AtomicBool::new(false)).unwrap();
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
        let timed = Timed::new(When::Day, 1, None, Clock::Utc).unwrap();
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
        fs::write(dir.path().join("app.log.2024-03-04"), "x").unwrap();
        let newest = "app.log.2024-03-04".to_string();
        retire(&c, Job::Rotated(newest), &AtomicBool::new(false)).unwrap();
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
    fn post_rotate_gets_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(
            dir.path(),
            Naming::Dated(Timed::new(When::Day, 1, None, Clock::Utc).unwrap()),
            0,
            false,
        );
        let marker = dir.path().join("ran");
        c.post_rotate = Some(format!("echo \"$1\" > {}", marker.display()));
        let p = dir.path().join("app.log.2024-03-04");
        fs::write(&p, "x").unwrap();
        let name = "app.log.2024-03-04".to_string();
        retire(&c, Job::Rotated(name), &AtomicBool::new(false)).unwrap();
        assert_eq!(
            fs::read_to_string(marker).unwrap().trim(),
            p.display().to_string()
        );
    }
}

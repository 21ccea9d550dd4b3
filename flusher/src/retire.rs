//! What happens to a log file after rotation, off the drain path: one worker
//! thread, processing jobs in order, compresses (gzip to `X.gz.tmp`, then a
//! rename, so a half-written archive never looks complete), shifts numbered
//! backups, applies retention and runs the post-rotate command. Doing all of
//! it in one ordered place means no two steps ever race on a name.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringflush_rotation::Timed;

use crate::compress::gzip;
use crate::paths::{dir_of, name_with, numbered, sibling_prefix};
use crate::report;

/// How long a `--post-rotate` command may still run once the flusher is
/// stopping, before it is killed so that it cannot hold up the exit.
pub const POST_ROTATE_GRACE: Duration = Duration::from_secs(5);

/// How rotated files are named.
#[derive(Debug, Clone, Copy)]
pub enum Naming {
    /// `base.<date suffix>[.N]` (TimedRotatingFileHandler, plus size rolls
    /// within a period).
    Dated(Timed),
    /// `base.1` newest ... `base.N` (RotatingFileHandler).
    Numbered,
}

/// What the background worker does with rotated files.
#[derive(Debug, Clone)]
pub struct RetireConfig {
    /// The live log file's path; backups are its siblings.
    pub base: PathBuf,
    /// How backups are named.
    pub naming: Naming,
    /// Rotated files to keep; 0 keeps all.
    pub backup_count: usize,
    /// Gzip each rotated file (to `<name>.gz`).
    pub gzip: bool,
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
    Rotated(PathBuf),
    /// A backup whose compression a crash interrupted: compress it again.
    Compress(PathBuf),
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

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn retire(cfg: &RetireConfig, job: Job, stopping: &AtomicBool) -> io::Result<()> {
    let done = match (job, cfg.naming) {
        (Job::Rotated(staging), Naming::Numbered) => {
            shift_numbered(cfg)?;
            let first = numbered(&cfg.base, 1);
            fs::rename(&staging, &first)?;
            if cfg.gzip {
                gzip(&first)?
            } else {
                first
            }
        }
        // A resumed compression is only queued with gzip on.
        (Job::Rotated(path) | Job::Compress(path), naming) => {
            let done = if cfg.gzip { gzip(&path)? } else { path };
            if let Naming::Dated(timed) = naming {
                prune_dated(cfg, &timed)?;
            }
            done
        }
    };
    if let Some(cmd) = &cfg.post_rotate {
        post_rotate(cmd, &done, stopping, cfg.post_rotate_grace);
    }
    Ok(())
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
    let dir = dir_of(base);
    let prefix = sibling_prefix(base);
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
    for p in dated_excess(&cfg.base, timed, cfg.backup_count)? {
        fs::remove_file(&p)?;
    }
    Ok(())
}

/// The files of the dated backups beyond the newest `backup_count`, oldest
/// first: what retention deletes (nothing when `backup_count` is 0).
///
/// # Errors
/// When the directory cannot be listed.
pub fn dated_excess(base: &Path, timed: &Timed, backup_count: usize) -> io::Result<Vec<PathBuf>> {
    if backup_count == 0 {
        return Ok(Vec::new());
    }
    let backups = dated_backups(base, timed)?;
    let excess = backups.len().saturating_sub(backup_count);
    Ok(backups
        .into_iter()
        .take(excess)
        .flat_map(|(_, paths)| paths)
        .collect())
}

/// Run `sh -c CMD` with the rotated file as `$1`, in its own process group;
/// failures are reported, never fatal. Once `stopping` is set it has
/// `grace` left before its group is killed.
fn post_rotate(cmd: &str, path: &Path, stopping: &AtomicBool, grace: Duration) {
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .arg("ringflush-post-rotate")
        .arg(path)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return report::stderr(format_args!("--post-rotate {cmd:?} could not run: {e}")),
    };
    let mut kill_at = None;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return,
            Ok(Some(s)) => {
                let path = path.display();
                return report::stderr(format_args!(
                    "--post-rotate {cmd:?} for {path} failed: {s}"
                ));
            }
            Ok(None) => {}
            Err(e) => return report::stderr(format_args!("--post-rotate {cmd:?}: wait: {e}")),
        }
        if stopping.load(Ordering::Relaxed) {
            let at = *kill_at.get_or_insert_with(|| Instant::now() + grace);
            if Instant::now() >= at {
                // SAFETY: kill has no memory-safety preconditions; the
                // negative pid names the command's own process group.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return report::stderr(format_args!(
                    "--post-rotate {cmd:?} for {} still ran {grace:?} after the flusher was asked to stop: killed",
                    path.display()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
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
            let staging = dir.path().join(format!("app.log.rotating-{i}"));
            fs::write(&staging, format!("generation {i}\n")).unwrap();
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
            Naming::Dated(Timed::new(When::Day, 1, None, true).unwrap()),
            0,
            false,
        );
        let marker = dir.path().join("ran");
        c.post_rotate = Some(format!("echo \"$1\" > {}", marker.display()));
        let p = dir.path().join("app.log.2024-03-04");
        fs::write(&p, "x").unwrap();
        retire(&c, Job::Rotated(p.clone()), &AtomicBool::new(false)).unwrap();
        assert_eq!(
            fs::read_to_string(marker).unwrap().trim(),
            p.display().to_string()
        );
    }

    #[test]
    fn a_hung_post_rotate_command_cannot_hold_up_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log.2024-03-04");
        fs::write(&p, "x").unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let stopping = AtomicBool::new(true);
            post_rotate("sleep 600", &p, &stopping, Duration::from_millis(100));
            tx.send(()).unwrap();
        });
        // A bound on a hang, not a timing assertion: without the kill the
        // command runs for ten minutes.
        assert!(rx.recv_timeout(Duration::from_secs(60)).is_ok());
    }
}

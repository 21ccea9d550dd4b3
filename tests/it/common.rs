//! Fixtures for tests that run the real `ringflush` binary and real processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringflush");

/// A unique shared-memory name, unlinked on drop, and a temp dir.
pub struct Scratch {
    pub shm: String,
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(test: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let shm = format!(
            "/rf-test-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            shm,
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn shm_file(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm{}", self.shm))
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path());
        c
    }
    /// The flusher command line for `app.log` (unless `extra` names another
    /// `--file`), with extra arguments.
    pub fn flusher_cmd(&self, extra: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(["--shm", &self.shm]);
        if !extra.contains(&"--file") {
            c.args(["--file", "app.log"]);
        }
        c.args(extra);
        c
    }
    /// A `ringflush worker` writing `count` numbered records as `id`.
    pub fn worker_cmd(&self, id: u64, count: u64) -> Command {
        let mut c = self.cmd();
        c.args(["worker", "--shm", &self.shm, "--id", &id.to_string()])
            .args(["--count", &count.to_string()]);
        c
    }
    /// Start a flusher writing to `app.log` with extra arguments.
    pub fn flusher(&self, extra: &[&str]) -> Flusher {
        let child = self
            .flusher_cmd(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flusher");
        Flusher { child: Some(child) }
    }
    /// Start a flusher and wait until it runs (stat shows it alive), so that
    /// producers started afterwards use its segment.
    pub fn flusher_ready(&self, extra: &[&str]) -> Flusher {
        let f = self.flusher(extra);
        let alive = wait_until(Duration::from_secs(30), || {
            let out = self.run(&["stat", "--shm", &self.shm, "--json"]);
            out.status.success()
                && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    .map(|v| v["flusher"]["pid"] == f.pid())
                    .unwrap_or(false)
        });
        if !alive {
            let (_, err) = f.stop();
            panic!("flusher did not start: {err}");
        }
        f
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run ringflush")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.shm_file());
    }
}

pub struct Flusher {
    child: Option<Child>,
}

impl Flusher {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }
    /// SIGTERM, then wait; returns (success, stderr).
    pub fn stop(self) -> (bool, String) {
        self.signal(libc::SIGTERM);
        self.wait()
    }
    /// Wait for it to exit (bounded: killed after 120 s); returns (success,
    /// stderr).
    pub fn wait(mut self) -> (bool, String) {
        let mut child = self.child.take().unwrap();
        let mut stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = std::io::Read::read_to_end(err, &mut buf);
            }
            buf
        });
        let status = wait_child(child, Duration::from_secs(120));
        let err = reader.join().unwrap();
        (status.success(), String::from_utf8_lossy(&err).into_owned())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll `cond` every 10 ms until it holds or `limit` passes (a bound on a
/// hang, never a performance assertion).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Wait for a child, killing it (and failing the test) after `limit`, so a
/// hung producer fails the test instead of hanging CI.
pub fn wait_child(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_child`], collecting stdout.
pub fn wait_child_output(mut child: Child, limit: Duration) -> Output {
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut out) = stdout {
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
        }
        buf
    });
    let status = wait_child(child, limit);
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: Vec::new(),
    }
}

pub fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Say, where `cargo test` shows it even for a passing test, that part of a
/// test did not run and why. In CI (`CI` set) a test that must run fails
/// instead: a skipped test there must not look like a pass.
pub fn not_run(test: &str, why: &str, must_run_in_ci: bool) {
    if must_run_in_ci && std::env::var_os("CI").is_some() {
        panic!("{test} must run in CI, but {why}");
    }
    // Not eprintln!: the test harness captures that for passing tests.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOT RUN: {test}: {why}");
}

/// Records [`kill_flusher_mid_batch`] writes: several batches' worth, and
/// 4.3 MB in all, within the seven eighths of a default segment's pool
/// that one lane may hold.
pub const MID_BATCH_RECORDS: u64 = 20_000;

/// [`MID_BATCH_RECORDS`] records `worker=0 seq=N zzz...` in the ring (in a lane of a
/// segment of `lanes` lanes, or the shared ring with 0), then a flusher
/// that `fault` (`RINGFLUSH_FLUSHER_FAULT`) kills with a batch in flight.
pub fn kill_flusher_mid_batch(s: &Scratch, fault: &str, lanes: u64) {
    let producer = ringflush_producer::Producer::builder(&s.shm)
        .lanes(lanes)
        .open()
        .unwrap();
    for i in 0..MID_BATCH_RECORDS {
        let message = format!("worker=0 seq={i} {}", "z".repeat(60));
        if let Err(e) = producer.log(20, "n", &message) {
            panic!("record {i}: {e}");
        }
    }
    let status = s
        .flusher_cmd(&["--format", "%(message)s"])
        .env("RINGFLUSH_FLUSHER_FAULT", fault)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the fault fired");
}

/// The files in `dir` whose names start with `app.log`, sorted.
pub fn app_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("app.log")
        })
        .collect();
    v.sort();
    v
}

/// `python3.13` on PATH, else pyenv's.
pub fn cpython_313() -> Option<PathBuf> {
    let on_path = Command::new("python3.13").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Some("python3.13".into());
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("3.13"))
        .map(|e| e.path().join("bin/python3"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// Wait until `app.log` has `n` lines, stop the flusher, return the lines.
pub fn lines_after(s: &Scratch, f: Flusher, n: usize) -> Vec<String> {
    let enough = wait_until(Duration::from_secs(30), || {
        read(&s.path("app.log")).lines().count() >= n
    });
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let log = read(&s.path("app.log"));
    assert!(enough, "expected {n} lines, got:\n{log}");
    log.lines().map(str::to_owned).collect()
}

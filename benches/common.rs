//! Shared set-up of the benches: a real flusher process on a fresh segment.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringflush_ring::{Segment, SegmentOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringflush");

pub struct Bench {
    pub shm: String,
    pub dir: tempfile::TempDir,
    flusher: Option<Child>,
}

impl Bench {
    pub fn new(tag: &str) -> Self {
        Self {
            shm: format!("/rf-bench-{tag}-{}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
            flusher: None,
        }
    }

    /// Open the existing segment to watch its counters (no prefault).
    pub fn segment(&self) -> Option<Segment> {
        let opts = SegmentOptions {
            create: false,
            prefault: false,
            ..Default::default()
        };
        Segment::open(&self.shm, &opts).ok()
    }

    /// Start the real flusher without waiting for it.
    pub fn spawn_flusher(&mut self, size: &str, format: &str) -> u32 {
        self.spawn_flusher_with(size, format, &[])
    }

    /// The same with extra flusher arguments.
    pub fn spawn_flusher_with(&mut self, size: &str, format: &str, extra: &[&str]) -> u32 {
        let child = Command::new(BIN)
            .args(["--shm", &self.shm, "--size", size, "--format", format])
            .args(extra)
            .arg("--file")
            .arg(self.dir.path().join("app.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.flusher = Some(child);
        pid
    }

    /// Start the real flusher and wait until it runs.
    pub fn start_flusher(&mut self, size: &str, format: &str) {
        self.start_flusher_with(size, format, &[]);
    }

    /// The same with extra flusher arguments. Panics (instead of waiting
    /// forever) when the flusher exits or has not started within 30 s.
    pub fn start_flusher_with(&mut self, size: &str, format: &str, extra: &[&str]) {
        let pid = self.spawn_flusher_with(size, format, extra);
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Some(seg) = self.segment() {
                if seg.header().flusher.pid.load(Ordering::Relaxed) == pid {
                    return;
                }
            }
            if let Some(status) = self
                .flusher
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("flusher exited at start ({status}): run it by hand to see why");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("flusher did not start");
    }

    pub fn stop_flusher(&mut self) {
        if let Some(mut c) = self.flusher.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop_flusher();
        let _ = Segment::unlink(&self.shm);
    }
}

/// A 100-byte message.
pub fn message_100() -> String {
    let m = "GET /api/v1/orders/12345 200 OK 12.3ms user=4711 request_id=9f8e7d6c-5b4a-3f2e-1d0c-b9a8f7e6d5c4";
    let m = format!("{m}{}", "x".repeat(100 - m.len()));
    assert_eq!(m.len(), 100);
    m
}

//! Chaos: 8 producer processes write numbered records while the driver
//! SIGKILLs random producers and the flusher and restarts them. At the end
//! every record a producer committed appears exactly once: each producer
//! incarnation's records form a gapless run from 0 up to at least the count
//! it saw committed (each worker stores that count in a progress file after
//! every record, so a killed one tells too; it loses at most the record it
//! was writing), with no duplicates, even though the flusher died mid-batch
//! many times. At most one record per killed producer is abandoned, and no
//! region of the ring is ever corrupt.
//!
//! Runs 20 s by default; RINGFLUSH_CHAOS_SECONDS=600 runs longer.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::Scratch;
use ringflush::verify;

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn progress_file(s: &Scratch, id: u64) -> std::path::PathBuf {
    s.path(&format!("progress-{id}"))
}

/// The records worker `id` saw committed, as its progress file says.
fn committed(s: &Scratch, id: u64) -> u64 {
    let bytes = std::fs::read(progress_file(s, id)).unwrap_or_default();
    bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

/// A worker writing `worker=<id> seq=<n>` lines. With `--retry-full` a
/// record the ring refused while no flusher ran long enough (a refusal the
/// producer counts and reports, by design) is written again, so any gap in
/// a worker's sequence is a committed record lost.
fn spawn_worker(s: &Scratch, id: u64, seconds: f64) -> Child {
    s.cmd()
        .args(["worker", "--shm", &s.shm, "--id", &id.to_string()])
        .arg("--progress")
        .arg(progress_file(s, id))
        .args([
            "--seconds",
            &format!("{seconds:.2}"),
            "--pause-us",
            "20",
            "--retry-full",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(s.path(&format!("worker-{id}.err"))).unwrap())
        .spawn()
        .unwrap()
}

fn spawn_flusher(s: &Scratch) -> Child {
    s.flusher_cmd(&["--format", "%(message)s", "--unblock-timeout", "2"])
        .args(["--size", "4M"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// A flusher killed when dropped, so a failing assertion leaves none behind.
struct Flusher(Child);

impl Drop for Flusher {
    fn drop(&mut self) {
        kill9(&mut self.0);
    }
}

#[test]
fn random_kills_of_producers_and_the_flusher_lose_and_duplicate_nothing() {
    let seconds: f64 = std::env::var("RINGFLUSH_CHAOS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let s = Scratch::new("chaos");
    let mut flusher = Flusher(spawn_flusher(&s));
    std::thread::sleep(Duration::from_millis(300));
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    // Slot i runs incarnations i, i + 8, i + 16, ... (the worker id).
    let mut next_id = 8;
    let mut slots: Vec<(u64, Child)> = (0..8).map(|i| (i, spawn_worker(&s, i, seconds))).collect();
    let mut finished: BTreeMap<u64, u64> = BTreeMap::new();
    let mut killed: Vec<u64> = Vec::new();
    let (mut producer_kills, mut flusher_kills) = (0, 0);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50 + rng.next(250)));
        if rng.next(3) == 0 {
            kill9(&mut flusher.0);
            flusher_kills += 1;
            flusher = Flusher(spawn_flusher(&s));
        } else {
            let i = rng.next(8) as usize;
            kill9(&mut slots[i].1);
            producer_kills += 1;
            killed.push(slots[i].0);
            let left = end
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .max(0.1);
            slots[i] = (next_id, spawn_worker(&s, next_id, left));
            next_id += 1;
        }
    }
    for (id, child) in slots {
        let out = crate::common::wait_child_output(child, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "worker {id} failed ({}): {}",
            out.status,
            crate::common::read(&s.path(&format!("worker-{id}.err")))
        );
        finished.insert(
            id,
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        );
    }
    // A last, clean flusher drains what is left.
    drop(flusher);
    let last = s.flusher(&["--format", "%(message)s", "--unblock-timeout", "2"]);
    std::thread::sleep(Duration::from_secs(3));
    let (ok, err) = last.stop();
    assert!(ok, "{err}");

    let files = verify::log_files(&s.path("app.log")).unwrap();
    let mut by_id: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for f in &files {
        for line in crate::common::read(f).lines() {
            let Some(rest) = line.strip_prefix("worker=") else {
                continue;
            };
            let (id, seq) = rest.split_once(" seq=").unwrap();
            by_id
                .entry(id.parse().unwrap())
                .or_default()
                .push(seq.parse().unwrap());
        }
    }
    let (mut records, mut duplicates, mut lost) = (0u64, 0u64, 0u64);
    for (id, seqs) in &by_id {
        records += seqs.len() as u64;
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        duplicates += (seqs.len() - sorted.len()) as u64;
        let top = sorted.last().copied().unwrap_or(0);
        // Gaps below the highest record seen are committed records lost.
        lost += top + 1 - sorted.len() as u64;
        // Records after the highest one seen that the worker saw committed
        // (all of them for one that finished) are lost too.
        let n = finished
            .get(id)
            .copied()
            .unwrap_or_else(|| committed(&s, *id));
        lost += n.saturating_sub(top + 1);
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]) || duplicates > 0,
            "worker {id} out of order"
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&s.run(&["stat", "--shm", &s.shm, "--json"]).stdout).unwrap();
    eprintln!(
        "chaos (seed {seed}): {seconds} s, {records} records, {producer_kills} producer kills, {flusher_kills} flusher kills, {} abandoned, {duplicates} duplicates, {lost} lost",
        v["abandoned"]
    );
    assert_eq!(duplicates, 0);
    assert_eq!(lost, 0);
    assert!(killed.len() as u64 == producer_kills && flusher_kills > 0);
    // A killed worker that saw records committed appears in the log (the
    // loop above only sees the workers that do).
    for id in &killed {
        assert!(
            committed(&s, *id) == 0 || by_id.contains_key(id),
            "worker {id} committed {} records, none written",
            committed(&s, *id)
        );
    }
    let abandoned = v["abandoned"].as_u64().unwrap();
    assert!(
        abandoned <= producer_kills,
        "{abandoned} abandoned for {producer_kills} killed producers"
    );
    assert_eq!(v["corrupt"], 0);
    assert_eq!(v["late_commits"], 0);
}

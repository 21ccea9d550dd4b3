//! An idle flusher (`--exit-when-idle`) removes its segment on the way out,
//! and a producer that opens the segment at that moment keeps its records
//! (`ringflush_ring::closing`): the removal is decided under a flag the
//! producer reads after registering.

use std::process::Stdio;
use std::time::Duration;

use ringflush_producer::{level, Producer};
use ringflush_ring::{Segment, SegmentOptions};

use crate::common::*;

/// Whether the segment's closing flag is raised (its flusher is deciding
/// to remove it), as a producer that opened it would read it.
fn closing_raised(s: &Scratch) -> bool {
    Segment::open(&s.shm, &SegmentOptions::inspect())
        .map(|seg| ringflush_ring::closing::raised(seg.header()))
        .unwrap_or(false)
}

/// An idle flusher that pauses `ms` ms between raising its closing flag and
/// looking at the registry again; returned once the flag is raised.
fn closing_flusher(s: &Scratch, ms: u64) -> std::process::Child {
    let f = s
        .flusher_cmd(&["--exit-when-idle", "--format", "%(message)s"])
        .env("RINGFLUSH_FLUSHER_FAULT", format!("closing_pause:{ms}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || closing_raised(s)),
        "the flusher never began to close"
    );
    f
}

fn lines(s: &Scratch) -> Vec<String> {
    read(&s.path("app.log"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The flusher leaves; its segment goes with it. A flusher stopped by
/// SIGTERM (not idle) keeps it for the next start.
#[test]
fn an_idle_flusher_removes_its_segment_and_a_stopped_one_keeps_it() {
    let s = Scratch::new("cleanup-idle");
    let f = s.flusher_ready(&["--exit-when-idle", "--format", "%(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "t", "one").unwrap();
    drop(p);
    let (ok, err) = f.wait();
    assert!(ok, "{err}");
    assert!(!s.shm_file().exists(), "the segment stayed: {err}");
    assert_eq!(lines(&s), ["one"]);

    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(s.shm_file().exists(), "a stopped flusher keeps its segment");
}

/// A producer that maps the segment before its idle flusher decides, and
/// registers after the decision, finds the name gone and writes into the
/// segment the name leads to next: a flusher started on it writes every
/// record. Without the handshake they went into the removed segment.
#[test]
fn a_producer_opening_as_its_flusher_removes_the_segment_keeps_its_records() {
    let s = Scratch::new("cleanup-race");
    let f = closing_flusher(&s, 1500);
    // Maps the segment now, registers 3 s later: after the decision.
    let worker = s
        .worker_cmd(1, 50)
        .env("RINGFLUSH_FAULT", "pause_before_register:3000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let flusher_status = wait_child(f, Duration::from_secs(60));
    assert!(flusher_status.success());
    assert!(wait_child(worker, Duration::from_secs(60)).success());
    // The worker created a fresh segment under the name; drain it.
    assert!(
        s.shm_file().exists(),
        "the worker's records have no segment"
    );
    let f = s.flusher_ready(&["--exit-when-idle", "--format", "%(message)s"]);
    let (ok, err) = f.wait();
    assert!(ok, "{err}");
    let expected: Vec<String> = (0..50).map(|n| format!("worker=1 seq={n}")).collect();
    assert_eq!(lines(&s), expected);
    assert!(!s.shm_file().exists());
}

/// A producer that registers while its idle flusher is deciding is seen:
/// the flusher stays and writes its records, and leaves only after it.
#[test]
fn a_producer_registering_while_its_flusher_decides_keeps_the_flusher() {
    let s = Scratch::new("cleanup-stay");
    let f = closing_flusher(&s, 600);
    let p = Producer::open(&s.shm).unwrap();
    // `open` returned once the flusher decided (within its 1 s wait):
    // it saw us and stays.
    assert!(!closing_raised(&s));
    assert!(s.shm_file().exists());
    for n in 0..20 {
        p.log(level::INFO, "t", &format!("n={n}")).unwrap();
    }
    drop(p);
    let status = wait_child(f, Duration::from_secs(60));
    assert!(status.success());
    let expected: Vec<String> = (0..20).map(|n| format!("n={n}")).collect();
    assert_eq!(lines(&s), expected);
    assert!(!s.shm_file().exists());
}

//! A thread's lanes of each producer (producer/src/lanes.rs): one thread
//! logging through the producers of two segments, a producer dropped while
//! its threads live on, and a child forked from a thread that holds a lane.

use std::time::Duration;

use ringflush_producer::{level, Producer};

use crate::common::{read, wait_until, Scratch};
use crate::faults::stat;

/// The lanes that still have a writer or wait to be recycled.
fn lanes_taken(s: &Scratch) -> usize {
    stat(s)["lanes"]["taken"].as_array().map_or(0, Vec::len)
}

fn lines(s: &Scratch) -> Vec<String> {
    read(&s.path("app.log")).lines().map(String::from).collect()
}

/// Wait until the file holds `n` lines, stop the flusher, return them.
fn stopped_with(s: &Scratch, f: crate::common::Flusher, n: usize) -> Vec<String> {
    let arrived = wait_until(Duration::from_secs(30), || lines(s).len() >= n);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(arrived, "{} of {n} lines", lines(s).len());
    lines(s)
}

/// Each entry of the thread's lanes names its producer: records of one
/// producer never go into the lane the thread holds of another (another
/// segment's positions), and each file gets its own records in order.
#[test]
fn one_thread_logs_through_two_producers_each_into_its_own_lane() {
    let (a, b) = (Scratch::new("twoprod-a"), Scratch::new("twoprod-b"));
    let fa = a.flusher_ready(&["--format", "%(message)s"]);
    let fb = b.flusher_ready(&["--format", "%(message)s"]);
    let (pa, pb) = (
        Producer::open(&a.shm).unwrap(),
        Producer::open(&b.shm).unwrap(),
    );
    let (mut want_a, mut want_b) = (Vec::new(), Vec::new());
    for i in 0..3_000 {
        // Uneven, so that the two lanes' positions differ.
        want_a.push(format!("a {i}"));
        pa.log(level::INFO, "a", &want_a[want_a.len() - 1]).unwrap();
        for k in 0..1 + i % 3 {
            want_b.push(format!("b {i}.{k} {}", "b".repeat(i % 50)));
            pb.log(level::INFO, "b", &want_b[want_b.len() - 1]).unwrap();
        }
    }
    assert_eq!(stopped_with(&a, fa, want_a.len()), want_a);
    assert_eq!(stopped_with(&b, fb, want_b.len()), want_b);
}

/// A producer dropped while the thread that logged through it lives on
/// releases that thread's lane (the thread's exit cannot: the producer is
/// gone), even while another producer keeps the process registered.
#[test]
fn a_dropped_producer_gives_back_the_lanes_of_threads_that_live_on() {
    let s = Scratch::new("droplane");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let keeps_registered = Producer::open(&s.shm).unwrap();
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "t", "first").unwrap();
    assert!(wait_until(Duration::from_secs(10), || lanes_taken(&s) == 1));
    drop(p);
    let freed = wait_until(Duration::from_secs(10), || lanes_taken(&s) == 0);
    assert!(freed, "{}", stat(&s)["lanes"]);
    keeps_registered.log(level::INFO, "t", "second").unwrap();
    assert_eq!(stopped_with(&s, f, 2), ["first", "second"]);
}

/// A child forked from a thread that holds a lane (gunicorn `--preload`,
/// multiprocessing's fork) claims a lane of its own: its records carry
/// its pid, and neither process's records overwrite the other's.
#[test]
fn a_forked_child_writes_its_own_lane_not_its_parents() {
    let s = Scratch::new("forklane");
    let f = s.flusher_ready(&["--format", "%(process)d %(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    let log = |who: &str, i: u32| p.log(level::INFO, "t", &format!("{who} {i}")).is_ok();
    assert!((0..500).all(|i| log("parent", i)));
    // SAFETY: the child only formats, logs through the producer and leaves
    // with _exit (no atexit handlers, no unwinding into the test harness);
    // glibc's fork gives the child usable malloc locks.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let ok = (0..500).all(|i| log("child", i));
        // SAFETY: ends the forked child at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    assert!((500..1_000).all(|i| log("parent", i)));
    let mut status = 0;
    // SAFETY: `child` is our child; `status` is a valid out pointer.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status:#x}"
    );
    let got = stopped_with(&s, f, 1_500);
    let of = |pid: u32, who: &str| -> Vec<String> {
        let prefix = format!("{pid} {who} ");
        got.iter()
            .filter(|l| l.starts_with(&prefix))
            .cloned()
            .collect()
    };
    let want = |pid: u32, who: &str, n: u32| -> Vec<String> {
        (0..n).map(|i| format!("{pid} {who} {i}")).collect()
    };
    let parent = std::process::id();
    assert_eq!(of(parent, "parent"), want(parent, "parent", 1_000));
    assert_eq!(of(child as u32, "child"), want(child as u32, "child", 500));
    assert_eq!(got.len(), 1_500, "lines of neither: {got:?}");
}

//! Producers killed (SIGKILL) at every step of a write, and one stalled
//! (SIGSTOP) mid-record: the ring never stalls, the records they committed
//! are all written, the one in flight is abandoned and counted, and a late
//! commit is refused.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{read, wait_until, Scratch, MID_BATCH_RECORDS};

pub fn worker(s: &Scratch, id: u64, count: u64, fault: Option<&str>) -> Child {
    let mut cmd = s.worker_cmd(id, count);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(f) = fault {
        cmd.env("RINGFLUSH_FAULT", f);
    }
    cmd.spawn().unwrap()
}

/// Each worker's `seq=` numbers, in the order the log file has them.
pub fn seqs(s: &Scratch) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let text = read(&s.path("app.log"));
    // Only whole lines: a poll may read the file while a batch is written.
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for line in whole.lines() {
        let Some(rest) = line.strip_prefix("worker=") else {
            continue;
        };
        let (id, seq) = rest.split_once(" seq=").unwrap();
        let seq = seq.split(' ').next().unwrap();
        m.entry(id.parse().unwrap())
            .or_default()
            .push(seq.parse().unwrap());
    }
    m
}

pub fn stat(s: &Scratch) -> serde_json::Value {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Kill a producer at `point` of its 500th record; a second producer must
/// get all its records through, and the killed one's first 499 are kept.
fn killed_at(point: &str, unblock_timeout: &str) {
    let s = Scratch::new(point);
    // The shared ring's fault points (lanes.rs kills a writer in its lane).
    let f = s.flusher_ready(&[
        "--lanes",
        "0",
        "--unblock-timeout",
        unblock_timeout,
        "--format",
        "%(message)s",
    ]);
    let status = worker(&s, 0, 1000, Some(&format!("{point}:500")))
        .wait()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{point}: the fault fired"
    );
    let b = worker(&s, 1, 1000, None);
    assert!(crate::common::wait_child(b, Duration::from_secs(120)).success());
    assert!(
        wait_until(Duration::from_secs(25), || seqs(&s).get(&1).map(Vec::len)
            == Some(1000)),
        "{point}: the ring stalled behind the dead producer's record"
    );
    let report = "ringflush: 1 record abandoned (writer died or stalled before committing)";
    assert!(
        wait_until(Duration::from_secs(25), || read(&s.path("app.log"))
            .contains(report)),
        "{point}: the loss is reported in the log"
    );
    let v = stat(&s);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got = seqs(&s);
    assert_eq!(got[&0], (0..499).collect::<Vec<_>>(), "{point}");
    assert_eq!(got[&1], (0..1000).collect::<Vec<_>>(), "{point}");
    assert_eq!(v["abandoned"], 1, "{point}: {v}");
    assert!(err.contains("abandoned"), "{point}: {err}");
}

// A claimed header names its writer: with a 60 s unblock timeout, only the
// dead-writer check (pid and start time) can free the ring within the 25 s
// the test waits.
#[test]
fn killed_after_writing_the_header() {
    killed_at("after_header", "60");
}

#[test]
fn killed_in_the_middle_of_the_payload() {
    killed_at("mid_payload", "60");
}

#[test]
fn killed_before_the_commit() {
    killed_at("before_commit", "60");
}

// Killed between the CAS on tail and the header: nothing names the writer,
// so Agrona's rule applies after the unblock timeout: the zeroed gap is skipped.
#[test]
fn killed_after_reserving_space() {
    killed_at("after_reserve", "1");
}

#[test]
fn stalled_writer_is_abandoned_and_its_late_commit_refused() {
    let s = Scratch::new("stall");
    // The shared ring's abandonment (lanes.rs stalls a writer in its lane).
    let f = s.flusher_ready(&[
        "--lanes",
        "0",
        "--unblock-timeout",
        "1",
        "--format",
        "%(message)s",
    ]);
    let a = worker(&s, 0, 1000, Some("stop_before_commit:500"));
    let pid = a.id();
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| st.rsplit(')').next().unwrap().trim_start().starts_with('T'))
            .unwrap_or(false)
    };
    assert!(wait_until(Duration::from_secs(30), stopped));
    let b = worker(&s, 1, 1000, None);
    assert!(crate::common::wait_child(b, Duration::from_secs(120)).success());
    assert!(wait_until(Duration::from_secs(25), || seqs(&s)
        .get(&1)
        .map(Vec::len)
        == Some(1000)));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let out = a.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the stalled record was reported as not logged"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 1000 records were not logged"));
    assert!(wait_until(Duration::from_secs(25), || seqs(&s)
        .get(&0)
        .map(Vec::len)
        == Some(999)));
    let report = "ringflush: 1 late commit refused (record already abandoned)";
    assert!(
        wait_until(Duration::from_secs(25), || read(&s.path("app.log"))
            .contains(report)),
        "the refused commit is reported in the log"
    );
    let v = stat(&s);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got = seqs(&s);
    let expect: Vec<u64> = (0..1000).filter(|&i| i != 499).collect();
    assert_eq!(got[&0], expect);
    assert_eq!(v["abandoned"], 1, "{v}");
    assert_eq!(v["late_commits"], 1, "{v}");
}

/// The flusher killed after writing a batch but before releasing it, or
/// half way through writing it: the next flusher neither loses nor repeats
/// a record.
pub fn flusher_killed(fault: &str, expect: &str, lanes: u64) {
    let s = Scratch::new(&fault.replace(':', "-"));
    crate::common::kill_flusher_mid_batch(&s, fault, lanes);
    let second = s.flusher(&["--format", "%(message)s"]);
    assert!(wait_until(Duration::from_secs(30), || seqs(&s)
        .get(&0)
        .map(Vec::len)
        >= Some(MID_BATCH_RECORDS as usize)));
    let (ok, err) = second.stop();
    assert!(ok, "{err}");
    assert!(err.contains(expect), "{err}");
    assert_eq!(seqs(&s)[&0], (0..MID_BATCH_RECORDS).collect::<Vec<_>>());
}

#[test]
fn flusher_killed_between_write_and_release() {
    flusher_killed("after_write:2", "not writing it again", 0);
}

#[test]
fn flusher_killed_in_the_middle_of_a_write() {
    flusher_killed("mid_write:2", "removed its", 0);
}

/// The flusher killed between writing a batch and releasing it, and the
/// log file moved away before the next one starts (logrotate ran in
/// between): the batch cannot be matched to the file, so it is written
/// again, and the next flusher says that it may appear twice. Nothing is
/// lost, and only that batch is repeated.
#[test]
fn recovery_says_so_when_the_file_changed_between_crash_and_restart() {
    let s = Scratch::new("changed");
    crate::common::kill_flusher_mid_batch(&s, "after_write:2", 0);
    std::fs::rename(s.path("app.log"), s.path("app.log.moved")).unwrap();
    let second = s.flusher(&["--format", "%(message)s"]);
    assert!(wait_until(Duration::from_secs(30), || stat(&s)["used"] == 0));
    let (ok, err) = second.stop();
    assert!(ok, "{err}");
    let said = "has changed since; its last batch may appear twice";
    assert!(err.contains(said), "{err}");
    let moved = read(&s.path("app.log.moved"));
    let live = read(&s.path("app.log"));
    assert!(live.contains(said), "and in the log: {live}");
    let seq = |l: &str| -> u64 { l.split(' ').nth(1).unwrap()[4..].parse().unwrap() };
    let records = |text: &str| -> Vec<u64> {
        text.lines()
            .filter(|l| l.starts_with("worker="))
            .map(seq)
            .collect()
    };
    let (moved, live) = (records(&moved), records(&live));
    // The moved file ends with the second batch; the live file starts with
    // that batch again and then has everything after it, in order.
    let again = moved.iter().filter(|s| live.contains(s)).count();
    assert!(again > 0, "the unmatched batch was written again");
    assert_eq!(moved[..], (0..moved.len() as u64).collect::<Vec<_>>()[..]);
    let first_live = live[0] as usize;
    assert_eq!(
        first_live,
        moved.len() - again,
        "only the last batch repeats"
    );
    assert_eq!(
        live,
        (first_live as u64..MID_BATCH_RECORDS).collect::<Vec<_>>()
    );
}

/// A disk that fails writes with EIO for a while (injected): the records
/// wait in the ring, the error is reported once per interval and in `stat`,
/// and everything is written once the disk works again.
#[test]
fn failing_writes_are_retried_until_the_disk_works() {
    let s = Scratch::new("eio");
    let producer = ringflush_producer::Producer::open(&s.shm).unwrap();
    for i in 0..5000 {
        producer.log(20, "n", &format!("worker=0 seq={i}")).unwrap();
    }
    // ~12 failures with backoff 1, 2, 4 ... capped at 1 s: a few seconds.
    let mut f = s
        .flusher_cmd(&["--format", "%(message)s"])
        .env("RINGFLUSH_FLUSHER_FAULT", "eio:12")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || stat(&s)["flusher"]
        ["write_errno"]
        == libc::EIO));
    assert!(
        stat(&s)["used"].as_u64().unwrap() > 0,
        "records wait in the ring"
    );
    assert!(wait_until(Duration::from_secs(60), || seqs(&s)
        .get(&0)
        .map(Vec::len)
        == Some(5000)));
    assert_eq!(stat(&s)["flusher"]["write_errno"], 0);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(f.id() as i32, libc::SIGTERM) };
    assert!(f.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut f.stderr.take().unwrap(), &mut err).unwrap();
    let reports = err.matches("Input/output error").count();
    assert!(
        (1..12).contains(&reports),
        "reported once per interval, not per attempt: {err}"
    );
    assert!(err.contains("works again"), "{err}");
    assert_eq!(seqs(&s)[&0], (0..5000).collect::<Vec<_>>());
}

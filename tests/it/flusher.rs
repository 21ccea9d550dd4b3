//! Flusher behaviour with the real binary: format, drops reported, stat,
//! signals, producers before the flusher.

use std::time::Duration;

use crate::common::{read, wait_until, Scratch};
use ringflush_producer::{level, FullPolicy, Producer, Record};

#[test]
fn producers_before_the_flusher_then_drops_are_reported_in_the_log() {
    let s = Scratch::new("drops");
    let p = Producer::builder(&s.shm)
        .capacity(1 << 16)
        .full_policy(FullPolicy::Drop)
        .open()
        .unwrap();
    let mut ok = 0;
    let mut dropped = 0;
    for i in 0..2000 {
        match p.log(
            level::INFO,
            "early",
            &format!("record {i} {}", "x".repeat(60)),
        ) {
            Ok(()) => ok += 1,
            Err(_) => dropped += 1,
        }
    }
    assert!(
        ok > 100 && dropped > 100,
        "ring filled: {ok} ok, {dropped} dropped"
    );
    let f = s.flusher(&["--format", "%(levelname)s %(name)s %(message)s"]);
    assert!(wait_until(Duration::from_secs(20), || {
        read(&s.path("app.log")).contains(&format!("{dropped} records dropped by producers"))
    }));
    let (success, stderr) = f.stop();
    assert!(success, "{stderr}");
    let log = read(&s.path("app.log"));
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("INFO early record"))
            .count(),
        ok
    );
    let stat = s.run(&["stat", "--shm", &s.shm]);
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(text.contains(&format!("dropped       {dropped}")), "{text}");
    assert!(text.contains("not running (exited or died)"), "{text}");
}

#[test]
fn every_field_formatted_and_invalid_utf8_replaced() {
    let s = Scratch::new("fields");
    let f = s.flusher(&[
        "--format",
        "%(levelname)s|%(levelno)d|%(name)s|%(threadName)s|%(filename)s|%(lineno)d|%(funcName)s|%(module)s|%(process)d|%(message)s",
    ]);
    let p = Producer::open(&s.shm).unwrap();
    p.write(&Record {
        level: level::ERROR,
        line: 42,
        thread_name: b"t1",
        logger: b"app.db",
        pathname: b"/srv/app/db.py",
        func: b"query",
        message: b"bad \xff byte",
        ..Record::default()
    })
    .unwrap();
    let expect = format!(
        "ERROR|40|app.db|t1|db.py|42|query|db|{}|bad \u{fffd} byte\n",
        std::process::id()
    );
    assert!(
        wait_until(Duration::from_secs(20), || read(&s.path("app.log"))
            == expect),
        "{}",
        read(&s.path("app.log"))
    );
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
}

#[test]
fn truncated_records_carry_a_marker_and_are_counted_and_reported() {
    let s = Scratch::new("trunc");
    // Let the flusher create its small ring (a producer would create 8 MiB).
    let f = s.flusher_ready(&["--size", "64K", "--format", "%(message)s"]);
    let p = Producer::builder(&s.shm).create(false).open().unwrap();
    let big = "y".repeat(100_000);
    p.log(level::INFO, "big", &big).unwrap();
    let report = "ringflush: 1 record truncated to the maximum record size";
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .contains(report)));
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
    assert!(e.contains(report), "{e}");
    assert!(e.contains("(64 KiB ring)"), "{e}");
    let stat = s.run(&["stat", "--shm", &s.shm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&stat.stdout).unwrap();
    assert_eq!(v["truncated"], 1);
    let log = read(&s.path("app.log"));
    // The loss report may come before the record or after it.
    let line = log.lines().find(|l| !l.starts_with("ringflush:")).unwrap();
    let (kept, marker) = line.split_once("…[truncated ").expect("a marker");
    let cut: usize = marker
        .strip_suffix(" bytes]")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("marker {marker:?}"));
    // The marker counts exactly the bytes cut, and the record fits the
    // ring's maximum record size (16 KiB for a 64 KiB ring).
    assert!(kept.bytes().all(|b| b == b'y'));
    assert_eq!(kept.len() + cut, big.len());
    assert!(line.len() < 16_384, "{}", line.len());
}

#[test]
fn json_lines_and_sighup_reopens() {
    let s = Scratch::new("json");
    let f = s.flusher(&["--format", "json"]);
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::WARNING, "app", "first\nline").unwrap();
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .contains("first")));
    std::fs::rename(s.path("app.log"), s.path("app.log.moved")).unwrap();
    f.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(20), || s
        .path("app.log")
        .exists()));
    p.log(level::WARNING, "app", "second").unwrap();
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
    // Reopened because of the signal (the once-a-second check for a moved
    // file would also have reopened it, and says so differently).
    assert!(e.contains("reopened app.log (SIGHUP)"), "{e}");
    let v: serde_json::Value = serde_json::from_str(read(&s.path("app.log.moved")).trim()).unwrap();
    assert_eq!(v["message"], "first\nline");
    assert_eq!(v["levelname"], "WARNING");
    assert!(read(&s.path("app.log")).contains("\"second\""));
}

#[test]
fn sigterm_drains_everything_committed() {
    let s = Scratch::new("drain");
    let f = s.flusher_ready(&[]);
    // Stopped, the flusher cannot have drained anything of what follows when
    // it learns of the SIGTERM: it must drain it all before exiting.
    f.signal(libc::SIGSTOP);
    let p = Producer::open(&s.shm).unwrap();
    // Within what one writer's lane holds (two thirds of the 8 MiB).
    for i in 0..30_000 {
        p.log(level::INFO, "n", &format!("worker=0 seq={i}"))
            .unwrap();
    }
    f.signal(libc::SIGTERM);
    f.signal(libc::SIGCONT);
    let (ok, e) = f.wait();
    assert!(ok, "{e}");
    let files = ringflush::verify::log_files(&s.path("app.log")).unwrap();
    let t = ringflush::verify::check(&files, &[(0, 30_000)].into()).unwrap();
    assert!(t.ok() && t.records == 30_000, "{t:?}");
    assert!(e.contains("stopped after writing 30000 records"), "{e}");
}

#[test]
fn default_file_name_and_stat_of_a_live_flusher() {
    let s = Scratch::new("defaults");
    let name = s.shm.trim_start_matches('/').to_string();
    let mut child = s
        .cmd()
        .args(["--shm", &s.shm])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "x", "hello").unwrap();
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path(&format!("{name}.log"))
    )
    .contains("hello")));
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flusher"]["alive"], true);
    assert_eq!(v["flusher"]["pid"], child.id());
    assert_eq!(v["written"], 1);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
}

/// Records stamped with the TSC (the default where the clocksource is tsc)
/// and with clock_gettime (RINGFLUSH_NO_TSC=1) both get the right wall time.
#[test]
fn timestamps_are_wall_time_with_and_without_tsc() {
    if !ringflush_ring::tsc::tsc_usable() {
        let why = "the TSC is not this machine's clocksource: both records use clock_gettime";
        crate::common::not_run("timestamps_are_wall_time_with_and_without_tsc", why, false);
    }
    let s = Scratch::new("clock");
    let f = s.flusher_ready(&["--format", "%(created)f %(message)s"]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (tag, no_tsc) in [("tsc", false), ("clock", true)] {
        let mut cmd = s.cmd();
        cmd.args(["pipe", "--shm", &s.shm])
            .stdin(std::process::Stdio::piped());
        if no_tsc {
            cmd.env("RINGFLUSH_NO_TSC", "1");
        }
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{tag}\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .lines()
    .count()
        == 2));
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
    for line in read(&s.path("app.log")).lines() {
        let created: f64 = line.split(' ').next().unwrap().parse().unwrap();
        // 5 ms of slack: the clock and the calibrated TSC are read separately.
        assert!(
            created >= before - 0.005 && created <= after + 0.005,
            "{line}: not in [{before}, {after}]"
        );
    }
}

#[test]
fn bench_subcommand_reports_throughput_and_latency_without_drops() {
    let s = Scratch::new("benchcmd");
    let out = s.run(&["bench", "--producers", "2", "--seconds", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("records/s") && text.contains("dropped: 0"),
        "{text}"
    );
    assert!(text.contains("| 1 |"), "a latency row per producer: {text}");
}

/// With no flusher running, a full ring must not make every blocking log
/// call wait out its timeout (that would stall the application): records
/// are dropped at once and counted, and reported once a flusher starts.
#[test]
fn blocking_producers_do_not_stall_without_a_flusher() {
    let s = Scratch::new("noflusher");
    let shm = s.shm.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let p = Producer::builder(&shm).capacity(1 << 16).open().unwrap();
        let failed = (0..3000)
            .filter(|i| p.log(level::INFO, "x", &format!("{i:0>100}")).is_err())
            .count();
        tx.send(failed).unwrap();
    });
    // A bound on a hang (3000 blocked calls would take 45 minutes).
    let failed = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("producers stalled");
    assert!(failed > 2000, "{failed}");
    let f = s.flusher_ready(&[]);
    assert!(wait_until(Duration::from_secs(20), || {
        read(&s.path("app.log")).contains(&format!("{failed} records dropped by producers"))
    }));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
}

/// A record header clobbered in the ring (a buggy or hostile writer): the
/// flusher skips to the next valid record, counts the region as corrupt and
/// says so on stderr and in the log.
#[test]
fn a_corrupt_record_is_skipped_counted_and_reported() {
    use ringflush_ring::frame::{encode_word0, State};
    use ringflush_ring::{Region, Segment, SegmentOptions};
    let s = Scratch::new("corrupt");
    // A record of the shared ring is corrupted here (lanes.rs damages a lane).
    let p = Producer::builder(&s.shm).lanes(0).open().unwrap();
    let seg = Segment::open(&s.shm, &SegmentOptions::default()).unwrap();
    let tail = || {
        seg.header()
            .tail
            .0
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    p.log(level::INFO, "n", "first").unwrap();
    let second = tail();
    p.log(level::INFO, "n", "second").unwrap();
    p.log(level::INFO, "n", "third").unwrap();
    // A committed header with a length far beyond the maximum record.
    let offset = (second & (seg.capacity() - 1)) as usize;
    let bogus = encode_word0(second, 1 << 29, State::Committed);
    let ring = seg.ring();
    ring.region()
        .word(offset)
        .store(bogus, std::sync::atomic::Ordering::Release);
    let f = s.flusher(&["--format", "%(message)s"]);
    let report = "ringflush: 1 corrupt ring region skipped";
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .contains(report)));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "corrupt record at position {second} (invalid length); skipped"
        )),
        "{err}"
    );
    assert_eq!(
        read(&s.path("app.log")),
        format!("first\nthird\n{report}\n")
    );
    let stat = s.run(&["stat", "--shm", &s.shm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&stat.stdout).unwrap();
    assert_eq!(v["corrupt"], 1);
}

/// The log file deleted under a running flusher (an operator, a cleaner):
/// within a second it notices that the path no longer leads to its file and
/// opens a new one, so later records are not written into a deleted inode.
#[test]
fn a_deleted_log_file_is_created_again() {
    let s = Scratch::new("deleted");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "n", "before").unwrap();
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    ) == "before\n"));
    std::fs::remove_file(s.path("app.log")).unwrap();
    assert!(wait_until(Duration::from_secs(20), || s
        .path("app.log")
        .exists()));
    p.log(level::INFO, "n", "after").unwrap();
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert_eq!(read(&s.path("app.log")), "after\n");
}

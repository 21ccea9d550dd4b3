//! Rotation with the real binary and real time: timed, size, combined,
//! compression, and a file moved away mid-run.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{wait_child, Scratch};
use ringflush::verify;

const LIMIT: Duration = Duration::from_secs(300);

fn workers(s: &Scratch, n: u64, args: &[&str]) -> BTreeMap<u64, u64> {
    let children: Vec<_> = (0..n)
        .map(|id| {
            s.cmd()
                .args(["worker", "--shm", &s.shm, "--id", &id.to_string()])
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(id, c)| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            (
                id as u64,
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
            )
        })
        .collect()
}

fn file_names(s: &Scratch) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.log"))
        .collect();
    v.sort();
    v
}

/// 8 producers, a rollover every second, 3 backups kept: the kept files hold
/// each producer's newest records exactly once, every record in the file of
/// the second it was stamped in.
#[test]
fn every_second_with_three_backups() {
    let s = Scratch::new("timed");
    let f = s.flusher_ready(&[
        "--when",
        "S",
        "--backup-count",
        "3",
        "--format",
        "%(created)f %(message)s",
    ]);
    let counts = workers(&s, 8, &["--seconds", "4.5", "--pause-us", "200"]);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");

    let names = file_names(&s);
    let backups: Vec<&String> = names.iter().filter(|n| *n != "app.log").collect();
    assert!((1..=3).contains(&backups.len()), "{names:?}");
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    // Oldest first: the dated backups by name, then the live file.
    let ordered = backups.iter().map(|n| n.as_str()).chain(["app.log"]);
    for name in ordered {
        let text = crate::common::read(&s.path(name));
        let second = if name == "app.log" {
            None
        } else {
            let suffix = name.strip_prefix("app.log.").unwrap();
            assert!(
                suffix.len() == 19 && suffix.as_bytes()[10] == b'_',
                "CPython's S suffix: {name}"
            );
            let t = chrono::NaiveDateTime::parse_from_str(suffix, "%Y-%m-%d_%H-%M-%S").unwrap();
            Some(t.and_local_timezone(chrono::Local).unwrap().timestamp() as f64)
        };
        for line in text.lines() {
            let (created, msg) = line.split_once(' ').unwrap();
            let created: f64 = created.parse().unwrap();
            if let Some(start) = second {
                // A record stamped in the last instant before a rollover may
                // be claimed after one stamped just after it (its writer can
                // be preempted in between on a loaded machine). `%(created)f`
                // rounds to microseconds: a record stamped less than half a
                // microsecond before the rollover prints as the next second.
                assert!(
                    created >= start - 0.5 && created <= start + 1.0,
                    "{line} in {name}"
                );
            }
            let id: u64 = msg.split(['=', ' ']).nth(1).unwrap().parse().unwrap();
            let seq: u64 = msg.rsplit('=').next().unwrap().parse().unwrap();
            seen.entry(id).or_default().push(seq);
        }
    }
    for (id, seqs) in seen {
        // Oldest files were deleted: what is left is a contiguous run ending
        // with the producer's last record, in order, without duplicates.
        let last = counts[&id] - 1;
        let first = last + 1 - seqs.len() as u64;
        let contiguous = seqs.iter().copied().eq(first..=last);
        assert!(
            contiguous,
            "worker {id}: {} records, first {:?}, last {:?}",
            seqs.len(),
            seqs.first(),
            seqs.last()
        );
    }
}

fn pipe_lines(s: &Scratch, n: u64) {
    let mut child = s
        .cmd()
        .args(["pipe", "--shm", &s.shm])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text: String = (0..n)
        .map(|i| format!("worker=0 seq={i} {}\n", "p".repeat(80)))
        .collect();
    std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap();
    drop(stdin);
    assert!(wait_child(child, LIMIT).success());
}

fn all_once_in_order(s: &Scratch, n: u64) -> verify::Tally {
    let files = verify::log_files(&s.path("app.log")).unwrap();
    let t = verify::check(&files, &[(0, n)].into()).unwrap();
    assert!(t.ok() && t.records == n, "{t:?}");
    t
}

#[test]
fn size_rotation_numbered_and_gzipped() {
    let s = Scratch::new("size");
    let f = s.flusher_ready(&[
        "--max-bytes",
        "64K",
        "--compress",
        "gzip",
        "--format",
        "%(message)s",
    ]);
    pipe_lines(&s, 5000);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    // The newest backup stays plain for a shipper (--compress-delay 1).
    let names = file_names(&s);
    assert!(
        names.contains(&"app.log.1".to_string())
            && names.contains(&"app.log.2.gz".to_string())
            && names.contains(&"app.log.5.gz".to_string())
            && !names.contains(&"app.log.1.gz".to_string()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".tmp") || n.contains("rotating")),
        "{names:?}"
    );
    let t = all_once_in_order(&s, 5000);
    for (path, _) in &t.files {
        let mut plain = Vec::new();
        let raw = std::fs::read(path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut plain)
                .unwrap();
        } else {
            plain = raw;
        }
        assert!(
            plain.len() < 64 * 1024,
            "{} has {} bytes",
            path.display(),
            plain.len()
        );
    }
}

#[test]
fn size_rotation_keeps_backup_count() {
    let s = Scratch::new("sizekeep");
    let f = s.flusher_ready(&["--max-bytes", "16K", "--backup-count", "2"]);
    pipe_lines(&s, 3000);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert_eq!(file_names(&s), ["app.log", "app.log.1", "app.log.2"]);
}

#[test]
fn size_rolls_within_a_timed_period_get_indices() {
    let s = Scratch::new("combined");
    let f = s.flusher_ready(&[
        "--when",
        "H",
        "--max-bytes",
        "32K",
        "--format",
        "%(message)s",
    ]);
    pipe_lines(&s, 2000);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    // Every size roll of the period is numbered from 1, never the bare
    // dated name: app.log.<%Y-%m-%d_%H>.1, .2, ...
    let names = file_names(&s);
    let mut rotated: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("app.log."))
        .collect();
    rotated.sort_by_key(|r| (r.len(), *r));
    assert!(rotated.len() >= 2, "{names:?}");
    let period = &rotated[0][.."2024-03-06_10".len()];
    let expected: Vec<String> = (1..=rotated.len())
        .map(|i| format!("{period}.{i}"))
        .collect();
    assert_eq!(rotated, expected, "{names:?}");
    all_once_in_order(&s, 2000);
}

#[test]
fn file_moved_away_mid_run_loses_nothing() {
    let s = Scratch::new("moved");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let writer = s
        .cmd()
        .args([
            "worker",
            "--shm",
            &s.shm,
            "--id",
            "0",
            "--count",
            "20000",
            "--pause-us",
            "100",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(crate::common::wait_until(
        Duration::from_secs(60),
        || crate::common::read(&s.path("app.log")).lines().count() > 2000
    ));
    std::fs::rename(s.path("app.log"), s.path("moved.log")).unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(out.status.success());
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let files = vec![s.path("moved.log"), s.path("app.log")];
    let t = verify::check(&files, &[(0, 20000)].into()).unwrap();
    assert!(t.ok() && t.records == 20000, "{t:?}");
    assert!(
        t.files.iter().all(|(_, n)| *n > 0),
        "both files hold records: {t:?}"
    );
}

/// A record belongs to the file of the period its timestamp falls in, not
/// the period of the moment the flusher happens to write it: records stamped
/// either side of the rollover go either side of the rotation, whatever the
/// flusher's clock says.
#[test]
fn a_record_goes_into_the_file_of_its_timestamps_period() {
    use ringflush_producer::{level, Producer, Record};
    let s = Scratch::new("period");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A file last written half an hour ago: with `--when H` its rollover is
    // an hour after that (CPython schedules from the mtime), half an hour
    // from now by the flusher's clock.
    let last_written = now - 1800;
    std::fs::write(s.path("app.log"), "old\n").unwrap();
    std::fs::File::options()
        .append(true)
        .open(s.path("app.log"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(last_written))
        .unwrap();
    let rollover = last_written + 3600;
    let f = s.flusher_ready(&["--when", "H", "--utc", "--format", "%(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    for (message, at) in [("before", rollover - 1), ("after", rollover + 1)] {
        let record = Record {
            level: level::INFO,
            message: message.as_bytes(),
            ..Record::default()
        };
        p.write_at(&record, at * 1_000_000_000).unwrap();
    }
    assert!(crate::common::wait_until(Duration::from_secs(30), || {
        crate::common::read(&s.path("app.log")).contains("after")
    }));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let period = chrono::DateTime::from_timestamp(last_written as i64, 0)
        .unwrap()
        .format("%Y-%m-%d_%H");
    assert_eq!(
        file_names(&s),
        ["app.log".to_string(), format!("app.log.{period}")]
    );
    assert_eq!(
        crate::common::read(&s.path(&format!("app.log.{period}"))),
        "old\nbefore\n"
    );
    assert_eq!(crate::common::read(&s.path("app.log")), "after\n");
}

/// A record stamped an hour ahead (a stepped clock, Python's
/// `makeLogRecord(created=...)`) on a file that rolls every 2 s: it is
/// written at once into the open file, the records after it too, and the
/// flusher stops when asked. Rolling for it would loop: the next rollover
/// counts from the flusher's clock, so the record would be due again at
/// once, and the flusher would roll on and on (spinning, deaf to SIGTERM)
/// without writing anything for an hour.
#[test]
fn a_record_stamped_far_ahead_is_written_at_once_and_rolls_nothing_by_itself() {
    use ringflush_producer::{level, Producer, Record};
    let s = Scratch::new("far-ahead");
    let f = s.flusher_ready(&["--when", "S", "--interval", "2", "--format", "%(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    let now_ns = ringflush_ring::now_ns();
    let ahead = Record {
        level: level::INFO,
        message: b"an hour ahead",
        ..Record::default()
    };
    p.write_at(&ahead, now_ns + 3600 * 1_000_000_000).unwrap();
    for i in 0..20 {
        p.log(level::INFO, "t", &format!("now {i}")).unwrap();
    }
    let all_there = || {
        let text: String = file_names(&s)
            .iter()
            .map(|n| crate::common::read(&s.path(n)))
            .collect();
        text.contains("an hour ahead") && text.contains("now 19")
    };
    assert!(
        crate::common::wait_until(Duration::from_secs(10), all_there),
        "{:?}",
        file_names(&s)
    );
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
}

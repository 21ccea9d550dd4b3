//! Flusher options and guarantees with the real binary and real processes:
//! `--interval`, `--post-rotate`, `--file-mode`, `--utc`/`--at-time`,
//! `--datefmt`, `--mode`, `--compress gzip` with timed rotation, work a
//! crashed flusher left half done, records without a file name, and a full
//! /dev/shm at segment creation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{read, wait_until, Scratch, BIN};
use ringflush::verify;
use ringflush_producer::{level, Producer, Record};

/// A bound on a hang, never a performance assertion.
const LIMIT: Duration = Duration::from_secs(120);

/// A flusher started from a command of our own (to set its environment or
/// umask), its stderr collected as it comes; killed on drop.
struct Running {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Start `cmd` (a flusher command line for `s`) and wait until `stat`
    /// shows it alive, so that producers use its segment.
    fn ready(s: &Scratch, mut cmd: Command) -> Self {
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start flusher");
        let pid = child.id();
        let pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let running = Running {
            child: Some(child),
            stderr,
            reader: Some(reader),
        };
        let alive = wait_until(Duration::from_secs(30), || {
            let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
            out.status.success()
                && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    .map(|v| v["flusher"]["pid"] == pid)
                    .unwrap_or(false)
        });
        if !alive {
            let (status, err) = running.stop();
            panic!("flusher did not start ({status}): {err}");
        }
        running
    }

    /// Whether the flusher has exited (it never should before SIGTERM).
    fn exited(&mut self) -> bool {
        let child = self.child.as_mut().unwrap();
        child.try_wait().unwrap().is_some()
    }

    /// What the flusher has printed on stderr so far.
    fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then wait; the exit status and the whole stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        // Never signal a pid that was already reaped (it may be reused).
        if child.try_wait().unwrap().is_none() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let status = crate::common::wait_child(child, LIMIT);
        self.reader.take().unwrap().join().unwrap();
        (status, self.stderr_so_far())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The flusher command for `app.log` with `extra` and `TZ=tz`.
fn flusher_in_zone(s: &Scratch, extra: &[&str], tz: &str) -> Command {
    let mut c = s.flusher_cmd(extra);
    c.env("TZ", tz);
    c
}

/// Stop and insist on a clean exit (code 0).
fn stop_ok(f: Running) -> String {
    let (status, err) = f.stop();
    assert_eq!(status.code(), Some(0), "{err}");
    err
}

/// The flusher's own segment, opened without creating one.
fn producer(s: &Scratch) -> Producer {
    Producer::builder(&s.shm).create(false).open().unwrap()
}

/// `app.log` and its siblings, sorted.
fn names(s: &Scratch) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.log"))
        .collect();
    v.sort();
    v
}

/// The rotated siblings of `app.log`, sorted (oldest first for dated names).
fn rotated(s: &Scratch) -> Vec<String> {
    names(s).into_iter().filter(|n| n != "app.log").collect()
}

/// Write `worker=0 seq=N` records from `first` on, a few ms apart, until
/// `done` holds (checked every 20 records). Returns how many were written
/// in total (the next seq).
fn write_until(p: &Producer, first: u64, mut done: impl FnMut() -> bool) -> u64 {
    let end = Instant::now() + LIMIT;
    let mut seq = first;
    loop {
        p.log(level::INFO, "w", &format!("worker=0 seq={seq}"))
            .unwrap();
        seq += 1;
        if seq % 20 == 0 && done() {
            return seq;
        }
        assert!(
            Instant::now() < end,
            "condition not reached within {LIMIT:?} ({seq} records)"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every one of the `n` records of worker 0 is in `app.log` and its
/// rotated siblings (decompressed), exactly once and in order.
fn all_once(s: &Scratch, n: u64) -> verify::Tally {
    let files = verify::log_files(&s.path("app.log")).unwrap();
    let t = verify::check(&files, &BTreeMap::from([(0, n)])).unwrap();
    assert!(t.ok() && t.records == n && t.other_lines == 0, "{t:?}");
    t
}

/// The unix second a CPython `S` suffix (`%Y-%m-%d_%H-%M-%S`) names, read
/// as UTC.
fn second_suffix_utc(name: &str, prefix: &str) -> i64 {
    let suffix = name
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name} does not start with {prefix}"));
    assert_eq!(suffix.len(), 19, "CPython's S suffix: {name}");
    chrono::NaiveDateTime::parse_from_str(suffix, "%Y-%m-%d_%H-%M-%S")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .and_utc()
        .timestamp()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Permission bits in octal, e.g. `"640"`.
fn mode_of(p: &Path) -> String {
    let meta = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    format!("{:o}", meta.permissions().mode() & 0o7777)
}

fn gunzip(p: &Path) -> String {
    let raw = std::fs::read(p).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text
}

// 1. --interval with --when S.

/// `--when S --interval 2`: each rotated file is named for the start of its
/// two-second period, so consecutive names are two seconds apart or more
/// (never one), and every record is in exactly one file.
#[test]
fn interval_two_seconds_spaces_rotated_names() {
    let s = Scratch::new("interval");
    let f = Running::ready(
        &s,
        flusher_in_zone(
            &s,
            &["--when", "S", "--interval", "2", "--format", "%(message)s"],
            "UTC",
        ),
    );
    let p = producer(&s);
    let n = write_until(&p, 0, || rotated(&s).len() >= 4);
    stop_ok(f);
    let rot = rotated(&s);
    let secs: Vec<i64> = rot
        .iter()
        .map(|n| second_suffix_utc(n, "app.log."))
        .collect();
    for (w, pair) in secs.windows(2).zip(rot.windows(2)) {
        assert!(
            w[1] - w[0] >= 2,
            "rotated names less than --interval 2 apart: {pair:?} in {rot:?}"
        );
    }
    all_once(&s, n);
}

/// `--when S --utc` in New York: rotated names are UTC times (the wall
/// clock, read as UTC, while the test ran), not New York's, which are
/// 4 or 5 hours off.
#[test]
fn utc_names_rotated_files_in_utc() {
    let s = Scratch::new("utcnames");
    let before = unix_now();
    let f = Running::ready(
        &s,
        flusher_in_zone(
            &s,
            &["--when", "S", "--utc", "--format", "%(message)s"],
            "America/New_York",
        ),
    );
    let p = producer(&s);
    let n = write_until(&p, 0, || rotated(&s).len() >= 2);
    stop_ok(f);
    let after = unix_now();
    for name in rotated(&s) {
        let t = second_suffix_utc(&name, "app.log.");
        assert!(
            (before - 1..=after).contains(&t),
            "{name} is not a UTC time in [{before}, {after}]"
        );
    }
    all_once(&s, n);
}

// 2. --post-rotate.

/// The command runs after each rotation with the rotated file as `$1`:
/// the marker it appends to names every rotated file once, in order.
#[test]
fn post_rotate_runs_once_per_rotated_file_with_its_name() {
    let s = Scratch::new("postrot");
    let marker = s.path("post-rotate.txt");
    let cmd = format!("printf '%s\\n' \"$1\" >> '{}'", marker.display());
    let f = Running::ready(
        &s,
        s.flusher_cmd(&[
            "--when",
            "S",
            "--format",
            "%(message)s",
            "--post-rotate",
            &cmd,
        ]),
    );
    let p = producer(&s);
    let n = write_until(&p, 0, || rotated(&s).len() >= 3);
    // Stopping waits for the commands of every rotation so far.
    let err = stop_ok(f);
    let rot = rotated(&s);
    let ran: Vec<String> = read(&marker).lines().map(str::to_string).collect();
    assert_eq!(ran, rot, "{err}");
    assert!(!err.contains("post-rotate"), "{err}");
    all_once(&s, n);
}

/// A failing command and one that does not exist: each rotation's failure
/// is reported on stderr with the rotated file's name; after a reported
/// failure the flusher goes on writing and rotating, loses nothing and
/// exits 0 on SIGTERM.
#[test]
fn post_rotate_failures_are_reported_and_not_fatal() {
    for (tag, cmd, code) in [
        ("postfail", "exit 3", 3),
        ("postmissing", "ringflush-no-such-command-here", 127),
    ] {
        let s = Scratch::new(tag);
        let mut f = Running::ready(
            &s,
            s.flusher_cmd(&[
                "--when",
                "S",
                "--format",
                "%(message)s",
                "--post-rotate",
                cmd,
            ]),
        );
        let p = producer(&s);
        let reported = format!("ringflush: --post-rotate {cmd:?} for ");
        let n = write_until(&p, 0, || {
            f.exited() || f.stderr_so_far().contains(&reported)
        });
        // After the first failure: more records, and two more rotations.
        let rotations = rotated(&s).len();
        let n = write_until(&p, n, || f.exited() || rotated(&s).len() >= rotations + 2);
        assert!(!f.exited(), "the flusher died: {}", f.stderr_so_far());
        let err = stop_ok(f);
        let rot = rotated(&s);
        for name in &rot {
            let line = format!("{reported}{name} failed: exit status: {code}\n");
            assert_eq!(err.matches(&line).count(), 1, "{line} in:\n{err}");
        }
        assert_eq!(
            err.matches("ringflush: --post-rotate").count(),
            rot.len(),
            "one report per rotation: {rot:?}\n{err}"
        );
        all_once(&s, n);
    }
}

// 3. --file-mode.

/// Run a flusher with `--file-mode mode` under `umask`, rotating by size
/// twice; the modes of the file created at start, of the new file after the
/// rotations and of the rotated files, in octal.
fn file_modes(mode: &str, umask: libc::mode_t) -> (String, String, Vec<String>) {
    let s = Scratch::new(&format!("filemode{mode}"));
    let mut cmd = s.flusher_cmd(&[
        "--max-bytes",
        "1K",
        "--file-mode",
        mode,
        "--format",
        "%(message)s",
    ]);
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    let f = Running::ready(&s, cmd);
    let at_start = mode_of(&s.path("app.log"));
    let p = producer(&s);
    // 2440 bytes of records: two rotations before 1 KiB, 408 bytes left.
    for seq in 0..150 {
        p.log(level::INFO, "w", &format!("worker=0 seq={seq}"))
            .unwrap();
    }
    assert!(wait_until(LIMIT, || read(&s.path("app.log"))
        .ends_with("worker=0 seq=149\n")));
    stop_ok(f);
    all_once(&s, 150);
    assert_eq!(std::fs::metadata(s.path("app.log")).unwrap().len(), 408);
    let rotated_modes = rotated(&s)
        .iter()
        .map(|name| format!("{name} {}", mode_of(&s.path(name))))
        .collect();
    (at_start, mode_of(&s.path("app.log")), rotated_modes)
}

/// The log file created at start and the new one after a rotation have
/// exactly `--file-mode` (under umask 022, which neither mode is affected by).
#[test]
fn file_mode_of_created_and_rotated_files() {
    for mode in ["600", "640"] {
        let (at_start, after_rotation, rotated) = file_modes(mode, 0o022);
        assert_eq!(at_start, mode, "created at start");
        assert_eq!(after_rotation, mode, "new file after rotation");
        assert_eq!(
            rotated,
            [format!("app.log.1 {mode}"), format!("app.log.2 {mode}")]
        );
    }
}

/// The segment's `--mode` is set exactly whatever the umask (segment.rs
/// fchmods it); `--file-mode` should be too.
#[test]
fn file_mode_is_exact_under_a_strict_umask() {
    let (at_start, after_rotation, _) = file_modes("640", 0o077);
    assert_eq!((at_start.as_str(), after_rotation.as_str()), ("640", "640"));
}

// 4. --utc and --at-time with --when midnight.

/// Next 09:30 after known instants, in New York and in UTC, including
/// across the spring-forward change of 2024-03-10 and the fall-back of
/// 2024-11-03 (values from CPython 3.13's computeRollover and doRollover).
#[test]
fn midnight_at_time_in_new_york_and_in_utc() {
    // 2024-03-06 12:00 UTC (07:00 EST), 2024-03-06 09:00 EST,
    // 2024-03-09 12:00 EST, 2024-11-02 12:00 EDT.
    let from = "1709726400,1709733600,1710003600,1730563200";
    let run = |utc: bool| {
        let mut c = Command::new(BIN);
        c.env("TZ", "America/New_York").args([
            "rollover",
            "--when",
            "midnight",
            "--at-time",
            "09:30",
            "--from",
            from,
        ]);
        if utc {
            c.arg("--utc");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(false),
        concat!(
            // 2024-03-06 09:30 EST, same day.
            "1709726400 1709735400 2024-03-05\n",
            "1709733600 1709735400 2024-03-05\n",
            // 2024-03-10 09:30 EDT (13:30 UTC): the day is 23 hours long.
            "1710003600 1710077400 2024-03-09\n",
            // 2024-11-03 09:30 EST (14:30 UTC): the day is 25 hours long.
            "1730563200 1730644200 2024-11-02\n",
        )
    );
    assert_eq!(
        run(true),
        concat!(
            // 2024-03-07 09:30 UTC: 12:00 UTC is past 09:30 UTC.
            "1709726400 1709803800 2024-03-06\n",
            "1709733600 1709803800 2024-03-06\n",
            // 2024-03-10 09:30 UTC, no DST shift.
            "1710003600 1710063000 2024-03-09\n",
            // 2024-11-03 09:30 UTC.
            "1730563200 1730626200 2024-11-02\n",
        )
    );
}

// 5. --datefmt.

/// `--datefmt` replaces asctime's format, without Python's `,mmm`.
#[test]
fn datefmt_renders_asctime() {
    let s = Scratch::new("datefmt");
    let f = Running::ready(
        &s,
        flusher_in_zone(
            &s,
            &[
                "--format",
                "%(asctime)s|%(message)s",
                "--datefmt",
                "%Y/%m/%d %H.%M.%S",
            ],
            "UTC",
        ),
    );
    let p = producer(&s);
    // 2024-03-06 10:00:00.123 UTC, then 61.5 s later.
    let t0: u64 = 1_709_719_200_123_000_000;
    for (t, msg) in [(t0, &b"first"[..]), (t0 + 61_500_000_000, b"second")] {
        let r = Record {
            level: level::INFO,
            message: msg,
            ..Record::default()
        };
        p.write_at(&r, t).unwrap();
    }
    assert!(wait_until(LIMIT, || read(&s.path("app.log"))
        .lines()
        .count()
        == 2));
    stop_ok(f);
    assert_eq!(
        read(&s.path("app.log")),
        "2024/03/06 10.00.00|first\n2024/03/06 10.01.01|second\n"
    );
}

// 6. --mode of a segment the flusher creates.

/// A segment the flusher creates gets `--mode`, 0600 by default, even
/// under umask 077.
#[test]
fn segment_mode_is_mode_or_0600() {
    for (extra, mode) in [(&["--mode", "640"][..], "640"), (&[][..], "600")] {
        let s = Scratch::new("shmmode");
        assert!(!s.shm_file().exists());
        let mut cmd = s.flusher_cmd(extra);
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        let f = Running::ready(&s, cmd);
        assert_eq!(mode_of(&s.shm_file()), mode, "{extra:?}");
        stop_ok(f);
    }
}

// 7. --compress gzip with timed rotation.

/// Rotated files become `app.log.<S suffix>.gz`, all but the newest (the
/// default `--compress-delay 1` leaves it for a shipper to finish); no
/// `.gz.tmp` is left; the archives, the newest rotated file and the live
/// file hold every record exactly once, in order.
#[test]
fn gzip_with_timed_rotation() {
    let s = Scratch::new("gzipS");
    let f = Running::ready(
        &s,
        s.flusher_cmd(&[
            "--when",
            "S",
            "--compress",
            "gzip",
            "--format",
            "%(message)s",
        ]),
    );
    let p = producer(&s);
    let n = write_until(&p, 0, || rotated(&s).len() >= 3);
    // Stopping waits for every compression.
    stop_ok(f);
    let rot = rotated(&s);
    let (newest, older) = rot.split_last().unwrap();
    assert!(
        !newest.ends_with(".gz"),
        "the newest is left plain: {rot:?}"
    );
    second_suffix_utc(newest, "app.log.");
    for name in older {
        let stem = name
            .strip_suffix(".gz")
            .unwrap_or_else(|| panic!("not compressed: {name} in {rot:?}"));
        second_suffix_utc(stem, "app.log.");
    }
    // Read (and decompressed) every archive and the live file.
    let t = all_once(&s, n);
    assert_eq!(t.files.len(), rot.len() + 1, "{t:?}");
}

// 8. Work a crashed flusher left half done.

/// A staged `app.log.rotating-<ns>` (renamed away from `app.log`, then the
/// flusher died) becomes `app.log.1`, the old `app.log.1` moves to `.2`.
#[test]
fn staged_size_rotation_is_finished_at_start() {
    let s = Scratch::new("staged");
    let staged = s.path("app.log.rotating-00000000000000000001");
    std::fs::write(&staged, "staged generation\n").unwrap();
    std::fs::write(s.path("app.log.1"), "older generation\n").unwrap();
    std::fs::write(s.path("app.log"), "live\n").unwrap();
    let f = Running::ready(
        &s,
        s.flusher_cmd(&["--max-bytes", "1M", "--format", "%(message)s"]),
    );
    let done = wait_until(Duration::from_secs(30), || {
        !staged.exists()
            && read(&s.path("app.log.1")) == "staged generation\n"
            && read(&s.path("app.log.2")) == "older generation\n"
    });
    let err = stop_ok(f);
    assert!(done, "{:?}\n{err}", names(&s));
    assert_eq!(names(&s), ["app.log", "app.log.1", "app.log.2"]);
    assert_eq!(read(&s.path("app.log")), "live\n");
}

/// With `--compress gzip`, a half-written `X.gz.tmp` next to its rotated
/// file `X` is removed and `X` compressed again to a complete `X.gz`.
#[test]
fn interrupted_compression_is_redone_at_start() {
    let s = Scratch::new("gztmp");
    let original: String = (0..500).map(|i| format!("old record {i}\n")).collect();
    let plain = s.path("app.log.2024-03-04");
    std::fs::write(&plain, &original).unwrap();
    let mut whole = Vec::new();
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(&mut whole, flate2::Compression::default());
        enc.write_all(original.as_bytes()).unwrap();
        enc.finish().unwrap();
    }
    let tmp = s.path("app.log.2024-03-04.gz.tmp");
    std::fs::write(&tmp, &whole[..whole.len() / 2]).unwrap();
    let gz = s.path("app.log.2024-03-04.gz");
    let f = Running::ready(
        &s,
        s.flusher_cmd(&[
            "--when",
            "midnight",
            "--compress",
            "gzip",
            "--compress-delay",
            "0",
            "--format",
            "%(message)s",
        ]),
    );
    let done = wait_until(Duration::from_secs(30), || {
        !tmp.exists() && !plain.exists() && gz.exists()
    });
    let err = stop_ok(f);
    assert!(done, "{:?}\n{err}", names(&s));
    assert_eq!(names(&s), ["app.log", "app.log.2024-03-04.gz"]);
    assert_eq!(gunzip(&gz), original);
}

// 9. Records without a file name.

/// As CPython's LogRecord when findCaller finds nothing: pathname, filename
/// and module `(unknown file)`, funcName `(unknown function)`, lineno 0.
#[test]
fn record_without_a_file_name_formats_as_unknown_file() {
    let s = Scratch::new("nofile");
    let f = Running::ready(
        &s,
        s.flusher_cmd(&[
            "--format",
            "%(filename)s|%(pathname)s|%(module)s|%(funcName)s|%(lineno)d|%(message)s",
        ]),
    );
    let p = producer(&s);
    p.write(&Record {
        level: level::INFO,
        message: b"no file",
        ..Record::default()
    })
    .unwrap();
    assert!(wait_until(LIMIT, || read(&s.path("app.log")).ends_with('\n')));
    stop_ok(f);
    assert_eq!(
        read(&s.path("app.log")),
        "(unknown file)|(unknown file)|(unknown file)|(unknown function)|0|no file\n"
    );
}

// 10. A full /dev/shm at segment creation.

/// Run a flusher in a private mount namespace whose /dev/shm is a 1 MiB
/// tmpfs, so that the default 8 MiB ring does not fit; afterwards list
/// what is left in that /dev/shm on stdout. Needs root (CAP_SYS_ADMIN) and
/// util-linux's unshare: `None` with a message when they are missing, a
/// panic instead in CI (a skipped test must not look like a pass there).
fn flusher_on_a_full_dev_shm(test: &str) -> Option<std::process::Output> {
    let cannot_run = |why: String| {
        if std::env::var_os("CI").is_some() {
            panic!("{test} cannot run in CI: {why}");
        }
        eprintln!("skipped {test}: {why}");
        None
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return cannot_run("needs root to mount a small /dev/shm".into());
    }
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1M tmpfs /dev/shm")
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return cannot_run(format!(
                "unshare/mount failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return cannot_run(format!("unshare: {e}")),
    }
    let dir = tempfile::tempdir().unwrap();
    let script = "mount -t tmpfs -o size=1M tmpfs /dev/shm || exit 97
\"$0\" --shm /rf-full --file app.log
rc=$?
ls -A /dev/shm
exit $rc";
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, BIN])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !dir.path().join("app.log").exists(),
        "log file opened before the segment"
    );
    Some(out)
}

/// Exit code 2, one line on stderr saying /dev/shm has no room for the
/// ring (said once, not doubled by the error chain), no segment left behind.
#[test]
fn full_dev_shm_at_creation_is_one_clear_error() {
    let Some(out) = flusher_on_a_full_dev_shm("full_dev_shm_at_creation_is_one_clear_error") else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // 40 KiB header + 8 MiB ring.
    assert!(
        err.starts_with(
            "ringflush: not enough room in /dev/shm for segment /rf-full: it needs 8429568 bytes and "
        ),
        "{err}"
    );
    assert_eq!(err.matches("not enough room").count(), 1, "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "segment left in /dev/shm"
    );
}

/// The line tells the operator which option to change.
#[test]
fn full_dev_shm_message_names_the_size_option() {
    let Some(out) = flusher_on_a_full_dev_shm("full_dev_shm_message_names_the_size_option") else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--size"), "{err}");
}

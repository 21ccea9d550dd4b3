//! Rollover on request (`ringflush rotate`, SIGUSR1: what `doRollover()`
//! asks for) and rotated files left to the application
//! (`--rotated-by-app`: the Python handlers' namer and rotator).

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn pipe(s: &Scratch, text: &str) {
    let mut child = s
        .cmd()
        .args(["pipe", "--shm", &s.shm])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap();
    drop(stdin);
    assert!(wait_child(child, LIMIT).success());
}

fn written(s: &Scratch) -> u64 {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["written"].as_u64().unwrap()
}

/// The rotated siblings of app.log, sorted.
fn rotated(s: &Scratch) -> Vec<String> {
    app_logs(s.dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "app.log")
        .collect()
}

#[test]
fn rotate_rolls_over_now_and_returns_once_it_has() {
    let s = Scratch::new("rotate");
    let f = s.flusher_ready(&["--when", "midnight", "--format", "%(message)s"]);
    pipe(&s, "before\n");
    assert!(wait_until(LIMIT, || written(&s) == 1));
    let out = s.run(&["rotate", "--shm", &s.shm]);
    assert!(out.status.success(), "{out:?}");
    // Returned: the old file is renamed already, with the record in it.
    let names = rotated(&s);
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(read(&s.path(&names[0])), "before\n");
    pipe(&s, "after\n");
    assert!(wait_until(LIMIT, || written(&s) == 2));
    assert_eq!(read(&s.path("app.log")), "after\n");
    // SIGUSR1 asks the same, without waiting: a second rollover in the
    // same day gets `.1`, never overwriting the first.
    f.signal(libc::SIGUSR1);
    assert!(wait_until(LIMIT, || rotated(&s).len() == 2));
    assert_eq!(read(&s.path(&format!("{}.1", names[0]))), "after\n");
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(err.contains("rolled over on request (SIGUSR1)"), "{err}");
}

#[test]
fn rotate_without_a_flusher_says_so_and_fails() {
    let s = Scratch::new("rotate-none");
    pipe(&s, "x\n"); // makes the segment, no flusher
    let out = s.run(&["rotate", "--shm", &s.shm, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "ringflush: no flusher is running for segment {}: nothing would roll the file over",
            s.shm
        )
    );
    let out = s.run(&["rotate", "--shm", &s.shm, "--timeout", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rotated_by_app_leaves_pending_files_and_prunes_nothing() {
    let s = Scratch::new("by-app");
    let f = s.flusher_ready(&[
        "--max-bytes",
        "10",
        "--backup-count",
        "1",
        "--compress",
        "gzip",
        "--compress-delay",
        "0",
        "--rotated-by-app",
        "--format",
        "%(message)s",
    ]);
    for i in 0..3 {
        pipe(&s, &format!("record-{i}\n"));
        assert!(wait_until(LIMIT, || written(&s) == i + 1));
    }
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    // Two rollovers, both left whole under pending names (no shift, no
    // gzip, no retention: the application does those), oldest first.
    let names = rotated(&s);
    assert_eq!(names.len(), 2, "{names:?}");
    for (name, i) in names.iter().zip(0..) {
        let rest = name.strip_prefix("app.log.ringflush-pending.").unwrap();
        let (ns, at) = rest.split_once('.').unwrap();
        assert!(
            ns.len() == 20 && ns.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
        assert_eq!(at, "0", "no timed schedule: {name}");
        assert_eq!(read(&s.path(name)), format!("record-{i}\n"));
    }
    assert_eq!(read(&s.path("app.log")), "record-2\n");
}

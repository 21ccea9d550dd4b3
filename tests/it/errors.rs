//! Bad input gives a clear error and a non-zero exit, never a panic or SIGBUS.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Output;

use crate::common::Scratch;
use ringflush_ring::{Segment, SegmentOptions};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both the flusher and `stat` refuse, with `ringflush: ` and `expect` in the
/// message, and neither crashed by a signal.
fn refused(s: &Scratch, expect: &str) {
    for args in [
        vec!["--shm", &s.shm, "--file", "x.log"],
        vec!["stat", "--shm", &s.shm],
    ] {
        let out = s.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("ringflush: ") && err.contains(expect),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

fn write_shm(s: &Scratch, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(s.shm_file())
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn garbage_segment() {
    let s = Scratch::new("garbage");
    write_shm(&s, &[0xA5; ringflush_ring::layout::HEADER_SIZE]);
    refused(&s, "is not a ringflush segment");
}

#[test]
fn truncated_segments() {
    let s = Scratch::new("trunc");
    write_shm(&s, &[0; 100]);
    refused(&s, "truncated: 100 bytes");
    // A real segment cut short after creation.
    std::fs::remove_file(s.shm_file()).unwrap();
    let opts = SegmentOptions {
        capacity: 1 << 16,
        ..SegmentOptions::default()
    };
    drop(Segment::open(&s.shm, &opts).unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.shm_file())
        .unwrap();
    f.set_len(4096 + (1 << 15)).unwrap();
    refused(&s, "truncated");
}

#[test]
fn wrong_layout_version() {
    let s = Scratch::new("version");
    let opts = SegmentOptions {
        capacity: 1 << 16,
        ..SegmentOptions::default()
    };
    drop(Segment::open(&s.shm, &opts).unwrap());
    let mut bytes = std::fs::read(s.shm_file()).unwrap();
    let other = ringflush_ring::layout::VERSION_MAJOR + 1;
    bytes[8..16].copy_from_slice(&(u64::from(other) << 32).to_le_bytes());
    write_shm(&s, &bytes);
    refused(&s, &format!("layout version {other}.0"));
}

#[test]
fn never_initialised_segment_times_out() {
    let s = Scratch::new("uninit");
    write_shm(&s, &vec![0; 4096 + (1 << 16)]);
    refused(&s, "was not initialised");
}

#[test]
fn missing_segment_for_stat() {
    let s = Scratch::new("missing");
    let out = s.run(&["stat", "--shm", &s.shm]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no segment"), "{}", stderr(&out));
}

#[test]
fn bad_options() {
    let s = Scratch::new("opts");
    for (args, expect) in [
        (vec!["--shm", "applog"], "invalid shared-memory name"),
        (
            vec!["--shm", &s.shm, "--format", "%(nope)s"],
            "unknown attribute %(nope)",
        ),
        (
            vec!["--shm", &s.shm, "--datefmt", "%Q"],
            "invalid --datefmt",
        ),
        (vec!["--shm", &s.shm, "--size", "3M"], "power of two"),
        (
            vec!["--shm", &s.shm, "--when", "fortnight"],
            "invalid --when",
        ),
        (
            vec!["--shm", &s.shm, "--when", "midnight", "--at-time", "25:00"],
            "invalid --at-time",
        ),
        (
            vec!["--shm", &s.shm, "--group", "no-such-group-rf"],
            "unknown group",
        ),
        (
            vec!["pipe", "--shm", &s.shm, "--level", "LOUD"],
            "invalid --level",
        ),
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    // A bad size is refused before the log's directory is made.
    let out = s.run(&["--shm", &s.shm, "--size", "3M", "--file", "sub/x.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!s.path("sub").exists(), "{}", stderr(&out));
    // Usage errors found by clap exit 2 too, in one `ringflush: ` line.
    for args in [
        vec!["--file", "x.log"],
        vec!["--shm", &s.shm, "--file", "x.log", "--lanes", "100"],
        vec!["--shm", &s.shm, "--file", "x.log", "--no-such-option"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with("ringflush: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(s.run(&["--help"]).status.success());
}

#[test]
fn unwritable_log_path_is_an_error_at_start_up() {
    let s = Scratch::new("unwritable");
    std::fs::create_dir(s.path("dir.log")).unwrap();
    let out = s.run(&["--shm", &s.shm, "--file", "dir.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    // A file where the log's directory should be: "Not a directory", not
    // the EEXIST that mkdir gives.
    std::fs::write(s.path("afile"), "").unwrap();
    let out = s.run(&["--shm", &s.shm, "--file", "afile/app.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("afile: Not a directory"),
        "{}",
        stderr(&out)
    );
    std::os::unix::fs::symlink("/etc/passwd", s.path("link.log")).unwrap();
    let out = s.run(&["--shm", &s.shm, "--file", "link.log"]);
    assert!(
        stderr(&out).contains("symlinks are not followed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_flusher_per_segment() {
    let s = Scratch::new("second");
    let first = s.flusher_ready(&["--size", "64K"]);
    let out = s.run(&["--shm", &s.shm, "--file", "other.log"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "a flusher is already running for {} (pid {})",
            s.shm,
            first.pid()
        )),
        "{err}"
    );
    // One an application started (--exit-when-idle) lost a start-up race:
    // nothing to do, nothing to say.
    let out = s.run(&["--shm", &s.shm, "--file", "other.log", "--exit-when-idle"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
    let (ok, e) = first.stop();
    assert!(ok, "{e}");
}

#[test]
fn size_mismatch_with_existing_segment() {
    let s = Scratch::new("sizemm");
    let opts = SegmentOptions {
        capacity: 1 << 16,
        ..SegmentOptions::default()
    };
    drop(Segment::open(&s.shm, &opts).unwrap());
    let out = s.run(&["--shm", &s.shm, "--size", "1M"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("exists with capacity 65536"),
        "{}",
        stderr(&out)
    );
}

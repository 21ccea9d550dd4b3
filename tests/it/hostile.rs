//! Segments that are not ours, a full disk, and messages built to forge log
//! lines.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{read, wait_until, Scratch};
use ringflush_producer::{level, Producer};
use ringflush_ring::{Segment, SegmentOptions};

fn make_segment(s: &Scratch) {
    let opts = SegmentOptions {
        capacity: 1 << 16,
        ..SegmentOptions::default()
    };
    drop(Segment::open(&s.shm, &opts).unwrap());
}

fn flusher_error(s: &Scratch, extra: &[&str]) -> Option<String> {
    let mut child = s
        .cmd()
        .args(["--shm", &s.shm, "--file", "x.log"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A flusher that accepted the segment runs until stopped.
    std::thread::sleep(Duration::from_millis(400));
    if child.try_wait().unwrap().is_none() {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
        return None;
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn foreign_segments_are_refused_unless_allowed() {
    if rustix::process::geteuid().as_raw() != 0 {
        let test = "foreign_segments_are_refused_unless_allowed";
        crate::common::not_run(test, "changing a segment's owner needs root", true);
        return;
    }
    let s = Scratch::new("foreign");
    make_segment(&s);
    std::os::unix::fs::chown(s.shm_file(), Some(12345), None).unwrap();
    let err = flusher_error(&s, &[]).expect("refused");
    assert!(err.contains("is owned by uid 12345"), "{err}");
    assert_eq!(flusher_error(&s, &["--allow-foreign"]), None);
}

#[test]
fn writable_by_others_is_refused_unless_configured() {
    let s = Scratch::new("worldw");
    make_segment(&s);
    std::fs::set_permissions(s.shm_file(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = flusher_error(&s, &[]).expect("refused");
    assert!(
        err.contains("writable by group or others (mode 666)"),
        "{err}"
    );
    assert_eq!(flusher_error(&s, &["--mode", "666"]), None);
}

#[test]
fn forged_lines_stay_inside_their_record_with_escape() {
    let s = Scratch::new("forge");
    let f = s.flusher_ready(&["--escape", "--format", "%(levelname)s %(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    let evil = "ok\nCRITICAL root password changed\r\x1b[2K\0 \u{fffd} done";
    p.log(level::INFO, "web", evil).unwrap();
    p.write(&ringflush_producer::Record {
        level: level::INFO,
        message: b"bad \xff\xfe bytes",
        ..Default::default()
    })
    .unwrap();
    assert!(wait_until(Duration::from_secs(20), || read(
        &s.path("app.log")
    )
    .lines()
    .count()
        >= 2));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let log = read(&s.path("app.log"));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(
        lines[0],
        "INFO ok\\nCRITICAL root password changed\\r\\x1b[2K\\x00 \u{fffd} done"
    );
    assert_eq!(lines[1], "INFO bad \u{fffd}\u{fffd} bytes");
}

/// A tmpfs of 512 KiB, mostly taken by a filler file; removed on drop.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(at: &std::path::Path) -> Result<Self, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self { dir: at.into() })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn full_disk_keeps_records_in_the_ring_and_resumes() {
    let s = Scratch::new("enospc");
    let disk = match SmallDisk::mount(&s.path("disk")) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("cannot mount a small tmpfs here ({})", e.trim());
            crate::common::not_run(
                "full_disk_keeps_records_in_the_ring_and_resumes",
                &why,
                true,
            );
            return;
        }
    };
    let filler = disk.dir.join("filler");
    std::fs::write(&filler, vec![0u8; 400 * 1024]).unwrap();
    let f = s
        .cmd()
        .args([
            "--shm",
            &s.shm,
            "--file",
            "disk/app.log",
            "--format",
            "%(message)s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p = Producer::open(&s.shm).unwrap();
    for i in 0..4000 {
        p.log(
            level::INFO,
            "n",
            &format!("worker=0 seq={i} {}", "d".repeat(90)),
        )
        .unwrap();
    }
    let stat = || -> serde_json::Value {
        serde_json::from_slice(&s.run(&["stat", "--shm", &s.shm, "--json"]).stdout)
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(30), || stat()["flusher"]["write_errno"]
            == libc::ENOSPC),
        "{}",
        stat()
    );
    let v = stat();
    assert!(
        v["used"].as_u64().unwrap() > 0,
        "records wait in the ring: {v}"
    );
    assert_eq!(v["flusher"]["alive"], true);
    std::fs::remove_file(&filler).unwrap();
    assert!(wait_until(Duration::from_secs(30), || stat()["used"] == 0
        && stat()["written"] == 4000));
    assert_eq!(stat()["flusher"]["write_errno"], 0);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(f.id() as i32, libc::SIGTERM) };
    let out = f.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("works again"),
        "{err}"
    );
    let files = vec![disk.dir.join("app.log")];
    let t = ringflush::verify::check(&files, &[(0, 4000)].into()).unwrap();
    assert!(t.ok() && t.records == 4000, "{t:?}");
}

//! Other users and operators: archives that keep their mode and owner, no
//! symlink followed at rotation, producers that refuse a segment another
//! user planted, `ringflush rm`, no segment left behind by a bad option,
//! systemd's notify protocol, and the Prometheus metrics.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{read, wait_until, Scratch};
use ringflush_producer::{level, OpenErrorKind, Producer};

const LIMIT: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    rustix::process::geteuid().as_raw() == 0
}

/// Log until `done` holds (bounded).
fn log_until(p: &Producer, mut done: impl FnMut() -> bool) {
    let mut i = 0;
    assert!(wait_until(LIMIT, || {
        p.log(level::INFO, "t", &format!("record {i}")).unwrap();
        i += 1;
        done()
    }));
}

fn gz_files(s: &Scratch) -> Vec<std::path::PathBuf> {
    crate::common::app_logs(s.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect()
}

/// Compressed archives keep the rotated file's mode (and, as root, its
/// owner), not the umask's 0644.
#[test]
fn archives_keep_the_log_files_mode_and_owner() {
    let s = Scratch::new("archmode");
    if is_root() {
        // A log file another user owns: its archives stay that user's.
        std::fs::write(s.path("app.log"), "").unwrap();
        std::os::unix::fs::chown(s.path("app.log"), Some(4321), Some(4321)).unwrap();
        let perms = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(s.path("app.log"), perms).unwrap();
    }
    let f = s.flusher_ready(&["--when", "S", "--compress", "gzip", "--file-mode", "600"]);
    let p = Producer::open(&s.shm).unwrap();
    log_until(&p, || gz_files(&s).len() >= 2);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    for gz in gz_files(&s) {
        let meta = std::fs::metadata(&gz).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", gz.display());
    }
    if is_root() {
        let first = &gz_files(&s)[0];
        assert_eq!(
            std::fs::metadata(first).unwrap().uid(),
            4321,
            "{}",
            first.display()
        );
    } else {
        crate::common::not_run(
            "archives_keep_the_log_files_mode_and_owner",
            "the owner part needs root",
            true,
        );
    }
}

/// A symlink put where the log file was, just before a rotation: the
/// flusher neither renames it nor compresses what it points to.
#[test]
fn a_symlink_at_rotation_time_is_neither_renamed_nor_followed() {
    let s = Scratch::new("symrot");
    let secret = s.path("secret");
    std::fs::write(&secret, "SECRET CONTENTS\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let f = s.flusher_ready(&[
        "--when",
        "S",
        "--compress",
        "gzip",
        "--format",
        "%(message)s",
    ]);
    let p = Producer::open(&s.shm).unwrap();
    log_until(&p, || read(&s.path("app.log")).contains("record 10"));
    std::fs::rename(s.path("app.log"), s.path("app.log.moved")).unwrap();
    std::os::unix::fs::symlink(&secret, s.path("app.log")).unwrap();
    // Records keep coming, past the next rollover: the flusher must rotate,
    // finds the link where its file was, and neither renames nor reads it.
    for i in 0..15 {
        let _ = p.log(level::INFO, "t", &format!("later {i}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        read(&secret),
        "SECRET CONTENTS\n",
        "the target is untouched"
    );
    let link = std::fs::symlink_metadata(s.path("app.log")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was not renamed");
    // Once the link is gone, the waiting records are written.
    std::fs::remove_file(s.path("app.log")).unwrap();
    assert!(wait_until(LIMIT, || read(&s.path("app.log")).contains("later 14")));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert_eq!(read(&secret), "SECRET CONTENTS\n");
    for path in crate::common::app_logs(s.dir.path()) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let mut text = String::new();
        let mut gz = flate2::read::GzDecoder::new(&bytes[..]);
        let _ = std::io::Read::read_to_string(&mut gz, &mut text);
        text.push_str(&String::from_utf8_lossy(&bytes));
        assert!(
            !text.contains("SECRET"),
            "{} holds the target's contents",
            path.display()
        );
    }
    assert!(err.contains("symlinks are not followed"), "{err}");
}

/// Another local user creates the segment first (and opens it to all):
/// producers refuse it, naming the owner, as the flusher does; an explicit
/// opt-in accepts it for shared setups.
#[test]
fn producers_refuse_a_segment_another_user_planted() {
    let s = Scratch::new("planted");
    if !is_root() {
        // Without root: a segment writable by others is refused all the same.
        drop(Producer::open(&s.shm).unwrap());
        std::fs::set_permissions(s.shm_file(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Producer::open(&s.shm).expect_err("refused");
        assert!(
            matches!(err.kind, OpenErrorKind::TooWritable { mode: 0o666, .. }),
            "{err}"
        );
        return crate::common::not_run(
            "producers_refuse_a_segment_another_user_planted",
            "creating a segment as another user needs root",
            true,
        );
    }
    let planted = Command::new("setpriv")
        .args([
            "--reuid",
            "4321",
            "--regid",
            "4321",
            "--clear-groups",
            crate::common::BIN,
        ])
        .args(["worker", "--shm", &s.shm, "--id", "0", "--count", "1"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(planted.success());
    std::fs::set_permissions(s.shm_file(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = Producer::open(&s.shm).expect_err("refused");
    let text = err.to_string();
    assert!(
        matches!(err.kind, OpenErrorKind::ForeignOwner { owner: 4321, .. }),
        "{text}"
    );
    assert!(
        text.contains("owned by uid 4321") && text.contains("allow_foreign"),
        "{text}"
    );
    let flusher = s.run(&["--shm", &s.shm, "--file", "app.log"]);
    assert_eq!(flusher.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&flusher.stderr).contains("owned by uid 4321"));
    let shared = Producer::builder(&s.shm)
        .allow_foreign(true)
        .mode(0o666)
        .open();
    assert!(shared.is_ok(), "the opt-in accepts it");
}

/// `ringflush rm`: refused while a flusher drains the segment or while it
/// holds records no flusher wrote; `--force` removes it anyway; an idle,
/// empty segment goes at once.
#[test]
fn rm_refuses_a_segment_in_use_unless_forced() {
    let s = Scratch::new("rm");
    let f = s.flusher_ready(&[]);
    let out = s.run(&["rm", "--shm", &s.shm]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("in use by a flusher (pid {})", f.pid())),
        "{err}"
    );
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "t", "unwritten").unwrap();
    let out = s.run(&["rm", "--shm", &s.shm]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("in use by producers"), "{err}");
    drop(p);
    let out = s.run(&["rm", "--shm", &s.shm]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds"),
        "unwritten records"
    );
    let out = s.run(&["rm", "--shm", &s.shm, "--force"]);
    assert!(out.status.success());
    assert!(!s.shm_file().exists());
    let out = s.run(&["rm", "--shm", &s.shm]);
    assert_eq!(out.status.code(), Some(2), "a missing segment is an error");
}

/// `ringflush rm --stale` in a private /dev/shm (it looks at every
/// segment, so not in the shared one other tests use): an idle, empty
/// segment goes; one holding records stays, and it says why and how to
/// drop them.
#[test]
fn rm_stale_removes_idle_empty_segments_and_names_the_ones_it_keeps() {
    let test = "rm_stale_removes_idle_empty_segments_and_names_the_ones_it_keeps";
    if !is_root() {
        return crate::common::not_run(test, "mounting a private /dev/shm needs root", true);
    }
    let script = r#"mount -t tmpfs -o size=64M tmpfs /dev/shm || exit 97
"$0" pipe --shm /idle </dev/null || exit 98
echo unwritten | "$0" pipe --shm /full || exit 99
"$0" rm --stale; echo "exit $?"
ls /dev/shm"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(crate::common::BIN)
        .output()
        .unwrap();
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(text.contains("exit 0"), "{text} {err}");
    assert!(err.contains("removed /dev/shm/idle"), "{err}");
    assert!(
        err.contains("kept /dev/shm/full: ")
            && err.contains("bytes of records not yet written")
            && err.contains("ringflush rm --shm /full --force"),
        "{err}"
    );
    assert!(!err.contains("no stale segment"), "{err}");
    assert_eq!(text.lines().filter(|l| *l == "full").count(), 1, "{text}");
    assert!(!text.lines().any(|l| l == "idle"), "{text}");
}

/// A segment of another layout version (left by an older build) cannot be
/// checked for users: `rm` says so and removes it only with `--force`; a
/// file that is not a ringflush segment is never removed.
#[test]
fn rm_removes_an_unusable_segment_only_when_forced() {
    let s = Scratch::new("rm-old");
    drop(Producer::open(&s.shm).unwrap());
    let mut bytes = std::fs::read(s.shm_file()).unwrap();
    let other = ringflush_ring::layout::VERSION_MAJOR - 1;
    bytes[8..16].copy_from_slice(&(u64::from(other) << 32 | 1).to_le_bytes());
    std::fs::write(s.shm_file(), &bytes).unwrap();
    let out = s.run(&["rm", "--shm", &s.shm]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("layout version {other}.1")) && err.contains("pass --force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(s.shm_file().exists());
    let removed_when_forced = || {
        let out = s.run(&["rm", "--shm", &s.shm, "--force"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!s.shm_file().exists());
    };
    removed_when_forced();

    // Not ringflush's: random bytes, and a small object such as a POSIX
    // semaphore (refused as cut short before its magic is even read).
    for bytes in [vec![7u8; 8192], vec![0u8; 32]] {
        std::fs::write(s.shm_file(), bytes).unwrap();
        let out = s.run(&["rm", "--shm", &s.shm, "--force"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(s.shm_file().exists(), "not a ringflush segment: kept");
    }
    // A ringflush segment cut short keeps its magic: removed when forced.
    std::fs::write(s.shm_file(), &bytes[..64]).unwrap();
    removed_when_forced();
    // Another user's (CI runs as root, which could remove it): kept.
    if rustix::process::geteuid().is_root() {
        std::fs::write(s.shm_file(), &bytes).unwrap();
        std::os::unix::fs::chown(s.shm_file(), Some(65534), Some(65534)).unwrap();
        let out = s.run(&["rm", "--shm", &s.shm, "--force"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("belongs to uid 65534"), "{err}");
        assert!(s.shm_file().exists());
    }
    std::fs::remove_file(s.shm_file()).unwrap();
}

/// A bad `--format`, `--datefmt` or `--file` is refused before any segment
/// exists: nothing is left in /dev/shm, and the error is one line.
#[test]
fn a_bad_option_leaves_no_segment_behind() {
    let s = Scratch::new("leftover");
    std::fs::create_dir(s.path("dir.log")).unwrap();
    for bad in [
        vec!["--format", "%(nope)s"],
        vec!["--datefmt", "%Q"],
        vec!["--file", "dir.log"],
    ] {
        let out = s.flusher_cmd(&bad).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(!s.shm_file().exists(), "{bad:?} left the segment behind");
    }
}

/// `Type=notify`: READY=1 once the flusher runs, WATCHDOG=1 at half of
/// WatchdogSec, STOPPING=1 on SIGTERM.
#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let s = Scratch::new("notify");
    let socket_path = s.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid: the shell's, kept by exec.
    let script = "WATCHDOG_PID=$$ exec \"$0\" --shm \"$1\" --file app.log";
    let child = Command::new("sh")
        .args(["-c", script, crate::common::BIN, &s.shm])
        .current_dir(s.dir.path())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let _guard = KillOnDrop(child.id());
    let mut heard = String::new();
    let mut buf = [0u8; 4096];
    while heard.matches("WATCHDOG=1").count() < 3 {
        let n = socket.recv(&mut buf).expect("a notification within 10 s");
        heard.push_str(&String::from_utf8_lossy(&buf[..n]));
        heard.push('\n');
    }
    assert!(heard.starts_with("READY=1\n"), "{heard}");
    assert!(heard.contains("STATUS=flushing"), "{heard}");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    while !heard.contains("STOPPING=1") {
        let n = socket.recv(&mut buf).expect("STOPPING=1 within 10 s");
        heard.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(crate::common::wait_child(child, LIMIT).success());
}

/// `stat --prometheus`: the text exposition format node_exporter's textfile
/// collector reads, with every counter and the gauges.
#[test]
fn stat_prometheus_exposes_counters_and_gauges() {
    let s = Scratch::new("prom");
    let f = s.flusher_ready(&[]);
    let p = Producer::open(&s.shm).unwrap();
    for i in 0..10 {
        p.log(level::INFO, "t", &format!("r {i}")).unwrap();
    }
    let label = format!("{{shm=\"{}\"}}", s.shm);
    assert!(wait_until(LIMIT, || {
        let out = s.run(&["stat", "--shm", &s.shm, "--prometheus"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("ringflush_records_written_total{label} 10\n"))
    }));
    let out = s.run(&["stat", "--shm", &s.shm, "--prometheus"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for (name, kind) in [
        ("ringflush_records_dropped_total", "counter"),
        ("ringflush_records_truncated_total", "counter"),
        ("ringflush_records_abandoned_total", "counter"),
        ("ringflush_corrupt_regions_total", "counter"),
        ("ringflush_late_commits_total", "counter"),
        ("ringflush_flusher_alive", "gauge"),
        ("ringflush_flusher_write_failing", "gauge"),
        ("ringflush_ring_fill_ratio", "gauge"),
        ("ringflush_producers", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!("\n{name}{label} ")),
            "{name}: {text}"
        );
    }
    assert!(
        text.contains(&format!("ringflush_flusher_alive{label} 1\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("ringflush_producers{label} 1\n")),
        "{text}"
    );
    // Every sample line is `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit_once(' ').map(|(_, v)| v).unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
}

/// `--exit-when-idle`: the flusher an application starts itself drains and
/// exits once no producer registered with its segment lives.
#[test]
fn exit_when_idle_waits_for_the_last_producer() {
    let s = Scratch::new("idle");
    let f = s.flusher_ready(&["--exit-when-idle", "--format", "%(message)s"]);
    let p = Producer::open(&s.shm).unwrap();
    p.log(level::INFO, "t", "while a producer lives").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        s.run(&["stat", "--shm", &s.shm, "--json"]).status.code(),
        Some(0)
    );
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(f.pid()), "it stays while the producer lives");
    drop(p);
    let (ok, err) = f.wait();
    assert!(ok, "{err}");
    assert!(err.contains("no producer of the segment is left"), "{err}");
    assert_eq!(read(&s.path("app.log")), "while a producer lives\n");
}

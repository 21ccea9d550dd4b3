//! Real deployments, as an operator meets them: a container's small
//! /dev/shm, a segment removed under a running flusher, logrotate with
//! `compress` and no signal, reopens that fail (no inodes, a symlink put in
//! the file's place), clobbered control words, `copytruncate` before a
//! crash, and a segment truncated under its producers. Each asserts that
//! nothing is lost or the loss is counted and reported, that the flusher
//! stays alive, and that no application process is killed.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{read, wait_child, wait_until, Scratch, MID_BATCH_RECORDS};
use ringflush::verify;
use ringflush_ring::{Segment, SegmentOptions};

const LIMIT: Duration = Duration::from_secs(120);

fn stat(s: &Scratch) -> serde_json::Value {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn is_root() -> bool {
    rustix::process::geteuid().as_raw() == 0
}

/// A `ringflush worker` writing `count` records, `pause_us` apart.
fn worker(s: &Scratch, id: u64, count: u64, pause_us: u64) -> Child {
    s.worker_cmd(id, count)
        .args(["--pause-us", &pause_us.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Open the segment as an inspector (no creation, no prefault).
fn inspect(s: &Scratch) -> Segment {
    Segment::open(&s.shm, &SegmentOptions::inspect()).unwrap()
}

/// (worker, seq) occurrences across `files` (plain or gzip).
fn tally(files: &[std::path::PathBuf]) -> BTreeMap<(u64, u64), u32> {
    let mut seen = BTreeMap::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = if f.extension().is_some_and(|e| e == "gz") {
            let mut out = String::new();
            let mut gz = flate2::read::GzDecoder::new(&bytes[..]);
            std::io::Read::read_to_string(&mut gz, &mut out).unwrap();
            out
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("worker=") else {
                continue;
            };
            let (id, seq) = rest.split_once(" seq=").unwrap();
            let seq = seq.split(' ').next().unwrap();
            let key = (id.parse().unwrap(), seq.parse().unwrap());
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    seen
}

/// Case 1: Docker's default /dev/shm is 64 MiB: with default options several
/// flushers (one per log file) fit there, and a ring that does not fit is
/// refused with a message naming the option to change.
#[test]
fn a_containers_64_mib_dev_shm_holds_several_default_segments() {
    let test = "a_containers_64_mib_dev_shm_holds_several_default_segments";
    if !is_root() {
        return crate::common::not_run(test, "mounting a 64 MiB /dev/shm needs root", true);
    }
    let dir = tempfile::tempdir().unwrap();
    let script = r#"mount -t tmpfs -o size=64M tmpfs /dev/shm || exit 97
pids=
for n in a b c d e f; do "$0" --shm /$n --file $n.log 2>$n.err & pids="$pids $!"; done
sleep 2
"$0" --shm /big --size 128M --file big.log 2>big.err; echo "big exit $?"
for n in a b c d e f; do "$0" stat --shm /$n --json; echo; done
kill -TERM $pids; wait
cat a.err"#;
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            crate::common::BIN,
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("big exit 2"), "{text}");
    let alive = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["flusher"]["alive"] == true && v["capacity"] == 8 << 20)
        .count();
    assert_eq!(alive, 6, "six default flushers side by side: {text}");
    let big = std::fs::read_to_string(dir.path().join("big.err")).unwrap();
    assert!(
        big.contains("not enough room in /dev/shm for segment /big") && big.contains("--size"),
        "{big}"
    );
}

/// Case 2: `rm /dev/shm/NAME` under a running flusher (an operator, a tmp
/// cleaner, systemd's RemoveIPC): producers that start afterwards create a
/// new segment; the flusher takes it over and keeps draining the old one
/// until its producers are gone. Every record of both arrives once.
#[test]
fn a_removed_segment_is_followed_and_the_old_one_drained() {
    let s = Scratch::new("removed");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let old = worker(&s, 0, 40_000, 50);
    assert!(wait_until(LIMIT, || read(&s.path("app.log"))
        .contains("worker=0 seq=100")));
    std::fs::remove_file(s.shm_file()).unwrap();
    let new = worker(&s, 1, 20_000, 0);
    let (old, new) = (wait_child(old, LIMIT), wait_child(new, LIMIT));
    assert!(old.success() && new.success());
    let files = vec![s.path("app.log")];
    let expected = [(0, 40_000), (1, 20_000)].into();
    assert!(wait_until(LIMIT, || verify::check(&files, &expected)
        .is_ok_and(|t| t.records == 60_000)));
    // Once its producer is gone, the old segment is unmapped (and so freed).
    let maps = format!("/proc/{}/maps", f.pid());
    let old = format!("/dev/shm{} (deleted)", s.shm);
    assert!(wait_until(LIMIT, || !read(std::path::Path::new(&maps)).contains(&old)));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let t = verify::check(&files, &expected).unwrap();
    assert!(t.ok() && t.records == 60_000, "{t:?}");
    assert!(err.contains("was removed or replaced"), "{err}");
    assert!(
        err.contains("is drained and its producers are gone: released"),
        "the old segment is let go once its producer exited: {err}"
    );
    assert!(read(&s.path("app.log")).contains("was removed or replaced"));
}

/// Case 3: logrotate with `compress` and neither `delaycompress` nor a
/// postrotate signal, run over and over while four producers write: the
/// flusher checks the path before every batch, so a rotated-away file gets
/// at most the batch in flight, and a batch that landed in it is counted
/// at risk and said. Nothing is lost beyond what is counted, nothing is
/// doubled.
#[test]
fn logrotate_compress_without_delaycompress_loses_nothing_silently() {
    let test = "logrotate_compress_without_delaycompress_loses_nothing_silently";
    if Command::new("logrotate").arg("--version").output().is_err() {
        return crate::common::not_run(
            test,
            "logrotate is not installed (.ci/run installs it)",
            true,
        );
    }
    let s = Scratch::new("logrotate");
    let conf = s.path("logrotate.conf");
    let conf_text = format!(
        "{} {{\n  rotate 10000\n  compress\n  missingok\n  nocreate\n}}\n",
        s.path("app.log").display()
    );
    std::fs::write(&conf, conf_text).unwrap();
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let mut workers: Vec<Child> = (0..4).map(|id| worker(&s, id, 50_000, 20)).collect();
    let mut rotations = 0;
    let started = std::time::Instant::now();
    // Rotate every ~50 ms while the workers write, and a few times after.
    while rotations < 20 || workers.iter_mut().any(|w| w.try_wait().unwrap().is_none()) {
        assert!(started.elapsed() < LIMIT, "the workers did not finish");
        let status = Command::new("logrotate")
            .args(["-f", "-s"])
            .arg(s.path("logrotate.state"))
            .arg(&conf)
            .status()
            .unwrap();
        assert!(status.success());
        rotations += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for w in workers {
        assert!(wait_child(w, LIMIT).success());
    }
    assert!(wait_until(LIMIT, || stat(&s)["written"] == 200_000));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let seen = tally(&crate::common::app_logs(s.dir.path()));
    let doubled = seen.values().filter(|&&n| n > 1).count();
    let lost = 200_000 - seen.len() as u64;
    let at_risk = stat(&s)["at_risk"].as_u64().unwrap();
    eprintln!(
        "logrotate: {rotations} rotations, {lost} lost, {at_risk} at risk, {doubled} doubled"
    );
    assert!(rotations >= 10, "{rotations}");
    assert_eq!(doubled, 0);
    assert!(
        lost <= at_risk,
        "{lost} lost but only {at_risk} counted at risk: {err}"
    );
}

/// Case 4a: No inodes left when the flusher reopens the file after a rotation:
/// it does not exit; the records wait in the ring, the error is reported
/// and shown in `stat`, and writing resumes once an inode is free.
#[test]
fn a_failed_reopen_is_retried_and_nothing_is_lost() {
    let test = "a_failed_reopen_is_retried_and_nothing_is_lost";
    if !is_root() {
        return crate::common::not_run(test, "mounting a tmpfs with few inodes needs root", true);
    }
    let s = Scratch::new("inodes");
    let disk = s.path("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4M,nr_inodes=16", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let f = s.flusher_ready(&[
        "--file",
        "disk/app.log",
        "--format",
        "%(message)s",
        "--when",
        "S",
    ]);
    // Take every inode left.
    let mut fillers = Vec::new();
    while std::fs::write(disk.join(format!("filler{}", fillers.len())), "").is_ok() {
        fillers.push(disk.join(format!("filler{}", fillers.len())));
    }
    let w = worker(&s, 0, 3000, 1000);
    assert!(
        wait_until(LIMIT, || stat(&s)["flusher"]["write_errno"] == libc::ENOSPC),
        "the failed reopen shows in stat: {}",
        stat(&s)
    );
    assert_eq!(stat(&s)["flusher"]["alive"], true);
    // Every rotation takes an inode for the new file: free them all.
    for filler in &fillers {
        std::fs::remove_file(filler).unwrap();
    }
    assert!(wait_child(w, LIMIT).success());
    assert!(wait_until(LIMIT, || stat(&s)["written"] == 3000));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("works again"),
        "{err}"
    );
    let files = crate::common::app_logs(&disk);
    let seen = tally(&files);
    assert_eq!(seen.len(), 3000, "every record once");
    assert!(seen.values().all(|&n| n == 1));
}

/// Case 4b: A symlink put where the log file was: the flusher never follows it
/// (the target stays untouched), keeps the records in the ring and reports
/// the failure, and carries on once the path is a file again.
#[test]
fn a_symlink_in_place_of_the_log_is_refused_until_it_goes() {
    let s = Scratch::new("symlink");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let target = s.path("precious");
    std::fs::write(&target, "precious\n").unwrap();
    let w = worker(&s, 0, 4000, 1000);
    assert!(wait_until(LIMIT, || read(&s.path("app.log")).contains("seq=100")));
    std::fs::rename(s.path("app.log"), s.path("app.log.moved")).unwrap();
    std::os::unix::fs::symlink(&target, s.path("app.log")).unwrap();
    assert!(wait_until(LIMIT, || stat(&s)["flusher"]["write_errno"] == libc::ELOOP));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stat(&s)["flusher"]["alive"], true);
    std::fs::remove_file(s.path("app.log")).unwrap();
    assert!(wait_child(w, LIMIT).success());
    assert!(wait_until(LIMIT, || stat(&s)["written"] == 4000));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert_eq!(
        read(&target),
        "precious\n",
        "the symlink's target is untouched"
    );
    assert!(err.contains("symlinks are not followed"), "{err}");
    let seen = tally(&[s.path("app.log.moved"), s.path("app.log")]);
    assert_eq!(seen.len(), 4000);
    assert!(seen.values().all(|&n| n == 1));
}

/// Case 5: Clobbered control words (a garbage tail, a tail of 0): the flusher
/// neither spins nor dies; it repairs the ring, counts and reports what it
/// gave up, answers SIGTERM, and later records arrive. Producers drop (and
/// count) instead of blocking while the words are broken.
#[test]
fn clobbered_control_words_are_repaired_and_the_flusher_stays_responsive() {
    for garbage in [0x7fff_ffff_ffff_f000u64, 0] {
        let s = Scratch::new("words");
        // The shared ring's control words are clobbered here.
        let f = s.flusher_ready(&["--lanes", "0", "--format", "%(message)s"]);
        let first = worker(&s, 0, 2000, 0);
        assert!(wait_child(first, LIMIT).success());
        assert!(wait_until(LIMIT, || stat(&s)["written"] == 2000));
        let seg = inspect(&s);
        seg.header()
            .tail
            .0
            .store(garbage, std::sync::atomic::Ordering::SeqCst);
        assert!(
            wait_until(LIMIT, || stat(&s)["repairs"].as_u64() >= Some(1)),
            "tail {garbage:#x}: repaired"
        );
        let second = worker(&s, 1, 2000, 0);
        assert!(wait_child(second, LIMIT).success());
        assert!(wait_until(LIMIT, || stat(&s)["written"] == 4000));
        let beat = stat(&s)["flusher"]["heartbeat_age_ms"].as_u64().unwrap();
        assert!(beat < 3000, "the heartbeat goes on");
        let (ok, err) = f.stop();
        assert!(ok, "{err}");
        assert!(err.contains("had inconsistent control words"), "{err}");
        let seen = tally(&[s.path("app.log")]);
        assert_eq!(seen.len(), 4000, "tail {garbage:#x}");
    }
}

/// Case 6: `copytruncate` (the file copied away and cut to zero) while the
/// flusher was killed with a batch in flight: the next flusher sees the
/// file shrank, writes the batch again rather than cutting anything, and
/// says it may appear twice. Nothing is lost.
#[test]
fn copytruncate_before_a_crash_is_said_not_guessed() {
    let s = Scratch::new("copytrunc");
    crate::common::kill_flusher_mid_batch(&s, "after_write:2", 0);
    std::fs::copy(s.path("app.log"), s.path("app.log.1")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(s.path("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let second = s.flusher(&["--format", "%(message)s"]);
    assert!(wait_until(LIMIT, || stat(&s)["used"] == 0));
    let (ok, err) = second.stop();
    assert!(ok, "{err}");
    assert!(
        err.contains("shrank from") && err.contains("may appear twice"),
        "{err}"
    );
    let seen = tally(&[s.path("app.log.1"), s.path("app.log")]);
    assert_eq!(seen.len() as u64, MID_BATCH_RECORDS, "nothing lost");
}

/// Case 7: A segment truncated under its producers (`truncate -s 4096`), which
/// would kill them with SIGBUS: the application survives (its SIGBUS
/// handler gives the object its size back, or the flusher does), the
/// flusher reports the repair and the lost bytes, and records written
/// afterwards arrive.
#[test]
fn a_truncated_segment_kills_no_producer() {
    let s = Scratch::new("truncated");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let busy = worker(&s, 0, 200_000, 10);
    assert!(wait_until(LIMIT, || read(&s.path("app.log")).contains("seq=1000")));
    for _ in 0..5 {
        std::fs::File::options()
            .write(true)
            .open(s.shm_file())
            .unwrap()
            .set_len(4096)
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = wait_child(busy, LIMIT);
    assert_eq!(
        status.signal(),
        None,
        "the producer was not killed: {status:?}"
    );
    assert!(wait_until(LIMIT, || stat(&s)["repairs"].as_u64() >= Some(1)));
    let after = worker(&s, 1, 1000, 0);
    assert!(wait_child(after, LIMIT).success());
    assert!(wait_until(LIMIT, || tally(&[s.path("app.log")])
        .keys()
        .filter(|(w, _)| *w == 1)
        .count()
        == 1000));
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    assert!(err.contains("was truncated"), "{err}");
}

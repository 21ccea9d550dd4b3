//! Many real producer processes through one flusher: every record exactly
//! once, in order per producer, no torn lines, with a small ring that wraps
//! many times.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use crate::common::Scratch;
use ringflush::verify;

const PROCS: u64 = 8;
const PER: u64 = 100_000;
/// A 1 MiB ring: 800k records of ~130 bytes wrap it about 100 times.
const RING: &str = "1M";
/// A bound on a hang, not a performance expectation.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

fn check_log(s: &Scratch, stderr: &str) {
    let files = verify::log_files(&s.path("app.log")).unwrap();
    let expected: BTreeMap<u64, u64> = (0..PROCS).map(|i| (i, PER)).collect();
    let tally = verify::check(&files, &expected).unwrap();
    assert!(tally.ok(), "{tally:?}\n{stderr}");
    assert_eq!(tally.records, PROCS * PER);
    assert_eq!(tally.other_lines, 0, "torn or foreign lines\n{stderr}");
}

fn ring_wrapped(s: &Scratch) {
    let stat = s.run(&["stat", "--shm", &s.shm, "--json"]);
    assert!(stat.status.success());
    let v: serde_json::Value = serde_json::from_slice(&stat.stdout).unwrap();
    // With lanes the records went through the lanes' chunks (and the
    // shared ring when no chunk was free): 800k records of some 100 bytes
    // through a 1 MiB segment reuse its memory 80 times over either way.
    if v["lanes"]["count"] == 0 {
        assert!(
            v["tail"].as_u64().unwrap() > 50 * (1 << 20),
            "ring did not wrap enough: {v}"
        );
    }
    assert_eq!(v["written"], PROCS * PER);
    assert_eq!(v["dropped"], 0);
}

#[test]
fn rust_producers_8_processes_100k_records_each() {
    let s = Scratch::new("rust8");
    let flusher = s.flusher_ready(&[
        "--size",
        RING,
        "--format",
        "%(name)s %(process)d %(message)s",
    ]);
    let workers: Vec<_> = (0..PROCS)
        .map(|id| s.worker_cmd(id, PER).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for w in workers {
        assert!(crate::common::wait_child(w, LIMIT).success());
    }
    let (ok, stderr) = flusher.stop();
    assert!(ok, "{stderr}");
    check_log(&s, &stderr);
    ring_wrapped(&s);
}

#[test]
fn pipe_8_processes_100k_lines_each() {
    let s = Scratch::new("pipe8");
    let flusher = s.flusher_ready(&[
        "--size",
        RING,
        "--format",
        "%(levelname)s %(name)s %(message)s",
    ]);
    let pipes: Vec<_> = (0..PROCS)
        .map(|id| {
            let mut child = s
                .cmd()
                .args([
                    "pipe",
                    "--shm",
                    &s.shm,
                    "--name",
                    &format!("p{id}"),
                    "--level",
                    "warning",
                ])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let feeder = std::thread::spawn(move || {
                let mut text = String::with_capacity(PER as usize * 32);
                for seq in 0..PER {
                    text.push_str(&format!("worker={id} seq={seq}\n"));
                }
                stdin.write_all(text.as_bytes()).unwrap();
            });
            (child, feeder)
        })
        .collect();
    for (child, feeder) in pipes {
        assert!(crate::common::wait_child(child, LIMIT).success());
        feeder.join().unwrap();
    }
    let (ok, stderr) = flusher.stop();
    assert!(ok, "{stderr}");
    check_log(&s, &stderr);
    let log = crate::common::read(&s.path("app.log"));
    assert!(
        log.lines().all(|l| l.starts_with("WARNING p")),
        "level and logger name carried"
    );
    ring_wrapped(&s);
}

//! Liveness that holds when the flusher and its producers live in different
//! PID namespaces (a sidecar flusher, `unshare --pid`): a stalled writer is
//! waited for, a dead one given up at once, `--exit-when-idle` waits for the
//! last producer; and a flusher that has just created its segment counts as
//! running, so producers writing at once block instead of dropping.
//!
//! The namespace tests run their side under `unshare --pid --fork
//! --mount-proc` (root: CI runs as root), behind `sh -c` so that the
//! ringflush process is not the namespace's pid 1, which ignores signals it
//! has no handler for (the fault injection stops or kills itself).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{read, wait_child, wait_until, Scratch, BIN};
use ringflush::verify;

const LIMIT: Duration = Duration::from_secs(60);

/// Whether this machine can make PID namespaces; says why not otherwise.
fn can_unshare(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::common::not_run(test, "unshare --pid needs root and util-linux", true);
    }
    ok
}

/// `ringflush ARGS` in a new PID namespace, in `s`'s directory.
fn in_pid_namespace(s: &Scratch, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.current_dir(s.dir.path())
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            "\"$@\"; exit $?",
            "sh",
            BIN,
        ])
        .args(args);
    c
}

/// The pids (as seen here) of `root`'s descendants whose command line
/// contains `word`.
fn descendants(root: u32, word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        for child in children.unwrap_or_default().split_whitespace() {
            let Ok(c) = child.parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(word)
                && cmdline.starts_with(BIN.as_bytes())
            {
                found.push(c);
            }
            todo.push(c);
        }
    }
    found
}

/// The one ringflush `word` process under `root`, once it runs.
fn the_process(root: &Child, word: &str) -> u32 {
    let mut pid = None;
    assert!(
        wait_until(LIMIT, || {
            pid = descendants(root.id(), word).first().copied();
            pid.is_some()
        }),
        "no {word} process under {}",
        root.id()
    );
    pid.unwrap()
}

fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| st.rsplit(')').next().unwrap().trim_start().starts_with('T'))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Whether `stat`, from here, shows the segment's flusher alive.
fn alive(s: &Scratch) -> bool {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    out.status.success()
        && serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|v| v["flusher"]["alive"] == true)
}

fn stat(s: &Scratch) -> serde_json::Value {
    let out = s.run(&["stat", "--shm", &s.shm, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Where the flusher runs and where the writers do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Apart {
    /// The flusher in its own PID namespace, the writers here.
    FlusherInside,
    /// The writers in their own PID namespace, the flusher here.
    WritersInside,
}

/// A flusher writing `app.log` with `extra` options, on the side `apart`
/// says, once `stat` from here sees it alive; and the process to wait for.
struct Side {
    /// The flusher's child (the flusher, or `unshare` around it).
    child: Child,
    /// The flusher's pid as seen from here.
    pid: u32,
}

impl Side {
    fn flusher(s: &Scratch, apart: Apart, extra: &[&str]) -> Side {
        let mut args = vec![
            "--shm",
            &s.shm,
            "--file",
            "app.log",
            "--format",
            "%(message)s",
        ];
        args.extend_from_slice(extra);
        let child = match apart {
            Apart::FlusherInside => in_pid_namespace(s, &args),
            Apart::WritersInside => {
                let mut c = s.cmd();
                c.args(&args);
                c
            }
        }
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let pid = match apart {
            Apart::FlusherInside => the_process(&child, "--shm"),
            Apart::WritersInside => child.id(),
        };
        assert!(wait_until(LIMIT, || alive(s)), "the flusher did not start");
        Side { child, pid }
    }

    /// SIGTERM; its stderr once it has exited, after checking it exited 0.
    fn stop(mut self) -> String {
        signal(self.pid, libc::SIGTERM);
        self.wait()
    }

    fn wait(&mut self) -> String {
        let mut err = self.child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            text
        });
        let status = wait_child(std::mem::replace(&mut self.child, dummy()), LIMIT);
        let text = reader.join().unwrap();
        assert!(status.success(), "flusher: {status}\n{text}");
        text
    }
}

/// A finished child to leave in place of one that was waited for.
fn dummy() -> Child {
    let mut c = Command::new("true").spawn().unwrap();
    let _ = c.wait();
    c
}

/// A `ringflush worker` writing `count` numbered records as `id`, with a
/// fault, on the side `apart` says.
fn writer(s: &Scratch, apart: Apart, id: u64, count: u64, fault: Option<&str>) -> Child {
    let (id, count) = (id.to_string(), count.to_string());
    let args = ["worker", "--shm", &s.shm, "--id", &id, "--count", &count];
    let mut cmd = match apart {
        Apart::WritersInside => in_pid_namespace(s, &args),
        Apart::FlusherInside => {
            let mut c = s.cmd();
            c.args(args);
            c
        }
    };
    if let Some(f) = fault {
        cmd.env("RINGFLUSH_FAULT", f);
    }
    cmd.stdout(Stdio::null()).spawn().unwrap()
}

/// The pid, as seen from here, of the worker `child` runs.
fn worker_pid(child: &Child, apart: Apart) -> u32 {
    match apart {
        Apart::WritersInside => the_process(child, "worker"),
        Apart::FlusherInside => child.id(),
    }
}

/// Every record of the workers in `expected` exactly once, in order.
fn all_there(s: &Scratch, expected: &BTreeMap<u64, u64>) -> bool {
    let files = verify::log_files(&s.path("app.log")).unwrap();
    verify::check(&files, expected).is_ok_and(|t| t.ok())
}

/// A writer stopped between claim and commit (a paused container, a
/// freezer cgroup) for many dead-writer checks, then resumed: its record
/// arrives and nothing is abandoned, wherever the two live.
fn stopped_writer_is_waited_for(test: &str, apart: Apart) {
    if !can_unshare(test) {
        return;
    }
    let s = Scratch::new("ns-stop");
    let side = Side::flusher(&s, apart, &["--unblock-timeout", "60"]);
    let w = writer(&s, apart, 0, 20, Some("stop_before_commit:10"));
    let pid = worker_pid(&w, apart);
    assert!(wait_until(LIMIT, || stopped(pid)), "the writer stopped");
    // Well past the dead-writer check (200 ms), which runs every 200 ms.
    std::thread::sleep(Duration::from_millis(1500));
    let v = stat(&s);
    assert_eq!(v["abandoned"], 0, "a live writer's record was given up");
    // stat, from here, tells both alive, and which namespace each is in.
    let here = &v["pid_namespace"];
    let producers = v["producers"].as_array().unwrap();
    assert!(producers.len() == 1 && producers[0]["alive"] == true, "{v}");
    assert_eq!(v["flusher"]["alive"], true, "{v}");
    let (inside, outside) = match apart {
        Apart::FlusherInside => (
            &v["flusher"]["pid_namespace"],
            &producers[0]["pid_namespace"],
        ),
        Apart::WritersInside => (
            &producers[0]["pid_namespace"],
            &v["flusher"]["pid_namespace"],
        ),
    };
    assert!(inside != here && outside == here, "{v}");
    signal(pid, libc::SIGCONT);
    assert!(wait_child(w, LIMIT).success());
    let expected = BTreeMap::from([(0, 20)]);
    assert!(
        wait_until(LIMIT, || all_there(&s, &expected)),
        "{}",
        read(&s.path("app.log"))
    );
    let err = side.stop();
    assert_eq!(stat(&s)["abandoned"], 0, "{err}");
    assert!(!err.contains("abandoned"), "{err}");
}

#[test]
fn a_stopped_writer_is_waited_for_by_a_flusher_in_another_pid_namespace() {
    stopped_writer_is_waited_for(
        "a_stopped_writer_is_waited_for_by_a_flusher_in_another_pid_namespace",
        Apart::FlusherInside,
    );
}

#[test]
fn a_stopped_writer_in_another_pid_namespace_is_waited_for() {
    stopped_writer_is_waited_for(
        "a_stopped_writer_in_another_pid_namespace_is_waited_for",
        Apart::WritersInside,
    );
}

/// A writer SIGKILLed between claim and commit: its record is given up
/// because its writer died (with a 60 s unblock timeout, only the
/// dead-writer check can free the ring within the minute the test waits),
/// and the next writer's records arrive.
fn killed_writer_is_given_up(test: &str, apart: Apart) {
    if !can_unshare(test) {
        return;
    }
    let s = Scratch::new("ns-kill");
    let side = Side::flusher(&s, apart, &["--unblock-timeout", "60"]);
    let w = writer(&s, apart, 0, 20, Some("before_commit:10"));
    let _ = wait_child(w, LIMIT);
    let next = writer(&s, apart, 1, 20, None);
    assert!(wait_child(next, LIMIT).success());
    // The killed writer's first 9 records, then the next writer's 20.
    let expected = BTreeMap::from([(0, 9), (1, 20)]);
    assert!(
        wait_until(LIMIT, || all_there(&s, &expected)),
        "{}",
        read(&s.path("app.log"))
    );
    // Counted once the flusher has seen the writer's registration gone (in
    // a lane: when it recycles the lane, at its once-a-second sweep).
    assert!(
        wait_until(LIMIT, || stat(&s)["abandoned"] == 1),
        "{}",
        stat(&s)
    );
    let err = side.stop();
    assert!(err.contains("writer died"), "{err}");
    let first: Vec<String> = read(&s.path("app.log"))
        .lines()
        .filter(|l| l.starts_with("worker=0 "))
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = (0..9).map(|n| format!("worker=0 seq={n}")).collect();
    assert_eq!(first, want);
}

#[test]
fn a_killed_writer_is_given_up_by_a_flusher_in_another_pid_namespace() {
    killed_writer_is_given_up(
        "a_killed_writer_is_given_up_by_a_flusher_in_another_pid_namespace",
        Apart::FlusherInside,
    );
}

#[test]
fn a_killed_writer_in_another_pid_namespace_is_given_up() {
    killed_writer_is_given_up(
        "a_killed_writer_in_another_pid_namespace_is_given_up",
        Apart::WritersInside,
    );
}

/// `--exit-when-idle` in its own PID namespace exits only once the last
/// producer (here, outside it) has gone, with every line written.
#[test]
fn exit_when_idle_in_another_pid_namespace_waits_for_the_last_producer() {
    let test = "exit_when_idle_in_another_pid_namespace_waits_for_the_last_producer";
    if !can_unshare(test) {
        return;
    }
    let s = Scratch::new("ns-idle");
    let mut side = Side::flusher(&s, Apart::FlusherInside, &["--exit-when-idle"]);
    // 40 records over 4 s, twice the flusher's idle grace.
    let w = s
        .cmd()
        .args([
            "worker",
            "--shm",
            &s.shm,
            "--id",
            "0",
            "--count",
            "40",
            "--pause-us",
            "100000",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_child(w, LIMIT).success());
    let flusher_ran_past_the_producer = side.child.try_wait().unwrap().is_none();
    let err = side.wait();
    assert!(
        flusher_ran_past_the_producer,
        "exited with a producer alive: {err}"
    );
    assert!(all_there(&s, &BTreeMap::from([(0, 40)])), "{err}");
}

/// A flusher counts as running from the moment its segment can be opened:
/// producers that write at full speed from the instant the segment exists
/// (into a 64 KiB ring, full within microseconds) wait for it instead of
/// dropping. 20 runs.
#[test]
fn producers_writing_from_the_instant_the_segment_exists_drop_nothing() {
    for run in 0..20 {
        let s = Scratch::new("startup");
        let f = s.flusher(&["--size", "64K", "--format", "%(message)s"]);
        let deadline = std::time::Instant::now() + LIMIT;
        while !s.shm_file().exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "run {run}: no segment"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        let workers: Vec<Child> = (0..2)
            .map(|id| {
                s.worker_cmd(id, 20_000)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for w in workers {
            assert!(
                wait_child(w, LIMIT).success(),
                "run {run}: a worker dropped records"
            );
        }
        let expected = BTreeMap::from([(0, 20_000), (1, 20_000)]);
        assert!(wait_until(LIMIT, || all_there(&s, &expected)), "run {run}");
        assert_eq!(stat(&s)["dropped"], 0, "run {run}");
        let (ok, err) = f.stop();
        assert!(ok, "run {run}: {err}");
    }
}

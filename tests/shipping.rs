//! The chain beyond one machine, with a shipper no one here wrote: rsyslog's
//! `imfile` tails the flusher's file and forwards every line over TCP to a
//! second rsyslog (the "central" one) on 127.0.0.1, which writes what it
//! receives to a file. Four producers, a rotation every second, gzip on:
//! every record must arrive at the central instance exactly once, also
//! when the flusher is SIGKILLed and restarted mid-run.
//!
//! Both rsyslogs run unprivileged-style in the foreground with their own
//! configuration (`rsyslogd -n -f`); `.ci/run` installs Debian's rsyslog.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_child, wait_until, Scratch};

const LIMIT: Duration = Duration::from_secs(180);
const WORKERS: u64 = 4;
const PER_WORKER: u64 = 50_000;

fn rsyslogd() -> Option<&'static str> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An rsyslogd in the foreground, killed when dropped.
struct Rsyslog(Child);

impl Rsyslog {
    fn start(s: &Scratch, name: &str, conf: String) -> Self {
        let work = s.path(name);
        std::fs::create_dir_all(&work).unwrap();
        let conf_path = s.path(&format!("{name}.conf"));
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(rsyslogd().unwrap())
            .args(["-n", "-f"])
            .arg(&conf_path)
            .arg("-i")
            .arg(s.path(&format!("{name}.pid")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Rsyslog(child)
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The central rsyslog writing each message's text, one per line; then the
/// edge rsyslog tailing `app.log` and forwarding to it.
fn relay(s: &Scratch) -> (Rsyslog, Rsyslog) {
    let port = free_port();
    let central = Rsyslog::start(
        s,
        "central",
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="text" type="string" string="%msg:2:$%\n")
action(type="omfile" file="{out}" template="text")
"#,
            work = s.path("central").display(),
            out = s.path("received.log").display(),
        ),
    );
    // The central instance listens before the edge forwards.
    assert!(wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let edge = Rsyslog::start(
        s,
        "edge",
        format!(
            r#"global(workDirectory="{work}")
module(load="imfile" mode="inotify")
input(type="imfile" file="{log}" tag="app:")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="RSYSLOG_ForwardFormat")
"#,
            work = s.path("edge").display(),
            log = s.path("app.log").display(),
        ),
    );
    (central, edge)
}

/// How often each `worker=N seq=M` line arrived at the central instance.
fn received(s: &Scratch) -> BTreeMap<(u64, u64), u32> {
    let mut seen = BTreeMap::new();
    for line in common::read(&s.path("received.log")).lines() {
        if let Some(rest) = line.strip_prefix("worker=") {
            if let Some((w, q)) = rest.split_once(" seq=") {
                if let (Ok(w), Ok(q)) = (w.parse(), q.parse()) {
                    *seen.entry((w, q)).or_insert(0) += 1;
                }
            }
        }
    }
    seen
}

fn run(test: &str, kill_flusher: bool) {
    if rsyslogd().is_none() {
        return common::not_run(test, "rsyslog is not installed (.ci/run installs it)", true);
    }
    let s = Scratch::new(if kill_flusher { "relaykill" } else { "relay" });
    let (_central, _edge) = relay(&s);
    let args = [
        "--format",
        "%(message)s",
        "--when",
        "S",
        "--compress",
        "gzip",
    ];
    let mut flusher = s.flusher_ready(&args);
    let workers: Vec<Child> = (0..WORKERS)
        .map(|id| {
            s.worker_cmd(id, PER_WORKER)
                .args(["--pause-us", "10"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    if kill_flusher {
        for _ in 0..2 {
            std::thread::sleep(Duration::from_millis(700));
            flusher.signal(libc::SIGKILL);
            let _ = flusher.wait();
            flusher = s.flusher(&args);
        }
    }
    for w in workers {
        assert!(wait_child(w, LIMIT).success());
    }
    let total = (WORKERS * PER_WORKER) as usize;
    let arrived = wait_until(LIMIT, || received(&s).len() >= total);
    let (ok, err) = flusher.stop();
    assert!(ok, "{err}");
    let seen = received(&s);
    let doubled = seen.values().filter(|&&n| n > 1).count();
    let rotated = common::app_logs(s.dir.path()).len() - 1;
    eprintln!(
        "{test}: {} of {total} records arrived, {doubled} more than once, {rotated} rotated files",
        seen.len()
    );
    assert!(arrived, "{} of {total} arrived", seen.len());
    assert_eq!(doubled, 0);
    assert!(rotated >= 2, "{rotated} rotated files");
}

#[test]
fn rsyslog_relays_every_record_once_across_rotations_and_gzip() {
    run(
        "rsyslog_relays_every_record_once_across_rotations_and_gzip",
        false,
    );
}

#[test]
fn rsyslog_relays_every_record_once_across_a_killed_flusher() {
    run(
        "rsyslog_relays_every_record_once_across_a_killed_flusher",
        true,
    );
}

//! The chain beyond one machine, with a shipper no one here wrote: rsyslog's
//! `imfile` tails the flusher's file and forwards every line over TCP to a
//! second rsyslog (the "central" one) on 127.0.0.1, which writes what it
//! receives to a file. Four producers, a rotation every second, gzip on:
//! every record must arrive at the central instance exactly once, also
//! when the flusher is SIGKILLed and restarted mid-run.
//!
//! Both rsyslogs run unprivileged-style in the foreground with their own
//! configuration (`rsyslogd -n -f`); `.ci/run` installs Debian's rsyslog.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{wait_child, wait_until, Scratch};

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
    for line in crate::common::read(&s.path("received.log")).lines() {
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
        return crate::common::not_run(
            test,
            "rsyslog is not installed (.ci/run installs it)",
            true,
        );
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
    let rotated = crate::common::app_logs(s.dir.path()).len() - 1;
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

/// What a central store receives from the JSON presets, through the real
/// binary: every line one JSON object with the schema's fields.
fn preset_lines(format: &str, service: Option<&str>) -> Vec<serde_json::Value> {
    use ringflush_producer::{level, Producer, Record};
    let s = Scratch::new(&format!("preset-{}", &format[5..]));
    let mut args = vec!["--format", format];
    if let Some(name) = service {
        args.extend(["--service-name", name]);
    }
    let f = s.flusher(&args);
    let p = Producer::open(&s.shm).unwrap();
    p.write(&Record {
        level: level::ERROR,
        line: 42,
        thread_id: 7,
        thread_name: b"worker-1",
        logger: b"app.db",
        pathname: b"/srv/app/db.py",
        func: b"query",
        module: b"db",
        extra: br#"{"request_id":"r-9","exc_text":"Traceback (most recent call last):\n  boom"}"#,
        message: b"query failed",
        ..Record::default()
    })
    .unwrap();
    p.log(level::INFO, "app", "plain").unwrap();
    let log = s.path("app.log");
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 2)
    }));
    let (ok, e) = f.stop();
    assert!(ok, "{e}");
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_ecs_lines_carry_the_elastic_common_schema() {
    let v = preset_lines("json:ecs", Some("shop"));
    let (err, info) = (&v[0], &v[1]);
    assert_eq!(err["log.level"], "error");
    assert_eq!(err["message"], "query failed");
    assert_eq!(err["ecs"]["version"], "1.6.0");
    assert_eq!(err["log"]["logger"], "app.db");
    assert_eq!(err["log"]["origin"]["file"]["name"], "db.py");
    assert_eq!(err["log"]["origin"]["file"]["line"], 42);
    assert_eq!(err["log"]["origin"]["function"], "query");
    assert_eq!(err["process"]["pid"], std::process::id());
    assert_eq!(err["process"]["thread"]["id"], 7);
    assert_eq!(err["process"]["thread"]["name"], "worker-1");
    assert!(err["error"]["stack_trace"]
        .as_str()
        .unwrap()
        .starts_with("Traceback"));
    assert_eq!(err["request_id"], "r-9");
    assert_eq!(err["service"]["name"], "shop");
    assert_eq!(err["event"]["dataset"], "shop.log");
    assert_eq!(info["log.level"], "info");
    assert!(info.get("error").is_none());
    let ts = info["@timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
}

#[test]
fn json_otel_lines_carry_the_opentelemetry_log_data_model() {
    let v = preset_lines("json:otel", None);
    let (err, info) = (&v[0], &v[1]);
    assert_eq!(err["severity_text"], "ERROR");
    assert_eq!(err["severity_number"], 17);
    assert_eq!(err["body"], "query failed");
    assert_eq!(err["instrumentation_scope"]["name"], "app.db");
    let a = &err["attributes"];
    assert_eq!(a["code.filepath"], "/srv/app/db.py");
    assert_eq!(a["code.lineno"], 42);
    assert_eq!(a["code.function"], "query");
    assert_eq!(a["thread.id"], 7);
    assert_eq!(a["request_id"], "r-9");
    assert!(a["exception.stacktrace"]
        .as_str()
        .unwrap()
        .starts_with("Traceback"));
    assert_eq!(err["resource"]["service.name"], "unknown_service");
    assert_eq!(err["resource"]["process.pid"], std::process::id());
    assert_eq!(info["severity_number"], 9);
    let ns: u64 = info["timestamp"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(now - ns < 120_000_000_000, "{ns} is not about now");
}

#[test]
fn a_service_name_without_a_preset_and_an_unknown_preset_are_refused() {
    let s = Scratch::new("preset-bad");
    for (args, said) in [
        (
            &["--service-name", "shop"][..],
            "--service-name applies to --format json:ecs or json:otel only",
        ),
        (
            &["--format", "json:gelf"][..],
            "the JSON presets are json, json:ecs and json:otel",
        ),
    ] {
        let out = s.flusher_cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(said), "{err}");
        assert_eq!(err.matches("ringflush:").count(), 1, "said once: {err}");
    }
}

//! The `log` backend into a real flusher: the level and per-target filter
//! (also for the records tracing's `log` feature makes of span activity),
//! key-values into `--format json`, and the stderr echo.
//!
//! A process has one global logger, so each test that installs one runs
//! its logging part in a child process: this test binary run again on the
//! ignored test `log_backend::child`, which does what `RINGFLUSH_LOG_SCENARIO` says.

use std::process::{Command, Stdio};

use crate::common::{lines_after, Scratch};
use ringflush_producer::RingLogger;

/// Run `scenario` in a child process logging into `s`'s segment, with
/// extra environment; returns its stderr.
fn run_child(s: &Scratch, scenario: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "log_backend::child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("RINGFLUSH_LOG_SCENARIO", scenario)
        .env("RINGFLUSH_LOG_SHM", &s.shm)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {scenario} failed: {}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The scenarios, run in a child process by `run_child`.
#[test]
#[ignore = "run by the other tests in a child process"]
fn child() {
    let scenario = std::env::var("RINGFLUSH_LOG_SCENARIO").expect("run by run_child");
    let shm = std::env::var("RINGFLUSH_LOG_SHM").unwrap();
    match scenario.as_str() {
        // The issue's case: tracing (its `log` feature on, no subscriber)
        // turns span activity into TRACE records of `tracing::span::active`
        // whenever the span's own level passes `log::max_level()`; they
        // used to be written because `enabled` said yes to everything.
        "level" => {
            ringflush_producer::init(&shm, log::LevelFilter::Info).unwrap();
            let span = tracing::info_span!("request", id = 7);
            span.in_scope(|| {
                log::info!(target: "app", "inside the span");
                log::debug!(target: "app", "debug: below the level");
            });
            drop(span);
            log::trace!(target: "app", "trace: below the level");
            log::warn!(target: "app", "last");
            // What tracing asks before writing span activity.
            let meta = log::Metadata::builder()
                .level(log::Level::Trace)
                .target("tracing::span::active")
                .build();
            assert!(!log::logger().enabled(&meta));
        }
        "filter" => {
            // The spec comes from the environment variable the parent set.
            RingLogger::builder()
                .filter("error")
                .filter_env("RINGFLUSH_TEST_LOG")
                .stderr(true)
                .init(&shm)
                .unwrap();
            assert_eq!(log::max_level(), log::LevelFilter::Debug);
            let enabled = |level, target| {
                let meta = log::Metadata::builder().level(level).target(target).build();
                log::logger().enabled(&meta)
            };
            assert!(enabled(log::Level::Debug, "app::db"));
            assert!(!enabled(log::Level::Debug, "app::http"));
            assert!(!enabled(log::Level::Trace, "tracing::span::active"));
            let span = tracing::info_span!("request");
            span.in_scope(|| {
                log::debug!(target: "app::db", "kept: db debug");
                log::debug!(target: "app::db::pool", "kept: pool debug");
                log::trace!(target: "app::db", "dropped: db trace");
                log::debug!(target: "app::http", "dropped: http debug");
                log::info!(target: "app::http", user = "ann"; "kept: http info");
                log::info!(target: "noisy", "dropped: noisy is off");
            });
        }
        "kv" => {
            ringflush_producer::init_with_filter(&shm, "info").unwrap();
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
            log::info!(
                target: "app::auth",
                user_id = 42,
                name = "ann",
                admin = false,
                ratio = 0.25,
                initial = 'a',
                peer:% = peer,
                tags:? = ["a", "b"];
                "login"
            );
            log::info!(target: "app::auth", "no key-values");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn level_filter_keeps_tracing_span_activity_out() {
    let s = Scratch::new("lb-level");
    let f = s.flusher_ready(&["--format", "%(levelname)s %(name)s %(message)s"]);
    run_child(&s, "level", &[]);
    let lines = lines_after(&s, f, 3);
    // tracing logs a span's creation at the span's own level (INFO here),
    // its activity (`-> request;`, `<- request;`) and its end at TRACE.
    assert_eq!(
        lines,
        [
            "INFO it::log_backend request; id=7",
            "INFO app inside the span",
            "WARNING app last"
        ]
    );
}

#[test]
fn per_target_filter_from_the_environment_and_stderr_echo() {
    let s = Scratch::new("lb-filter");
    let f = s.flusher_ready(&["--format", "%(levelname)s %(name)s %(message)s"]);
    let stderr = run_child(
        &s,
        "filter",
        &[("RINGFLUSH_TEST_LOG", "info,app::db=debug,noisy=off")],
    );
    let lines = lines_after(&s, f, 4);
    assert_eq!(
        lines,
        [
            // The span's creation, at its INFO level (see the test above).
            "INFO tracing::span request;",
            "DEBUG app::db kept: db debug",
            "DEBUG app::db::pool kept: pool debug",
            r#"INFO app::http kept: http info user="ann""#,
        ]
    );
    // The same three records on stderr, as `<UTC time> LEVEL target: message`.
    let echoed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("20") && l.contains(": kept"))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        echoed,
        [
            "DEBUG app::db: kept: db debug",
            "DEBUG app::db::pool: kept: pool debug",
            r#"INFO  app::http: kept: http info user="ann""#,
        ],
        "{stderr}"
    );
    assert!(!stderr.contains("dropped"), "{stderr}");
}

#[test]
fn unset_variable_keeps_the_spec_and_a_bad_spec_is_an_error() {
    let s = Scratch::new("lb-bad");
    let logger = RingLogger::builder()
        .filter_env("RINGFLUSH_TEST_UNSET_LOG_SPEC")
        .build(ringflush_producer::Producer::open(&s.shm).unwrap())
        .unwrap();
    // Not set: the builder's own spec (the default, "info") is used.
    assert_eq!(logger.max_level(), log::LevelFilter::Info);
    let e = RingLogger::builder()
        .filter("info,app::db=loud")
        .init("/rf-test-never-created")
        .unwrap_err();
    assert!(matches!(e, ringflush_producer::InitError::Filter(_)));
    assert!(e.to_string().contains("info,app::db=loud"), "{e}");
}

#[test]
fn key_values_are_json_fields() {
    let s = Scratch::new("lb-kv");
    let f = s.flusher_ready(&["--format", "json"]);
    run_child(&s, "kv", &[]);
    let lines = lines_after(&s, f, 2);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["name"], "app::auth");
    assert_eq!(v["levelname"], "INFO");
    assert_eq!(v["user_id"], 42);
    assert_eq!(v["extra.name"], "ann"); // `name` is a standard key
    assert_eq!(v["admin"], false);
    assert_eq!(v["ratio"], 0.25);
    assert_eq!(v["initial"], "a");
    assert_eq!(v["peer"], "127.0.0.1:8080");
    assert_eq!(v["tags"], r#"["a", "b"]"#);
    assert_eq!(
        v["message"],
        r#"login user_id=42 name="ann" admin=false ratio=0.25 initial="a" peer=127.0.0.1:8080 tags=["a", "b"]"#
    );
    let v: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(v["message"], "no key-values");
    assert!(v.get("user_id").is_none());
}

/// A logger built, not installed, used as a `log::Log` directly: the
/// message without key-values for a JSON-only flusher.
#[test]
fn bare_messages_keep_key_values_in_extra_only() {
    use log::Log;
    let s = Scratch::new("lb-bare");
    let f = s.flusher_ready(&["--format", "json"]);
    let logger = RingLogger::builder()
        .filter("debug")
        .with_fields_in_message(false)
        .build(ringflush_producer::Producer::open(&s.shm).unwrap())
        .unwrap();
    let kvs = [("user_id", 42)];
    for level in [log::Level::Info, log::Level::Trace, log::Level::Warn] {
        logger.log(
            &log::Record::builder()
                .level(level)
                .target("app")
                .args(format_args!("login"))
                .key_values(&kvs)
                .build(),
        );
    }
    let lines = lines_after(&s, f, 2);
    assert_eq!(lines.len(), 2, "the trace record is filtered: {lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["message"], "login");
    assert_eq!(v["user_id"], 42);
}

//! `RingLayer` (the producer's `tracing` feature) into a real flusher: spans
//! and fields in text formats exactly as tracing-subscriber's fmt layer
//! shows them, structured in `--format json`, levels and targets, span
//! fields rendered once, and composition with `EnvFilter` and a fmt layer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{lines_after, Scratch};
use ringflush_producer::RingLayer;
use tracing_subscriber::prelude::*;

/// A `MakeWriter` collecting what a fmt layer writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// An error with a cause, for the `name.sources=[...]` rendering.
#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request failed")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The events of the text and JSON tests: nested spans with fields of every
/// kind, a field recorded later, an event with no message.
fn emit_events() {
    tracing::info!(target: "app", "plain");
    let outer = tracing::info_span!("outer", a = 1, r#type = "x y");
    let _o = outer.enter();
    let inner = tracing::debug_span!("inner", ok = true, path = ?"/p", user = %"ann");
    let _i = inner.enter();
    tracing::warn!(target: "app::db", n = 42u64, neg = -3i64, ratio = 0.5, big = 1u128 << 100, "took {} ms", 1234);
    let late = tracing::info_span!("late", status = tracing::field::Empty, no_fields = 1);
    late.record("status", 503);
    late.in_scope(|| {
        let err = Outer(std::io::Error::other("connection reset"));
        tracing::error!(
            target: "app::http",
            error = &err as &(dyn std::error::Error + 'static),
            "upstream"
        )
    });
    tracing::info!(target: "app", only = "fields");
    tracing::info!(target: "app", "two\nlines \"quoted\"");
}

/// In text formats the message is what tracing-subscriber's fmt layer
/// prints after its level and target, byte for byte: checked against a fmt
/// layer in the same subscriber (which also shows that they compose).
#[test]
fn text_formats_show_spans_and_fields_like_the_fmt_layer() {
    let s = Scratch::new("tl-text");
    let f = s.flusher_ready(&["--format", "%(name)s %(message)s"]);
    let captured = Captured::default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(captured.clone())
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false);
    let subscriber = tracing_subscriber::registry()
        .with(RingLayer::open(&s.shm).unwrap())
        .with(fmt)
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    tracing::subscriber::with_default(subscriber, emit_events);
    let lines = lines_after(&s, f, 6);
    let fmt_text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let fmt_lines: Vec<&str> = fmt_text.lines().collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(fmt_lines.len(), 6, "{fmt_text}");
    let targets = ["app", "app::db", "app::http", "app", "app", "lines"];
    for ((ours, theirs), target) in lines.iter().zip(&fmt_lines).zip(targets) {
        if target == "lines" {
            continue; // the second physical line of the last record
        }
        assert_eq!(ours, &format!("{target} {theirs}"));
    }
    // And what that is, spelled out.
    assert_eq!(lines[0], "app plain");
    assert_eq!(
        lines[1],
        r#"app::db outer{a=1 type="x y"}:inner{ok=true path="/p" user=ann}: took 1234 ms n=42 neg=-3 ratio=0.5 big=1267650600228229401496703205376"#
    );
    assert_eq!(
        lines[2],
        r#"app::http outer{a=1 type="x y"}:inner{ok=true path="/p" user=ann}:late{no_fields=1 status=503}: upstream error=request failed error.sources=[connection reset]"#
    );
    assert_eq!(
        lines[3],
        r#"app outer{a=1 type="x y"}:inner{ok=true path="/p" user=ann}: only="fields""#
    );
}

/// With `--format json` the fields are structured: the event's at the top
/// level, typed; the spans as `spans: [{name, fields...}]` from the root.
#[test]
fn json_has_event_fields_and_spans_structured() {
    let s = Scratch::new("tl-json");
    let f = s.flusher_ready(&["--format", "json"]);
    let subscriber = tracing_subscriber::registry().with(RingLayer::open(&s.shm).unwrap());
    let line = line!() + 1;
    tracing::subscriber::with_default(subscriber, emit_events);
    let lines = lines_after(&s, f, 5);
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    assert_eq!(v[0]["message"], "plain");
    assert_eq!(v[0]["name"], "app");
    assert_eq!(v[0]["levelname"], "INFO");
    assert!(v[0].get("spans").is_none(), "{}", v[0]);
    assert_eq!(v[0]["filename"], "tracing_layer.rs");
    assert_eq!(v[0]["module"], "it::tracing_layer");
    assert!(v[0]["lineno"].as_u64().unwrap() < line.into());

    let w = &v[1];
    assert_eq!(w["levelname"], "WARNING");
    assert_eq!(w["levelno"], 30);
    assert_eq!(w["name"], "app::db");
    assert_eq!(
        w["message"],
        r#"outer{a=1 type="x y"}:inner{ok=true path="/p" user=ann}: took 1234 ms n=42 neg=-3 ratio=0.5 big=1267650600228229401496703205376"#
    );
    assert_eq!(w["n"], 42);
    assert_eq!(w["neg"], -3);
    assert_eq!(w["ratio"], 0.5);
    // As tracing-subscriber's JSON formatter: 128-bit integers as text.
    assert_eq!(w["big"], "1267650600228229401496703205376");
    assert_eq!(
        w["spans"],
        serde_json::json!([
            {"name": "outer", "a": 1, "type": "x y"},
            {"name": "inner", "ok": true, "path": "\"/p\"", "user": "ann"},
        ])
    );

    let e = &v[2];
    assert_eq!(e["levelname"], "ERROR");
    assert_eq!(e["error"], "request failed");
    // The text shows error.sources=[connection reset]; so does the JSON.
    assert_eq!(e["error.sources"], "connection reset");
    assert_eq!(
        e["spans"][2],
        serde_json::json!({"name": "late", "no_fields": 1, "status": 503})
    );
    assert_eq!(v[3]["only"], "fields");
    assert!(v[4]["message"]
        .as_str()
        .unwrap()
        .ends_with("}: two\nlines \"quoted\""));
}

/// Fields named like the keys the JSON already has (a span's `name`, the
/// event's `spans`) do not overwrite them; 128-bit integers that fit 64
/// bits are numbers.
#[test]
fn json_keys_are_never_overwritten_by_fields() {
    let s = Scratch::new("tl-clash");
    let f = s.flusher_ready(&["--format", "json"]);
    let subscriber = tracing_subscriber::registry().with(RingLayer::open(&s.shm).unwrap());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("req", name = "spanname");
        let _e = span.enter();
        tracing::info!(spans = "evspans", small = 7u128, negative = -7i128, "m");
    });
    let lines = lines_after(&s, f, 1);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        v["spans"],
        serde_json::json!([{"name": "req", "extra.name": "spanname"}])
    );
    assert_eq!(v["extra.spans"], "evspans");
    assert_eq!(v["small"], 7);
    assert_eq!(v["negative"], -7);
    assert_eq!(
        v["message"],
        r#"req{name="spanname"}: m spans="evspans" small=7 negative=-7"#
    );
}

/// `with_fields_in_message(false)`: the message is the event's alone (for
/// a JSON-only flusher); `extra` is unchanged.
#[test]
fn bare_messages_keep_fields_in_extra_only() {
    let s = Scratch::new("tl-bare");
    let f = s.flusher_ready(&["--format", "json"]);
    let layer = RingLayer::open(&s.shm)
        .unwrap()
        .with_fields_in_message(false);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("req", id = 7);
        let _e = span.enter();
        tracing::info!(target: "app", user = "ann", "served");
        tracing::info!(target: "app", user = "bob");
    });
    let lines = lines_after(&s, f, 2);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["message"], "served");
    assert_eq!(v["user"], "ann");
    assert_eq!(v["spans"], serde_json::json!([{"name": "req", "id": 7}]));
    let v: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(v["message"], "");
    assert_eq!(v["user"], "bob");
}

/// Records as the flusher finds them in the ring: a message alone carries
/// no entries (the flusher formats it as it is), anything else does; two
/// `message` fields join as `a b`, written once.
#[test]
fn a_bare_message_has_no_entries_and_messages_join() {
    let s = Scratch::new("tl-raw");
    // Read back from the shared ring below: a segment without lanes.
    let _made = ringflush_producer::Producer::builder(&s.shm)
        .lanes(0)
        .open()
        .unwrap();
    let layer = RingLayer::open(&s.shm).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("alone");
        tracing::info!(n = 1, "with a field");
        tracing::info!(message = "a", message = "b");
        tracing::info_span!("s").in_scope(|| tracing::info!("in a span"));
    });
    let seg =
        ringflush_ring::Segment::open(&s.shm, &ringflush_ring::SegmentOptions::inspect()).unwrap();
    let mut consumer = seg.acquire_consumer().unwrap();
    let mut got = Vec::new();
    consumer.drain(u64::MAX, |r| {
        let rec = ringflush_ring::codec::Record::decode(r.payload).unwrap();
        got.push((
            String::from_utf8(rec.message.to_vec()).unwrap(),
            rec.extra.to_vec(),
        ));
        true
    });
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], ("alone".to_string(), vec![]));
    assert!(ringflush_ring::fields::binary::is_binary(&got[1].1));
    assert_eq!(got[2], ("a b".to_string(), vec![]));
    let (mut text, mut json) = (String::new(), String::new());
    ringflush_ring::fields::expand(&got[3].0, &got[3].1, &mut text, &mut json).unwrap();
    assert_eq!(
        (text.as_str(), json.as_str()),
        ("s: in a span", r#"{"spans":[{"name":"s"}]}"#)
    );
}

/// Levels map as the `log` backend maps them; target, file, line, module
/// and thread name are the record's.
#[test]
fn levels_targets_and_locations() {
    let s = Scratch::new("tl-levels");
    let f = s.flusher_ready(&[
        "--format",
        "%(levelname)s %(levelno)d|%(name)s|%(filename)s|%(module)s|%(lineno)d|%(threadName)s|%(message)s",
    ]);
    let subscriber = tracing_subscriber::registry()
        .with(RingLayer::open(&s.shm).unwrap())
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let line = line!() + 5;
    std::thread::Builder::new()
        .name("worker-1".into())
        .spawn(move || {
            tracing::subscriber::with_default(subscriber, || {
                tracing::trace!(target: "t", "t");
                tracing::debug!(target: "t", "d");
                tracing::info!(target: "t", "i");
                tracing::warn!(target: "t", "w");
                tracing::error!(target: "t", "e");
            })
        })
        .unwrap()
        .join()
        .unwrap();
    let lines = lines_after(&s, f, 5);
    let expected: Vec<String> = [
        ("TRACE 5", "t"),
        ("DEBUG 10", "d"),
        ("INFO 20", "i"),
        ("WARNING 30", "w"),
        ("ERROR 40", "e"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (level, m))| {
        format!(
            "{level}|t|tracing_layer.rs|it::tracing_layer|{}|worker-1|{m}",
            line + i as u32
        )
    })
    .collect();
    assert_eq!(lines, expected);
}

/// The README's composition: `EnvFilter` with per-target directives.
#[test]
fn composes_with_env_filter() {
    let s = Scratch::new("tl-filter");
    let f = s.flusher_ready(&["--format", "%(levelname)s %(name)s %(message)s"]);
    let subscriber = tracing_subscriber::registry()
        .with(RingLayer::open(&s.shm).unwrap())
        .with(tracing_subscriber::EnvFilter::new("info,app::db=debug"));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "app::db", "kept: db debug");
        tracing::debug!(target: "app::db::pool", "kept: pool debug");
        tracing::trace!(target: "app::db", "dropped: db trace");
        tracing::debug!(target: "app::http", "dropped: http debug");
        tracing::info!(target: "app::http", "kept: http info");
    });
    let lines = lines_after(&s, f, 3);
    assert_eq!(
        lines,
        [
            "DEBUG app::db kept: db debug",
            "DEBUG app::db::pool kept: pool debug",
            "INFO app::http kept: http info",
        ]
    );
}

/// Counts how often it is formatted.
struct Counted(Arc<AtomicUsize>);

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fetch_add(1, Ordering::SeqCst);
        f.write_str("counted")
    }
}

/// A span's fields are rendered when the span is created (and when a field
/// is recorded), never again per event.
#[test]
fn span_fields_are_rendered_once() {
    let s = Scratch::new("tl-once");
    let f = s.flusher_ready(&["--format", "%(message)s"]);
    let subscriber = tracing_subscriber::registry().with(RingLayer::open(&s.shm).unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(subscriber, || {
        let span =
            tracing::info_span!("s", c = ?Counted(count.clone()), later = tracing::field::Empty);
        let _e = span.enter();
        for i in 0..5 {
            tracing::info!("event {i}");
        }
        span.record("later", 2);
        tracing::info!("after record");
    });
    let lines = lines_after(&s, f, 6);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(lines[0], "s{c=counted}: event 0");
    assert_eq!(lines[5], "s{c=counted later=2}: after record");
}

/// Two RingLayers (two segments) in one subscriber: both write, span fields
/// appear once in each.
#[test]
fn two_layers_in_one_subscriber() {
    let (s1, s2) = (Scratch::new("tl-two-a"), Scratch::new("tl-two-b"));
    let f1 = s1.flusher_ready(&["--format", "%(message)s"]);
    let f2 = s2.flusher_ready(&["--format", "%(message)s"]);
    let subscriber = tracing_subscriber::registry()
        .with(RingLayer::open(&s1.shm).unwrap())
        .with(RingLayer::open(&s2.shm).unwrap());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("s", a = 1, b = tracing::field::Empty);
        span.record("b", 2);
        span.in_scope(|| tracing::info!("hello"));
    });
    assert_eq!(lines_after(&s1, f1, 1), ["s{a=1 b=2}: hello"]);
    assert_eq!(lines_after(&s2, f2, 1), ["s{a=1 b=2}: hello"]);
}

//! Formatting cost per record, without the ring or the file: each style's
//! spelling of the flusher's default format, `%(message)s`, JSON, and a
//! record with `extra` fields read by the format.
//!
//! `cargo bench -p ringflush-format --bench format` (ns per record, best of
//! 5 rounds of 1M records each).

use std::hint::black_box;
use std::time::Instant;

use ringflush_format::{Entry, FormatSpec, Formatter, Style};
use ringflush_ring::codec::Record;

fn spec(format: &str, style: &str, defaults: Option<&str>) -> FormatSpec {
    FormatSpec {
        format: Some(format.into()),
        style: Style::parse(style).expect("a style"),
        defaults: defaults.map(Into::into),
        ..FormatSpec::default()
    }
}

fn main() {
    let message = "x".repeat(100);
    let plain = Record {
        level: 20,
        logger: b"bench",
        thread_id: 4242,
        message: message.as_bytes(),
        ..Record::default()
    };
    let with_extra = Record {
        extra: br#"{"request_id": "abc-123", "user": "ann", "n": 7}"#,
        ..plain
    };
    let default = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s";
    let rows: [(&str, &str, &str, Option<&str>, &Record<'_>); 7] = [
        ("%(message)s", "%(message)s", "%", None, &plain),
        ("% default format", default, "%", None, &plain),
        (
            "{ default format",
            "{asctime} {levelname} {name} [{process}] {message}",
            "{",
            None,
            &plain,
        ),
        (
            "$ default format",
            "$asctime $levelname $name [$process] $message",
            "$",
            None,
            &plain,
        ),
        ("json", "json", "%", None, &plain),
        (
            "% default format, record with extra",
            default,
            "%",
            None,
            &with_extra,
        ),
        (
            "% with %(request_id)s from extra",
            "%(asctime)s %(levelname)s [%(request_id)s] %(message)s",
            "%",
            Some(r#"{"request_id": "-"}"#),
            &with_extra,
        ),
    ];
    println!("| format | ns/record |");
    println!("|---|---|");
    for (name, format, style, defaults, record) in rows {
        let spec = spec(format, style, defaults);
        let mut f = Formatter::new(&spec, 0).expect("a valid format");
        let mut out = Vec::with_capacity(1 << 20);
        let n = 1_000_000u64;
        let best = (0..5)
            .map(|_| {
                let t = Instant::now();
                for i in 0..n {
                    let e = Entry {
                        // A new second every 1000 records, as at 1000/s.
                        created_ns: 1_709_720_253_000_000_000 + i * 1_000_000,
                        pid: 77,
                        record: *record,
                    };
                    f.format(black_box(&e), &mut out);
                    if out.len() > (1 << 20) - 4096 {
                        black_box(&out);
                        out.clear();
                    }
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .fold(f64::INFINITY, f64::min);
        println!("| {name} | {best:.1} |");
    }
}

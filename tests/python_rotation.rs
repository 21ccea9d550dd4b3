//! Differential test against the machine's own CPython
//! `TimedRotatingFileHandler` (see tests/py/rotation_diff.py): rollover
//! instants and rotated names over a grid of `when`, atTime and start times,
//! in UTC and in two local zones across their DST changes.

mod common;

use std::process::Command;

#[test]
fn rollovers_and_names_match_cpython() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/rotation_diff.py");
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is needed for this test (.ci/run installs it)");
    }
    for (zone, utc) in [
        ("UTC", "1"),
        ("Europe/Berlin", "0"),
        ("America/New_York", "0"),
    ] {
        let out = Command::new("python3")
            .args([script, common::BIN, zone, utc])
            .env("TZ", if utc == "1" { "UTC" } else { zone })
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{zone}: {text}");
        assert!(text.contains(" 0 mismatches"), "{text}");
    }
}

//! Differential test against CPython's own `TimedRotatingFileHandler` (see
//! tests/py/rotation_diff.py): rollover instants and rotated names over a
//! grid of `when`, interval, atTime and start times, and retention, in UTC
//! and in two local zones across their DST changes. Run by the machine's
//! `python3` and, where the machine has it, by CPython 3.13 itself, whose
//! DST rule ringflush follows.

use crate::common::cpython_313;

use std::process::Command;

fn differential(python: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/rotation_diff.py");
    for (zone, utc) in [
        ("UTC", "1"),
        ("Europe/Berlin", "0"),
        ("America/New_York", "0"),
    ] {
        let out = Command::new(python)
            .args([script, crate::common::BIN, zone, utc])
            .env("TZ", if utc == "1" { "UTC" } else { zone })
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{zone}: {text}");
        assert!(text.contains(" 0 mismatches"), "{text}");
    }
}

#[test]
fn rollovers_names_and_retention_match_the_machines_cpython() {
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is needed for this test (.ci/run installs it)");
    }
    differential("python3".as_ref());
}

#[test]
fn rollovers_names_and_retention_match_cpython_3_13() {
    match cpython_313() {
        Some(python) => differential(&python),
        None => crate::common::not_run(
            "rollovers_names_and_retention_match_cpython_3_13",
            "no CPython 3.13 on this machine: DST-crossing cases were checked against the test's own version of its rule",
            false,
        ),
    }
}

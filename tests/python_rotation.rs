//! Differential test against CPython's own `TimedRotatingFileHandler` (see
//! tests/py/rotation_diff.py): rollover instants and rotated names over a
//! grid of `when`, interval, atTime and start times, and retention, in UTC
//! and in two local zones across their DST changes. Run by the machine's
//! `python3` and, where the machine has it, by CPython 3.13 itself, whose
//! DST rule ringflush follows.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// `python3.13` on PATH, else pyenv's.
fn cpython_313() -> Option<PathBuf> {
    let on_path = Command::new("python3.13").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Some("python3.13".into());
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("3.13"))
        .map(|e| e.path().join("bin/python3"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

fn differential(python: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/rotation_diff.py");
    for (zone, utc) in [
        ("UTC", "1"),
        ("Europe/Berlin", "0"),
        ("America/New_York", "0"),
    ] {
        let out = Command::new(python)
            .args([script, common::BIN, zone, utc])
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
        None => common::not_run(
            "rollovers_names_and_retention_match_cpython_3_13",
            "no CPython 3.13 on this machine: DST-crossing cases were checked against the test's own version of its rule",
            false,
        ),
    }
}

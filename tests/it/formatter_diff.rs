//! Differential test against CPython's own `logging.Formatter` (see
//! tests/py/formatter_diff.py): records written into a segment with the
//! Python package's writer, formatted by the real flusher with
//! --format/--style/--datefmt/--defaults, compared line by line with what
//! CPython formats for the same record; formats CPython's validation
//! refuses must be refused. In UTC and in Europe/Berlin (`%Z`, `%z` and DST
//! in datefmts), by the machine's `python3` and, where the machine has it,
//! by CPython 3.13 (whose `msecs` the flusher follows).

use crate::common::cpython_313;

use std::path::Path;
use std::process::Command;

/// Whether the machine's python3 has the ringflush package (CI installs
/// it with `python3 -m pip install .` before the tests).
fn package_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import ringflush._native"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn differential(test: &str, python: &Path) {
    if !package_installed() {
        crate::common::not_run(
            test,
            "python3 has no ringflush package (python3 -m pip install .)",
            true,
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/formatter_diff.py");
    for zone in ["UTC", "Europe/Berlin"] {
        let out = Command::new(python)
            .args([script, crate::common::BIN])
            .env("TZ", zone)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{zone}: {text}");
        // The script exits 1 unless every written record was compared; the
        // summary must say so too.
        assert!(text.contains(" 0 mismatches"), "{text}");
        let compared = text
            .split_once(" records: ")
            .and_then(|(_, rest)| rest.split_once(" of "))
            .and_then(|(n, rest)| Some((n.parse::<u32>().ok()?, rest.split_once(' ')?.0)))
            .and_then(|(n, written)| Some((n, written.parse::<u32>().ok()?)));
        match compared {
            Some((n, written)) => assert!(n == written && n > 1000, "{text}"),
            None => panic!("no summary line: {text}"),
        }
    }
}

#[test]
fn formatting_matches_the_machines_cpython() {
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is needed for this test (.ci/run installs it)");
    }
    differential(
        "formatting_matches_the_machines_cpython",
        "python3".as_ref(),
    );
}

#[test]
fn formatting_matches_cpython_3_13() {
    match cpython_313() {
        Some(python) => differential("formatting_matches_cpython_3_13", &python),
        None => crate::common::not_run(
            "formatting_matches_cpython_3_13",
            "no CPython 3.13 on this machine: msecs and created were checked against the test's own copy of 3.13's rule",
            false,
        ),
    }
}

//! `ringflush demo`: a flusher and N worker processes in a temp dir, rotating
//! every second; then a check that no record was lost or duplicated.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};

use anyhow::{bail, Context, Result};

use super::verify;
use super::Exit;
use crate::cli::DemoArgs;

fn terminate(child: &Child) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

/// Run the demo, printing what it does and what it found: [`Exit::Ok`] when
/// every record was found exactly once and in order, else
/// [`Exit::Problem`]; the temp dir with the
/// log files is kept for inspection.
///
/// # Errors
/// When a process cannot be started, a worker or the flusher fails, or the
/// log files cannot be read.
pub fn run(args: &DemoArgs) -> Result<Exit> {
    let dir = tempfile::Builder::new()
        .prefix("ringflush-demo-")
        .tempdir()
        .context("creating a temp dir")?
        .keep();
    let shm = format!("/ringflush-demo-{}", std::process::id());
    let log = dir.join("app.log");
    println!(
        "ringflush demo: {} worker processes log for {:.1} s through {shm} into {}, rotating every second",
        args.workers,
        args.seconds,
        log.display()
    );
    let flusher_err = std::fs::File::create(dir.join("flusher.stderr"))?;
    let mut flusher = super::self_command()?
        .args(["--shm", &shm, "--when", "S", "--file"])
        .arg(&log)
        .stderr(flusher_err)
        .spawn()
        .context("starting the flusher")?;
    let result = run_workers(&shm, args);
    terminate(&flusher);
    let status = flusher.wait()?;
    let _ = ringflush_ring::Segment::unlink(&shm);
    let expected = result?;
    if !status.success() {
        let err = std::fs::read_to_string(dir.join("flusher.stderr")).unwrap_or_default();
        bail!("the flusher failed ({status}):\n{err}");
    }
    Ok(if report(&log, &dir, &expected)? {
        Exit::Ok
    } else {
        Exit::Problem
    })
}

fn run_workers(shm: &str, args: &DemoArgs) -> Result<BTreeMap<u64, u64>> {
    let workers: Vec<(u64, Child)> = (0..args.workers as u64)
        .map(|id| {
            let child = super::self_command()?
                .args(["worker", "--shm", shm, "--id", &id.to_string()])
                .args(["--seconds", &args.seconds.to_string(), "--pause-us", "50"])
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a worker")?;
            Ok((id, child))
        })
        .collect::<Result<_>>()?;
    let mut expected = BTreeMap::new();
    for (id, child) in workers {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("worker {id} failed ({})", out.status);
        }
        let n: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("worker output")?;
        expected.insert(id, n);
    }
    Ok(expected)
}

fn report(log: &Path, dir: &Path, expected: &BTreeMap<u64, u64>) -> Result<bool> {
    let files = verify::log_files(log)?;
    let tally = verify::check(&files, expected)?;
    for (path, n) in &tally.files {
        println!(
            "  {:<40} {n:>9} records",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    let written: u64 = expected.values().sum();
    println!(
        "workers committed {written} records; found {} in {} files: {} lost, {} duplicated, {} out of order",
        tally.records,
        tally.files.len(),
        tally.lost,
        tally.duplicates,
        tally.out_of_order
    );
    if tally.ok() {
        println!(
            "OK: every record exactly once, in order per worker. Files kept in {}",
            dir.display()
        );
    } else {
        println!("FAILED: files kept in {}", dir.display());
    }
    Ok(tally.ok())
}

//! `ringflush ls`: the segments on this machine, one line each: name, log
//! file, size, fill, flusher and live producers (or, with `--json`, one
//! `stat --json` object per segment in an array).

use std::fmt::Write;

use anyhow::Result;

use super::segments::{self, Found};
use super::stat::{self, Snapshot};
use super::Exit;
use crate::cli::LsArgs;
use crate::report;

/// List the segments (see the module docs).
///
/// # Errors
/// When `/dev/shm` cannot be listed or stdout written.
pub fn run(args: &LsArgs) -> Result<Exit> {
    let found = segments::scan()?;
    let text = if args.json {
        let all: Vec<serde_json::Value> = found.iter().map(json).collect();
        serde_json::Value::Array(all).to_string() + "\n"
    } else {
        table(&found)
    };
    report::stdout(&text)?;
    Ok(Exit::Ok)
}

fn json(f: &Found) -> serde_json::Value {
    match &f.segment {
        Ok(seg) => stat::json_value(&f.name, &Snapshot::take(seg)),
        Err(e) => serde_json::json!({"shm": f.name, "error": e.to_string()}),
    }
}

fn table(found: &[Found]) -> String {
    let width = found.iter().map(|f| f.name.len()).max().unwrap_or(0).max(7);
    let mut out = format!(
        "{:<width$}  {:>8}  {:>6}  {:<22}  {:>9}  FILE\n",
        "SEGMENT", "SIZE", "FILL", "FLUSHER", "PRODUCERS"
    );
    for f in found {
        let _ = match &f.segment {
            Ok(seg) => {
                let s = Snapshot::take(seg);
                writeln!(
                    out,
                    "{:<width$}  {:>8}  {:>5.1}%  {:<22}  {:>9}  {}",
                    f.name,
                    size(s.capacity()),
                    100.0 * s.used() as f64 / s.capacity() as f64,
                    s.flusher_state(),
                    s.live_producers(),
                    s.file().unwrap_or("-"),
                )
            }
            Err(e) => writeln!(out, "{:<width$}  unusable: {}", f.name, e),
        };
    }
    out
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

//! Check a set of log files for numbered records `worker=<id> seq=<n>`:
//! every record exactly once, and each worker's records in order (reading
//! rotated files oldest first, the live file last). Used by `demo` and tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Tally {
    /// Files read in order, with their record counts.
    pub files: Vec<(PathBuf, u64)>,
    /// Numbered records found in all files.
    pub records: u64,
    /// Records seen before, or with an id or sequence number no worker wrote.
    pub duplicates: u64,
    /// Records whose sequence number is not above the previous one of the
    /// same worker.
    pub out_of_order: u64,
    /// Expected records that were not found.
    pub lost: u64,
    /// Lines that are not numbered records (e.g. the flusher's notices).
    pub other_lines: u64,
}

impl Tally {
    /// Every expected record exactly once, each worker's in order.
    pub fn ok(&self) -> bool {
        self.duplicates == 0 && self.out_of_order == 0 && self.lost == 0
    }
}

/// The live file and its rotated siblings (`<base>.*`), oldest first:
/// numbered backups (`.3`, `.2`, `.1`) from the highest number down, dated
/// ones by name.
pub fn log_files(live: &Path) -> Result<Vec<PathBuf>> {
    let dir = live.parent().unwrap_or(Path::new("."));
    let base = live
        .file_name()
        .context("log path has no file name")?
        .to_string_lossy()
        .into_owned();
    let prefix = format!("{base}.");
    let mut rotated: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    let number = |p: &PathBuf| -> Option<u64> {
        let name = p.file_name()?.to_string_lossy().into_owned();
        let rest = name.strip_prefix(&prefix)?;
        rest.strip_suffix(".gz").unwrap_or(rest).parse().ok()
    };
    rotated.retain(|p| !p.to_string_lossy().ends_with(".tmp"));
    rotated.sort_by_key(|p| match number(p) {
        Some(n) => (0, u64::MAX - n, String::new(), 0),
        None => {
            let (name, n) = sort_key(p);
            (1, 0, name, n)
        }
    });
    if live.exists() {
        rotated.push(live.to_path_buf());
    }
    Ok(rotated)
}

/// Name order, but with a numeric trailing `.N` (so `.10` sorts after `.9`).
fn sort_key(p: &Path) -> (String, u64) {
    let name = p.to_string_lossy().into_owned();
    let name = name.strip_suffix(".gz").map(str::to_string).unwrap_or(name);
    match name.rsplit_once('.') {
        Some((stem, n))
            if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() && n.len() < 6 =>
        {
            (stem.to_string(), n.parse().unwrap_or(0) + 1)
        }
        _ => (name, 0),
    }
}

fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Read `files` in order; `expected[id]` is how many records worker `id` wrote.
pub fn check(files: &[PathBuf], expected: &BTreeMap<u64, u64>) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut seen: BTreeMap<u64, Vec<bool>> = expected
        .iter()
        .map(|(&id, &n)| (id, vec![false; n as usize]))
        .collect();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for path in files {
        let mut bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
                .with_context(|| format!("decompressing {}", path.display()))?;
            bytes = plain;
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut n = 0;
        for line in text.lines() {
            let (Some(id), Some(seq)) = (field(line, "worker="), field(line, " seq=")) else {
                tally.other_lines += 1;
                continue;
            };
            n += 1;
            tally.records += 1;
            match seen.get_mut(&id).and_then(|v| v.get_mut(seq as usize)) {
                Some(slot) if *slot => tally.duplicates += 1,
                Some(slot) => *slot = true,
                None => tally.duplicates += 1,
            }
            if last.get(&id).is_some_and(|&l| seq <= l) {
                tally.out_of_order += 1;
            }
            last.insert(id, seq);
        }
        tally.files.push((path.clone(), n));
    }
    tally.lost = seen.values().flatten().filter(|s| !**s).count() as u64;
    Ok(tally)
}

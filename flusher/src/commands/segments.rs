//! The ringflush segments on this machine, for `ls` and `rm --stale`:
//! every object in `/dev/shm` this user can read that starts with a
//! segment header's magic (other programs' shared memory is left out).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};
use ringflush_ring::{layout, OpenError, Segment, SegmentOptions};

/// A segment found, opened to look at (not created, not faulted in).
pub(super) struct Found {
    /// Its name, e.g. `/applog`.
    pub name: String,
    /// The segment, or why this build cannot use it (another layout
    /// version, half created, cut short).
    pub segment: Result<Segment, OpenError>,
}

/// The segments in `/dev/shm`, by name.
///
/// # Errors
/// When `/dev/shm` cannot be listed.
pub(super) fn scan() -> Result<Vec<Found>> {
    let dir = std::fs::read_dir("/dev/shm").context("listing /dev/shm")?;
    let mut found: Vec<Found> = dir
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|file| starts_with_magic(&format!("/dev/shm/{file}")))
        .map(|file| {
            let name = format!("/{file}");
            let segment = Segment::open(&name, &SegmentOptions::inspect());
            Found { name, segment }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn starts_with_magic(path: &str) -> bool {
    let mut magic = [0u8; 8];
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| u64::from_le_bytes(magic) == layout::MAGIC)
}

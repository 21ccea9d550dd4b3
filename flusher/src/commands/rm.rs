//! `ringflush rm --shm NAME`: remove a segment, refusing while it is used;
//! `ringflush rm --stale`: remove every segment nobody uses that holds
//! nothing.
//!
//! A segment outlives every process (it lives in `/dev/shm` until removed
//! or reboot). Removing one a flusher drains or producers write to would
//! lose their records, and one with unwritten records would lose those:
//! both are refused unless `--force`. A segment that cannot be opened to
//! check (another layout version, left half-created, cut short, a header
//! out of range) is removed only with `--force`, and only if it starts
//! with a ringflush header and belongs to this user: another program's
//! object, or another user's, never.
//!
//! `--stale` decides as an idle flusher does (`ringflush_ring::closing`),
//! holding the segment's flusher lock so that no flusher starts meanwhile:
//! a producer that opens the segment at that moment either is seen (the
//! segment stays) or sees the closing flag and opens the name again.

use std::sync::atomic::Ordering;

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use anyhow::{bail, Context, Result};
use ringflush_ring::{layout, registry, OpenError, OpenErrorKind, Segment, SegmentOptions};

use super::segments;
use super::Exit;
use crate::cli::RmArgs;
use crate::report;

/// Remove the segment `--shm` (see the module docs).
///
/// # Errors
/// When it does not exist, or is in use or holds records without `--force`.
pub fn run(args: &RmArgs) -> Result<Exit> {
    match &args.shm {
        Some(shm) => remove(shm, args.force),
        None => remove_stale(),
    }
}

fn remove(shm: &str, force: bool) -> Result<Exit> {
    let seg = match Segment::open(shm, &SegmentOptions::inspect()) {
        Ok(seg) => seg,
        Err(e) if unopenable_ringflush_segment(&e) => {
            if !force {
                bail!("{e}; pass --force to remove it without checking who uses it");
            }
            ours_with_a_header(shm)?;
            return unlink(shm).map(|()| Exit::Ok);
        }
        Err(e) => return Err(e.into()),
    };
    let mut users = Vec::new();
    if seg.flusher_alive() {
        let pid = seg.header().flusher.pid.load(Ordering::Relaxed);
        users.push(format!("a flusher (pid {pid})"));
    }
    let producers: Vec<String> = registry::registered(seg.header(), seg.fd())
        .into_iter()
        .filter(|p| p.alive)
        .map(|p| p.who.pid.to_string())
        .collect();
    if !producers.is_empty() {
        users.push(format!("producers (pids {})", producers.join(", ")));
    }
    let unread = seg.unwritten_bytes();
    if !force {
        if !users.is_empty() {
            bail!(
                "segment {shm} is in use by {}: stop them first, or pass --force (their records are then lost)",
                users.join(" and ")
            );
        }
        if unread > 0 {
            bail!(
                "segment {shm} holds {unread} bytes of records no flusher has written: run a flusher on it first, or pass --force to lose them"
            );
        }
    }
    unlink(shm)?;
    Ok(Exit::Ok)
}

/// Remove every stale segment (see the module docs); those this build
/// cannot open are left, as `ls` shows them.
fn remove_stale() -> Result<Exit> {
    let mut removed = 0;
    for found in segments::scan()? {
        let Ok(seg) = found.segment else { continue };
        if seg.remove_if_unused()? {
            report::stderr(format_args!("removed /dev/shm{}", found.name));
            removed += 1;
            continue;
        }
        // Say why it stays: one holding records is not stale even if
        // nobody uses it, and its owner may want them.
        match seg.unwritten_bytes() {
            0 => report::stderr(format_args!("kept /dev/shm{}: in use", found.name)),
            n => report::stderr(format_args!(
                "kept /dev/shm{name}: {n} bytes of records not yet written \
                 (run its flusher, or `ringflush rm --shm {name} --force` to drop them)",
                name = found.name
            )),
        }
    }
    if removed == 0 {
        report::stderr(format_args!("no stale segment"));
    }
    Ok(Exit::Ok)
}

/// A ringflush segment this build cannot use or check.
fn unopenable_ringflush_segment(e: &OpenError) -> bool {
    matches!(
        e.kind,
        OpenErrorKind::IncompatibleVersion { .. }
            | OpenErrorKind::NotInitialised { .. }
            | OpenErrorKind::Truncated { .. }
            | OpenErrorKind::BadHeader { .. }
    )
}

/// Refuse to remove an object that does not start with a ringflush
/// header's magic (a truncated or half-created segment still does; another
/// program's shared memory or semaphore does not) or that belongs to
/// another user (root included: it could remove anyone's).
fn ours_with_a_header(shm: &str) -> Result<()> {
    let path = ringflush_ring::segment::shm_path(shm);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("open {path}"))?;
    let owner = file
        .metadata()
        .with_context(|| format!("stat {path}"))?
        .uid();
    if owner != rustix::process::geteuid().as_raw() {
        bail!("{path} belongs to uid {owner}, not to this user: not removed");
    }
    let mut magic = [0u8; 8];
    if file.read_exact(&mut magic).is_err() || u64::from_le_bytes(magic) != layout::MAGIC {
        bail!("{path} does not start with a ringflush segment header: not removed");
    }
    Ok(())
}

fn unlink(shm: &str) -> Result<()> {
    Segment::unlink(shm)?;
    report::stderr(format_args!(
        "removed {}",
        ringflush_ring::segment::shm_path(shm)
    ));
    Ok(())
}

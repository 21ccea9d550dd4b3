//! The flusher's command line turned into a checked configuration.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ringflush_format::{FormatSpec, Style};
use ringflush_rotation::{Timed, When};

use crate::cli::{Compress, FlusherArgs};
use crate::output::{OutputConfig, Rules};

/// Everything the flusher needs to run, checked.
#[derive(Debug, Clone)]
pub struct FlusherConfig {
    /// Segment name, e.g. `/applog`.
    pub shm: String,
    /// The log file.
    pub file: PathBuf,
    /// How records are formatted (always in local time: `utc` is false).
    pub format: FormatSpec,
    /// Ring size if the flusher creates the segment (and the size an
    /// existing one must have); `None` takes any.
    pub size: Option<u64>,
    /// Lanes if the flusher creates the segment; `None`: the default (none).
    pub lanes: Option<u64>,
    /// Permission bits of the segment.
    pub mode: u32,
    /// Group to give the segment.
    pub gid: Option<u32>,
    /// Accept a segment owned by another user.
    pub allow_foreign: bool,
    /// How the log file is written, when it rolls over, and what happens to
    /// rotated files.
    pub output: OutputConfig,
    /// Give up a live writer's uncommitted record after this long.
    pub unblock_timeout: Duration,
    /// Drain and exit once no registered producer lives.
    pub exit_when_idle: bool,
    /// The command-line arguments it was started with (after the program
    /// name), published in the segment.
    pub args: Vec<String>,
}

/// Turn the flusher's arguments into a checked configuration.
pub fn flusher_config(a: &FlusherArgs) -> Result<FlusherConfig> {
    let file = match &a.file {
        Some(f) => f.clone(),
        None => {
            let name = a.shm.trim_start_matches('/');
            if name.is_empty() || name.contains('/') {
                bail!("invalid --shm {:?}: it must look like /applog", a.shm);
            }
            PathBuf::from(format!("{name}.log"))
        }
    };
    let timed = match &a.when {
        Some(w) => Some(Timed::new(
            When::parse(w)?,
            a.interval,
            a.at_time.as_deref(),
            crate::cli::clock(a.utc),
        )?),
        None if a.at_time.is_some() => bail!("--at-time needs --when midnight or W0-W6"),
        None => None,
    };
    if a.service_name.is_some() && !matches!(a.format.as_deref(), Some("json:ecs" | "json:otel")) {
        bail!("--service-name applies to --format json:ecs or json:otel only");
    }
    // Before anything is created: a bad size must not leave the log's
    // directories behind.
    if let Some(size) = a.size {
        use ringflush_ring::OpenErrorKind;
        ringflush_ring::check_sizes(
            size,
            a.lanes
                .unwrap_or_else(|| ringflush_ring::layout::default_lanes(size)),
            None,
        )
        .map_err(|e| match e {
            OpenErrorKind::InvalidOption { reason } => anyhow::anyhow!("invalid --size: {reason}"),
            other => anyhow::anyhow!("invalid --size: {other:?}"),
        })?;
    }
    if a.max_bytes == Some(0) {
        bail!("--max-bytes must be at least 1");
    }
    if !(a.unblock_timeout > 0.0 && a.unblock_timeout < 86_400.0) {
        bail!("--unblock-timeout must be between 0 and 86400 seconds");
    }
    let gid = a.group.as_deref().map(group_id).transpose()?;
    Ok(FlusherConfig {
        shm: a.shm.clone(),
        file,
        format: FormatSpec {
            format: a.format.clone(),
            style: Style::parse(&a.style)
                .with_context(|| format!("invalid --style {:?}: use %, {{ or $", a.style))?,
            defaults: a.defaults.clone(),
            datefmt: a.datefmt.clone(),
            escape: a.escape,
            utc: false,
            service_name: a.service_name.clone(),
        },
        size: a.size,
        lanes: a.lanes,
        mode: a.mode,
        gid,
        allow_foreign: a.allow_foreign,
        output: OutputConfig {
            rules: Rules {
                timed,
                max_bytes: a.max_bytes,
            },
            backup_count: a.backup_count,
            gzip: a.compress == Compress::Gzip,
            compress_delay: a.compress_delay,
            post_rotate: a.post_rotate.clone(),
            file_mode: a.file_mode,
            rotated_by_app: a.rotated_by_app,
        },
        unblock_timeout: Duration::from_secs_f64(a.unblock_timeout),
        exit_when_idle: a.exit_when_idle,
        args: Vec::new(),
    })
}

/// Resolve `--group` (a name or a gid).
pub fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).context("group name contains NUL")?;
    // SAFETY: an all-zero `group` (null pointers, gid 0) is a valid value.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("unknown group {group:?}");
    }
    Ok(grp.gr_gid)
}

//! Signals the flusher obeys: SIGTERM and SIGINT drain and exit, SIGHUP
//! reopens the log file, SIGUSR1 rolls it over. The handlers only set flags the loop reads.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};

/// Flags set by signal handlers.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Set by SIGTERM or SIGINT: drain what is committed, then exit.
    pub terminate: Arc<AtomicBool>,
    /// Set by SIGHUP: reopen the log file; the loop clears it.
    pub reopen: Arc<AtomicBool>,
    /// Set by SIGUSR1: roll the file over between batches (as a
    /// `ringflush rotate` request); the loop clears it.
    pub rotate: Arc<AtomicBool>,
}

impl Signals {
    /// SIGTERM/SIGINT: drain and exit; SIGHUP: reopen the file; SIGUSR1:
    /// roll it over.
    ///
    /// # Errors
    /// When a handler cannot be registered.
    pub fn install() -> Result<Self> {
        let s = Signals::default();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.terminate.clone())
                .context("installing signal handlers")?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, s.reopen.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, s.rotate.clone())
            .context("installing signal handlers")?;
        Ok(s)
    }
}

//! systemd's notify protocol (`Type=notify`), through the sd-notify crate:
//! `READY=1` once the flusher holds its segment and file, `WATCHDOG=1` at
//! half the interval systemd asks for (`WatchdogSec=`), `STOPPING=1` when it
//! starts draining to exit. Without `NOTIFY_SOCKET` every call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::now::Interval;

/// The service manager's side of the flusher.
#[derive(Debug)]
pub struct Notifier {
    /// Pings due at half systemd's watchdog interval, when it set one.
    watchdog: Option<Interval>,
}

impl Notifier {
    /// Read the watchdog interval from the environment.
    pub fn from_env() -> Self {
        let mut usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Interval::new(Duration::from_micros(usec / 2)));
        Self { watchdog }
    }

    /// Startup is done; `status` is shown by `systemctl status`.
    pub fn ready(&self, status: &str) {
        let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Called every loop turn: a watchdog ping when one is due.
    pub fn watchdog(&mut self, now: Instant) {
        if let Some(every) = &mut self.watchdog {
            if every.due(now) {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            }
        }
    }

    /// The flusher is draining to exit.
    pub fn stopping(&self) {
        let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
    }
}

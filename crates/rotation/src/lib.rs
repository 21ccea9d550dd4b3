//! Rotation policy, free of I/O: every function takes `now` (Unix seconds)
//! and a [`Zone`], so tests drive a fake clock through any time zone.
//!
//! [`Timed`] reproduces CPython 3.13's `TimedRotatingFileHandler`
//! (`Lib/logging/handlers.py`): `computeRollover`, the rotated-file suffix of
//! `doRollover`, and the suffix pattern retention matches. See `timed.rs`.

mod timed;
mod zone;

pub use timed::{Clock, PolicyError, Timed, When};
pub use zone::{Civil, LocalZone, UtcZone, Zone};

//! The producer side of ringflush: log records into a shared-memory ring with
//! an atomic CAS and a memcpy, no lock, no syscall, no file.
//!
//! ```no_run
//! use ringflush_producer::{Producer, level};
//! let log = Producer::open("/applog")?;
//! log.log(level::INFO, "app", "service started")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Producer`] is `Send + Sync`: share one per process across threads.
//!
//! With the `log` feature (on by default) it implements `log::Log`, and
//! `init`, `init_with_filter` or `RingLogger::builder()` install a logger
//! with a `RUST_LOG`-style filter whose key-values are carried into
//! `--format json`.

mod fault;
#[cfg(feature = "log")]
mod fields;
mod identity;
#[cfg(feature = "log")]
mod logger;
mod producer;
mod registration;

pub use identity::pid;
#[cfg(feature = "log")]
pub use logger::{init, init_with_filter, InitError, LoggerBuilder, RingLogger};
pub use producer::{Builder, FullPolicy, Producer, WriteError};
pub use ringflush_ring::codec::{level, Record};
pub use ringflush_ring::OpenError;

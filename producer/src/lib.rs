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
//! Two routes for code that already logs (see the README's "From Rust"):
//! - the `log` feature (on by default): `init`, `init_with_filter` or
//!   `RingLogger::builder()` install a `log::Log` with a `RUST_LOG`-style
//!   filter, key-values carried into `--format json`;
//! - the `tracing` feature: `RingLayer` is a `tracing_subscriber::Layer`
//!   that writes events with their fields and spans.

mod fault;
#[cfg(any(feature = "log", feature = "tracing"))]
mod fields;
mod identity;
mod lanes;
#[cfg(feature = "tracing")]
mod layer;
#[cfg(feature = "log")]
mod logger;
mod producer;
mod registration;

pub use identity::pid;
#[cfg(feature = "tracing")]
pub use layer::RingLayer;
#[cfg(feature = "log")]
pub use logger::{init, init_with_filter, InitError, LoggerBuilder, RingLogger};
pub use producer::{Builder, FullPolicy, Producer, WriteError};
pub use ringflush_ring::codec::{level, Record};
pub use ringflush_ring::{OpenError, OpenErrorKind};

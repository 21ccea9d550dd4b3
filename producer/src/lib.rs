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
//! With the `log` feature (on by default) it implements [`log::Log`]; see
//! [`init`].

mod fault;
mod identity;
#[cfg(feature = "log")]
mod logger;
mod producer;
mod registration;

pub use identity::pid;
#[cfg(feature = "log")]
pub use logger::{init, InitError};
pub use producer::{Builder, FullPolicy, Producer, WriteError};
pub use ringflush_ring::codec::{level, Record};
pub use ringflush_ring::OpenError;

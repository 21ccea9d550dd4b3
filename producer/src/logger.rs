//! `log::Log` for [`Producer`]: a Rust service logs with `log::info!` unchanged.

use std::cell::RefCell;
use std::fmt::Write;

use ringflush_ring::codec::{level, Record};

use crate::{identity, Producer};

fn python_level(l: log::Level) -> u8 {
    match l {
        log::Level::Error => level::ERROR,
        log::Level::Warn => level::WARNING,
        log::Level::Info => level::INFO,
        log::Level::Debug => level::DEBUG,
        log::Level::Trace => level::TRACE,
    }
}

thread_local! {
    static MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Rust's `log` facade onto the ring (the `log` feature, on by default).
///
/// Each `log::Record` becomes one ring record: its level on Python's scale
/// (error 40, warn 30, info 20, debug 10, trace 5), its target as the logger
/// name, its file, line and module path as `pathname`, `lineno` and
/// `module`, and this thread's id and name. `enabled` accepts every record:
/// filter with `log::set_max_level`, as [`init`] does. A record that cannot
/// be written is lost as with [`Producer::write`] (counted in the segment
/// and reported by the flusher), never returned. `flush` does nothing: a
/// committed record is already in the shared ring.
impl log::Log for Producer {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let write = |message: &str| {
            let thread = identity::current_thread();
            // Failures are counted in the segment and reported by the
            // flusher; a logger has nowhere better to send them.
            let _ = self.write(&Record {
                level: python_level(record.level()),
                line: record.line().unwrap_or(0),
                thread_id: thread.id,
                thread_name: &thread.name,
                logger: record.target().as_bytes(),
                pathname: record.file().unwrap_or("").as_bytes(),
                module: record.module_path().unwrap_or("").as_bytes(),
                message: message.as_bytes(),
                ..Record::default()
            });
        };
        if let Some(text) = record.args().as_str() {
            return write(text);
        }
        MESSAGE.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                let _ = write!(buf, "{}", record.args());
                write(&buf);
            }
            // Logging from inside a Display impl that is itself being logged.
            Err(_) => write(&record.args().to_string()),
        })
    }

    fn flush(&self) {}
}

/// Why [`init`] failed.
#[derive(Debug)]
pub enum InitError {
    /// The segment could not be opened (see [`Producer::open`]).
    Open(ringflush_ring::OpenError),
    /// Another logger was installed first.
    AlreadySet,
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Open(e) => e.fmt(f),
            InitError::AlreadySet => f.write_str("a global logger is already installed"),
        }
    }
}

impl std::error::Error for InitError {
    // Open's Display is the OpenError's own, so its cause comes next.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Open(e) => std::error::Error::source(e),
            InitError::AlreadySet => None,
        }
    }
}

/// Install a producer on `shm` as the global `log` logger at `max_level`.
/// The producer opens (or creates) the segment with the defaults of
/// [`Producer::open`] and lives until the process exits.
///
/// ```no_run
/// ringflush_producer::init("/applog", log::LevelFilter::Info)?;
/// log::info!("service started");
/// # Ok::<(), ringflush_producer::InitError>(())
/// ```
///
/// # Errors
/// - [`InitError::Open`]: [`Producer::open`] failed (see
///   [`Builder::open`](crate::Builder::open) for when).
/// - [`InitError::AlreadySet`]: a global logger was installed before; the
///   new producer is dropped and the max level is left unchanged.
pub fn init(shm: &str, max_level: log::LevelFilter) -> Result<(), InitError> {
    let producer = Producer::open(shm).map_err(InitError::Open)?;
    log::set_boxed_logger(Box::new(producer)).map_err(|_| InitError::AlreadySet)?;
    log::set_max_level(max_level);
    Ok(())
}

//! Formatting of ringflush records: Python `logging`'s `%`-style format
//! strings ([`percent`]), JSON Lines ([`json`]), and the record view both use.

mod clock;
pub mod json;
pub mod percent;
mod text;

use ringflush_ring::codec::Record;

pub use percent::FormatError;

/// A record as the flusher sees it: the payload plus the ring header's fields.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub created_ns: u64,
    pub pid: u32,
    pub record: Record<'a>,
}

/// How to format records.
#[derive(Debug, Clone, Default)]
pub struct FormatSpec {
    /// A `%`-style format string, or `"json"` for JSON Lines.
    pub format: Option<String>,
    /// strftime format for `asctime`; Python's default when `None`.
    pub datefmt: Option<String>,
    /// Escape newlines and control characters so a record is one line.
    pub escape: bool,
    /// Render times in UTC instead of local time.
    pub utc: bool,
}

/// Python's `logging.BASIC_FORMAT` is terse; this is the common file format.
pub const DEFAULT_FORMAT: &str = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s";

/// A compiled formatter. Not `Sync`: it caches the current second's text.
pub enum Formatter {
    Percent(percent::PercentFormatter),
    Json(json::JsonFormatter),
}

impl Formatter {
    /// `start_ns` is what `%(relativeCreated)d` counts from (the flusher's start).
    pub fn new(spec: &FormatSpec, start_ns: u64) -> Result<Self, FormatError> {
        let clock = clock::Clock::new(spec.datefmt.as_deref(), spec.utc)?;
        Ok(match spec.format.as_deref() {
            Some("json") => Formatter::Json(json::JsonFormatter::new(clock)),
            other => Formatter::Percent(percent::PercentFormatter::new(
                other.unwrap_or(DEFAULT_FORMAT),
                clock,
                spec.escape,
                start_ns,
            )?),
        })
    }

    /// Append `entry` as one line (terminated by `\n`) to `out`.
    #[inline]
    pub fn format(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        match self {
            Formatter::Percent(f) => f.format(entry, out),
            Formatter::Json(f) => f.format(entry, out),
        }
    }

    /// Format a line the flusher itself writes (e.g. a drop report).
    pub fn notice(&mut self, created_ns: u64, level: u8, message: &str, out: &mut Vec<u8>) {
        let entry = Entry {
            created_ns,
            pid: std::process::id(),
            record: Record {
                level,
                logger: b"ringflush",
                thread_name: b"flusher",
                message: message.as_bytes(),
                ..Record::default()
            },
        };
        self.format(&entry, out);
    }
}

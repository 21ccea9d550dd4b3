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
    /// When the record was written: realtime ns since the Unix epoch (TSC
    /// stamps already converted).
    pub created_ns: u64,
    /// Pid of the writing process.
    pub pid: u32,
    /// The decoded payload.
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

/// A compiled formatter. Formatting takes `&mut self`: it caches the
/// current second's date text.
#[derive(Debug)]
pub enum Formatter {
    /// A Python `%`-style format string.
    Percent(percent::PercentFormatter),
    /// JSON Lines (`--format json`).
    Json(json::JsonFormatter),
}

impl Formatter {
    /// Compile `spec`. `start_ns` (realtime ns since the Unix epoch) is what
    /// `%(relativeCreated)d` counts from (the flusher's start).
    ///
    /// # Errors
    /// [`FormatError`] when the format string or the date format cannot be
    /// used (unknown attribute, unsupported conversion or `%` directive).
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

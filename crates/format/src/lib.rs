//! Formatting of ringflush records as CPython's `logging.Formatter` would:
//! format strings in its three styles (`%`, `{` and `$`, see [`mod@line`]),
//! JSON Lines ([`json`]) with presets for central stores ([`presets`]:
//! Elastic Common Schema, OpenTelemetry), and the record view all use.

mod brace;
mod datefmt;
mod dollar;
pub mod json;
pub mod line;
pub mod percent;
pub mod presets;
mod pyfmt;
mod text;
mod value;

use ringflush_ring::codec::Record;

use crate::datefmt::DateFormat;

pub use line::RECORD_ATTRIBUTES;
pub use percent::FormatError;

/// The syntax of a format string: `logging.Formatter`'s `style`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Style {
    /// `%(name)s`: the `%` operator (the default).
    #[default]
    Percent,
    /// `{name}`: `str.format`.
    Brace,
    /// `$name`: `string.Template`.
    Dollar,
}

impl Style {
    /// `%`, `{` or `$`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "%" => Some(Style::Percent),
            "{" => Some(Style::Brace),
            "$" => Some(Style::Dollar),
            _ => None,
        }
    }

    /// The style's character, as `logging.Formatter` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Percent => "%",
            Style::Brace => "{",
            Style::Dollar => "$",
        }
    }

    fn parse_format(self, format: &str) -> Result<Vec<line::Piece>, String> {
        match self {
            Style::Percent => percent::parse(format),
            Style::Brace => brace::parse(format),
            Style::Dollar => dollar::parse(format),
        }
    }

    fn default_format(self) -> &'static str {
        match self {
            Style::Percent => DEFAULT_FORMAT,
            Style::Brace => "{asctime} {levelname} {name} [{process}] {message}",
            Style::Dollar => "${asctime} ${levelname} ${name} [${process}] ${message}",
        }
    }
}

/// Parse `format` in `style` (Err: the message for `--format`).
fn pieces(format: &str, style: Style) -> Result<Vec<line::Piece>, FormatError> {
    let err = |msg: String| FormatError::new(format!("invalid --format {format:?}: {msg}"));
    let pieces = style.parse_format(format).map_err(err)?;
    if !pieces
        .iter()
        .any(|p| matches!(p, line::Piece::Field { .. }))
    {
        // What CPython's validation says, and which style would have fields.
        let other = [Style::Percent, Style::Brace, Style::Dollar]
            .into_iter()
            .filter(|&s| s != style)
            .find(|s| {
                s.parse_format(format)
                    .is_ok_and(|p| p.iter().any(|p| matches!(p, line::Piece::Field { .. })))
            });
        let hint = match other {
            Some(s) => format!(
                " (it is a '{0}'-style format: use --style '{0}')",
                s.as_str()
            ),
            None => String::new(),
        };
        return Err(err(format!(
            "no field for the '{}' style{hint}",
            style.as_str()
        )));
    }
    Ok(pieces)
}

/// The names a text format reads that are not [`RECORD_ATTRIBUTES`]
/// (fields a record carries in its `extra`, or that `--defaults` gives),
/// in order of first use: what a producer checks a record for before
/// writing it, as CPython raises KeyError for a record without one.
///
/// # Errors
/// [`FormatError`] when the format cannot be used in `style`.
pub fn extra_fields(format: &str, style: Style) -> Result<Vec<String>, FormatError> {
    Ok(line::extra_names(&pieces(format, style)?))
}

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

impl Entry<'_> {
    /// The logger's name, `root` for the root logger (sent empty).
    pub(crate) fn logger_name(&self) -> &[u8] {
        if self.record.logger.is_empty() {
            b"root"
        } else {
            self.record.logger
        }
    }
}

/// A line the application formatted itself: as it is (invalid UTF-8
/// replaced), then the newline.
fn formatted_line(message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(String::from_utf8_lossy(message).as_bytes());
    out.push(b'\n');
}

thread_local! {
    /// The message and JSON text binary entries render as, reused.
    static EXPANDED: std::cell::RefCell<(String, String)> = const {
        std::cell::RefCell::new((String::new(), String::new()))
    };
}

/// How to format records.
#[derive(Debug, Clone, Default)]
pub struct FormatSpec {
    /// A format string in `style`; `"json"` for JSON Lines, `"json:ecs"`
    /// or `"json:otel"` for the presets; the default ([`DEFAULT_FORMAT`] in
    /// the style) when `None`.
    pub format: Option<String>,
    /// The format string's syntax.
    pub style: Style,
    /// `logging.Formatter`'s `defaults=` as a JSON object's text: values
    /// of fields that are not record attributes, for records whose `extra`
    /// lacks them.
    pub defaults: Option<String>,
    /// strftime format for `asctime`; Python's default when `None`.
    pub datefmt: Option<String>,
    /// Escape newlines and control characters so a record is one line.
    pub escape: bool,
    /// Render times in UTC instead of local time.
    pub utc: bool,
    /// The service the records come from (`json:otel`'s
    /// `resource.service.name`, `json:ecs`'s `service.name`).
    pub service_name: Option<String>,
}

/// Python's `logging.BASIC_FORMAT` is terse; this is the common file format.
pub const DEFAULT_FORMAT: &str = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s";

/// A compiled formatter. Formatting takes `&mut self`: it caches the
/// current second's date text.
#[derive(Debug)]
pub enum Formatter {
    /// A format string (`%`, `{` or `$` style).
    Text(line::LineFormatter),
    /// JSON Lines (`--format json`).
    Json(json::JsonFormatter),
    /// Elastic Common Schema JSON (`--format json:ecs`).
    Ecs(presets::EcsFormatter),
    /// OpenTelemetry log data model JSON (`--format json:otel`).
    Otel(presets::OtelFormatter),
}

impl Formatter {
    /// Compile `spec`. `start_ns` (realtime ns since the Unix epoch) is what
    /// `%(relativeCreated)d` counts from (the flusher's start).
    ///
    /// # Errors
    /// [`FormatError`] when the format string, the date format or the
    /// defaults cannot be used: a malformed format or one without a field
    /// for its style (CPython's `validate=True`), a name that is neither a
    /// record attribute nor in the defaults, a conversion the attribute's
    /// type does not take, an unsupported `%` directive in the date format.
    pub fn new(spec: &FormatSpec, start_ns: u64) -> Result<Self, FormatError> {
        let defaults = match spec.defaults.as_deref() {
            None => Vec::new(),
            Some(text) => value::parse_object(text.as_bytes())
                .ok_or_else(|| {
                    FormatError::new(format!(
                        "invalid --defaults {text:?}: expected a JSON object, e.g. '{{\"request_id\": \"-\"}}'"
                    ))
                })?
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        };
        let datefmt = spec.datefmt.as_deref();
        let dates = if spec.utc {
            DateFormat::utc(datefmt)?
        } else {
            DateFormat::local(datefmt)?
        };
        let format = spec.format.as_deref();
        let service = spec.service_name.as_deref();
        match format {
            Some("json") => return Ok(Formatter::Json(json::JsonFormatter::new(dates))),
            Some("json:ecs") => return Ok(Formatter::Ecs(presets::EcsFormatter::new(service))),
            Some("json:otel") => return Ok(Formatter::Otel(presets::OtelFormatter::new(service))),
            Some(other) if other.starts_with("json:") => {
                return Err(FormatError::new(format!(
                    "invalid --format {other:?}: the JSON presets are json, json:ecs and json:otel"
                )))
            }
            _ => {}
        }
        let format = format.unwrap_or(spec.style.default_format());
        let pieces = pieces(format, spec.style)?;
        line::LineFormatter::new(pieces, &defaults, dates, spec.escape, start_ns)
            .map(Formatter::Text)
            .map_err(|msg| FormatError::new(format!("invalid --format {format:?}: {msg}")))
    }

    /// Append `entry` as one line (terminated by `\n`) to `out`.
    ///
    /// A record whose `extra` holds binary entries (the tracing layer's,
    /// see [`ringflush_ring::fields`]) is first given the message and JSON
    /// `extra` they render as; entries that do not decode leave the message
    /// as it is, followed by a note saying so.
    #[inline]
    pub fn format(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        if entry.record.formatted {
            return formatted_line(entry.record.message, out);
        }
        if ringflush_ring::fields::binary::is_binary(entry.record.extra) {
            return self.format_binary(entry, out);
        }
        self.format_rendered(entry, out);
    }

    fn format_binary(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        EXPANDED.with(|cell| {
            // Never borrowed twice: formatting does not call back into it.
            let mut bufs = cell.borrow_mut();
            let (text, json) = &mut *bufs;
            text.clear();
            json.clear();
            let message = String::from_utf8_lossy(entry.record.message);
            if ringflush_ring::fields::expand(&message, entry.record.extra, text, json).is_err() {
                text.clear();
                json.clear();
                text.push_str(&message);
                text.push_str(" [ringflush: undecodable fields dropped]");
            }
            let record = Record {
                message: text.as_bytes(),
                extra: json.as_bytes(),
                ..entry.record
            };
            self.format_rendered(&Entry { record, ..*entry }, out);
        });
    }

    #[inline]
    fn format_rendered(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        match self {
            Formatter::Text(f) => f.format(entry, out),
            Formatter::Json(f) => f.format(entry, out),
            Formatter::Ecs(f) => f.format(entry, out),
            Formatter::Otel(f) => f.format(entry, out),
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

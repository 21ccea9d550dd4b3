//! Text lines in the three styles of `logging.Formatter`: a format string
//! is compiled once (the `percent`, `brace` and `dollar` modules split it)
//! into literal text and fields, each field an attribute and how to
//! convert it; formatting a record walks the parts.
//!
//! Where a field's value comes from, in CPython's order (`defaults |
//! record.__dict__`): the record's own attributes; then, for names a
//! `LogRecord` does not have, the record's `extra` JSON object (where the
//! Python handler puts `extra={...}` and what filters add), then
//! `--defaults`. Every such name must have a default: a name found nowhere
//! is refused when compiling (a typo would otherwise fill the file with
//! lines that lack it). `exc_text`, `stack_info`, `exc_info`, `msg` and
//! `args` are attributes the ring does not carry: they come from `extra`,
//! else `None` (`msg`: the message; `args`: `()`).
//!
//! After the fields, the `exc_text` and then the `stack_info` text of the
//! record's `extra` are appended as `logging.Formatter.format` does: a
//! newline unless the line ends with one, then the text.

use std::borrow::Cow;

use ringflush_ring::codec::level;

use crate::datefmt::DateFormat;
use crate::pyfmt::{self, BraceSpec, Conversion, PercentConv, PercentSpec};
use crate::text::{lossy, push_escaped, push_lossy};
use crate::value::{self, py_str, Json, Val};
use crate::Entry;

/// How a field's value becomes text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// `str(value)`: `%(x)s`, `{x}`, `$x`.
    Plain,
    /// Any other `%` conversion.
    Percent(PercentSpec),
    /// `format()` after an optional `!s`/`!r`/`!a`.
    Brace {
        conversion: Option<Conversion>,
        spec: BraceSpec,
    },
}

/// A parsed format string's pieces, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    Field {
        name: String,
        conv: Conv,
        /// The field as written, for messages.
        shown: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Asctime,
    Created,
    Msecs,
    RelativeCreated,
    LevelName,
    LevelNo,
    Name,
    Message,
    Process,
    ProcessName,
    Thread,
    ThreadName,
    Filename,
    Pathname,
    Module,
    FuncName,
    Lineno,
    TaskName,
    ExcText,
    StackInfo,
    ExcInfo,
    Msg,
    Args,
    /// A name from `extra` or `--defaults`: index into the formatter's names.
    Extra(u32),
}

const ATTRS: &[(&str, Attr)] = &[
    ("asctime", Attr::Asctime),
    ("created", Attr::Created),
    ("msecs", Attr::Msecs),
    ("relativeCreated", Attr::RelativeCreated),
    ("levelname", Attr::LevelName),
    ("levelno", Attr::LevelNo),
    ("name", Attr::Name),
    ("message", Attr::Message),
    ("process", Attr::Process),
    ("processName", Attr::ProcessName),
    ("thread", Attr::Thread),
    ("threadName", Attr::ThreadName),
    ("filename", Attr::Filename),
    ("pathname", Attr::Pathname),
    ("module", Attr::Module),
    ("funcName", Attr::FuncName),
    ("lineno", Attr::Lineno),
    ("taskName", Attr::TaskName),
    ("exc_text", Attr::ExcText),
    ("stack_info", Attr::StackInfo),
    ("exc_info", Attr::ExcInfo),
    ("msg", Attr::Msg),
    ("args", Attr::Args),
];

/// The attributes every record has, as `LogRecord` names them (what a
/// format can use without `--defaults`).
pub const RECORD_ATTRIBUTES: [&str; 23] = {
    let mut names = [""; 23];
    let mut i = 0;
    while i < ATTRS.len() {
        names[i] = ATTRS[i].0;
        i += 1;
    }
    names
};

/// The Python type an attribute always has, where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
    /// `str` or `None`, or anything from `extra`.
    Varies,
}

impl Attr {
    fn kind(self) -> Kind {
        match self {
            Attr::Created | Attr::Msecs | Attr::RelativeCreated => Kind::Float,
            Attr::LevelNo | Attr::Process | Attr::Thread | Attr::Lineno => Kind::Int,
            Attr::TaskName
            | Attr::ExcText
            | Attr::StackInfo
            | Attr::ExcInfo
            | Attr::Msg
            | Attr::Args
            | Attr::Extra(_) => Kind::Varies,
            _ => Kind::Str,
        }
    }

    /// Read from the record's `extra` object.
    fn comes_from_extra(self) -> bool {
        matches!(
            self,
            Attr::ExcText
                | Attr::StackInfo
                | Attr::ExcInfo
                | Attr::Msg
                | Attr::Args
                | Attr::Extra(_)
        )
    }
}

#[derive(Debug, Clone)]
enum Part {
    Literal(Box<[u8]>),
    /// A text attribute as it is: `%(name)s`, `{name}`, `$name`.
    Text(Attr),
    /// An integer attribute as it is: `%(process)d`, `{process}`.
    Int(Attr),
    /// `asctime` as it is.
    Asctime,
    /// Anything else.
    Field(Attr, Conv),
}

/// Formats records with a compiled `%`-, `{`- or `$`-style format string.
#[derive(Debug)]
pub struct LineFormatter {
    parts: Vec<Part>,
    /// Whether any field reads the record's `extra`.
    reads_extra: bool,
    fields: Fields,
}

/// What formatting a field needs besides the record.
#[derive(Debug)]
struct Fields {
    dates: DateFormat,
    escape: bool,
    start_ns: u64,
    /// Names of [`Attr::Extra`] fields and their `--defaults` values.
    extra: Vec<(String, Json<'static>)>,
    scratch: String,
    bytes: Vec<u8>,
}

/// The parsed members of a record's `extra` object.
type Members<'a> = [(Cow<'a, str>, Json<'a>)];

/// The names `pieces` reads that are not record attributes, in order.
pub(crate) fn extra_names(pieces: &[Piece]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in pieces {
        if let Piece::Field { name, .. } = p {
            if !ATTRS.iter().any(|(n, _)| n == name) && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

impl LineFormatter {
    /// Compile parsed `pieces`; `defaults` are `--defaults`' members.
    /// Err is why the format cannot be used.
    pub(crate) fn new(
        pieces: Vec<Piece>,
        defaults: &[(String, Json<'static>)],
        dates: DateFormat,
        escape: bool,
        start_ns: u64,
    ) -> Result<Self, String> {
        let mut extra: Vec<(String, Json<'static>)> = Vec::new();
        let mut parts = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let (name, conv, shown) = match piece {
                Piece::Literal(l) => {
                    parts.push(Part::Literal(l.into_bytes().into_boxed_slice()));
                    continue;
                }
                Piece::Field { name, conv, shown } => (name, conv, shown),
            };
            let attr = match ATTRS.iter().find(|(n, _)| *n == name) {
                Some(&(_, attr)) => attr,
                None => {
                    let Some((_, default)) = defaults.iter().find(|(n, _)| *n == name) else {
                        return Err(format!(
                            "unknown attribute {shown}: not a LogRecord attribute \
                             ({}); a field that records carry in extra= or that a \
                             filter adds also needs a value for records without it: \
                             --defaults '{{\"{name}\": \"-\"}}'",
                            RECORD_ATTRIBUTES.join(", ")
                        ));
                    };
                    let i = match extra.iter().position(|(n, _)| *n == name) {
                        Some(i) => i,
                        None => {
                            extra.push((name.clone(), default.clone()));
                            extra.len() - 1
                        }
                    };
                    Attr::Extra(i as u32)
                }
            };
            let conv = check(attr, conv, &name, &shown, &extra)?;
            parts.push(match (conv, attr.kind()) {
                (Conv::Plain, _) if attr == Attr::Asctime => Part::Asctime,
                (Conv::Plain, Kind::Str) => Part::Text(attr),
                (Conv::Plain, Kind::Int) => Part::Int(attr),
                (conv, _) => Part::Field(attr, conv),
            });
        }
        if parts.iter().all(|p| matches!(p, Part::Literal(_))) {
            return Err("no field".into());
        }
        Ok(Self {
            reads_extra: parts
                .iter()
                .any(|p| matches!(p, Part::Field(a, _) if a.comes_from_extra())),
            parts,
            fields: Fields {
                dates,
                escape,
                start_ns,
                extra,
                scratch: String::new(),
                bytes: Vec::new(),
            },
        })
    }

    /// Append `e`, formatted, and a `\n` to `out`.
    #[inline]
    pub fn format(&mut self, e: &Entry<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        let raw = e.record.extra;
        let members = if self.reads_extra && !raw.is_empty() {
            value::parse_object(raw)
        } else {
            None
        };
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Text(attr) => push_lossy(&text(*attr, e), self.fields.escape, out),
                Part::Int(attr) => push_int(int(*attr, e), out),
                Part::Asctime => self.fields.asctime(e.created_ns, out),
                Part::Field(attr, conv) => {
                    self.fields.field(*attr, conv, e, members.as_deref(), out)
                }
            }
        }
        if !raw.is_empty() {
            self.fields.texts(raw, members.as_deref(), start, out);
        }
        out.push(b'\n');
    }
}

/// Check `conv` on the type `attr` always has (CPython would raise on every
/// record otherwise), and use the fast path where it gives the same text.
fn check(
    attr: Attr,
    conv: Conv,
    name: &str,
    shown: &str,
    extra: &[(String, Json<'static>)],
) -> Result<Conv, String> {
    let sample = match attr.kind() {
        // Not one character: `%c` takes no text attribute (CPython raises
        // for every record but those whose text is one character long).
        Kind::Str => Val::Str("text"),
        Kind::Int => Val::Int(1),
        Kind::Float => Val::Float(1.5),
        Kind::Varies => match attr {
            Attr::Extra(i) => Val::of(&extra[i as usize].1),
            _ => return Ok(conv),
        },
    };
    let mut out = String::new();
    let checked = match &conv {
        Conv::Plain => Ok(()),
        Conv::Percent(spec) => pyfmt::percent(&sample, spec, &mut out),
        Conv::Brace { conversion, spec } => pyfmt::brace(&sample, *conversion, spec, &mut out),
    };
    if let Err(why) = checked {
        let ty = sample.type_name();
        let a = if ty == "int" { "an" } else { "a" };
        let what = match attr {
            Attr::Extra(_) => format!("--defaults gives {name} {a} {ty}"),
            _ => format!("{name} is {a} {ty}"),
        };
        let hint = if attr.kind() == Kind::Str && matches!(conv, Conv::Percent(_)) {
            " (a number conversion needs a number)"
        } else {
            ""
        };
        return Err(format!("{shown}: {what}: {why}{hint}"));
    }
    // `%(lineno)d` is `str(lineno)`.
    Ok(match conv {
        Conv::Percent(PercentSpec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: 0,
            precision: None,
            conv: PercentConv::Decimal | PercentConv::Integer | PercentConv::Unsigned,
        }) if attr.kind() == Kind::Int => Conv::Plain,
        other => other,
    })
}

/// A field's value before it is typed (text is still bytes).
enum Raw<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
    Float(f64),
    Asctime,
    Val(Val<'a>),
}

/// A text attribute's bytes (`levelname` is only owned for levels without
/// a name, `Level 25`).
#[inline]
fn text<'a>(attr: Attr, e: &'a Entry<'a>) -> Cow<'a, [u8]> {
    let r = &e.record;
    Cow::Borrowed(match attr {
        Attr::LevelName => {
            return match level::name(r.level) {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        }
        Attr::Name => or(r.logger, b"root"),
        Attr::Message => r.message,
        Attr::ProcessName => or(r.process_name, b"MainProcess"),
        Attr::ThreadName => or(r.thread_name, b"MainThread"),
        Attr::Pathname => or(r.pathname, b"(unknown file)"),
        Attr::Filename => basename(or(r.pathname, b"(unknown file)")),
        Attr::Module if r.module.is_empty() => stem(basename(or(r.pathname, b"(unknown file)"))),
        Attr::Module => r.module,
        Attr::FuncName => or(r.func, b"(unknown function)"),
        _ => unreachable!("{attr:?} is not a text attribute"),
    })
}

/// An integer attribute's value.
#[inline]
fn int(attr: Attr, e: &Entry<'_>) -> i64 {
    let r = &e.record;
    match attr {
        Attr::LevelNo => r.level.into(),
        Attr::Process => e.pid.into(),
        Attr::Thread => r.thread_id as i64,
        Attr::Lineno => r.line.into(),
        _ => unreachable!("{attr:?} is not an integer attribute"),
    }
}

/// Look `name` up in the record's `extra` members.
fn member<'a>(members: Option<&'a Members<'a>>, name: &str) -> Option<&'a Json<'a>> {
    members?.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

impl Fields {
    #[inline]
    fn field<'a>(
        &mut self,
        attr: Attr,
        conv: &Conv,
        e: &'a Entry<'a>,
        members: Option<&'a Members<'a>>,
        out: &mut Vec<u8>,
    ) {
        let r = &e.record;
        let raw = match attr.kind() {
            Kind::Str if attr == Attr::Asctime => Raw::Asctime,
            Kind::Str => Raw::Bytes(text(attr, e)),
            Kind::Int => Raw::Int(int(attr, e)),
            Kind::Float => Raw::Float(match attr {
                Attr::Created => e.created_ns as f64 / 1e9,
                Attr::Msecs => msecs(e.created_ns) as f64,
                _ => (e.created_ns as i128 - self.start_ns as i128) as f64 / 1e6,
            }),
            Kind::Varies => match attr {
                Attr::TaskName if r.task_name.is_empty() => Raw::Val(Val::None),
                Attr::TaskName => Raw::Bytes(Cow::Borrowed(r.task_name)),
                Attr::ExcText | Attr::StackInfo | Attr::ExcInfo => {
                    let key = match attr {
                        Attr::ExcText => "exc_text",
                        Attr::StackInfo => "stack_info",
                        _ => "exc_info",
                    };
                    Raw::Val(member(members, key).map_or(Val::None, Val::of))
                }
                Attr::Msg => match member(members, "msg") {
                    Some(v) => Raw::Val(Val::of(v)),
                    None => Raw::Bytes(Cow::Borrowed(r.message)),
                },
                Attr::Args => Raw::Val(member(members, "args").map_or(Val::Shown("()"), Val::of)),
                Attr::Extra(i) => {
                    let (name, default) = &self.extra[i as usize];
                    let v = member(members, name).map_or_else(|| Val::of(default), Val::of);
                    // Borrowing `self.extra` and `self.scratch` together:
                    // format here rather than through `Raw`.
                    let mut text = std::mem::take(&mut self.scratch);
                    text.clear();
                    convert(&v, conv, &mut text);
                    self.push(&text, out);
                    self.scratch = text;
                    return;
                }
                _ => unreachable!("every attribute of varying type is above"),
            },
        };
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        match raw {
            Raw::Bytes(b) => convert(&Val::Str(&lossy(&b)), conv, &mut s),
            Raw::Int(i) => convert(&Val::Int(i.into()), conv, &mut s),
            Raw::Float(f) => convert(&Val::Float(f), conv, &mut s),
            Raw::Asctime => {
                let mut asctime = std::mem::take(&mut self.bytes);
                asctime.clear();
                self.asctime(e.created_ns, &mut asctime);
                convert(&Val::Str(&lossy(&asctime)), conv, &mut s);
                self.bytes = asctime;
            }
            Raw::Val(v) => convert(&v, conv, &mut s),
        }
        self.push(&s, out);
        self.scratch = s;
    }

    fn asctime(&mut self, ns: u64, out: &mut Vec<u8>) {
        let (sec, ms) = seconds_and_msecs(ns);
        self.dates.asctime(sec, ms, out);
    }

    fn push(&self, text: &str, out: &mut Vec<u8>) {
        if self.escape {
            push_escaped(text, out);
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }

    /// `logging.Formatter.format`'s tail: the record's exception text,
    /// then its stack, each after a newline unless the line ends with one.
    fn texts(
        &mut self,
        raw: &[u8],
        members: Option<&Members<'_>>,
        start: usize,
        out: &mut Vec<u8>,
    ) {
        // Most extras have neither: a look at each string before parsing.
        if !mentions_texts(raw) {
            return;
        }
        let parsed;
        let members = match members {
            Some(m) => m,
            None => match value::parse_object(raw) {
                Some(m) => {
                    parsed = m;
                    &parsed[..]
                }
                None => return,
            },
        };
        for key in ["exc_text", "stack_info"] {
            let Some(Json::Str(text)) = member(Some(members), key) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let ends_in_newline = if self.escape {
                out[start..].ends_with(b"\\n")
            } else {
                out[start..].ends_with(b"\n")
            };
            if !ends_in_newline {
                self.push("\n", out);
            }
            self.push(text, out);
        }
    }
}

/// `value` converted by `conv`; a value CPython would raise on (a type the
/// conversion does not take) is written as `str(value)`.
fn convert(v: &Val<'_>, conv: &Conv, out: &mut String) {
    let at = out.len();
    let result = match conv {
        Conv::Plain => {
            py_str(v, out);
            Ok(())
        }
        Conv::Percent(spec) => pyfmt::percent(v, spec, out),
        Conv::Brace { conversion, spec } => pyfmt::brace(v, *conversion, spec, out),
    };
    if result.is_err() {
        out.truncate(at);
        py_str(v, out);
    }
}

/// CPython 3.13's `LogRecord.msecs` for a time in ns: the whole
/// milliseconds of the fraction, except 0 where `ns / 1e9` rounds up to
/// the next second (which `created` and `asctime`'s seconds then show).
fn msecs(ns: u64) -> u64 {
    seconds_and_msecs(ns).1
}

/// The second `time.localtime(record.created)` shows, and `msecs`.
pub(crate) fn seconds_and_msecs(ns: u64) -> (i64, u64) {
    let sec = ns / 1_000_000_000;
    let ms = ns % 1_000_000_000 / 1_000_000;
    // Where `ns as f64 / 1e9` rounds up to the next second: only in the
    // last microsecond of a second (f64 has ~0.24 us there).
    if ms == 999 && ns % 1_000_000_000 >= 999_999_000 {
        let created = (ns as f64 / 1e9).floor() as u64;
        if created != sec {
            return (created as i64, 0);
        }
    }
    (sec as i64, ms)
}

/// Whether a string in `raw` (JSON text) starts with `exc_text"` or
/// `stack_info"`: possibly a key of either.
fn mentions_texts(raw: &[u8]) -> bool {
    let mut rest = raw;
    while let Some(q) = rest.iter().position(|&b| b == b'"') {
        rest = &rest[q + 1..];
        if rest.starts_with(b"exc_text\"") || rest.starts_with(b"stack_info\"") {
            return true;
        }
    }
    false
}

#[inline]
fn push_int(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

fn or<'a>(field: &'a [u8], default: &'a [u8]) -> &'a [u8] {
    if field.is_empty() {
        default
    } else {
        field
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

fn stem(file: &[u8]) -> &[u8] {
    match file.iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    }
}

#[cfg(test)]
mod tests {
    use crate::{extra_fields, Entry, FormatSpec, Formatter, Style};
    use ringflush_ring::codec::Record;

    /// 2024-03-06 10:17:33.045678912 UTC
    const T: u64 = 1_709_720_253_045_678_912;

    fn entry(message: &'static [u8], extra: &'static [u8]) -> Entry<'static> {
        Entry {
            created_ns: T,
            pid: 4242,
            record: Record {
                level: 30,
                line: 17,
                thread_id: 140_000,
                logger: b"app.db",
                pathname: b"/srv/app/db.py",
                func: b"query",
                message,
                extra,
                ..Record::default()
            },
        }
    }

    fn spec(format: &str, style: Style, defaults: Option<&str>) -> FormatSpec {
        FormatSpec {
            format: Some(format.into()),
            style,
            defaults: defaults.map(Into::into),
            utc: true,
            ..FormatSpec::default()
        }
    }

    fn fmt_with(spec: &FormatSpec, e: &Entry<'_>) -> String {
        let mut f = Formatter::new(spec, T - 1_500_000_000).unwrap();
        let mut out = Vec::new();
        f.format(e, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn fmt(format: &str, style: Style, defaults: Option<&str>, e: &Entry<'_>) -> String {
        fmt_with(&spec(format, style, defaults), e)
    }

    fn refused(format: &str, style: Style, defaults: Option<&str>) -> String {
        Formatter::new(&spec(format, style, defaults), 0)
            .expect_err(format)
            .to_string()
    }

    // Expected strings: CPython 3.11's logging.Formatter with the same
    // record (created=1709720253.045678912, converter=time.gmtime).
    #[test]
    fn the_three_styles_give_the_same_line() {
        let e = entry(b"hi", b"");
        let want = "2024-03-06 10:17:33,045 WARNING app.db [4242] hi\n";
        for (format, style) in [
            (
                "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
                Style::Percent,
            ),
            (
                "{asctime} {levelname} {name} [{process}] {message}",
                Style::Brace,
            ),
            (
                "$asctime ${levelname} $name [$process] $message",
                Style::Dollar,
            ),
        ] {
            assert_eq!(fmt(format, style, None, &e), want, "{format}");
        }
        // Without --format: the default in each style.
        for style in [Style::Percent, Style::Brace, Style::Dollar] {
            let spec = FormatSpec {
                style,
                utc: true,
                ..FormatSpec::default()
            };
            assert_eq!(fmt_with(&spec, &e), want);
        }
    }

    #[test]
    fn brace_specs_and_conversions() {
        let e = entry(b"it's", b"");
        assert_eq!(
            fmt(
                "{levelname:<8}|{levelname:*^11}|{lineno:05}|{lineno:#x}|{thread:,}|{created:.3f}|{msecs:03.0f}|{message!r}|{message!a:>8}|{{x}}",
                Style::Brace,
                None,
                &e
            ),
            "WARNING |**WARNING**|00017|0x11|140,000|1709720253.046|045|\"it's\"|  \"it's\"|{x}\n"
        );
        assert_eq!(
            fmt(
                "{relativeCreated} {taskName} {taskName!r} {exc_text}",
                Style::Brace,
                None,
                &e
            ),
            "1500.0 None None None\n"
        );
        assert_eq!(fmt("$$ $message$$", Style::Dollar, None, &e), "$ it's$\n");
    }

    #[test]
    fn names_from_extra_then_defaults() {
        let defaults = Some(r#"{"request_id": "-", "n": 0, "ok": null}"#);
        let with = entry(
            b"m",
            br#"{"request_id": "r1", "n": 12.5, "ok": true, "tags": ["a", 1]}"#,
        );
        let without = entry(b"m", b"");
        let invalid = entry(b"m", b"not json");
        for (format, style) in [
            ("%(request_id)s %(n)s %(ok)s %(n)05.1f", Style::Percent),
            ("{request_id} {n} {ok} {n:05.1f}", Style::Brace),
        ] {
            assert_eq!(fmt(format, style, defaults, &with), "r1 12.5 True 012.5\n");
            assert_eq!(fmt(format, style, defaults, &without), "- 0 None 000.0\n");
            assert_eq!(fmt(format, style, defaults, &invalid), "- 0 None 000.0\n");
        }
        assert_eq!(
            fmt("$request_id $ok", Style::Dollar, defaults, &without),
            "- None\n"
        );
        // A value the conversion does not take (CPython raises): str().
        let text_n = entry(b"m", br#"{"n": "many"}"#);
        assert_eq!(
            fmt("%(n)d|{n}", Style::Percent, defaults, &text_n),
            "many|{n}\n"
        );
        assert_eq!(fmt("{n:d}", Style::Brace, defaults, &text_n), "many\n");
        // Standard attributes never come from extra or the defaults.
        let shadow = entry(b"m", br#"{"message": "shadow", "levelname": "X"}"#);
        assert_eq!(
            fmt(
                "%(levelname)s %(message)s",
                Style::Percent,
                Some(r#"{"message": "d"}"#),
                &shadow
            ),
            "WARNING m\n"
        );
    }

    #[test]
    fn exception_and_stack_text_follow_the_line() {
        let e = entry(
            b"failed",
            br#"{"exc_text": "Traceback:\n  boom", "stack_info": "Stack:\n  here", "user": "u"}"#,
        );
        assert_eq!(
            fmt("%(levelname)s %(message)s", Style::Percent, None, &e),
            "WARNING failed\nTraceback:\n  boom\nStack:\n  here\n"
        );
        // A line that ends with a newline gets none added.
        let nl = entry(b"ends\n", br#"{"exc_text": "T"}"#);
        assert_eq!(fmt("%(message)s", Style::Percent, None, &nl), "ends\nT\n");
        // Empty text is not appended; the attribute is there too.
        let empty = entry(b"m", br#"{"exc_text": "", "stack_info": null}"#);
        assert_eq!(
            fmt(
                "{message} {exc_text!r} {stack_info}",
                Style::Brace,
                None,
                &empty
            ),
            "m '' None\n"
        );
        // Escaped: still one line.
        let spec = FormatSpec {
            escape: true,
            ..spec("%(message)s", Style::Percent, None)
        };
        assert_eq!(
            fmt_with(&spec, &e),
            "failed\\nTraceback:\\n  boom\\nStack:\\n  here\n"
        );
    }

    #[test]
    fn formats_cpython_refuses_and_names_found_nowhere_are_errors() {
        for (format, style, why) in [
            (
                "{asctime} {message}",
                Style::Percent,
                "no field for the '%' style (it is a '{'-style format",
            ),
            (
                "%(message)s",
                Style::Brace,
                "no field for the '{' style (it is a '%'-style format",
            ),
            ("just text", Style::Dollar, "no field for the '$' style"),
            ("{message", Style::Brace, "has no '}'"),
            ("{message}}", Style::Brace, "single '}'"),
            ("{message!x}", Style::Brace, "invalid conversion"),
            ("{message:z}", Style::Brace, "'z'"),
            ("{message:,,}", Style::Brace, "both"),
            ("{}", Style::Brace, "positional"),
            ("{0}", Style::Brace, "positional"),
            (
                "{message.upper}",
                Style::Brace,
                "attribute and index access",
            ),
            ("{message:{width}}", Style::Brace, "nested"),
            ("$message $", Style::Dollar, "bare '$'"),
            ("${1x}", Style::Dollar, "bare '$'"),
            (
                "{lineno:s}",
                Style::Brace,
                "lineno is an int: Unknown format code 's'",
            ),
            ("{levelname:+}", Style::Brace, "Sign not allowed"),
            (
                "%(created)x",
                Style::Percent,
                "an integer is required, not float",
            ),
            ("%(message)c", Style::Percent, "%c requires"),
            (
                "{request_id}",
                Style::Brace,
                "unknown attribute {request_id}",
            ),
            (
                "$request_id",
                Style::Dollar,
                "unknown attribute $request_id",
            ),
        ] {
            let err = refused(format, style, None);
            assert!(err.contains(why), "{format}: {err}");
            assert!(
                err.starts_with(&format!("invalid --format {format:?}: ")),
                "{err}"
            );
        }
        let err = refused("%(request_id)s", Style::Percent, None);
        assert!(err.contains(r#"--defaults '{"request_id": "-"}'"#), "{err}");
        let err = refused("%(n)d", Style::Percent, Some(r#"{"n": "x"}"#));
        assert!(err.contains("--defaults gives n a str"), "{err}");
        for bad in ["[1]", "{", "{\"a\": }", "\"x\""] {
            let err = refused("%(message)s", Style::Percent, Some(bad));
            assert!(err.starts_with("invalid --defaults"), "{err}");
        }
    }

    #[test]
    fn extra_fields_lists_what_records_must_carry() {
        assert_eq!(
            extra_fields(
                "%(asctime)s %(request_id)s %(user)r %(request_id)s %(exc_text)s",
                Style::Percent
            )
            .unwrap(),
            ["request_id", "user"]
        );
        assert_eq!(
            extra_fields("{a} {b!r:>3} $c", Style::Brace).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            extra_fields("$a ${b} $$c", Style::Dollar).unwrap(),
            ["a", "b"]
        );
        assert!(extra_fields("{a", Style::Brace).is_err());
    }

    #[test]
    fn msecs_follows_cpython_3_13_at_the_end_of_a_second() {
        // 1709720253.999999999 s is 1709720254.0 as a float: CPython 3.13
        // shows that second and msecs 0.
        let mut e = entry(b"m", b"");
        e.created_ns = 1_709_720_253_999_999_999;
        assert_eq!(
            fmt(
                "%(asctime)s %(msecs)d %(created)f",
                Style::Percent,
                None,
                &e
            ),
            "2024-03-06 10:17:34,000 0 1709720254.000000\n"
        );
        e.created_ns = 1_709_720_253_999_000_000;
        assert_eq!(
            fmt("%(asctime)s %(msecs)d", Style::Percent, None, &e),
            "2024-03-06 10:17:33,999 999\n"
        );
    }
}

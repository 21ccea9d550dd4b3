//! Python `logging`'s `%`-style format strings, e.g.
//! `%(asctime)s %(levelname)-8s %(name)s: %(message)s`.
//!
//! The string is compiled once into literal and field parts; each field is
//! `%(attr)[flags][width][.precision]conversion` as in Python's `%`
//! operator, with flags `-0+ #` and conversions `s r a d i u f F e E g G x
//! X o`. Unknown attributes, a numeric conversion of a text attribute, and
//! `*` widths are rejected when compiling, not discovered per record.

use std::io::Write;

use ringflush_ring::codec::level;

use crate::clock::Clock;
use crate::text::{lossy, push_escaped, push_lossy};
use crate::Entry;

/// A format string or date format that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(String);

impl FormatError {
    pub(crate) fn new(msg: String) -> Self {
        Self(msg)
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

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
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Float,
}

impl Attr {
    fn kind(self) -> Kind {
        match self {
            Attr::Created | Attr::Msecs | Attr::RelativeCreated => Kind::Float,
            Attr::LevelNo | Attr::Process | Attr::Thread | Attr::Lineno => Kind::Int,
            _ => Kind::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
    conv: u8,
}

impl Spec {
    /// A plain `s` with no width or precision: copy the text as is.
    fn is_plain_s(&self) -> bool {
        self.conv == b's' && self.width == 0 && self.precision.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Field(Attr, Spec),
}

/// Formats records with a compiled `%`-style format string.
#[derive(Debug)]
pub struct PercentFormatter {
    parts: Vec<Part>,
    fields: Fields,
}

/// What formatting a field needs besides the record.
#[derive(Debug)]
struct Fields {
    clock: Clock,
    escape: bool,
    start_ns: u64,
    scratch: Vec<u8>,
}

fn parse(format: &str) -> Result<Vec<Part>, FormatError> {
    let err = |msg: String| FormatError(format!("invalid --format {format:?}: {msg}"));
    let bytes = format.as_bytes();
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            lit.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'%') => {
                lit.push(b'%');
                i += 2;
                continue;
            }
            Some(b'(') => {}
            _ => {
                return Err(err(format!(
                    "'%' at byte {i} must be followed by '(name)' or '%'"
                )))
            }
        }
        let close = format[i + 2..]
            .find(')')
            .ok_or_else(|| err("unclosed '%('".into()))?
            + i
            + 2;
        let name = &format[i + 2..close];
        let attr = ATTRS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let known: Vec<&str> = ATTRS.iter().map(|(n, _)| *n).collect();
                err(format!(
                    "unknown attribute %({name}); known: {}",
                    known.join(", ")
                ))
            })?;
        let mut j = close + 1;
        let mut spec = Spec::default();
        while let Some(&c) = bytes.get(j) {
            match c {
                b'-' => spec.left = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                _ => break,
            }
            j += 1;
        }
        let digits = |j: &mut usize| -> Option<usize> {
            let start = *j;
            while bytes.get(*j).is_some_and(u8::is_ascii_digit) {
                *j += 1;
            }
            (start < *j)
                .then(|| format[start..*j].parse().ok())
                .flatten()
        };
        if bytes.get(j) == Some(&b'*') {
            return Err(err("'*' widths are not supported".into()));
        }
        spec.width = digits(&mut j).unwrap_or(0).min(1 << 16);
        if bytes.get(j) == Some(&b'.') {
            j += 1;
            spec.precision = Some(digits(&mut j).unwrap_or(0).min(1 << 16));
        }
        // Python accepts (and ignores) a length modifier.
        if matches!(bytes.get(j), Some(b'h' | b'l' | b'L')) {
            j += 1;
        }
        let conv = *bytes
            .get(j)
            .ok_or_else(|| err(format!("%({name}) has no conversion character")))?;
        let ok = match conv {
            b's' | b'r' | b'a' => true,
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' | b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => {
                attr.kind() != Kind::Text
            }
            _ => return Err(err(format!("unsupported conversion '{}'", conv as char))),
        };
        if !ok {
            return Err(err(format!(
                "%({name}){} needs a number, but {name} is text",
                conv as char
            )));
        }
        spec.conv = conv;
        if !lit.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut lit)));
        }
        parts.push(Part::Field(attr, spec));
        i = j + 1;
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(lit));
    }
    Ok(parts)
}

enum Value<'a> {
    Text(&'a [u8]),
    Int(i64),
    Float(f64),
}

impl PercentFormatter {
    pub(crate) fn new(
        format: &str,
        clock: Clock,
        escape: bool,
        start_ns: u64,
    ) -> Result<Self, FormatError> {
        Ok(Self {
            parts: parse(format)?,
            fields: Fields {
                clock,
                escape,
                start_ns,
                scratch: Vec::new(),
            },
        })
    }

    /// Append `e`, formatted, and a `\n` to `out`.
    #[inline]
    pub fn format(&mut self, e: &Entry<'_>, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Field(attr, spec) => self.fields.field(*attr, spec, e, out),
            }
        }
        out.push(b'\n');
    }
}

impl Fields {
    #[inline]
    fn field(&mut self, attr: Attr, spec: &Spec, e: &Entry<'_>, out: &mut Vec<u8>) {
        let r = &e.record;
        let level_name;
        let filename;
        let value = match attr {
            Attr::Asctime => {
                if spec.is_plain_s() {
                    return self.clock.asctime(e.created_ns, out);
                }
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                self.clock.asctime(e.created_ns, &mut buf);
                pad_text(&lossy(&buf), spec, false, out);
                self.scratch = buf;
                return;
            }
            Attr::Created => Value::Float(e.created_ns as f64 / 1e9),
            Attr::Msecs => Value::Float((e.created_ns / 1_000_000 % 1000) as f64),
            Attr::RelativeCreated => {
                Value::Float(e.created_ns.saturating_sub(self.start_ns) as f64 / 1e6)
            }
            Attr::LevelName => {
                level_name = level::name(r.level);
                Value::Text(level_name.as_bytes())
            }
            Attr::LevelNo => Value::Int(r.level as i64),
            Attr::Name => Value::Text(or(r.logger, b"root")),
            Attr::Message => Value::Text(r.message),
            Attr::Process => Value::Int(e.pid as i64),
            Attr::ProcessName => Value::Text(or(r.process_name, b"MainProcess")),
            Attr::Thread => Value::Int(r.thread_id as i64),
            Attr::ThreadName => Value::Text(or(r.thread_name, b"MainThread")),
            Attr::Pathname => Value::Text(or(r.pathname, b"(unknown file)")),
            Attr::Filename => {
                filename = basename(or(r.pathname, b"(unknown file)"));
                Value::Text(filename)
            }
            Attr::Module => Value::Text(if r.module.is_empty() {
                stem(basename(or(r.pathname, b"(unknown file)")))
            } else {
                r.module
            }),
            Attr::FuncName => Value::Text(or(r.func, b"(unknown function)")),
            Attr::Lineno => Value::Int(r.line as i64),
            Attr::TaskName => Value::Text(or(r.task_name, b"None")),
        };
        match value {
            Value::Text(t) if spec.is_plain_s() => push_lossy(t, self.escape, out),
            Value::Text(t) => pad_text(&lossy(t), spec, self.escape, out),
            Value::Int(v) => format_number(v as f64, Some(v), spec, out),
            Value::Float(v) => format_number(v, None, spec, out),
        }
    }
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

/// Python's `repr` of a str: single quotes unless the text has `'` and no `"`.
fn repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(text.len() + 2);
    s.push(quote);
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c == quote => {
                s.push('\\');
                s.push(c)
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push(quote);
    s
}

fn pad_text(text: &str, spec: &Spec, escape: bool, out: &mut Vec<u8>) {
    let owned;
    let mut text = match spec.conv {
        b'r' | b'a' => {
            owned = repr(text);
            owned.as_str()
        }
        _ => text,
    };
    if let Some(p) = spec.precision {
        if let Some((i, _)) = text.char_indices().nth(p) {
            text = &text[..i];
        }
    }
    let fill = spec.width.saturating_sub(text.chars().count());
    if !spec.left {
        out.resize(out.len() + fill, b' ');
    }
    if escape {
        push_escaped(text, out);
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    if spec.left {
        out.resize(out.len() + fill, b' ');
    }
}

/// Python's `%` for numbers. `int` is the exact value for integer attributes.
fn format_number(v: f64, int: Option<i64>, spec: &Spec, out: &mut Vec<u8>) {
    let neg = v.is_sign_negative() && v != 0.0;
    let a = v.abs();
    let body = match spec.conv {
        b'd' | b'i' | b'u' => int
            .map(|i| i.unsigned_abs())
            .unwrap_or(a.trunc() as u64)
            .to_string(),
        b'x' | b'X' | b'o' => {
            let n = int.map(|i| i.unsigned_abs()).unwrap_or(a.trunc() as u64);
            let (digits, prefix) = match spec.conv {
                b'x' => (format!("{n:x}"), "0x"),
                b'X' => (format!("{n:X}"), "0X"),
                _ => (format!("{n:o}"), "0o"),
            };
            if spec.alt {
                format!("{prefix}{digits}")
            } else {
                digits
            }
        }
        b'f' | b'F' => format!("{:.*}", spec.precision.unwrap_or(6), a),
        b'e' | b'E' => exp(a, spec.precision.unwrap_or(6), spec.conv == b'E'),
        b'g' | b'G' => general(a, spec.precision.unwrap_or(6), spec.alt, spec.conv == b'G'),
        // s, r, a
        _ => match int {
            Some(i) => i.unsigned_abs().to_string(),
            None => python_float_str(a),
        },
    };
    let sign = if neg {
        "-"
    } else if spec.plus && !matches!(spec.conv, b's' | b'r' | b'a') {
        "+"
    } else if spec.space && !matches!(spec.conv, b's' | b'r' | b'a') {
        " "
    } else {
        ""
    };
    let len = sign.len() + body.len();
    let fill = spec.width.saturating_sub(len);
    let numeric = !matches!(spec.conv, b's' | b'r' | b'a');
    if spec.left {
        let _ = write!(out, "{sign}{body}");
        out.resize(out.len() + fill, b' ');
    } else if spec.zero && numeric {
        out.extend_from_slice(sign.as_bytes());
        out.resize(out.len() + fill, b'0');
        out.extend_from_slice(body.as_bytes());
    } else {
        out.resize(out.len() + fill, b' ');
        let _ = write!(out, "{sign}{body}");
    }
}

/// `str(float)` for the magnitudes log records have: shortest round-trip
/// digits, with `.0` on integral values.
fn python_float_str(a: f64) -> String {
    let s = format!("{a}");
    if a.is_finite() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

fn exp(a: f64, precision: usize, upper: bool) -> String {
    let s = format!("{:.*e}", precision, a);
    let (mantissa, e) = s.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().expect("exponent is an integer");
    let sign = if e < 0 { '-' } else { '+' };
    let s = format!("{mantissa}e{sign}{:02}", e.abs());
    if upper {
        s.to_uppercase()
    } else {
        s
    }
}

fn general(a: f64, precision: usize, alt: bool, upper: bool) -> String {
    let p = precision.max(1);
    if a == 0.0 {
        return if alt {
            format!("{:.*}", p - 1, 0.0)
        } else {
            "0".into()
        };
    }
    let x = format!("{:.*e}", p - 1, a);
    let e: i32 = x.split_once('e').unwrap().1.parse().unwrap();
    let mut s = if e < -4 || e >= p as i32 {
        exp(a, p - 1, upper)
    } else {
        format!("{:.*}", (p as i32 - 1 - e) as usize, a)
    };
    if !alt {
        let (num, tail) = match s.find(['e', 'E']) {
            Some(i) => (s[..i].to_string(), s[i..].to_string()),
            None => (s.clone(), String::new()),
        };
        let num = if num.contains('.') {
            num.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            num
        };
        s = num + &tail;
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::{Entry, FormatSpec, Formatter};
    use ringflush_ring::codec::Record;

    /// 2024-03-06 10:17:33.045678912 UTC
    const T: u64 = 1_709_720_253_045_678_912;

    fn entry(message: &'static [u8]) -> Entry<'static> {
        Entry {
            created_ns: T,
            pid: 4242,
            record: Record {
                level: 30,
                line: 17,
                thread_id: 140_000,
                logger: b"app.db",
                thread_name: b"worker-1",
                pathname: b"/srv/app/db.py",
                func: b"query",
                message,
                ..Record::default()
            },
        }
    }

    fn fmt(format: &str, datefmt: Option<&str>, e: &Entry<'_>) -> String {
        let spec = FormatSpec {
            format: Some(format.into()),
            datefmt: datefmt.map(Into::into),
            escape: false,
            utc: true,
        };
        let mut f = Formatter::new(&spec, T - 1_500_000_000).unwrap();
        let mut out = Vec::new();
        f.format(e, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn python_default_asctime_has_milliseconds() {
        let e = entry(b"hi");
        assert_eq!(
            fmt("%(asctime)s %(levelname)s %(name)s %(message)s", None, &e),
            "2024-03-06 10:17:33,045 WARNING app.db hi\n"
        );
        assert_eq!(fmt("%(asctime)s", Some("%H:%M:%S"), &e), "10:17:33\n");
    }

    // Expected strings below were produced by CPython 3.11's logging with the
    // same record fields (created=1709720253.045678912, utc converter).
    #[test]
    fn every_attribute_matches_python() {
        let e = entry(b"m");
        assert_eq!(
            fmt(
                "%(levelno)d|%(process)d|%(thread)d|%(threadName)s|%(filename)s|%(pathname)s|%(module)s|%(funcName)s|%(lineno)d|%(processName)s|%(taskName)s",
                None,
                &e
            ),
            "30|4242|140000|worker-1|db.py|/srv/app/db.py|db|query|17|MainProcess|None\n"
        );
        assert_eq!(fmt("%(msecs)03d %(msecs)d", None, &e), "045 45\n");
        assert_eq!(fmt("%(created)f", None, &e), "1709720253.045679\n");
        assert_eq!(fmt("%(relativeCreated)d", None, &e), "1500\n");
    }

    #[test]
    fn flags_width_precision_like_percent_operator() {
        let e = entry(b"hello");
        assert_eq!(fmt("[%(levelname)-8s]", None, &e), "[WARNING ]\n");
        assert_eq!(fmt("[%(levelname)8s]", None, &e), "[ WARNING]\n");
        assert_eq!(fmt("[%(levelname).4s]", None, &e), "[WARN]\n");
        assert_eq!(
            fmt("[%(lineno)5d][%(lineno)-5d][%(lineno)05d]", None, &e),
            "[   17][17   ][00017]\n"
        );
        assert_eq!(
            fmt("%(lineno)+d %(lineno)x %(lineno)#o", None, &e),
            "+17 11 0o21\n"
        );
        assert_eq!(
            fmt("%(created).2f %(created)e", None, &e),
            "1709720253.05 1.709720e+09\n"
        );
        assert_eq!(fmt("%(created)g %(msecs)g", None, &e), "1.70972e+09 45\n");
        assert_eq!(
            fmt("%(message)r %(lineno)s 100%%", None, &e),
            "'hello' 17 100%\n"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let e = entry(b"bad \xff byte");
        assert_eq!(fmt("%(message)s", None, &e), "bad \u{fffd} byte\n");
    }

    #[test]
    fn bad_formats_are_rejected_with_a_reason() {
        for (bad, why) in [
            ("%(nope)s", "unknown attribute %(nope)"),
            ("%(name)d", "needs a number"),
            ("%(name)", "no conversion"),
            ("%(name", "unclosed"),
            ("50% done", "must be followed by"),
            ("%(name)*s", "'*'"),
            ("%(name)q", "unsupported conversion"),
        ] {
            let spec = FormatSpec {
                format: Some(bad.into()),
                ..FormatSpec::default()
            };
            let err = Formatter::new(&spec, 0).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let spec = FormatSpec {
            datefmt: Some("%Q".into()),
            ..FormatSpec::default()
        };
        assert!(Formatter::new(&spec, 0).is_err());
    }

    #[test]
    fn escape_makes_one_line() {
        let spec = FormatSpec {
            format: Some("%(levelname)s %(message)s".into()),
            escape: true,
            ..FormatSpec::default()
        };
        let mut f = Formatter::new(&spec, 0).unwrap();
        let mut out = Vec::new();
        f.format(&entry(b"line1\nWARNING forged"), &mut out);
        assert_eq!(out, b"WARNING line1\\nWARNING forged\n");
    }
}

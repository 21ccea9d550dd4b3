//! Values as Python sees them: the record's `extra` JSON (what the Python
//! handler's `json.dumps` wrote) and `--defaults` parsed into [`Json`], and
//! Python's `str()`, `repr()` and `ascii()` of them: strings, ints, floats,
//! `True`/`False`, `None`, and dicts and lists shown as Python shows them.

use std::borrow::Cow;
use std::fmt::Write;

/// A parsed JSON value, borrowing the text where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// An integer that fits `i128`.
    Int(i128),
    /// An integer that does not (its text, which is what Python prints).
    BigInt(Cow<'a, str>),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// The same value, owning its text.
    pub(crate) fn into_owned(self) -> Json<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Int(i) => Json::Int(i),
            Json::BigInt(t) => Json::BigInt(own(t)),
            Json::Float(f) => Json::Float(f),
            Json::Str(s) => Json::Str(own(s)),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (own(k), v.into_owned()))
                    .collect(),
            ),
        }
    }
}

/// A JSON object's members in order (Python dicts keep insertion order),
/// or `None` when `text` is not a JSON object.
pub(crate) fn parse_object(text: &[u8]) -> Option<Vec<(Cow<'_, str>, Json<'_>)>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    match v {
        Json::Object(members) if p.i == text.len() => Some(members),
        _ => None,
    }
}

/// Nesting beyond this is refused (no stack overflow on hostile input).
const MAX_DEPTH: u32 = 64;

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: u32) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Some(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return None;
                    }
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return None;
                    }
                    self.ws();
                    let v = self.value(depth + 1)?;
                    // A repeated key: the last one wins, as in json.loads.
                    match members.iter_mut().find(|(old, _)| *old == k) {
                        Some(member) => member.1 = v,
                        None => members.push((k, v)),
                    }
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(Json::Object(members));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(Json::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(Json::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' if self.eat("true") => Some(Json::Bool(true)),
            b'f' if self.eat("false") => Some(Json::Bool(false)),
            b'n' if self.eat("null") => Some(Json::Null),
            // Python's json.dumps writes these for non-finite floats.
            b'N' if self.eat("NaN") => Some(Json::Float(f64::NAN)),
            b'I' if self.eat("Infinity") => Some(Json::Float(f64::INFINITY)),
            b'-' if self.eat("-Infinity") => Some(Json::Float(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.i;
        let b = self.s.as_bytes();
        if b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i > from
        };
        if b.get(self.i) == Some(&b'0') && b.get(self.i + 1).is_some_and(u8::is_ascii_digit) {
            return None; // no leading zeros in JSON
        }
        if !digits(self) {
            return None;
        }
        let mut float = false;
        if b.get(self.i) == Some(&b'.') {
            self.i += 1;
            float = true;
            if !digits(self) {
                return None;
            }
        }
        if matches!(b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if matches!(b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        let text = &self.s[start..self.i];
        Some(if float {
            Json::Float(text.parse().ok()?)
        } else {
            match text.parse() {
                Ok(n) => Json::Int(n),
                Err(_) => Json::BigInt(Cow::Borrowed(text)),
            }
        })
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.i += 1; // the opening quote
        let start = self.i;
        let b = self.s.as_bytes();
        // The common case: no escapes, borrowed.
        while let Some(&c) = b.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Borrowed(&self.s[start..self.i - 1]));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let mut out = String::from(&self.s[start..self.i]);
        loop {
            let c = *b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(Cow::Owned(out)),
                b'\\' => {
                    let e = *b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi)
                                && self.s[self.i..].starts_with("\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.i = save;
                                    hi
                                }
                            } else {
                                hi
                            };
                            // A lone surrogate (Python text can hold one)
                            // becomes U+FFFD, as everywhere else.
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    // Copy the rest of this UTF-8 sequence whole.
                    let from = self.i - 1;
                    let mut to = self.i;
                    while to < b.len() && !self.s.is_char_boundary(to) {
                        to += 1;
                    }
                    out.push_str(&self.s[from..to]);
                    self.i = to;
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(h, 16).ok()?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        Some(v)
    }
}

/// A field's value, typed as the attribute would be in Python.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    Int(i128),
    Float(f64),
    Bool(bool),
    None,
    /// A dict, a list or an int beyond `i128`: shown, never computed with.
    Other(&'a Json<'a>),
    /// A Python object whose `str()` and `repr()` are this text (`args`'
    /// `()`).
    Shown(&'static str),
}

impl<'a> Val<'a> {
    pub(crate) fn of(j: &'a Json<'a>) -> Self {
        match j {
            Json::Null => Val::None,
            Json::Bool(b) => Val::Bool(*b),
            Json::Int(i) => Val::Int(*i),
            Json::Float(f) => Val::Float(*f),
            Json::Str(s) => Val::Str(s),
            Json::BigInt(_) | Json::Array(_) | Json::Object(_) => Val::Other(j),
        }
    }

    /// Python's type name, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "str",
            Val::Int(_) | Val::Other(Json::BigInt(_)) => "int",
            Val::Float(_) => "float",
            Val::Bool(_) => "bool",
            Val::None => "NoneType",
            Val::Other(Json::Array(_)) => "list",
            Val::Other(_) => "dict",
            Val::Shown(_) => "tuple",
        }
    }
}

/// `str(v)`.
pub(crate) fn py_str(v: &Val<'_>, out: &mut String) {
    match v {
        Val::Str(s) => out.push_str(s),
        _ => py_repr(v, out),
    }
}

/// `repr(v)`.
pub(crate) fn py_repr(v: &Val<'_>, out: &mut String) {
    match v {
        Val::Str(s) => repr_str(s, out),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Float(f) => float_repr(*f, out),
        Val::Bool(true) => out.push_str("True"),
        Val::Bool(false) => out.push_str("False"),
        Val::None => out.push_str("None"),
        Val::Shown(s) => out.push_str(s),
        Val::Other(j) => repr_json(j, out),
    }
}

fn repr_json(j: &Json<'_>, out: &mut String) {
    match j {
        Json::BigInt(t) => out.push_str(t),
        Json::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                repr_json(item, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (n, (k, v)) in members.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                repr_str(k, out);
                out.push_str(": ");
                repr_json(v, out);
            }
            out.push('}');
        }
        scalar => py_repr(&Val::of(scalar), out),
    }
}

/// `ascii(v)`: `repr` with every non-ASCII character escaped.
pub(crate) fn py_ascii(v: &Val<'_>, out: &mut String) {
    let mut r = String::new();
    py_repr(v, &mut r);
    for c in r.chars() {
        push_ascii(c, out);
    }
}

fn push_ascii(c: char, out: &mut String) {
    let cp = c as u32;
    let _ = match cp {
        0..=0x7f => {
            out.push(c);
            Ok(())
        }
        0x80..=0xff => write!(out, "\\x{cp:02x}"),
        0x100..=0xffff => write!(out, "\\u{cp:04x}"),
        _ => write!(out, "\\U{cp:08x}"),
    };
}

/// Python's `repr` of a str: single quotes unless the text has `'` and no
/// `"`; `\\`, `\n`, `\r`, `\t` and the quote escaped; characters that are
/// not printable (`str.isprintable`) as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub(crate) fn repr_str(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c)
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if !is_printable(c) => push_ascii(c, out),
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Non-ASCII code points `str.isprintable()` is false for in CPython 3.13
/// (Unicode 15.1): the categories Cc, Cf, Co, Zs, Zl and Zp, generated
/// from `unicodedata`. Unassigned code points (Cn) are not listed except
/// the permanent noncharacters: CPython escapes the others too, by the
/// tables of its own Unicode version.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x80, 0xA0),
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xE000, 0xF8FF),
    (0xFDD0, 0xFDEF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
];

fn is_printable(c: char) -> bool {
    let cp = c as u32;
    if cp & 0xfffe == 0xfffe {
        return false; // U+xFFFE, U+xFFFF: noncharacters
    }
    let i = NOT_PRINTABLE.partition_point(|&(_, hi)| hi < cp);
    NOT_PRINTABLE.get(i).is_none_or(|&(lo, _)| lo > cp)
}

/// Python's `repr(float)` (and `str`): the shortest digits that read back
/// the same, positional from 1e-4 up to 1e16 (with `.0` when integral),
/// scientific outside (`1e-05`, `1.5e+16`).
pub(crate) fn float_repr(v: f64, out: &mut String) {
    if !v.is_finite() {
        out.push_str(if v.is_nan() {
            "nan"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        });
        return;
    }
    let mut buf = String::with_capacity(24);
    let _ = write!(buf, "{:e}", v.abs());
    let (mantissa, exp) = buf.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if v.is_sign_negative() {
        out.push('-');
    }
    let decpt = exp + 1;
    if (-3..=16).contains(&decpt) {
        positional(&digits, decpt, out);
        if decpt >= digits.len() as i32 {
            out.push_str(".0");
        }
    } else {
        scientific(&digits, exp, out);
    }
}

/// `digits` with the point after `decpt` of them (padding with zeros).
fn positional(digits: &str, decpt: i32, out: &mut String) {
    if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(digits);
    } else if decpt as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', decpt as usize - digits.len()));
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

fn scientific(digits: &str, exp: i32, out: &mut String) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let _ = write!(
        out,
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(v: f64) -> String {
        let mut s = String::new();
        float_repr(v, &mut s);
        s
    }

    fn show(json: &str) -> (String, String, String) {
        let text = format!("{{\"k\":{json}}}");
        let members = parse_object(text.as_bytes()).expect(json);
        let v = Val::of(&members[0].1);
        let (mut s, mut r, mut a) = (String::new(), String::new(), String::new());
        py_str(&v, &mut s);
        py_repr(&v, &mut r);
        py_ascii(&v, &mut a);
        (s, r, a)
    }

    // Expected values are CPython 3.11's str/repr/ascii of json.loads(json).
    #[test]
    fn floats_print_as_python_repr() {
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.0, "123456789.0"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1709720253.045679, "1709720253.045679"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn json_values_as_python_shows_them() {
        let t = |j: &str, s: &str, r: &str| {
            let (gs, gr, _) = show(j);
            assert_eq!((gs.as_str(), gr.as_str()), (s, r), "{j}");
        };
        t(r#""it's""#, "it's", r#""it's""#);
        t(r#""a\"b'c""#, "a\"b'c", r#"'a"b\'c'"#);
        t(
            r#""tab\there\u00e9\u0007""#,
            "tab\there\u{e9}\u{7}",
            "'tab\\there\u{e9}\\x07'",
        );
        t("12", "12", "12");
        t("-0", "0", "0");
        t(
            "123456789012345678901234567890123456789012",
            "123456789012345678901234567890123456789012",
            "123456789012345678901234567890123456789012",
        );
        t("1e16", "1e+16", "1e+16");
        t("true", "True", "True");
        t("null", "None", "None");
        t("NaN", "nan", "nan");
        t(
            r#"{"a": [1, 2.5, null, false], "b": {"c": "d'"}}"#,
            r#"{'a': [1, 2.5, None, False], 'b': {'c': "d'"}}"#,
            r#"{'a': [1, 2.5, None, False], 'b': {'c': "d'"}}"#,
        );
        t(
            r#""\ud83d\ude00 \ud800x""#,
            "\u{1f600} \u{fffd}x",
            "'\u{1f600} \u{fffd}x'",
        );
        t(
            r#""\u00a0\u200b\u2028""#,
            "\u{a0}\u{200b}\u{2028}",
            r"'\xa0\u200b\u2028'",
        );
        assert_eq!(
            show(r#""caf\u00e9 \ud83d\ude00""#).2,
            r"'caf\xe9 \U0001f600'"
        );
        assert_eq!(show("[\"\u{e9}\"]").2, r"['\xe9']");
    }

    #[test]
    fn only_json_objects_parse() {
        assert!(parse_object(b"").is_none());
        assert!(parse_object(b"[1]").is_none());
        assert!(parse_object(b"{\"a\":1} x").is_none());
        assert!(parse_object(b"{\"a\":01}").is_none());
        assert!(parse_object(b"{\"a\":}").is_none());
        assert!(parse_object(b"{\"a\":\"\xff\"}").is_none());
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_object(format!("{{\"a\":{deep}}}").as_bytes()).is_none());
        let m = parse_object(br#" {"a":1,"a":2} "#).unwrap();
        assert_eq!(m, vec![(Cow::Borrowed("a"), Json::Int(2))]);
    }
}

//! The text and JSON renderings of a record's structured fields: `key=value`
//! as tracing-subscriber's fmt layer shows them (for the message), and the
//! members of a JSON object (for `extra`). The `log` backend renders its
//! key-values with it as it writes; the flusher renders a tracing event's
//! binary entries ([`super::binary`]) with it when it formats the record.

use std::fmt::{self, Write};

use super::{Owner, Shown};

/// Writes formatted text into a `String` as the inside of a JSON string:
/// `"` and `\` escaped, control characters as `\n`, `\t`... or `\u00XX`.
struct JsonEscape<'a>(&'a mut String);

impl Write for JsonEscape<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escape(self.0, s);
        Ok(())
    }
}

/// Whether `b` goes into a JSON string as it is.
#[inline]
fn json_plain(b: u8) -> bool {
    b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f
}

/// Append `s` escaped for the inside of a JSON string.
#[inline]
fn json_escape(out: &mut String, s: &str) {
    // Most names and values need no escaping: one scan, one copy.
    if s.bytes().all(json_plain) {
        out.push_str(s);
    } else {
        json_escape_slow(out, s);
    }
}

#[cold]
fn json_escape_slow(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if json_plain(b) {
            continue;
        }
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Append `"s"` as a JSON string.
#[inline]
pub(super) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    json_escape(out, s);
    out.push('"');
}

/// Append `s` as `{:?}` shows it: printable ASCII without `"` and `\` is
/// quoted as it is (the common case, without the formatting machinery).
#[inline]
fn debug_str(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

/// `n` in decimal, into the end of `buf`; returns the digits.
#[inline]
fn decimal(mut n: u64, negative: bool, buf: &mut [u8; 21]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// The two renderings of a set of fields, written as they are visited.
///
/// Text is tracing-subscriber's default field format: `key=value` separated
/// by spaces, strings and `Debug` values with `{:?}`, the field named
/// `message` as its value alone. JSON follows its JSON formatter: numbers and
/// booleans as such, strings as strings, `Debug` values as their `{:?}` text,
/// non-finite floats as `null`.
#[derive(Debug)]
pub struct FieldWriter<'a> {
    /// Where the message and (with `fields_text`) `key=value` go, after
    /// what it holds already.
    pub text: &'a mut String,
    /// Where the fields start in `text` (a separator goes before every
    /// field but the first).
    base: usize,
    /// Whether fields other than the message are written to `text`.
    fields_text: bool,
    /// Where `"key":value` goes (comma-separated, after any `{`).
    pub json: &'a mut String,
    /// Whether the message is kept out of the JSON (an event's message is
    /// the record's message).
    event: bool,
    /// Where the message is in `text`, once seen.
    pub message: Option<(usize, usize)>,
    /// A key the JSON object already has (a span's `name`, an event's
    /// `spans`): a field of that name goes in as `extra.<name>` instead of
    /// shadowing it, as the JSON formatter does for a record's own keys.
    reserved: &'static str,
}

impl<'a> FieldWriter<'a> {
    /// A writer appending to `text` and `json`: fields other than the
    /// message go into the text when `shown` says so; an event's message
    /// stays out of the JSON.
    pub fn new(text: &'a mut String, json: &'a mut String, shown: Shown, owner: Owner) -> Self {
        Self {
            base: text.len(),
            text,
            fields_text: shown == Shown::InMessage,
            json,
            event: owner == Owner::Event,
            message: None,
            reserved: "",
        }
    }

    /// Write a field named `key` into the JSON as `extra.<key>` (see
    /// `reserved`).
    pub fn reserving(mut self, key: &'static str) -> Self {
        self.reserved = key;
        self
    }

    /// Start `"name":` in the JSON (`"extra.name":` for the reserved key).
    fn json_key(&mut self, name: &str) -> &mut String {
        let reserved = !self.reserved.is_empty() && name == self.reserved;
        self.json_member(if reserved { "extra." } else { "" }, name, "")
    }

    /// Start `"<prefix><name><suffix>":` in the JSON, after a comma unless
    /// it is the first of a list, or of an object whose brace is there.
    fn json_member(&mut self, prefix: &str, name: &str, suffix: &str) -> &mut String {
        let json = &mut *self.json;
        if !(json.is_empty() || json.ends_with('{')) {
            json.push(',');
        }
        json.push('"');
        json.push_str(prefix);
        json_escape(json, name);
        json.push_str(suffix);
        json.push_str("\":");
        json
    }

    /// A space unless this is the first field.
    #[inline]
    fn separate(&mut self) {
        if self.text.len() > self.base {
            self.text.push(' ');
        }
    }

    /// Start `name=` in the text, if fields go there.
    #[inline]
    fn text_key(&mut self, name: &str) -> bool {
        if self.fields_text {
            self.separate();
            self.text.push_str(name);
            self.text.push('=');
        }
        self.fields_text
    }

    /// The message field: its value alone in the text, nothing in the JSON
    /// for an event (its message is the record's).
    pub fn message(&mut self, value: fmt::Arguments<'_>) {
        if !self.event {
            let json = self.json_key("message");
            json.push('"');
            let _ = JsonEscape(json).write_fmt(value);
            json.push('"');
        }
        self.separate();
        let start = self.text.len();
        let _ = self.text.write_fmt(value);
        self.message = Some((start, self.text.len()));
    }

    /// A field written as `args` into the text, then the same characters as
    /// a JSON string: formatted once when the text is on.
    fn formatted(&mut self, name: &str, args: fmt::Arguments<'_>) {
        if self.text_key(name) {
            let start = self.text.len();
            let _ = self.text.write_fmt(args);
            self.json_key(name);
            json_string(self.json, &self.text[start..]);
        } else {
            let json = self.json_key(name);
            json.push('"');
            let _ = JsonEscape(json).write_fmt(args);
            json.push('"');
        }
    }

    /// A field shown with `Display` in text (an error, a `%` value) and as
    /// a JSON string of the same text.
    pub fn display(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.formatted(name, value);
    }

    /// A string field: quoted in text (`{:?}`), a JSON string.
    pub fn str(&mut self, name: &str, value: &str) {
        if self.text_key(name) {
            debug_str(self.text, value);
        }
        json_string(self.json_key(name), value);
    }

    /// A field whose text and JSON renderings are the same characters.
    fn same(&mut self, name: &str, value: &str) {
        if self.text_key(name) {
            self.text.push_str(value);
        }
        self.json_key(name).push_str(value);
    }

    /// An unsigned integer.
    pub fn u64(&mut self, name: &str, value: u64) {
        self.same(name, decimal(value, false, &mut [0; 21]));
    }

    /// A signed integer.
    pub fn i64(&mut self, name: &str, value: i64) {
        self.same(name, decimal(value.unsigned_abs(), value < 0, &mut [0; 21]));
    }

    /// A boolean.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.same(name, if value { "true" } else { "false" });
    }

    /// No value (`null`).
    pub fn null(&mut self, name: &str) {
        self.same(name, "null");
    }

    /// A float: `{:?}` in text, a JSON number (or `null` when not finite).
    pub fn f64(&mut self, name: &str, value: f64) {
        if self.text_key(name) {
            let _ = write!(self.text, "{value:?}");
        }
        let json = self.json_key(name);
        if value.is_finite() {
            let _ = write!(json, "{value:?}");
        } else {
            json.push_str("null");
        }
    }

    /// An error's sources, `cause, its cause`, after the error itself: in
    /// the text as ` name.sources=[cause, its cause]` (tracing-subscriber's
    /// fmt layer), in the JSON as `"name.sources":"cause, its cause"`.
    pub fn sources(&mut self, name: &str, sources: &str) {
        if self.fields_text {
            let text = &mut *self.text;
            text.push(' ');
            text.push_str(name);
            text.push_str(".sources=[");
            text.push_str(sources);
            text.push(']');
        }
        let json = self.json_member("", name, ".sources");
        json_string(json, sources);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escape_control_quote_backslash() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\nd\u{1}e\u{7f}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001e\u007fé""#);
    }

    #[test]
    fn text_and_json_renderings() {
        let (mut text, mut json) = (String::new(), String::new());
        let mut w = FieldWriter::new(&mut text, &mut json, Shown::InMessage, Owner::Event);
        w.message(format_args!("hello {}", 1));
        w.u64("n", 42);
        w.i64("neg", -7);
        w.i64("min", i64::MIN);
        w.bool("b", false);
        w.str("s", "a \"b\"");
        w.f64("x", 1.0);
        w.f64("nan", f64::NAN);
        w.display("v", format_args!("{:?}", vec![1, 2]));
        w.display("e", format_args!("bad {}", "thing"));
        w.sources("e", "cause, root");
        let range = w.message.unwrap();
        assert_eq!(
            text,
            r#"hello 1 n=42 neg=-7 min=-9223372036854775808 b=false s="a \"b\"" x=1.0 nan=NaN v=[1, 2] e=bad thing e.sources=[cause, root]"#
        );
        assert_eq!(&text[range.0..range.1], "hello 1");
        assert_eq!(
            json,
            r#""n":42,"neg":-7,"min":-9223372036854775808,"b":false,"s":"a \"b\"","x":1.0,"nan":null,"v":"[1, 2]","e":"bad thing","e.sources":"cause, root""#
        );
    }

    #[test]
    fn strings_and_integers_as_fmt_shows_them() {
        for s in [
            "",
            "plain",
            "a \"q\"",
            "back\\slash",
            "tab\t",
            "é ü",
            "\u{7f}",
            "it's",
        ] {
            let mut out = String::new();
            debug_str(&mut out, s);
            assert_eq!(out, format!("{s:?}"));
            let mut json = String::new();
            json_string(&mut json, s);
            assert_eq!(
                serde_json_like_unescape(&json),
                s,
                "{json} is the JSON of {s:?}"
            );
        }
        for n in [0, 7, 10, 99, 100, u64::MAX] {
            assert_eq!(decimal(n, false, &mut [0; 21]), n.to_string());
        }
        for n in [i64::MIN, -1, 0, 1, i64::MAX] {
            assert_eq!(
                decimal(n.unsigned_abs(), n < 0, &mut [0; 21]),
                n.to_string()
            );
        }
    }

    /// Undo the escapes `json_escape` makes (enough to check it).
    fn serde_json_like_unescape(json: &str) -> String {
        let inner = &json[1..json.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().unwrap() {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn a_writer_after_a_prefix_separates_its_own_fields_only() {
        let (mut text, mut json) = ("span: ".to_string(), "{".to_string());
        let mut w = FieldWriter::new(&mut text, &mut json, Shown::InMessage, Owner::Event);
        w.message(format_args!("msg"));
        w.bool("ok", true);
        assert_eq!(w.message, Some((6, 9)));
        assert_eq!(text, "span: msg ok=true");
        assert_eq!(json, r#"{"ok":true"#);
    }
}

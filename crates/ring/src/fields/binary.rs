//! A record's fields as typed binary entries: what a producer on the hot
//! path appends without formatting anything but `Debug` values, for the
//! flusher to render ([`super::expand`]).
//!
//! ```text
//! extra  := 0xFF flags entry*           flags bit 0: COMPOSE
//! entry  := I64 name i64 | U64 name u64 | F64 name f64   (8 bytes, little-endian)
//!         | BOOL name u8
//!         | STR name text               a string: {:?} in text, a JSON string
//!         | SHOWN name text             a Debug/Display rendering, as it is
//!         | SOURCES name text           an error's sources (text only)
//!         | MESSAGE                     where the record's message goes
//!         | SPAN name entry* SPAN_END   a span's name and fields, root first
//!         | SPAN_MESSAGE text           a span's `message` field
//! name   := len u16 LE, UTF-8 bytes     (cut to 65535 bytes)
//! text   := len u32 LE, UTF-8 bytes
//! ```
//!
//! `0xFF` never starts UTF-8 text, so an `extra` is either a JSON object's
//! text (Python, the `log` backend) or these entries, never ambiguous.
//! Decoding checks every length and kind: corrupt bytes are an error, never
//! a panic or a read past the end.

use std::fmt;

use super::Shown;

/// The first byte of an `extra` holding binary entries.
pub const MAGIC: u8 = 0xFF;

/// Flag: the spans and fields also go into the message as text
/// (`span{a=1}: message b=2`), as tracing-subscriber's fmt layer writes
/// them; without it the message is the record's message alone.
pub const COMPOSE: u8 = 1;

const I64: u8 = 1;
const U64: u8 = 2;
const F64: u8 = 3;
const BOOL: u8 = 4;
const STR: u8 = 5;
const SHOWN: u8 = 6;
const SOURCES: u8 = 7;
const MESSAGE: u8 = 8;
const SPAN: u8 = 9;
const SPAN_END: u8 = 10;
const SPAN_MESSAGE: u8 = 11;

/// Whether `extra` holds binary entries (rather than a JSON object).
#[inline]
pub fn is_binary(extra: &[u8]) -> bool {
    extra.first() == Some(&MAGIC)
}

/// Appends entries to a buffer: the start of an `extra` ([`Entries::start`])
/// or a span's fields kept for later events ([`Entries::new`]).
#[derive(Debug)]
pub struct Entries<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Entries<'a> {
    /// Append entries to `buf` as they are (a span's fields).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// Start an `extra` in `buf`: the magic byte and the flags (whether the
    /// flusher shows the fields in the message text too).
    pub fn start(buf: &'a mut Vec<u8>, shown: Shown) -> Self {
        let flags = match shown {
            Shown::InMessage => COMPOSE,
            Shown::JsonOnly => 0,
        };
        buf.extend_from_slice(&[MAGIC, flags]);
        Self { buf }
    }

    #[inline]
    fn head(&mut self, kind: u8, name: &str) {
        let name = clip_name(name);
        let [lo, hi] = (name.len() as u16).to_le_bytes();
        self.buf.extend_from_slice(&[kind, lo, hi]);
        self.buf.extend_from_slice(name.as_bytes());
    }

    #[inline]
    fn fixed(&mut self, kind: u8, name: &str, value: [u8; 8]) {
        self.head(kind, name);
        self.buf.extend_from_slice(&value);
    }

    /// A signed integer.
    pub fn i64(&mut self, name: &str, value: i64) {
        self.fixed(I64, name, value.to_le_bytes());
    }

    /// An unsigned integer.
    pub fn u64(&mut self, name: &str, value: u64) {
        self.fixed(U64, name, value.to_le_bytes());
    }

    /// A float.
    pub fn f64(&mut self, name: &str, value: f64) {
        self.fixed(F64, name, value.to_bits().to_le_bytes());
    }

    /// A boolean.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.head(BOOL, name);
        self.buf.push(value as u8);
    }

    /// A string (quoted in text).
    pub fn str(&mut self, name: &str, value: &str) {
        self.head(STR, name);
        self.text(value);
    }

    /// A value shown as `value` formats it (`Debug` or `Display`).
    pub fn shown(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.head(SHOWN, name);
        self.formatted(value);
    }

    /// An error's sources, shown as `value` formats them (`cause, its
    /// cause`); goes after the error's own [`Entries::shown`].
    pub fn sources(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.head(SOURCES, name);
        self.formatted(value);
    }

    /// Where the record's message goes among the fields.
    pub fn message(&mut self) {
        self.buf.push(MESSAGE);
    }

    /// A span's `message` field, shown as `value` formats it.
    pub fn span_message(&mut self, value: fmt::Arguments<'_>) {
        self.buf.push(SPAN_MESSAGE);
        self.formatted(value);
    }

    /// A span named `name` whose fields (`fields`, entries written by
    /// [`Entries::new`]) are copied in.
    pub fn span(&mut self, name: &str, fields: &[u8]) {
        self.head(SPAN, name);
        self.buf.extend_from_slice(fields);
        self.buf.push(SPAN_END);
    }

    #[inline]
    fn text(&mut self, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&s.as_bytes()[..len as usize]);
    }

    /// `value` formatted in place, its length written before it afterwards.
    fn formatted(&mut self, value: fmt::Arguments<'_>) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        match value.as_str() {
            Some(s) => self.buf.extend_from_slice(s.as_bytes()),
            None => {
                let _ = fmt::Write::write_fmt(&mut ByteWriter(self.buf), value);
            }
        }
        let len = self.buf.len() - at - 4;
        let Ok(len32) = u32::try_from(len) else {
            // Over 4 GiB of Debug text: no ring holds it; keep an empty value.
            self.buf.truncate(at + 4);
            return;
        };
        self.buf[at..at + 4].copy_from_slice(&len32.to_le_bytes());
    }
}

/// `fmt::Write` into bytes (what `formatted` writes is UTF-8 by
/// construction).
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `name` cut to 65535 bytes at a character boundary.
#[inline]
fn clip_name(name: &str) -> &str {
    if name.len() <= u16::MAX as usize {
        return name;
    }
    let mut end = u16::MAX as usize;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// One decoded entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// A signed integer.
    I64(&'a str, i64),
    /// An unsigned integer.
    U64(&'a str, u64),
    /// A float.
    F64(&'a str, f64),
    /// A boolean.
    Bool(&'a str, bool),
    /// A string.
    Str(&'a str, &'a str),
    /// A value's `Debug` or `Display` text.
    Shown(&'a str, &'a str),
    /// An error's sources.
    Sources(&'a str, &'a str),
    /// Where the record's message goes.
    Message,
    /// A span's start, with its name.
    Span(&'a str),
    /// The end of a span's fields.
    SpanEnd,
    /// A span's `message` field.
    SpanMessage(&'a str),
}

/// Bytes that are not well-formed entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed binary fields")
    }
}

impl std::error::Error for DecodeError {}

/// The entries of a binary `extra`, in order.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// The flags and entries of `extra`, or `None` if it does not start
    /// with [`MAGIC`] and a flags byte.
    pub fn new(extra: &'a [u8]) -> Option<(u8, Self)> {
        match extra {
            [MAGIC, flags, rest @ ..] => Some((*flags, Self { rest })),
            _ => None,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError)
    }

    fn name(&mut self) -> Result<&'a str, DecodeError> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
        self.str(len as usize)
    }

    fn text(&mut self) -> Result<&'a str, DecodeError> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        self.str(len as usize)
    }

    fn word(&mut self) -> Result<[u8; 8], DecodeError> {
        Ok(self.take(8)?.try_into().expect("8 bytes"))
    }

    fn entry(&mut self, kind: u8) -> Result<Entry<'a>, DecodeError> {
        Ok(match kind {
            I64 => Entry::I64(self.name()?, i64::from_le_bytes(self.word()?)),
            U64 => Entry::U64(self.name()?, u64::from_le_bytes(self.word()?)),
            F64 => Entry::F64(
                self.name()?,
                f64::from_bits(u64::from_le_bytes(self.word()?)),
            ),
            BOOL => Entry::Bool(self.name()?, self.byte()? != 0),
            STR => Entry::Str(self.name()?, self.text()?),
            SHOWN => Entry::Shown(self.name()?, self.text()?),
            SOURCES => Entry::Sources(self.name()?, self.text()?),
            MESSAGE => Entry::Message,
            SPAN => Entry::Span(self.name()?),
            SPAN_END => Entry::SpanEnd,
            SPAN_MESSAGE => Entry::SpanMessage(self.text()?),
            _ => return Err(DecodeError),
        })
    }
}

impl<'a> Iterator for Decoder<'a> {
    type Item = Result<Entry<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let kind = *self.rest.first()?;
        self.rest = &self.rest[1..];
        let entry = self.entry(kind);
        if entry.is_err() {
            self.rest = &[];
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_round_trips() {
        let mut span = Vec::new();
        let mut s = Entries::new(&mut span);
        s.u64("id", 7);
        s.span_message(format_args!("span {}", "msg"));
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::InMessage);
        e.span("request", &span);
        e.message();
        e.i64("neg", i64::MIN);
        e.u64("n", u64::MAX);
        e.f64("x", -0.5);
        e.bool("ok", true);
        e.str("s", "é \"q\"");
        e.shown("v", format_args!("{:?}", [1, 2]));
        e.shown("lit", format_args!("literal"));
        e.sources("err", format_args!("{}, {}", "a", "b"));
        assert!(is_binary(&buf));
        let (flags, entries) = Decoder::new(&buf).unwrap();
        assert_eq!(flags, COMPOSE);
        let got: Vec<_> = entries.collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            [
                Entry::Span("request"),
                Entry::U64("id", 7),
                Entry::SpanMessage("span msg"),
                Entry::SpanEnd,
                Entry::Message,
                Entry::I64("neg", i64::MIN),
                Entry::U64("n", u64::MAX),
                Entry::F64("x", -0.5),
                Entry::Bool("ok", true),
                Entry::Str("s", "é \"q\""),
                Entry::Shown("v", "[1, 2]"),
                Entry::Shown("lit", "literal"),
                Entry::Sources("err", "a, b"),
            ]
        );
    }

    #[test]
    fn json_and_empty_extras_are_not_binary() {
        assert!(!is_binary(b"{\"a\":1}"));
        assert!(!is_binary(b""));
        assert!(Decoder::new(b"{}").is_none());
        assert!(Decoder::new(&[MAGIC]).is_none());
        let (flags, mut d) = Decoder::new(&[MAGIC, 0]).unwrap();
        assert_eq!(flags, 0);
        assert!(d.next().is_none());
    }

    #[test]
    fn names_over_64_kib_are_cut_at_a_character_boundary() {
        let name = "é".repeat(40_000); // 80,000 bytes
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::JsonOnly);
        e.bool(&name, false);
        e.bool(&name[..300], true);
        let (_, mut d) = Decoder::new(&buf).unwrap();
        let Some(Ok(Entry::Bool(got, false))) = d.next() else {
            panic!("not a bool entry");
        };
        assert_eq!(got.len(), 65_534);
        assert!(name.starts_with(got));
        assert_eq!(d.next(), Some(Ok(Entry::Bool(&name[..300], true))));
    }

    #[test]
    fn every_truncation_and_a_bad_kind_or_utf8_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::InMessage);
        e.span("s", &[]);
        e.i64("a", 1);
        e.str("b", "text");
        e.shown("c", format_args!("{}", 3));
        e.bool("d", true);
        let full = buf.clone();
        fn count(bytes: &[u8]) -> Option<Vec<Result<Entry<'_>, DecodeError>>> {
            Decoder::new(bytes).map(|(_, d)| d.collect())
        }
        assert!(count(&full).unwrap().iter().all(Result::is_ok));
        for cut in 2..full.len() {
            let entries = count(&full[..cut]).unwrap();
            // Cut at an entry boundary: fewer entries, all well formed;
            // inside one: the last is an error and nothing follows it.
            if let Some(Err(_)) = entries.last() {
                assert!(entries[..entries.len() - 1].iter().all(Result::is_ok));
            }
        }
        let mut bad_kind = full.clone();
        bad_kind[2] = 0x7e;
        assert_eq!(count(&bad_kind).unwrap(), [Err(DecodeError)]);
        let mut bad_utf8 = full.clone();
        let at = full.windows(4).position(|w| w == b"text").unwrap();
        bad_utf8[at] = 0xC3;
        assert!(count(&bad_utf8).unwrap().contains(&Err(DecodeError)));
        // A length beyond the end.
        let mut long = vec![MAGIC, 0, STR, 1, 0, b'x'];
        long.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(count(&long).unwrap(), [Err(DecodeError)]);
    }
}

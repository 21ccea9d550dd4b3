//! Payload codec: the log record that follows the 32-byte ring header.
//!
//! ```text
//! 0  level u8 | flags u8 | reserved u16 | line u32
//! 8  thread_id u64
//! 16 message_len u32 | extra_len u32
//! 24 logger, thread_name, pathname, func, module, process_name, task_name:
//!    7 x u16 lengths, then a reserved u16
//! 40 the field bytes in that order, then extra, then message
//! ```
//! The message comes last so truncation only shortens it. All fields are raw
//! bytes: producers may hand over anything (the flusher replaces invalid
//! UTF-8 when formatting). Decoding checks every length against the payload.

pub const FIXED_LEN: usize = 40;
/// Short fields are cut to this many bytes.
pub const MAX_SHORT_FIELD: usize = u16::MAX as usize;
const SHORT_FIELDS: usize = 7;

/// Python's numeric levels, plus TRACE (5) below DEBUG.
pub mod level {
    pub const TRACE: u8 = 5;
    pub const DEBUG: u8 = 10;
    pub const INFO: u8 = 20;
    pub const WARNING: u8 = 30;
    pub const ERROR: u8 = 40;
    pub const CRITICAL: u8 = 50;

    /// Python's level name (`"Level N"` for unnamed levels, as `logging` does).
    pub fn name(level: u8) -> std::borrow::Cow<'static, str> {
        match level {
            TRACE => "TRACE".into(),
            DEBUG => "DEBUG".into(),
            INFO => "INFO".into(),
            WARNING => "WARNING".into(),
            ERROR => "ERROR".into(),
            CRITICAL => "CRITICAL".into(),
            0 => "NOTSET".into(),
            n => format!("Level {n}").into(),
        }
    }

    /// Parse a level name (case-insensitive; WARN and FATAL as in Python) or number.
    pub fn parse(s: &str) -> Option<u8> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TRACE" => TRACE,
            "DEBUG" => DEBUG,
            "INFO" => INFO,
            "WARNING" | "WARN" => WARNING,
            "ERROR" => ERROR,
            "CRITICAL" | "FATAL" => CRITICAL,
            other => other.parse().ok()?,
        })
    }
}

/// A log record, borrowed from the producer or from the ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub level: u8,
    pub line: u32,
    pub thread_id: u64,
    pub logger: &'a [u8],
    pub thread_name: &'a [u8],
    pub pathname: &'a [u8],
    pub func: &'a [u8],
    pub module: &'a [u8],
    pub process_name: &'a [u8],
    pub task_name: &'a [u8],
    /// A JSON object's text with extra fields (`extra={...}` in Python), or empty.
    pub extra: &'a [u8],
    pub message: &'a [u8],
}

/// A payload that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record payload lengths exceed the record")
    }
}

impl<'a> Record<'a> {
    fn short_fields(&self) -> [&'a [u8]; SHORT_FIELDS] {
        [
            self.logger,
            self.thread_name,
            self.pathname,
            self.func,
            self.module,
            self.process_name,
            self.task_name,
        ]
    }

    /// Bytes before the message once encoded.
    #[inline]
    fn prefix_len(&self) -> usize {
        let f = self.short_fields();
        let sum = f[0].len()
            + f[1].len()
            + f[2].len()
            + f[3].len()
            + f[4].len()
            + f[5].len()
            + f[6].len();
        let short = if f.iter().any(|x| x.len() > MAX_SHORT_FIELD) {
            f.iter().map(|x| x.len().min(MAX_SHORT_FIELD)).sum()
        } else {
            sum
        };
        FIXED_LEN + short + self.extra.len()
    }

    /// Encoded length with the whole message.
    pub fn encoded_len(&self) -> usize {
        self.prefix_len() + self.message.len()
    }

    /// Plan an encoding that fits in `max` bytes. Returns the encoded length
    /// and the message bytes that are kept, or `None` when even the fields
    /// other than the message do not fit.
    #[inline]
    pub fn fit(&self, max: usize) -> Option<Encoding> {
        let prefix = self.prefix_len();
        let full = prefix + self.message.len();
        if full <= max {
            return Some(Encoding {
                len: full,
                keep: self.message.len(),
                cut: 0,
            });
        }
        self.fit_cut(prefix, max)
    }

    #[cold]
    fn fit_cut(&self, prefix: usize, max: usize) -> Option<Encoding> {
        // Reserve room for the marker with the largest count it can show.
        let marker_room = truncation_marker(self.message.len()).len();
        let room = max.checked_sub(prefix + marker_room)?;
        let keep = floor_char_boundary(self.message, room.min(self.message.len()));
        let cut = self.message.len() - keep;
        let len = prefix + keep + truncation_marker(cut).len();
        Some(Encoding { len, keep, cut })
    }

    /// Encode into `buf` (exactly `enc.len` bytes) following a plan from
    /// [`Record::fit`]. Hot path: the fixed part is assembled on the stack and
    /// copied once, and an empty field costs a branch, not a copy.
    #[inline]
    pub fn encode(&self, enc: &Encoding, buf: &mut [u8]) {
        debug_assert_eq!(buf.len(), enc.len);
        if enc.cut > 0 {
            return self.encode_cut(enc, buf);
        }
        let at = self.encode_prefix(enc.keep, buf);
        buf[at..at + enc.keep].copy_from_slice(self.message);
    }

    #[cold]
    fn encode_cut(&self, enc: &Encoding, buf: &mut [u8]) {
        let marker = truncation_marker(enc.cut);
        let at = self.encode_prefix(enc.keep + marker.len(), buf);
        buf[at..at + enc.keep].copy_from_slice(&self.message[..enc.keep]);
        buf[at + enc.keep..at + enc.keep + marker.len()].copy_from_slice(marker.as_bytes());
    }

    /// Everything but the message; returns where the message starts.
    #[inline]
    fn encode_prefix(&self, message_len: usize, buf: &mut [u8]) -> usize {
        let fields = self
            .short_fields()
            .map(|f| &f[..f.len().min(MAX_SHORT_FIELD)]);
        let mut fixed = [0u8; FIXED_LEN];
        fixed[0] = self.level;
        fixed[4..8].copy_from_slice(&self.line.to_le_bytes());
        fixed[8..16].copy_from_slice(&self.thread_id.to_le_bytes());
        fixed[16..20].copy_from_slice(&(message_len as u32).to_le_bytes());
        fixed[20..24].copy_from_slice(&(self.extra.len() as u32).to_le_bytes());
        for (i, field) in fields.iter().enumerate() {
            fixed[24 + 2 * i..26 + 2 * i].copy_from_slice(&(field.len() as u16).to_le_bytes());
        }
        buf[..FIXED_LEN].copy_from_slice(&fixed);
        let mut at = FIXED_LEN;
        for part in fields.iter().chain(std::iter::once(&self.extra)) {
            if !part.is_empty() {
                buf[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        at
    }

    /// Decode a payload, checking every length against it.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < FIXED_LEN {
            return Err(DecodeError);
        }
        let u16_at = |i: usize| u16::from_le_bytes([buf[i], buf[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap()) as usize;
        let mut at = FIXED_LEN;
        let mut take = |n: usize| -> Result<&'a [u8], DecodeError> {
            let end = at
                .checked_add(n)
                .filter(|&e| e <= buf.len())
                .ok_or(DecodeError)?;
            let field = &buf[at..end];
            at = end;
            Ok(field)
        };
        let mut short = [&[][..]; SHORT_FIELDS];
        for (i, field) in short.iter_mut().enumerate() {
            *field = take(u16_at(24 + 2 * i))?;
        }
        let extra = take(u32_at(20))?;
        let message = take(u32_at(16))?;
        Ok(Record {
            level: buf[0],
            line: u32_at(4) as u32,
            thread_id: u64::from_le_bytes(buf[8..16].try_into().unwrap()),
            logger: short[0],
            thread_name: short[1],
            pathname: short[2],
            func: short[3],
            module: short[4],
            process_name: short[5],
            task_name: short[6],
            extra,
            message,
        })
    }
}

/// How a record is encoded: total length, message bytes kept and cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub len: usize,
    pub keep: usize,
    pub cut: usize,
}

impl Encoding {
    pub fn truncated(&self) -> bool {
        self.cut > 0
    }
}

/// The visible marker appended to a cut message.
pub fn truncation_marker(cut: usize) -> String {
    format!("…[truncated {cut} bytes]")
}

/// Largest `i <= at` that does not split a UTF-8 sequence (steps back over at
/// most three continuation bytes; invalid UTF-8 is cut where it falls).
fn floor_char_boundary(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    while i > 0 && i < bytes.len() && (bytes[i] & 0xC0) == 0x80 && at - i < 3 {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record<'static> {
        Record {
            level: level::WARNING,
            line: 42,
            thread_id: 7,
            logger: b"app.db",
            thread_name: b"MainThread",
            pathname: b"/srv/app/db.py",
            func: b"query",
            module: b"db",
            process_name: b"MainProcess",
            task_name: b"",
            extra: br#"{"user":"ann"}"#,
            message: "héllo wörld".as_bytes(),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let rec = sample();
        let enc = rec.fit(1 << 20).unwrap();
        assert!(!enc.truncated());
        let mut buf = vec![0; enc.len];
        rec.encode(&enc, &mut buf);
        assert_eq!(Record::decode(&buf).unwrap(), rec);
    }

    #[test]
    fn truncates_message_with_marker_within_budget() {
        let msg = "é".repeat(500);
        let rec = Record {
            message: msg.as_bytes(),
            ..sample()
        };
        let max = 300;
        let enc = rec.fit(max).unwrap();
        assert!(enc.truncated() && enc.len <= max);
        let mut buf = vec![0; enc.len];
        rec.encode(&enc, &mut buf);
        let back = Record::decode(&buf).unwrap();
        let text = std::str::from_utf8(back.message).expect("cut on a char boundary");
        assert!(text.ends_with(&format!("…[truncated {} bytes]", enc.cut)));
        assert_eq!(enc.keep + enc.cut, msg.len());
    }

    #[test]
    fn refuses_when_fields_alone_do_not_fit() {
        assert_eq!(sample().fit(FIXED_LEN), None);
    }

    #[test]
    fn decode_rejects_lengths_past_the_end() {
        let rec = sample();
        let enc = rec.fit(1 << 20).unwrap();
        let mut buf = vec![0; enc.len];
        rec.encode(&enc, &mut buf);
        buf[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Record::decode(&buf), Err(DecodeError));
        assert_eq!(Record::decode(&buf[..10]), Err(DecodeError));
    }

    #[test]
    fn level_names_match_python() {
        assert_eq!(level::name(30), "WARNING");
        assert_eq!(level::name(25), "Level 25");
        assert_eq!(level::parse("warn"), Some(30));
        assert_eq!(level::parse("15"), Some(15));
        assert_eq!(level::parse("loud"), None);
    }
}

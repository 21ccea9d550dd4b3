//! Payload codec: the log record that follows the 32-byte ring header.
//!
//! ```text
//! 0  level u8 | flags u8 (bit 0: formatted, 4.1) | reserved u16 | line u32
//! 8  thread_id u64
//! 16 message_len u32 | extra_len u32
//! 24 logger, thread_name, pathname, func, module, process_name, task_name:
//!    7 x u16 lengths, then a reserved u16
//! 40 the field bytes in that order, then extra, then message
//! ```
//! The message comes last so truncation only shortens it. All fields are raw
//! bytes: producers may hand over anything (the flusher replaces invalid
//! UTF-8 when formatting). Decoding checks every length against the payload.

/// Bytes of the fixed part of a payload, before the variable-length fields.
pub const FIXED_LEN: usize = 40;
/// Short fields are cut to this many bytes.
pub const MAX_SHORT_FIELD: usize = u16::MAX as usize;
const SHORT_FIELDS: usize = 7;

/// Python's numeric levels, plus TRACE (5) below DEBUG.
pub mod level {
    /// Finer than DEBUG (Rust's `log::Level::Trace`); not a Python level.
    pub const TRACE: u8 = 5;
    /// `logging.DEBUG`.
    pub const DEBUG: u8 = 10;
    /// `logging.INFO`.
    pub const INFO: u8 = 20;
    /// `logging.WARNING`.
    pub const WARNING: u8 = 30;
    /// `logging.ERROR`.
    pub const ERROR: u8 = 40;
    /// `logging.CRITICAL`.
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
///
/// Fields are named after Python's `LogRecord` attributes. Text fields are
/// raw bytes (any encoding; the flusher replaces invalid UTF-8), and an
/// empty one means "not given": the formatters then print Python's default
/// (`root`, `MainThread`, ...) or leave the key out. The seven short fields
/// (`logger` to `task_name`) are cut to [`MAX_SHORT_FIELD`] bytes when
/// encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record<'a> {
    /// Numeric level on Python's scale (see [`level`]).
    pub level: u8,
    /// Source line number (`lineno`); 0 when unknown.
    pub line: u32,
    /// The writing thread's id (`thread`: `gettid()` for Rust producers,
    /// `threading.get_ident()` for Python ones); 0 when unknown.
    pub thread_id: u64,
    /// Logger name (`name`; a Rust `log` record's target).
    pub logger: &'a [u8],
    /// Thread name (`threadName`).
    pub thread_name: &'a [u8],
    /// Source file path (`pathname`; `filename` is its last component).
    pub pathname: &'a [u8],
    /// Function name (`funcName`).
    pub func: &'a [u8],
    /// Module name (`module`; a Rust record's module path).
    pub module: &'a [u8],
    /// Process name (`processName`).
    pub process_name: &'a [u8],
    /// asyncio task name (`taskName`).
    pub task_name: &'a [u8],
    /// A JSON object's text with extra fields (`extra={...}` in Python),
    /// binary field entries ([`crate::fields::binary`]), or empty.
    pub extra: &'a [u8],
    /// The formatted message (`getMessage()`); cut, with a marker, when the
    /// record would exceed the size given to [`Record::fit`].
    pub message: &'a [u8],
    /// The message is the whole line, as the application's own formatter
    /// made it (a Python handler with a formatter set): the flusher writes
    /// it as it is, whatever its `--format`.
    pub formatted: bool,
}

/// The common shape of a record: level, thread, logger and message, no other
/// field (what `Producer::log` and most Rust `log` calls write). Encodes
/// byte for byte as the [`Record`] with the same fields, without the general
/// path's work for the fields it does not have: this is the hot path.
#[derive(Debug, Clone, Copy)]
pub struct Basic<'a> {
    /// As [`Record::level`].
    pub level: u8,
    /// As [`Record::thread_id`].
    pub thread_id: u64,
    /// As [`Record::logger`]; at most [`MAX_SHORT_FIELD`] bytes for this path.
    pub logger: &'a [u8],
    /// As [`Record::thread_name`]; at most [`MAX_SHORT_FIELD`] bytes for this
    /// path.
    pub thread_name: &'a [u8],
    /// As [`Record::message`].
    pub message: &'a [u8],
}

impl<'a> Basic<'a> {
    /// The same record for the general path.
    pub fn record(&self) -> Record<'a> {
        Record {
            level: self.level,
            thread_id: self.thread_id,
            logger: self.logger,
            thread_name: self.thread_name,
            message: self.message,
            ..Record::default()
        }
    }

    /// Encoded length, or `None` when a name is too long for this path
    /// (the general one cuts it).
    #[inline]
    pub fn encoded_len(&self) -> Option<usize> {
        let (l, t) = (self.logger.len(), self.thread_name.len());
        ((l | t) <= MAX_SHORT_FIELD).then_some(FIXED_LEN + l + t + self.message.len())
    }

    /// Encode into `buf`, exactly [`Basic::encoded_len`] bytes long.
    ///
    /// # Panics
    /// If `buf` is shorter than that.
    #[inline(always)]
    pub fn encode(&self, buf: &mut [u8]) {
        let (l, t, m) = (
            self.logger.len(),
            self.thread_name.len(),
            self.message.len(),
        );
        // One check for the whole record (the fields' own would cost one
        // each, on the log call's path): then every put below is in bounds.
        assert!(l <= MAX_SHORT_FIELD && t <= MAX_SHORT_FIELD && buf.len() >= FIXED_LEN + l + t + m);
        put_fixed(
            buf,
            [
                self.level as u64,
                self.thread_id,
                self.message.len() as u64,
                self.logger.len() as u64 | (self.thread_name.len() as u64) << 16,
                0,
            ],
        );
        let d = buf.as_mut_ptr();
        // SAFETY: the fields end at FIXED_LEN + l + t + m <= buf.len()
        // (asserted above) and do not overlap `buf`, borrowed mutably.
        unsafe {
            copy_small(self.logger, d.add(FIXED_LEN));
            copy_small(self.thread_name, d.add(FIXED_LEN + l));
            copy_text(self.message, d.add(FIXED_LEN + l + t));
        }
    }
}

/// A payload that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record payload lengths exceed the record")
    }
}

impl std::error::Error for DecodeError {}

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
        let lens = [
            f[0].len(),
            f[1].len(),
            f[2].len(),
            f[3].len(),
            f[4].len(),
            f[5].len(),
            f[6].len(),
        ];
        // One test for the common case: no field needs cutting.
        let short: usize = if lens.iter().fold(0, |a, l| a | l) <= MAX_SHORT_FIELD {
            lens.iter().sum()
        } else {
            lens.iter().map(|&l| l.min(MAX_SHORT_FIELD)).sum()
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
    ///
    /// # Panics
    /// If `buf` is shorter than `enc.len` (debug builds also check that it
    /// is exactly that long).
    #[inline]
    pub fn encode(&self, enc: &Encoding, buf: &mut [u8]) {
        debug_assert_eq!(buf.len(), enc.len);
        if enc.cut > 0 {
            return self.encode_cut(enc, buf);
        }
        let at = self.encode_prefix(enc.keep, buf);
        put(buf, at, self.message);
    }

    #[cold]
    fn encode_cut(&self, enc: &Encoding, buf: &mut [u8]) {
        let marker = truncation_marker(enc.cut);
        let at = self.encode_prefix(enc.keep + marker.len(), buf);
        buf[at..at + enc.keep].copy_from_slice(&self.message[..enc.keep]);
        buf[at + enc.keep..at + enc.keep + marker.len()].copy_from_slice(marker.as_bytes());
    }

    /// Everything but the message; returns where the message starts.
    /// Written as five whole words and one small copy per non-empty field:
    /// this runs on every log call, and generic per-field `memcpy` calls and
    /// byte-wise assembly cost more than the rest of the call together.
    #[inline]
    fn encode_prefix(&self, message_len: usize, buf: &mut [u8]) -> usize {
        let logger = clip_short(self.logger);
        let thread_name = clip_short(self.thread_name);
        let pathname = clip_short(self.pathname);
        let func = clip_short(self.func);
        let module = clip_short(self.module);
        let process_name = clip_short(self.process_name);
        let task_name = clip_short(self.task_name);
        let words = [
            self.level as u64 | (self.formatted as u64) << 8 | (self.line as u64) << 32,
            self.thread_id,
            message_len as u64 | (self.extra.len() as u64) << 32,
            logger.len() as u64
                | (thread_name.len() as u64) << 16
                | (pathname.len() as u64) << 32
                | (func.len() as u64) << 48,
            module.len() as u64
                | (process_name.len() as u64) << 16
                | (task_name.len() as u64) << 32,
        ];
        put_fixed(buf, words);
        let mut at = put(buf, FIXED_LEN, logger);
        at = put(buf, at, thread_name);
        // Most records (Rust's `log` calls) carry none of the rest.
        let optional = pathname.len()
            | func.len()
            | module.len()
            | process_name.len()
            | task_name.len()
            | self.extra.len();
        if optional != 0 {
            for part in [pathname, func, module, process_name, task_name, self.extra] {
                at = put(buf, at, part);
            }
        }
        at
    }

    /// Decode a payload, checking every length against it. The fields
    /// borrow from `buf`; bytes after the encoded record are ignored.
    ///
    /// # Errors
    /// [`DecodeError`] when `buf` is shorter than the fixed part or than the
    /// lengths it declares.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let fixed: &[u8; FIXED_LEN] = buf
            .get(..FIXED_LEN)
            .and_then(|f| f.try_into().ok())
            .ok_or(DecodeError)?;
        let word = |i: usize| u64::from_le_bytes(fixed[8 * i..8 * i + 8].try_into().expect("8"));
        let (w0, w2, w3, w4) = (word(0), word(2), word(3), word(4));
        let short =
            [w3, w3 >> 16, w3 >> 32, w3 >> 48, w4, w4 >> 16, w4 >> 32].map(|w| w as u16 as u64);
        let (message_len, extra_len) = (w2 as u32 as u64, w2 >> 32);
        // One check for all the lengths (each below 2^32: the u64 sum cannot
        // overflow), then the fields are cut in order.
        let end = FIXED_LEN as u64 + short.iter().sum::<u64>() + extra_len + message_len;
        if end > buf.len() as u64 {
            return Err(DecodeError);
        }
        let mut rest = &buf[FIXED_LEN..end as usize];
        let mut take = |n: u64| {
            let (field, after) = rest.split_at(n as usize);
            rest = after;
            field
        };
        Ok(Record {
            level: w0 as u8,
            formatted: (w0 >> 8) & 1 != 0,
            line: (w0 >> 32) as u32,
            thread_id: word(1),
            logger: take(short[0]),
            thread_name: take(short[1]),
            pathname: take(short[2]),
            func: take(short[3]),
            module: take(short[4]),
            process_name: take(short[5]),
            task_name: take(short[6]),
            extra: take(extra_len),
            message: take(message_len),
        })
    }
}

/// How a record is encoded: total length, message bytes kept and cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Encoded payload length in bytes (ring header not included).
    pub len: usize,
    /// Leading message bytes kept (cut on a UTF-8 character boundary).
    pub keep: usize,
    /// Message bytes dropped; when non-zero the kept part is followed by
    /// [`truncation_marker`]`(cut)`.
    pub cut: usize,
}

impl Encoding {
    /// Whether the message was cut to fit.
    pub fn truncated(&self) -> bool {
        self.cut > 0
    }
}

/// Write the fixed part (see the module docs) as five little-endian words,
/// with one bounds check for the whole of it.
#[inline(always)]
fn put_fixed(buf: &mut [u8], words: [u64; 5]) {
    let fixed: &mut [u8; FIXED_LEN] = (&mut buf[..FIXED_LEN]).try_into().expect("40 bytes");
    for (i, w) in words.iter().enumerate() {
        fixed[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
}

/// A short field as encoded: cut to [`MAX_SHORT_FIELD`] bytes.
#[inline(always)]
fn clip_short(field: &[u8]) -> &[u8] {
    &field[..field.len().min(MAX_SHORT_FIELD)]
}

/// Copy `src` into `buf` at `at`; returns the end. Fields are mostly a few
/// bytes (a logger or thread name) and messages a few dozen: two overlapping
/// moves of up to 64 bytes copy them without a call into `memcpy` (raw pointers, because
/// with slice copies LLVM merges the moves back into a `memcpy` call).
#[inline(always)]
fn put(buf: &mut [u8], at: usize, src: &[u8]) -> usize {
    let n = src.len();
    let dst = &mut buf[at..at + n];
    // SAFETY: `dst` is `n` bytes long (the slicing above checked it) and
    // does not overlap `src` (`buf` is borrowed mutably).
    unsafe { copy_small(src, dst.as_mut_ptr()) };
    at + n
}

/// Copy `src` to `d`, small sizes with a few inline moves.
///
/// # Safety
/// `d` is writable for `src.len()` bytes that do not overlap `src`.
#[inline(always)]
unsafe fn copy_small(src: &[u8], d: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: `d` is writable for n bytes (the caller's contract) and `s`
    // readable for n; every access below starts at an offset in [0, n) and
    // ends at most at n.
    unsafe {
        // A tree of tests rather than a chain: a 100 B message takes four,
        // not six, and a short name three.
        if n <= 16 {
            if n >= 8 {
                copy_ends::<u64>(s, d, n)
            } else if n >= 4 {
                copy_ends::<u32>(s, d, n)
            } else if n > 0 {
                *d = *s;
                *d.add(n / 2) = *s.add(n / 2);
                *d.add(n - 1) = *s.add(n - 1);
            }
        } else if n <= 32 {
            copy_ends::<u128>(s, d, n)
        } else if n <= 64 {
            copy_ends::<[u128; 2]>(s, d, n)
        } else if n <= 128 {
            // A typical message: inline too (a call into memcpy cost 30
            // instructions more, with the registers it saves).
            copy_ends::<[u128; 4]>(s, d, n)
        } else {
            std::ptr::copy_nonoverlapping(s, d, n)
        }
    }
}

/// [`copy_small`] for a message: tested from the long end, since a
/// message is mostly longer than a name (a 100 B one takes two tests, not
/// four).
///
/// # Safety
/// As [`copy_small`].
#[inline(always)]
unsafe fn copy_text(src: &[u8], d: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: as in `copy_small`: every access lies within the n bytes.
    unsafe {
        if n > 64 {
            if n <= 128 {
                copy_ends::<[u128; 4]>(s, d, n)
            } else {
                std::ptr::copy_nonoverlapping(s, d, n)
            }
        } else if n > 32 {
            copy_ends::<[u128; 2]>(s, d, n)
        } else {
            copy_small(src, d)
        }
    }
}

/// Copy `n` bytes as two possibly overlapping `T`s: the first and the last.
///
/// # Safety
/// `size_of::<T>() <= n`, `s` is readable and `d` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_ends<T>(s: *const u8, d: *mut u8, n: usize) {
    let w = std::mem::size_of::<T>();
    // SAFETY: both words lie within the n bytes (the caller's contract).
    unsafe {
        let (first, last) = (
            s.cast::<T>().read_unaligned(),
            s.add(n - w).cast::<T>().read_unaligned(),
        );
        d.cast::<T>().write_unaligned(first);
        d.add(n - w).cast::<T>().write_unaligned(last);
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
            formatted: true,
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
    fn round_trips_every_field_length_the_copy_paths_distinguish() {
        let bytes: Vec<u8> = (0..80u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(1))
            .collect();
        for n in 0..=70 {
            let field = &bytes[..n];
            let other = &bytes[n % 7..n % 7 + (70 - n) / 3];
            let rec = Record {
                logger: field,
                thread_name: other,
                message: field,
                ..Record::default()
            };
            for rec in [
                rec,
                Record {
                    pathname: other,
                    extra: field,
                    ..rec
                },
            ] {
                let enc = rec.fit(1 << 20).unwrap();
                let mut buf = vec![0xAA; enc.len];
                rec.encode(&enc, &mut buf);
                assert_eq!(Record::decode(&buf).unwrap(), rec, "field length {n}");
            }
        }
    }

    #[test]
    fn basic_encodes_as_the_record_with_the_same_fields() {
        let bytes: Vec<u8> = (0..200u8).collect();
        for (l, t, m) in [
            (0, 0, 0),
            (5, 4, 100),
            (1, 17, 33),
            (64, 0, 7),
            (3, 15, 199),
        ] {
            let basic = Basic {
                level: level::ERROR,
                thread_id: 0x0102_0304_0506_0708,
                logger: &bytes[..l],
                thread_name: &bytes[1..1 + t],
                message: &bytes[..m],
            };
            let rec = basic.record();
            let enc = rec.fit(1 << 20).unwrap();
            assert_eq!(basic.encoded_len(), Some(enc.len));
            let (mut a, mut b) = (vec![0xAA; enc.len], vec![0x55; enc.len]);
            basic.encode(&mut a);
            rec.encode(&enc, &mut b);
            assert_eq!(a, b, "lengths {l} {t} {m}");
        }
        let long = vec![b'x'; MAX_SHORT_FIELD + 1];
        let too_long = Basic {
            level: 0,
            thread_id: 0,
            logger: &long,
            thread_name: b"",
            message: b"",
        };
        assert_eq!(too_long.encoded_len(), None);
    }

    /// Every length each of the hot path's copy branches takes (and the
    /// ones either side of each bound), for each field: the same bytes as
    /// the general encoder, and nothing written past the record.
    #[test]
    fn basic_copies_every_length_exactly() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut cases = Vec::new();
        for n in 0..=260 {
            cases.extend([(n % 40, n % 17, n), (n, 3, n % 9), (n % 5, n, 1)]);
        }
        for (l, t, m) in cases {
            let basic = Basic {
                level: level::WARNING,
                thread_id: 42,
                logger: &bytes[..l],
                thread_name: &bytes[2..2 + t],
                message: &bytes[1..1 + m],
            };
            let rec = basic.record();
            let enc = rec.fit(1 << 20).unwrap();
            let (mut a, mut b) = (vec![0xAA; enc.len + 16], vec![0xAA; enc.len + 16]);
            basic.encode(&mut a[..enc.len]);
            rec.encode(&enc, &mut b[..enc.len]);
            assert_eq!(a, b, "lengths {l} {t} {m}");
            assert!(a[enc.len..].iter().all(|&x| x == 0xAA), "{l} {t} {m}");
        }
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

    /// Each optional field alone, and each pair at equal lengths: the
    /// encoder's "any optional field?" test must not skip any of them (a
    /// bit operation that cancels equal lengths would).
    #[test]
    fn round_trips_every_optional_field_alone_and_in_equal_length_pairs() {
        fn with(i: usize, v: &'static [u8], rec: Record<'static>) -> Record<'static> {
            match i {
                0 => Record { pathname: v, ..rec },
                1 => Record { func: v, ..rec },
                2 => Record { module: v, ..rec },
                3 => Record {
                    process_name: v,
                    ..rec
                },
                4 => Record {
                    task_name: v,
                    ..rec
                },
                _ => Record { extra: v, ..rec },
            }
        }
        let base = Record {
            level: level::INFO,
            line: 9,
            message: b"msg",
            ..Record::default()
        };
        for i in 0..6 {
            for j in i..6 {
                let rec = with(j, b"abc", with(i, b"xyz", base));
                let enc = rec.fit(1 << 20).unwrap();
                let mut buf = vec![0xAA; enc.len];
                rec.encode(&enc, &mut buf);
                assert_eq!(Record::decode(&buf).unwrap(), rec, "fields {i} {j}");
            }
        }
        // Every field at once, each with its own length.
        let rec = Record {
            task_name: b"Task-7",
            ..sample()
        };
        let enc = rec.fit(1 << 20).unwrap();
        assert_eq!(rec.encoded_len(), enc.len);
        let mut buf = vec![0; enc.len];
        rec.encode(&enc, &mut buf);
        assert_eq!(Record::decode(&buf).unwrap(), rec);
    }

    /// The encoder writes exactly `enc.len` bytes: in the ring the bytes
    /// after a payload can be the next record's header.
    #[test]
    fn encoding_never_writes_past_its_buffer() {
        let bytes: Vec<u8> = (1..=80u8).collect();
        for n in 0..=70 {
            for rec in [
                Record {
                    message: &bytes[..n],
                    ..Record::default()
                },
                Record {
                    logger: &bytes[..n],
                    ..Record::default()
                },
                Record {
                    extra: &bytes[..n],
                    ..Record::default()
                },
            ] {
                let enc = rec.fit(1 << 20).unwrap();
                let mut buf = vec![0xEE; enc.len + 16];
                rec.encode(&enc, &mut buf[..enc.len]);
                assert_eq!(&buf[enc.len..], &[0xEE; 16], "length {n}");
                assert_eq!(Record::decode(&buf).unwrap(), rec, "length {n}");
            }
        }
    }

    /// Short fields longer than [`MAX_SHORT_FIELD`] are cut to it, in the
    /// planned length as in the bytes, also when two of them are equally long.
    #[test]
    fn long_short_fields_are_cut_to_the_limit() {
        let long = vec![b'n'; MAX_SHORT_FIELD + 5];
        let longer = vec![b't'; MAX_SHORT_FIELD + 5000];
        for (logger, thread_name) in [(&long, &longer), (&long, &long)] {
            let rec = Record {
                logger,
                thread_name,
                message: b"m",
                ..Record::default()
            };
            let enc = rec.fit(1 << 20).unwrap();
            assert_eq!(enc.len, FIXED_LEN + 2 * MAX_SHORT_FIELD + 1);
            assert_eq!(rec.encoded_len(), enc.len);
            let mut buf = vec![0; enc.len];
            rec.encode(&enc, &mut buf);
            let back = Record::decode(&buf).unwrap();
            assert_eq!(back.logger, &logger[..MAX_SHORT_FIELD]);
            assert_eq!(back.thread_name, &thread_name[..MAX_SHORT_FIELD]);
            assert_eq!(back.message, b"m");
        }
        // The hot path refuses them (both too long by the same amount too).
        for (l, t) in [(MAX_SHORT_FIELD + 1, 0), (1 << 16, 1 << 16)] {
            let basic = Basic {
                level: 0,
                thread_id: 0,
                logger: &longer[..l],
                thread_name: &longer[..t],
                message: b"",
            };
            assert_eq!(basic.encoded_len(), None, "{l} {t}");
        }
    }

    /// A cut message ends on a character boundary: the largest one at or
    /// below the room, and never more than three bytes below it (invalid
    /// UTF-8 is cut where it falls).
    #[test]
    fn cuts_fall_on_character_boundaries() {
        let text = "a\u{e9}\u{20ac}b\u{1f600}c\u{1f600}";
        let bytes = text.as_bytes();
        for at in 0..=bytes.len() {
            let expected = (0..=at).rev().find(|&k| text.is_char_boundary(k)).unwrap();
            assert_eq!(floor_char_boundary(bytes, at), expected, "at {at}");
        }
        // Continuation bytes only: at most three steps back, never below 0.
        let junk = [0x80u8; 8];
        assert_eq!(floor_char_boundary(&junk, 6), 3);
        assert_eq!(floor_char_boundary(&junk, 2), 0);
        assert_eq!(floor_char_boundary(&junk, 8), 8);
        // Through the encoder: every room gives a valid UTF-8 message.
        let rec = Record {
            message: bytes,
            ..Record::default()
        };
        let prefix = rec.prefix_len();
        for max in prefix + 24..prefix + 24 + bytes.len() {
            let enc = rec.fit(max).unwrap();
            assert!(enc.len <= max, "max {max}");
            let mut buf = vec![0; enc.len];
            rec.encode(&enc, &mut buf);
            let back = Record::decode(&buf).unwrap();
            assert!(std::str::from_utf8(back.message).is_ok(), "max {max}");
        }
    }

    #[test]
    fn decode_error_says_why() {
        assert_eq!(
            DecodeError.to_string(),
            "record payload lengths exceed the record"
        );
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

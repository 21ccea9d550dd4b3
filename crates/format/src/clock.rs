//! Timestamps to text, cached per second (records arrive in time order, so
//! the date is formatted once per second, not once per record).

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local, TimeZone, Utc};

use crate::FormatError;

/// Python's `Formatter.default_time_format`.
const PYTHON_DEFAULT: &str = "%Y-%m-%d %H:%M:%S";

#[derive(Debug)]
pub struct Clock {
    items: Vec<Item<'static>>,
    /// A datefmt was given: Python then adds no milliseconds.
    custom: bool,
    utc: bool,
    cached_sec: i64,
    cached: String,
    cached_iso_sec: i64,
    cached_iso: (String, String),
}

impl Clock {
    pub fn new(datefmt: Option<&str>, utc: bool) -> Result<Self, FormatError> {
        let fmt = datefmt.unwrap_or(PYTHON_DEFAULT);
        let items: Vec<Item<'static>> = StrftimeItems::new(fmt).map(|i| i.to_owned()).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(FormatError::new(format!(
                "invalid --datefmt {fmt:?}: unsupported % directive"
            )));
        }
        Ok(Self {
            items,
            custom: datefmt.is_some(),
            utc,
            cached_sec: i64::MIN,
            cached: String::new(),
            cached_iso_sec: i64::MIN,
            cached_iso: (String::new(), String::new()),
        })
    }

    fn datetime(&self, sec: i64) -> DateTime<chrono::FixedOffset> {
        if self.utc {
            Utc.timestamp_opt(sec, 0).unwrap().fixed_offset()
        } else {
            Local
                .timestamp_opt(sec, 0)
                .single()
                .map(|t| t.fixed_offset())
                .unwrap_or_else(|| Utc.timestamp_opt(sec, 0).unwrap().fixed_offset())
        }
    }

    /// Python's `asctime`: strftime of the second `sec`, then `,mmm` (`ms`)
    /// unless a datefmt was given.
    pub fn asctime(&mut self, sec: i64, ms: u64, out: &mut Vec<u8>) {
        if sec != self.cached_sec {
            let dt = self.datetime(sec);
            self.cached = dt.format_with_items(self.items.iter()).to_string();
            self.cached_sec = sec;
        }
        out.extend_from_slice(self.cached.as_bytes());
        if !self.custom {
            let ms = ms as u32;
            out.extend_from_slice(&[
                b',',
                b'0' + (ms / 100) as u8,
                b'0' + (ms / 10 % 10) as u8,
                b'0' + (ms % 10) as u8,
            ]);
        }
    }

    /// RFC 3339 with microseconds and the UTC offset, for JSON.
    pub fn iso(&mut self, ns: u64, out: &mut Vec<u8>) {
        let sec = (ns / 1_000_000_000) as i64;
        if sec != self.cached_iso_sec {
            let dt = self.datetime(sec);
            self.cached_iso = (
                dt.format("%Y-%m-%dT%H:%M:%S").to_string(),
                dt.format("%:z").to_string(),
            );
            self.cached_iso_sec = sec;
        }
        out.extend_from_slice(self.cached_iso.0.as_bytes());
        let us = (ns / 1000 % 1_000_000) as u32;
        out.push(b'.');
        let mut digits = [b'0'; 6];
        let mut v = us;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&digits);
        out.extend_from_slice(self.cached_iso.1.as_bytes());
    }
}

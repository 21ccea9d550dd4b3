//! Timestamps formatted with a datefmt (`asctime`) or as RFC 3339 (JSON's
//! `time`), cached per second: records arrive in time order, so the date is
//! formatted once per second, not once per record.
//!
//! `asctime` is what Python's `time.strftime(datefmt, time.localtime(t))`
//! gives, because it is the same C library call: `localtime_r` and
//! `strftime` in the C locale (Python leaves `LC_TIME` alone), so `%Z` is
//! the zone's abbreviation and a directive the C library does not know is
//! copied as it is (`%f` stays `%f`). The format is checked with chrono's
//! parser first, and refused where chrono knows no such directive: a typo
//! more often than a wish for a literal.

use std::ffi::CString;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local, TimeZone, Utc};

use crate::FormatError;

extern "C" {
    /// POSIX tzset(3) (the libc crate does not declare it).
    fn tzset();
}

/// Python's `Formatter.default_time_format`.
const PYTHON_DEFAULT: &str = "%Y-%m-%d %H:%M:%S";

/// The zone times are shown in: `logging.Formatter.converter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    /// `time.localtime`, Python's default: the zone `TZ` names.
    Local,
    /// `time.gmtime`.
    Utc,
}

/// A datefmt and zone that turn record times into text, with the text of
/// the current second cached.
#[derive(Debug)]
pub struct DateFormat {
    /// The datefmt for strftime(3).
    datefmt: CString,
    /// A datefmt was given: Python then adds no milliseconds.
    custom: bool,
    zone: Zone,
    cached_sec: i64,
    cached: String,
    cached_iso_sec: i64,
    cached_iso: (String, String),
}

impl DateFormat {
    /// Times in the local zone, formatted with `datefmt` (Python's default
    /// when `None`).
    ///
    /// # Errors
    /// [`FormatError`] when `datefmt` has a `%` directive chrono does not
    /// know, or a NUL byte.
    pub fn local(datefmt: Option<&str>) -> Result<Self, FormatError> {
        Self::new(datefmt, Zone::Local)
    }

    /// Times in UTC, formatted with `datefmt` (Python's default when
    /// `None`).
    ///
    /// # Errors
    /// As [`DateFormat::local`].
    pub fn utc(datefmt: Option<&str>) -> Result<Self, FormatError> {
        Self::new(datefmt, Zone::Utc)
    }

    fn new(datefmt: Option<&str>, zone: Zone) -> Result<Self, FormatError> {
        let fmt = datefmt.unwrap_or(PYTHON_DEFAULT);
        let items: Vec<Item<'static>> = StrftimeItems::new(fmt).map(|i| i.to_owned()).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(FormatError::new(format!(
                "invalid --datefmt {fmt:?}: unsupported % directive"
            )));
        }
        let c_datefmt = CString::new(fmt).map_err(|_| {
            FormatError::new(format!("invalid --datefmt {fmt:?}: it contains a NUL byte"))
        })?;
        // SAFETY: tzset has no preconditions; localtime_r needs it to have
        // read TZ.
        unsafe { tzset() };
        Ok(Self {
            datefmt: c_datefmt,
            custom: datefmt.is_some(),
            zone,
            cached_sec: i64::MIN,
            cached: String::new(),
            cached_iso_sec: i64::MIN,
            cached_iso: (String::new(), String::new()),
        })
    }

    fn datetime(&self, sec: i64) -> DateTime<chrono::FixedOffset> {
        match self.zone {
            Zone::Utc => Utc.timestamp_opt(sec, 0).unwrap().fixed_offset(),
            Zone::Local => Local
                .timestamp_opt(sec, 0)
                .single()
                .map(|t| t.fixed_offset())
                .unwrap_or_else(|| Utc.timestamp_opt(sec, 0).unwrap().fixed_offset()),
        }
    }

    /// Python's `asctime`: strftime of the second `sec`, then `,mmm` (`ms`)
    /// unless a datefmt was given.
    pub fn asctime(&mut self, sec: i64, ms: u64, out: &mut Vec<u8>) {
        if sec != self.cached_sec {
            self.cached = self.strftime(sec);
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

    /// strftime(3) of the broken-down local (or UTC) time of `sec`.
    fn strftime(&self, sec: i64) -> String {
        let t = sec as libc::time_t;
        // SAFETY: an all-zero `tm` (null tm_zone) is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call.
        let ok = unsafe {
            match self.zone {
                Zone::Utc => !libc::gmtime_r(&t, &mut tm).is_null(),
                Zone::Local => !libc::localtime_r(&t, &mut tm).is_null(),
            }
        };
        if !ok {
            return String::new();
        }
        if self.zone == Zone::Utc {
            // Python's time.gmtime() names the zone UTC; glibc says GMT.
            tm.tm_zone = c"UTC".as_ptr();
        }
        // CPython's time.strftime grows its buffer up to 256 times the
        // format's length; an empty result is empty either way.
        let most = 256 * self.datefmt.as_bytes().len().max(1);
        let mut cap = 256;
        loop {
            let mut buf = vec![0u8; cap];
            // SAFETY: `buf` has `cap` writable bytes; the format is
            // NUL-terminated and `tm` is initialised.
            let n =
                unsafe { libc::strftime(buf.as_mut_ptr().cast(), cap, self.datefmt.as_ptr(), &tm) };
            if n > 0 || cap >= most {
                buf.truncate(n);
                return String::from_utf8_lossy(&buf).into_owned();
            }
            cap *= 4;
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

//! Python `logging`'s `%`-style format strings, e.g.
//! `%(asctime)s %(levelname)-8s %(name)s: %(message)s`.
//!
//! Each field is `%(attr)[flags][width][.precision]conversion` as in
//! Python's `%` operator, with flags `-0+ #` and conversions `s r a c d i
//! u f F e E g G x X o`. `*` widths and `%` without a `(name)` (which
//! CPython rejects when formatting: "format requires a mapping") are
//! errors when compiling, not discovered per record.

use crate::line::{Conv, Piece};
use crate::pyfmt::{PercentConv, PercentSpec, MAX_WIDTH};

/// A format string, date format or `--defaults` that cannot be used.
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

/// Split a `%`-style format into literal text and fields; Err is why not.
pub(crate) fn parse(format: &str) -> Result<Vec<Piece>, String> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(at) = format[i..].find('%') else {
            lit.push_str(&format[i..]);
            break;
        };
        lit.push_str(&format[i..i + at]);
        i += at;
        match bytes.get(i + 1) {
            Some(b'%') => {
                lit.push('%');
                i += 2;
                continue;
            }
            Some(b'(') => {}
            _ => {
                return Err(format!(
                    "'%' at byte {i} must be followed by '(name)' or '%' \
                     (a field without a name is not a logging field)"
                ))
            }
        }
        // The name runs to the matching ')', as in CPython's `%`.
        let mut depth = 1;
        let mut close = None;
        for (j, &b) in bytes.iter().enumerate().skip(i + 2) {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.ok_or("unclosed '%(': no ')' after it")?;
        let name = &format[i + 2..close];
        let mut j = close + 1;
        let mut spec = PercentSpec::default();
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
        let digits = |j: &mut usize| -> Result<Option<usize>, String> {
            let start = *j;
            while bytes.get(*j).is_some_and(u8::is_ascii_digit) {
                *j += 1;
            }
            if start == *j {
                return Ok(None);
            }
            match format[start..*j].parse::<usize>() {
                Ok(n) if n <= MAX_WIDTH => Ok(Some(n)),
                _ => Err(format!("%({name}): width or precision is too large")),
            }
        };
        if bytes.get(j) == Some(&b'*') {
            return Err("'*' widths are not supported".into());
        }
        spec.width = digits(&mut j)?.unwrap_or(0);
        if bytes.get(j) == Some(&b'.') {
            j += 1;
            if bytes.get(j) == Some(&b'*') {
                return Err("'*' precisions are not supported".into());
            }
            spec.precision = Some(digits(&mut j)?.unwrap_or(0));
        }
        // Python accepts (and ignores) a length modifier.
        if matches!(bytes.get(j), Some(b'h' | b'l' | b'L')) {
            j += 1;
        }
        let conv = *bytes
            .get(j)
            .ok_or_else(|| format!("%({name}) has no conversion character"))?;
        spec.conv = PercentConv::parse(conv).ok_or_else(|| {
            let c = format[j..].chars().next().unwrap_or('?');
            format!("unsupported conversion '{c}' in %({name})")
        })?;
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Field {
            name: name.to_string(),
            conv: if spec.is_plain_s() {
                Conv::Plain
            } else {
                Conv::Percent(spec)
            },
            shown: format[i..=j].to_string(),
        });
        i = j + 1;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
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
            utc: true,
            ..FormatSpec::default()
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

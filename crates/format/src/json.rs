//! JSON Lines: one object per record, keys named after Python's LogRecord
//! attributes, plus the producer's `extra` fields.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::value::RawValue;

use ringflush_ring::codec::level;

use crate::datefmt::DateFormat;
use crate::text::{is_plain, lossy};
use crate::Entry;

const STANDARD_KEYS: &[&str] = &[
    "time",
    "created",
    "levelname",
    "levelno",
    "name",
    "message",
    "process",
    "processName",
    "thread",
    "threadName",
    "pathname",
    "filename",
    "module",
    "funcName",
    "lineno",
    "taskName",
];

/// Formats records as JSON Lines: one object per line, keys named after
/// `LogRecord` attributes (optional fields left out when empty or zero), the
/// producer's `extra` merged in.
#[derive(Debug)]
pub struct JsonFormatter {
    dates: DateFormat,
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_plain(bytes, b'"') {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*lossy(bytes));
}

fn opt_string(out: &mut Vec<u8>, k: &str, bytes: &[u8]) {
    if !bytes.is_empty() {
        key(out, k);
        string(out, bytes);
    }
}

/// A number field that is absent when 0 (unknown thread or line).
fn opt_number(out: &mut Vec<u8>, k: &str, n: u64) {
    if n != 0 {
        key(out, k);
        let _ = write!(out, "{n}");
    }
}

impl JsonFormatter {
    pub(crate) fn new(dates: DateFormat) -> Self {
        Self { dates }
    }

    /// Append `e` as one JSON object and a `\n` to `out`.
    pub fn format(&mut self, e: &Entry<'_>, out: &mut Vec<u8>) {
        let r = &e.record;
        out.extend_from_slice(b"{\"time\":\"");
        self.dates.iso(e.created_ns, out);
        out.push(b'"');
        key(out, "created");
        let _ = write_f64(out, e.created_ns);
        key(out, "levelname");
        string(out, level::name(r.level).as_bytes());
        key(out, "levelno");
        let _ = write!(out, "{}", r.level);
        key(out, "name");
        string(out, e.logger_name());
        key(out, "message");
        string(out, r.message);
        key(out, "process");
        let _ = write!(out, "{}", e.pid);
        opt_string(out, "processName", r.process_name);
        opt_number(out, "thread", r.thread_id);
        opt_string(out, "threadName", r.thread_name);
        if !r.pathname.is_empty() {
            opt_string(out, "pathname", r.pathname);
            let file = match r.pathname.iter().rposition(|&b| b == b'/') {
                Some(i) => &r.pathname[i + 1..],
                None => r.pathname,
            };
            opt_string(out, "filename", file);
        }
        opt_string(out, "module", r.module);
        opt_string(out, "funcName", r.func);
        opt_number(out, "lineno", r.line.into());
        opt_string(out, "taskName", r.task_name);
        if !r.extra.is_empty() {
            self.extra(r.extra, out);
        }
        out.extend_from_slice(b"}\n");
    }

    /// Merge the producer's `extra` object; keys that would shadow a standard
    /// one are prefixed with `extra.`, and a value that is not a JSON object is
    /// kept whole under `extra`.
    fn extra(&self, extra: &[u8], out: &mut Vec<u8>) {
        if merge_raw(extra, out) {
            return;
        }
        match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(extra) {
            Ok(map) => {
                for (k, v) in map {
                    if STANDARD_KEYS.contains(&k.as_str()) {
                        key(out, &format!("extra.{k}"));
                    } else {
                        out.push(b',');
                        let _ = serde_json::to_writer(&mut *out, &k);
                        out.push(b':');
                    }
                    let _ = serde_json::to_writer(&mut *out, &v);
                }
            }
            Err(_) => {
                key(out, "extra");
                string(out, extra);
            }
        }
    }
}

/// The common case of [`JsonFormatter::extra`] without building values:
/// an object whose keys need no unescaping and whose values are on one
/// line is merged by copying each value's JSON text as it is (keys sorted,
/// as the general path's map sorts them). Returns false, having written
/// nothing, for anything else.
fn merge_raw(extra: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(members) = raw_members(extra) else {
        return false;
    };
    for (k, v) in members {
        // A borrowed key has no escapes, and JSON forbids raw control
        // characters in strings: it goes between quotes as it is.
        if STANDARD_KEYS.contains(&k) {
            key(out, &format!("extra.{k}"));
        } else {
            key(out, k);
        }
        out.extend_from_slice(v.get().as_bytes());
    }
    true
}

/// The members of an `extra` object, keys sorted (as serde_json's map
/// sorts them), each value as its JSON text borrowed from `extra`: `None`
/// unless it is an object whose keys need no unescaping and whose every
/// value is [`copyable`] (callers then rebuild it with serde_json).
pub(crate) fn raw_members(extra: &[u8]) -> Option<BTreeMap<&str, &RawValue>> {
    let members = serde_json::from_slice::<BTreeMap<&str, &RawValue>>(extra).ok()?;
    members
        .values()
        .all(|v| copyable(v.get().as_bytes()))
        .then_some(members)
}

/// Whether a member's JSON text can go into the line as it is. serde_json's
/// `RawValue` checks the syntax but not everything its own parser refuses,
/// so these go to the general path, which decides as it always did:
/// a line break outside strings (the line must stay one line); a
/// `\uD800`-`\uDFFF` escape (Python's `json.dumps` writes an unpaired one
/// for every byte `surrogateescape` decoded); nesting deeper than
/// [`MAX_COPIED_DEPTH`]; a number out of a double's range (`1e400`).
fn copyable(raw: &[u8]) -> bool {
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut number: Option<usize> = None;
    for (i, &b) in raw.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
                if b == b'u' && surrogate_escape(&raw[i + 1..]) {
                    return false;
                }
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            number.get_or_insert(i);
            continue;
        }
        if let Some(start) = number.take() {
            if !finite(&raw[start..i]) {
                return false;
            }
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_COPIED_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' | b'\r' => return false,
            _ => {}
        }
    }
    number.is_none_or(|start| finite(&raw[start..]))
}

/// Deepest nesting copied as it is (serde_json refuses beyond 128).
const MAX_COPIED_DEPTH: usize = 64;

/// Whether a number's text is within a double's range (the `e` of `true`
/// and `false` is no number, and passes).
fn finite(token: &[u8]) -> bool {
    match std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    {
        Some(n) => n.is_finite(),
        None => true,
    }
}

/// Whether `hex` (what follows `\u`) starts `D800`-`DFFF`.
fn surrogate_escape(hex: &[u8]) -> bool {
    matches!(hex, [d, h, ..] if d.eq_ignore_ascii_case(&b'd')
        && matches!(h.to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f'))
}

/// `created` as seconds with microseconds, like Python's float.
fn write_f64(out: &mut Vec<u8>, ns: u64) -> std::io::Result<()> {
    write!(out, "{}.{:06}", ns / 1_000_000_000, ns / 1000 % 1_000_000)
}

#[cfg(test)]
mod tests {
    use crate::{Entry, FormatSpec, Formatter};
    use ringflush_ring::codec::Record;

    #[test]
    fn json_lines_escape_and_merge_extra() {
        let spec = FormatSpec {
            format: Some("json".into()),
            utc: true,
            ..FormatSpec::default()
        };
        let mut f = Formatter::new(&spec, 0).unwrap();
        let mut out = Vec::new();
        let e = Entry {
            created_ns: 1_709_720_253_045_678_912,
            pid: 7,
            record: Record {
                level: 20,
                logger: b"app",
                message: b"two\nlines \"q\" \xff",
                extra: br#"{"user":"ann","message":"shadow","n":3}"#,
                ..Record::default()
            },
        };
        f.format(&e, &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["time"], "2024-03-06T10:17:33.045678+00:00");
        assert_eq!(v["created"], 1709720253.045678);
        assert_eq!(v["levelname"], "INFO");
        assert_eq!(v["message"], "two\nlines \"q\" \u{fffd}");
        assert_eq!(v["user"], "ann");
        assert_eq!(v["extra.message"], "shadow");
        assert_eq!(v["n"], 3);
    }

    /// What the general path writes for `extra` (values rebuilt).
    fn merged_slowly(extra: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(extra).unwrap();
        for (k, v) in map {
            let k = if super::STANDARD_KEYS.contains(&k.as_str()) {
                format!("extra.{k}")
            } else {
                k
            };
            super::key(&mut out, &k);
            serde_json::to_writer(&mut out, &v).unwrap();
        }
        out
    }

    #[test]
    fn raw_merge_gives_the_general_paths_members_in_its_order() {
        for extra in [
            r#"{"b": 1, "a": {"x": [1, 2.5e3, null], "y": "\u00e9\"q\""}, "name": true}"#,
            r#"{"spans":[{"name":"request","id":7}],"user":"ann","ok":false}"#,
            r#"{}"#,
            r#"{"é": "ü", "n": -0.0}"#,
        ] {
            let mut raw = Vec::new();
            assert!(super::merge_raw(extra.as_bytes(), &mut raw), "{extra}");
            let wrap = |m: &[u8]| -> serde_json::Value {
                serde_json::from_slice(&[b"{\"_\":0", m, b"}"].concat()).unwrap()
            };
            assert_eq!(
                wrap(&raw),
                wrap(&merged_slowly(extra.as_bytes())),
                "{extra}"
            );
            // The members in the same order (a parsed map would sort them
            // whatever the text said): where each key starts in the text.
            let order = |m: &[u8]| {
                let text = String::from_utf8(m.to_vec()).unwrap();
                let mut at: Vec<(usize, String)> = wrap(m)
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "_")
                    .map(|k| (text.find(&format!(",\"{k}\":")).unwrap(), k.clone()))
                    .collect();
                at.sort();
                at.into_iter().map(|(_, k)| k).collect::<Vec<_>>()
            };
            assert_eq!(order(&raw), order(&merged_slowly(extra.as_bytes())));
        }
    }

    #[test]
    fn raw_merge_leaves_escaped_keys_and_multi_line_values_to_the_general_path() {
        for extra in [
            r#"{"a\"b": 1}"#,
            "{\"a\": [1,\n2]}",
            r#"[1, 2]"#,
            r#"{"a": 1"#,
            // Python's json.dumps of a surrogateescape'd file name, and a
            // valid pair: both left to serde_json's own decoding.
            r#"{"f": "\udcff"}"#,
            r#"{"f": "\uD83D\uDE00"}"#,
            // What serde_json's own parser refuses.
            r#"{"n": 1e400}"#,
            &format!(r#"{{"n": 1{}}}"#, "0".repeat(400)),
            &format!(r#"{{"a": {}{}}}"#, "[".repeat(200), "]".repeat(200)),
        ] {
            let mut out = Vec::new();
            assert!(!super::merge_raw(extra.as_bytes(), &mut out), "{extra}");
            assert!(out.is_empty());
        }
    }
}

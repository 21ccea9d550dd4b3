//! JSON Lines that central stores understand without mapping:
//!
//! - `--format json:ecs`, the Elastic Common Schema as the ecs-logging
//!   libraries write it (github.com/elastic/ecs-logging, spec.json):
//!   `@timestamp` (UTC, milliseconds, `Z`), `log.level` (lowercase) and
//!   `message` first as dotted keys, then `ecs.version`, `log.logger`,
//!   `log.origin.file.name`, `log.origin.file.line`, `log.origin.function`,
//!   `process.pid`, `process.name`, `process.thread.id`,
//!   `process.thread.name` and `error.stack_trace` as nested objects, and the
//!   record's extra fields at the top level, as ecs-logging-python merges
//!   them.
//! - `--format json:otel`, the OpenTelemetry log data model
//!   (opentelemetry.io/docs/specs/otel/logs/data-model): `timestamp` (ns
//!   since the epoch, as a string, as OTLP/JSON writes 64-bit integers),
//!   `severity_text`, `severity_number` (Python levels mapped onto the
//!   data model's ranges, as OpenTelemetry Python's `std_to_otel` from
//!   DEBUG up), `body`, `attributes` (`code.filepath`, `code.lineno`,
//!   `code.function`, `code.namespace`, `thread.id`, `thread.name`,
//!   `exception.stacktrace`, and the extra fields),
//!   `instrumentation_scope.name` (the logger, as OpenTelemetry Python's
//!   `LoggingHandler` names the scope) and `resource` (`service.name` from
//!   `--service-name`, `process.pid`).
//!
//! The Python handlers carry a record's traceback and stack in the extra
//! fields `exc_text` and `stack_info`: here they become the schemas' own
//! fields.

use std::io::Write;

use ringflush_ring::codec::level;

use std::borrow::Cow;

use crate::json::raw_members;
use crate::text::{is_plain, lossy};
use crate::Entry;

/// The ECS version the fields follow (the ecs-logging libraries' own).
pub const ECS_VERSION: &str = "1.6.0";

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_plain(bytes, b'"') {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, &*lossy(bytes));
    }
}

/// `,"k":"v"` unless `v` is empty.
fn field(out: &mut Vec<u8>, first: &mut bool, k: &str, v: &[u8]) {
    if v.is_empty() {
        return;
    }
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
    string(out, v);
}

/// `,"k":n` unless `n` is 0.
fn number(out: &mut Vec<u8>, first: &mut bool, k: &str, n: u64) {
    if n == 0 {
        return;
    }
    if !std::mem::take(first) {
        out.push(b',');
    }
    let _ = write!(out, "\"{k}\":{n}");
}

fn file_name(pathname: &[u8]) -> &[u8] {
    match pathname.iter().rposition(|&b| b == b'/') {
        Some(i) => &pathname[i + 1..],
        None => pathname,
    }
}

/// The extra fields, with the traceback and stack taken out; each field's
/// value as its JSON text, borrowed from the record when it can go into
/// the line as it is (see `json::raw_members`), rebuilt otherwise.
struct Extra<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    exc_text: Option<String>,
    stack_info: Option<String>,
}

impl<'a> Extra<'a> {
    fn parse(bytes: &'a [u8]) -> Self {
        if bytes.is_empty() {
            return Self::from_fields(Vec::new());
        }
        if let Some(members) = raw_members(bytes) {
            let fields = members
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v.get())))
                .collect();
            return Self::from_fields(fields);
        }
        let map = match serde_json::from_slice(bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                let mut m = serde_json::Map::new();
                m.insert("extra".into(), lossy(bytes).into_owned().into());
                m
            }
        };
        let fields = map
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v.to_string())))
            .collect();
        Self::from_fields(fields)
    }

    /// Take the traceback and the stack out of `fields` (as text: a JSON
    /// string's value, anything else's JSON).
    fn from_fields(mut fields: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        let mut take = |k: &str| {
            let i = fields.iter().position(|(name, _)| name == k)?;
            let (_, json) = fields.remove(i);
            Some(serde_json::from_str::<String>(&json).unwrap_or_else(|_| json.into_owned()))
        };
        let (exc_text, stack_info) = (take("exc_text"), take("stack_info"));
        Self {
            fields,
            exc_text,
            stack_info,
        }
    }

    /// The traceback, then the stack, as logging.Formatter joins them.
    fn stack_trace(&self) -> Option<String> {
        match (&self.exc_text, &self.stack_info) {
            (Some(e), Some(s)) => Some(format!("{e}\n{s}")),
            (Some(t), None) | (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        }
    }
}

/// UTC `YYYY-MM-DDTHH:MM:SS` of a second, cached: records come in order.
#[derive(Debug, Default)]
struct UtcSecond {
    secs: u64,
    text: [u8; 19],
}

impl UtcSecond {
    fn get(&mut self, secs: u64) -> &[u8; 19] {
        if secs != self.secs || self.text[0] == 0 {
            self.secs = secs;
            let (days, rem) = (secs / 86_400, secs % 86_400);
            let (y, m, d) = civil_from_days(days as i64);
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            );
            self.text.copy_from_slice(&text.as_bytes()[..19]);
        }
        &self.text
    }
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day since 1970.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The top-level keys the ECS formatter writes itself: an extra field of
/// one of these names becomes `extra.<name>` instead of shadowing it.
const ECS_OWN: [&str; 9] = [
    "@timestamp",
    "log.level",
    "message",
    "ecs",
    "log",
    "process",
    "error",
    "service",
    "event",
];

/// `--format json:ecs`.
#[derive(Debug, Default)]
pub struct EcsFormatter {
    second: UtcSecond,
    /// `,"service":{"name":"..."},"event":{"dataset":"....log"}`, ready to
    /// copy, when a service name is configured (the spec's `service.name`,
    /// and the `event.dataset` it says a configured name implies).
    service: Vec<u8>,
}

impl EcsFormatter {
    /// Records of the service `service_name`, if one is configured.
    pub fn new(service_name: Option<&str>) -> Self {
        let mut service = Vec::new();
        if let Some(name) = service_name {
            service.extend_from_slice(b",\"service\":{\"name\":");
            let _ = serde_json::to_writer(&mut service, name);
            service.extend_from_slice(b"},\"event\":{\"dataset\":");
            let _ = serde_json::to_writer(&mut service, &format!("{name}.log"));
            service.push(b'}');
        }
        Self {
            second: UtcSecond::default(),
            service,
        }
    }

    /// Append `e` as one ECS JSON object and a `\n` to `out`.
    pub fn format(&mut self, e: &Entry<'_>, out: &mut Vec<u8>) {
        let r = &e.record;
        let extra = Extra::parse(r.extra);
        out.extend_from_slice(b"{\"@timestamp\":\"");
        out.extend_from_slice(self.second.get(e.created_ns / 1_000_000_000));
        let _ = write!(
            out,
            ".{:03}Z\",\"log.level\":",
            e.created_ns / 1_000_000 % 1000
        );
        string(out, level::name(r.level).to_lowercase().as_bytes());
        out.extend_from_slice(b",\"message\":");
        string(out, r.message);
        let _ = write!(
            out,
            ",\"ecs\":{{\"version\":\"{ECS_VERSION}\"}},\"log\":{{\"logger\":"
        );
        string(out, e.logger_name());
        if !r.pathname.is_empty() || r.line != 0 || !r.func.is_empty() {
            out.extend_from_slice(b",\"origin\":{");
            let mut first = true;
            if !r.pathname.is_empty() || r.line != 0 {
                first = false;
                out.extend_from_slice(b"\"file\":{");
                let mut inner = true;
                field(out, &mut inner, "name", file_name(r.pathname));
                number(out, &mut inner, "line", r.line.into());
                out.push(b'}');
            }
            field(out, &mut first, "function", r.func);
            out.push(b'}');
        }
        let _ = write!(out, "}},\"process\":{{\"pid\":{}", e.pid);
        let mut first = false;
        field(out, &mut first, "name", r.process_name);
        if r.thread_id != 0 || !r.thread_name.is_empty() {
            out.extend_from_slice(b",\"thread\":{");
            let mut inner = true;
            number(out, &mut inner, "id", r.thread_id);
            field(out, &mut inner, "name", r.thread_name);
            out.push(b'}');
        }
        out.push(b'}');
        out.extend_from_slice(&self.service);
        if let Some(trace) = extra.stack_trace() {
            out.extend_from_slice(b",\"error\":{\"stack_trace\":");
            let _ = serde_json::to_writer(&mut *out, &trace);
            out.push(b'}');
        }
        for (k, v) in &extra.fields {
            out.push(b',');
            if ECS_OWN.contains(&&**k) {
                let _ = serde_json::to_writer(&mut *out, &format!("extra.{k}"));
            } else {
                let _ = serde_json::to_writer(&mut *out, k);
            }
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The data model's severity number of a Python level: DEBUG 5, INFO 9,
/// WARN 13, ERROR 17, FATAL 21, levels in between on the range's steps
/// (INFO2..INFO4 for 21..23), below DEBUG the TRACE range.
pub fn severity_number(levelno: u8) -> u8 {
    let band = (levelno / 10).min(5);
    let step = (levelno % 10).min(3);
    if levelno >= 54 {
        24
    } else {
        1 + band * 4 + step
    }
}

/// `--format json:otel`.
#[derive(Debug)]
pub struct OtelFormatter {
    /// `,"resource":{"service.name":"..."`, ready to copy.
    resource_head: Vec<u8>,
}

impl OtelFormatter {
    /// Records of the service `service_name` (`resource.service.name`;
    /// the data model's `unknown_service` when `None`).
    pub fn new(service_name: Option<&str>) -> Self {
        let mut resource_head = b",\"resource\":{\"service.name\":".to_vec();
        let _ = serde_json::to_writer(
            &mut resource_head,
            service_name.unwrap_or("unknown_service"),
        );
        Self { resource_head }
    }

    /// Append `e` as one OpenTelemetry log record (JSON) and a `\n` to `out`.
    pub fn format(&mut self, e: &Entry<'_>, out: &mut Vec<u8>) {
        let r = &e.record;
        let extra = Extra::parse(r.extra);
        let _ = write!(
            out,
            "{{\"timestamp\":\"{}\",\"severity_text\":",
            e.created_ns
        );
        string(out, level::name(r.level).as_bytes());
        let _ = write!(
            out,
            ",\"severity_number\":{},\"body\":",
            severity_number(r.level)
        );
        string(out, r.message);
        out.extend_from_slice(b",\"attributes\":{");
        let mut first = true;
        field(out, &mut first, "code.filepath", r.pathname);
        number(out, &mut first, "code.lineno", r.line.into());
        field(out, &mut first, "code.function", r.func);
        field(out, &mut first, "code.namespace", r.module);
        number(out, &mut first, "thread.id", r.thread_id);
        field(out, &mut first, "thread.name", r.thread_name);
        if let Some(trace) = extra.stack_trace() {
            field(out, &mut first, "exception.stacktrace", trace.as_bytes());
        }
        for (k, v) in &extra.fields {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut *out, k);
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        // The logger is the instrumentation scope, as OpenTelemetry's
        // Python LoggingHandler makes it (get_logger(record.name)).
        out.extend_from_slice(b"},\"instrumentation_scope\":{\"name\":");
        string(out, e.logger_name());
        out.push(b'}');
        out.extend_from_slice(&self.resource_head);
        let _ = writeln!(out, ",\"process.pid\":{}}}}}", e.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringflush_ring::codec::Record;

    fn entry(extra: &'static [u8]) -> Entry<'static> {
        Entry {
            created_ns: 1_709_719_200_123_456_789,
            pid: 42,
            record: Record {
                level: level::WARNING,
                line: 7,
                thread_id: 99,
                logger: b"app.db",
                thread_name: b"MainThread",
                pathname: b"/srv/app/db.py",
                func: b"query",
                module: b"db",
                process_name: b"MainProcess",
                message: b"slow \"query\"",
                extra,
                ..Record::default()
            },
        }
    }

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_788), (2024, 3, 6));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn severity_numbers_follow_the_data_models_ranges() {
        let got: Vec<u8> = [5, 10, 20, 25, 30, 40, 50, 60]
            .map(severity_number)
            .to_vec();
        assert_eq!(got, [4, 5, 9, 12, 13, 17, 21, 24]);
    }

    #[test]
    fn ecs_fields_where_the_schema_puts_them() {
        let mut out = Vec::new();
        let extra = br#"{"request_id":"r-1","exc_text":"Traceback...","message":"shadow"}"#;
        EcsFormatter::new(None).format(&entry(extra), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(r#"{"@timestamp":"2024-03-06T10:00:00.123Z","log.level":"warning","message":"slow \"query\"","#), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ecs"]["version"], ECS_VERSION);
        assert_eq!(v["log"]["logger"], "app.db");
        assert_eq!(v["log"]["origin"]["file"]["name"], "db.py");
        assert_eq!(v["log"]["origin"]["file"]["line"], 7);
        assert_eq!(v["log"]["origin"]["function"], "query");
        assert_eq!(v["process"]["pid"], 42);
        assert_eq!(v["process"]["thread"]["id"], 99);
        assert_eq!(v["process"]["thread"]["name"], "MainThread");
        assert_eq!(v["error"]["stack_trace"], "Traceback...");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(
            v["message"], "slow \"query\"",
            "an extra field never shadows"
        );
        assert_eq!(v["extra.message"], "shadow");
    }

    /// Members copied as their JSON text (the common case) and members
    /// rebuilt (a value spread over lines sends the whole object down that
    /// path) come out the same, in both presets.
    #[test]
    fn extras_copied_or_rebuilt_format_alike() {
        let copied = br#"{"b":{"x":[1,2.5],"y":"\u00e9"},"exc_text":"Trace\nback","a":"q\"","stack_info":7}"#;
        let rebuilt = b"{\"b\":{\"x\":[1,2.5],\"y\":\"\\u00e9\"},\"exc_text\":\"Trace\\nback\",\"a\":\"q\\\"\",\"stack_info\":7,\"s\":[1,\n2]}";
        let without_s = |line: &[u8]| {
            let mut v: serde_json::Value = serde_json::from_slice(line).unwrap();
            v.as_object_mut().unwrap().remove("s");
            if let Some(attrs) = v.get_mut("attributes") {
                attrs.as_object_mut().unwrap().remove("s");
            }
            v
        };
        for format in [
            |e: &Entry<'_>, out: &mut Vec<u8>| EcsFormatter::new(None).format(e, out),
            |e: &Entry<'_>, out: &mut Vec<u8>| OtelFormatter::new(None).format(e, out),
        ] {
            let (mut one, mut other) = (Vec::new(), Vec::new());
            format(&entry(copied), &mut one);
            format(&entry(rebuilt), &mut other);
            assert_eq!(other.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(without_s(&one), without_s(&other));
            assert_ne!(one, other, "the rebuilt line has s");
            let text = String::from_utf8(one).unwrap();
            assert!(text.contains(r#"Trace\nback\n7"#), "{text}");
            assert!(text.contains(r#""b":{"x":[1,2.5],"y":"\u00e9"}"#), "{text}");
        }
    }

    /// The rules of ecs-logging's spec/spec.json: `@timestamp`, `log.level`
    /// and `message` required, first, in that order; `log.level` never
    /// nested; `ecs.version` required (nesting allowed); `@timestamp` an
    /// ISO 8601 datetime; `event.dataset` `${service.name}.log` when the
    /// service name is configured.
    #[test]
    fn ecs_follows_the_ecs_logging_spec() {
        let mut out = Vec::new();
        EcsFormatter::new(Some("shop")).format(&entry(b""), &mut out);
        let text = String::from_utf8(out).unwrap();
        let keys: Vec<&str> = text
            .trim_start_matches('{')
            .split(',')
            .take(3)
            .map(|kv| kv.split_once(':').unwrap().0.trim_matches('"'))
            .collect();
        assert_eq!(keys, ["@timestamp", "log.level", "message"], "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["log"].get("level").is_none(), "log.level is never nested");
        assert_eq!(v["ecs"]["version"], ECS_VERSION);
        let ts = v["@timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(v["service"]["name"], "shop");
        assert_eq!(v["event"]["dataset"], "shop.log");
        assert!(v.get("error").is_none(), "no trace, no error object");
    }

    #[test]
    fn ecs_without_a_service_name_names_none() {
        let mut out = Vec::new();
        EcsFormatter::new(None).format(&entry(br#"{"service":"x"}"#), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("service").is_none() && v.get("event").is_none());
        assert_eq!(v["extra.service"], "x");
    }

    #[test]
    fn otel_fields_where_the_data_model_puts_them() {
        let mut out = Vec::new();
        let extra = br#"{"request_id":"r-1","exc_text":"Traceback..."}"#;
        OtelFormatter::new(Some("shop")).format(&entry(extra), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "1709719200123456789");
        assert_eq!(v["severity_text"], "WARNING");
        assert_eq!(v["severity_number"], 13);
        assert_eq!(v["body"], "slow \"query\"");
        assert_eq!(v["instrumentation_scope"]["name"], "app.db");
        let a = &v["attributes"];
        assert_eq!(a["code.filepath"], "/srv/app/db.py");
        assert_eq!(a["code.lineno"], 7);
        assert_eq!(a["code.function"], "query");
        assert_eq!(a["thread.id"], 99);
        assert_eq!(a["exception.stacktrace"], "Traceback...");
        assert_eq!(a["request_id"], "r-1");
        assert_eq!(v["resource"]["service.name"], "shop");
        assert_eq!(v["resource"]["process.pid"], 42);
        assert!(out.ends_with(b"}\n"));
        // Only the data model's top-level fields (its names in snake case).
        let model = [
            "timestamp",
            "observed_timestamp",
            "trace_id",
            "span_id",
            "trace_flags",
            "severity_text",
            "severity_number",
            "body",
            "resource",
            "instrumentation_scope",
            "attributes",
            "event_name",
        ];
        for k in v.as_object().unwrap().keys() {
            assert!(model.contains(&k.as_str()), "{k} is not in the data model");
        }
    }
}

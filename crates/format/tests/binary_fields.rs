//! Records whose `extra` holds binary field entries (the tracing layer's)
//! format as if the producer had rendered the message and JSON itself.

use ringflush_format::{Entry, FormatSpec, Formatter};
use ringflush_ring::codec::Record;
use ringflush_ring::fields::{Entries, Shown};

fn line(format: &str, message: &str, extra: &[u8]) -> String {
    let spec = FormatSpec {
        format: Some(format.to_string()),
        defaults: Some(r#"{"user": "-"}"#.to_string()),
        ..FormatSpec::default()
    };
    let mut f = Formatter::new(&spec, 0).unwrap();
    let mut out = Vec::new();
    let entry = Entry {
        created_ns: 1_700_000_000_000_000_000,
        pid: 1,
        record: Record {
            level: 20,
            logger: b"app",
            message: message.as_bytes(),
            extra,
            ..Record::default()
        },
    };
    f.format(&entry, &mut out);
    String::from_utf8(out).unwrap()
}

fn event() -> Vec<u8> {
    let mut span = Vec::new();
    Entries::new(&mut span).u64("id", 7);
    let mut buf = Vec::new();
    let mut e = Entries::start(&mut buf, Shown::InMessage);
    e.span("request", &span);
    e.message();
    e.str("user", "ann");
    e.bool("ok", true);
    buf
}

#[test]
fn text_formats_get_the_composed_message_and_the_fields() {
    assert_eq!(
        line("%(name)s %(message)s | %(user)s", "served", &event()),
        "app request{id=7}: served user=\"ann\" ok=true | ann\n"
    );
}

#[test]
fn json_gets_the_fields_and_spans_as_members() {
    let out = line("json", "served", &event());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["message"], "request{id=7}: served user=\"ann\" ok=true");
    assert_eq!(v["user"], "ann");
    assert_eq!(v["ok"], true);
    assert_eq!(v["spans"][0]["name"], "request");
    assert_eq!(v["spans"][0]["id"], 7);
}

#[test]
fn undecodable_entries_keep_the_message_and_say_so() {
    let mut bad = event();
    bad.truncate(bad.len() - 3);
    assert_eq!(
        line("%(message)s %(user)s", "served", &bad),
        "served [ringflush: undecodable fields dropped] -\n"
    );
}

//! A record with binary entries made into the message and `extra` JSON the
//! formatters read: the flusher's half of deferred field formatting.

use super::binary::{Decoder, Entry, COMPOSE};
use super::render::{json_string, FieldWriter};
use super::{DecodeError, Owner, Shown};

/// Render a record's `message` and binary `extra` as the message text and
/// the JSON object's text (empty when there are no fields) that the record
/// would have carried had the producer formatted them itself:
///
/// - `text`: with [`COMPOSE`], the spans from the root as
///   `name{a=1 b="x"}:`, a space, then the message and the event's fields
///   in their order as `key=value` (tracing-subscriber's fmt layer);
///   without it, the message alone;
/// - `json`: the event's fields as members, and its spans as
///   `"spans":[{"name":"request","id":7}, ...]`.
///
/// Both are appended to. The output is at most a constant times the size of
/// `message` and `extra` together: the message is written once (a second
/// [`Entry::Message`] is malformed), every other entry in proportion to its
/// bytes.
///
/// # Errors
/// [`DecodeError`] if `extra` is not well-formed binary entries; `text`
/// and `json` then hold what was rendered before the fault.
pub fn expand(
    message: &str,
    extra: &[u8],
    text: &mut String,
    json: &mut String,
) -> Result<(), DecodeError> {
    let (flags, mut entries) = Decoder::new(extra).ok_or(DecodeError)?;
    let shown = if flags & COMPOSE != 0 {
        Shown::InMessage
    } else {
        Shown::JsonOnly
    };
    let json_start = json.len();
    json.push('{');
    let mut entry = entries.next().transpose()?;
    let in_span = matches!(entry, Some(Entry::Span(_)));
    if in_span {
        json.push_str("\"spans\":[");
        // Without COMPOSE the spans' text is rendered, then taken back.
        let text_start = text.len();
        let mut first = true;
        while let Some(Entry::Span(name)) = entry {
            span(name, &mut entries, text, json, first, shown)?;
            first = false;
            entry = entries.next().transpose()?;
        }
        json.push(']');
        if shown == Shown::InMessage {
            text.push(' ');
        } else {
            text.truncate(text_start);
        }
    }
    let mut w = FieldWriter::new(text, json, shown, Owner::Event);
    if in_span {
        w = w.reserving("spans");
    }
    while let Some(e) = entry {
        field(&mut w, e, message)?;
        entry = entries.next().transpose()?;
    }
    // Entries without a MESSAGE keep the message, after their fields.
    if w.message.is_none() && !message.is_empty() {
        w.message(format_args!("{message}"));
    }
    if json.len() > json_start + 1 {
        json.push('}');
    } else {
        json.truncate(json_start);
    }
    Ok(())
}

/// One span: `name{fields}:` into `text`, `{"name":..,fields}` into `json`;
/// `entries` is just past its [`Entry::Span`], and is left past its end.
fn span(
    name: &str,
    entries: &mut Decoder<'_>,
    text: &mut String,
    json: &mut String,
    first: bool,
    shown: Shown,
) -> Result<(), DecodeError> {
    text.push_str(name);
    text.push('{');
    let brace = text.len();
    json.push_str(if first { "{\"name\":" } else { ",{\"name\":" });
    json_string(json, name);
    let mut w = FieldWriter::new(text, json, shown, Owner::Span).reserving("name");
    loop {
        match entries.next().transpose()? {
            Some(Entry::SpanEnd) => break,
            Some(Entry::SpanMessage(m)) => w.message(format_args!("{m}")),
            Some(Entry::Span(_) | Entry::Message) | None => return Err(DecodeError),
            Some(e) => field(&mut w, e, "")?,
        }
    }
    if text.len() == brace {
        text.pop();
    } else {
        text.push('}');
    }
    text.push(':');
    json.push('}');
    Ok(())
}

/// One field entry through `w`; `message` is the record's message, for
/// [`Entry::Message`].
fn field(w: &mut FieldWriter<'_>, e: Entry<'_>, message: &str) -> Result<(), DecodeError> {
    match e {
        Entry::I64(name, v) => w.i64(name, v),
        Entry::U64(name, v) => w.u64(name, v),
        Entry::F64(name, v) => w.f64(name, v),
        Entry::Bool(name, v) => w.bool(name, v),
        Entry::Str(name, v) => w.str(name, v),
        Entry::Shown(name, v) => w.display(name, format_args!("{v}")),
        Entry::Sources(name, v) => w.sources(name, v),
        // Once only: entries repeating it would multiply the message.
        Entry::Message if w.message.is_none() => w.message(format_args!("{message}")),
        Entry::Message => return Err(DecodeError),
        Entry::Span(_) | Entry::SpanEnd | Entry::SpanMessage(_) => return Err(DecodeError),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Entries;

    fn expanded(message: &str, extra: &[u8]) -> (String, String) {
        let (mut text, mut json) = (String::new(), String::new());
        expand(message, extra, &mut text, &mut json).unwrap();
        (text, json)
    }

    /// Two spans (one without fields), an event with its message between
    /// fields of every kind.
    fn event(shown: Shown) -> Vec<u8> {
        let mut request = Vec::new();
        let mut r = Entries::new(&mut request);
        r.u64("id", 7);
        r.str("path", "/a b");
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, shown);
        e.span("conn", &[]);
        e.span("request", &request);
        e.i64("before", -1);
        e.message();
        e.f64("x", 0.5);
        e.f64("inf", f64::INFINITY);
        e.bool("ok", true);
        e.shown("v", format_args!("{:?}", Some(1)));
        e.shown("err", format_args!("bad"));
        e.sources("err", format_args!("io, disk"));
        buf
    }

    #[test]
    fn composed_as_tracing_fmt_shows_it() {
        let (text, json) = expanded("served", &event(Shown::InMessage));
        assert_eq!(
            text,
            r#"conn:request{id=7 path="/a b"}: before=-1 served x=0.5 inf=inf ok=true v=Some(1) err=bad err.sources=[io, disk]"#
        );
        assert_eq!(
            json,
            r#"{"spans":[{"name":"conn"},{"name":"request","id":7,"path":"/a b"}],"before":-1,"x":0.5,"inf":null,"ok":true,"v":"Some(1)","err":"bad","err.sources":"io, disk"}"#
        );
    }

    #[test]
    fn without_compose_the_message_alone() {
        let (text, json) = expanded("served", &event(Shown::JsonOnly));
        assert_eq!(text, "served");
        assert_eq!(json, expanded("served", &event(Shown::InMessage)).1);
    }

    #[test]
    fn a_span_message_is_a_field_of_its_span() {
        let mut span = Vec::new();
        Entries::new(&mut span).span_message(format_args!("hi {}", 1));
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::InMessage);
        e.span("s", &span);
        e.message();
        assert_eq!(
            expanded("m", &buf),
            (
                "s{hi 1}: m".to_string(),
                r#"{"spans":[{"name":"s","message":"hi 1"}]}"#.to_string()
            )
        );
    }

    #[test]
    fn no_fields_no_json_and_a_message_without_its_entry_is_kept() {
        let mut buf = Vec::new();
        Entries::start(&mut buf, Shown::InMessage);
        assert_eq!(expanded("m", &buf), ("m".to_string(), String::new()));
        Entries::new(&mut buf).bool("b", false);
        assert_eq!(
            expanded("m", &buf),
            ("b=false m".to_string(), r#"{"b":false}"#.to_string())
        );
    }

    #[test]
    fn malformed_entries_are_an_error() {
        let good = event(Shown::InMessage);
        for cut in 2..good.len() {
            let (mut text, mut json) = (String::new(), String::new());
            // Every cut either ends at an entry boundary outside a span or
            // is reported; none panics.
            let _ = expand("m", &good[..cut], &mut text, &mut json);
        }
        let mut buf = Vec::new();
        Entries::start(&mut buf, Shown::InMessage).message();
        buf.push(crate::fields::binary::MAGIC);
        let (mut text, mut json) = (String::new(), String::new());
        assert_eq!(expand("m", &buf, &mut text, &mut json), Err(DecodeError));
        assert_eq!(
            expand("m", b"{}", &mut String::new(), &mut String::new()),
            Err(DecodeError)
        );
        // A span never closed.
        let mut open = vec![crate::fields::binary::MAGIC, 1];
        open.extend_from_slice(&[9, 1, 0, b's']);
        assert_eq!(
            expand("m", &open, &mut String::new(), &mut String::new()),
            Err(DecodeError)
        );
    }

    #[test]
    fn the_message_is_written_once_whatever_the_entries_say() {
        // 1000 MESSAGE entries would write a 1 KiB message 1000 times.
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::InMessage);
        for _ in 0..1000 {
            e.message();
        }
        let message = "m".repeat(1024);
        let (mut text, mut json) = (String::new(), String::new());
        assert_eq!(
            expand(&message, &buf, &mut text, &mut json),
            Err(DecodeError)
        );
        assert!(text.len() <= message.len(), "{}", text.len());
    }

    #[test]
    fn appends_after_what_the_buffers_hold() {
        let (mut text, mut json) = ("before|".to_string(), "[".to_string());
        expand("served", &event(Shown::InMessage), &mut text, &mut json).unwrap();
        let (alone_text, alone_json) = expanded("served", &event(Shown::InMessage));
        assert_eq!(text, format!("before|{alone_text}"));
        assert_eq!(json, format!("[{alone_json}"));
        let mut empty = Vec::new();
        Entries::start(&mut empty, Shown::InMessage);
        let (mut text, mut json) = (String::new(), "[".to_string());
        expand("m", &empty, &mut text, &mut json).unwrap();
        assert_eq!((text.as_str(), json.as_str()), ("m", "["));
    }

    #[test]
    fn fields_named_like_the_json_own_keys_do_not_shadow_them() {
        let mut span = Vec::new();
        Entries::new(&mut span).str("name", "spanname");
        let mut buf = Vec::new();
        let mut e = Entries::start(&mut buf, Shown::InMessage);
        e.span("req", &span);
        e.message();
        e.str("spans", "evspans");
        let (text, json) = expanded("m", &buf);
        assert_eq!(text, r#"req{name="spanname"}: m spans="evspans""#);
        assert_eq!(
            json,
            r#"{"spans":[{"name":"req","extra.name":"spanname"}],"extra.spans":"evspans"}"#
        );
        // Outside a span, `spans` is a field like any other.
        let mut buf = Vec::new();
        Entries::start(&mut buf, Shown::InMessage).str("spans", "x");
        assert_eq!(expanded("", &buf).1, r#"{"spans":"x"}"#);
    }
}

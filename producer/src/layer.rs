//! [`RingLayer`]: tracing events into the ring, as a
//! `tracing_subscriber::Layer` (the `tracing` feature).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringflush_ring::codec::{level, Record};
use ringflush_ring::OpenError;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record as Values};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::fields::{json_string, with_buffers, Buffers, FieldWriter};
use crate::{identity, Producer};

/// A `tracing_subscriber` layer that writes each event as one ring record
/// (the `tracing` feature).
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::EnvFilter;
///
/// tracing_subscriber::registry()
///     .with(ringflush_producer::RingLayer::open("/applog")?)
///     .with(EnvFilter::from_default_env())
///     .init();
///
/// let span = tracing::info_span!("request", id = 7);
/// let _entered = span.enter();
/// tracing::info!(user = "ann", status = 200, "served");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With `--format '%(name)s %(message)s'` the flusher writes
/// `my_app request{id=7}: served user="ann" status=200`; with
/// `--format json`, `"message": "request{id=7}: served user=\"ann\" status=200"`
/// and the fields structured: `"user": "ann", "status": 200, "spans":
/// [{"name": "request", "id": 7}]`.
///
/// Each record carries:
/// - the level on Python's scale (`TRACE` 5, `DEBUG` 10, `INFO` 20, `WARN`
///   30, `ERROR` 40, as the `log` backend maps them);
/// - the event's target as the logger name (`%(name)s`), its file, line and
///   module path (`%(pathname)s`, `%(lineno)d`, `%(module)s`), and the
///   writing thread's id and name;
/// - as the message, what tracing-subscriber's fmt layer prints after its
///   level and target: the current spans from the root, each as
///   `name{field=value ...}:`, then the `message` field and the event's other
///   fields as `key=value` (strings and `?` values with `{:?}`, `%` values
///   with `Display`, errors with their sources);
/// - in `extra`, the JSON that `--format json` turns into fields, shaped like
///   tracing-subscriber's JSON formatter with its event fields flattened:
///   the event's fields at the top level (numbers and booleans as such,
///   everything else as strings) and, inside spans, `"spans": [{"name":
///   "request", "id": 7}, ...]` from the root.
///
/// A span's fields are rendered once, when the span is created and when
/// [`Span::record`](https://docs.rs/tracing/latest/tracing/struct.Span.html#method.record)
/// adds to them, and kept in the span's extensions; an event only copies
/// them. Records are assembled in per-thread buffers that are reused, so an
/// event allocates nothing once they have grown.
///
/// Events bridged from the `log` crate (tracing-subscriber's `init` installs
/// `tracing_log::LogTracer`) carry their target, file, line and module path
/// in `log.*` fields: those become the record's, and are not repeated as
/// fields.
///
/// A record that cannot be written is lost as with [`Producer::write`]
/// (counted in the segment and reported by the flusher), never returned.
#[derive(Debug, Clone)]
#[must_use = "a RingLayer does nothing until it is added to a subscriber"]
pub struct RingLayer {
    producer: Arc<Producer>,
    fields_in_message: bool,
    /// Which layer rendered a span's fields: with two RingLayers in one
    /// subscriber, only the first records them.
    id: u64,
}

/// The most spans an event's record shows, from the innermost.
const MAX_DEPTH: usize = 64;

/// A span's fields as text (`a=1 b="x"`) and as the inside of a JSON
/// object (`"a":1,"b":"x"`), rendered once.
#[derive(Debug)]
struct SpanFields {
    layer: u64,
    text: String,
    json: String,
}

impl SpanFields {
    fn record(&mut self, values: &impl RecordFields) {
        let mut writer = FieldWriter::new(&mut self.text, &mut self.json, true, false).continuing();
        values.record_into(&mut SpanVisitor(&mut writer));
    }
}

/// `Attributes` and `Record` both hand their fields to a visitor.
trait RecordFields {
    fn record_into(&self, visitor: &mut dyn Visit);
}

impl RecordFields for Attributes<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

impl RecordFields for Values<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

impl RingLayer {
    /// A layer writing through `producer` (a [`Producer`], or an
    /// `Arc<Producer>` shared with other users in the process).
    pub fn new(producer: impl Into<Arc<Producer>>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            producer: producer.into(),
            fields_in_message: true,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A layer on the segment `shm`, e.g. `/applog`, opened (or created)
    /// with the defaults of [`Producer::open`].
    ///
    /// # Errors
    /// As [`Producer::open`].
    pub fn open(shm: &str) -> Result<Self, OpenError> {
        Ok(Self::new(Producer::open(shm)?))
    }

    /// Whether the message also carries the spans and the event's fields as
    /// text (default `true`), so that text formats show them. With
    /// `false` the message is the `message` field alone, for a flusher that
    /// only writes `--format json`, where `extra` has them all.
    pub fn with_fields_in_message(mut self, yes: bool) -> Self {
        self.fields_in_message = yes;
        self
    }

    /// The producer records are written through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Render `span`'s scope from the root: `name{fields}:` per span into
    /// `text` (when fields go in the message), `{"name":..,fields}` per span
    /// into `json`. Recursing to the parent first gives the root-first order
    /// without collecting the scope (tracing-subscriber's `from_root` moves
    /// a 16-entry array of span handles for that, which cost more than the
    /// rest of an event). Scopes deeper than [`MAX_DEPTH`] lose their
    /// outermost spans.
    fn write_scope<S>(
        &self,
        span: SpanRef<'_, S>,
        text: &mut String,
        json: &mut String,
        depth: usize,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let first = match span.parent() {
            Some(parent) if depth < MAX_DEPTH => {
                self.write_scope(parent, text, json, depth + 1);
                false
            }
            _ => true,
        };
        let extensions = span.extensions();
        let fields = extensions.get::<SpanFields>();
        if self.fields_in_message {
            text.push_str(span.name());
            if let Some(f) = fields.filter(|f| !f.text.is_empty()) {
                text.push('{');
                text.push_str(&f.text);
                text.push('}');
            }
            text.push(':');
        }
        json.push_str(if first { "{\"name\":" } else { ",{\"name\":" });
        json_string(json, span.name());
        if let Some(f) = fields.filter(|f| !f.json.is_empty()) {
            json.push(',');
            json.push_str(&f.json);
        }
        json.push('}');
    }

    fn write_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, b: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Buffers {
            text,
            json,
            target,
            file,
            module,
            ..
        } = b;
        // The spans first: their names and fields start the message, and
        // in the JSON object the order does not matter.
        json.push('{');
        if let Some(span) = ctx.event_span(event) {
            json.push_str("\"spans\":[");
            self.write_scope(span, text, json, 0);
            json.push(']');
            if self.fields_in_message {
                text.push(' ');
            }
        }
        let mut visitor = EventVisitor {
            w: FieldWriter::new(text, json, self.fields_in_message, true),
            target,
            file,
            module,
            line: None,
        };
        event.record(&mut visitor);
        let line = visitor.line;
        let (text, json) = (visitor.w.text, visitor.w.json);
        let (target, file, module) = (visitor.target, visitor.file, visitor.module);
        let extra = if json.len() > 1 {
            json.push('}');
            json.as_bytes()
        } else {
            b""
        };
        let message = text.as_bytes();

        let meta = event.metadata();
        // Bridged `log` records name their target in a field: theirs is
        // "log".
        let logger = if target.is_empty() {
            meta.target().as_bytes()
        } else {
            target.as_bytes()
        };
        let thread = identity::current_thread();
        // Failures are counted in the segment and reported by the flusher;
        // a layer has nowhere better to send them.
        let _ = self.producer.write(&Record {
            level: python_level(*meta.level()),
            line: line.or(meta.line()).unwrap_or(0),
            thread_id: thread.id,
            thread_name: &thread.name,
            logger,
            pathname: pick(file, meta.file()),
            module: pick(module, meta.module_path()),
            extra,
            message,
            ..Record::default()
        });
    }
}

/// A bridged `log` record's own value if it has one, else the event's.
fn pick<'a>(bridged: &'a str, own: Option<&'static str>) -> &'a [u8] {
    if bridged.is_empty() {
        own.unwrap_or("").as_bytes()
    } else {
        bridged.as_bytes()
    }
}

/// tracing's levels on Python's scale, as the `log` backend maps `log`'s.
fn python_level(l: Level) -> u8 {
    match l {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARNING,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        Level::TRACE => level::TRACE,
    }
}

impl<S> Layer<S> for RingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if extensions.get_mut::<SpanFields>().is_some() {
            return; // another RingLayer in this subscriber has them
        }
        let mut fields = SpanFields {
            layer: self.id,
            text: String::new(),
            json: String::new(),
        };
        fields.record(attrs);
        extensions.insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Values<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) if fields.layer == self.id => fields.record(values),
            Some(_) => {}
            // Created before this layer saw it (a per-layer filter that
            // changed its mind): start from what is recorded now.
            None => {
                let mut fields = SpanFields {
                    layer: self.id,
                    text: String::new(),
                    json: String::new(),
                };
                fields.record(values);
                extensions.insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_buffers(|b| self.write_event(event, &ctx, b));
    }
}

/// Field names as the fmt layer shows them: raw identifiers without `r#`.
#[inline]
fn shown(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

/// An event's fields: the message apart, `log.*` fields of bridged `log`
/// records taken as the record's own.
struct EventVisitor<'a> {
    w: FieldWriter<'a>,
    target: &'a mut String,
    file: &'a mut String,
    module: &'a mut String,
    line: Option<u32>,
}

impl Visit for EventVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.w.message(format_args!("{value:?}")),
            name if name.starts_with("log.") => {}
            name => self.w.debug(shown(name), value),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.w.message(format_args!("{value}")),
            "log.target" => self.target.push_str(value),
            "log.file" => self.file.push_str(value),
            "log.module_path" => self.module.push_str(value),
            name if name.starts_with("log.") => {}
            name => self.w.str(shown(name), value),
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "message" => self.w.message(format_args!("{value}")),
            "log.line" => self.line = u32::try_from(value).ok(),
            name if name.starts_with("log.") => {}
            name => self.w.u64(shown(name), value),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.w.message(format_args!("{value}")),
            name => self.w.i64(shown(name), value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.w.message(format_args!("{value}")),
            name => self.w.bool(shown(name), value),
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.w.message(format_args!("{value:?}")),
            name => self.w.f64(shown(name), value),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match field.name() {
            "message" => self.w.message(format_args!("{value}")),
            name => self.w.error(shown(name), value),
        }
    }
}

/// A span's fields: the same renderings, `message` a field like any other
/// in the JSON.
struct SpanVisitor<'a, 'w>(&'a mut FieldWriter<'w>);

impl Visit for SpanVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.0.message(format_args!("{value:?}")),
            name => self.0.debug(shown(name), value),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.0.message(format_args!("{value}")),
            name => self.0.str(shown(name), value),
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.u64(shown(field.name()), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.i64(shown(field.name()), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.bool(shown(field.name()), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.f64(shown(field.name()), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.error(shown(field.name()), value);
    }
}

//! [`RingLayer`]: tracing events into the ring, as a
//! `tracing_subscriber::Layer` (the `tracing` feature).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringflush_ring::codec::{level, Record};
use ringflush_ring::OpenError;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record as Values};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use ringflush_ring::fields::{Entries, Shown};

use crate::fields::{with_buffers, Buffers};
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
///   everything else as strings; an error's sources as `"error.sources":
///   "cause, its cause"`) and, inside spans, `"spans": [{"name":
///   "request", "id": 7}, ...]` from the root. A field named like a key
///   already there (an event's `spans`, a span's `name`; the record's own
///   keys such as `message` or `time`) goes in as `extra.<name>` rather
///   than overwrite it.
///
/// Fields are not formatted here: they are copied into the record as typed
/// binary entries (integers as 8 bytes, strings as they are; `Debug` values
/// as their text) and the flusher renders the text and JSON above from
/// them ([`ringflush_ring::fields`]). A span's entries are encoded once,
/// when the span is created and when
/// [`Span::record`](https://docs.rs/tracing/latest/tracing/struct.Span.html#method.record)
/// adds to them, and kept in the span's extensions; an event copies them.
/// Records are assembled in per-thread buffers that are reused, so an
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

/// A span's fields as binary entries, encoded once.
#[derive(Debug)]
struct SpanFields {
    layer: u64,
    entries: Vec<u8>,
}

impl SpanFields {
    fn record(&mut self, values: &impl RecordFields) {
        values.record_into(&mut SpanVisitor(Entries::new(&mut self.entries)));
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

    /// Append `span`'s scope from the root, each span's name and fields.
    /// Recursing to the parent first gives the root-first order without
    /// collecting the scope (tracing-subscriber's `from_root` moves a
    /// 16-entry array of span handles for that, which cost more than the
    /// rest of an event). Scopes deeper than [`MAX_DEPTH`] lose their
    /// outermost spans.
    fn write_scope<S>(&self, span: SpanRef<'_, S>, entries: &mut Entries<'_>, depth: usize)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(parent) = span.parent().filter(|_| depth < MAX_DEPTH) {
            self.write_scope(parent, entries, depth + 1);
        }
        let extensions = span.extensions();
        let fields = extensions
            .get::<SpanFields>()
            .map_or(&[][..], |f| &f.entries);
        entries.span(span.name(), fields);
    }

    fn write_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, b: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Buffers {
            text,
            entries,
            target,
            file,
            module,
            ..
        } = b;
        let shown = if self.fields_in_message {
            Shown::InMessage
        } else {
            Shown::JsonOnly
        };
        let mut fields = Entries::start(entries, shown);
        let span = ctx.event_span(event);
        let in_span = span.is_some();
        if let Some(span) = span {
            self.write_scope(span, &mut fields, 0);
        }
        let mut visitor = EventVisitor {
            fields,
            message: text,
            target,
            file,
            module,
            line: None,
            only_message: true,
            seen_message: false,
        };
        event.record(&mut visitor);
        let line = visitor.line;
        // A message alone needs no entries: the record is its message.
        let extra = if visitor.only_message && !in_span {
            &[][..]
        } else {
            &entries[..]
        };
        let (message, target, file, module) = (text.as_bytes(), &**target, &**file, &**module);

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
            entries: Vec::new(),
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
                    entries: Vec::new(),
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

/// An event's fields: the message into its own buffer (an entry marks its
/// place), `log.*` fields of bridged `log` records taken as the record's own.
struct EventVisitor<'a> {
    fields: Entries<'a>,
    message: &'a mut String,
    target: &'a mut String,
    file: &'a mut String,
    module: &'a mut String,
    line: Option<u32>,
    /// No field but the message so far.
    only_message: bool,
    /// Whether a `message` field was seen (and its entry written).
    seen_message: bool,
}

impl<'a> EventVisitor<'a> {
    /// The message, with its entry marking its place among the fields. A
    /// second `message` field (`info!(message = "a", message = "b")`) joins
    /// the first, as `a b`, at the first one's place.
    fn message(&mut self, value: fmt::Arguments<'_>) {
        if self.seen_message {
            self.message.push(' ');
        } else {
            self.fields.message();
            self.seen_message = true;
        }
        let _ = self.message.write_fmt(value);
    }

    /// A field other than the message and `log.*`.
    fn field(&mut self) -> &mut Entries<'a> {
        self.only_message = false;
        &mut self.fields
    }
}

impl Visit for EventVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message(format_args!("{value:?}")),
            name if name.starts_with("log.") => {}
            name => self.field().shown(shown(name), format_args!("{value:?}")),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            "log.target" => self.target.push_str(value),
            "log.file" => self.file.push_str(value),
            "log.module_path" => self.module.push_str(value),
            name if name.starts_with("log.") => {}
            name => self.field().str(shown(name), value),
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            "log.line" => self.line = u32::try_from(value).ok(),
            name if name.starts_with("log.") => {}
            name => self.field().u64(shown(name), value),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            name => self.field().i64(shown(name), value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            name => self.field().bool(shown(name), value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            name => u128_field(self.field(), shown(name), value),
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            name => i128_field(self.field(), shown(name), value),
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.message(format_args!("{value:?}")),
            name => self.field().f64(shown(name), value),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match field.name() {
            "message" => self.message(format_args!("{value}")),
            name => error(self.field(), shown(name), value),
        }
    }
}

/// 128-bit integers: an integer entry (a JSON number) when the value fits
/// 64 bits, its digits as text otherwise (tracing-subscriber's JSON writes
/// them all as strings).
fn u128_field(fields: &mut Entries<'_>, name: &str, value: u128) {
    match u64::try_from(value) {
        Ok(n) => fields.u64(name, n),
        Err(_) => fields.shown(name, format_args!("{value}")),
    }
}

/// See [`u128_field`].
fn i128_field(fields: &mut Entries<'_>, name: &str, value: i128) {
    match i64::try_from(value) {
        Ok(n) => fields.i64(name, n),
        Err(_) => fields.shown(name, format_args!("{value}")),
    }
}

/// An error: its `Display` text, then its sources if it has any (the
/// flusher shows them as `name.sources=[cause, its cause]` in text, as
/// tracing-subscriber's fmt layer does).
fn error(fields: &mut Entries<'_>, name: &str, err: &(dyn std::error::Error + 'static)) {
    fields.shown(name, format_args!("{err}"));
    if err.source().is_some() {
        fields.sources(name, format_args!("{}", Sources(err)));
    }
}

/// An error's sources, `cause, its cause`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut source = self.0.source();
        let mut first = true;
        while let Some(s) = source {
            if !first {
                f.write_str(", ")?;
            }
            // A source whose Display fails is skipped, not the rest.
            let _ = write!(f, "{s}");
            first = false;
            source = s.source();
        }
        Ok(())
    }
}

/// A span's fields: `message` a field like any other in the JSON.
struct SpanVisitor<'a>(Entries<'a>);

impl Visit for SpanVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.0.span_message(format_args!("{value:?}")),
            name => self.0.shown(shown(name), format_args!("{value:?}")),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.0.span_message(format_args!("{value}")),
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
    fn record_u128(&mut self, field: &Field, value: u128) {
        u128_field(&mut self.0, shown(field.name()), value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        i128_field(&mut self.0, shown(field.name()), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.f64(shown(field.name()), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        error(&mut self.0, shown(field.name()), value);
    }
}

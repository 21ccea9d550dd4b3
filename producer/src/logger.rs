//! Rust's `log` facade onto the ring: a service logs with `log::info!`
//! unchanged. [`RingLogger`] filters with a `RUST_LOG`-style spec, carries
//! key-values into the record's `extra` and can echo to stderr; [`Producer`]
//! itself is a plain `log::Log` too.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use log::kv::{self, VisitSource, VisitValue};
use log::LevelFilter;
use ringflush_ring::codec::{level, Record};
use ringflush_ring::fields::{FieldWriter, Owner, Shown};

use crate::fields::{utc_now, with_buffers, Buffers};
use crate::{identity, Producer};

fn python_level(l: log::Level) -> u8 {
    match l {
        log::Level::Error => level::ERROR,
        log::Level::Warn => level::WARNING,
        log::Level::Info => level::INFO,
        log::Level::Debug => level::DEBUG,
        log::Level::Trace => level::TRACE,
    }
}

thread_local! {
    static MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Rust's `log` facade onto the ring, unfiltered (the `log` feature, on by
/// default); [`RingLogger`] adds a per-target filter and more.
///
/// Each `log::Record` becomes one ring record: its level on Python's scale
/// (error 40, warn 30, info 20, debug 10, trace 5), its target as the logger
/// name, its file, line and module path as `pathname`, `lineno` and
/// `module`, this thread's id and name, and its key-values in `extra` (see
/// [`RingLogger`]). `enabled` accepts what `log::max_level()` lets through.
/// A record that cannot be written is lost as with [`Producer::write`]
/// (counted in the segment and reported by the flusher), never returned.
/// `flush` does nothing: a committed record is already in the shared ring.
impl log::Log for Producer {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        write_record(self, record, true, false);
    }

    fn flush(&self) {}
}

/// Write `record` through `producer`, and echo it to stderr if asked.
fn write_record(producer: &Producer, record: &log::Record<'_>, in_message: bool, echo: bool) {
    let kvs = record.key_values();
    if !echo && kvs.count() == 0 {
        return write_plain(producer, record);
    }
    with_buffers(|b| {
        let Buffers {
            text, json, prefix, ..
        } = b;
        json.push('{');
        let mut w = FieldWriter::new(text, json, Shown::InMessage, Owner::Event);
        w.message(format_args!("{}", record.args()));
        let _ = kvs.visit(&mut KeyValues(&mut w));
        let message = w.message.unwrap_or_default();
        let (text, json) = (w.text, w.json);
        let extra = if json.len() > 1 {
            json.push('}');
            json.as_bytes()
        } else {
            b""
        };
        let message = if in_message {
            &text[..]
        } else {
            &text[message.0..message.1]
        };
        write(producer, record, message, extra);
        if echo {
            utc_now(prefix);
            let _ = writeln!(
                prefix,
                " {:<5} {}: {}",
                record.level(),
                record.target(),
                text
            );
            let _ = std::io::stderr().lock().write_all(prefix.as_bytes());
        }
    });
}

/// A record without key-values: the message straight from the format
/// string when it has no arguments.
#[inline]
fn write_plain(producer: &Producer, record: &log::Record<'_>) {
    if let Some(text) = record.args().as_str() {
        return write(producer, record, text, b"");
    }
    MESSAGE.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let _ = write!(buf, "{}", record.args());
            write(producer, record, &buf, b"");
        }
        // Logging from inside a Display impl that is itself being logged.
        Err(_) => write(producer, record, &record.args().to_string(), b""),
    })
}

#[inline]
fn write(producer: &Producer, record: &log::Record<'_>, message: &str, extra: &[u8]) {
    let thread = identity::current_thread();
    // Failures are counted in the segment and reported by the flusher; a
    // logger has nowhere better to send them.
    let _ = producer.write(&Record {
        level: python_level(record.level()),
        line: record.line().unwrap_or(0),
        thread_id: thread.id,
        thread_name: &thread.name,
        logger: record.target().as_bytes(),
        pathname: record.file().unwrap_or("").as_bytes(),
        module: record.module_path().unwrap_or("").as_bytes(),
        extra,
        message: message.as_bytes(),
        ..Record::default()
    });
}

/// A record's key-values into a [`FieldWriter`].
struct KeyValues<'a, 'w>(&'a mut FieldWriter<'w>);

impl<'kvs> VisitSource<'kvs> for KeyValues<'_, '_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        value.visit(Value(self.0, key.as_str()))
    }
}

/// One value: numbers and booleans as such, strings quoted in the text,
/// anything else (`:%`, `:?` and `:err` captures) as its text.
struct Value<'a, 'w, 'k>(&'a mut FieldWriter<'w>, &'k str);

impl<'v> VisitValue<'v> for Value<'_, '_, '_> {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        self.0.display(self.1, format_args!("{value}"));
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.0.null(self.1);
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.0.u64(self.1, value);
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.0.i64(self.1, value);
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.0.f64(self.1, value);
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.0.bool(self.1, value);
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.0.str(self.1, value);
        Ok(())
    }
    fn visit_char(&mut self, value: char) -> Result<(), kv::Error> {
        self.0.str(self.1, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
}

/// Why [`init`], [`init_with_filter`] or a [`LoggerBuilder`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// The segment could not be opened (see [`Producer::open`]).
    Open(ringflush_ring::OpenError),
    /// Another logger was installed first.
    AlreadySet,
    /// The filter spec does not parse; says which spec, from where, and why.
    Filter(String),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Open(e) => e.fmt(f),
            InitError::AlreadySet => f.write_str("a global logger is already installed"),
            InitError::Filter(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for InitError {
    // Open's Display is the OpenError's own, so its cause comes next.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Open(e) => std::error::Error::source(e),
            InitError::AlreadySet | InitError::Filter(_) => None,
        }
    }
}

/// A `log::Log` onto the ring with a `RUST_LOG`-style filter (the `log`
/// feature, on by default). Made by [`RingLogger::builder`]; [`init`] and
/// [`init_with_filter`] are the short ways to install one.
///
/// ```no_run
/// use ringflush_producer::RingLogger;
/// RingLogger::builder()
///     .filter("info,app::db=debug")   // the default is "info"
///     .filter_env("RUST_LOG")         // RUST_LOG, when set, instead
///     .stderr(cfg!(debug_assertions)) // echo lines to stderr too
///     .init("/applog")?;
/// log::debug!(target: "app::db", "pool ready");      // written
/// log::debug!(target: "app::http", "not written");   // filtered out
/// log::info!(user_id = 42, path = "/login"; "login"); // key-values
/// # Ok::<(), ringflush_producer::InitError>(())
/// ```
///
/// **Filter.** The spec is `env_logger`'s (parsed by the `env_filter`
/// crate): comma-separated `level` and `target=level` directives, the
/// longest matching target prefix deciding (`info,app::db=debug,hyper=off`),
/// and an optional `/text` after them that keeps only messages containing
/// `text` (a substring, not a regular expression). The most verbose level
/// any directive allows becomes `log::max_level()` when the logger is
/// installed, so a record below it costs the `log` macro's one comparison;
/// a record within it but for a target filtered out costs one walk of the
/// directives, before its message is formatted.
///
/// **Key-values** (`log::info!(user_id = 42, path = "/login"; "login")`)
/// go into the record's `extra` as a JSON object, which `--format json`
/// turns into fields: `"user_id": 42, "path": "/login"` (numbers and
/// booleans as such, strings as strings, `:%` and `:?` captures as their
/// text). By default they are also appended to the message as
/// `key=value` (`login user_id=42 path="/login"`), so that text formats
/// show them; [`LoggerBuilder::with_fields_in_message`]`(false)` keeps the
/// message bare for a flusher that only writes JSON.
///
/// Records are written as by `Producer`'s own `log::Log`.
#[derive(Debug)]
pub struct RingLogger {
    producer: Producer,
    filter: env_filter::Filter,
    stderr: bool,
    fields_in_message: bool,
}

/// Options for a [`RingLogger`], from [`RingLogger::builder`].
#[derive(Debug, Clone)]
#[must_use = "a LoggerBuilder does nothing until `init` or `build` is called"]
pub struct LoggerBuilder {
    spec: String,
    env: Option<String>,
    stderr: bool,
    fields_in_message: bool,
}

impl LoggerBuilder {
    /// The filter spec, e.g. `"info,app::db=debug"` (default `"info"`; see
    /// [`RingLogger`]).
    pub fn filter(mut self, spec: &str) -> Self {
        self.spec = spec.into();
        self
    }

    /// One level for every target: the same as [`LoggerBuilder::filter`]
    /// with the level's name.
    pub fn level(self, level: LevelFilter) -> Self {
        let name = level.as_str().to_ascii_lowercase();
        self.filter(&name)
    }

    /// Take the filter spec from the environment variable `var` (usually
    /// `RUST_LOG`) when it is set and not empty, instead of
    /// [`LoggerBuilder::filter`]'s.
    pub fn filter_env(mut self, var: &str) -> Self {
        self.env = Some(var.into());
        self
    }

    /// Also write each record to stderr as
    /// `2026-03-06T10:17:33.045Z INFO  app::db: message key=value`, for
    /// development (default `false`).
    pub fn stderr(mut self, echo: bool) -> Self {
        self.stderr = echo;
        self
    }

    /// Whether key-values are also appended to the message as `key=value`
    /// (default `true`); they are in `extra` either way.
    pub fn with_fields_in_message(mut self, yes: bool) -> Self {
        self.fields_in_message = yes;
        self
    }

    /// A logger writing through `producer`, not installed: for a program
    /// that combines loggers, or that installs it later with
    /// [`RingLogger::install`].
    ///
    /// # Errors
    /// [`InitError::Filter`] when the spec does not parse.
    pub fn build(self, producer: Producer) -> Result<RingLogger, InitError> {
        Ok(RingLogger {
            producer,
            filter: self.parse()?,
            stderr: self.stderr,
            fields_in_message: self.fields_in_message,
        })
    }

    /// Open (or create) the segment `shm` with the defaults of
    /// [`Producer::open`] and install the logger as the global `log`
    /// logger; it lives until the process exits.
    ///
    /// # Errors
    /// - [`InitError::Filter`]: the spec does not parse (checked first, so
    ///   that a bad spec creates no segment);
    /// - [`InitError::Open`]: [`Producer::open`] failed;
    /// - [`InitError::AlreadySet`]: a global logger was installed before.
    pub fn init(self, shm: &str) -> Result<(), InitError> {
        let filter = self.parse()?;
        let producer = Producer::open(shm).map_err(InitError::Open)?;
        RingLogger {
            producer,
            filter,
            stderr: self.stderr,
            fields_in_message: self.fields_in_message,
        }
        .install()
    }

    /// The filter from the environment variable if set, else the spec.
    fn parse(&self) -> Result<env_filter::Filter, InitError> {
        let from_env = self.env.as_ref().and_then(|var| {
            let spec = std::env::var(var).ok()?;
            (!spec.trim().is_empty()).then(|| (spec, format!(" (from ${var})")))
        });
        let (spec, from) = from_env.unwrap_or_else(|| (self.spec.clone(), String::new()));
        let mut builder = env_filter::Builder::new();
        builder
            .try_parse(&spec)
            .map_err(|e| InitError::Filter(format!("log filter {spec:?}{from}: {e}")))?;
        Ok(builder.build())
    }
}

impl RingLogger {
    /// Options, starting from: filter `"info"`, no environment variable, no
    /// stderr echo, key-values in the message too.
    pub fn builder() -> LoggerBuilder {
        LoggerBuilder {
            spec: "info".into(),
            env: None,
            stderr: false,
            fields_in_message: true,
        }
    }

    /// The most verbose level the filter lets through.
    pub fn max_level(&self) -> LevelFilter {
        self.filter.filter()
    }

    /// The producer records are written through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Install as the global `log` logger, with `log::max_level()` set to
    /// [`RingLogger::max_level`].
    ///
    /// # Errors
    /// [`InitError::AlreadySet`]: a global logger was installed before; this
    /// one is dropped and the max level is left unchanged.
    pub fn install(self) -> Result<(), InitError> {
        let max = self.max_level();
        log::set_boxed_logger(Box::new(self)).map_err(|_| InitError::AlreadySet)?;
        log::set_max_level(max);
        Ok(())
    }
}

impl log::Log for RingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.filter.matches(record) {
            write_record(&self.producer, record, self.fields_in_message, self.stderr);
        }
    }

    fn flush(&self) {}
}

/// Install a logger on `shm` as the global `log` logger at `max_level` for
/// every target: [`RingLogger::builder`]`().level(max_level).init(shm)`.
/// The producer opens (or creates) the segment with the defaults of
/// [`Producer::open`] and lives until the process exits.
///
/// ```no_run
/// ringflush_producer::init("/applog", log::LevelFilter::Info)?;
/// log::info!("service started");
/// # Ok::<(), ringflush_producer::InitError>(())
/// ```
///
/// # Errors
/// - [`InitError::Open`]: [`Producer::open`] failed (see
///   [`Builder::open`](crate::Builder::open) for when).
/// - [`InitError::AlreadySet`]: a global logger was installed before; the
///   new producer is dropped and the max level is left unchanged.
pub fn init(shm: &str, max_level: LevelFilter) -> Result<(), InitError> {
    RingLogger::builder().level(max_level).init(shm)
}

/// Install a logger on `shm` as the global `log` logger with a
/// `RUST_LOG`-style filter spec (see [`RingLogger`]):
/// [`RingLogger::builder`]`().filter(spec).init(shm)`.
///
/// ```no_run
/// ringflush_producer::init_with_filter("/applog", "info,app::db=debug")?;
/// log::debug!(target: "app::db", "written");
/// log::debug!(target: "app::http", "filtered out");
/// # Ok::<(), ringflush_producer::InitError>(())
/// ```
///
/// # Errors
/// As [`LoggerBuilder::init`].
pub fn init_with_filter(shm: &str, spec: &str) -> Result<(), InitError> {
    RingLogger::builder().filter(spec).init(shm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_as_specs() {
        for level in LevelFilter::iter() {
            let spec = level.as_str().to_ascii_lowercase();
            let mut b = env_filter::Builder::new();
            b.try_parse(&spec).unwrap();
            assert_eq!(b.build().filter(), level, "{spec}");
        }
    }

    #[test]
    fn bad_spec_is_an_error_before_any_segment() {
        let e = RingLogger::builder()
            .filter("info,app=loud")
            .init("/rf-never-created")
            .unwrap_err();
        assert!(matches!(e, InitError::Filter(_)), "{e}");
        assert!(e.to_string().contains("info,app=loud"), "{e}");
        assert!(!std::path::Path::new("/dev/shm/rf-never-created").exists());
    }
}

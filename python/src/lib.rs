//! Python bindings: `ringflush._native`.
//!
//! `Producer` writes records into the ring (the same Rust producer the
//! services use, so Python and Rust processes share a segment), and `main`
//! runs the `ringflush` command line (the flusher, `stat`, `pipe`...) in this
//! process, so a pip-installed user needs no cargo. The GIL is released
//! whenever a call may block.

use std::sync::Mutex;
use std::time::Duration;

mod emit;
mod fast;
mod handle;
mod msg_args;
mod names;
mod record;
mod status;
use names::NameCache;
use record::RecordKeys;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use ringflush_producer::{FullPolicy, Producer as RustProducer, Record, WriteError};

// Module `ringflush`: the classes are re-exported there, and print as
// `ringflush.RingflushError`.
create_exception!(
    ringflush,
    RingflushError,
    PyException,
    "A ringflush segment could not be used."
);
create_exception!(
    ringflush,
    RingFullError,
    RingflushError,
    "The ring was full and the record was dropped."
);

/// What a write does when the ring is full (`on_full=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnFull {
    /// Wait for space (without the GIL) up to the timeout, then drop.
    Block,
    /// Drop at once, counted.
    Drop,
    /// Drop, counted, and raise RingFullError.
    Raise,
}

/// A producer on one segment; share one per process (it survives fork).
#[pyclass(frozen, module = "ringflush._native")]
pub struct Producer {
    inner: RustProducer,
    on_full: OnFull,
    /// The attributes of a plain `LogRecord` (others are `extra=` fields).
    record_keys: RecordKeys,
    /// `logging.LogRecord`, whose getMessage `emit` does itself...
    record_type: Py<PyAny>,
    /// ...as long as it is still this function.
    get_message: Py<PyAny>,
    names: Mutex<NameCache>,
}

fn write_error(e: WriteError) -> PyErr {
    match e {
        WriteError::Full => RingFullError::new_err(e.to_string()),
        other => RingflushError::new_err(other.to_string()),
    }
}

#[pymethods]
impl Producer {
    /// `on_full`: "block" (wait up to `timeout` seconds, then drop), "drop"
    /// (drop at once, counted) or "raise" (drop and raise RingFullError).
    /// `capacity`: the ring's size in bytes if this producer creates the
    /// segment (default 8 MiB). `lanes`: its lanes if this producer creates
    /// it (default 64, fewer on a small ring; 0: the shared ring alone).
    #[new]
    #[pyo3(signature = (shm="/applog", on_full="block", timeout=1.0, mode=0o600, allow_foreign=false, capacity=None, lanes=None))]
    // The Python keyword arguments, one parameter each.
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        shm: &str,
        on_full: &str,
        timeout: f64,
        mode: u32,
        allow_foreign: bool,
        capacity: Option<u64>,
        lanes: Option<u64>,
    ) -> PyResult<Self> {
        let on_full = match on_full {
            "block" => OnFull::Block,
            "drop" => OnFull::Drop,
            "raise" => OnFull::Raise,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid on_full {other:?}: use \"block\", \"drop\" or \"raise\""
                )))
            }
        };
        let policy = match on_full {
            OnFull::Block if !(timeout.is_finite() && timeout >= 0.0) => {
                return Err(PyValueError::new_err(format!("invalid timeout {timeout}")));
            }
            OnFull::Block => FullPolicy::Block {
                timeout: Duration::from_secs_f64(timeout),
            },
            OnFull::Drop | OnFull::Raise => FullPolicy::Drop,
        };
        if mode > 0o777 {
            return Err(PyValueError::new_err(format!(
                "invalid mode {mode:o}: expected permission bits like 0o600 or 0o660"
            )));
        }
        let mut builder = RustProducer::builder(shm);
        if let Some(bytes) = capacity {
            builder = builder.capacity(bytes);
        }
        if let Some(lanes) = lanes {
            builder = builder.lanes(lanes);
        }
        let inner = builder
            .full_policy(policy)
            .mode(mode)
            .allow_foreign(allow_foreign)
            .open()
            .map_err(|e| RingflushError::new_err(ringflush::report::chain(&e)))?;
        let record_type = py.import("logging")?.getattr("LogRecord")?;
        let record_keys = RecordKeys::new(
            record_type
                .call1(("", 0, "", 0, "", PyTuple::empty(py), py.None()))?
                .getattr("__dict__")?
                .cast::<PyDict>()?,
        )?;
        Ok(Self {
            inner,
            on_full,
            record_keys,
            get_message: record_type.getattr("getMessage")?.unbind(),
            record_type: record_type.unbind(),
            names: Mutex::default(),
        })
    }

    /// Remove the segment if no flusher holds it, no other producer lives
    /// and nothing is left to write (at exit, for a handler that logged
    /// nothing). Returns whether it was removed.
    fn remove_segment_if_unused(&self) -> bool {
        self.inner.remove_segment_if_unused()
    }

    /// Whether this producer created the segment (rather than joining one).
    #[getter]
    fn created_segment(&self) -> bool {
        self.inner.created_segment()
    }

    /// Write a `logging.LogRecord`: RingHandler's fast path, which reads the
    /// record's attributes here instead of in Python. Returns False, writing
    /// nothing, for a record that needs the Python path: exception or stack
    /// text, `extra=` fields, or attributes of unexpected types.
    fn emit<'py>(&self, py: Python<'py>, record: &Bound<'py, PyAny>) -> PyResult<bool> {
        self.emit_record(py, record)
    }

    /// Write one record: level, name, message, created_ns, pathname, lineno,
    /// func, module, thread_id, thread_name, process_name, task_name, extra.
    /// Text fields are UTF-8 bytes (invalid bytes are kept and replaced by the
    /// flusher); `created_ns` 0 means now; `extra` is a JSON object or empty.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (level, name, message, created_ns, pathname, lineno, func, module, thread_id, thread_name, process_name, task_name, extra, formatted=false))]
    fn write(
        &self,
        py: Python<'_>,
        level: u8,
        name: &[u8],
        message: &[u8],
        created_ns: u64,
        pathname: &[u8],
        lineno: u32,
        func: &[u8],
        module: &[u8],
        thread_id: u64,
        thread_name: &[u8],
        process_name: &[u8],
        task_name: &[u8],
        extra: &[u8],
        formatted: bool,
    ) -> PyResult<()> {
        let names = [
            name,
            pathname,
            func,
            module,
            thread_name,
            process_name,
            task_name,
        ];
        let record = Record {
            extra,
            formatted,
            ..log_record(level, lineno, thread_id, names, message)
        };
        self.write_record(py, &record, created_ns)
    }
}

impl Producer {
    /// Write `record` stamped `created_ns` (0: now), under the full-ring
    /// policy. The GIL is kept for the common case and released only to wait
    /// for space: releasing and taking it back costs more than the write.
    pub(crate) fn write_record(
        &self,
        py: Python<'_>,
        record: &Record<'_>,
        created_ns: u64,
    ) -> PyResult<()> {
        match self.try_record(record, created_ns) {
            Err(WriteError::Full) => self.write_when_full(py, record, created_ns),
            result => self.outcome(result),
        }
    }

    /// One attempt that never waits.
    fn try_record(&self, record: &Record<'_>, created_ns: u64) -> Result<(), WriteError> {
        if created_ns == 0 {
            self.inner.try_write(record)
        } else {
            self.inner.try_write_at(record, created_ns)
        }
    }

    /// After a full ring: wait (without the GIL) or count the drop, as the
    /// policy says.
    fn write_when_full(
        &self,
        py: Python<'_>,
        record: &Record<'_>,
        created_ns: u64,
    ) -> PyResult<()> {
        let write = || {
            if created_ns == 0 {
                self.inner.write(record)
            } else {
                self.inner.write_at(record, created_ns)
            }
        };
        self.outcome(if self.on_full == OnFull::Block {
            py.detach(write)
        } else {
            write()
        })
    }

    fn outcome(&self, result: Result<(), WriteError>) -> PyResult<()> {
        match result {
            Ok(()) => Ok(()),
            Err(WriteError::Full) if self.on_full != OnFull::Raise => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }
}

/// A LogRecord's fields as a ring record; `names` in [`NameCache::utf8`] order.
fn log_record<'a>(
    level: u8,
    line: u32,
    thread_id: u64,
    names: [&'a [u8]; 7],
    message: &'a [u8],
) -> Record<'a> {
    let [logger, pathname, func, module, thread_name, process_name, task_name] = names;
    Record {
        level,
        line,
        thread_id,
        logger,
        thread_name,
        pathname,
        func,
        module,
        process_name,
        task_name,
        extra: b"",
        message,
        formatted: false,
    }
}

/// Run the `ringflush` command line with `argv` (argv[0] is the program
/// name); returns the exit code, the binary's (0 ok, 1 problem found, 2
/// error, 0 for --help and --version, 2 for a usage error).
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let cli = match ringflush::cli::parse(argv.iter().cloned()) {
        Ok(cli) => cli,
        Err(code) => return i32::from(code),
    };
    // `demo` and `bench` start this program again: this interpreter, with
    // `-m ringflush` (the pip-installed command has no binary of its own).
    if let Ok(exe) = py
        .import("sys")
        .and_then(|sys| sys.getattr("executable"))
        .and_then(|e| e.extract::<std::path::PathBuf>())
    {
        ringflush::set_self_command(vec![exe.into(), "-m".into(), "ringflush".into()]);
    }
    let args = argv.into_iter().skip(1).collect();
    py.detach(|| ringflush::main_with(cli, args) as i32)
}

/// `TimedRotatingFileHandler.computeRollover(t)` from the schedule the
/// flusher runs (the rotation crate): the next rollover instant after Unix
/// second `t`, for `when` (S, M, H, D, MIDNIGHT, W0-W6), `interval`, `utc`
/// and `at_time` (`HH:MM:SS`, for MIDNIGHT and weekly rollovers).
#[pyfunction]
#[pyo3(signature = (when, interval, utc, at_time, t))]
fn compute_rollover(
    when: &str,
    interval: u32,
    utc: bool,
    at_time: Option<&str>,
    t: i64,
) -> PyResult<i64> {
    use ringflush_rotation::{Clock, Timed, When};
    let invalid = |e: ringflush_rotation::PolicyError| PyValueError::new_err(e.to_string());
    let when = When::parse(when).map_err(invalid)?;
    let clock = if utc { Clock::Utc } else { Clock::Local };
    let timed = Timed::new(when, interval, at_time, clock).map_err(invalid)?;
    Ok(timed.next_rollover(t))
}

/// Check a `logging.Formatter`'s format as the flusher would take it:
/// returns the fields it needs from records beyond LogRecord's attributes,
/// or raises ValueError with the flusher's reason when the flusher would
/// refuse it (the handler then formats in the worker instead).
#[pyfunction]
#[pyo3(signature = (fmt, style, datefmt=None, defaults=None))]
fn check_format(
    fmt: &str,
    style: &str,
    datefmt: Option<String>,
    defaults: Option<String>,
) -> PyResult<Vec<String>> {
    let style = ringflush_format::Style::parse(style)
        .ok_or_else(|| PyValueError::new_err(format!("invalid style {style:?}")))?;
    let invalid = |e: ringflush_format::FormatError| PyValueError::new_err(e.to_string());
    let extras = ringflush_format::extra_fields(fmt, style).map_err(invalid)?;
    // Defaults for every extra field, as the handler passes them.
    let mut all: serde_json::Map<String, serde_json::Value> = match &defaults {
        Some(d) => serde_json::from_str(d).map_err(|e| PyValueError::new_err(e.to_string()))?,
        None => serde_json::Map::new(),
    };
    for name in &extras {
        all.entry(name.clone()).or_insert_with(|| "".into());
    }
    let spec = ringflush_format::FormatSpec {
        format: Some(fmt.to_string()),
        style,
        defaults: Some(serde_json::Value::Object(all).to_string()),
        datefmt,
        ..Default::default()
    };
    ringflush_format::Formatter::new(&spec, 0).map_err(invalid)?;
    Ok(extras)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Producer>()?;
    m.add_class::<fast::FastLogger>()?;
    m.add_class::<handle::Handle>()?;
    m.add_class::<status::SegmentStatus>()?;
    m.add_class::<status::Mark>()?;
    m.add_function(wrap_pyfunction!(compute_rollover, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(check_format, m)?)?;
    m.add("RingflushError", m.py().get_type::<RingflushError>())?;
    m.add("RingFullError", m.py().get_type::<RingFullError>())?;
    Ok(())
}

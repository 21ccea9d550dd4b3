//! Python bindings: `ringflush._native`.
//!
//! `Producer` writes records into the ring (the same Rust producer the
//! services use, so Python and Rust processes share a segment), and `main`
//! runs the `ringflush` command line (the flusher, `stat`, `pipe`...) in this
//! process, so a pip-installed user needs no cargo. The GIL is released
//! whenever a call may block.

use std::sync::Mutex;
use std::time::Duration;

mod fast;
mod handle;
mod names;
mod percent;
mod record;
use names::NameCache;
use record::{Field, RecordKeys};

use clap::Parser;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use ringflush_producer::{FullPolicy, Producer as RustProducer, Record, WriteError};

create_exception!(
    _native,
    RingflushError,
    PyException,
    "A ringflush segment could not be used."
);
create_exception!(
    _native,
    RingFullError,
    RingflushError,
    "The ring was full and the record was dropped."
);

/// A producer on one segment; share one per process (it survives fork).
#[pyclass(frozen, module = "ringflush._native")]
pub struct Producer {
    inner: RustProducer,
    blocking: bool,
    raise_on_full: bool,
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
    #[new]
    #[pyo3(signature = (shm="/applog", on_full="block", timeout=1.0))]
    fn new(py: Python<'_>, shm: &str, on_full: &str, timeout: f64) -> PyResult<Self> {
        let policy = match on_full {
            "block" => {
                if !(timeout.is_finite() && timeout >= 0.0) {
                    return Err(PyValueError::new_err(format!("invalid timeout {timeout}")));
                }
                FullPolicy::Block {
                    timeout: Duration::from_secs_f64(timeout),
                }
            }
            "drop" | "raise" => FullPolicy::Drop,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid on_full {other:?}: use \"block\", \"drop\" or \"raise\""
                )))
            }
        };
        let inner = RustProducer::builder(shm)
            .full_policy(policy)
            .open()
            .map_err(|e| RingflushError::new_err(e.to_string()))?;
        let record_type = py.import("logging")?.getattr("LogRecord")?;
        let record_keys = RecordKeys::new(
            record_type
                .call1(("", 0, "", 0, "", PyTuple::empty(py), py.None()))?
                .getattr("__dict__")?
                .cast::<PyDict>()?,
        )?;
        Ok(Self {
            inner,
            blocking: matches!(policy, FullPolicy::Block { .. }),
            raise_on_full: on_full == "raise",
            record_keys,
            get_message: record_type.getattr("getMessage")?.unbind(),
            record_type: record_type.unbind(),
            names: Mutex::default(),
        })
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
            ..log_record(level, lineno, thread_id, names, message)
        };
        self.write_record(py, &record, created_ns)
    }
}

impl Producer {
    /// [`Producer::emit`], for [`handle::Handle`] too.
    pub(crate) fn emit_record<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        // Only plain LogRecords whose getMessage nobody replaced: a factory's
        // subclass may compute attributes or format differently.
        if !record.get_type().is(&self.record_type)
            || !self
                .record_type
                .bind(py)
                .getattr(intern!(py, "getMessage"))?
                .is(&self.get_message)
        {
            return Ok(false);
        }
        let Ok(attrs) = record
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()
        else {
            return Ok(false);
        };
        let Some(fields) = self.record_keys.read(&attrs) else {
            return Ok(false);
        };
        let get = |field| fields.get(field);
        if [Field::ExcInfo, Field::ExcText, Field::StackInfo]
            .into_iter()
            .any(|f| get(f).is_some_and(|v| !v.is_none()))
        {
            return Ok(false);
        }
        let Some(Ok(level)) = get(Field::Levelno).map(|v| v.extract::<u8>()) else {
            return Ok(false);
        };
        let number = |field| -> Option<u64> {
            match get(field) {
                Some(v) if v.is_none() => Some(0),
                Some(v) => v.extract::<u64>().ok(),
                None => Some(0),
            }
        };
        let (Some(line), Some(thread_id)) = (
            number(Field::Lineno).and_then(|l| u32::try_from(l).ok()),
            number(Field::Thread),
        ) else {
            return Ok(false);
        };
        // Python 3.13+ records carry created_ns; older ones only created.
        let created_ns = match get(Field::CreatedNs)
            .and_then(|ns| ns.extract::<u64>().ok())
            .filter(|&ns| ns != 0)
        {
            Some(ns) => Some(ns),
            None => get(Field::Created)
                .and_then(|c| c.extract::<f64>().ok())
                .map(|c| (c * 1e9) as u64),
        };
        let Some(created_ns) = created_ns else {
            return Ok(false);
        };
        // The order of NameCache::utf8.
        let name_objs = [
            Field::Name,
            Field::Pathname,
            Field::FuncName,
            Field::Module,
            Field::ThreadName,
            Field::ProcessName,
            Field::TaskName,
        ]
        .map(get);
        if !name_objs.iter().flatten().all(|o| names::is_text(o)) {
            return Ok(false);
        }
        // From here on the record is written: nothing returns False, so the
        // message is formatted once. LogRecord.getMessage, without a frame:
        // `msg = str(self.msg); if self.args: msg = msg % self.args`.
        let Some(msg) = get(Field::Msg) else {
            return Ok(false);
        };
        let msg = msg.str()?;
        let args = match get(Field::Args) {
            Some(args) if args.is_truthy()? => Some(args),
            _ => None,
        };
        let message = percent::message(&msg, args)?;
        let message = message.as_bytes();
        // try_lock: formatting above may have run Python code (a __str__)
        // that logs from this thread, or let another thread take the GIL
        // while this one held the cache; either way, encode without it.
        let mut cache = match self.names.try_lock() {
            Ok(cache) => Some(cache),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let names = match cache.as_mut().map(|c| c.utf8(&name_objs)) {
            Some(names) => names?,
            None => None,
        };
        let Some(names) = names else {
            let owned = names::utf8_uncached(&name_objs)?;
            drop(cache);
            let record = log_record(
                level,
                line,
                thread_id,
                owned.each_ref().map(|n| &n[..]),
                message,
            );
            self.write_record(py, &record, created_ns)?;
            return Ok(true);
        };
        let record = log_record(level, line, thread_id, names, message);
        match self.try_record(&record, created_ns) {
            Err(WriteError::Full) => {
                // Copy the names out and free the cache before waiting for
                // space: other threads may log meanwhile.
                let names = names.map(<[u8]>::to_vec);
                drop(cache);
                let names = names.each_ref().map(Vec::as_slice);
                let record = log_record(level, line, thread_id, names, message);
                self.write_when_full(py, &record, created_ns)?;
            }
            result => self.outcome(result)?,
        }
        Ok(true)
    }

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
        self.outcome(if self.blocking {
            py.detach(write)
        } else {
            write()
        })
    }

    fn outcome(&self, result: Result<(), WriteError>) -> PyResult<()> {
        match result {
            Ok(()) => Ok(()),
            Err(WriteError::Full) if !self.raise_on_full => Ok(()),
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
    }
}

/// Run the `ringflush` command line with `argv` (argv[0] is the program
/// name); returns the exit code.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let cli = match ringflush::cli::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    py.detach(|| match ringflush::run_cli(cli) {
        Ok(code) => {
            if code == std::process::ExitCode::SUCCESS {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("ringflush: {e:#}");
            1
        }
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Producer>()?;
    m.add_class::<fast::FastLogger>()?;
    m.add_class::<handle::Handle>()?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add("RingflushError", m.py().get_type::<RingflushError>())?;
    m.add("RingFullError", m.py().get_type::<RingFullError>())?;
    Ok(())
}

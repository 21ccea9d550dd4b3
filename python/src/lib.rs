//! Python bindings: `ringflush._native`.
//!
//! `Producer` writes records into the ring (the same Rust producer the
//! services use, so Python and Rust processes share a segment), and `main`
//! runs the `ringflush` command line (the flusher, `stat`, `pipe`...) in this
//! process, so a pip-installed user needs no cargo. The GIL is released
//! whenever a call may block.

use std::time::Duration;

use clap::Parser;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
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
struct Producer {
    inner: RustProducer,
    blocking: bool,
    raise_on_full: bool,
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
    fn new(shm: &str, on_full: &str, timeout: f64) -> PyResult<Self> {
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
        Ok(Self {
            inner,
            blocking: matches!(policy, FullPolicy::Block { .. }),
            raise_on_full: on_full == "raise",
        })
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
        let record = Record {
            level,
            line: lineno,
            thread_id,
            logger: name,
            thread_name,
            pathname,
            func,
            module,
            process_name,
            task_name,
            extra,
            message,
        };
        let write = || {
            if created_ns == 0 {
                self.inner.write(&record)
            } else {
                self.inner.write_at(&record, created_ns)
            }
        };
        // Only a blocking write may wait; it must not hold the GIL meanwhile.
        let result = if self.blocking {
            py.detach(write)
        } else {
            write()
        };
        match result {
            Ok(()) => Ok(()),
            Err(WriteError::Full) if !self.raise_on_full => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }

    /// The fast path: level, logger name, message and thread name.
    fn log(
        &self,
        py: Python<'_>,
        level: u8,
        name: &[u8],
        message: &[u8],
        thread_name: &[u8],
    ) -> PyResult<()> {
        self.write(
            py,
            level,
            name,
            message,
            0,
            b"",
            0,
            b"",
            b"",
            0,
            thread_name,
            b"",
            b"",
            b"",
        )
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
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add("RingflushError", m.py().get_type::<RingflushError>())?;
    m.add("RingFullError", m.py().get_type::<RingFullError>())?;
    Ok(())
}

//! `ringflush.Logger`, the fast path for hot loops: a call goes straight from
//! Python to the ring, with no LogRecord, no handler chain and no Python
//! frame of ringflush's own (the Python class only subclasses this one).

use std::cell::RefCell;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyString;
use ringflush_producer::Record;

use crate::msg_args;
use crate::names;
use crate::Producer;

/// The calling thread's `threading.get_ident()` and name, looked up once per
/// thread (and again in a forked child), as the Python class did before.
struct PyThread {
    pid: u32,
    ident: u64,
    name: Rc<[u8]>,
}

thread_local! {
    static THREAD: RefCell<Option<PyThread>> = const { RefCell::new(None) };
}

fn current_thread(py: Python<'_>) -> PyResult<(u64, Rc<[u8]>)> {
    // Not std::process::id(): getpid is a system call on every use.
    let pid = ringflush_producer::pid();
    let cached = THREAD.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|t| t.pid == pid)
            .map(|t| (t.ident, t.name.clone()))
    });
    if let Some(found) = cached {
        return Ok(found);
    }
    // Looked up with no borrow held: this runs Python code.
    let threading = py.import("threading")?;
    let name = threading.call_method0("current_thread")?.getattr("name")?;
    let thread = PyThread {
        pid,
        ident: threading.call_method0("get_ident")?.extract()?,
        name: names::utf8(name.cast::<PyString>()?)?.as_bytes().into(),
    };
    let found = (thread.ident, thread.name.clone());
    THREAD.with(|cell| *cell.borrow_mut() = Some(thread));
    Ok(found)
}

/// A logger name bound to a producer. `info(msg)` etc. take a `str`.
#[pyclass(frozen, subclass, module = "ringflush._native")]
pub struct FastLogger {
    producer: Py<Producer>,
    name: Box<[u8]>,
}

#[pymethods]
impl FastLogger {
    #[new]
    fn new(producer: Py<Producer>, name: &Bound<'_, PyString>) -> PyResult<Self> {
        Ok(Self {
            producer,
            name: names::utf8(name)?.as_bytes().into(),
        })
    }

    /// Write `msg` at `level` (Python's numeric levels).
    fn log(&self, py: Python<'_>, level: u8, msg: &Bound<'_, PyString>) -> PyResult<()> {
        let message = msg_args::message(msg, None)?;
        let (thread_id, thread_name) = current_thread(py)?;
        let record = Record {
            level,
            thread_id,
            thread_name: &thread_name,
            logger: &self.name,
            message: message.as_bytes(),
            ..Record::default()
        };
        self.producer.get().write_record(py, &record, 0)
    }

    fn debug(&self, py: Python<'_>, msg: &Bound<'_, PyString>) -> PyResult<()> {
        self.log(py, 10, msg)
    }
    fn info(&self, py: Python<'_>, msg: &Bound<'_, PyString>) -> PyResult<()> {
        self.log(py, 20, msg)
    }
    fn warning(&self, py: Python<'_>, msg: &Bound<'_, PyString>) -> PyResult<()> {
        self.log(py, 30, msg)
    }
    fn error(&self, py: Python<'_>, msg: &Bound<'_, PyString>) -> PyResult<()> {
        self.log(py, 40, msg)
    }
    fn critical(&self, py: Python<'_>, msg: &Bound<'_, PyString>) -> PyResult<()> {
        self.log(py, 50, msg)
    }
}

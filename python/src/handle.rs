//! `RingHandler.handle` without a Python frame.
//!
//! `Logger.callHandlers` calls `handler.handle(record)`; RingHandler's own
//! `handle` and `emit` are two Python frames around one call into the
//! extension. For a plain `RingHandler` the handle method is this object's
//! instead, doing the same steps: the handler's filters (in Python, when it
//! has any), the extension's emit, the Python path for the records it does
//! not take, and `handleError` for failures, like `emit` in Python does.
//! The handler is held weakly: it holds this object (its `handle`
//! attribute), and a cycle would keep both, and the ring's mapping, alive
//! until the garbage collector ran.

use pyo3::exceptions::PyRecursionError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyWeakrefMethods, PyWeakrefReference};

use crate::Producer;

#[pyclass(frozen, module = "ringflush._native")]
pub struct Handle {
    producer: Py<Producer>,
    handler: Py<PyWeakrefReference>,
}

#[pymethods]
impl Handle {
    #[new]
    fn new(producer: Py<Producer>, handler: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            producer,
            handler: PyWeakrefReference::new(handler)?.unbind(),
        })
    }

    /// `Handler.handle(record)`, without the handler lock (the ring is
    /// lock-free, and records from several threads interleave there anyway).
    fn handle<'py>(&self, record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = record.py();
        let Some(handler) = self.handler.bind(py).upgrade() else {
            // Only while the handler itself is being destroyed.
            return Ok(PyBool::new(py, false).to_owned().into_any());
        };
        if handler.getattr(intern!(py, "filters"))?.is_truthy()? {
            return handler.call_method1(intern!(py, "_handle_filtered"), (record,));
        }
        match self.producer.get().emit_record(py, record) {
            Ok(true) => {}
            Ok(false) => {
                handler.call_method1(intern!(py, "_emit_other"), (record,))?;
            }
            Err(e) if e.is_instance_of::<PyRecursionError>(py) => return Err(e),
            Err(e) => {
                handler.call_method1(intern!(py, "_failed"), (record, e))?;
            }
        }
        Ok(PyBool::new(py, true).to_owned().into_any())
    }
}

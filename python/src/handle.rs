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
//! until the garbage collector ran. Whoever replaces `handle` or `emit` on
//! the class, or `emit` on the instance (`mock.patch.object`), gets the
//! Python methods, as with any handler.

use pyo3::exceptions::{PyRecursionError, PyReferenceError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyWeakrefMethods, PyWeakrefReference};

use crate::Producer;

#[pyclass(frozen, module = "ringflush._native")]
pub struct Handle {
    producer: Py<Producer>,
    handler: Py<PyWeakrefReference>,
    /// `RingHandler.handle` and `RingHandler.emit` as defined.
    plain_handle: Py<PyAny>,
    plain_emit: Py<PyAny>,
}

#[pymethods]
impl Handle {
    #[new]
    fn new(
        producer: Py<Producer>,
        handler: &Bound<'_, PyAny>,
        plain_handle: Py<PyAny>,
        plain_emit: Py<PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            producer,
            handler: PyWeakrefReference::new(handler)?.unbind(),
            plain_handle,
            plain_emit,
        })
    }

    /// `Handler.handle(record)`, without the handler lock (the ring is
    /// lock-free, and records from several threads interleave there anyway).
    fn handle<'py>(&self, record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = record.py();
        let Some(handler) = self.handler.bind(py).upgrade() else {
            // Kept by someone after its handler was freed (copies of a
            // handler get their own, see RingHandler.__setstate__).
            return Err(PyReferenceError::new_err(
                "this RingHandler.handle outlived its handler",
            ));
        };
        let class = handler.get_type();
        let replaced = !class.getattr(intern!(py, "handle"))?.is(&self.plain_handle)
            || !class.getattr(intern!(py, "emit"))?.is(&self.plain_emit)
            || handler
                .getattr(intern!(py, "__dict__"))?
                .cast::<PyDict>()?
                .contains(intern!(py, "emit"))?;
        if replaced {
            return handler.call_method1(intern!(py, "_handle_replaced"), (record,));
        }
        if handler.getattr(intern!(py, "filters"))?.is_truthy()? {
            return handler.call_method1(intern!(py, "_handle_filtered"), (record,));
        }
        match self.producer.get().emit_record(py, record) {
            Ok(true) => {}
            Ok(false) => {
                handler.call_method1(intern!(py, "_from_native"), (record,))?;
            }
            Err(e) if e.is_instance_of::<PyRecursionError>(py) => return Err(e),
            Err(e) => {
                handler.call_method1(intern!(py, "_from_native"), (record, e))?;
            }
        }
        Ok(PyBool::new(py, true).to_owned().into_any())
    }
}

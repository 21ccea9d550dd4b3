//! A `LogRecord`'s attributes in one pass over its `__dict__`.
//!
//! Looking up the sixteen attributes RingHandler needs one by one costs a
//! hash lookup each. `LogRecord.__init__` assigns its attributes in a fixed
//! order, so the keys of its `__dict__` come in that order: one walk with
//! `PyDict_Next`, comparing each key with the one expected at that place by
//! address (attribute names are interned strings), finds them all. A key out
//! of place is searched among the known ones; a key that is not one of them
//! is an `extra=` field (or something a filter added), and the record takes
//! the Python path.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The attributes read, as indices into [`Fields`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Field {
    Name,
    Msg,
    Args,
    Levelno,
    Levelname,
    Pathname,
    Module,
    ExcInfo,
    ExcText,
    StackInfo,
    Lineno,
    FuncName,
    Created,
    CreatedNs,
    Thread,
    ThreadName,
    ProcessName,
    TaskName,
    /// A standard attribute RingHandler does not need (levelname, msecs...).
    Unused,
}

const FIELDS: usize = Field::Unused as usize;

impl Field {
    fn of(key: &str) -> Field {
        match key {
            "name" => Field::Name,
            "msg" => Field::Msg,
            "args" => Field::Args,
            "levelno" => Field::Levelno,
            "levelname" => Field::Levelname,
            "pathname" => Field::Pathname,
            "module" => Field::Module,
            "exc_info" => Field::ExcInfo,
            "exc_text" => Field::ExcText,
            "stack_info" => Field::StackInfo,
            "lineno" => Field::Lineno,
            "funcName" => Field::FuncName,
            "created" => Field::Created,
            "created_ns" => Field::CreatedNs,
            "thread" => Field::Thread,
            "threadName" => Field::ThreadName,
            "processName" => Field::ProcessName,
            "taskName" => Field::TaskName,
            _ => Field::Unused,
        }
    }
}

/// The values found, by [`Field`]; `None` for attributes the record lacks.
pub struct Fields<'py>([Option<Bound<'py, PyAny>>; FIELDS]);

impl<'py> Fields<'py> {
    pub fn get(&self, field: Field) -> Option<&Bound<'py, PyAny>> {
        self.0[field as usize].as_ref()
    }
}

/// The keys of a plain `LogRecord`'s `__dict__`, in order.
pub struct RecordKeys {
    keys: Vec<(Py<PyString>, Field)>,
}

impl RecordKeys {
    /// From the `__dict__` of a plain record of this interpreter's logging
    /// (its attributes vary by version: taskName since 3.12...).
    pub fn new(plain: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = plain.py();
        let mut keys = Vec::with_capacity(plain.len() + 2);
        // Formatter.format adds these two when another handler ran first.
        let added = [PyString::new(py, "message"), PyString::new(py, "asctime")];
        for key in plain
            .keys()
            .iter()
            .chain(added.into_iter().map(Bound::into_any))
        {
            let key = key.cast_into::<PyString>()?;
            let field = Field::of(&key.to_cow()?);
            keys.push((PyString::intern(py, &key.to_cow()?).unbind(), field));
        }
        Ok(Self { keys })
    }

    /// The fields of `dict`, a LogRecord's `__dict__`; `None` when it holds
    /// an attribute a plain record does not have.
    pub fn read<'py>(&self, dict: &Bound<'py, PyDict>) -> Option<Fields<'py>> {
        let py = dict.py();
        let mut fields = Fields(Default::default());
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        let mut index = 0;
        // SAFETY: `dict` is a live dict and the GIL is held; nothing in the
        // loop runs Python code, so the dict cannot change under the walk,
        // and the borrowed key and value stay valid until the next call.
        while unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) } != 0 {
            let field = match self.keys.get(index) {
                Some((k, field)) if k.as_ptr() == key => *field,
                _ => self.keys.iter().find(|(k, _)| k.as_ptr() == key)?.1,
            };
            index += 1;
            if field != Field::Unused {
                // SAFETY: `value` is a valid borrowed reference (above);
                // from_borrowed_ptr takes a reference of our own.
                fields.0[field as usize] = Some(unsafe { Bound::from_borrowed_ptr(py, value) });
            }
        }
        Some(fields)
    }
}

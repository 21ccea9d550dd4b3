//! `msg % args` for the shapes most log calls have, straight into UTF-8.
//!
//! `logger.info("request %d handled in %d ms", i, ms)` is the common case:
//! `%s`, `%d` and `%i` with str, int, bool and None arguments. CPython's
//! `PyUnicode_Format` builds a new `str` for it, which the ring then wants as
//! UTF-8: here the UTF-8 is written directly into a reused buffer instead.
//! Everything else (flags, width, precision, `%(key)s`, other conversions,
//! other argument types, ints beyond 64 bits, an argument count that does not
//! match, text with lone surrogates) returns `None` and the caller does
//! `str % args` itself, which also raises whatever Python would raise. The
//! output is byte-identical to Python's for every shape accepted (tested
//! against `%` in python/tests).

use std::cell::Cell;
use std::os::raw::c_char;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString, PyTuple};

use crate::names::{self, Utf8};

extern "C" {
    // In the stable ABI only from 3.10, but exported by every CPython this
    // package supports (3.8+); pyo3 hides it from abi3-py38 builds.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// The UTF-8 of `text`, borrowed from the string (CPython keeps it there);
/// `None`, with no error left set, for text with lone surrogates.
pub fn utf8_of<'a>(text: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a live str for 'a; the GIL is held (Bound).
    let data = unsafe { PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size) };
    if data.is_null() {
        // The UnicodeEncodeError of a lone surrogate: the caller falls back.
        drop(PyErr::take(text.py()));
        return None;
    }
    // SAFETY: on success CPython returns `size` bytes owned by the string,
    // which is immutable and outlives 'a (the borrow of `text`).
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) })
}

/// `fmt % args` into `out` (cleared first); `None` for anything this does
/// not handle exactly as Python would (see the module docs).
pub fn format_into(fmt: &[u8], args: &Bound<'_, PyTuple>, out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    let mut used = 0;
    let mut rest = fmt;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        out.extend_from_slice(&rest[..at]);
        let conversion = *rest.get(at + 1)?;
        rest = &rest[at + 2..];
        if conversion == b'%' {
            out.push(b'%');
            continue;
        }
        let arg = args.get_borrowed_item(used).ok()?;
        used += 1;
        match conversion {
            b's' => push_str(&arg, out)?,
            b'd' | b'i' => push_int(&arg, out)?,
            _ => return None,
        }
    }
    out.extend_from_slice(rest);
    // Python raises for arguments left over ("not all arguments converted").
    (used == args.len()).then_some(())
}

/// `%s`: str(arg) for the types whose str is known here.
fn push_str(arg: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Option<()> {
    if let Ok(text) = arg.cast_exact::<PyString>() {
        out.extend_from_slice(utf8_of(text)?);
    } else if arg.is_none() {
        out.extend_from_slice(b"None");
    } else if let Ok(flag) = arg.cast_exact::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"True" } else { b"False" });
    } else {
        push_int(arg, out)?;
    }
    Some(())
}

/// `%d`: an exact int that fits in 64 bits, or a bool (1 or 0).
fn push_int(arg: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Option<()> {
    let value = if let Ok(flag) = arg.cast_exact::<PyBool>() {
        i64::from(flag.is_true())
    } else {
        // Exact int only: a subclass may define __str__ or __index__.
        arg.cast_exact::<PyInt>().ok()?.extract::<i64>().ok()?
    };
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    Some(())
}

thread_local! {
    /// The buffer messages are formatted into, reused: no allocation per
    /// record. Taken out while in use, so a nested call gets a new one.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Largest buffer kept for reuse.
const SCRATCH_KEPT: usize = 64 * 1024;

/// A message formatted here, in the thread's reused buffer.
pub struct Formatted(Vec<u8>);

impl Drop for Formatted {
    fn drop(&mut self) {
        if self.0.capacity() <= SCRATCH_KEPT {
            let buf = std::mem::take(&mut self.0);
            SCRATCH.with(|s| s.set(buf));
        }
    }
}

/// The UTF-8 of `LogRecord.getMessage()`.
pub enum Message<'a, 'py> {
    /// The message string's own UTF-8 (no arguments).
    Borrowed(&'a [u8]),
    /// Formatted here.
    Formatted(Formatted),
    /// Formatted (or encoded) by Python.
    Python(Utf8<'py>),
}

impl Message<'_, '_> {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Borrowed(b) => b,
            Message::Formatted(f) => &f.0,
            Message::Python(u) => u.as_bytes(),
        }
    }
}

/// `msg % args` (or `msg` without arguments) as UTF-8; `msg` is already
/// `str(record.msg)`. Raises what `%` raises.
pub fn message<'a, 'py>(
    msg: &'a Bound<'py, PyString>,
    args: Option<&Bound<'py, PyAny>>,
) -> PyResult<Message<'a, 'py>> {
    let Some(args) = args else {
        return Ok(match utf8_of(msg) {
            Some(bytes) => Message::Borrowed(bytes),
            None => Message::Python(names::encode(msg)?),
        });
    };
    if let (Ok(tuple), Some(fmt)) = (args.cast_exact::<PyTuple>(), utf8_of(msg)) {
        let mut out = Formatted(SCRATCH.with(Cell::take));
        if format_into(fmt, tuple, &mut out.0).is_some() {
            return Ok(Message::Formatted(out));
        }
    }
    Ok(Message::Python(names::encode(&msg.rem(args)?.str()?)?))
}
